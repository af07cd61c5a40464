//! The property of the fuzz target `portal_form`: the web form's body decoding
//! (`acs::portal::parse_form`, `application/x-www-form-urlencoded`) and the check of a
//! submitted page (`acs::portal::forms::check`). Input: a form body as a browser (or anyone)
//! posts it. Included with `#[path]` by the fuzz target and by `acs/tests/fuzz_replay.rs`.
#![allow(dead_code)]

use std::collections::BTreeMap;

use acs::portal::forms::{check, current_tree, Field, LAN, WIFI};
use acs::portal::parse_form;
use acs::profiles::Profile;
use cwmp::Value;

/// Percent-encodes every byte but letters, digits and `-_.~` (what a browser may send).
pub fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A decoded form as a body again.
pub fn encode_form(form: &BTreeMap<String, String>) -> String {
    form.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

/// Checks the property on one input; panics when it does not hold. Returns whether either page
/// accepted the form.
pub fn check_form(data: &[u8]) -> bool {
    let form = parse_form(data);
    // Decoding is a function of the pairs: what was decoded, encoded again, decodes the same.
    let again = encode_form(&form);
    assert_eq!(parse_form(again.as_bytes()), form, "re-encoded as {again:?}");
    let profile = Profile::default();
    let current = current_tree(&[], "Device.", &profile);
    let mut accepted = false;
    for page in [LAN, WIFI] {
        accepted |= check_page(page, &form, &current, &profile);
    }
    accepted
}

fn check_page(
    page: &'static [Field],
    form: &BTreeMap<String, String>,
    current: &datamodel::Tree,
    profile: &Profile,
) -> bool {
    match check(page, form, current, profile) {
        Ok(merged) => {
            // What the page saves: only its own parameters, each one the data model takes.
            let mut t = current.clone();
            for (rel, v) in &merged.values {
                assert!(page.iter().any(|f| f.param == rel), "{rel} saved from a page without that field");
                let pv = cwmp::ParameterValue::new(format!("Device.{rel}"), v.clone());
                match t.validate(std::slice::from_ref(&pv)) {
                    Ok(ok) => t.apply(ok),
                    Err(e) => panic!("the page saved {rel} = {v:?}, which the data model refuses: {e:?}"),
                }
                if let Value::String(s) = v {
                    assert_eq!(s, s.trim(), "{rel} saved with the spaces around it");
                }
            }
            if let Some(leases) = &merged.static_leases {
                for (mac, ip) in leases {
                    assert!(mac.len() == 17 && mac.bytes().all(|b| b == b':' || b.is_ascii_hexdigit()), "{mac:?}");
                    assert!(ip.parse::<std::net::Ipv4Addr>().is_ok(), "{ip:?}");
                }
            }
            true
        }
        Err(state) => {
            assert!(!state.errors.is_empty(), "refused without a reason");
            for name in state.errors.keys() {
                assert!(page.iter().any(|f| f.name == name), "an error for {name:?}, not a field of the page");
            }
            // The page shows the form back as it was typed.
            for f in page {
                assert_eq!(state.values.get(f.name), Some(form.get(f.name).unwrap_or(&String::new())));
            }
            false
        }
    }
}
