//! The ACS side of one CWMP session.
//!
//! ```text
//! ExpectInform ─Inform─▶ ExpectCpeMessage ─CPE request─▶ (answered) ExpectCpeMessage
//!   ─empty POST─▶ [queued request] ExpectResponse ─response─▶ ... ─▶ 204 ─▶ Done
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::SessionError;
use crate::rpc::get_rpc_methods::GetRPCMethodsResponse;
use crate::{
    negotiate, AutonomousDUStateChangeCompleteResponse, AutonomousTransferCompleteResponse, Body, CwmpVersion,
    DUStateChangeCompleteResponse, Envelope, Fault, FaultCode, Header, Inform, InformResponse, KickedResponse, Limits,
    Quirks, RequestDownloadResponse, Role, TransferCompleteResponse,
};

/// What the ACS session needs to know.
#[derive(Debug, Clone)]
pub struct AcsConfig {
    /// Versions the ACS speaks.
    pub supported_versions: Vec<CwmpVersion>,
    /// Longest wait for the CPE between two POSTs.
    pub session_timeout: Duration,
    /// Limits on what the CPE sends.
    pub limits: Limits,
    /// Ask the CPE to hold its own requests (HoldRequests in the InformResponse).
    pub hold_requests: bool,
    /// Where a Kicked CPE's browser goes next.
    pub kicked_next_url: String,
    /// Read the CPE's messages with [`Envelope::decode_lenient`] (the default): known CPE
    /// deviations are accepted and reported by [`AcsSession::take_quirks`]. `false` reads them
    /// with the strict [`Envelope::decode`].
    pub lenient: bool,
}

impl Default for AcsConfig {
    fn default() -> Self {
        AcsConfig {
            supported_versions: CwmpVersion::ALL.to_vec(),
            session_timeout: Duration::from_secs(30),
            limits: Limits::default(),
            hold_requests: false,
            kicked_next_url: String::new(),
            lenient: true,
        }
    }
}

/// The HTTP response to send for the last POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// 200 with this SOAP envelope.
    Envelope(String),
    /// 204 No Content: the session ends.
    NoContent,
}

/// What the session tells its host.
#[derive(Debug, Clone, PartialEq)]
pub enum AcsEvent {
    /// The CPE opened the session. Queue requests with [`AcsSession::queue_request`].
    Inform {
        /// The Inform.
        inform: Box<Inform>,
        /// The negotiated version.
        version: CwmpVersion,
        /// The session timeout the CPE announced (CWMP 1.3+), if any.
        cpe_session_timeout: Option<u32>,
    },
    /// The CPE sent a request (TransferComplete, ...); it has been answered.
    CpeRequest(Body),
    /// The CPE answered a queued request (a response or a `Body::Fault`).
    Response {
        /// The request sent.
        request: Body,
        /// The CPE's answer.
        response: Body,
    },
    /// The session ended normally (204 sent).
    Ended,
    /// The session failed; `outstanding` is the request left without an answer, if any.
    Failed {
        /// Why.
        error: SessionError,
        /// The request sent but not answered.
        outstanding: Option<Body>,
    },
}

#[derive(Debug)]
enum State {
    ExpectInform,
    ExpectCpeMessage,
    ExpectResponse {
        request: Body,
    },
    /// The CPE may take requests; the reply is chosen in `poll_reply`, after the host has seen
    /// the events and queued what follows from them.
    ReadyForRequests,
    Done,
}

/// One CWMP session, ACS role. Feed it each POST; it says what to reply.
#[derive(Debug)]
pub struct AcsSession {
    config: AcsConfig,
    state: State,
    version: CwmpVersion,
    queue: VecDeque<Body>,
    next_id: u64,
    reply: Option<Reply>,
    events: VecDeque<AcsEvent>,
    deadline: Option<Instant>,
    quirks: Quirks,
}

impl AcsSession {
    /// A session waiting for its Inform.
    pub fn new(config: AcsConfig, now: Instant) -> AcsSession {
        let deadline = Some(now + config.session_timeout);
        AcsSession {
            config,
            state: State::ExpectInform,
            version: CwmpVersion::V1_0,
            queue: VecDeque::new(),
            next_id: 1,
            reply: None,
            events: VecDeque::new(),
            deadline,
            quirks: Quirks::default(),
        }
    }

    /// The negotiated version (1.0 until the Inform arrived).
    pub fn version(&self) -> CwmpVersion {
        self.version
    }

    /// Whether the session is over.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Queues a request to send once the CPE is ready for requests.
    pub fn queue_request(&mut self, request: Body) {
        self.queue.push_back(request);
    }

    /// Requests queued and not yet sent.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The deviations from CWMP the last message fed to [`AcsSession::handle_post`] was read
    /// through (empty for a clean message; see [`crate::quirk`]). The host logs them: the
    /// message itself was accepted.
    pub fn take_quirks(&mut self) -> Quirks {
        std::mem::take(&mut self.quirks)
    }

    /// The next event for the host.
    pub fn poll_event(&mut self) -> Option<AcsEvent> {
        self.events.pop_front()
    }

    /// When [`AcsSession::handle_timeout`] must be called, if at all.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Call at or after the deadline: the CPE went silent.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.deadline.is_some_and(|d| now >= d) && !self.is_done() {
            self.fail(SessionError::Timeout);
        }
    }

    /// The HTTP response for the last POST. Call after draining events, so that requests queued
    /// in answer to them (a follow-up step, the next task) are sent in this reply.
    pub fn poll_reply(&mut self) -> Option<Reply> {
        if let Some(r) = self.reply.take() {
            return Some(r);
        }
        if let State::ReadyForRequests = self.state {
            self.state = self.send_next();
        }
        self.reply.take()
    }

    /// Feeds one HTTP POST body from the CPE (empty for the empty POST).
    pub fn handle_post(&mut self, body: &[u8], now: Instant) {
        if self.is_done() {
            self.reply = Some(Reply::NoContent);
            return;
        }
        self.deadline = Some(now + self.config.session_timeout);
        self.quirks = Quirks::default();
        let empty = body.iter().all(u8::is_ascii_whitespace);
        let env = if empty {
            None
        } else {
            let decoded = if self.config.lenient {
                Envelope::decode_lenient(body, &self.config.limits).map(|d| {
                    self.quirks = d.quirks;
                    d.envelope
                })
            } else {
                Envelope::decode(body, &self.config.limits)
            };
            match decoded {
                Ok(env) => Some(env),
                Err(err) => {
                    let fault = Fault::with_string(err.fault_code(Role::Acs), err.to_string());
                    self.reply_with(None, Body::Fault(fault));
                    self.fail(SessionError::Decode(err));
                    return;
                }
            }
        };
        let state = std::mem::replace(&mut self.state, State::Done);
        self.state = match (state, env) {
            (State::ExpectInform, Some(env)) => match env.body {
                Body::Inform(inform) => {
                    let supported = env.header.supported_cwmp_versions.as_deref().map(CwmpVersion::parse_list);
                    match negotiate(env.ns, supported.as_deref(), &self.config.supported_versions) {
                        Some(version) => {
                            self.version = version;
                            let header = Header {
                                id: env.header.id.clone(),
                                hold_requests: self.config.hold_requests.then_some(true),
                                use_cwmp_version: supported.map(|_| version.as_str().to_string()),
                                ..Header::default()
                            };
                            self.reply = Some(Reply::Envelope(
                                Envelope {
                                    ns: version.namespace(),
                                    header,
                                    body: Body::InformResponse(InformResponse { max_envelopes: 1 }),
                                }
                                .encode(),
                            ));
                            self.events.push_back(AcsEvent::Inform {
                                inform: Box::new(inform),
                                version,
                                cpe_session_timeout: env.header.session_timeout,
                            });
                            State::ExpectCpeMessage
                        }
                        None => {
                            self.version = crate::CwmpVersion::from_namespace(env.ns);
                            self.reply_with(env.header.id, Body::Fault(Fault::new(FaultCode::AcsVersionIncompatible)));
                            self.fail(SessionError::VersionIncompatible);
                            return;
                        }
                    }
                }
                other => {
                    self.reply_with(
                        env.header.id,
                        Body::Fault(Fault::with_string(FaultCode::AcsRequestDenied, "a session starts with Inform")),
                    );
                    return self.unexpected("Inform", other.method_name());
                }
            },
            (State::ExpectInform, None) => {
                self.reply = Some(Reply::NoContent);
                return self.unexpected("Inform", "empty POST");
            }
            (State::ExpectCpeMessage, Some(env)) if !env.body.is_response() => {
                self.answer_cpe_request(env);
                State::ExpectCpeMessage
            }
            (State::ExpectCpeMessage, Some(env)) => {
                self.reply = Some(Reply::NoContent);
                return self.unexpected("a CPE request or the empty POST", env.body.method_name());
            }
            (State::ExpectCpeMessage, None) => State::ReadyForRequests,
            // One request is outstanding at a time, so the answer is matched by order even when
            // a CPE echoes a different cwmp:ID.
            (State::ExpectResponse { request, .. }, Some(env)) if env.body.is_response() => {
                self.events.push_back(AcsEvent::Response { request, response: env.body });
                State::ReadyForRequests
            }
            (State::ExpectResponse { request, .. }, other) => {
                let got = other.map_or("empty POST".to_string(), |e| e.body.method_name().to_string());
                self.reply = Some(Reply::NoContent);
                self.fail_with(
                    SessionError::Unexpected { expected: "a response to the ACS's request", got },
                    Some(request),
                );
                return;
            }
            (State::ReadyForRequests, _) => {
                self.reply = Some(Reply::NoContent);
                return self.fail(SessionError::Misuse("handle_post before poll_reply"));
            }
            (State::Done, _) => State::Done,
        };
    }

    fn answer_cpe_request(&mut self, env: Envelope) {
        let response = match &env.body {
            Body::TransferComplete(_) => Body::TransferCompleteResponse(TransferCompleteResponse {}),
            Body::AutonomousTransferComplete(_) => {
                Body::AutonomousTransferCompleteResponse(AutonomousTransferCompleteResponse {})
            }
            Body::DUStateChangeComplete(_) => Body::DUStateChangeCompleteResponse(DUStateChangeCompleteResponse {}),
            Body::AutonomousDUStateChangeComplete(_) => {
                Body::AutonomousDUStateChangeCompleteResponse(AutonomousDUStateChangeCompleteResponse {})
            }
            Body::RequestDownload(_) => Body::RequestDownloadResponse(RequestDownloadResponse {}),
            Body::Kicked(_) => Body::KickedResponse(KickedResponse { next_url: self.config.kicked_next_url.clone() }),
            Body::GetRPCMethods(_) => Body::GetRPCMethodsResponse(GetRPCMethodsResponse {
                method_list: [
                    "Inform",
                    "GetRPCMethods",
                    "TransferComplete",
                    "AutonomousTransferComplete",
                    "DUStateChangeComplete",
                    "AutonomousDUStateChangeComplete",
                    "RequestDownload",
                    "Kicked",
                ]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            }),
            other => Body::Fault(Fault::with_string(
                FaultCode::AcsMethodNotSupported,
                format!("{} is not a method the ACS serves", other.method_name()),
            )),
        };
        let is_fault = matches!(response, Body::Fault(_));
        self.reply_with(env.header.id, response);
        if !is_fault {
            self.events.push_back(AcsEvent::CpeRequest(env.body));
        }
    }

    fn send_next(&mut self) -> State {
        match self.queue.pop_front() {
            Some(request) => {
                let id = format!("acs-{}", self.next_id);
                self.next_id += 1;
                self.reply_with(Some(id), request.clone());
                State::ExpectResponse { request }
            }
            None => {
                self.reply = Some(Reply::NoContent);
                self.deadline = None;
                self.events.push_back(AcsEvent::Ended);
                State::Done
            }
        }
    }

    fn reply_with(&mut self, id: Option<String>, body: Body) {
        let env = Envelope::new(self.version.namespace(), id, body);
        self.reply = Some(Reply::Envelope(env.encode()));
    }

    fn unexpected(&mut self, expected: &'static str, got: &str) {
        self.fail(SessionError::Unexpected { expected, got: got.to_string() });
    }

    fn fail(&mut self, error: SessionError) {
        let outstanding = match std::mem::replace(&mut self.state, State::Done) {
            State::ExpectResponse { request, .. } => Some(request),
            _ => None,
        };
        self.fail_with(error, outstanding);
    }

    fn fail_with(&mut self, error: SessionError, outstanding: Option<Body>) {
        self.state = State::Done;
        self.deadline = None;
        self.events.push_back(AcsEvent::Failed { error, outstanding });
    }
}
