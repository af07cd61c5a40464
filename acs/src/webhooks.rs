//! Webhooks: device events (each Inform event code), the methods a CPE calls that CWMP gives a
//! meaning (`RequestDownload`, `AutonomousTransferComplete`, `DUStateChangeComplete`,
//! `AutonomousDUStateChangeComplete`, with their content) and task outcomes (`task.done`,
//! `task.fault`) POSTed as JSON to configured URLs, each delivery retried with backoff.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use serde::Serialize;
use tokio::sync::mpsc;

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Device id.
    pub device: String,
    /// Inform event code, the CPE's method, or `task.done` / `task.fault`.
    pub event: String,
    /// The task, for task events.
    pub task: Option<i64>,
    /// ISO time.
    pub time: String,
    /// What a CPE's method carried, under CWMP's names (`{"FileType": ...}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

impl Event {
    /// A device event.
    pub fn device(device: &str, code: &str, at: i64) -> Event {
        Event { device: device.into(), event: code.into(), task: None, time: crate::query::iso(at), detail: None }
    }
    /// A method the CPE called, with its content.
    pub fn cpe_request(device: &str, method: &str, detail: serde_json::Value, at: i64) -> Event {
        Event {
            device: device.into(),
            event: method.into(),
            task: None,
            time: crate::query::iso(at),
            detail: Some(detail),
        }
    }
    /// A task event.
    pub fn task(device: &str, what: &str, task: i64, at: i64) -> Event {
        Event { device: device.into(), event: what.into(), task: Some(task), time: crate::query::iso(at), detail: None }
    }
}

/// A webhook: where, and which events (empty: all).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct Hook {
    /// Where to POST.
    pub url: String,
    #[serde(default)]
    /// Event names to send (empty: all).
    pub events: Vec<String>,
}

/// The sending side, cheap to clone; sends nothing when no hooks are configured.
#[derive(Clone)]
pub struct Sender(Option<mpsc::UnboundedSender<Event>>);

impl Sender {
    /// A sender that drops every event.
    pub fn none() -> Sender {
        Sender(None)
    }
    /// Queues an event for delivery.
    pub fn send(&self, e: Event) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(e);
        }
    }
}

/// Attempts per delivery.
pub const ATTEMPTS: u32 = 5;

/// Starts the dispatcher on the current runtime; returns the sender to give the ACS.
pub fn start(hooks: Vec<Hook>) -> Sender {
    if hooks.is_empty() {
        return Sender::none();
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
    tokio::spawn(async move {
        let client = http_shell::client::Builder::new().timeout(Duration::from_secs(5)).build();
        while let Some(ev) = rx.recv().await {
            for h in hooks.iter().filter(|h| h.events.is_empty() || h.events.contains(&ev.event)) {
                let (client, url, body) =
                    (client.clone(), h.url.clone(), serde_json::to_string(&ev).unwrap_or_default());
                tokio::spawn(async move {
                    for attempt in 0..ATTEMPTS {
                        let req = Request::post(&url)
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from(body.clone())));
                        let ok = match req {
                            Ok(r) => {
                                matches!(client.send(r).await, Ok(resp) if resp.status().is_success())
                            }
                            Err(_) => false,
                        };
                        if ok {
                            return;
                        }
                        let wait = Duration::from_millis(200 << attempt);
                        tracing::warn!(%url, attempt = attempt + 1, "webhook delivery failed; retrying in {wait:?}");
                        tokio::time::sleep(wait).await;
                    }
                    tracing::error!(%url, "webhook delivery failed {ATTEMPTS} times; event dropped: {body}");
                });
            }
        }
    });
    Sender(Some(tx))
}
