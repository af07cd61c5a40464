//! Every message the crate encodes validates against the Broadband Forum schemas (xmllint, with
//! the catalog in `../shared/bbf`), and its Body child has the qualified name it should.
//!
//! Needs `../shared/bbf` (beside the repository) and `xmllint` (Debian: libxml2-utils).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use cwmp::{Body, CwmpNs, Envelope};

fn bbf_dir() -> PathBuf {
    let dir = std::env::var_os("VRGW_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"))
        .join("bbf");
    assert!(
        dir.join("cwmp-1-4.xsd").is_file(),
        "this test reads the Broadband Forum schemas from {} and they are not there: \
         check out ../shared beside the repository (or set VRGW_SHARED)",
        dir.display()
    );
    dir
}

fn xmllint() -> Command {
    let ok = Command::new("xmllint").arg("--version").output().is_ok_and(|o| o.status.success());
    assert!(ok, "xmllint is missing: apt-get install libxml2-utils (the README's test command does this)");
    let mut c = Command::new("xmllint");
    c.env("XML_CATALOG_FILES", bbf_dir().join("catalog.xml"));
    c
}

/// Writes each envelope to a file and validates them all with one xmllint run.
fn validate(schema: &str, envs: &[(String, Envelope)]) {
    let dir = std::env::temp_dir().join(format!("cwmp-xsd-{}-{schema}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut files = Vec::new();
    for (name, env) in envs {
        let path = dir.join(format!("{name}.xml"));
        std::fs::write(&path, env.encode()).expect("write");
        files.push(path);
    }
    let out = xmllint()
        .args(["--nonet", "--noout", "--schema"])
        .arg(bbf_dir().join(schema))
        .args(&files)
        .output()
        .expect("run xmllint");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for f in &files {
        let ok_line = format!("{} validates", f.display());
        assert!(stderr.contains(&ok_line), "{} does not validate against {schema}:\n{stderr}", f.display());
    }
    assert!(out.status.success(), "{stderr}");

    // The schema lets any Body child through (processContents="lax"): check its QName ourselves.
    for ((_, env), f) in envs.iter().zip(&files) {
        let out = xmllint()
            .args(["--nonet", "--xpath"])
            .arg("concat(namespace-uri(/*/*[local-name()='Body']/*), ' ', local-name(/*/*[local-name()='Body']/*))")
            .arg(f)
            .output()
            .expect("run xmllint --xpath");
        let got = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let want = match env.body {
            Body::Fault(_) => format!("{} Fault", cwmp::ns::SOAP_ENV),
            ref b => format!("{} {}", env.ns.uri(), b.method_name()),
        };
        assert_eq!(got, want, "Body child of {}", f.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Names of the top-level elements a schema declares (its methods, faults and headers).
fn declared(schema: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(bbf_dir().join(schema)).expect("read schema");
    text.lines()
        .filter_map(|l| l.strip_prefix("  <xs:element name=\""))
        .filter_map(|l| l.split('"').next())
        .map(str::to_string)
        .collect()
}

#[test]
fn every_message_validates_against_cwmp_1_4() {
    let envs: Vec<_> = common::envelopes().into_iter().map(|e| (e.body.method_name().to_string(), e)).collect();
    let names: BTreeSet<_> = envs.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(names.len(), 55, "one sample per message type (54 methods and Fault)");
    // Our samples cover every method the 1.2 schema declares (1.3 and 1.4 include it).
    for m in declared("cwmp-1-2.xsd") {
        if ["ID", "HoldRequests"].contains(&m.as_str()) {
            continue;
        }
        assert!(names.contains(&m), "no sample of {m}");
    }
    validate("cwmp-1-4.xsd", &envs);
}

#[test]
fn older_namespaces_validate_against_their_schemas() {
    for (schema, ns) in [("cwmp-1-0.xsd", CwmpNs::V1_0), ("cwmp-1-1.xsd", CwmpNs::V1_1)] {
        let methods = declared(schema);
        let envs: Vec<_> = common::bodies()
            .into_iter()
            .filter(|b| matches!(b, Body::Fault(_)) || methods.contains(b.method_name()))
            .map(|b| (b.method_name().to_string(), Envelope::new(ns, Some("1".into()), b)))
            .collect();
        assert!(envs.len() >= 30, "{schema}: only {} messages", envs.len());
        validate(schema, &envs);
    }
}
