//! `GET /cpe-credentials`, `PUT /cpe-credentials/{username}` and
//! `DELETE /cpe-credentials/{username}`: the credentials CPEs log in to CWMP with, each bound to
//! one DeviceId or a DeviceId prefix. The password is kept only as its Digest secrets; nothing
//! the NBI answers carries it.

use hyper::StatusCode;
use serde_json::{json, Value as Json};

use super::{done, json_response, parse_json, Nbi, NbiError, Reply};
use crate::endpoint::{now, REALM};
use crate::store::{CpeCredential, Scope};

/// Shortest password a credential takes.
pub const MIN_PASSWORD: usize = 8;

/// The scope from exactly one of `device` and `device_prefix`.
pub fn scope(device: Option<String>, device_prefix: Option<String>) -> Result<Scope, String> {
    let ok = |s: &str| !s.is_empty() && s.len() <= 256 && !s.chars().any(char::is_control);
    match (device, device_prefix) {
        (Some(d), None) if ok(&d) => cwmp::DeviceId::check_key(&d, false).map(|()| Scope::Device(d)),
        (None, Some(p)) if ok(&p) => cwmp::DeviceId::check_key(&p, true).map(|()| Scope::DevicePrefix(p)),
        (Some(_), None) | (None, Some(_)) => {
            Err("a device or device prefix is 1 to 256 characters without control characters".into())
        }
        _ => Err("a credential names exactly one of device (a DeviceId) or devicePrefix (a DeviceId prefix)".into()),
    }
}

/// The credential for `username` and `password` with `scope`, checked; `proxies`, a host's
/// virtual devices' DeviceId prefix, only with a single device.
pub fn make(username: &str, password: &str, scope: Scope, proxies: Option<String>) -> Result<CpeCredential, String> {
    if username.is_empty() || username.len() > 128 || username.chars().any(|c| c.is_control() || c == '"' || c == ':') {
        return Err("a user name is 1 to 128 characters, without control characters, '\"' or ':'".into());
    }
    if password.chars().count() < MIN_PASSWORD {
        return Err(format!("a CPE password has at least {MIN_PASSWORD} characters"));
    }
    if let Some(p) = &proxies {
        if !matches!(scope, Scope::Device(_)) {
            return Err("proxies (the virtual devices a host proxies) goes with a device (the host's DeviceId)".into());
        }
        if p.is_empty() || p.len() > 256 || p.chars().any(char::is_control) {
            return Err("proxies is a DeviceId prefix of 1 to 256 characters without control characters".into());
        }
        cwmp::DeviceId::check_key(p, true)?;
    }
    Ok(CpeCredential {
        username: username.into(),
        ha1: crate::auth::Ha1::of(username, REALM, password),
        scope,
        proxies,
    })
}

/// What `PUT /cpe-credentials/{username}` takes.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Body {
    password: String,
    device: Option<String>,
    device_prefix: Option<String>,
    proxies: Option<String>,
}

/// The credential of a PUT, from the path's user name and the body.
pub(crate) fn parse(username: &str, body: &[u8]) -> Result<CpeCredential, NbiError> {
    let b: Body = parse_json("the credential", body)?;
    let scope = scope(b.device, b.device_prefix).map_err(NbiError::Bad)?;
    make(username, &b.password, scope, b.proxies).map_err(NbiError::Bad)
}

fn to_json(c: &CpeCredential) -> Json {
    let mut j = match &c.scope {
        Scope::Device(d) => json!({"_id": c.username, "device": d}),
        Scope::DevicePrefix(p) => json!({"_id": c.username, "devicePrefix": p}),
    };
    if let Some(p) = &c.proxies {
        j["proxies"] = json!(p);
    }
    j
}

/// Every credential of the store (user name and scope; never a secret). Those of the
/// configuration file are not listed: they are changed there.
pub(crate) fn list(nbi: &Nbi) -> Result<Reply, NbiError> {
    let all = nbi.acs.store.cpe_credentials()?;
    Ok(json_response(StatusCode::OK, &Json::Array(all.iter().map(to_json).collect())))
}

/// Creates (201) or replaces (200) a credential. A user name the configuration file defines is
/// refused (409): the file's would keep taking precedence.
pub(crate) fn put(nbi: &Nbi, c: CpeCredential) -> Result<Reply, NbiError> {
    if nbi.acs.config.credentials.iter().any(|f| f.username == c.username) {
        return Err(NbiError::Conflict(format!(
            "user {:?} is defined in the configuration file; change it there",
            c.username
        )));
    }
    let created = nbi.acs.store.put_cpe_credential(&c, now())?;
    tracing::info!(user = %c.username, may = %c.scope, created, "NBI: CPE credential set");
    Ok(json_response(if created { StatusCode::CREATED } else { StatusCode::OK }, &to_json(&c)))
}

/// Removes a credential: sessions already open go on, new ones with it are refused.
pub(crate) fn delete(nbi: &Nbi, username: &str) -> Result<Reply, NbiError> {
    if nbi.acs.store.delete_cpe_credential(username)? {
        tracing::info!(user = %username, "NBI: CPE credential removed");
        Ok(done())
    } else {
        Err(NbiError::NotFound(format!("no CPE credential {username}")))
    }
}
