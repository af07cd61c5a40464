//! The foundation at work, all in memory: an ACS session and a host's CPE session linked back to
//! back. The ACS creates a vRGW instance, binds its VLANs, sets the vRGW's DHCP pool (embedded data
//! model), asks for active notification, reads values back and deletes nothing; every message is
//! encoded, decoded and validated on the way.
//!
//! `cargo run -p datamodel --example demo`

use std::time::Instant;

use cwmp::session::{AcsConfig, AcsEvent, AcsSession, CpeConfig, CpeEvent, CpeSession, Reply, Transmit};
use cwmp::*;
use datamodel::{DataModel, Schema, Tree};

const INSTANCES: &str = "Device.X_VRGW-ORG_Virtualization.Instance.";

fn main() {
    let now = Instant::now();
    let mut host = DataModel::new(Tree::new(Schema::host()));
    let inform = Inform {
        device_id: DeviceId {
            manufacturer: "vRGW Project".into(),
            oui: "00A0B1".into(),
            product_class: "vRGW-Host".into(),
            serial_number: "demo-host".into(),
        },
        events: vec![Event::new(event::BOOTSTRAP), Event::new(event::BOOT)],
        max_envelopes: 1,
        current_time: DateTime::from_unix(1_795_302_534),
        retry_count: 0,
        parameter_list: vec![ParameterValue::new(
            "Device.DeviceInfo.SoftwareVersion",
            Value::String(env!("CARGO_PKG_VERSION").into()),
        )],
    };
    let mut cpe = CpeSession::new(CpeConfig::default(), inform, vec![], now);
    let mut acs = AcsSession::new(AcsConfig::default(), now);
    let mut step = 0;
    while let Some(tx) = cpe.poll_transmit() {
        let body = match tx {
            Transmit::Envelope(s) => s,
            Transmit::Empty => String::new(),
        };
        println!("CPE -> ACS  {:>5} bytes  {}", body.len(), summary(body.as_bytes()));
        acs.handle_post(body.as_bytes(), now);
        while let Some(ev) = acs.poll_event() {
            match ev {
                AcsEvent::Inform { inform, version, .. } => {
                    println!(
                        "            ACS: Inform from {} (CWMP {}), events {:?}",
                        inform.device_id.key(),
                        version.as_str(),
                        inform.events.iter().map(|e| e.code.as_str()).collect::<Vec<_>>()
                    );
                    for r in plan() {
                        acs.queue_request(r);
                    }
                }
                AcsEvent::Response { response, .. } => println!("            ACS: {}", describe(&response)),
                AcsEvent::Failed { error, .. } => println!("            ACS: session failed: {error}"),
                _ => {}
            }
        }
        let Some(reply) = acs.poll_reply() else { break };
        match reply {
            Reply::Envelope(s) => {
                println!("ACS -> CPE  {:>5} bytes  {}", s.len(), summary(s.as_bytes()));
                cpe.handle_response(200, s.as_bytes(), now);
            }
            Reply::NoContent => {
                println!("ACS -> CPE  204 No Content");
                cpe.handle_response(204, b"", now);
            }
        }
        while let Some(ev) = cpe.poll_event() {
            if let CpeEvent::Request(req) = ev {
                let resp = datamodel::rpc::serve(&mut host, &req);
                if let (Body::AddObject(a), Body::AddObjectResponse(r)) = (&req, &resp) {
                    if a.object_name == INSTANCES {
                        // The host agent's job: mount the new vRGW's own data model.
                        let mut vrgw = Tree::new(Schema::vrgw());
                        let _ = vrgw.add_object("Device.DHCPv4.Server.Pool.");
                        host.mount(&format!("{INSTANCES}{}.Device.", r.instance_number), Box::new(vrgw));
                    }
                }
                if let Err(e) = cpe.respond(resp, now) {
                    println!("CPE: {e}");
                }
            }
        }
        step += 1;
        if step > 50 {
            break;
        }
    }
    println!("session done: CPE {} ACS {}; ParameterKey {:?}", cpe.is_done(), acs.is_done(), host.parameter_key());
}

fn plan() -> Vec<Body> {
    let i = "Device.X_VRGW-ORG_Virtualization.Instance.1.";
    let pool = format!("{i}Device.DHCPv4.Server.Pool.1.");
    vec![
        Body::AddObject(AddObject { object_name: INSTANCES.into(), parameter_key: "add-1".into() }),
        Body::SetParameterValues(SetParameterValues {
            parameter_list: vec![
                ParameterValue::new(format!("{i}Subscriber"), Value::String("alice".into())),
                ParameterValue::new(format!("{i}SVLAN"), Value::UnsignedInt(100)),
                ParameterValue::new(format!("{i}CVLAN"), Value::UnsignedInt(7)),
                ParameterValue::new(format!("{pool}MinAddress"), Value::String("192.168.7.100".into())),
                ParameterValue::new(format!("{pool}MaxAddress"), Value::String("192.168.7.199".into())),
                ParameterValue::new(format!("{pool}Enable"), Value::Boolean(true)),
            ],
            parameter_key: "provision-alice".into(),
        }),
        Body::SetParameterValues(SetParameterValues {
            parameter_list: vec![ParameterValue::new(
                format!("{pool}MinAddress"),
                Value::String("192.168.7.300".into()),
            )],
            parameter_key: "bad".into(),
        }),
        Body::SetParameterAttributes(SetParameterAttributes {
            parameter_list: vec![SetParameterAttribute {
                name: format!("{i}Status"),
                notification_change: true,
                notification: Notification::Active,
                access_list_change: false,
                access_list: vec![],
            }],
        }),
        Body::GetParameterValues(GetParameterValues {
            parameter_names: vec![
                format!("{i}Subscriber"),
                format!("{pool}MinAddress"),
                "Device.ManagementServer.ParameterKey".into(),
            ],
        }),
    ]
}

fn summary(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "(empty POST)".into();
    }
    match Envelope::decode(bytes, &Limits::default()) {
        Ok(e) => e.body.method_name().to_string(),
        Err(e) => format!("undecodable: {e}"),
    }
}

fn describe(b: &Body) -> String {
    match b {
        Body::GetParameterValuesResponse(r) => r
            .parameter_list
            .iter()
            .map(|p| format!("{} = {}", p.name, p.value))
            .collect::<Vec<_>>()
            .join("\n                 "),
        Body::AddObjectResponse(r) => format!("AddObject gave instance {}", r.instance_number),
        Body::Fault(f) => format!(
            "fault {} {}: {}",
            f.code.code(),
            f.string,
            f.set_parameter_values_faults
                .iter()
                .map(|p| format!("{} ({} {})", p.parameter_name, p.code.code(), p.string))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        other => other.method_name().to_string(),
    }
}
