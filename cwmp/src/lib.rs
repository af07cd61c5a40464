//! CWMP (TR-069) 1.0 to 1.4: typed messages, a tolerant SOAP codec, and sans-IO session logic.
//!
//! # Layout
//! - [`envelope`]: [`Envelope`], [`Header`], [`Body`]; `Envelope::decode` (strict),
//!   `Envelope::decode_lenient` (the ACS reading CPEs: known deviations read and reported as
//!   [`quirk`]s) and `Envelope::encode` (always strict).
//! - [`rpc`]: one module per method, the request and its response (`rpc::inform`, ...).
//! - [`types`]: argument structures shared by several methods; [`value`]: typed values.
//! - [`fault`]: fault codes and the SOAP Fault; [`error`]: decode errors and the fault they map to.
//! - [`ns`]: namespaces, versions and their negotiation.
//! - [`session`]: the CPE and ACS session state machines and the TR-069 retry wait.
//!
//! # I/O contract
//! Nothing here opens a socket or reads a clock. A host program:
//! 1. receives an HTTP body and calls [`Envelope::decode`] (a CPE reading its ACS) or
//!    [`Envelope::decode_lenient`] (an ACS reading a CPE; [`AcsSession`](session::AcsSession)
//!    does, and hands the [`Quirks`] to `take_quirks`); an empty body is the empty POST;
//! 2. feeds the envelope and the current time to a [`session::CpeSession`] or
//!    [`session::AcsSession`];
//! 3. asks the session what to send (`poll_transmit`), what to run locally (`poll_request`), and
//!    when it next needs waking (`deadline`), then calls `handle_timeout` at that time.

pub mod auth;
pub mod envelope;
pub mod error;
pub mod fault;
#[doc(hidden)]
pub mod fuzzing;
pub mod ns;
pub mod quirk;
pub mod rpc;
pub mod session;
pub mod types;
pub mod value;
mod xml;

pub use envelope::{Body, Decoded, Envelope, Header};
pub use error::{DecodeError, DecodeErrorKind, Role};
pub use fault::{Fault, FaultCode, ParameterFault};
pub use ns::{negotiate, CwmpNs, CwmpVersion};
pub use quirk::{Quirk, QuirkKind, Quirks};
pub use types::*;
pub use value::{DateTime, Value, ValueError, XsdType};
pub use xml::{name_segments, Limits, MAX_ITEMS, MAX_NAME_BYTES, MAX_NAME_SEGMENTS};

pub use rpc::add_object::{AddObject, AddObjectResponse};
pub use rpc::autonomous_du_state_change_complete::{
    AutonOpResult, AutonomousDUStateChangeComplete, AutonomousDUStateChangeCompleteResponse,
};
pub use rpc::autonomous_transfer_complete::{AutonomousTransferComplete, AutonomousTransferCompleteResponse};
pub use rpc::cancel_transfer::{CancelTransfer, CancelTransferResponse};
pub use rpc::change_du_state::{ChangeDUState, ChangeDUStateResponse};
pub use rpc::delete_object::{DeleteObject, DeleteObjectResponse};
pub use rpc::download::{Download, DownloadResponse};
pub use rpc::du_state_change_complete::{DUStateChangeComplete, DUStateChangeCompleteResponse};
pub use rpc::factory_reset::{FactoryReset, FactoryResetResponse};
pub use rpc::get_all_queued_transfers::{GetAllQueuedTransfers, GetAllQueuedTransfersResponse};
pub use rpc::get_options::{GetOptions, GetOptionsResponse, OptionInfo};
pub use rpc::get_parameter_attributes::{GetParameterAttributes, GetParameterAttributesResponse};
pub use rpc::get_parameter_names::{GetParameterNames, GetParameterNamesResponse};
pub use rpc::get_parameter_values::{GetParameterValues, GetParameterValuesResponse};
pub use rpc::get_queued_transfers::{GetQueuedTransfers, GetQueuedTransfersResponse};
pub use rpc::get_rpc_methods::{GetRPCMethods, GetRPCMethodsResponse};
pub use rpc::inform::{Inform, InformResponse};
pub use rpc::kicked::{Kicked, KickedResponse};
pub use rpc::reboot::{Reboot, RebootResponse};
pub use rpc::request_download::{RequestDownload, RequestDownloadResponse};
pub use rpc::schedule_download::{ScheduleDownload, ScheduleDownloadResponse};
pub use rpc::schedule_inform::{ScheduleInform, ScheduleInformResponse};
pub use rpc::set_parameter_attributes::{SetParameterAttributes, SetParameterAttributesResponse};
pub use rpc::set_parameter_values::{SetParameterValues, SetParameterValuesResponse};
pub use rpc::set_vouchers::{SetVouchers, SetVouchersResponse};
pub use rpc::transfer_complete::{TransferComplete, TransferCompleteResponse};
pub use rpc::upload::{Upload, UploadResponse};
