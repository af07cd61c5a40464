//! `GET /subscribers`, `PUT /subscribers/{id}` (an account for the web form) and
//! `DELETE /subscribers/{id}`.

use std::sync::Arc;

use hyper::StatusCode;
use serde_json::{json, Value as Json};

use super::{done, json_response, parse_json, Nbi, NbiError, Reply};
use crate::endpoint::now;

/// Every subscriber: profile, its version, where it was applied and where their vRGW is.
pub(crate) fn list(nbi: &Nbi) -> Result<Reply, NbiError> {
    let store = nbi.acs.store.as_ref();
    let ids = store.subscribers()?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        // Deleted since the list was read.
        let Some(s) = store.subscriber(&id)? else { continue };
        let placed = store.placement(&id)?;
        out.push(json!({
            "_id": s.id, "profile": s.profile.to_json(), "profileVersion": s.profile_version,
            "applied": s.applied,
            "gateway": s.gateway,
            "vrgw": placed.map(|p| json!({"device": p.device, "instance": p.instance})),
        }));
    }
    Ok(json_response(StatusCode::OK, &Json::Array(out)))
}

/// `PUT /subscribers/{id}`: the account to create or update.
pub(crate) struct Account {
    id: String,
    /// A new password (required to create the account).
    password: Option<String>,
    /// `gateway`: absent, unchanged; null, cleared (their vRGW under its host); a DeviceId,
    /// the device their settings go to.
    gateway: Option<Option<String>>,
}

impl Account {
    /// From the path's id and `{"password": "...", "gateway": "DeviceId" | null}` (either).
    pub fn parse(id: &str, body: &[u8]) -> Result<Account, NbiError> {
        if id.is_empty() || id.len() > 128 || id.chars().any(|c| c.is_control() || c == '/') {
            return Err(NbiError::Invalid("a subscriber id is 1 to 128 characters, no '/' or control characters"));
        }
        let body: Json = parse_json("the body", body)?;
        let Some(fields) = body.as_object() else {
            return Err(NbiError::Invalid("the body is {\"password\": \"...\", \"gateway\": \"DeviceId\"}"));
        };
        if let Some(k) = fields.keys().find(|k| !["password", "gateway"].contains(&k.as_str())) {
            return Err(NbiError::Bad(format!("unknown field {k:?}: a subscriber has a password and a gateway")));
        }
        let password = match fields.get("password") {
            None => None,
            Some(Json::String(p)) if p.chars().count() >= 8 => Some(p.clone()),
            Some(Json::String(_)) => return Err(NbiError::Invalid("a password has at least 8 characters")),
            Some(_) => return Err(NbiError::Invalid("the password is a string")),
        };
        let gateway = match fields.get("gateway") {
            None => None,
            Some(Json::Null) => Some(None),
            Some(Json::String(g)) => {
                cwmp::DeviceId::check_key(g, false).map_err(|e| NbiError::Bad(format!("gateway: {e}")))?;
                Some(Some(g.clone()))
            }
            Some(_) => return Err(NbiError::Invalid("the gateway is a DeviceId (a string) or null")),
        };
        if password.is_none() && gateway.is_none() {
            return Err(NbiError::Invalid("the body needs {\"password\": \"...\"} or {\"gateway\": ...}"));
        }
        Ok(Account { id: id.to_string(), password, gateway })
    }
}

/// Creates the account (201, a password needed) or changes its password or gateway (200).
pub(crate) async fn put(nbi: &Arc<Nbi>, a: Account) -> Result<Reply, NbiError> {
    let store = nbi.acs.store.as_ref();
    let created = match a.password {
        Some(password) => {
            let hash = tokio::task::spawn_blocking(move || crate::portal::hash_password(&password))
                .await?
                .map_err(NbiError::Hash)?;
            store.put_subscriber(&a.id, &hash, now())?
        }
        None if store.subscriber(&a.id)?.is_none() => {
            return Err(NbiError::Invalid("a new subscriber needs a password"));
        }
        None => false,
    };
    if let Some(g) = &a.gateway {
        store.set_gateway(&a.id, g.as_deref())?;
        tracing::info!(subscriber = %a.id, gateway = ?g, "NBI: subscriber's gateway set");
        if let Some(device) = g {
            // Their settings go there from its next contact (or now, if it is known).
            crate::profiles::catch_up(store, device, now())?;
        }
    }
    tracing::info!(subscriber = %a.id, created, "NBI: subscriber account set");
    Ok(json_response(if created { StatusCode::CREATED } else { StatusCode::OK }, &json!({"_id": a.id})))
}

/// Deletes a subscriber.
pub(crate) fn delete(nbi: &Arc<Nbi>, id: &str) -> Result<Reply, NbiError> {
    if nbi.acs.store.delete_subscriber(id)? {
        Ok(done())
    } else {
        Err(NbiError::NotFound(format!("no subscriber {id}")))
    }
}
