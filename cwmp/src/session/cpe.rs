//! The CPE side of one CWMP session.
//!
//! ```text
//! SendInform ─▶ ExpectInformResponse ─▶ (own requests: ExpectRequestResponse)* ─▶ empty POST
//!   ─▶ ExpectAcsMessage ─request─▶ ExpectHostResponse ─respond()─▶ ExpectAcsMessage ─empty─▶ Done
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::SessionError;
use crate::{Body, CwmpVersion, Envelope, Fault, FaultCode, Header, Inform, Limits, Role};

/// What the CPE session needs to know.
#[derive(Debug, Clone)]
pub struct CpeConfig {
    /// Versions the CPE speaks; the newest decides the Inform's namespace.
    pub supported_versions: Vec<CwmpVersion>,
    /// Longest wait for the ACS between two messages.
    pub session_timeout: Duration,
    /// Limits on what the ACS sends.
    pub limits: Limits,
    /// Limits on what the CPE sends (an ACS's defaults: larger answers it would refuse, and the
    /// session with them). An answer over them is replaced by fault 9004 that says so.
    pub send_limits: Limits,
}

/// Fault 9004 for an answer too large to send: `why` says how large.
fn too_large(why: &str) -> Body {
    Body::Fault(Fault::with_string(
        FaultCode::ResourcesExceeded,
        format!("the answer would hold {why}; ask for fewer parameters at a time (a narrower path)"),
    ))
}

impl Default for CpeConfig {
    fn default() -> Self {
        CpeConfig {
            supported_versions: CwmpVersion::ALL.to_vec(),
            session_timeout: Duration::from_secs(30),
            limits: Limits::default(),
            send_limits: Limits::default(),
        }
    }
}

/// The body of the next HTTP POST to the ACS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transmit {
    /// A SOAP envelope.
    Envelope(String),
    /// The empty POST: the CPE has nothing more to send.
    Empty,
}

/// What the session tells its host.
#[derive(Debug, Clone, PartialEq)]
pub enum CpeEvent {
    /// The ACS accepted the Inform: its events are delivered; the retry count resets.
    InformAccepted {
        /// The version used for the rest of the session.
        version: CwmpVersion,
    },
    /// A request from the ACS: carry it out and call [`CpeSession::respond`].
    Request(Body),
    /// The ACS answered one of the CPE's own requests (TransferComplete, ...).
    RequestAnswered {
        /// What the CPE sent.
        request: Body,
        /// The ACS's response or fault.
        response: Body,
    },
    /// The session ended normally. `unsent` are the CPE's requests HoldRequests kept back.
    Ended {
        /// Requests to send in a later session.
        unsent: Vec<Body>,
    },
    /// The session failed: retry after [`super::RetryPolicy::wait`].
    Failed(SessionError),
}

#[derive(Debug)]
enum State {
    SendInform,
    ExpectInformResponse,
    ExpectRequestResponse { request: Body },
    ExpectAcsMessage,
    ExpectHostResponse { id: Option<String> },
    Done,
}

/// One CWMP session, CPE role. Feed it HTTP responses; it says what to POST next.
#[derive(Debug)]
pub struct CpeSession {
    config: CpeConfig,
    state: State,
    version: CwmpVersion,
    inform: Option<Inform>,
    own_requests: VecDeque<Body>,
    hold_requests: bool,
    /// The CPE said it has nothing more (an empty POST); an empty answer then ends the session.
    sent_empty_post: bool,
    next_id: u64,
    transmit: Option<Transmit>,
    events: VecDeque<CpeEvent>,
    deadline: Option<Instant>,
}

impl CpeSession {
    /// A session that will open with `inform`; `own_requests` (TransferComplete, ...) follow it.
    pub fn new(config: CpeConfig, inform: Inform, own_requests: Vec<Body>, now: Instant) -> CpeSession {
        let version = config.supported_versions.iter().copied().max().unwrap_or(CwmpVersion::V1_0);
        let deadline = Some(now + config.session_timeout);
        CpeSession {
            config,
            state: State::SendInform,
            version,
            inform: Some(inform),
            own_requests: own_requests.into(),
            hold_requests: false,
            sent_empty_post: false,
            next_id: 1,
            transmit: None,
            events: VecDeque::new(),
            deadline,
        }
    }

    /// The version in use (the negotiated one once the InformResponse arrived).
    pub fn version(&self) -> CwmpVersion {
        self.version
    }

    /// Whether the session is over.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The next body to POST, if it is time to send one.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if let State::SendInform = self.state {
            let inform = self.inform.take()?;
            let id = self.fresh_id();
            let mut header = Header { id: Some(id.clone()), ..Header::default() };
            if self.version >= CwmpVersion::V1_4 {
                header.supported_cwmp_versions = Some(CwmpVersion::format_list(&self.config.supported_versions));
            }
            let env = Envelope { ns: self.version.namespace(), header, body: Body::Inform(inform) };
            self.state = State::ExpectInformResponse;
            return Some(Transmit::Envelope(env.encode()));
        }
        self.transmit.take()
    }

    /// The next event for the host.
    pub fn poll_event(&mut self) -> Option<CpeEvent> {
        self.events.pop_front()
    }

    /// When [`CpeSession::handle_timeout`] must be called, if at all.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Call at or after the deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| now >= d) && !self.is_done() {
            self.fail(SessionError::Timeout);
        }
    }

    /// Feeds the ACS's HTTP response to the last POST.
    pub fn handle_response(&mut self, status: u16, body: &[u8], now: Instant) {
        if self.is_done() {
            return;
        }
        if matches!(self.state, State::SendInform | State::ExpectHostResponse { .. }) {
            self.fail(SessionError::Misuse("handle_response while no POST is outstanding"));
            return;
        }
        self.deadline = Some(now + self.config.session_timeout);
        let empty = status == 204 || body.iter().all(u8::is_ascii_whitespace);
        if !empty && status != 200 {
            self.fail(SessionError::HttpStatus(status));
            return;
        }
        if status != 200 && status != 204 {
            self.fail(SessionError::HttpStatus(status));
            return;
        }
        let env = if empty {
            None
        } else {
            match Envelope::decode(body, &self.config.limits) {
                Ok(env) => Some(env),
                Err(err) => {
                    if let State::ExpectAcsMessage = self.state {
                        // An ACS request we cannot read still gets an answer: the fault it maps to.
                        let fault = Fault::with_string(err.fault_code(Role::Cpe), err.to_string());
                        self.send(None, Body::Fault(fault));
                        self.state = State::ExpectAcsMessage;
                        return;
                    }
                    self.fail(SessionError::Decode(err));
                    return;
                }
            }
        };
        let state = std::mem::replace(&mut self.state, State::Done);
        self.state = match (state, env) {
            (State::ExpectInformResponse, Some(env)) => match env.body {
                Body::InformResponse(_) => {
                    self.adopt_version(&env);
                    self.hold_requests = env.header.hold_requests.unwrap_or(false);
                    self.events.push_back(CpeEvent::InformAccepted { version: self.version });
                    self.next_post()
                }
                Body::Fault(f) => return self.fail(SessionError::Fault(f)),
                other => return self.unexpected("InformResponse", other.method_name()),
            },
            (State::ExpectInformResponse, None) => return self.unexpected("InformResponse", "empty response"),
            (State::ExpectRequestResponse { request, .. }, Some(env)) if env.body.is_response() => {
                self.hold_requests = env.header.hold_requests.unwrap_or(false);
                self.events.push_back(CpeEvent::RequestAnswered { request, response: env.body });
                self.next_post()
            }
            (State::ExpectRequestResponse { request, .. }, other) => {
                let got = other.map_or("empty response", |e| e.body.method_name());
                let _ = request;
                return self.unexpected("a response to the CPE's request", got);
            }
            (State::ExpectAcsMessage, None) => {
                if !self.hold_requests && !self.own_requests.is_empty() {
                    self.next_post()
                } else if self.sent_empty_post {
                    self.finish();
                    State::Done
                } else {
                    self.transmit = Some(Transmit::Empty);
                    self.sent_empty_post = true;
                    State::ExpectAcsMessage
                }
            }
            (State::ExpectAcsMessage, Some(env)) if !env.body.is_response() => {
                self.hold_requests = env.header.hold_requests.unwrap_or(false);
                self.events.push_back(CpeEvent::Request(env.body));
                State::ExpectHostResponse { id: env.header.id }
            }
            (State::ExpectAcsMessage, Some(env)) => {
                return self.unexpected("a request from the ACS", env.body.method_name())
            }
            (s @ (State::SendInform | State::ExpectHostResponse { .. } | State::Done), _) => s,
        };
    }

    /// The host's answer to the last [`CpeEvent::Request`] (a response or a `Body::Fault`).
    pub fn respond(&mut self, response: Body, now: Instant) -> Result<(), SessionError> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::ExpectHostResponse { id } => {
                let response = self.within_limits(response);
                self.send(id.clone(), response);
                let size = match &self.transmit {
                    Some(Transmit::Envelope(x)) => x.len(),
                    _ => 0,
                };
                let max = self.config.send_limits.max_body;
                if size > max {
                    let why = format!("{size} bytes, more than the {max} one message may carry");
                    self.send(id, too_large(&why));
                }
                self.state = State::ExpectAcsMessage;
                self.deadline = Some(now + self.config.session_timeout);
                Ok(())
            }
            other => {
                self.state = other;
                Err(SessionError::Misuse("respond without a pending ACS request"))
            }
        }
    }

    /// `response`, or fault 9004 when it has more items than an ACS takes (a GetParameterValues
    /// of a whole host of a thousand vRGWs, say): the ACS learns why, and the session goes on.
    /// ([`CpeSession::respond`] checks the encoded size the same way.)
    fn within_limits(&self, response: Body) -> Body {
        let max = &self.config.send_limits;
        let items = match &response {
            Body::GetParameterValuesResponse(r) => r.parameter_list.len(),
            Body::GetParameterNamesResponse(r) => r.parameter_list.len(),
            Body::GetParameterAttributesResponse(r) => r.parameter_list.len(),
            _ => 0,
        };
        if items > max.max_items {
            return too_large(&format!("{items} parameters, more than the {} one message may carry", max.max_items));
        }
        response
    }

    fn fresh_id(&mut self) -> String {
        let id = format!("cpe-{}", self.next_id);
        self.next_id += 1;
        id
    }

    fn send(&mut self, id: Option<String>, body: Body) {
        let env = Envelope::new(self.version.namespace(), id, body);
        self.transmit = Some(Transmit::Envelope(env.encode()));
    }

    /// Sends the CPE's next own request, or the empty POST.
    fn next_post(&mut self) -> State {
        if !self.hold_requests {
            if let Some(request) = self.own_requests.pop_front() {
                let id = self.fresh_id();
                self.send(Some(id), request.clone());
                return State::ExpectRequestResponse { request };
            }
        }
        self.transmit = Some(Transmit::Empty);
        self.sent_empty_post = true;
        State::ExpectAcsMessage
    }

    fn adopt_version(&mut self, env: &Envelope) {
        let offered = env.header.use_cwmp_version.as_deref().and_then(CwmpVersion::parse);
        self.version = match offered {
            Some(v) if self.config.supported_versions.contains(&v) => v,
            _ => {
                // No (usable) UseCWMPVersion: an older ACS; follow its namespace when lower.
                let theirs = CwmpVersion::from_namespace(env.ns);
                if theirs.namespace() < self.version.namespace() {
                    theirs
                } else {
                    self.version
                }
            }
        };
    }

    fn finish(&mut self) {
        self.deadline = None;
        let unsent = self.own_requests.drain(..).collect();
        self.events.push_back(CpeEvent::Ended { unsent });
    }

    fn unexpected(&mut self, expected: &'static str, got: &str) {
        self.fail(SessionError::Unexpected { expected, got: got.to_string() });
    }

    fn fail(&mut self, err: SessionError) {
        self.state = State::Done;
        self.deadline = None;
        self.transmit = None;
        self.events.push_back(CpeEvent::Failed(err));
    }
}
