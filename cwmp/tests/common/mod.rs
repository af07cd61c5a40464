//! One sample of every message the crate can encode, shared by the schema and replay tests.
#![allow(dead_code)]

use cwmp::*;

pub fn device_id() -> DeviceId {
    DeviceId {
        manufacturer: "vRGW Project".into(),
        oui: "00A0B1".into(),
        product_class: "vRGW-Host".into(),
        serial_number: "host-0001".into(),
    }
}

pub fn inform(params: usize) -> Inform {
    let mut parameter_list = vec![
        ParameterValue::new("Device.DeviceInfo.HardwareVersion", Value::String("x86_64".into())),
        ParameterValue::new("Device.DeviceInfo.SoftwareVersion", Value::String("0.1.0".into())),
        ParameterValue::new("Device.DeviceInfo.UpTime", Value::UnsignedInt(3600)),
        ParameterValue::new("Device.ManagementServer.ParameterKey", Value::String("k-1".into())),
        ParameterValue::new(
            "Device.ManagementServer.ConnectionRequestURL",
            Value::String("http://127.0.0.1:7547/cr/host-0001".into()),
        ),
    ];
    for i in parameter_list.len()..params {
        parameter_list.push(ParameterValue::new(
            format!("Device.X_VRGW-ORG_Virtualization.Instance.{i}.Status"),
            if i % 3 == 0 { Value::Boolean(i % 2 == 0) } else { Value::String(format!("Running <{i}>")) },
        ));
    }
    parameter_list.truncate(params.max(1));
    Inform {
        device_id: device_id(),
        events: vec![Event::new("1 BOOT"), Event { code: "M Reboot".into(), command_key: "reboot-7".into() }],
        max_envelopes: 1,
        current_time: DateTime::from_unix(1_795_302_534),
        retry_count: 0,
        parameter_list,
    }
}

pub fn get_parameter_values_response(n: usize) -> GetParameterValuesResponse {
    GetParameterValuesResponse {
        parameter_list: (0..n)
            .map(|i| {
                let name = format!(
                    "Device.X_VRGW-ORG_Virtualization.Instance.{}.Device.DHCPv4.Server.Pool.1.P{}",
                    i / 30 + 1,
                    i % 30
                );
                let value = match i % 5 {
                    0 => Value::String(format!("192.168.{}.{}", i % 250, i % 200)),
                    1 => Value::UnsignedInt(i as u32 * 7),
                    2 => Value::Boolean(i % 2 == 0),
                    3 => Value::Int(-(i as i32)),
                    _ => Value::DateTime(DateTime::from_unix(1_795_302_534 + i as i64)),
                };
                ParameterValue::new(name, value)
            })
            .collect(),
    }
}

fn op_result() -> OpResult {
    OpResult {
        uuid: "6ba7b810-9dad-11d1-80b4-00c04fd430c8".into(),
        deployment_unit_ref: "Device.SoftwareModules.DeploymentUnit.1".into(),
        version: "1.0".into(),
        current_state: "Installed".into(),
        resolved: true,
        execution_unit_ref_list: "Device.SoftwareModules.ExecutionUnit.1".into(),
        start_time: DateTime::from_unix(1_795_302_000),
        complete_time: DateTime::from_unix(1_795_302_010),
        fault: TransferFault::none(),
    }
}

/// Every Body variant once.
pub fn bodies() -> Vec<Body> {
    let t0 = DateTime::from_unix(1_795_302_000);
    let t1 = DateTime::from_unix(1_795_302_060);
    vec![
        Body::GetRPCMethods(GetRPCMethods {}),
        Body::GetRPCMethodsResponse(GetRPCMethodsResponse {
            method_list: vec!["GetRPCMethods".into(), "SetParameterValues".into(), "AddObject".into()],
        }),
        Body::SetParameterValues(SetParameterValues {
            parameter_list: vec![
                ParameterValue::new("Device.WiFi.SSID.1.SSID", Value::String("Home & Garden".into())),
                ParameterValue::new("Device.DHCPv4.Server.Pool.1.LeaseTime", Value::Int(86400)),
                ParameterValue::new("Device.X.Long", Value::Long(-5_000_000_000)),
                ParameterValue::new("Device.X.ULong", Value::UnsignedLong(u64::MAX)),
                ParameterValue::new("Device.X.B64", Value::Base64("aGVsbG8=".into())),
                ParameterValue::new("Device.X.Hex", Value::HexBinary("00ff".into())),
                ParameterValue::new("Device.X.Dec", Value::Decimal("-1.25".into())),
            ],
            parameter_key: "spv-1".into(),
        }),
        Body::SetParameterValuesResponse(SetParameterValuesResponse { status: 0 }),
        Body::GetParameterValues(GetParameterValues {
            parameter_names: vec!["Device.DeviceInfo.".into(), "Device.WiFi.SSID.1.SSID".into()],
        }),
        Body::GetParameterValuesResponse(get_parameter_values_response(6)),
        Body::GetParameterNames(GetParameterNames { parameter_path: "Device.".into(), next_level: true }),
        Body::GetParameterNamesResponse(GetParameterNamesResponse {
            parameter_list: vec![
                ParameterInfo { name: "Device.DeviceInfo.".into(), writable: false },
                ParameterInfo { name: "Device.WiFi.SSID.1.SSID".into(), writable: true },
            ],
        }),
        Body::SetParameterAttributes(SetParameterAttributes {
            parameter_list: vec![SetParameterAttribute {
                name: "Device.X_VRGW-ORG_Virtualization.Instance.1.Status".into(),
                notification_change: true,
                notification: Notification::Active,
                access_list_change: false,
                access_list: vec![],
            }],
        }),
        Body::SetParameterAttributesResponse(SetParameterAttributesResponse {}),
        Body::GetParameterAttributes(GetParameterAttributes {
            parameter_names: vec!["Device.X_VRGW-ORG_Virtualization.".into()],
        }),
        Body::GetParameterAttributesResponse(GetParameterAttributesResponse {
            parameter_list: vec![ParameterAttribute {
                name: "Device.WiFi.SSID.1.SSID".into(),
                notification: Notification::Passive,
                access_list: vec!["Subscriber".into()],
            }],
        }),
        Body::AddObject(AddObject { object_name: "Device.NAT.PortMapping.".into(), parameter_key: "add-1".into() }),
        Body::AddObjectResponse(AddObjectResponse { instance_number: 4, status: 0 }),
        Body::DeleteObject(DeleteObject {
            object_name: "Device.NAT.PortMapping.4.".into(),
            parameter_key: "del-1".into(),
        }),
        Body::DeleteObjectResponse(DeleteObjectResponse { status: 0 }),
        Body::Reboot(Reboot { command_key: "reboot-7".into() }),
        Body::RebootResponse(RebootResponse {}),
        Body::Download(Download {
            command_key: "dl-1".into(),
            file_type: "1 Firmware Upgrade Image".into(),
            url: "http://127.0.0.1:8000/vrgw.img".into(),
            username: "".into(),
            password: "".into(),
            file_size: 4_194_304,
            target_file_name: "vrgw.img".into(),
            delay_seconds: 0,
            success_url: "".into(),
            failure_url: "".into(),
        }),
        Body::DownloadResponse(DownloadResponse {
            status: 1,
            start_time: DateTime::unknown(),
            complete_time: DateTime::unknown(),
        }),
        Body::Upload(Upload {
            command_key: "up-1".into(),
            file_type: "1 Vendor Configuration File".into(),
            url: "http://127.0.0.1:8000/up".into(),
            username: "u".into(),
            password: "p".into(),
            delay_seconds: 10,
        }),
        Body::UploadResponse(UploadResponse { status: 0, start_time: t0.clone(), complete_time: t1.clone() }),
        Body::FactoryReset(FactoryReset {}),
        Body::FactoryResetResponse(FactoryResetResponse {}),
        Body::ScheduleInform(ScheduleInform { delay_seconds: 60, command_key: "si-1".into() }),
        Body::ScheduleInformResponse(ScheduleInformResponse {}),
        Body::ScheduleDownload(ScheduleDownload {
            command_key: "sd-1".into(),
            file_type: "1 Firmware Upgrade Image".into(),
            url: "http://127.0.0.1:8000/fw".into(),
            username: "".into(),
            password: "".into(),
            file_size: 0,
            target_file_name: "".into(),
            time_window_list: vec![TimeWindow {
                window_start: 0,
                window_end: 3600,
                window_mode: "1 At Any Time".into(),
                user_message: "".into(),
                max_retries: -1,
            }],
        }),
        Body::ScheduleDownloadResponse(ScheduleDownloadResponse {}),
        Body::CancelTransfer(CancelTransfer { command_key: "dl-1".into() }),
        Body::CancelTransferResponse(CancelTransferResponse {}),
        Body::GetQueuedTransfers(GetQueuedTransfers {}),
        Body::GetQueuedTransfersResponse(GetQueuedTransfersResponse {
            transfer_list: vec![QueuedTransfer { command_key: "dl-1".into(), state: 1 }],
        }),
        Body::GetAllQueuedTransfers(GetAllQueuedTransfers {}),
        Body::GetAllQueuedTransfersResponse(GetAllQueuedTransfersResponse {
            transfer_list: vec![AllQueuedTransfer {
                command_key: "dl-1".into(),
                state: 2,
                is_download: true,
                file_type: "1 Firmware Upgrade Image".into(),
                file_size: 100,
                target_file_name: "fw".into(),
            }],
        }),
        Body::ChangeDUState(ChangeDUState {
            operations: vec![
                DuOperation::Install {
                    url: "http://127.0.0.1:8000/du.tar".into(),
                    uuid: "".into(),
                    username: "".into(),
                    password: "".into(),
                    execution_env_ref: "Device.SoftwareModules.ExecEnv.1".into(),
                },
                DuOperation::Update {
                    uuid: "6ba7b810-9dad-11d1-80b4-00c04fd430c8".into(),
                    version: "2.0".into(),
                    url: "http://127.0.0.1:8000/du2.tar".into(),
                    username: "".into(),
                    password: "".into(),
                },
                DuOperation::Uninstall {
                    uuid: "6ba7b810-9dad-11d1-80b4-00c04fd430c8".into(),
                    version: "1.0".into(),
                    execution_env_ref: "".into(),
                },
            ],
            command_key: "du-1".into(),
        }),
        Body::ChangeDUStateResponse(ChangeDUStateResponse {}),
        Body::GetOptions(GetOptions { option_name: String::new() }),
        Body::GetOptionsResponse(GetOptionsResponse {
            option_list: vec![
                OptionInfo {
                    option_name: "X_VRGW-ORG_Turbo".into(),
                    voucher_sn: 7,
                    state: 3,
                    mode: 1,
                    start_date: DateTime::from_unix(1_795_302_000),
                    expiration_date: Some(DateTime::from_unix(1_826_838_000)),
                    is_transferable: false,
                },
                OptionInfo {
                    option_name: "X_VRGW-ORG_Extra".into(),
                    voucher_sn: 8,
                    state: 0,
                    mode: 2,
                    start_date: DateTime::from_unix(1_795_302_000),
                    expiration_date: None,
                    is_transferable: true,
                },
            ],
        }),
        Body::SetVouchers(SetVouchers { voucher_list: vec!["PFZvdWNoZXIvPg==".into()] }),
        Body::SetVouchersResponse(SetVouchersResponse {}),
        Body::Inform(inform(5)),
        Body::InformResponse(InformResponse { max_envelopes: 1 }),
        Body::TransferComplete(TransferComplete {
            command_key: "dl-1".into(),
            fault: TransferFault { code: 9010, string: "Download failure".into() },
            start_time: t0.clone(),
            complete_time: t1.clone(),
        }),
        Body::TransferCompleteResponse(TransferCompleteResponse {}),
        Body::AutonomousTransferComplete(AutonomousTransferComplete {
            announce_url: "".into(),
            transfer_url: "http://127.0.0.1:8000/fw".into(),
            is_download: true,
            file_type: "1 Firmware Upgrade Image".into(),
            file_size: 1000,
            target_file_name: "fw".into(),
            fault: TransferFault::none(),
            start_time: t0.clone(),
            complete_time: t1.clone(),
        }),
        Body::AutonomousTransferCompleteResponse(AutonomousTransferCompleteResponse {}),
        Body::DUStateChangeComplete(DUStateChangeComplete { results: vec![op_result()], command_key: "du-1".into() }),
        Body::DUStateChangeCompleteResponse(DUStateChangeCompleteResponse {}),
        Body::AutonomousDUStateChangeComplete(AutonomousDUStateChangeComplete {
            results: vec![AutonOpResult { result: op_result(), operation_performed: "Install".into() }],
        }),
        Body::AutonomousDUStateChangeCompleteResponse(AutonomousDUStateChangeCompleteResponse {}),
        Body::RequestDownload(RequestDownload {
            file_type: "1 Firmware Upgrade Image".into(),
            file_type_arg: vec![Arg { name: "Version".into(), value: "2.0".into() }],
        }),
        Body::RequestDownloadResponse(RequestDownloadResponse {}),
        Body::Kicked(Kicked {
            command: "provision".into(),
            referer: "http://127.0.0.1/".into(),
            arg: "a=1".into(),
            next: "http://127.0.0.1/next".into(),
        }),
        Body::KickedResponse(KickedResponse { next_url: "http://127.0.0.1/next".into() }),
        Body::Fault(Fault {
            code: FaultCode::InvalidArguments,
            string: "Invalid arguments".into(),
            set_parameter_values_faults: vec![ParameterFault {
                parameter_name: "Device.WiFi.SSID.1.SSID".into(),
                code: FaultCode::InvalidParameterValue,
                string: "longer than 32 characters".into(),
            }],
        }),
    ]
}

/// Every message, in the cwmp-1-2 namespace, with the header elements each direction uses.
pub fn envelopes() -> Vec<Envelope> {
    bodies()
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let mut env = Envelope::new(CwmpNs::V1_2, Some(format!("id-{i}")), body);
            match &env.body {
                Body::Inform(_) => {
                    env.header.session_timeout = Some(60);
                    env.header.supported_cwmp_versions = Some("1.0,1.1,1.2,1.3,1.4".into());
                }
                Body::InformResponse(_) => {
                    env.header.use_cwmp_version = Some("1.4".into());
                    env.header.hold_requests = Some(false);
                }
                Body::GetRPCMethods(_) => env.header.no_more_requests = Some(true),
                _ => {}
            }
            env
        })
        .collect()
}
