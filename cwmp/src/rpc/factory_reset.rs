//! FactoryReset and its response.

super::empty_message!(
    /// Resets the CPE to its factory defaults.
    FactoryReset
);

super::empty_message!(
    /// Factory reset accepted.
    FactoryResetResponse
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rpc::round_trip;
    use crate::Body;

    #[test]
    fn round_trips() {
        round_trip(Body::FactoryReset(FactoryReset {}));
        round_trip(Body::FactoryResetResponse(FactoryResetResponse {}));
    }
}
