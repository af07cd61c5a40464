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
        let at = crate::profiles::locate(store, &id)?;
        out.push(json!({
            "_id": s.id, "profile": s.profile.to_json(), "profileVersion": s.profile_version,
            "applied": s.applied,
            "vrgw": at.map(|l| json!({"device": l.device, "instance": l.instance})),
        }));
    }
    Ok(json_response(StatusCode::OK, &Json::Array(out)))
}

/// `PUT /subscribers/{id}`: the account to create or update.
pub(crate) struct Account {
    id: String,
    password: String,
}

impl Account {
    /// From the path's id and `{"password": "..."}`.
    pub fn parse(id: &str, body: &[u8]) -> Result<Account, NbiError> {
        if id.is_empty() || id.len() > 128 || id.chars().any(|c| c.is_control() || c == '/') {
            return Err(NbiError::Invalid("a subscriber id is 1 to 128 characters, no '/' or control characters"));
        }
        let body: Json = parse_json("the body", body)?;
        let Some(password) = body.get("password").and_then(Json::as_str).map(str::to_string) else {
            return Err(NbiError::Invalid("the body needs {\"password\": \"...\"}"));
        };
        if password.chars().count() < 8 {
            return Err(NbiError::Invalid("a password has at least 8 characters"));
        }
        Ok(Account { id: id.to_string(), password })
    }
}

/// Creates the account (201) or changes its password (200).
pub(crate) async fn put(nbi: &Arc<Nbi>, a: Account) -> Result<Reply, NbiError> {
    let password = a.password;
    let hash =
        tokio::task::spawn_blocking(move || crate::portal::hash_password(&password)).await?.map_err(NbiError::Hash)?;
    let created = nbi.acs.store.put_subscriber(&a.id, &hash, now())?;
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
