//! `dm-gen`: extracts the facts of the objects this stack serves from Broadband Forum data-model
//! XML (and our vendor extension, written in the same format) into `datamodel/data/device2.dm`,
//! and renders `docs/datamodel.md` from the compiled schema. Built with the crate's `gen` feature
//! (a default of `datamodel` itself; the daemons depend on it without).
//!
//! ```text
//! cargo run -p datamodel --bin dm-gen -- extract ../shared/bbf/tr-181-2-17-0-cwmp-full.xml \
//!     datamodel/vendor/vrgw-virtualization.xml > datamodel/data/device2.dm
//! cargo run -p datamodel --bin dm-gen -- rust ../shared/bbf/tr-181-2-17-0-cwmp-full.xml \
//!     datamodel/vendor/vrgw-virtualization.xml > datamodel/src/virtualization.rs
//! cargo run -p datamodel --bin dm-gen -- extract-tr098 ../shared/bbf/tr-098-1-8-0-full.xml \
//!     > datamodel/data/tr098.dm
//! cargo run -p datamodel --bin dm-gen -- docs > docs/datamodel.md
//! ```

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some(what @ ("extract" | "rust")) if args.len() == 3 => match extract(what, &args[1], &args[2]) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("dm-gen: {e}");
                ExitCode::FAILURE
            }
        },
        Some("extract-tr098") if args.len() == 2 => {
            let base = args[1].rsplit('/').next().unwrap_or(&args[1]).to_string();
            let text = std::fs::read_to_string(&args[1]).map_err(|e| format!("{}: {e}", args[1]));
            match text.and_then(|t| datamodel::gen::extract_tr098(&t, &base).map_err(|e| e.to_string())) {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("dm-gen: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("docs") => {
            print!("{}", datamodel::docs::markdown());
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!(
                "usage: dm-gen extract|rust TR181_FULL_XML VENDOR_XML\n       dm-gen extract-tr098 TR098_FULL_XML\n       \
                 dm-gen docs > datamodel.md"
            );
            ExitCode::from(2)
        }
    }
}

fn extract(what: &str, bbf: &str, vendor: &str) -> Result<String, String> {
    let bbf_text = std::fs::read_to_string(bbf).map_err(|e| format!("{bbf}: {e}"))?;
    let vendor_text = std::fs::read_to_string(vendor).map_err(|e| format!("{vendor}: {e}"))?;
    let base = |p: &str| p.rsplit('/').next().unwrap_or(p).to_string();
    let gen = if what == "rust" { datamodel::gen::rust_module } else { datamodel::gen::extract };
    gen(&bbf_text, &base(bbf), &vendor_text, &base(vendor)).map_err(|e| e.to_string())
}
