//! The property of the fuzz target `script`: a provision or virtual-parameter script as the NBI
//! receives it (`PUT /provisions/<name>`), compiled by `acs::script::engine::check` and, when it
//! compiles, run in the engine (20 ms, 4 MiB) against a host that parses every path it declares
//! with `acs::script::view::Pattern::parse`. The input's first line is also parsed as a path on
//! its own. Nothing panics; a syntax error names a line of the script (or the one after its
//! end); a fault of a run names, when it names one, a line of the script; an accepted path has
//! segments, and one without `*` or `[` is concrete. Included with `#[path]` by the fuzz target
//! and by `acs/tests/fuzz_replay.rs`.
#![allow(dead_code)]

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use acs::script::engine::{self, Host, Limits, Outcome, Script, Stop};
use acs::script::view::Pattern;
use serde_json::{json, Value as Json};

/// Answers every read with one value; declarations are checked paths.
struct Paths(Vec<Pattern>);

impl Host for Paths {
    fn declare(&mut self, path: &str, _: &Json, _: &Json) -> Result<usize, Stop> {
        let p = Pattern::parse(path).map_err(Stop::Type)?;
        pattern_holds(path, &p);
        self.0.push(p);
        Ok(self.0.len() - 1)
    }
    fn get(&mut self, decl: usize, _: Option<usize>, attr: &str) -> Result<Option<Json>, Stop> {
        assert!(decl < self.0.len(), "a declaration the host never made: {decl}");
        Ok((attr == "value").then(|| json!(["x", "xsd:string"])))
    }
    fn size(&mut self, _: usize) -> Result<Option<usize>, Stop> {
        Ok(Some(2))
    }
    fn clear(&mut self, path: &str, _: f64, _: &Json) -> Result<(), Stop> {
        Pattern::parse(path).map(drop).map_err(Stop::Type)
    }
    fn commit(&mut self) -> Result<(), Stop> {
        Ok(())
    }
    fn ext(&mut self, call: Vec<String>) -> Result<Json, Stop> {
        Ok(Json::from(call))
    }
    fn log(&mut self, _: String) {}
}

fn pattern_holds(text: &str, p: &Pattern) {
    assert!(!p.segs.is_empty(), "{text:?} parsed to no segments");
    if !text.contains('*') && !text.contains('[') {
        assert!(p.is_concrete(), "{text:?} has no wildcard or alias but is not concrete");
    }
}

/// Whether the script compiled (the property holding either way).
pub fn check_script(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let (first, source) = text.split_once('\n').unwrap_or((&text, ""));
    if let Ok(p) = Pattern::parse(first) {
        pattern_holds(first, &p);
    }
    let lines = source.lines().count() as u32 + 1;
    match engine::check("fuzz", source) {
        Err(e) => {
            if let Some(l) = e.line {
                assert!((1..=lines + 1).contains(&l), "line {l} of a {lines}-line script: {e:?}");
            }
            false
        }
        Ok(()) => {
            let script = Script { name: "fuzz".into(), source: source.to_string() };
            let host = Rc::new(RefCell::new(Paths(Vec::new())));
            let limits = Limits { time: Duration::from_millis(20), memory: 4 << 20 };
            if let Outcome::Fault(e) = engine::run(&script, &json!(["a", 1]), 1_700_000_000_000, 7, host, limits) {
                if let Some(l) = e.line {
                    assert!((1..=lines + 1).contains(&l), "line {l} of a {lines}-line script: {e:?}");
                }
            }
            true
        }
    }
}
