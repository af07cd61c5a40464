//! Decoding what real CPEs and ACSs send, and refusing what no one should.

use cwmp::*;

fn decode(bytes: &[u8]) -> Result<Envelope, DecodeError> {
    Envelope::decode(bytes, &Limits::default())
}

#[test]
fn soap_env_prefix_cwmp_1_0_padded_arrays_and_untyped_values() {
    let env = decode(include_bytes!("data/inform-soapenv-prefix.xml")).expect("decodes");
    assert_eq!(env.ns, CwmpNs::V1_0);
    assert_eq!(env.header.id.as_deref(), Some("1234567"));
    let Body::Inform(inform) = env.body else { panic!("not an Inform") };
    assert_eq!(inform.device_id.manufacturer, "Acme & Sons");
    assert_eq!(inform.device_id.serial_number, "ABC123");
    assert_eq!(inform.events.len(), 2);
    assert!(inform.has_event("0 BOOTSTRAP"));
    assert_eq!(inform.current_time.as_str(), "2026-11-21T23:08:54+01:00");
    assert_eq!(inform.parameter_list[1].value, Value::UnsignedInt(42));
    assert_eq!(inform.parameter_list[2].value, Value::String("http://127.0.0.1:30005/".into()));
}

#[test]
fn default_namespace_and_true_must_understand() {
    let env = decode(include_bytes!("data/gpv-default-ns.xml")).expect("decodes");
    assert_eq!(env.ns, CwmpNs::V1_1);
    assert_eq!(env.header.id.as_deref(), Some("acs-9"));
    assert_eq!(
        env.body,
        Body::GetParameterValues(GetParameterValues { parameter_names: vec!["Device.DeviceInfo.".into()] })
    );
}

#[test]
fn charset_from_the_prolog_and_boms() {
    let env = decode(include_bytes!("data/spv-latin1.xml")).expect("latin-1 decodes");
    let Body::SetParameterValues(spv) = env.body else { panic!() };
    assert_eq!(spv.parameter_list[0].value, Value::String("Café".into()));

    let plain = Envelope::new(CwmpNs::V1_2, Some("é".into()), Body::FactoryReset(FactoryReset {})).encode();
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend_from_slice(plain.as_bytes());
    assert_eq!(decode(&bom).expect("utf-8 bom").header.id.as_deref(), Some("é"));

    let mut utf16 = vec![0xFF, 0xFE];
    for unit in plain.replace("UTF-8", "UTF-16").encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    assert_eq!(decode(&utf16).expect("utf-16 bom").header.id.as_deref(), Some("é"));

    let bogus = plain.replace("UTF-8", "X-NO-SUCH-CHARSET");
    let err = decode(bogus.as_bytes()).expect_err("unknown charset");
    assert!(matches!(err.kind, DecodeErrorKind::UnsupportedEncoding(ref c) if c == "X-NO-SUCH-CHARSET"));
}

#[test]
fn whitespace_and_comments_everywhere() {
    let xml = "\n\n<!-- lead --><soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:cwmp=\"urn:dslforum-org:cwmp-1-2\">\n <soap:Body> <!-- c -->\n  <cwmp:AddObject>\n   <ObjectName> Device.NAT.PortMapping. </ObjectName><!-- c -->\n   <ParameterKey>a<!-- split -->b</ParameterKey>\n  </cwmp:AddObject>\n </soap:Body>\n</soap:Envelope>\n<!-- trail -->\n";
    let env = decode(xml.as_bytes()).expect("decodes");
    assert_eq!(
        env.body,
        Body::AddObject(AddObject { object_name: "Device.NAT.PortMapping.".into(), parameter_key: "ab".into() })
    );
}

#[test]
fn dtds_and_entities_are_refused() {
    let billion_laughs = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><x>&lol2;</x></soap:Body></soap:Envelope>"#;
    let err = decode(billion_laughs.as_bytes()).expect_err("DTD refused");
    assert_eq!(err.kind, DecodeErrorKind::Dtd);
    assert_eq!((err.line, err.column), (1, 22));
    assert_eq!(err.fault_code(Role::Cpe), FaultCode::InvalidArguments);
    assert_eq!(err.fault_code(Role::Acs), FaultCode::AcsInvalidArguments);

    let entity = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><cwmp:Reboot xmlns:cwmp="urn:dslforum-org:cwmp-1-2"><CommandKey>&xxe;</CommandKey></cwmp:Reboot></soap:Body></soap:Envelope>"#;
    let err = decode(entity.as_bytes()).expect_err("undefined entity refused");
    assert_eq!(err.kind, DecodeErrorKind::UndefinedEntity("xxe".into()));
}

#[test]
fn size_and_depth_limits() {
    let big = Envelope::new(
        CwmpNs::V1_2,
        None,
        Body::GetParameterValuesResponse(GetParameterValuesResponse {
            parameter_list: (0..1000).map(|i| ParameterValue::new(format!("A.{i}"), Value::Int(i))).collect(),
        }),
    )
    .encode();
    let small = Limits { max_body: 10_000, ..Limits::default() };
    let err = Envelope::decode(big.as_bytes(), &small).expect_err("too large");
    assert!(matches!(err.kind, DecodeErrorKind::TooLarge { limit: 10_000, .. }));
    assert_eq!(err.fault_code(Role::Cpe), FaultCode::ResourcesExceeded);
    assert_eq!(err.fault_code(Role::Acs), FaultCode::AcsResourcesExceeded);
    assert!(Envelope::decode(big.as_bytes(), &Limits::default()).is_ok());

    let deep = format!(
        "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body>{}{}</soap:Body></soap:Envelope>",
        "<a>".repeat(100),
        "</a>".repeat(100)
    );
    assert!(matches!(decode(deep.as_bytes()).expect_err("too deep").kind, DecodeErrorKind::TooDeep(32)));
}

#[test]
fn errors_say_what_and_where() {
    let xml = "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:cwmp=\"urn:dslforum-org:cwmp-1-2\">\n<soap:Body>\n<cwmp:AddObjectResponse>\n  <InstanceNumber>many</InstanceNumber>\n  <Status>0</Status>\n</cwmp:AddObjectResponse></soap:Body></soap:Envelope>";
    let err = decode(xml.as_bytes()).expect_err("bad number");
    assert_eq!((err.line, err.column), (4, 3));
    assert!(err.to_string().contains("\"InstanceNumber\" has value \"many\", expected unsignedInt"), "{err}");

    let missing = xml.replace("<Status>0</Status>", "");
    let err = decode(missing.replace("many", "2").as_bytes()).expect_err("missing Status");
    assert!(matches!(err.kind, DecodeErrorKind::MissingElement { child: "Status", .. }));
    assert_eq!(err.line, 3);

    let wrong_type = "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soap:Body><cwmp:SetParameterValues xmlns:cwmp=\"urn:dslforum-org:cwmp-1-2\"><ParameterList><ParameterValueStruct><Name>A</Name><Value xsi:type=\"xsd:boolean\">maybe</Value></ParameterValueStruct></ParameterList><ParameterKey/></cwmp:SetParameterValues></soap:Body></soap:Envelope>";
    let err = decode(wrong_type.as_bytes()).expect_err("bad boolean");
    assert_eq!(err.fault_code(Role::Cpe), FaultCode::InvalidParameterType);

    let unknown = "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Body><cwmp:Frobnicate xmlns:cwmp=\"urn:dslforum-org:cwmp-1-2\"/></soap:Body></soap:Envelope>";
    let err = decode(unknown.as_bytes()).expect_err("unknown method");
    assert_eq!(err.kind, DecodeErrorKind::UnknownMethod("Frobnicate".into()));
    assert_eq!(err.fault_code(Role::Cpe), FaultCode::MethodNotSupported);

    let must = "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"><soap:Header><x:Y xmlns:x=\"urn:x\" soap:mustUnderstand=\"1\"/></soap:Header><soap:Body><cwmp:FactoryReset xmlns:cwmp=\"urn:dslforum-org:cwmp-1-2\"/></soap:Body></soap:Envelope>";
    assert_eq!(decode(must.as_bytes()).expect_err("must understand").kind, DecodeErrorKind::MustUnderstand("Y".into()));
    assert!(decode(must.replace("=\"1\"", "=\"0\"").as_bytes()).is_ok());

    for bad in
        ["", "<", "<a></b>", "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/envelope/\"/>", "\u{0}"]
    {
        assert!(decode(bad.as_bytes()).is_err(), "{bad:?}");
    }
}

#[test]
fn faults_with_parameter_faults_decode() {
    let xml = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:cwmp="urn:dslforum-org:cwmp-1-0"><soapenv:Body><soapenv:Fault><faultcode>Client</faultcode><faultstring>CWMP fault</faultstring><detail><cwmp:Fault><FaultCode>9003</FaultCode><FaultString>Invalid arguments</FaultString><SetParameterValuesFault><ParameterName>Device.A</ParameterName><FaultCode>9007</FaultCode><FaultString>bad</FaultString></SetParameterValuesFault><SetParameterValuesFault><ParameterName>Device.B</ParameterName><FaultCode>9008</FaultCode></SetParameterValuesFault></cwmp:Fault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#;
    let Body::Fault(f) = decode(xml.as_bytes()).expect("decodes").body else { panic!() };
    assert_eq!(f.code, FaultCode::InvalidArguments);
    assert_eq!(f.set_parameter_values_faults.len(), 2);
    assert_eq!(f.set_parameter_values_faults[1].code, FaultCode::NonWritableParameter);
}
