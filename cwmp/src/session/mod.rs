//! Session state machines for both roles, with no sockets and no clock inside.
//!
//! - [`CpeSession`]: one CWMP session as the CPE sees it (Inform, the CPE's own requests, the
//!   empty POST, the ACS's requests answered by the host, HoldRequests).
//! - [`AcsSession`]: one CWMP session as the ACS sees it (Inform and version negotiation, the
//!   CPE's requests, queued requests and their responses, the 204 that ends it, the timeout).
//! - [`RetryPolicy`]: the wait before a CPE retries a failed session (TR-069 3.2.1.1).
//!
//! Time is passed in as [`std::time::Instant`]; randomness for the retry wait is passed in too.

mod acs;
mod cpe;
mod retry;

pub use acs::{AcsConfig, AcsEvent, AcsSession, Reply};
pub use cpe::{CpeConfig, CpeEvent, CpeSession, Transmit};
pub use retry::RetryPolicy;

/// Why a session ended without success.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The peer did not answer in time.
    #[error("session timed out")]
    Timeout,
    /// The peer's HTTP status was not 200 or 204.
    #[error("HTTP status {0}")]
    HttpStatus(u16),
    /// The peer's message could not be decoded.
    #[error("undecodable message: {0}")]
    Decode(#[from] crate::DecodeError),
    /// The peer answered with a SOAP fault where the session cannot go on.
    #[error("fault from peer: {0}")]
    Fault(crate::Fault),
    /// The peer sent a message that does not fit the session's state.
    #[error("unexpected {got} while waiting for {expected}")]
    Unexpected {
        /// What the session waited for.
        expected: &'static str,
        /// What came.
        got: String,
    },
    /// The host called the session out of turn (a bug in the host, not the peer).
    #[error("session misuse: {0}")]
    Misuse(&'static str),
    /// No CWMP version in common (ACS side: fault 8006 was sent).
    #[error("no CWMP version in common")]
    VersionIncompatible,
}
