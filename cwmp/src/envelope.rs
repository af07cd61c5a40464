//! The SOAP envelope: header elements, the Body's message, and the decode/encode entry points.

use serde::Serialize;

use crate::error::{DecodeError, DecodeErrorKind};
use crate::fault::Fault;
use crate::ns::{CwmpNs, SOAP_ENC, SOAP_ENV, XSD, XSI};
use crate::quirk::{QuirkKind, Quirks};
use crate::rpc::Rpc;
use crate::xml::{to_utf8, to_utf8_lossy, Doc, El, Limits, Ns, Writer};

use crate::rpc::add_object::*;
use crate::rpc::autonomous_du_state_change_complete::*;
use crate::rpc::autonomous_transfer_complete::*;
use crate::rpc::cancel_transfer::*;
use crate::rpc::change_du_state::*;
use crate::rpc::delete_object::*;
use crate::rpc::download::*;
use crate::rpc::du_state_change_complete::*;
use crate::rpc::factory_reset::*;
use crate::rpc::get_all_queued_transfers::*;
use crate::rpc::get_options::*;
use crate::rpc::get_parameter_attributes::*;
use crate::rpc::get_parameter_names::*;
use crate::rpc::get_parameter_values::*;
use crate::rpc::get_queued_transfers::*;
use crate::rpc::get_rpc_methods::*;
use crate::rpc::inform::*;
use crate::rpc::kicked::*;
use crate::rpc::reboot::*;
use crate::rpc::request_download::*;
use crate::rpc::schedule_download::*;
use crate::rpc::schedule_inform::*;
use crate::rpc::set_parameter_attributes::*;
use crate::rpc::set_parameter_values::*;
use crate::rpc::set_vouchers::*;
use crate::rpc::transfer_complete::*;
use crate::rpc::upload::*;

/// The SOAP header elements CWMP defines.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Header {
    /// `cwmp:ID` (mustUnderstand): pairs a response with its request.
    pub id: Option<String>,
    /// `cwmp:HoldRequests` (ACS to CPE): the CPE must not send requests.
    pub hold_requests: Option<bool>,
    /// `cwmp:NoMoreRequests` (deprecated since 1.1; still read).
    pub no_more_requests: Option<bool>,
    /// `cwmp:SessionTimeout` (1.3+, CPE to ACS in the Inform): seconds.
    pub session_timeout: Option<u32>,
    /// `cwmp:SupportedCWMPVersions` (1.4, CPE to ACS in the Inform): "1.0,1.1,...".
    pub supported_cwmp_versions: Option<String>,
    /// `cwmp:UseCWMPVersion` (1.4, ACS to CPE in the InformResponse).
    pub use_cwmp_version: Option<String>,
}

macro_rules! bodies {
    ($($variant:ident),* $(,)?) => {
        /// The message in the SOAP Body.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize)]
        #[serde(tag = "method", content = "arguments")]
        pub enum Body {
            $(
                #[doc = concat!("`", stringify!($variant), "`")]
                $variant($variant),
            )*
            /// A SOAP Fault with a CWMP fault detail.
            Fault(Fault),
        }

        impl Body {
            /// The method name (`Fault` for a fault).
            pub fn method_name(&self) -> &'static str {
                match self {
                    $(Body::$variant(_) => <$variant as Rpc>::NAME,)*
                    Body::Fault(_) => "Fault",
                }
            }

            fn decode_method(el: El<'_, '_>) -> Result<Body, DecodeError> {
                match el.name() {
                    $(stringify!($variant) => Ok(Body::$variant(<$variant as Rpc>::decode(el)?)),)*
                    other => Err(DecodeError::at(
                        DecodeErrorKind::UnknownMethod(other.to_string()),
                        el.offset(),
                    )),
                }
            }

            fn encode_into(&self, w: &mut Writer) {
                match self {
                    $(Body::$variant(m) => encode_rpc(w, m),)*
                    Body::Fault(f) => f.encode(w),
                }
            }
        }
    };
}

bodies!(
    GetRPCMethods,
    GetRPCMethodsResponse,
    SetParameterValues,
    SetParameterValuesResponse,
    GetParameterValues,
    GetParameterValuesResponse,
    GetParameterNames,
    GetParameterNamesResponse,
    SetParameterAttributes,
    SetParameterAttributesResponse,
    GetParameterAttributes,
    GetParameterAttributesResponse,
    AddObject,
    AddObjectResponse,
    DeleteObject,
    DeleteObjectResponse,
    Reboot,
    RebootResponse,
    Download,
    DownloadResponse,
    Upload,
    UploadResponse,
    FactoryReset,
    FactoryResetResponse,
    ScheduleInform,
    ScheduleInformResponse,
    ScheduleDownload,
    ScheduleDownloadResponse,
    CancelTransfer,
    CancelTransferResponse,
    GetQueuedTransfers,
    GetQueuedTransfersResponse,
    GetAllQueuedTransfers,
    GetAllQueuedTransfersResponse,
    ChangeDUState,
    ChangeDUStateResponse,
    GetOptions,
    GetOptionsResponse,
    SetVouchers,
    SetVouchersResponse,
    Inform,
    InformResponse,
    TransferComplete,
    TransferCompleteResponse,
    AutonomousTransferComplete,
    AutonomousTransferCompleteResponse,
    DUStateChangeComplete,
    DUStateChangeCompleteResponse,
    AutonomousDUStateChangeComplete,
    AutonomousDUStateChangeCompleteResponse,
    RequestDownload,
    RequestDownloadResponse,
    Kicked,
    KickedResponse,
);

fn encode_rpc<M: Rpc>(w: &mut Writer, m: &M) {
    let start = w.buf.len();
    w.buf.push_str("<cwmp:");
    w.buf.push_str(M::NAME);
    w.buf.push('>');
    let inner = w.buf.len();
    m.encode(w);
    if w.buf.len() == inner {
        // No arguments: write the short form.
        w.buf.truncate(start);
        w.buf.push_str("<cwmp:");
        w.buf.push_str(M::NAME);
        w.buf.push_str("/>");
    } else {
        w.buf.push_str("</cwmp:");
        w.buf.push_str(M::NAME);
        w.buf.push('>');
    }
}

impl Body {
    /// Whether this message is a response (or fault) rather than a request.
    pub fn is_response(&self) -> bool {
        matches!(self, Body::Fault(_)) || self.method_name().ends_with("Response")
    }
}

/// A message read by [`Envelope::decode_lenient`] and the deviations it was read through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decoded {
    /// The message.
    pub envelope: Envelope,
    /// What in it CWMP does not allow, and how it was read (empty for a clean message).
    pub quirks: Quirks,
}

/// A whole CWMP SOAP message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Envelope {
    /// The cwmp namespace the message is written in.
    pub ns: CwmpNs,
    /// Header elements.
    pub header: Header,
    /// The message.
    pub body: Body,
}

impl Envelope {
    /// A message with only an ID header.
    pub fn new(ns: CwmpNs, id: Option<String>, body: Body) -> Envelope {
        Envelope { ns, header: Header { id, ..Header::default() }, body }
    }

    /// Decodes a message received from a peer, strictly: what CWMP does not allow is refused
    /// (the CPE side reads the ACS with this). Never panics; errors say what and where.
    ///
    /// Strict is not pedantic: namespaces are matched by URI whatever the prefix (`SOAP-ENV`,
    /// `soapenv`, a default namespace), elements below the method by local name, white space
    /// around numbers and booleans is dropped (`xsd` collapses it), CR LF is read as LF, and a
    /// Value without `xsi:type` is a string, as they were before [`Envelope::decode_lenient`].
    pub fn decode(input: &[u8], limits: &Limits) -> Result<Envelope, DecodeError> {
        Self::check_size(input, limits)?;
        let text = to_utf8(input)?;
        let doc = Doc::parse(&text, limits, false).map_err(|e| e.locate(&text))?;
        Self::from_doc(&doc).map_err(|e| e.locate(&text))
    }

    /// Decodes a message a CPE sent, leniently (the ACS reads CPEs with this): deviations real
    /// CPEs are known for are read into the message and reported, each with the text as sent
    /// (see [`crate::quirk`] for what is accepted and what is still refused). The limits are the
    /// same as [`Envelope::decode`]'s, and a message [`Envelope::decode`] accepts decodes to the
    /// same value here. Whatever decodes re-encodes strictly.
    pub fn decode_lenient(input: &[u8], limits: &Limits) -> Result<Decoded, DecodeError> {
        Self::check_size(input, limits)?;
        let (text, replaced) = to_utf8_lossy(input)?;
        let doc = Doc::parse(&text, limits, true).map_err(|e| e.locate(&text))?;
        if let Some(r) = replaced {
            doc.quirk(
                QuirkKind::InvalidText { sequences: r.sequences },
                doc.element_before(r.offset),
                &r.raw,
                r.offset,
            );
        }
        let envelope = Self::from_doc(&doc).map_err(|e| e.locate(&text))?;
        let mut quirks = doc.take_quirks();
        quirks.locate(&text);
        Ok(Decoded { envelope, quirks })
    }

    fn check_size(input: &[u8], limits: &Limits) -> Result<(), DecodeError> {
        if input.len() > limits.max_body {
            return Err(DecodeError::at(
                DecodeErrorKind::TooLarge { size: input.len(), limit: limits.max_body },
                limits.max_body,
            ));
        }
        Ok(())
    }

    fn from_doc(doc: &Doc<'_>) -> Result<Envelope, DecodeError> {
        let root = doc.root();
        if root.name() != "Envelope" || !matches!(root.ns(), Ns::SoapEnv | Ns::Other) {
            return Err(DecodeError::at(DecodeErrorKind::NotAnEnvelope, root.offset()));
        }
        if root.ns() == Ns::Other {
            root.quirk(QuirkKind::EnvelopeNamespace, "");
        }
        let mut header = Header::default();
        let mut ns = None;
        if let Some(h) = root.opt("Header") {
            for el in h.children() {
                if let Ns::Cwmp(n) = el.ns() {
                    ns = Some(n);
                }
                match el.name() {
                    "ID" => header.id = Some(el.raw_text().to_string()),
                    "HoldRequests" => header.hold_requests = Some(el.as_bool()?),
                    "NoMoreRequests" => header.no_more_requests = Some(el.as_bool()?),
                    "SessionTimeout" => header.session_timeout = Some(el.as_u32()?),
                    "SupportedCWMPVersions" => header.supported_cwmp_versions = Some(el.text().to_string()),
                    "UseCWMPVersion" => header.use_cwmp_version = Some(el.text().to_string()),
                    other if el.must_understand() => {
                        return Err(DecodeError::at(DecodeErrorKind::MustUnderstand(other.to_string()), el.offset()))
                    }
                    _ => {}
                }
            }
        }
        let body_el = root.opt("Body").ok_or_else(|| DecodeError::at(DecodeErrorKind::NotAnEnvelope, root.offset()))?;
        let msg =
            body_el.children().next().ok_or_else(|| DecodeError::at(DecodeErrorKind::EmptyBody, body_el.offset()))?;
        if let Ns::Cwmp(n) = msg.ns() {
            ns = Some(n);
        }
        let body = if msg.name() == "Fault" && !matches!(msg.ns(), Ns::Cwmp(_)) {
            Body::Fault(Fault::decode(msg)?)
        } else {
            let body = Body::decode_method(msg)?;
            if !matches!(msg.ns(), Ns::Cwmp(_)) {
                msg.quirk(QuirkKind::NoCwmpNamespace, msg.name());
            }
            body
        };
        if header.id.is_none() {
            root.quirk(QuirkKind::NoId, "");
        }
        Ok(Envelope { ns: ns.unwrap_or(CwmpNs::V1_0), header, body })
    }

    /// Encodes the message as UTF-8 XML.
    pub fn encode(&self) -> String {
        let mut w = Writer::new(1024);
        w.buf.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        w.buf.push_str("<soap-env:Envelope xmlns:soap-env=\"");
        w.buf.push_str(SOAP_ENV);
        w.buf.push_str("\" xmlns:soap-enc=\"");
        w.buf.push_str(SOAP_ENC);
        w.buf.push_str("\" xmlns:xsd=\"");
        w.buf.push_str(XSD);
        w.buf.push_str("\" xmlns:xsi=\"");
        w.buf.push_str(XSI);
        w.buf.push_str("\" xmlns:cwmp=\"");
        w.buf.push_str(self.ns.uri());
        w.buf.push_str("\">");
        let h = &self.header;
        if *h != Header::default() {
            w.open("soap-env:Header");
            if let Some(id) = &h.id {
                w.buf.push_str("<cwmp:ID soap-env:mustUnderstand=\"1\">");
                w.escape(id);
                w.close("cwmp:ID");
            }
            if let Some(v) = h.hold_requests {
                w.buf.push_str("<cwmp:HoldRequests soap-env:mustUnderstand=\"1\">");
                w.buf.push_str(if v { "1" } else { "0" });
                w.close("cwmp:HoldRequests");
            }
            if let Some(v) = h.no_more_requests {
                w.buf.push_str("<cwmp:NoMoreRequests>");
                w.buf.push_str(if v { "1" } else { "0" });
                w.close("cwmp:NoMoreRequests");
            }
            if let Some(v) = h.session_timeout {
                w.display("cwmp:SessionTimeout", v);
            }
            if let Some(v) = &h.supported_cwmp_versions {
                w.buf.push_str("<cwmp:SupportedCWMPVersions soap-env:mustUnderstand=\"0\">");
                w.escape(v);
                w.close("cwmp:SupportedCWMPVersions");
            }
            if let Some(v) = &h.use_cwmp_version {
                w.buf.push_str("<cwmp:UseCWMPVersion soap-env:mustUnderstand=\"1\">");
                w.escape(v);
                w.close("cwmp:UseCWMPVersion");
            }
            w.close("soap-env:Header");
        }
        w.open("soap-env:Body");
        self.body.encode_into(&mut w);
        w.close("soap-env:Body");
        w.close("soap-env:Envelope");
        w.buf
    }
}
