//! Real CPE quirks: what the ACS's lenient decoder reads (with a quirk that keeps the text as
//! sent), what both decoders read silently because XML allows it, and what stays refused. The
//! strict decoder (the CPE side) refuses every quirk it did not accept before.

use cwmp::session::{AcsConfig, AcsSession, CpeConfig, CpeSession, Reply, Transmit};
use cwmp::*;

const ENV_OPEN: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:SOAP-ENC="http://schemas.xmlsoap.org/soap/encoding/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:cwmp="urn:dslforum-org:cwmp-1-0">
<SOAP-ENV:Header><cwmp:ID SOAP-ENV:mustUnderstand="1">42</cwmp:ID></SOAP-ENV:Header>
<SOAP-ENV:Body>"#;
const ENV_CLOSE: &str = "</SOAP-ENV:Body></SOAP-ENV:Envelope>\n";

/// An Inform as a TR-098 gateway sends it, with this CurrentTime and these ParameterValueStructs
/// (the arrayType declaring `declared` members).
fn inform(current_time: &str, declared: usize, params: &str) -> String {
    format!(
        "{ENV_OPEN}<cwmp:Inform>\n<DeviceId><Manufacturer>Acme</Manufacturer><OUI>00A0B1</OUI><ProductClass>IGD</ProductClass><SerialNumber>SN1</SerialNumber></DeviceId>\n<Event SOAP-ENC:arrayType=\"cwmp:EventStruct[1]\"><EventStruct><EventCode>2 PERIODIC</EventCode><CommandKey></CommandKey></EventStruct></Event>\n<MaxEnvelopes>1</MaxEnvelopes><CurrentTime>{current_time}</CurrentTime><RetryCount>0</RetryCount>\n<ParameterList SOAP-ENC:arrayType=\"cwmp:ParameterValueStruct[{declared}]\">{params}</ParameterList>\n</cwmp:Inform>{ENV_CLOSE}"
    )
}

fn pv(name: &str, value: &str) -> String {
    format!("<ParameterValueStruct><Name>{name}</Name>{value}</ParameterValueStruct>\n")
}

fn typed(name: &str, ty: &str, value: &str) -> String {
    pv(name, &format!("<Value xsi:type=\"{ty}\">{value}</Value>"))
}

const TIME: &str = "2026-11-21T23:08:54Z";
const UPTIME: &str = "InternetGatewayDevice.DeviceInfo.UpTime";
const SSID: &str = "InternetGatewayDevice.LANDevice.1.WLANConfiguration.1.SSID";

fn strict(xml: impl AsRef<[u8]>) -> Result<Envelope, DecodeError> {
    Envelope::decode(xml.as_ref(), &Limits::default())
}

fn lenient(xml: impl AsRef<[u8]>) -> Decoded {
    let d = Envelope::decode_lenient(xml.as_ref(), &Limits::default()).unwrap_or_else(|e| panic!("lenient: {e}"));
    // Whatever the lenient decoder reads, the strict one reads back from its encoding.
    assert!(cwmp::fuzzing::check_decode(xml.as_ref()));
    d
}

fn inform_of(env: &Envelope) -> &Inform {
    match &env.body {
        Body::Inform(i) => i,
        other => panic!("not an Inform: {other:?}"),
    }
}

/// The quirk kinds, in document order.
fn kinds(d: &Decoded) -> Vec<QuirkKind> {
    d.quirks.list.iter().map(|q| q.kind.clone()).collect()
}

fn refused_as(xml: impl AsRef<[u8]>, what: &str) -> DecodeError {
    let err = strict(xml.as_ref()).expect_err(what);
    let again = Envelope::decode_lenient(xml.as_ref(), &Limits::default()).expect_err(what);
    assert_eq!(err.kind, again.kind, "{what}: both decoders refuse it the same way");
    err
}

#[test]
fn current_time_empty_or_not_a_date_time_is_the_unknown_time() {
    for raw in ["", "2024-13-45T10:00:00Z", "2024-02-03 10:00:00", "yesterday", "1700000000"] {
        let xml = inform(raw, 1, &typed(UPTIME, "xsd:unsignedInt", "5"));
        let err = strict(&xml).expect_err(raw);
        assert!(matches!(err.kind, DecodeErrorKind::InvalidValue { ref element, .. } if element == "CurrentTime"));
        assert_eq!(err.fault_code(Role::Acs), FaultCode::AcsInvalidArguments);

        let d = lenient(&xml);
        assert_eq!(inform_of(&d.envelope).current_time, DateTime::unknown(), "{raw:?}");
        assert_eq!(kinds(&d), vec![QuirkKind::InvalidDateTime], "{raw:?}");
        let q = &d.quirks.list[0];
        assert_eq!((q.element.as_str(), q.raw.as_str(), q.line), ("CurrentTime", raw, 7));
        assert_eq!(inform_of(&d.envelope).parameter_list[0].value, Value::UnsignedInt(5), "the rest is read");
    }
    // The unknown time and a time without a zone are CWMP: read as sent, no quirk, either way.
    for raw in ["0001-01-01T00:00:00", "0001-01-01T00:00:00Z", "2024-05-01T10:00:00", "2024-05-01T10:00:00.5+02:00"] {
        let xml = inform(raw, 1, &typed(UPTIME, "xsd:unsignedInt", "5"));
        assert_eq!(inform_of(&strict(&xml).expect(raw)).current_time.as_str(), raw);
        assert!(lenient(&xml).quirks.is_empty(), "{raw}");
    }
    // The same in every dateTime element a CPE sends, e.g. TransferComplete's.
    let tc = format!(
        "{ENV_OPEN}<cwmp:TransferComplete><CommandKey>dl-1</CommandKey><FaultStruct><FaultCode>0</FaultCode><FaultString></FaultString></FaultStruct><StartTime></StartTime><CompleteTime>2024-00-00T00:00:00</CompleteTime></cwmp:TransferComplete>{ENV_CLOSE}"
    );
    assert!(strict(&tc).is_err());
    let d = lenient(&tc);
    let Body::TransferComplete(t) = &d.envelope.body else { panic!() };
    assert_eq!((t.start_time.clone(), t.complete_time.clone()), (DateTime::unknown(), DateTime::unknown()));
    let raws: Vec<_> = d.quirks.list.iter().map(|q| (q.element.as_str(), q.raw.as_str())).collect();
    assert_eq!(raws, [("StartTime", ""), ("CompleteTime", "2024-00-00T00:00:00")]);
}

#[test]
fn a_parameter_value_struct_without_its_value_is_an_empty_string() {
    let xml = inform(TIME, 2, &(pv(SSID, "") + &typed(UPTIME, "xsd:unsignedInt", "7")));
    let err = strict(&xml).expect_err("no Value");
    assert!(matches!(err.kind, DecodeErrorKind::MissingElement { child: "Value", .. }));
    let d = lenient(&xml);
    let list = &inform_of(&d.envelope).parameter_list;
    assert_eq!(list[0], ParameterValue::new(SSID, Value::String(String::new())));
    assert_eq!(list[1].value, Value::UnsignedInt(7));
    assert_eq!(kinds(&d), vec![QuirkKind::MissingValue]);
    assert_eq!((d.quirks.list[0].element.as_str(), d.quirks.list[0].raw.as_str()), ("ParameterValueStruct", SSID));
}

#[test]
fn bytes_that_are_not_utf8_are_replaced_and_reported() {
    // An SSID in Latin-1 in a message that says (or lets one assume) UTF-8.
    let xml = inform(TIME, 1, &typed(SSID, "xsd:string", "Caf\u{1}")).replace('\u{1}', "\u{2}");
    let mut bytes = xml.into_bytes();
    let at = bytes.iter().position(|&b| b == 2).expect("marker");
    bytes[at] = 0xE9;
    let err = strict(&bytes).expect_err("not UTF-8");
    assert_eq!(err.kind, DecodeErrorKind::InvalidUtf8);
    assert_eq!(err.fault_code(Role::Acs), FaultCode::AcsInvalidArguments);

    let d = lenient(&bytes);
    assert_eq!(inform_of(&d.envelope).parameter_list[0].value, Value::String("Caf\u{FFFD}".into()));
    assert_eq!(kinds(&d), vec![QuirkKind::InvalidText { sequences: 1 }]);
    let q = &d.quirks.list[0];
    assert_eq!(q.element, "Value");
    assert!(q.raw.contains(r"Caf\xe9</Value>"), "the bytes as sent, escaped: {}", q.raw);
    assert_eq!(q.line, 8);

    // Two bad sequences in a document declared UTF-8 with a BOM.
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend_from_slice(&bytes);
    let at = bom.windows(4).position(|w| w == b"Acme").expect("Acme");
    bom[at] = 0xFF;
    let d = lenient(&bom);
    assert_eq!(inform_of(&d.envelope).device_id.manufacturer, "\u{FFFD}cme");
    assert_eq!(kinds(&d), vec![QuirkKind::InvalidText { sequences: 2 }]);
    assert_eq!(d.quirks.list[0].element, "Manufacturer", "the first one is reported");
}

#[test]
fn array_type_counts_that_do_not_match_are_read_as_sent() {
    let two = typed(UPTIME, "xsd:unsignedInt", "1") + &typed(SSID, "xsd:string", "x");
    let four = two.repeat(2);
    for (params, sent) in [(two, 2), (four, 4)] {
        let xml = inform(TIME, 3, &params);
        assert_eq!(inform_of(&strict(&xml).expect("strict reads it as before")).parameter_list.len(), sent);
        let d = lenient(&xml);
        assert_eq!(inform_of(&d.envelope).parameter_list.len(), sent);
        assert_eq!(kinds(&d), vec![QuirkKind::ArrayCount { declared: 3, sent }]);
        assert_eq!(
            (d.quirks.list[0].element.as_str(), d.quirks.list[0].raw.as_str()),
            ("ParameterList", "cwmp:ParameterValueStruct[3]")
        );
    }
    // A declared size beyond the item limit is still refused, before anything is read.
    let err = refused_as(inform(TIME, MAX_ITEMS + 1, &typed(UPTIME, "xsd:unsignedInt", "1")), "too large");
    assert!(matches!(err.kind, DecodeErrorKind::ArrayTooLarge { .. }));
    assert_eq!(err.fault_code(Role::Acs), FaultCode::AcsResourcesExceeded);
}

#[test]
fn a_missing_header_is_read_and_answered_without_an_id() {
    let full = inform(TIME, 1, &typed(UPTIME, "xsd:unsignedInt", "1"));
    let start = full.find("<SOAP-ENV:Header>").expect("header");
    let end = full.find("</SOAP-ENV:Header>").expect("header end") + "</SOAP-ENV:Header>".len();
    let xml = format!("{}{}", &full[..start], &full[end..]);
    assert_eq!(strict(&xml).expect("strict").header, Header::default());
    let d = lenient(&xml);
    assert_eq!(kinds(&d), vec![QuirkKind::NoId]);
    assert_eq!(d.envelope.body, strict(&full).expect("full").body);

    let mut acs = AcsSession::new(AcsConfig::default(), std::time::Instant::now());
    acs.handle_post(xml.as_bytes(), std::time::Instant::now());
    while acs.poll_event().is_some() {}
    let Some(Reply::Envelope(reply)) = acs.poll_reply() else { panic!("no InformResponse") };
    assert!(reply.contains("InformResponse") && !reply.contains("cwmp:ID"), "{reply}");
}

#[test]
fn envelope_prefixes_and_namespaces() {
    let base = inform(TIME, 1, &typed(UPTIME, "xsd:unsignedInt", "1"));
    let want = strict(&base).expect("SOAP-ENV");
    // Prefixes are the sender's choice: every binding of the SOAP namespace is read alike.
    let soapenv = base.replace("SOAP-ENV:", "soapenv:").replace("xmlns:SOAP-ENV=", "xmlns:soapenv=");
    let default_ns = base
        .replace("SOAP-ENV:Envelope", "Envelope")
        .replace("SOAP-ENV:Header", "Header")
        .replace("SOAP-ENV:Body", "Body")
        .replace("xmlns:SOAP-ENV=", "xmlns=")
        .replace("SOAP-ENV:mustUnderstand", "mustUnderstand");
    for xml in [&base, &soapenv, &default_ns] {
        assert_eq!(strict(xml).expect("strict"), want);
        let d = lenient(xml);
        assert_eq!(d.envelope, want);
        assert!(d.quirks.is_empty(), "{:?}", d.quirks);
    }
    // SOAP 1.2's namespace: read, reported.
    let soap12 = base.replace("http://schemas.xmlsoap.org/soap/envelope/", "http://www.w3.org/2003/05/soap-envelope");
    assert_eq!(kinds(&lenient(&soap12)), vec![QuirkKind::EnvelopeNamespace]);
    // The method in no CWMP namespace: CWMP 1.0, reported.
    let no_cwmp = base.replace("urn:dslforum-org:cwmp-1-0", "urn:example:not-cwmp");
    let d = lenient(&no_cwmp);
    assert_eq!(d.envelope.ns, CwmpNs::V1_0);
    assert_eq!(kinds(&d), vec![QuirkKind::NoCwmpNamespace]);
    // An Envelope in no namespace at all is not a SOAP envelope.
    let bare = default_ns.replace("xmlns=\"http://schemas.xmlsoap.org/soap/envelope/\"", "");
    assert_eq!(refused_as(&bare, "no namespace").kind, DecodeErrorKind::NotAnEnvelope);
}

#[test]
fn crlf_line_ends_are_read_as_lf() {
    let lf = inform(TIME, 2, &(typed(UPTIME, "xsd:unsignedInt", "\n9\n") + &typed(SSID, "xsd:string", "a\nb")));
    let crlf = lf.replace('\n', "\r\n");
    assert!(crlf.contains("a\r\nb"));
    let want = strict(&lf).expect("LF");
    assert_eq!(strict(&crlf).expect("CRLF"), want);
    let d = lenient(&crlf);
    assert_eq!(d.envelope, want);
    assert!(d.quirks.is_empty());
    assert_eq!(inform_of(&want).parameter_list[1].value, Value::String("a\nb".into()));
    // A CR the CPE meant is sent as &#13; and stays.
    let cr = lf.replace("a\nb", "a&#13;\nb");
    assert_eq!(inform_of(&strict(&cr).expect("cr")).parameter_list[1].value, Value::String("a\r\nb".into()));
}

#[test]
fn padded_numbers_and_booleans_are_read_and_strings_kept_as_sent() {
    let params = typed(UPTIME, "xsd:unsignedInt", "  42\t")
        + &typed("X.Enable", "xsd:boolean", "\n true \n")
        + &typed("X.Offset", "xsd:int", " -3 ")
        + &typed(SSID, "xsd:string", "  spaced  ");
    let xml = inform(TIME, 4, &params).replace("<RetryCount>0</RetryCount>", "<RetryCount> 2 </RetryCount>");
    let env = strict(&xml).expect("xsd collapses white space around these types");
    let i = inform_of(&env);
    let values: Vec<_> = i.parameter_list.iter().map(|p| p.value.clone()).collect();
    assert_eq!(
        values,
        [Value::UnsignedInt(42), Value::Boolean(true), Value::Int(-3), Value::String("  spaced  ".into())]
    );
    assert_eq!(i.retry_count, 2);
    let d = lenient(&xml);
    assert_eq!(d.envelope, env);
    assert!(d.quirks.is_empty());
}

#[test]
fn xsi_type_missing_or_with_another_prefix() {
    let params = pv(SSID, "<Value>untyped</Value>")
        + &pv(UPTIME, "<Value xmlns:xs=\"http://www.w3.org/2001/XMLSchema\" xsi:type=\"xs:unsignedInt\">5</Value>")
        + &pv("X.Undeclared", "<Value xsi:type=\"ns9:int\">-5</Value>")
        + &pv("X.Float", "<Value xsi:type=\"xsd:float\">1.5</Value>");
    let xml = inform(TIME, 4, &params);
    let env = strict(&xml).expect("strict reads these as before");
    let values: Vec<_> = inform_of(&env).parameter_list.iter().map(|p| p.value.clone()).collect();
    assert_eq!(
        values,
        [Value::String("untyped".into()), Value::UnsignedInt(5), Value::Int(-5), Value::String("1.5".into())]
    );
    let d = lenient(&xml);
    assert_eq!(d.envelope, env);
    assert_eq!(kinds(&d), vec![QuirkKind::UntypedValue, QuirkKind::UnknownType { declared: "float".into() }]);
    assert_eq!(d.quirks.list[1].raw, "1.5");
}

#[test]
fn booleans_in_another_case() {
    for (raw, b) in [("True", true), ("FALSE", false), ("TRUE", true), ("False", false), (" tRuE ", true)] {
        let xml = inform(TIME, 1, &typed("X.Enable", "xsd:boolean", raw));
        let err = strict(&xml).expect_err(raw);
        assert_eq!(err.fault_code(Role::Acs), FaultCode::AcsInvalidArguments);
        assert_eq!(err.fault_code(Role::Cpe), FaultCode::InvalidParameterType);
        let d = lenient(&xml);
        assert_eq!(inform_of(&d.envelope).parameter_list[0].value, Value::Boolean(b));
        assert_eq!(kinds(&d), vec![QuirkKind::BooleanCase]);
        assert_eq!(d.quirks.list[0].raw, raw);
    }
    // Outside values too (GetParameterNamesResponse's Writable).
    let gpn = format!(
        "{ENV_OPEN}<cwmp:GetParameterNamesResponse><ParameterList SOAP-ENC:arrayType=\"cwmp:ParameterInfoStruct[1]\"><ParameterInfoStruct><Name>{SSID}</Name><Writable>True</Writable></ParameterInfoStruct></ParameterList></cwmp:GetParameterNamesResponse>{ENV_CLOSE}"
    );
    let d = lenient(&gpn);
    let Body::GetParameterNamesResponse(r) = &d.envelope.body else { panic!() };
    assert!(r.parameter_list[0].writable);
    assert_eq!(kinds(&d), vec![QuirkKind::BooleanCase]);
    // Anything else is no boolean: refused where a boolean is required.
    let err = refused_as(gpn.replace("True", "yes"), "Writable yes");
    assert!(matches!(err.kind, DecodeErrorKind::InvalidValue { expected: "boolean", .. }));
}

#[test]
fn a_value_not_of_its_type_is_kept_as_the_string_sent() {
    for (ty, raw) in
        [("xsd:int", "abc"), ("xsd:unsignedInt", "-1"), ("xsd:dateTime", "2024-13-45T00:00:00"), ("xsd:boolean", "yes")]
    {
        let xml = inform(TIME, 1, &typed("X.V", ty, raw));
        assert!(strict(&xml).is_err(), "{ty} {raw}");
        let d = lenient(&xml);
        assert_eq!(inform_of(&d.envelope).parameter_list[0].value, Value::String(raw.into()));
        let declared = XsdType::from_local(ty.trim_start_matches("xsd:")).expect("type");
        assert_eq!(kinds(&d), vec![QuirkKind::ValueNotOfType { declared }]);
        assert_eq!(d.quirks.list[0].raw, raw);
    }
}

#[test]
fn what_stays_refused() {
    let acs = |xml: String, what: &str| refused_as(xml, what).fault_code(Role::Acs);
    // No Name: which parameter the value belongs to is unknown.
    let no_name = inform(TIME, 1, "<ParameterValueStruct><Value>x</Value></ParameterValueStruct>");
    assert_eq!(acs(no_name, "no Name"), FaultCode::AcsInvalidArguments);
    // Numbers outside values: RetryCount, a response's Status.
    let retry = inform(TIME, 0, "").replace("<RetryCount>0</RetryCount>", "<RetryCount>many</RetryCount>");
    assert_eq!(acs(retry, "RetryCount"), FaultCode::AcsInvalidArguments);
    let status = format!(
        "{ENV_OPEN}<cwmp:SetParameterValuesResponse><Status>2</Status></cwmp:SetParameterValuesResponse>{ENV_CLOSE}"
    );
    assert_eq!(acs(status, "Status 2"), FaultCode::AcsInvalidArguments);
    // The name limits.
    let long = inform(TIME, 1, &typed(&format!("X.{}", "a".repeat(MAX_NAME_BYTES)), "xsd:string", "v"));
    assert_eq!(acs(long, "long name"), FaultCode::AcsInvalidArguments);
    let deep = inform(TIME, 1, &typed(&"a.".repeat(MAX_NAME_SEGMENTS + 1), "xsd:string", "v"));
    assert_eq!(acs(deep, "deep name"), FaultCode::AcsInvalidArguments);
    // Malformed XML, DTDs, an undeclared charset.
    assert_eq!(acs(inform(TIME, 0, "").replace("</cwmp:Inform>", ""), "unclosed"), FaultCode::AcsInvalidArguments);
    let dtd = inform(TIME, 0, "").replace("<SOAP-ENV:Envelope", "<!DOCTYPE x []><SOAP-ENV:Envelope");
    assert_eq!(acs(dtd, "DTD"), FaultCode::AcsInvalidArguments);
    let charset = inform(TIME, 0, "").replace("UTF-8", "X-NOT-A-CHARSET");
    assert_eq!(acs(charset, "charset"), FaultCode::AcsInvalidArguments);
}

#[test]
fn quirks_are_capped_per_message() {
    let params: String = (0..200).map(|i| pv(&format!("X.P{i}"), "<Value>v</Value>")).collect();
    let d = lenient(inform(TIME, 200, &params));
    assert_eq!(inform_of(&d.envelope).parameter_list.len(), 200);
    assert_eq!((d.quirks.list.len(), d.quirks.dropped, d.quirks.total()), (64, 136, 200));
    assert!(d.quirks.list.iter().all(|q| q.kind == QuirkKind::UntypedValue));
}

#[test]
fn the_acs_session_reads_leniently_and_the_cpe_session_strictly() {
    let now = std::time::Instant::now();
    let xml = inform("", 1, &typed("X.Enable", "xsd:boolean", "True"));
    let mut acs = AcsSession::new(AcsConfig::default(), now);
    acs.handle_post(xml.as_bytes(), now);
    let quirks = acs.take_quirks();
    assert_eq!(
        quirks.list.iter().map(|q| q.kind.clone()).collect::<Vec<_>>(),
        [QuirkKind::InvalidDateTime, QuirkKind::BooleanCase]
    );
    assert!(acs.take_quirks().is_empty(), "taken once");
    assert!(matches!(acs.poll_event(), Some(cwmp::session::AcsEvent::Inform { .. })));

    // Strict on request: the same Inform is refused with 8003.
    let mut strict_acs = AcsSession::new(AcsConfig { lenient: false, ..AcsConfig::default() }, now);
    strict_acs.handle_post(xml.as_bytes(), now);
    let Some(Reply::Envelope(reply)) = strict_acs.poll_reply() else { panic!("no fault") };
    let Body::Fault(f) = strict(&reply).expect("fault").body else { panic!("{reply}") };
    assert_eq!(f.code, FaultCode::AcsInvalidArguments);

    // The CPE refuses an ACS request with the same quirk: 9006.
    let inform = inform_of(&strict(inform(TIME, 0, "")).expect("inform")).clone();
    let mut cpe = CpeSession::new(CpeConfig::default(), inform, vec![], now);
    let _ = cpe.poll_transmit();
    let resp = Envelope::new(CwmpNs::V1_2, Some("1".into()), Body::InformResponse(InformResponse { max_envelopes: 1 }));
    cpe.handle_response(200, resp.encode().as_bytes(), now);
    assert_eq!(cpe.poll_transmit(), Some(Transmit::Empty));
    let spv = format!(
        "{ENV_OPEN}<cwmp:SetParameterValues><ParameterList SOAP-ENC:arrayType=\"cwmp:ParameterValueStruct[1]\">{}</ParameterList><ParameterKey>k</ParameterKey></cwmp:SetParameterValues>{ENV_CLOSE}",
        typed("X.Enable", "xsd:boolean", "True")
    );
    cpe.handle_response(200, spv.as_bytes(), now);
    let Some(Transmit::Envelope(fault)) = cpe.poll_transmit() else { panic!("no fault sent") };
    let Body::Fault(f) = strict(&fault).expect("fault").body else { panic!("{fault}") };
    assert_eq!(f.code, FaultCode::InvalidParameterType);
}
