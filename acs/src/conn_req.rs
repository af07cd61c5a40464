//! Connection requests: an HTTP GET to the device's ConnectionRequestURL, answering a Digest
//! challenge with the device's own credentials (set on it by the ACS at BOOTSTRAP and BOOT; see
//! `endpoint`), within a timeout, with errors in words. Basic is answered only over HTTPS: a
//! device (or whoever reported its URL) that asks for Basic over plain HTTP gets nothing.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header;
use hyper::{Request, StatusCode, Uri};

/// Why a connection request did not reach the device.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CrError {
    #[error("the device has no connection request URL yet (it has not informed)")]
    /// No URL stored for the device.
    NoUrl,
    #[error("invalid connection request URL {0:?}")]
    /// The stored URL does not parse.
    BadUrl(String),
    #[error("device unreachable at {0}: {1}")]
    /// Connecting failed (URL, reason).
    Unreachable(String, String),
    #[error("the device has no connection-request credentials yet (the ACS sets them at its BOOTSTRAP or BOOT)")]
    /// The ACS has not set credentials on the device yet.
    NoCredentials,
    #[error("{0} offers only Basic authentication over plain HTTP; the credentials were not sent")]
    /// Only Basic offered, on an `http://` URL.
    BasicInClear(String),
    #[error("no answer from {0} within {1:?}")]
    /// No answer in time (URL, timeout).
    Timeout(String, Duration),
    #[error("the device refused the credentials at {0}")]
    /// The device refused the credentials (URL).
    Unauthorized(String),
    #[error("the device answered {1} at {0}")]
    /// The device answered another status (URL, status).
    Status(String, u16),
}

async fn get(
    client: &http_shell::client::Client,
    url: &Uri,
    auth: Option<String>,
) -> Result<hyper::Response<hyper::body::Incoming>, String> {
    let mut req = Request::get(url.clone()).body(Full::new(Bytes::new())).map_err(|e| e.to_string())?;
    if let Some(a) = auth {
        if let Ok(v) = header::HeaderValue::from_str(&a) {
            req.headers_mut().insert(header::AUTHORIZATION, v);
        }
    }
    client.send(req).await.map_err(|e| e.to_string())
}

/// A connection request to `device` with its own credentials.
pub async fn to_device(device: &crate::store::Device, timeout: Duration) -> Result<(), CrError> {
    if device.cr_url.is_empty() {
        return Err(CrError::NoUrl);
    }
    if device.cr_username.is_empty() && device.cr_password.is_empty() {
        return Err(CrError::NoCredentials);
    }
    send(&device.cr_url, &device.cr_username, &device.cr_password, timeout).await
}

/// Sends a connection request; Ok when the device answered 200 or 204.
pub async fn send(url: &str, user: &str, pass: &str, timeout: Duration) -> Result<(), CrError> {
    if url.is_empty() {
        return Err(CrError::NoUrl);
    }
    let https = url.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://"));
    let uri: Uri = url.parse().map_err(|_| CrError::BadUrl(url.into()))?;
    let path = uri.path_and_query().map_or("/".to_string(), |p| p.as_str().to_string());
    // The timeout below covers both requests; the client has none of its own.
    let client = http_shell::client::Builder::new().build();
    let attempt = async {
        let first = get(&client, &uri, None).await.map_err(|e| CrError::Unreachable(url.into(), e))?;
        let status = first.status();
        if status == StatusCode::UNAUTHORIZED {
            let challenges: Vec<String> = first
                .headers()
                .get_all(header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|h| h.to_str().ok().map(str::to_string))
                .collect();
            let _ = first.into_body().collect().await;
            let cnonce = crate::endpoint::random_hex(8);
            let digest = challenges
                .iter()
                .filter(|c| c.starts_with("Digest"))
                .find_map(|c| crate::auth::answer(c, "GET", &path, user, pass, &cnonce));
            let basic = challenges.iter().any(|c| c.starts_with("Basic"));
            let auth = match digest {
                Some(a) => a,
                None if basic && https => {
                    use base64::Engine as _;
                    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}")))
                }
                None if basic => return Err(CrError::BasicInClear(url.into())),
                None => return Err(CrError::Unauthorized(url.into())),
            };
            let second = get(&client, &uri, Some(auth)).await.map_err(|e| CrError::Unreachable(url.into(), e))?;
            return match second.status() {
                StatusCode::OK | StatusCode::NO_CONTENT => Ok(()),
                StatusCode::UNAUTHORIZED => Err(CrError::Unauthorized(url.into())),
                s => Err(CrError::Status(url.into(), s.as_u16())),
            };
        }
        match status {
            StatusCode::OK | StatusCode::NO_CONTENT => Ok(()),
            s => Err(CrError::Status(url.into(), s.as_u16())),
        }
    };
    tokio::time::timeout(timeout, attempt).await.map_err(|_| CrError::Timeout(url.into(), timeout))?
}
