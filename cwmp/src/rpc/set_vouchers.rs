//! SetVouchers (ACS to CPE, TR-069 A.4.1.3) and its response: signed vouchers that enable options.

use serde::Serialize;

use super::Rpc;
use crate::error::DecodeError;
use crate::value::{Value, XsdType};
use crate::xml::{El, Writer};

/// Hands the CPE one or more vouchers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetVouchers {
    /// VoucherList: each voucher (a signed XML document) in base64, as sent.
    pub voucher_list: Vec<String>,
}

impl Rpc for SetVouchers {
    const NAME: &'static str = "SetVouchers";
    fn decode(el: El<'_, '_>) -> Result<Self, DecodeError> {
        Ok(SetVouchers {
            voucher_list: el.list("VoucherList", |v| match Value::parse(XsdType::Base64, v.text()) {
                Ok(Value::Base64(b)) => Ok(b),
                _ => Err(v.invalid("base64")),
            })?,
        })
    }
    fn encode(&self, w: &mut Writer) {
        w.array_open("VoucherList", "soap-enc:base64", self.voucher_list.len());
        for v in &self.voucher_list {
            w.text("base64", v);
        }
        w.close("VoucherList");
    }
}

super::empty_message!(
    /// The vouchers were taken.
    SetVouchersResponse
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::round_trip;
    use crate::{Body, DecodeErrorKind, Envelope, Limits};

    #[test]
    fn round_trips() {
        round_trip(Body::SetVouchers(SetVouchers {
            voucher_list: vec!["PFZvdWNoZXIvPg==".into(), "PHNpZ25lZC8+".into()],
        }));
        round_trip(Body::SetVouchersResponse(SetVouchersResponse {}));
    }

    #[test]
    fn a_voucher_that_is_not_base64_is_refused() {
        let xml = Envelope::new(
            crate::CwmpNs::V1_2,
            None,
            Body::SetVouchers(SetVouchers { voucher_list: vec!["PFZvdWNoZXIvPg==".into()] }),
        )
        .encode()
        .replace("PFZvdWNoZXIvPg==", "<!-- not base64 -->*?");
        let err = Envelope::decode(xml.as_bytes(), &Limits::default()).expect_err("refused");
        assert!(matches!(err.kind, DecodeErrorKind::InvalidValue { expected: "base64", .. }), "{err}");
    }
}
