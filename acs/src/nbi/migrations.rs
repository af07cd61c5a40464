//! `POST /devices/{id}/instances/{n}/migrate`, `GET /migrations` and `GET /migrations/{id}`.

use std::sync::Arc;
use std::time::Duration;

use hyper::StatusCode;
use serde_json::Value as Json;

use super::{json_response, number, parse_json, Nbi, NbiError, Reply};
use crate::migration;
use datamodel::virtualization::MigrationMode;

/// A migration as asked for: instance `n` of the path's device to `target`.
pub(crate) struct Start {
    source: String,
    instance: u32,
    target: String,
    mode: MigrationMode,
    step_timeout: Duration,
}

impl Start {
    /// From the path and `{"target": ..., "mode": ..., "stepTimeout": ...}`.
    pub fn parse(dev: &str, n: &str, body: &[u8]) -> Result<Start, NbiError> {
        let instance = number(n, "an instance number is a number")?;
        let spec: Json = parse_json("the request", body)?;
        let Some(target) = spec.get("target").and_then(Json::as_str) else {
            return Err(NbiError::Invalid("\"target\" (the destination host's device id) is required"));
        };
        let Some(mode) = spec.get("mode").and_then(Json::as_str).and_then(migration::mode_from_nbi) else {
            return Err(NbiError::Invalid("\"mode\" is one of live, cold-image, cold-context"));
        };
        let step_timeout = match spec.get("stepTimeout") {
            None => Duration::from_secs(60),
            Some(v) => match v.as_u64().filter(|s| (1..=3600).contains(s)) {
                Some(s) => Duration::from_secs(s),
                None => return Err(NbiError::Invalid("\"stepTimeout\" is 1 to 3600 seconds")),
            },
        };
        Ok(Start { source: dev.to_string(), instance, target: target.to_string(), mode, step_timeout })
    }
}

/// Checks and records the migration; it runs in the background (202 with its record).
pub(crate) fn start(nbi: &Arc<Nbi>, s: Start) -> Result<Reply, NbiError> {
    let req = migration::Request {
        source: s.source,
        instance: s.instance,
        target: s.target,
        mode: s.mode,
        step_timeout: s.step_timeout,
    };
    let cr = migration::Settings { timeout: nbi.config.cr_timeout, hosts: nbi.config.hosts.clone() };
    let (_, r) = migration::start(nbi.acs.clone(), cr, req)?;
    Ok(json_response(StatusCode::ACCEPTED, &r))
}

/// Every migration, oldest first.
pub(crate) fn list(nbi: &Nbi) -> Result<Reply, NbiError> {
    let ms = nbi.acs.store.migrations()?;
    Ok(json_response(StatusCode::OK, &Json::Array(ms.iter().map(|(i, r)| migration::to_json(*i, r)).collect())))
}

/// One migration.
pub(crate) fn get(nbi: &Nbi, id: i64) -> Result<Reply, NbiError> {
    match migration::find(nbi.acs.store.as_ref(), id)? {
        Some(r) => Ok(json_response(StatusCode::OK, &r)),
        None => Err(NbiError::NotFound(format!("no migration {id}"))),
    }
}
