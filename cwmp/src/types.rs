//! Structures shared by several messages (TR-069 A.3 and A.4 argument types).

use serde::Serialize;

use crate::error::DecodeError;
use crate::quirk::QuirkKind;
use crate::value::{DateTime, Value, XsdType};
use crate::xml::{El, Writer};
use crate::FaultCode;

/// `DeviceIdStruct` of the Inform.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceId {
    /// Manufacturer
    pub manufacturer: String,
    /// OUI (six hex digits)
    pub oui: String,
    /// ProductClass
    pub product_class: String,
    /// SerialNumber
    pub serial_number: String,
}

impl DeviceId {
    pub(crate) fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        Ok(DeviceId {
            manufacturer: el.string("Manufacturer")?,
            oui: el.string("OUI")?,
            product_class: el.opt_string("ProductClass").unwrap_or_default(),
            serial_number: el.string("SerialNumber")?,
        })
    }
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.text("Manufacturer", &self.manufacturer);
        w.text("OUI", &self.oui);
        w.text("ProductClass", &self.product_class);
        w.text("SerialNumber", &self.serial_number);
    }
    /// The device identifier `OUI-ProductClass-SerialNumber` (or `OUI-SerialNumber` without a
    /// product class), each part escaped as GenieACS escapes it: every byte of a character other
    /// than `A-Z`, `a-z`, `0-9` and `_` as `%XX` (upper-case hex of its UTF-8 bytes). So a serial
    /// number `SR552NA084-0003269` gives `…-SR552NA084%2D0003269`: the same identifier GenieACS
    /// gives the device, and no two devices share one (a `-` inside a part cannot pass for the
    /// separator). Two things GenieACS does differently, both for characters no real serial
    /// number holds: it writes a byte below `0x10` with one hex digit (`%9`, so `"\u{1}2"` and
    /// `"\u{12}"` would share an id), where this writes two (`%09`); and it writes a character
    /// outside the Basic Multilingual Plane as two replacement characters, where this writes its
    /// four UTF-8 bytes.
    pub fn key(&self) -> String {
        let mut out = String::with_capacity(self.oui.len() + self.product_class.len() + self.serial_number.len() + 8);
        escape_id_part(&self.oui, &mut out);
        if !self.product_class.is_empty() {
            out.push('-');
            escape_id_part(&self.product_class, &mut out);
        }
        out.push('-');
        escape_id_part(&self.serial_number, &mut out);
        out
    }

    /// Checks that `s` is a device identifier as [`DeviceId::key`] writes them (with `prefix`:
    /// the start of one): two or three parts joined by `-`, the first not empty, each of `A-Z`,
    /// `a-z`, `0-9`, `_` and `%XX` escapes. The error says what is wrong, for an operator who
    /// wrote an id by hand (an unescaped `-` inside a part is the usual slip).
    pub fn check_key(s: &str, prefix: bool) -> Result<(), String> {
        let what = if prefix { "device id prefix" } else { "device id" };
        let parts: Vec<&str> = s.split('-').collect();
        if parts.len() > 3 {
            return Err(format!(
                "{what} {s:?} has {} '-' where an id has at most 2 (OUI-ProductClass-SerialNumber): a '-' inside \
                 a part is written %2D, as GenieACS writes it (00A0B1-vRGW%2DHost-h1 for product class vRGW-Host)",
                parts.len() - 1
            ));
        }
        if parts[0].is_empty() || (!prefix && parts.len() < 2) {
            return Err(format!("{what} {s:?} is not OUI-SerialNumber or OUI-ProductClass-SerialNumber"));
        }
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let b = part.as_bytes();
            let mut j = 0;
            while j < b.len() {
                match b[j] {
                    c if c.is_ascii_alphanumeric() || c == b'_' => j += 1,
                    b'%' => {
                        let hex = |k: usize| b.get(k).is_some_and(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(c));
                        let cut = prefix && last && b.len() <= j + 2 && (j + 1..b.len()).all(hex);
                        let escape = hex(j + 1) && hex(j + 2);
                        if !escape && !cut {
                            return Err(format!("{what} {s:?}: '%' not followed by two upper-case hex digits"));
                        }
                        j += 3;
                    }
                    _ => {
                        let c = part[j..].chars().next().unwrap_or('?');
                        return Err(format!(
                            "{what} {s:?}: {c:?} is written escaped in ids ({})",
                            DeviceId::escape_part(&c.to_string())
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// One part of a device identifier escaped as [`DeviceId::key`] escapes it.
    pub fn escape_part(part: &str) -> String {
        let mut out = String::with_capacity(part.len());
        escape_id_part(part, &mut out);
        out
    }
}

/// Appends `part` to `out` as GenieACS escapes a part of a device identifier.
fn escape_id_part(part: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for c in part.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 15)]));
            }
        }
    }
}

/// `EventStruct`: an event code ("0 BOOTSTRAP", "M Reboot", ...) and its command key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Event {
    /// EventCode
    pub code: String,
    /// CommandKey
    pub command_key: String,
}

impl Event {
    /// An event with an empty command key.
    pub fn new(code: &str) -> Event {
        Event { code: code.to_string(), command_key: String::new() }
    }
    pub(crate) fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        Ok(Event {
            code: el.req("EventCode")?.text().to_string(),
            command_key: el.opt_string("CommandKey").unwrap_or_default(),
        })
    }
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.text("EventCode", &self.code);
        w.text("CommandKey", &self.command_key);
    }
}

/// The standard event codes.
pub mod event {
    /// 0 BOOTSTRAP
    pub const BOOTSTRAP: &str = "0 BOOTSTRAP";
    /// 1 BOOT
    pub const BOOT: &str = "1 BOOT";
    /// 2 PERIODIC
    pub const PERIODIC: &str = "2 PERIODIC";
    /// 3 SCHEDULED
    pub const SCHEDULED: &str = "3 SCHEDULED";
    /// 4 VALUE CHANGE
    pub const VALUE_CHANGE: &str = "4 VALUE CHANGE";
    /// 5 KICKED
    pub const KICKED: &str = "5 KICKED";
    /// 6 CONNECTION REQUEST
    pub const CONNECTION_REQUEST: &str = "6 CONNECTION REQUEST";
    /// 7 TRANSFER COMPLETE
    pub const TRANSFER_COMPLETE: &str = "7 TRANSFER COMPLETE";
    /// 8 DIAGNOSTICS COMPLETE
    pub const DIAGNOSTICS_COMPLETE: &str = "8 DIAGNOSTICS COMPLETE";
    /// 9 REQUEST DOWNLOAD
    pub const REQUEST_DOWNLOAD: &str = "9 REQUEST DOWNLOAD";
    /// 10 AUTONOMOUS TRANSFER COMPLETE
    pub const AUTONOMOUS_TRANSFER_COMPLETE: &str = "10 AUTONOMOUS TRANSFER COMPLETE";
    /// 11 DU STATE CHANGE COMPLETE
    pub const DU_STATE_CHANGE_COMPLETE: &str = "11 DU STATE CHANGE COMPLETE";
    /// 12 AUTONOMOUS DU STATE CHANGE COMPLETE
    pub const AUTONOMOUS_DU_STATE_CHANGE_COMPLETE: &str = "12 AUTONOMOUS DU STATE CHANGE COMPLETE";
    /// 13 WAKEUP
    pub const WAKEUP: &str = "13 WAKEUP";
    /// M Reboot
    pub const M_REBOOT: &str = "M Reboot";
    /// M ScheduleInform
    pub const M_SCHEDULE_INFORM: &str = "M ScheduleInform";
    /// M Download
    pub const M_DOWNLOAD: &str = "M Download";
    /// M ScheduleDownload
    pub const M_SCHEDULE_DOWNLOAD: &str = "M ScheduleDownload";
    /// M Upload
    pub const M_UPLOAD: &str = "M Upload";
    /// M ChangeDUState
    pub const M_CHANGE_DU_STATE: &str = "M ChangeDUState";
}

/// `ParameterValueStruct`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParameterValue {
    /// Full parameter path.
    pub name: String,
    /// Typed value.
    pub value: Value,
}

impl ParameterValue {
    /// A name and value pair.
    pub fn new(name: impl Into<String>, value: Value) -> Self {
        ParameterValue { name: name.into(), value }
    }
    pub(crate) fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        let name = el.path("Name")?;
        let v = match el.req("Value") {
            Ok(v) => v,
            Err(_) if el.lenient() => {
                el.quirk(QuirkKind::MissingValue, &name);
                return Ok(ParameterValue { name, value: Value::String(String::new()) });
            }
            Err(e) => return Err(e),
        };
        let raw = v.raw_text();
        let value = match v.xsi_type() {
            None => {
                v.quirk(QuirkKind::UntypedValue, raw);
                Value::String(raw.to_string())
            }
            Some(t) => match XsdType::from_local(t) {
                None => {
                    v.quirk(QuirkKind::UnknownType { declared: t.to_string() }, raw);
                    Value::String(raw.to_string())
                }
                Some(ty) => match Value::parse(ty, raw) {
                    Ok(value) => value,
                    Err(_) if !v.lenient() => return Err(v.invalid(ty.qname())),
                    Err(_) => match crate::xml::parse_bool_any_case(raw.trim()).filter(|_| ty == XsdType::Boolean) {
                        Some(b) => {
                            v.quirk(QuirkKind::BooleanCase, raw);
                            Value::Boolean(b)
                        }
                        None => {
                            v.quirk(QuirkKind::ValueNotOfType { declared: ty }, raw);
                            Value::String(raw.to_string())
                        }
                    },
                },
            },
        };
        Ok(ParameterValue { name, value })
    }
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.text("Name", &self.name);
        w.buf.push_str("<Value xsi:type=\"");
        w.buf.push_str(self.value.xsd_type().qname());
        w.buf.push_str("\">");
        match &self.value {
            Value::Int(v) => push_num(w, *v as i64),
            Value::UnsignedInt(v) => push_num(w, *v as i64),
            Value::Long(v) => push_num(w, *v),
            other => w.escape(&other.to_lexical()),
        }
        w.close("Value");
    }
}

fn push_num(w: &mut Writer, v: i64) {
    use std::fmt::Write;
    let _ = write!(w.buf, "{v}");
}

pub(crate) fn decode_parameter_values(el: El<'_, '_>, name: &'static str) -> Result<Vec<ParameterValue>, DecodeError> {
    el.list(name, ParameterValue::decode)
}

pub(crate) fn encode_parameter_values(w: &mut Writer, name: &str, list: &[ParameterValue]) {
    w.struct_array(name, "ParameterValueStruct", list, |w, p| p.encode(w));
}

/// `ParameterInfoStruct` of GetParameterNamesResponse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParameterInfo {
    /// Parameter or object path (objects end with a dot).
    pub name: String,
    /// Whether it can be set (for objects: whether AddObject/DeleteObject apply).
    pub writable: bool,
}

/// Notification attribute values (TR-069 A.3.2.4; 3 to 6 arrive with CWMP 1.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
pub enum Notification {
    /// 0: off
    #[default]
    Off,
    /// 1: passive
    Passive,
    /// 2: active
    Active,
    /// 3: passive lightweight
    PassiveLightweight,
    /// 4: passive with passive lightweight
    PassivePassiveLightweight,
    /// 5: active lightweight
    ActiveLightweight,
    /// 6: passive with active lightweight
    PassiveActiveLightweight,
}

impl Notification {
    /// The wire value.
    pub fn code(self) -> u32 {
        self as u32
    }
    /// From the wire value.
    pub fn from_code(c: u32) -> Option<Notification> {
        Some(match c {
            0 => Notification::Off,
            1 => Notification::Passive,
            2 => Notification::Active,
            3 => Notification::PassiveLightweight,
            4 => Notification::PassivePassiveLightweight,
            5 => Notification::ActiveLightweight,
            6 => Notification::PassiveActiveLightweight,
            _ => return None,
        })
    }
    pub(crate) fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        el.as_u32().ok().and_then(Notification::from_code).ok_or_else(|| el.invalid("notification 0 to 6"))
    }
}

/// `SetParameterAttributesStruct`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetParameterAttribute {
    /// Parameter or partial path.
    pub name: String,
    /// Whether `notification` applies.
    pub notification_change: bool,
    /// New notification.
    pub notification: Notification,
    /// Whether `access_list` applies.
    pub access_list_change: bool,
    /// New access list ("Subscriber" or empty).
    pub access_list: Vec<String>,
}

/// `ParameterAttributeStruct`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParameterAttribute {
    /// Parameter path.
    pub name: String,
    /// Notification.
    pub notification: Notification,
    /// Access list.
    pub access_list: Vec<String>,
}

/// `TransferCompleteFaultStruct` (code 0 means success).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransferFault {
    /// 0 or a 9xxx fault code.
    pub code: u32,
    /// Explanation, empty on success.
    pub string: String,
}

impl TransferFault {
    /// The "no fault" value.
    pub fn none() -> Self {
        TransferFault { code: 0, string: String::new() }
    }
    /// A fault from a code.
    pub fn from_fault(code: FaultCode, string: &str) -> Self {
        TransferFault { code: code.code(), string: string.to_string() }
    }
    pub(crate) fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        Ok(TransferFault { code: el.u32("FaultCode")?, string: el.opt_string("FaultString").unwrap_or_default() })
    }
    pub(crate) fn encode(&self, w: &mut Writer, name: &str) {
        w.open(name);
        w.display("FaultCode", self.code);
        w.text("FaultString", &self.string);
        w.close(name);
    }
}

/// `QueuedTransferStruct`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueuedTransfer {
    /// CommandKey
    pub command_key: String,
    /// 1 not yet started, 2 in progress, 3 completed
    pub state: u32,
}

/// `AllQueuedTransferStruct`
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AllQueuedTransfer {
    /// CommandKey
    pub command_key: String,
    /// 1 not yet started, 2 in progress, 3 completed
    pub state: u32,
    /// Download (true) or upload.
    pub is_download: bool,
    /// FileType, e.g. "1 Firmware Upgrade Image"
    pub file_type: String,
    /// FileSize
    pub file_size: u32,
    /// TargetFileName
    pub target_file_name: String,
}

/// `TimeWindowStruct` of ScheduleDownload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimeWindow {
    /// Seconds from now.
    pub window_start: u32,
    /// Seconds from now.
    pub window_end: u32,
    /// "1 At Any Time", "2 Immediately", "3 When Idle", "4 Confirmation Needed"
    pub window_mode: String,
    /// Message to show the user.
    pub user_message: String,
    /// -1 for the CPE's default.
    pub max_retries: i32,
}

/// `ArgStruct` of RequestDownload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Arg {
    /// Name
    pub name: String,
    /// Value
    pub value: String,
}

/// An operation of ChangeDUState (`InstallOpStruct`, `UpdateOpStruct`, `UninstallOpStruct`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum DuOperation {
    /// Install a deployment unit.
    Install {
        /// URL
        url: String,
        /// UUID, may be empty.
        uuid: String,
        /// Username
        username: String,
        /// Password
        password: String,
        /// ExecutionEnvRef
        execution_env_ref: String,
    },
    /// Update a deployment unit.
    Update {
        /// UUID
        uuid: String,
        /// Version
        version: String,
        /// URL
        url: String,
        /// Username
        username: String,
        /// Password
        password: String,
    },
    /// Uninstall a deployment unit.
    Uninstall {
        /// UUID
        uuid: String,
        /// Version
        version: String,
        /// ExecutionEnvRef
        execution_env_ref: String,
    },
}

impl DuOperation {
    pub(crate) fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        let s = |n: &str| el.opt_string(n).unwrap_or_default();
        Ok(match el.xsi_type() {
            Some("InstallOpStruct") => DuOperation::Install {
                url: el.string("URL")?,
                uuid: s("UUID"),
                username: s("Username"),
                password: s("Password"),
                execution_env_ref: s("ExecutionEnvRef"),
            },
            Some("UpdateOpStruct") => DuOperation::Update {
                uuid: s("UUID"),
                version: s("Version"),
                url: s("URL"),
                username: s("Username"),
                password: s("Password"),
            },
            Some("UninstallOpStruct") => DuOperation::Uninstall {
                uuid: el.string("UUID")?,
                version: s("Version"),
                execution_env_ref: s("ExecutionEnvRef"),
            },
            _ => return Err(el.invalid("xsi:type InstallOpStruct, UpdateOpStruct or UninstallOpStruct")),
        })
    }
    pub(crate) fn encode(&self, w: &mut Writer) {
        let opt = |w: &mut Writer, n: &str, v: &str| {
            if !v.is_empty() {
                w.text(n, v);
            }
        };
        match self {
            DuOperation::Install { url, uuid, username, password, execution_env_ref } => {
                w.buf.push_str("<Operations xsi:type=\"cwmp:InstallOpStruct\">");
                w.text("URL", url);
                opt(w, "UUID", uuid);
                opt(w, "Username", username);
                opt(w, "Password", password);
                opt(w, "ExecutionEnvRef", execution_env_ref);
            }
            DuOperation::Update { uuid, version, url, username, password } => {
                w.buf.push_str("<Operations xsi:type=\"cwmp:UpdateOpStruct\">");
                opt(w, "UUID", uuid);
                opt(w, "Version", version);
                opt(w, "URL", url);
                opt(w, "Username", username);
                opt(w, "Password", password);
            }
            DuOperation::Uninstall { uuid, version, execution_env_ref } => {
                w.buf.push_str("<Operations xsi:type=\"cwmp:UninstallOpStruct\">");
                w.text("UUID", uuid);
                opt(w, "Version", version);
                opt(w, "ExecutionEnvRef", execution_env_ref);
            }
        }
        w.close("Operations");
    }
}

/// `OpResultStruct`: the outcome of one deployment-unit operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpResult {
    /// UUID
    pub uuid: String,
    /// DeploymentUnitRef
    pub deployment_unit_ref: String,
    /// Version
    pub version: String,
    /// "Installed", "Uninstalled" or "Failed"
    pub current_state: String,
    /// Resolved
    pub resolved: bool,
    /// ExecutionUnitRefList
    pub execution_unit_ref_list: String,
    /// StartTime
    pub start_time: DateTime,
    /// CompleteTime
    pub complete_time: DateTime,
    /// Fault (code 0: none)
    pub fault: TransferFault,
}

impl OpResult {
    pub(crate) fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        Ok(OpResult {
            uuid: el.string("UUID")?,
            deployment_unit_ref: el.string("DeploymentUnitRef")?,
            version: el.string("Version")?,
            current_state: el.req("CurrentState")?.text().to_string(),
            resolved: el.bool("Resolved")?,
            execution_unit_ref_list: el.string("ExecutionUnitRefList")?,
            start_time: el.datetime("StartTime")?,
            complete_time: el.datetime("CompleteTime")?,
            fault: TransferFault::decode(el.req("Fault")?)?,
        })
    }
    pub(crate) fn encode(&self, w: &mut Writer) {
        w.text("UUID", &self.uuid);
        w.text("DeploymentUnitRef", &self.deployment_unit_ref);
        w.text("Version", &self.version);
        w.text("CurrentState", &self.current_state);
        w.bool("Resolved", self.resolved);
        w.text("ExecutionUnitRefList", &self.execution_unit_ref_list);
        w.text("StartTime", self.start_time.as_str());
        w.text("CompleteTime", self.complete_time.as_str());
        self.fault.encode(w, "Fault");
    }
}

/// The `Status`, `StartTime` and `CompleteTime` that DownloadResponse and UploadResponse share.
pub(crate) fn decode_transfer_status(el: El<'_, '_>) -> Result<(u8, DateTime, DateTime), DecodeError> {
    Ok((crate::rpc::status(el)?, el.datetime("StartTime")?, el.datetime("CompleteTime")?))
}

pub(crate) fn encode_transfer_status(w: &mut Writer, status: u8, start: &DateTime, complete: &DateTime) {
    w.display("Status", status);
    w.text("StartTime", start.as_str());
    w.text("CompleteTime", complete.as_str());
}

#[cfg(test)]
mod tests {
    use super::DeviceId;

    fn id(oui: &str, product_class: &str, serial_number: &str) -> DeviceId {
        DeviceId {
            manufacturer: "Acme".into(),
            oui: oui.into(),
            product_class: product_class.into(),
            serial_number: serial_number.into(),
        }
    }

    #[test]
    fn a_key_escapes_each_part_as_genieacs_does() {
        assert_eq!(id("00A0B1", "SimCPE", "SR552NA084-0003269").key(), "00A0B1-SimCPE-SR552NA084%2D0003269");
        assert_eq!(id("00A0B1", "vRGW-Host", "tbh1").key(), "00A0B1-vRGW%2DHost-tbh1");
        assert_eq!(id("00A0B1", "", "AB_12").key(), "00A0B1-AB_12", "no product class: OUI-SerialNumber");
        assert_eq!(id("00A0B1", "Box", "a b.c/d%").key(), "00A0B1-Box-a%20b%2Ec%2Fd%25");
        assert_eq!(id("00A0B1", "Box", "é€").key(), "00A0B1-Box-%C3%A9%E2%82%AC", "UTF-8 bytes");
        assert_eq!(id("00A0B1", "Box", "\u{1}2").key(), "00A0B1-Box-%012", "two hex digits");
        assert_eq!(id("00A0B1", "Box", "\u{1F600}").key(), "00A0B1-Box-%F0%9F%98%80");
    }

    #[test]
    fn an_id_written_by_hand_is_checked_against_the_escaped_form() {
        for ok in ["00A0B1-vRGW%2DHost-h1", "00A0B1-h_1", "00A0B1-Box-%C3%A9"] {
            assert_eq!(DeviceId::check_key(ok, false), Ok(()), "{ok}");
        }
        for ok in ["00A0B1-", "00A0B1-vRGW%2DHost-", "00A0B1-vRGW%2", "00A0"] {
            assert_eq!(DeviceId::check_key(ok, true), Ok(()), "prefix {ok}");
        }
        let err = |s: &str, prefix: bool| DeviceId::check_key(s, prefix).expect_err(s);
        assert!(err("00A0B1-vRGW-Host-h1", false).contains("3 '-'"));
        assert!(err("00A0B1-vRGW-Host-", true).contains("%2D"));
        assert!(err("00A0B1", false).contains("not OUI-SerialNumber"));
        assert!(err("-x", true).contains("not OUI-SerialNumber"));
        assert!(err("00A0B1-a b", false).contains("%20"));
        assert!(err("00A0B1-a%2d", false).contains("hex"));
        assert!(err("00A0B1-a%2", false).contains("hex"), "only a prefix may stop inside an escape");
        let id = DeviceId {
            manufacturer: String::new(),
            oui: "00A0B1".into(),
            product_class: "a-b c".into(),
            serial_number: "é/1".into(),
        };
        assert_eq!(DeviceId::check_key(&id.key(), false), Ok(()), "every key passes");
    }

    #[test]
    fn a_dash_inside_a_part_does_not_pass_for_the_separator() {
        let a = id("00A0B1", "A-B", "C").key();
        let b = id("00A0B1", "A", "B-C").key();
        assert_ne!(a, b);
        assert_ne!(id("00A0B1", "", "A-B").key(), id("00A0B1", "A", "B").key());
    }
}
