//! Serves the data-model RPCs of a CWMP session from a [`DataModel`]: the CPE-side bridge from
//! a decoded request to its response or fault.

use cwmp::{
    AddObjectResponse, Body, DeleteObjectResponse, Fault, FaultCode, GetParameterAttributesResponse,
    GetParameterNamesResponse, GetParameterValuesResponse, GetRPCMethodsResponse, SetParameterAttributesResponse,
    SetParameterValuesResponse,
};

use crate::DataModel;

/// The data-model methods [`serve`] answers.
pub const METHODS: &[&str] = &[
    "GetRPCMethods",
    "GetParameterValues",
    "SetParameterValues",
    "GetParameterNames",
    "SetParameterAttributes",
    "GetParameterAttributes",
    "AddObject",
    "DeleteObject",
];

/// Answers a request from the ACS with the data model: a response, or a fault that says why.
/// Methods that are not about the data model (Reboot, Download, ...) get 9000; the agent that
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
        other if other.is_response() => {
            Err(Fault::with_string(FaultCode::RequestDenied, format!("{} is not a request", other.method_name())))
        }
        other => Err(Fault::with_string(
            FaultCode::MethodNotSupported,
            format!("{} is not a data-model method", other.method_name()),
        )),
    };
    result.unwrap_or_else(Body::Fault)
}
