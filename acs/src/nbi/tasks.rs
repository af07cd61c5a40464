//! `POST /devices/{id}/tasks` (with `?connection_request` and `?timeout=`), `GET /tasks`,
//! `POST /tasks` (bulk, `?query=`), `DELETE /tasks/{id}` and `POST /tasks/{id}/retry`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hyper::header::HeaderValue;
use hyper::StatusCode;
use serde_json::{json, Value as Json};

use super::{blocking, done, json_response, parse_json, Call, Nbi, NbiError, Reply};
use crate::endpoint::now;
use crate::query;
use crate::store::{Task, TaskStatus};
use crate::tasks::Order;

/// A task as GenieACS shows it.
pub(crate) fn task_json(t: &Task) -> Json {
    let mut j = t.order.to_json();
    if let Json::Object(m) = &mut j {
        m.insert("_id".into(), json!(t.id.to_string()));
        m.insert("device".into(), json!(t.device));
        m.insert("timestamp".into(), json!(query::iso(t.created)));
        m.insert("status".into(), serde_json::to_value(t.status).unwrap_or(Json::Null));
        m.insert("attempts".into(), json!(t.attempts));
        if let Some(r) = &t.result {
            m.insert("result".into(), r.clone());
        }
    }
    j
}

/// A task from a request body, typed (which checks it).
fn spec(body: &[u8]) -> Result<Order, NbiError> {
    let spec: Json = parse_json("the task", body)?;
    Ok(Order::from_nbi(&spec)?)
}

/// `POST /devices/{id}/tasks`: the task and how to deliver it.
pub(crate) struct Create {
    spec: Order,
    /// Send a connection request and wait for the task (`?connection_request`).
    connection_request: bool,
    /// How long to wait (`?timeout=` in milliseconds; 3 s by default).
    timeout: Duration,
}

impl Create {
    /// From the body and the query parameters.
    pub fn parse(call: &Call) -> Result<Create, NbiError> {
        let spec = spec(&call.body)?;
        let timeout = call
            .params
            .get("timeout")
            .and_then(|t| t.parse::<u64>().ok())
            .map(Duration::from_millis)
            .unwrap_or(Duration::from_secs(3));
        Ok(Create { spec, connection_request: call.params.contains_key("connection_request"), timeout })
    }
}

/// Queues a task for `dev`; with a connection request, waits up to the timeout for its outcome.
pub(crate) async fn create(nbi: &Arc<Nbi>, dev: &str, c: Create) -> Result<Reply, NbiError> {
    let store = nbi.acs.store.clone();
    let device = store.device(dev)?.ok_or_else(|| NbiError::NotFound(format!("no device {dev}")))?;
    let task = store.enqueue(dev, &c.spec, now())?;
    tracing::info!(device = %dev, task = task.id, "task queued");
    if !c.connection_request {
        return Ok(json_response(StatusCode::ACCEPTED, &task_json(&task)));
    }
    let deadline = tokio::time::Instant::now() + c.timeout;
    if nbi.acs.in_session(dev) {
        // No need to wake it (and at its first session the ACS may not hold its
        // connection-request credentials yet): the open session takes the task.
        tracing::info!(device = %dev, task = task.id, "device in session: no connection request needed");
    } else if let Err(e) = crate::conn_req::to_device(&device, nbi.config.cr_timeout.min(c.timeout)).await {
        tracing::warn!(device = %dev, "connection request failed: {e}");
        let mut r = json_response(StatusCode::ACCEPTED, &task_json(&task));
        if let Ok(v) = HeaderValue::from_str(&e.to_string()) {
            r.headers_mut().insert("x-connection-request-error", v);
        }
        return Ok(r);
    }
    loop {
        let notified = nbi.acs.task_events.notified();
        match store.task(task.id)? {
            Some(t) if matches!(t.status, TaskStatus::Done) => {
                return Ok(json_response(StatusCode::OK, &task_json(&t)))
            }
            Some(t) if matches!(t.status, TaskStatus::Fault) => {
                let fault = store.faults()?.into_iter().find(|f| f.task == Some(t.id));
                let mut j = task_json(&t);
                if let (Json::Object(m), Some(f)) = (&mut j, fault) {
                    m.insert(
                        "fault".into(),
                        json!({"_id": f.id.to_string(), "code": f.code, "message": f.message, "detail": f.detail}),
                    );
                }
                return Ok(json_response(StatusCode::OK, &j));
            }
            Some(_) => {}
            None => return Err(NbiError::NotFound("the task was deleted".into())),
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            let t = match store.task(task.id) {
                Ok(Some(t)) => t,
                Ok(None) => task,
                Err(e) => {
                    tracing::warn!(task = task.id, "re-reading the task after the wait: {e}; answering it as queued");
                    task
                }
            };
            return Ok(json_response(StatusCode::ACCEPTED, &task_json(&t)));
        }
    }
}

/// The device a `GET /tasks?query={"device": ...}` names, if any.
pub(crate) fn device_of(params: &HashMap<String, String>) -> Option<String> {
    let q: Json = serde_json::from_str(params.get("query")?).ok()?;
    q.get("device").and_then(Json::as_str).map(str::to_string)
}

/// Every task, or one device's.
pub(crate) fn list(nbi: &Nbi, device: Option<String>) -> Result<Reply, NbiError> {
    let ts = nbi.acs.store.tasks(device.as_deref())?;
    Ok(json_response(StatusCode::OK, &Json::Array(ts.iter().map(task_json).collect())))
}

/// `POST /tasks?query=`: one task for every device the query matches.
pub(crate) struct Bulk {
    query: Json,
    spec: Order,
}

impl Bulk {
    /// From `?query=` and the body.
    pub fn parse(call: &Call) -> Result<Bulk, NbiError> {
        let Some(q) = call.params.get("query") else {
            return Err(NbiError::Invalid("a bulk task needs ?query= naming the devices"));
        };
        let query = parse_json("query", q.as_bytes())?;
        Ok(Bulk { query, spec: spec(&call.body)? })
    }
}

/// Queues the task for every matching device.
pub(crate) async fn bulk(nbi: &Arc<Nbi>, b: Bulk) -> Result<Reply, NbiError> {
    let store = nbi.acs.store.clone();
    blocking(move || {
        let mut ids = Vec::new();
        for d in store.devices()? {
            let ps = store.params(&d.id)?;
            if query::matches(&d, &ps, &b.query)? {
                let t = store.enqueue(&d.id, &b.spec, now())?;
                ids.push(json!({"_id": t.id.to_string(), "device": d.id}));
            }
        }
        tracing::info!(count = ids.len(), "bulk task queued");
        Ok(json_response(StatusCode::OK, &json!({"tasks": ids})))
    })
    .await
}

/// Deletes a task and its faults.
pub(crate) fn delete(nbi: &Nbi, id: i64) -> Result<Reply, NbiError> {
    if nbi.acs.store.delete_task(id)? {
        Ok(done())
    } else {
        Err(NbiError::NotFound(format!("no task {id}")))
    }
}

/// Runs a faulted task again.
pub(crate) fn retry(nbi: &Nbi, id: i64) -> Result<Reply, NbiError> {
    if nbi.acs.store.retry_task(id)? {
        Ok(done())
    } else {
        Err(NbiError::NotFound(format!("no faulted task {id}")))
    }
}
