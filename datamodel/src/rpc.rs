//! Serves the data-model RPCs of a CWMP session from a [`DataModel`]: the CPE-side bridge from
//! a decoded request to its response or fault.
//!
//! Besides the data model's own methods it answers those a device with no transfer queue and
//! no options answers from what it holds: GetQueuedTransfers and GetAllQueuedTransfers (none
//! queued), CancelTransfer (nothing to cancel: 9021), GetOptions (none held) and ScheduleInform
//! (accepted: the device's owner, which opens sessions, sees the request and informs with
//! "3 SCHEDULED" and "M ScheduleInform" after the delay).

use cwmp::{
    AddObjectResponse, Body, DeleteObjectResponse, Fault, FaultCode, GetAllQueuedTransfersResponse, GetOptionsResponse,
    GetParameterAttributesResponse, GetParameterNamesResponse, GetParameterValuesResponse, GetQueuedTransfersResponse,
    GetRPCMethodsResponse, ScheduleInformResponse, SetParameterAttributesResponse, SetParameterValuesResponse,
};

use crate::DataModel;

/// The methods [`serve`] answers.
pub const METHODS: &[&str] = &[
    "GetRPCMethods",
    "GetParameterValues",
    "SetParameterValues",
    "GetParameterNames",
    "SetParameterAttributes",
    "GetParameterAttributes",
    "AddObject",
    "DeleteObject",
    "ScheduleInform",
    "GetQueuedTransfers",
    "GetAllQueuedTransfers",
    "CancelTransfer",
    "GetOptions",
];

/// Answers a request from the ACS with the data model: a response, or a fault that says why.
/// Methods that need the device itself (Reboot, Download, Upload, ...) get 9000; the agent that
/// owns the device handles those before calling this.
pub fn serve(model: &mut DataModel, request: &Body) -> Body {
    let result: Result<Body, Fault> = match request {
        Body::GetRPCMethods(_) => Ok(Body::GetRPCMethodsResponse(GetRPCMethodsResponse {
            method_list: METHODS.iter().map(|m| m.to_string()).collect(),
        })),
        Body::GetParameterValues(r) => model
            .get_parameter_values(&r.parameter_names)
            .map(|parameter_list| Body::GetParameterValuesResponse(GetParameterValuesResponse { parameter_list })),
        Body::SetParameterValues(r) => model
            .set_parameter_values(&r.parameter_list, &r.parameter_key)
            .map(|status| Body::SetParameterValuesResponse(SetParameterValuesResponse { status })),
        Body::GetParameterNames(r) => model
            .get_parameter_names(&r.parameter_path, r.next_level)
            .map(|parameter_list| Body::GetParameterNamesResponse(GetParameterNamesResponse { parameter_list })),
        Body::SetParameterAttributes(r) => model
            .set_parameter_attributes(&r.parameter_list)
            .map(|()| Body::SetParameterAttributesResponse(SetParameterAttributesResponse {})),
        Body::GetParameterAttributes(r) => model.get_parameter_attributes(&r.parameter_names).map(|parameter_list| {
            Body::GetParameterAttributesResponse(GetParameterAttributesResponse { parameter_list })
        }),
        Body::AddObject(r) => model
            .add_object(&r.object_name, &r.parameter_key)
            .map(|instance_number| Body::AddObjectResponse(AddObjectResponse { instance_number, status: 0 })),
        Body::DeleteObject(r) => model
            .delete_object(&r.object_name, &r.parameter_key)
            .map(|()| Body::DeleteObjectResponse(DeleteObjectResponse { status: 0 })),
        Body::ScheduleInform(_) => Ok(Body::ScheduleInformResponse(ScheduleInformResponse {})),
        Body::GetQueuedTransfers(_) => {
            Ok(Body::GetQueuedTransfersResponse(GetQueuedTransfersResponse { transfer_list: Vec::new() }))
        }
        Body::GetAllQueuedTransfers(_) => {
            Ok(Body::GetAllQueuedTransfersResponse(GetAllQueuedTransfersResponse { transfer_list: Vec::new() }))
        }
        Body::CancelTransfer(r) => Err(Fault::with_string(
            FaultCode::CancelNotPermitted,
            format!("no transfer is queued under CommandKey {:?}", r.command_key),
        )),
        Body::GetOptions(_) => Ok(Body::GetOptionsResponse(GetOptionsResponse { option_list: Vec::new() })),
        other => Err(not_served(other)),
    };
    result.unwrap_or_else(Body::Fault)
}

/// The fault for what a data model does not serve: a response where a request belongs (9001),
/// or a method that needs the device itself (9000), which its owner handles before the data
/// model sees the request.
pub fn not_served(request: &Body) -> Fault {
    if request.is_response() {
        Fault::with_string(FaultCode::RequestDenied, format!("{} is not a request", request.method_name()))
    } else {
        Fault::with_string(
            FaultCode::MethodNotSupported,
            format!("{} is not a data-model method", request.method_name()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Schema, Tree};

    fn model() -> DataModel {
        DataModel::new(Tree::new(Schema::host()))
    }

    #[test]
    fn a_device_without_transfers_or_options_answers_from_what_it_holds() {
        let mut m = model();
        let si = cwmp::ScheduleInform { delay_seconds: 30, command_key: "k".into() };
        assert_eq!(serve(&mut m, &Body::ScheduleInform(si)), Body::ScheduleInformResponse(ScheduleInformResponse {}));
        let Body::GetQueuedTransfersResponse(q) = serve(&mut m, &Body::GetQueuedTransfers(cwmp::GetQueuedTransfers {}))
        else {
            panic!("a GetQueuedTransfersResponse")
        };
        assert!(q.transfer_list.is_empty());
        let all = serve(&mut m, &Body::GetAllQueuedTransfers(cwmp::GetAllQueuedTransfers {}));
        assert!(matches!(all, Body::GetAllQueuedTransfersResponse(r) if r.transfer_list.is_empty()));
        let o = serve(&mut m, &Body::GetOptions(cwmp::GetOptions { option_name: String::new() }));
        assert!(matches!(o, Body::GetOptionsResponse(r) if r.option_list.is_empty()));
        let Body::Fault(f) = serve(&mut m, &Body::CancelTransfer(cwmp::CancelTransfer { command_key: "x".into() }))
        else {
            panic!("a fault")
        };
        assert_eq!(f.code, FaultCode::CancelNotPermitted);
        let up = cwmp::Upload {
            command_key: "u".into(),
            file_type: "1 Vendor Configuration File".into(),
            url: "http://acs/".into(),
            username: String::new(),
            password: String::new(),
            delay_seconds: 0,
        };
        assert!(matches!(serve(&mut m, &Body::Upload(up)), Body::Fault(f) if f.code == FaultCode::MethodNotSupported));
        let Body::GetRPCMethodsResponse(r) = serve(&mut m, &Body::GetRPCMethods(cwmp::GetRPCMethods {})) else {
            panic!("methods")
        };
        assert!(r.method_list.iter().any(|n| n == "GetOptions"));
    }

    #[test]
    fn attributes_are_kept_per_parameter_and_names_list_writability() {
        let mut m = model();
        let p = "Device.ManagementServer.PeriodicInformInterval";
        let set = cwmp::SetParameterAttributes {
            parameter_list: vec![cwmp::SetParameterAttribute {
                name: p.into(),
                notification_change: true,
                notification: cwmp::Notification::Passive,
                access_list_change: true,
                access_list: vec!["Subscriber".into()],
            }],
        };
        assert!(matches!(serve(&mut m, &Body::SetParameterAttributes(set)), Body::SetParameterAttributesResponse(_)));
        let get =
            cwmp::GetParameterAttributes { parameter_names: vec![p.into(), "Device.ManagementServer.URL".into()] };
        let Body::GetParameterAttributesResponse(r) = serve(&mut m, &Body::GetParameterAttributes(get)) else {
            panic!("attributes")
        };
        assert_eq!(r.parameter_list[0].notification, cwmp::Notification::Passive);
        assert_eq!(r.parameter_list[0].access_list, vec!["Subscriber".to_string()]);
        assert_eq!(r.parameter_list[1].notification, cwmp::Notification::Off, "only the one set");
        let gpn = cwmp::GetParameterNames { parameter_path: "Device.ManagementServer.".into(), next_level: true };
        let Body::GetParameterNamesResponse(r) = serve(&mut m, &Body::GetParameterNames(gpn)) else { panic!("names") };
        let interval = r.parameter_list.iter().find(|i| i.name == p).expect("listed");
        assert!(interval.writable);
    }
}
