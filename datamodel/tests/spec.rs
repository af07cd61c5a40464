//! The committed facts and docs match their sources: `data/device2.dm` is what `dm-gen` extracts
//! from the Broadband Forum XML in `../shared/bbf` today (so a parameter we serve that the spec
//! lacks, or types differently, fails here), and docs/datamodel.md is what the schema renders.

use std::path::{Path, PathBuf};

fn shared_bbf() -> PathBuf {
    let dir = std::env::var_os("VRGW_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
        .join("bbf");
    assert!(
        dir.join("tr-181-2-17-0-cwmp-full.xml").is_file(),
        "this test reads the Broadband Forum TR-181 XML from {} and it is not there: \
         check out ../shared beside the repository (or set VRGW_SHARED)",
        dir.display()
    );
    dir
}

#[test]
fn facts_file_matches_the_bbf_xml() {
    let bbf = std::fs::read_to_string(shared_bbf().join("tr-181-2-17-0-cwmp-full.xml")).expect("read TR-181");
    let vendor_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("vendor/vrgw-virtualization.xml");
    let vendor = std::fs::read_to_string(vendor_path).expect("read vendor XML");
    let fresh = datamodel::gen::extract(&bbf, "tr-181-2-17-0-cwmp-full.xml", &vendor, "vrgw-virtualization.xml")
        .expect("extract");
    assert!(
        fresh == datamodel::schema::DM_FACTS,
        "datamodel/data/device2.dm is stale: regenerate it with\n  cargo run -p datamodel --bin dm-gen -- extract \
         ../shared/bbf/tr-181-2-17-0-cwmp-full.xml datamodel/vendor/vrgw-virtualization.xml > datamodel/data/device2.dm"
    );
}

#[test]
fn generator_reports_missing_objects() {
    let err = datamodel::gen::extract(
        "<dm:document xmlns:dm=\"x\"><model name=\"Device:2.17\"/></dm:document>",
        "empty.xml",
        "<x/>",
        "v.xml",
    )
    .expect_err("nothing to extract");
    assert!(err.to_string().contains("object Device. not found"), "{err}");
    let err = datamodel::gen::extract("<a><b></a>", "broken.xml", "<x/>", "v.xml").expect_err("malformed");
    assert!(err.to_string().starts_with("broken.xml: malformed XML"), "{err}");
}

#[test]
fn datamodel_reference_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/datamodel.md");
    let committed = std::fs::read_to_string(&path).expect("docs/datamodel.md");
    assert!(
        committed == datamodel::docs::markdown(),
        "docs/datamodel.md is stale: cargo run -p datamodel --bin dm-gen -- docs > docs/datamodel.md"
    );
}
