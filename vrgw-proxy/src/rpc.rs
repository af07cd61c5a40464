//! The XML-RPC methods the host's agent calls. Values travel as `{name, type, value}` structs
//! with the xsd type name and the lexical value, so nothing is lost between CWMP and here.
//! Faults carry CWMP fault codes (9003, 9005 to 9008, 9002) and name the parameter and reason.

use std::sync::{Arc, Mutex};

use cwmp::{ParameterValue, Value as CwmpValue, XsdType};
use xmlrpc::{Fault as RpcFault, Server, Value};

use crate::proxy::Proxy;

fn rpc_fault(f: cwmp::Fault) -> RpcFault {
    RpcFault::new(f.code.code() as i32, f.string)
}

fn invalid(msg: impl Into<String>) -> RpcFault {
    RpcFault::new(cwmp::FaultCode::InvalidArguments.code() as i32, msg)
}

fn xsd_name(t: XsdType) -> &'static str {
    t.qname().trim_start_matches("xsd:")
}

/// A CWMP value from what the caller sent: `{name, value[, type]}`.
fn parameter(v: &Value) -> Result<ParameterValue, RpcFault> {
    let name = v.get("name").and_then(Value::as_str).ok_or_else(|| invalid("each value needs a name"))?;
    let raw = v.get("value").ok_or_else(|| invalid(format!("{name}: no value")))?;
    let lexical = match raw {
        Value::String(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::I8(i) => i.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Double(d) => d.to_string(),
        other => {
            return Err(RpcFault::new(
                cwmp::FaultCode::InvalidParameterType.code() as i32,
                format!("{name}: a {} cannot be a parameter value", other.type_name()),
            ))
        }
    };
    let ty = match v.get("type").and_then(Value::as_str) {
        Some(t) => XsdType::from_local(t).ok_or_else(|| {
            RpcFault::new(cwmp::FaultCode::InvalidParameterType.code() as i32, format!("{name}: unknown type {t:?}"))
        })?,
        None => match raw {
            Value::Int(_) => XsdType::Int,
            Value::I8(_) => XsdType::Long,
            Value::Bool(_) => XsdType::Boolean,
            _ => XsdType::String,
        },
    };
    let value = CwmpValue::parse(ty, &lexical)
        .map_err(|e| RpcFault::new(cwmp::FaultCode::InvalidParameterType.code() as i32, format!("{name}: {e}")))?;
    Ok(ParameterValue::new(name, value))
}

fn out(p: ParameterValue) -> Value {
    Value::structure([
        ("name", Value::String(p.name)),
        ("type", Value::String(xsd_name(p.value.xsd_type()).into())),
        ("value", Value::String(p.value.to_lexical().into_owned())),
    ])
}

fn strings(params: &[Value]) -> Result<Vec<String>, RpcFault> {
    let list: Vec<&Value> = match params {
        [Value::Array(a)] => a.iter().collect(),
        other => other.iter().collect(),
    };
    list.into_iter().map(|v| v.as_str().map(str::to_string).ok_or_else(|| invalid("paths are strings"))).collect()
}

fn key_at(params: &[Value], i: usize) -> Result<String, RpcFault> {
    match params.get(i) {
        None => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(invalid("the parameter key is a string")),
    }
}

/// Registers the proxy's methods.
pub fn register(server: &mut Server, proxy: Arc<Mutex<Proxy>>) {
    let p = proxy.clone();
    server.register(
        "get",
        "Values of full or partial parameter paths: [{name, type, value}].",
        &[&["array", "array"]],
        move |params| {
            let paths = strings(&params)?;
            let mut g = p.lock().unwrap_or_else(|e| e.into_inner());
            let vals = g.get(&paths).map_err(rpc_fault)?;
            Ok(Value::Array(vals.into_iter().map(out).collect()))
        },
    );
    let p = proxy.clone();
    server.register(
        "set",
        "Sets values all-or-nothing: ([{name, value, type?}], parameter_key). Returns 0.",
        &[&["int", "array", "string"]],
        move |params| {
            let list = match params.first() {
                Some(Value::Array(a)) => a.iter().map(parameter).collect::<Result<Vec<_>, _>>()?,
                _ => return Err(invalid("set takes an array of {name, value, type?}")),
            };
            let key = key_at(&params, 1)?;
            let mut g = p.lock().unwrap_or_else(|e| e.into_inner());
            g.set(&list, &key).map_err(rpc_fault)?;
            Ok(Value::Int(0))
        },
    );
    let p = proxy.clone();
    server.register(
        "validate",
        "Checks values as set would, applying nothing: ([{name, value, type?}]) -> [{name, code, reason}], \
         empty when every value would be accepted.",
        &[&["array", "array"]],
        move |params| {
            let list = match params.first() {
                Some(Value::Array(a)) => a.iter().map(parameter).collect::<Result<Vec<_>, _>>()?,
                _ => return Err(invalid("validate takes an array of {name, value, type?}")),
            };
            let g = p.lock().unwrap_or_else(|e| e.into_inner());
            match g.validate(&list) {
                Ok(()) => Ok(Value::Array(Vec::new())),
                Err(f) if !f.set_parameter_values_faults.is_empty() => Ok(Value::Array(
                    f.set_parameter_values_faults
                        .into_iter()
                        .map(|pf| {
                            Value::structure([
                                ("name", Value::String(pf.parameter_name)),
                                ("code", Value::Int(pf.code.code() as i32)),
                                ("reason", Value::String(pf.string)),
                            ])
                        })
                        .collect(),
                )),
                Err(f) => Err(rpc_fault(f)),
            }
        },
    );
    let p = proxy.clone();
    server.register(
        "names",
        "GetParameterNames: (path, next_level) -> [{name, writable}].",
        &[&["array", "string", "boolean"]],
        move |params| {
            let path = params.first().and_then(Value::as_str).unwrap_or("").to_string();
            let next = params.get(1).and_then(Value::as_bool).unwrap_or(false);
            let mut g = p.lock().unwrap_or_else(|e| e.into_inner());
            let names = g.names(&path, next).map_err(rpc_fault)?;
            Ok(Value::Array(
                names
                    .into_iter()
                    .map(|n| Value::structure([("name", Value::String(n.name)), ("writable", Value::Bool(n.writable))]))
                    .collect(),
            ))
        },
    );
    let p = proxy.clone();
    server.register(
        "add_object",
        "AddObject: (table path, parameter_key) -> instance number.",
        &[&["int", "string", "string"]],
        move |params| {
            let path =
                params.first().and_then(Value::as_str).ok_or_else(|| invalid("add_object takes a path"))?.to_string();
            let key = key_at(&params, 1)?;
            let mut g = p.lock().unwrap_or_else(|e| e.into_inner());
            let n = g.add_object(&path, &key).map_err(rpc_fault)?;
            Ok(Value::from(i64::from(n)))
        },
    );
    let p = proxy.clone();
    server.register(
        "delete_object",
        "DeleteObject: (instance path, parameter_key) -> 0.",
        &[&["int", "string", "string"]],
        move |params| {
            let path = params
                .first()
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("delete_object takes a path"))?
                .to_string();
            let key = key_at(&params, 1)?;
            let mut g = p.lock().unwrap_or_else(|e| e.into_inner());
            g.delete_object(&path, &key).map_err(rpc_fault)?;
            Ok(Value::Int(0))
        },
    );
    let p = proxy.clone();
    server.register(
        "factory_reset",
        "Restores the factory configuration and applies it.",
        &[&["boolean"]],
        move |_| {
            let mut g = p.lock().unwrap_or_else(|e| e.into_inner());
            g.factory_reset().map_err(rpc_fault)?;
            Ok(Value::Bool(true))
        },
    );
    let p = proxy.clone();
    server.register("reboot", "Reboots the vRGW (runs the configured reboot command).", &[&["boolean"]], move |_| {
        let cmd = p.lock().unwrap_or_else(|e| e.into_inner()).settings.reboot_command.clone();
        let Some((prog, args)) = cmd.split_first() else {
            return Err(RpcFault::new(cwmp::FaultCode::RequestDenied.code() as i32, "no reboot command is configured"));
        };
        tracing::warn!(command = ?cmd, "reboot requested");
        let (prog, args) = (prog.clone(), args.to_vec());
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            if let Err(e) = std::process::Command::new(&prog).args(&args).status() {
                tracing::error!("reboot command {prog}: {e}");
            }
        });
        Ok(Value::Bool(true))
    });
    let p = proxy.clone();
    server.register(
        "announce",
        "Announces the LAN address from this vRGW (unsolicited ARP), after it took over a subscriber's LAN.",
        &[&["string"]],
        move |_| {
            let g = p.lock().unwrap_or_else(|e| e.into_inner());
            g.announce().map(Value::String).map_err(|f| RpcFault::new(f.code.code() as i32, f.string))
        },
    );
    let p = proxy;
    server.register("health", "State of the proxy and its daemons.", &[&["struct"]], move |_| {
        let mut g = p.lock().unwrap_or_else(|e| e.into_inner());
        let dnsmasq = g.dnsmasq_running();
        let rss = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<i64>().ok())
            })
            .unwrap_or(0);
        Ok(Value::structure([
            ("status", Value::String(if g.last_error.is_none() && dnsmasq { "ok" } else { "degraded" }.into())),
            ("version", Value::String(env!("CARGO_PKG_VERSION").into())),
            ("uptime", Value::from(g.uptime() as i64)),
            ("parameter_key", Value::String(g.parameter_key().into())),
            ("dnsmasq_running", Value::Bool(dnsmasq)),
            ("last_error", Value::String(g.last_error.clone().unwrap_or_default())),
            ("rss_kib", Value::from(rss)),
        ]))
    });
}
