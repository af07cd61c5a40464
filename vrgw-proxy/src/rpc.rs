//! The XML-RPC methods the host's agent calls, registered from the contract in `proxy-api`
//! (names, parameter and result types, faults): each handler takes the method's parameter type
//! and returns its result type, so this side cannot drift from the agent's.

use std::sync::{Arc, Mutex, MutexGuard};

use cwmp::{FaultCode, ParameterValue};
use proxy_api::{Method, ProxyFault, WireFault, WireValue};
use serde::de::DeserializeOwned;
use serde::Serialize;
use xmlrpc::Server;

use crate::proxy::Proxy;

/// Registers `m` with a handler of its types; a [`ProxyFault`] travels as its XML-RPC fault.
fn register<P, R>(server: &mut Server, m: &Method<P, R>, f: impl Fn(P) -> Result<R, ProxyFault> + Send + Sync + 'static)
where
    P: DeserializeOwned,
    R: Serialize,
{
    server.register_typed(m.name, m.help, m.signature, move |p: P| f(p).map_err(xmlrpc::Fault::from));
}

/// The CWMP values of what the caller sent.
fn parameters(values: Vec<WireValue>) -> Result<Vec<ParameterValue>, ProxyFault> {
    values.into_iter().map(ParameterValue::try_from).collect()
}

fn lock(p: &Mutex<Proxy>) -> MutexGuard<'_, Proxy> {
    p.lock().unwrap_or_else(|e| e.into_inner())
}

/// Registers the proxy's methods.
pub fn register_all(server: &mut Server, proxy: Arc<Mutex<Proxy>>) {
    let p = proxy.clone();
    register(server, &proxy_api::GET, move |paths| {
        let vals = lock(&p).get(&paths.0)?;
        Ok(vals.iter().map(WireValue::from).collect())
    });
    let p = proxy.clone();
    register(server, &proxy_api::SET, move |params| {
        let list = parameters(params.values)?;
        lock(&p).set(&list, &params.parameter_key)?;
        Ok(0)
    });
    let p = proxy.clone();
    register(server, &proxy_api::TRY_SET, move |params| {
        let list = parameters(params.values)?;
        let refused = lock(&p).try_set(&list, &params.parameter_key)?;
        Ok(refused.into_iter().map(WireFault::from).collect())
    });
    let p = proxy.clone();
    register(server, &proxy_api::VALIDATE, move |params| {
        let list = parameters(params.values)?;
        let refused = lock(&p).validate(&list)?;
        Ok(refused.into_iter().map(WireFault::from).collect())
    });
    let p = proxy.clone();
    register(server, &proxy_api::NAMES, move |params| {
        let names = lock(&p).names(&params.path, params.next_level)?;
        Ok(names.into_iter().map(Into::into).collect())
    });
    let p = proxy.clone();
    register(server, &proxy_api::ADD_OBJECT, move |params| {
        Ok(lock(&p).add_object(&params.path, &params.parameter_key)?)
    });
    let p = proxy.clone();
    register(server, &proxy_api::DELETE_OBJECT, move |params| {
        lock(&p).delete_object(&params.path, &params.parameter_key)?;
        Ok(0)
    });
    let p = proxy.clone();
    register(server, &proxy_api::FACTORY_RESET, move |_| {
        lock(&p).factory_reset()?;
        Ok(true)
    });
    let p = proxy.clone();
    register(server, &proxy_api::REBOOT, move |_| {
        let cmd = lock(&p).settings.reboot_command.clone();
        let Some((prog, args)) = cmd.split_first() else {
            return Err(ProxyFault::Cwmp(FaultCode::RequestDenied, "no reboot command is configured".into()));
        };
        tracing::warn!(command = ?cmd, "reboot requested");
        let (prog, args) = (prog.clone(), args.to_vec());
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            if let Err(e) = std::process::Command::new(&prog).args(&args).status() {
                tracing::error!("reboot command {prog}: {e}");
            }
        });
        Ok(true)
    });
    let p = proxy.clone();
    register(server, &proxy_api::ANNOUNCE, move |_| Ok(lock(&p).announce()?));
    let p = proxy;
    register(server, &proxy_api::HEALTH, move |_| {
        let mut g = lock(&p);
        let dnsmasq = g.dnsmasq_running();
        let rss_kib = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            })
            .unwrap_or(0);
        Ok(proxy_api::Health {
            status: if g.last_error.is_none() && dnsmasq { "ok" } else { "degraded" }.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            uptime: g.uptime(),
            parameter_key: g.parameter_key().into(),
            dnsmasq_running: dnsmasq,
            last_error: g.last_error.clone().unwrap_or_default(),
            rss_kib,
        })
    });
}
