//! GetOptions (ACS to CPE, TR-069 A.4.1.4) and its response: the CPE's voucher-enabled options.

use serde::Serialize;

use super::Rpc;
use crate::error::DecodeError;
use crate::value::DateTime;
use crate::xml::{El, Writer};

/// Asks for one option by name, or for all of them with an empty name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GetOptions {
    /// OptionName (at most 64 characters); empty for every option.
    pub option_name: String,
}

impl Rpc for GetOptions {
    const NAME: &'static str = "GetOptions";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        Ok(GetOptions { option_name: el.string("OptionName")? })
    }
    fn encode(&self, w: &mut Writer) {
        w.text("OptionName", &self.option_name);
    }
}

/// `OptionStruct`: one option and the voucher that set it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OptionInfo {
    /// OptionName
    pub option_name: String,
    /// VoucherSN: serial number of the voucher that set the option.
    pub voucher_sn: u32,
    /// State: 0 disabled and not set up, 1 enabled and not set up, 2 disabled and set up, 3
    /// enabled and set up.
    pub state: u32,
    /// Mode: 0 disabled, 1 enabled with expiration, 2 enabled without expiration.
    pub mode: i32,
    /// StartDate
    pub start_date: DateTime,
    /// ExpirationDate (present when `mode` is 1).
    pub expiration_date: Option<DateTime>,
    /// IsTransferable (0 or 1 on the wire).
    pub is_transferable: bool,
}

impl OptionInfo {
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        let state = el.req("State")?;
        let mode = el.req("Mode")?;
        let transferable = el.req("IsTransferable")?;
        Ok(OptionInfo {
            option_name: el.string("OptionName")?,
            voucher_sn: el.u32("VoucherSN")?,
            state: Some(state.as_u32()?).filter(|s| *s <= 3).ok_or_else(|| state.invalid("state 0 to 3"))?,
            mode: Some(mode.as_i32()?).filter(|m| (0..=2).contains(m)).ok_or_else(|| mode.invalid("mode 0 to 2"))?,
            start_date: el.datetime("StartDate")?,
            expiration_date: el.opt("ExpirationDate").map(|_| el.datetime("ExpirationDate")).transpose()?,
            is_transferable: match transferable.text() {
                "0" => false,
                "1" => true,
                _ => return Err(transferable.invalid("0 or 1")),
            },
        })
    }
    fn encode(&self, w: &mut Writer) {
        w.text("OptionName", &self.option_name);
        w.display("VoucherSN", self.voucher_sn);
        w.display("State", self.state);
        w.display("Mode", self.mode);
        w.text("StartDate", self.start_date.as_str());
        if let Some(d) = &self.expiration_date {
            w.text("ExpirationDate", d.as_str());
        }
        w.text("IsTransferable", if self.is_transferable { "1" } else { "0" });
    }
}

/// The options asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GetOptionsResponse {
    /// OptionList
    pub option_list: Vec<OptionInfo>,
}

impl Rpc for GetOptionsResponse {
    const NAME: &'static str = "GetOptionsResponse";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        Ok(GetOptionsResponse { option_list: el.list("OptionList", OptionInfo::decode)? })
    }
    fn encode(&self, w: &mut Writer) {
        w.struct_array("OptionList", "OptionStruct", &self.option_list, |w, o| o.encode(w));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::round_trip;
    use crate::{Body, DecodeErrorKind, Envelope, Limits};

    fn option(mode: i32) -> OptionInfo {
        OptionInfo {
            option_name: "X_VRGW-ORG_Turbo".into(),
            voucher_sn: 7,
            state: 3,
            mode,
            start_date: DateTime::from_unix(1_795_302_534),
            expiration_date: (mode == 1).then(|| DateTime::from_unix(1_826_838_534)),
            is_transferable: mode == 2,
        }
    }

    #[test]
    fn round_trips() {
        round_trip(Body::GetOptions(GetOptions { option_name: String::new() }));
        round_trip(Body::GetOptions(GetOptions { option_name: "X_VRGW-ORG_Turbo".into() }));
        round_trip(Body::GetOptionsResponse(GetOptionsResponse { option_list: vec![] }));
        round_trip(Body::GetOptionsResponse(GetOptionsResponse { option_list: vec![option(1), option(2)] }));
    }

    #[test]
    fn out_of_range_enumerations_are_refused() {
        let good = Envelope::new(
            crate::CwmpNs::V1_2,
            None,
            Body::GetOptionsResponse(GetOptionsResponse { option_list: vec![option(1)] }),
        )
        .encode();
        for (from, to, element) in [
            ("<State>3</State>", "<State>4</State>", "State"),
            ("<Mode>1</Mode>", "<Mode>3</Mode>", "Mode"),
            ("<IsTransferable>0</IsTransferable>", "<IsTransferable>true</IsTransferable>", "IsTransferable"),
        ] {
            assert!(good.contains(from), "{good}");
            let bad = good.replace(from, to);
            let err = Envelope::decode(bad.as_bytes(), &Limits::default()).expect_err(to);
            assert!(
                matches!(err.kind, DecodeErrorKind::InvalidValue { element: ref e, .. } if e == element),
                "{to}: {err}"
            );
        }
    }
}
