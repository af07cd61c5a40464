//! Decodes one benchmark message N times with one decoder, for instruction counting under
//! `valgrind --tool=callgrind` (repeatable where wall-clock time on a shared 2-core VM is not).
//!
//! `cargo run --release --manifest-path bench-compare/Cargo.toml --target-dir target --example count -- ours inform_60 200`

#[path = "../../cwmp/tests/common/mod.rs"]
mod common;

use cwmp::{Body, CwmpNs, Envelope, Limits};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (which, case, n) = match args.as_slice() {
        [_, w, c, n] => (w.as_str(), c.as_str(), n.parse::<usize>().unwrap_or(0)),
        _ => {
            eprintln!("usage: count ours|theirs inform_60|gpv_response_500 N");
            std::process::exit(2);
        }
    };
    let body = match case {
        "inform_60" => Body::Inform(common::inform(60)),
        _ => Body::GetParameterValuesResponse(common::get_parameter_values_response(500)),
    };
    let xml = Envelope::new(CwmpNs::V1_0, Some("1".into()), body).encode();
    let mut ok = 0;
    for _ in 0..n {
        ok += match which {
            "ours" => Envelope::decode(std::hint::black_box(xml.as_bytes()), &Limits::default()).is_ok() as usize,
            _ => cwmp_crates_io::parse_bytes(std::hint::black_box(xml.as_bytes())).is_ok() as usize,
        };
    }
    println!("{which} {case}: {ok} of {n} decoded, {} bytes each", xml.len());
}
