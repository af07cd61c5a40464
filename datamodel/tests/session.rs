//! A whole CWMP session in memory: ACS session, CPE session and the host's data model (with a
//! vRGW data model mounted) linked back to back, no sockets.

use std::time::Instant;

use cwmp::session::{AcsConfig, AcsEvent, AcsSession, CpeConfig, CpeEvent, CpeSession, Reply, Transmit};
use cwmp::*;
use datamodel::{DataModel, Schema, Tree};

const I1: &str = "Device.X_VRGW-ORG_Virtualization.Instance.1.";

fn inform() -> Inform {
    Inform {
        device_id: DeviceId {
            manufacturer: "m".into(),
            oui: "00A0B1".into(),
            product_class: "h".into(),
            serial_number: "s".into(),
        },
        events: vec![Event::new(event::CONNECTION_REQUEST)],
        max_envelopes: 1,
        current_time: DateTime::from_unix(0),
        retry_count: 0,
        parameter_list: vec![],
    }
}

/// Runs `requests` through a session against `host`; returns the ACS's view of each answer.
fn run(host: &mut DataModel, requests: Vec<Body>) -> Vec<Body> {
    let now = Instant::now();
    let mut cpe = CpeSession::new(CpeConfig::default(), inform(), vec![], now);
    let mut acs = AcsSession::new(AcsConfig::default(), now);
    let mut requests = Some(requests);
    let mut answers = Vec::new();
    while let Some(tx) = cpe.poll_transmit() {
        let body = match tx {
            Transmit::Envelope(s) => s,
            Transmit::Empty => String::new(),
        };
        acs.handle_post(body.as_bytes(), now);
        while let Some(ev) = acs.poll_event() {
            match ev {
                AcsEvent::Inform { .. } => requests.take().into_iter().flatten().for_each(|r| acs.queue_request(r)),
                AcsEvent::Response { response, .. } => answers.push(response),
                _ => {}
            }
        }
        match acs.poll_reply().expect("reply") {
            Reply::Envelope(s) => cpe.handle_response(200, s.as_bytes(), now),
            Reply::NoContent => cpe.handle_response(204, b"", now),
        }
        while let Some(ev) = cpe.poll_event() {
            if let CpeEvent::Request(req) = ev {
                let resp = datamodel::rpc::serve(host, &req);
                if let (Body::AddObject(_), Body::AddObjectResponse(r)) = (&req, &resp) {
                    let mut vrgw = Tree::new(Schema::vrgw());
                    vrgw.add_object("Device.DHCPv4.Server.Pool.").expect("pool");
                    host.mount(
                        &format!("Device.X_VRGW-ORG_Virtualization.Instance.{}.Device.", r.instance_number),
                        Box::new(vrgw),
                    );
                }
                cpe.respond(resp, now).expect("respond");
            }
        }
    }
    assert!(cpe.is_done() && acs.is_done());
    answers
}

#[test]
fn provisioning_session_through_the_data_model() {
    let mut host = DataModel::new(Tree::new(Schema::host()));
    let pool = format!("{I1}Device.DHCPv4.Server.Pool.1.");
    let answers = run(
        &mut host,
        vec![
            Body::AddObject(AddObject {
                object_name: "Device.X_VRGW-ORG_Virtualization.Instance.".into(),
                parameter_key: "a".into(),
            }),
            Body::SetParameterValues(SetParameterValues {
                parameter_list: vec![
                    ParameterValue::new(format!("{I1}SVLAN"), Value::UnsignedInt(100)),
                    ParameterValue::new(format!("{pool}MinAddress"), Value::String("192.168.7.100".into())),
                ],
                parameter_key: "p".into(),
            }),
            Body::SetParameterValues(SetParameterValues {
                parameter_list: vec![ParameterValue::new(
                    format!("{pool}MaxAddress"),
                    Value::String("192.168.7.300".into()),
                )],
                parameter_key: "bad".into(),
            }),
            Body::GetParameterValues(GetParameterValues {
                parameter_names: vec![format!("{pool}MinAddress"), format!("{I1}SVLAN")],
            }),
            Body::GetParameterNames(GetParameterNames { parameter_path: I1.into(), next_level: true }),
            Body::Reboot(Reboot { command_key: "r".into() }),
            Body::DeleteObject(DeleteObject { object_name: I1.into(), parameter_key: "d".into() }),
        ],
    );
    assert_eq!(answers.len(), 7);
    assert!(matches!(&answers[0], Body::AddObjectResponse(r) if r.instance_number == 1));
    assert!(matches!(&answers[1], Body::SetParameterValuesResponse(r) if r.status == 0));
    let Body::Fault(f) = &answers[2] else { panic!("{:?}", answers[2]) };
    assert_eq!(f.code, FaultCode::InvalidArguments);
    assert_eq!(f.set_parameter_values_faults[0].code, FaultCode::InvalidParameterValue);
    let Body::GetParameterValuesResponse(g) = &answers[3] else { panic!() };
    assert_eq!(g.parameter_list[0].value, Value::String("192.168.7.100".into()));
    assert_eq!(g.parameter_list[1].value, Value::UnsignedInt(100));
    let Body::GetParameterNamesResponse(n) = &answers[4] else { panic!() };
    assert!(n.parameter_list.iter().any(|p| p.name == format!("{I1}Device.")));
    assert!(matches!(&answers[5], Body::Fault(f) if f.code == FaultCode::MethodNotSupported));
    assert!(matches!(&answers[6], Body::DeleteObjectResponse(_)));
    assert_eq!(host.parameter_key(), "d");
    assert_eq!(host.mounts().count(), 0);
}
