//! `POST /devices/{id}/tasks` (with `?connection_request` and `?timeout=`, or with no body: a
//! bare connection request), `GET /tasks?query=`, `POST /tasks` (bulk, `?query=`),
//! `DELETE /tasks/{id}` and `POST /tasks/{id}/retry`, as GenieACS answers them.
//!
//! [`collection`] answers `GET` of the task, fault and file collections alike: GenieACS's
//! `query` (MongoDB's language on the records as shown), `sort`, `skip`, `limit`, `projection`
//! and the `total` header.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use hyper::header::HeaderValue;
use hyper::StatusCode;
use serde_json::{json, Value as Json};

use super::{blocking, done, json_response, parse_json, Call, Nbi, NbiError, Reply};
use crate::endpoint::now;
use crate::query;
use crate::store::{FaultRecord, Task, TaskStatus};
use crate::tasks::{Order, TaskSpec, Terms};

/// How long GenieACS waits for the device's session to start after a connection request when
/// `?timeout=` is not given (its `cwmp.deviceOnlineThreshold`), in milliseconds.
const ONLINE_THRESHOLD_MS: u64 = 4000;

/// How long, once the device's session started, GenieACS waits for it to end before answering
/// 202 (its `awaitSessionEnd`).
const SESSION_END_WAIT: Duration = Duration::from_secs(120);

/// The reason phrase of a 202 whose task did not run in the wait (GenieACS's words).
const NOT_PROCESSED: &str = "Task queued but not processed";

/// The reason phrase of a 202 whose task faulted (GenieACS's words).
const FAULTED: &str = "Task faulted";

/// A task as GenieACS shows it (the task's fields, `_id`, `device`, `timestamp`), with what
/// the ACS adds: `status`, `attempts`, the `result` once done (or `{"status": 1}` while a
/// transfer the device accepted is under way), and the `fault` once faulted.
pub(crate) fn task_json(t: &Task, fault: Option<&FaultRecord>) -> Json {
    let mut j = t.order.to_json();
    t.terms.add_to(&mut j);
    if let Json::Object(m) = &mut j {
        m.insert("_id".into(), json!(t.id.to_string()));
        m.insert("device".into(), json!(t.device));
        m.insert("timestamp".into(), json!(query::iso(t.created)));
        m.insert("status".into(), serde_json::to_value(t.status).unwrap_or(Json::Null));
        m.insert("attempts".into(), json!(t.attempts));
        if let Some(r) = &t.result {
            m.insert("result".into(), r.clone());
        }
        if let Some(f) = fault {
            m.insert("fault".into(), super::faults::fault_json(f));
        }
    }
    j
}

/// A reply with GenieACS's reason phrase (`202 Task faulted`, `504 <why>`): printable ASCII
/// kept, anything else made `?`.
fn with_reason(mut r: Reply, reason: &str) -> Reply {
    let text: String =
        reason.chars().map(|c| if c == ' ' || c.is_ascii_graphic() { c } else { '?' }).take(200).collect();
    if let Ok(p) = hyper::ext::ReasonPhrase::try_from(text) {
        r.extensions_mut().insert(p);
    }
    r
}

/// A task from a request body, typed (which checks it), with its `expiry` and `uniqueKey`
/// (an `expiry` in seconds counts from `at`, the task's timestamp in Unix seconds).
fn spec(body: &[u8], at: i64) -> Result<(Order, Terms), NbiError> {
    let spec: Json = parse_json("the task", body)?;
    Ok((Order::from_nbi(&spec)?, Terms::from_nbi(&spec, at.saturating_mul(1000))?))
}

/// A `download` or `scheduleDownload` naming an uploaded `file` alone gets its type from the
/// file's metadata, as GenieACS does (its URL and size come from the file when it is sent);
/// the file must exist (GenieACS would queue a download that cannot work).
fn resolve_file(nbi: &Nbi, order: &mut Order) -> Result<(), NbiError> {
    let (task, file, file_type) = match &mut order.spec {
        TaskSpec::Download { file: Some(file), file_type, .. } => ("download", file, file_type),
        TaskSpec::ScheduleDownload { file: Some(file), file_type, .. } => ("scheduleDownload", file, file_type),
        _ => return Ok(()),
    };
    if !file_type.is_empty() {
        return Ok(());
    }
    let Some((_, meta)) = nbi.acs.store.file(file)? else {
        return Err(NbiError::Bad(format!("{task}: no file {file:?} uploaded (PUT /files/{file} first)")));
    };
    match meta.get("fileType").and_then(Json::as_str).filter(|t| !t.is_empty()) {
        Some(t) => *file_type = t.to_string(),
        None => {
            return Err(NbiError::Bad(format!(
                "{task}: file {file:?} was uploaded without a fileType header; give the task a fileType"
            )))
        }
    }
    Ok(())
}

/// `POST /devices/{id}/tasks`: the task (none: a bare connection request) and how to deliver it.
pub(crate) struct Create {
    spec: Option<(Order, Terms)>,
    /// The task's timestamp (Unix seconds).
    at: i64,
    /// Send a connection request and wait for the task (`?connection_request`).
    connection_request: bool,
    /// How long to wait for the session to start (`?timeout=` in milliseconds).
    timeout: Duration,
}

impl Create {
    /// From the body (empty: no task) and the query parameters.
    pub fn parse(call: &Call) -> Result<Create, NbiError> {
        let at = now();
        let spec = if call.body.iter().all(u8::is_ascii_whitespace) { None } else { Some(spec(&call.body, at)?) };
        let connection_request = call.params.contains_key("connection_request");
        if spec.is_none() && !connection_request {
            return Err(NbiError::Invalid(
                "a task (the body) or ?connection_request (a bare connection request) is required",
            ));
        }
        let timeout = match call.params.get("timeout") {
            None => ONLINE_THRESHOLD_MS,
            Some(t) => t.parse::<u64>().map_err(|_| NbiError::Invalid("timeout is a number of milliseconds"))?,
        };
        Ok(Create { spec, at, connection_request, timeout: Duration::from_millis(timeout) })
    }
}

/// Queues a task for `dev`; with a connection request, waits as GenieACS does: up to the
/// timeout for the device's session to start, then up to two minutes for the task to finish
/// (or the session to end). 200 with the task done; 202 with the reason phrase otherwise.
pub(crate) async fn create(nbi: &Arc<Nbi>, dev: &str, c: Create) -> Result<Reply, NbiError> {
    let store = nbi.acs.store.clone();
    let device = store.device(dev)?.ok_or_else(|| NbiError::NotFound(format!("no device {dev}")))?;
    let Some((mut order, terms)) = c.spec else {
        return wake(nbi, &device).await;
    };
    resolve_file(nbi, &mut order)?;
    let task = store.enqueue_with(dev, &order, &terms, c.at)?;
    tracing::info!(device = %dev, task = task.id, "task queued");
    if !c.connection_request {
        return Ok(json_response(StatusCode::ACCEPTED, &task_json(&task, None)));
    }
    let started = tokio::time::Instant::now();
    // Whether a connection request went out (else: the open session was to take the task).
    let mut woken = true;
    if nbi.acs.in_session(dev) {
        woken = false;
        // No need to wake it (and at its first session the ACS may not hold its
        // connection-request credentials yet): the open session takes the task.
        tracing::info!(device = %dev, task = task.id, "device in session: no connection request needed");
    } else if let Err(e) = nbi.acs.connection_request(&device, nbi.config.cr_timeout.min(c.timeout)).await {
        tracing::warn!(device = %dev, "connection request failed: {e}");
        let mut r = json_response(StatusCode::ACCEPTED, &task_json(&task, None));
        if let Ok(v) = HeaderValue::from_str(&e.to_string()) {
            r.headers_mut().insert("x-connection-request-error", v);
        }
        return Ok(with_reason(r, &e.to_string()));
    }
    // The session must start within the timeout, then the task finish within two minutes.
    let mut deadline = started + if woken { c.timeout } else { SESSION_END_WAIT };
    // Seen in session already when no request went out: a session that ends before the first
    // look below is still seen ending (and the device woken for the task).
    let mut in_session = !woken;
    loop {
        let notified = nbi.acs.task_events.notified();
        let Some(t) = store.task(task.id)? else {
            // Gone (expired, replaced by its uniqueKey, deleted) without a fault: GenieACS
            // answers 200 with the task as inserted, as it deletes a task once done.
            tracing::info!(device = %dev, task = task.id, "the task is gone: answered as done, as GenieACS does");
            return Ok(json_response(StatusCode::OK, &task_json(&task, None)));
        };
        match t.status {
            TaskStatus::Done => return Ok(json_response(StatusCode::OK, &task_json(&t, None))),
            TaskStatus::Fault => {
                let fault = store.faults()?.into_iter().find(|f| f.task == Some(t.id));
                return Ok(with_reason(json_response(StatusCode::ACCEPTED, &task_json(&t, fault.as_ref())), FAULTED));
            }
            TaskStatus::Pending | TaskStatus::Sent => {}
        }
        let now_in_session = nbi.acs.in_session(dev);
        if now_in_session && !in_session {
            in_session = true;
            deadline = tokio::time::Instant::now() + SESSION_END_WAIT;
        } else if in_session && !now_in_session {
            // The session ended with the task still open: read it once more, the session may
            // have just done it.
            let t = store.task(task.id)?.unwrap_or_else(|| t.clone());
            if matches!(t.status, TaskStatus::Done | TaskStatus::Fault) {
                continue;
            }
            if t.status == TaskStatus::Pending && t.attempts == 0 && !woken {
                // The session ended before it took the task (it was ending when the task came):
                // the device is woken for it now, as it would have been.
                woken = true;
                in_session = false;
                deadline = tokio::time::Instant::now() + c.timeout;
                if let Err(e) = nbi.acs.connection_request(&device, nbi.config.cr_timeout.min(c.timeout)).await {
                    tracing::warn!(device = %dev, "connection request failed: {e}");
                    return Ok(with_reason(json_response(StatusCode::ACCEPTED, &task_json(&t, None)), &e.to_string()));
                }
            } else if t.status == TaskStatus::Sent && t.result.is_some() {
                // Accepted, its TransferComplete to come: a CPE sends it in a session of its
                // own at once, so the call waits for that one, within its timeout again.
                in_session = false;
                deadline = tokio::time::Instant::now() + c.timeout;
            } else {
                return Ok(with_reason(json_response(StatusCode::ACCEPTED, &task_json(&t, None)), NOT_PROCESSED));
            }
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Ok(with_reason(json_response(StatusCode::ACCEPTED, &task_json(&t, None)), NOT_PROCESSED));
        }
        // Sessions starting and ending are not announced: look again at least every 50 ms.
        let _ = tokio::time::timeout((deadline - now).min(Duration::from_millis(50)), notified).await;
    }
}

/// A bare connection request (`POST /devices/{id}/tasks?connection_request` without a body):
/// 200 once the device accepted it (or is in a session already), 504 with the reason otherwise.
async fn wake(nbi: &Nbi, device: &crate::store::Device) -> Result<Reply, NbiError> {
    if nbi.acs.in_session(&device.id) {
        return Ok(done());
    }
    match nbi.acs.connection_request(device, nbi.config.cr_timeout).await {
        Ok(()) => {
            tracing::info!(device = %device.id, "connection request sent");
            Ok(done())
        }
        Err(e) => {
            tracing::warn!(device = %device.id, "connection request failed: {e}");
            let mut r = json_response(StatusCode::GATEWAY_TIMEOUT, &json!({"error": e.to_string()}));
            if let Ok(v) = HeaderValue::from_str(&e.to_string()) {
                r.headers_mut().insert("x-connection-request-error", v);
            }
            Ok(with_reason(r, &e.to_string()))
        }
    }
}

/// `GET /tasks`: the query and the paging of the listing.
pub(crate) struct Listing(HashMap<String, String>);

impl Listing {
    /// From the query parameters (checked when the listing is answered).
    pub fn parse(params: &HashMap<String, String>) -> Listing {
        Listing(params.clone())
    }
}

/// `GET /tasks`: the tasks not done, with their `status` (`pending`, `sent`, `fault`), as
/// GenieACS lists them (it deletes a task once done, so an OSS takes "gone" for "done"). A
/// query that names `status` (anywhere in it) sees every status, done tasks with their
/// `result` too.
pub(crate) fn list(nbi: &Nbi, l: Listing) -> Result<Reply, NbiError> {
    let query = collection::query(&l.0)?;
    let every_status = names_field(&query, "status");
    let faults = nbi.acs.store.faults()?;
    let device = query.get("device").and_then(Json::as_str);
    let docs = nbi
        .acs
        .store
        .tasks(device)?
        .iter()
        .filter(|t| every_status || t.status != TaskStatus::Done)
        .map(|t| task_json(t, faults.iter().find(|f| f.task == Some(t.id))))
        .collect();
    collection::answer(&l.0, docs)
}

/// Whether a query names `field`: at its top level or inside `$and`, `$or`, `$nor`.
fn names_field(query: &Json, field: &str) -> bool {
    match query {
        Json::Object(m) => m.iter().any(|(k, v)| {
            k == field
                || matches!(k.as_str(), "$and" | "$or" | "$nor")
                    && v.as_array().is_some_and(|a| a.iter().any(|q| names_field(q, field)))
        }),
        _ => false,
    }
}

/// `POST /tasks?query=`: one task for every device the query matches.
pub(crate) struct Bulk {
    query: Json,
    spec: Order,
    terms: Terms,
    /// The tasks' timestamp (Unix seconds).
    at: i64,
}

impl Bulk {
    /// From `?query=` and the body.
    pub fn parse(call: &Call) -> Result<Bulk, NbiError> {
        let Some(q) = call.params.get("query") else {
            return Err(NbiError::Invalid("a bulk task needs ?query= naming the devices"));
        };
        let query = parse_json("query", q.as_bytes())?;
        let at = now();
        let (spec, terms) = spec(&call.body, at)?;
        Ok(Bulk { query, spec, terms, at })
    }
}

/// Queues the task for every matching device.
pub(crate) async fn bulk(nbi: &Arc<Nbi>, mut b: Bulk) -> Result<Reply, NbiError> {
    resolve_file(nbi, &mut b.spec)?;
    let store = nbi.acs.store.clone();
    // Parsed once (a bad query is a 400 before anything is queued); the devices with their
    // lifecycle (`_registered`, `_lastBoot`, `_lastBootstrap`), their parameters and path
    // information (`_writable`, ...) only when the query reads them.
    let q = query::Query::parse(&b.query)?;
    blocking(move || {
        let mut ids = Vec::new();
        for (d, life) in store.device_records()? {
            let ps = if q.needs_params() { store.params(&d.id)? } else { Vec::new() };
            let info = if q.needs_path_info() { store.path_info(&d.id)? } else { Vec::new() };
            if q.matches_full(&query::Record { device: &d, life: &life, params: &ps }.with_info(&info)) {
                let t = store.enqueue_with(&d.id, &b.spec, &b.terms, b.at)?;
                ids.push(json!({"_id": t.id.to_string(), "device": d.id}));
            }
        }
        tracing::info!(count = ids.len(), "bulk task queued");
        Ok(json_response(StatusCode::OK, &json!({"tasks": ids})))
    })
    .await
}

/// Deletes a task and its fault (404 if there is no such task, as GenieACS answers).
pub(crate) fn delete(nbi: &Nbi, id: i64) -> Result<Reply, NbiError> {
    if nbi.acs.store.delete_task(id)? {
        Ok(done())
    } else {
        Err(NbiError::NotFound(format!("no task {id}")))
    }
}

/// Retries a task at the next session: drops its fault (GenieACS's retry), and runs it again.
/// 200 for a task still to run, faulted or not; 404 for one done or not there (GenieACS has
/// deleted a done task).
pub(crate) fn retry(nbi: &Nbi, id: i64) -> Result<Reply, NbiError> {
    if nbi.acs.store.retry_task(id)? {
        Ok(done())
    } else {
        Err(NbiError::NotFound(format!("no task {id} to retry (not there, or done)")))
    }
}

/// `GET` of a collection of records as GenieACS answers it: `query` (MongoDB's language:
/// equality, dotted paths, `$and`, `$or`, `$nor`, `$not`, `$eq`, `$ne`, `$gt`, `$gte`, `$lt`,
/// `$lte`, `$in`, `$nin`, `$exists`, `$regex` as a prefix/suffix/substring pattern), `sort`
/// (`{"field": 1 | -1}`), `skip`, `limit`, `projection` (comma-separated fields) and the
/// `total` header (the count before skip and limit).
pub(crate) mod collection {
    use std::cmp::Ordering;
    use std::collections::HashMap;

    use hyper::header::HeaderValue;
    use hyper::StatusCode;
    use serde_json::{Map, Value as Json};

    use super::super::{json_response, parse_json, NbiError, Reply};

    /// The `query` parameter (`{}` when absent).
    pub fn query(params: &HashMap<String, String>) -> Result<Json, NbiError> {
        match params.get("query") {
            None => Ok(Json::Object(Map::new())),
            Some(q) => {
                let q: Json = parse_json("query", q.as_bytes())?;
                if !q.is_object() {
                    return Err(NbiError::Invalid("a query is a JSON object"));
                }
                Ok(q)
            }
        }
    }

    /// The records matching the parameters, sorted, paged and projected, with `total`.
    pub fn answer(params: &HashMap<String, String>, docs: Vec<Json>) -> Result<Reply, NbiError> {
        let q = query(params)?;
        let mut hits = Vec::new();
        for d in docs {
            if matches(&d, &q)? {
                hits.push(d);
            }
        }
        if let Some(s) = params.get("sort") {
            let InOrder(fields) = parse_json("sort", s.as_bytes())?;
            let keys: Vec<(String, bool)> = fields
                .into_iter()
                .map(|(k, v)| match v.as_i64() {
                    Some(1) => Ok((k, true)),
                    Some(-1) => Ok((k, false)),
                    _ => Err(NbiError::Invalid("sort gives each field 1 or -1")),
                })
                .collect::<Result<_, _>>()?;
            hits.sort_by(|a, b| {
                keys.iter()
                    .map(|(k, asc)| {
                        let o = order(get(a, k), get(b, k));
                        if *asc {
                            o
                        } else {
                            o.reverse()
                        }
                    })
                    .find(|o| *o != Ordering::Equal)
                    .unwrap_or(Ordering::Equal)
            });
        }
        let total = hits.len();
        let number = |name: &str, what: &'static str| -> Result<Option<usize>, NbiError> {
            params.get(name).map(|v| v.parse::<usize>().map_err(|_| NbiError::Invalid(what))).transpose()
        };
        let skip = number("skip", "skip is a number")?.unwrap_or(0);
        let limit = number("limit", "limit is a number")?.filter(|l| *l > 0).unwrap_or(usize::MAX);
        let projection: Option<Vec<&str>> =
            params.get("projection").map(|p| p.split(',').map(str::trim).filter(|p| !p.is_empty()).collect());
        let page: Vec<Json> = hits
            .into_iter()
            .skip(skip)
            .take(limit)
            .map(|d| match &projection {
                Some(fields) => project(&d, fields),
                None => d,
            })
            .collect();
        let mut r = json_response(StatusCode::OK, &Json::Array(page));
        r.headers_mut().insert("total", HeaderValue::from(total));
        Ok(r)
    }

    /// A JSON object's fields in the order written (the first sort key decides first).
    struct InOrder(Vec<(String, Json)>);

    impl<'de> serde::Deserialize<'de> for InOrder {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<InOrder, D::Error> {
            struct Fields;
            impl<'de> serde::de::Visitor<'de> for Fields {
                type Value = InOrder;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("an object of fields and 1 or -1")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<InOrder, A::Error> {
                    let mut out = Vec::new();
                    while let Some(kv) = m.next_entry::<String, Json>()? {
                        out.push(kv);
                    }
                    Ok(InOrder(out))
                }
            }
            d.deserialize_map(Fields)
        }
    }

    /// The fields named (and `_id`, as MongoDB keeps it).
    fn project(d: &Json, fields: &[&str]) -> Json {
        let mut out = Map::new();
        for f in std::iter::once(&"_id").chain(fields) {
            if let Some(v) = get(d, f) {
                let mut at = &mut out;
                let parts: Vec<&str> = f.split('.').collect();
                for p in &parts[..parts.len() - 1] {
                    let next = at.entry(p.to_string()).or_insert_with(|| Json::Object(Map::new()));
                    if !next.is_object() {
                        *next = Json::Object(Map::new());
                    }
                    let Json::Object(m) = next else { unreachable!("made an object just above") };
                    at = m;
                }
                at.insert(parts[parts.len() - 1].to_string(), v.clone());
            }
        }
        Json::Object(out)
    }

    /// The value at a dotted path.
    fn get<'a>(d: &'a Json, path: &str) -> Option<&'a Json> {
        path.split('.').try_fold(d, |v, k| match v {
            Json::Object(m) => m.get(k),
            Json::Array(a) => k.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        })
    }

    /// Milliseconds since the epoch of a date as GenieACS's queries give it: a number (ms) or
    /// text (ISO 8601, or `2017-12-11 13:16:23 +0000`).
    fn millis(v: &Json) -> Option<i64> {
        match v {
            Json::Number(n) => n.as_i64(),
            Json::String(s) => {
                let s = s.trim();
                let (date_time, zone) = match s.rsplit_once(' ') {
                    Some((dt, z)) if z.starts_with(['+', '-']) && z.len() == 5 => {
                        (dt.to_string(), format!("{}:{}", &z[..3], &z[3..]))
                    }
                    _ => (s.to_string(), String::new()),
                };
                let text = format!("{}{zone}", date_time.replacen(' ', "T", 1));
                let text = if zone.is_empty() && !text.ends_with('Z') && text.len() == 19 { text + "Z" } else { text };
                let dt = cwmp::DateTime::parse(&text)?;
                let secs = dt.to_unix()?;
                let frac = text
                    .split_once('.')
                    .map(|(_, f)| f.chars().take_while(char::is_ascii_digit).take(3).collect::<String>())
                    .map(|f| format!("{f:0<3}").parse::<i64>().unwrap_or(0))
                    .unwrap_or(0);
                Some(secs * 1000 + frac)
            }
            _ => None,
        }
    }

    /// The order of two values: numbers, dates (text that reads as one, against a number or
    /// another date), text; absent first.
    fn order(a: Option<&Json>, b: Option<&Json>) -> Ordering {
        match (a, b) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(a), Some(b)) => compare(a, b).unwrap_or(Ordering::Equal),
        }
    }

    fn compare(a: &Json, b: &Json) -> Option<Ordering> {
        match (a, b) {
            (Json::Number(x), Json::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
            (Json::String(x), Json::String(y)) => match (millis(a), millis(b)) {
                (Some(x), Some(y)) => Some(x.cmp(&y)),
                _ => Some(x.cmp(y)),
            },
            (Json::String(_), Json::Number(_)) | (Json::Number(_), Json::String(_)) => {
                Some(millis(a)?.cmp(&millis(b)?))
            }
            (Json::Bool(x), Json::Bool(y)) => Some(x.cmp(y)),
            _ => None,
        }
    }

    fn equal(a: &Json, b: &Json) -> bool {
        a == b
            || compare(a, b) == Some(Ordering::Equal) && (a.is_number() || b.is_number())
            || match a {
                // A field holding a list matches a value it holds, as in MongoDB.
                Json::Array(items) => !b.is_array() && items.iter().any(|i| i == b),
                _ => false,
            }
    }

    /// Whether record `d` matches query `q`; an operator the ACS does not know is an error.
    pub fn matches(d: &Json, q: &Json) -> Result<bool, NbiError> {
        let Some(m) = q.as_object() else { return Err(NbiError::Invalid("a query is a JSON object")) };
        for (k, cond) in m {
            let ok = match k.as_str() {
                "$and" | "$or" | "$nor" => {
                    let parts =
                        cond.as_array().ok_or_else(|| NbiError::Bad(format!("{k} takes an array of queries")))?;
                    let mut results = Vec::with_capacity(parts.len());
                    for p in parts {
                        results.push(matches(d, p)?);
                    }
                    match k.as_str() {
                        "$and" => results.iter().all(|r| *r),
                        "$or" => results.iter().any(|r| *r),
                        _ => !results.iter().any(|r| *r),
                    }
                }
                op if op.starts_with('$') => return Err(NbiError::Bad(format!("unsupported operator {op}"))),
                path => field_matches(get(d, path), cond)?,
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn field_matches(v: Option<&Json>, cond: &Json) -> Result<bool, NbiError> {
        let ops = match cond.as_object() {
            Some(m) if m.keys().next().is_some_and(|k| k.starts_with('$')) => m,
            _ => return Ok(v.is_some_and(|v| equal(v, cond)) || (v.is_none() && cond.is_null())),
        };
        for (op, arg) in ops {
            let cmp = |want: &[Ordering]| v.and_then(|v| compare(v, arg)).is_some_and(|o| want.contains(&o));
            let ok = match op.as_str() {
                "$eq" => v.is_some_and(|v| equal(v, arg)) || (v.is_none() && arg.is_null()),
                "$ne" => !(v.is_some_and(|v| equal(v, arg)) || (v.is_none() && arg.is_null())),
                "$gt" => cmp(&[Ordering::Greater]),
                "$gte" => cmp(&[Ordering::Greater, Ordering::Equal]),
                "$lt" => cmp(&[Ordering::Less]),
                "$lte" => cmp(&[Ordering::Less, Ordering::Equal]),
                "$in" | "$nin" => {
                    let list = arg.as_array().ok_or_else(|| NbiError::Bad(format!("{op} takes an array")))?;
                    let found = list.iter().any(|a| v.is_some_and(|v| equal(v, a)) || (v.is_none() && a.is_null()));
                    found == (op == "$in")
                }
                "$exists" => v.is_some() == arg.as_bool().unwrap_or(true),
                "$not" => !field_matches(v, arg)?,
                "$regex" => {
                    let pattern = arg.as_str().ok_or_else(|| NbiError::Invalid("$regex takes a string"))?;
                    let insensitive = ops.get("$options").and_then(Json::as_str).is_some_and(|o| o.contains('i'));
                    v.and_then(Json::as_str).is_some_and(|s| regex_like(s, pattern, insensitive))
                }
                "$options" => true,
                other => return Err(NbiError::Bad(format!("unsupported operator {other}"))),
            };
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// `$regex` of the patterns GenieACS's clients send: `^prefix`, `suffix$`, `^whole$` and
    /// plain substrings of literal text (backslash escapes and `.*` honoured, `.` as any
    /// character); anything else (classes, groups, repetition) is taken literally.
    fn regex_like(s: &str, pattern: &str, insensitive: bool) -> bool {
        let (s, pattern) =
            if insensitive { (s.to_lowercase(), pattern.to_lowercase()) } else { (s.to_string(), pattern.to_string()) };
        let anchored_start = pattern.starts_with('^');
        let anchored_end = pattern.ends_with('$') && !pattern.ends_with("\\$");
        let body = &pattern[usize::from(anchored_start)..pattern.len() - usize::from(anchored_end)];
        // Pieces of literal text between `.*`, each a list of characters (None: any one).
        let mut pieces: Vec<Vec<Option<char>>> = vec![Vec::new()];
        let mut chars = body.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    if let (Some(n), Some(p)) = (chars.next(), pieces.last_mut()) {
                        p.push(Some(n));
                    }
                }
                '.' if chars.peek() == Some(&'*') => {
                    chars.next();
                    pieces.push(Vec::new());
                }
                c => {
                    if let Some(p) = pieces.last_mut() {
                        p.push(if c == '.' { None } else { Some(c) });
                    }
                }
            }
        }
        let text: Vec<char> = s.chars().collect();
        let fits = |at: usize, piece: &[Option<char>]| {
            at + piece.len() <= text.len() && piece.iter().enumerate().all(|(i, c)| c.is_none_or(|c| text[at + i] == c))
        };
        let n = pieces.len();
        let mut at = 0;
        for (i, piece) in pieces.iter().enumerate() {
            let first = i == 0;
            let last = i == n - 1;
            if first && anchored_start {
                if !fits(0, piece) {
                    return false;
                }
                at = piece.len();
                if last && anchored_end {
                    return at == text.len();
                }
                continue;
            }
            if last && anchored_end {
                let start = match text.len().checked_sub(piece.len()) {
                    Some(s) if s >= at => s,
                    _ => return false,
                };
                return fits(start, piece);
            }
            match (at..=text.len()).find(|&p| fits(p, piece)) {
                Some(p) => at = p + piece.len(),
                None => return false,
            }
        }
        true
    }

    #[cfg(test)]
    mod tests {
        use serde_json::json;

        use super::*;

        #[test]
        fn queries_match_as_mongodb_does() {
            let task = json!({"_id": "7", "device": "00A0B1-X-1", "name": "reboot",
                              "timestamp": "2024-05-01T10:00:00Z", "retries": 2, "tags": ["a", "b"],
                              "metadata": {"fileType": "1 Firmware Upgrade Image"}});
            let yes = |q: serde_json::Value| matches(&task, &q).expect("a query it knows");
            assert!(yes(json!({"device": "00A0B1-X-1", "name": "reboot"})));
            assert!(!yes(json!({"device": "00A0B1-X-2"})));
            assert!(yes(json!({"_id": "7"})));
            assert!(yes(json!({"metadata.fileType": "1 Firmware Upgrade Image"})));
            assert!(yes(json!({"tags": "b"})), "a list holds the value");
            assert!(yes(json!({"retries": {"$gte": 2, "$lt": 3}})));
            assert!(yes(json!({"$or": [{"name": "x"}, {"retries": {"$in": [1, 2]}}]})));
            assert!(!yes(json!({"$and": [{"name": "reboot"}, {"retries": {"$ne": 2}}]})));
            assert!(yes(json!({"expiry": {"$exists": false}, "name": {"$nin": ["download"]}})));
            // Dates compare as dates: milliseconds, ISO text, GenieACS's own form.
            assert!(yes(json!({"timestamp": {"$gt": 1714557599000_i64}})));
            assert!(!yes(json!({"timestamp": {"$gt": 1714557600000_i64}})));
            assert!(yes(json!({"timestamp": {"$lt": "2024-05-01 10:00:01 +0000"}})));
            assert!(yes(json!({"timestamp": {"$gte": "2024-05-01T12:00:00+02:00"}})));
            assert!(yes(json!({"device": {"$regex": "^00A0B1-"}})));
            assert!(yes(json!({"device": {"$regex": "x-1$", "$options": "i"}})));
            assert!(yes(json!({"device": {"$regex": "^00.*-1$"}})));
            assert!(!yes(json!({"device": {"$regex": "^X"}})));
            let e = matches(&task, &json!({"name": {"$where": "1"}})).expect_err("unknown operator");
            assert_eq!(e.to_string(), "unsupported operator $where");
        }

        #[test]
        fn listings_sort_page_project_and_count() {
            let docs: Vec<Json> = (0..5).map(|i| json!({"_id": i.to_string(), "n": i % 3, "x": {"y": i}})).collect();
            let params = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let r = answer(
                &params(&[
                    ("query", "{\"n\": {\"$lt\": 2}}"),
                    ("sort", "{\"n\": -1, \"_id\": 1}"),
                    ("skip", "1"),
                    ("limit", "2"),
                    ("projection", "x.y"),
                ]),
                docs.clone(),
            )
            .expect("answered");
            assert_eq!(r.headers().get("total").map(|v| v.as_bytes()), Some(&b"4"[..]));
            let body = futures_body(r);
            assert_eq!(body, json!([{"_id": "4", "x": {"y": 4}}, {"_id": "0", "x": {"y": 0}}]));
            assert!(answer(&params(&[("skip", "-1")]), docs.clone()).is_err());
            assert!(answer(&params(&[("sort", "{\"n\": 2}")]), docs).is_err());
        }

        fn futures_body(r: Reply) -> Json {
            use http_body_util::BodyExt;
            let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            let bytes = rt.block_on(r.into_body().collect()).expect("body").to_bytes();
            serde_json::from_slice(&bytes).expect("JSON")
        }
    }
}
