//! One run's side of the sandbox: `declare()` recorded, reads answered from the view (and
//! from values declared earlier in the round), `commit()`, `clear()` and `ext()` interrupting
//! the run when the session must act first.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use serde_json::{json, Value as Json};

use super::decl::{answer, declaration, declared_js, needs, sets, stale, ts_of, Query, Record, Sent};
use super::engine::{Host, Stop};
use super::view::{Pattern, View};
use super::MAX_DECLARATIONS;

/// The most `log()` lines a run keeps.
const MAX_LOGS: usize = 64;
/// The longest a kept `log()` line is.
const MAX_LOG_BYTES: usize = 1024;

/// One run's side of the sandbox.
pub(crate) struct RunHost {
    pub(crate) view: Rc<View>,
    /// Values declared earlier in the round (by any script): what a later read sees.
    pub(crate) overlay: Rc<RefCell<BTreeMap<String, Json>>>,
    pub(crate) ext_cache: std::sync::Arc<HashMap<String, Json>>,
    /// What the session sent already: not a reason for `commit()` to stop the run.
    pub(crate) sent: Rc<Sent>,
    pub(crate) rec: Record,
}

impl Host for RunHost {
    fn declare(&mut self, path: &str, timestamps: &Json, values: &Json) -> Result<usize, Stop> {
        if self.rec.decls.len() >= MAX_DECLARATIONS {
            return Err(Stop::Type(format!("at most {MAX_DECLARATIONS} declarations in a run")));
        }
        let d = declaration(path, timestamps, values).map_err(Stop::Type)?;
        if let Some((v, ty)) = &d.value_set {
            let (matches, _) = self.view.unpack(&d.pattern, d.path_get);
            let mut overlay = self.overlay.borrow_mut();
            for m in matches {
                let js = declared_js(&self.view, &m, v, ty);
                overlay.insert(m, js);
            }
        }
        self.rec.decls.push(d);
        Ok(self.rec.decls.len() - 1)
    }

    fn get(&mut self, decl: usize, item: Option<usize>, attr: &str) -> Result<Option<Json>, Stop> {
        if decl >= self.rec.decls.len() {
            return Err(Stop::Type("not a declaration of this run".into()));
        }
        let q = Query::Get { decl, item, attr: attr.to_string() };
        let a = answer(&self.view, &self.overlay.borrow(), &self.rec.decls, &q).map_err(|()| Stop::Interrupt)?;
        self.rec.answered(q, &a);
        Ok(a)
    }

    fn size(&mut self, decl: usize) -> Result<Option<usize>, Stop> {
        if decl >= self.rec.decls.len() {
            return Err(Stop::Type("not a declaration of this run".into()));
        }
        let q = Query::Size { decl };
        let a = answer(&self.view, &self.overlay.borrow(), &self.rec.decls, &q).map_err(|()| Stop::Interrupt)?;
        self.rec.answered(q, &a);
        Ok(a.and_then(|n| n.as_u64()).map(|n| n as usize))
    }

    fn clear(&mut self, path: &str, timestamp: f64, _attributes: &Json) -> Result<(), Stop> {
        let pattern = Pattern::parse(path).map_err(Stop::Type)?;
        let ts = ts_of(&json!(timestamp));
        // Clearing changes what later reads see: the session clears, then the script runs again.
        if stale(&self.view, &pattern, ts) {
            self.rec.clears.push((pattern, ts));
            return Err(Stop::Interrupt);
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), Stop> {
        let mut n = Vec::new();
        for d in &self.rec.decls {
            needs(&self.view, d, &mut n);
        }
        if !n.is_empty() || !self.sent.filter(sets(&self.view, &self.rec.decls)).is_empty() {
            self.rec.commit = true;
            return Err(Stop::Interrupt);
        }
        Ok(())
    }

    fn ext(&mut self, call: Vec<String>) -> Result<Json, Stop> {
        let key = Json::from(call.clone()).to_string();
        match self.ext_cache.get(&key) {
            Some(v) => Ok(v.clone()),
            None => {
                self.rec.ext.push(call);
                Err(Stop::Interrupt)
            }
        }
    }

    fn log(&mut self, message: String) {
        // At most MAX_LOGS lines of at most MAX_LOG_BYTES a run.
        if self.rec.logs.len() < MAX_LOGS {
            let mut message = message;
            if message.len() > MAX_LOG_BYTES {
                let mut end = MAX_LOG_BYTES;
                while !message.is_char_boundary(end) {
                    end -= 1;
                }
                message.truncate(end);
                message.push('…');
            }
            self.rec.logs.push(message);
        }
    }
}
