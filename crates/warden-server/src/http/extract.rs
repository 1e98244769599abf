//! Extractors that turn a request into what services take: the authenticated [`Actor`], a
//! JSON body whose every rejection is problem+json, and path keys (name or id).

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, StatusCode};
use serde::de::DeserializeOwned;
use warden_core::access::Principal;
use warden_core::credential::Secret;
use warden_core::model::NameOrId;

use super::App;
use super::error::ApiError;
use crate::services::ServiceError;

/// The authenticated caller, from `Authorization: Bearer …` or `Basic …`.
pub struct Actor(pub Principal);

impl FromRequestParts<App> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let client = ClientAddr::from_parts(parts, app).0;
        let header = parts.headers.get(AUTHORIZATION).ok_or(ServiceError::Unauthenticated)?;
        let value = header.to_str().map_err(|_| ServiceError::Unauthenticated)?;
        let (scheme, credential) = value.split_once(' ').ok_or(ServiceError::Unauthenticated)?;
        let credential = credential.trim();
        let principal = if scheme.eq_ignore_ascii_case("bearer") {
            app.auth.authenticate_bearer(credential).await?
        } else if scheme.eq_ignore_ascii_case("basic") {
            let (name, password) = decode_basic(credential).ok_or(ServiceError::Unauthenticated)?;
            app.auth.authenticate_basic(&name, &password, client).await?
        } else {
            return Err(ServiceError::Unauthenticated.into());
        };
        // An account that must choose a new password may do only that (and see itself, and
        // sign out); everything else is refused here, before any handler runs. An account that
        // must use a second factor and signed in without one may only enrol one and prove it
        // (re-authenticating with it lifts this); the password change comes first.
        let path = parts.uri.path();
        if principal.password_change_required {
            if !ALLOWED_BEFORE_PASSWORD_CHANGE.contains(&path) {
                return Err(ServiceError::from(warden_core::CoreError::PasswordChangeRequired).into());
            }
        } else if principal.mfa_enrolment_required && !allowed_before_mfa(path) {
            return Err(ServiceError::from(warden_core::CoreError::MfaEnrolmentRequired).into());
        }
        Ok(Self(principal))
    }
}

/// What a session of an account flagged for a password change may still call.
const ALLOWED_BEFORE_PASSWORD_CHANGE: [&str; 4] = ["/api/v1/self", "/api/v1/self/password", "/api/v1/auth/logout", "/api/v1/auth/reauth"];

/// What a credential confined by the MFA policy may still call (any method): see itself and
/// its factors, enrol TOTP (begin, confirm; or remove a half-made enrolment), make backup
/// codes, re-authenticate (with a passkey too) and sign out.
const ALLOWED_BEFORE_MFA: [&str; 8] = [
    "/api/v1/self",
    "/api/v1/self/second-factors",
    "/api/v1/self/totp",
    "/api/v1/self/totp/confirm",
    "/api/v1/self/backup-codes",
    "/api/v1/auth/logout",
    "/api/v1/auth/reauth",
    "/api/v1/auth/reauth/passkey",
];

/// Passkey enrolment and its management, under one prefix.
const PASSKEYS: &str = "/api/v1/self/passkeys";

/// Whether a credential confined by the MFA policy may call `path`.
pub(crate) fn allowed_before_mfa(path: &str) -> bool {
    ALLOWED_BEFORE_MFA.contains(&path) || path.strip_prefix(PASSKEYS).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

pub(crate) fn decode_basic(encoded: &str) -> Option<(String, Secret)> {
    let bytes = base64_decode(encoded)?;
    let text = String::from_utf8(bytes).ok()?;
    let (name, password) = text.split_once(':')?;
    Some((name.to_owned(), Secret::new(password)))
}

/// Standard base64, with or without padding (clients differ), of a bounded size.
fn base64_decode(input: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    if input.len() > 4096 {
        return None;
    }
    LENIENT.decode(input).ok()
}

/// The client's address: the peer, or with `behind_proxy` the last address in
/// `X-Forwarded-For` that is not one of the trusted proxies (see [`forwarded_client`]).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl ClientAddr {
    pub(crate) fn from_parts(parts: &Parts, app: &App) -> Self {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_canonical());
        let server = &app.config.server;
        let Some(peer) = peer else { return Self(None) };
        if !server.behind_proxy || !server.trusted_proxies.contains(&peer) {
            return Self(Some(peer));
        }
        Self(Some(forwarded_client(&parts.headers, &server.trusted_proxies).map_or(peer, |(ip, _)| ip)))
    }
}

/// The client's address in the `X-Forwarded-For` chain a trusted proxy sent, with the entry's
/// text: walking from the right (each proxy appends the address it was reached from), the
/// first address that is not one of `trusted`. Everything left of it is what the client
/// itself claimed. `None` when the chain names no such address: it is missing, lists trusted
/// proxies only, or the walk meets an entry that is not an address (`unknown`, garbage) first.
/// An entry may carry a port (`203.0.113.7:4711`, `[2001:db8::7]:443`). The API
/// ([`ClientAddr`]) and forward-auth both use this one rule.
pub(crate) fn forwarded_client<'h>(headers: &'h HeaderMap, trusted: &[IpAddr]) -> Option<(IpAddr, &'h str)> {
    for value in headers.get_all(X_FORWARDED_FOR).iter().rev() {
        let text = value.to_str().ok()?;
        for entry in text.rsplit(',').map(str::trim) {
            let ip = forwarded_address(entry)?;
            if !trusted.contains(&ip) {
                return Some((ip, entry));
            }
        }
    }
    None
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// One `X-Forwarded-For` entry: an address, with or without a port (IPv6 in brackets then).
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    let ip = entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| entry.strip_prefix('[')?.strip_suffix(']')?.parse().ok())?;
    Some(ip.to_canonical())
}

impl FromRequestParts<App> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        Ok(Self::from_parts(parts, app))
    }
}

/// The request's `User-Agent`, as a new session records it (see [`crate::services::SessionOrigin`]
/// for the cleaning); `None` without one.
#[derive(Debug, Clone)]
pub struct UserAgent(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for UserAgent {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(user_agent(&parts.headers)))
    }
}

/// The `User-Agent` header's text, if any (for handlers that hold the headers already).
pub(crate) fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers.get(axum::http::header::USER_AGENT).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// A JSON body; malformed JSON, a wrong content type and an oversized body are problems with
/// their own codes.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_problem(&rejection)),
        }
    }
}

fn json_problem(rejection: &JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "content_type.unsupported", "send the body as application/json")
        }
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::new(StatusCode::BAD_REQUEST, "json.malformed", format!("malformed JSON: {}", e.body_text()))
        }
        JsonRejection::JsonDataError(e) => ApiError::new(StatusCode::BAD_REQUEST, "validation", e.body_text()),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body.too_large", "the request body is larger than the server accepts")
        }
        other => ApiError::new(other.status(), "body.invalid", other.body_text()),
    }
}

/// Query parameters whose rejection is problem+json.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(e) => Err(ApiError::new(StatusCode::BAD_REQUEST, "validation", e.body_text())),
        }
    }
}

/// The `{key}` of a path: a name or an id.
pub struct Key(pub NameOrId);

impl<S: Send + Sync> FromRequestParts<S> for Key {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw): Path<String> = Path::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "validation", e.body_text()))?;
        Ok(Self(NameOrId::parse(&raw).map_err(ServiceError::from)?))
    }
}

/// The value of the cookie `name` among the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_decode() {
        // "alice:open sesame:with colon"
        let (name, pw) = decode_basic("YWxpY2U6b3BlbiBzZXNhbWU6d2l0aCBjb2xvbg==").unwrap();
        assert_eq!(name, "alice");
        assert_eq!(pw.expose(), "open sesame:with colon");
        assert!(decode_basic("!!!").is_none());
        assert!(decode_basic("YWxpY2U").is_none(), "no colon");
        // Padding is optional: some clients leave it out.
        for encoded in ["YWxpY2U6cHc=", "YWxpY2U6cHc"] {
            let (name, pw) = decode_basic(encoded).unwrap();
            assert_eq!((name.as_str(), pw.expose()), ("alice", "pw"));
        }
        assert!(decode_basic(&"QUFB".repeat(2000)).is_none(), "bounded");
    }

    #[test]
    fn a_confined_credential_reaches_enrolment_and_nothing_else() {
        for allowed in ["/api/v1/self", "/api/v1/self/totp", "/api/v1/self/totp/confirm", "/api/v1/auth/reauth", "/api/v1/self/passkeys"] {
            assert!(allowed_before_mfa(allowed), "{allowed}");
        }
        assert!(allowed_before_mfa("/api/v1/self/passkeys/register/finish"));
        for refused in ["/api/v1/users", "/api/v1/self/password", "/api/v1/self/passkeysx", "/api/v1/self/tokens", "/api/v1/self/"] {
            assert!(!allowed_before_mfa(refused), "{refused}");
        }
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_address() {
        let trusted: Vec<IpAddr> = ["10.0.0.1", "10.0.0.2"].iter().map(|a| a.parse().unwrap()).collect();
        let client = |values: &[&str]| {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append("x-forwarded-for", v.parse().unwrap());
            }
            forwarded_client(&headers, &trusted).map(|(ip, text)| (ip.to_string(), text.to_owned()))
        };
        let is = |ip: &str| Some((ip.to_owned(), ip.to_owned()));
        assert_eq!(client(&["198.51.100.66, 203.0.113.7"]), is("203.0.113.7"), "the leftmost entry is the client's own say");
        assert_eq!(client(&["198.51.100.66, 203.0.113.7, 10.0.0.2, 10.0.0.1"]), is("203.0.113.7"), "trusted hops are skipped");
        assert_eq!(client(&["198.51.100.66", "203.0.113.7, 10.0.0.1"]), is("203.0.113.7"), "several header lines are one list");
        assert_eq!(client(&["198.51.100.66, 203.0.113.7:4711"]), Some(("203.0.113.7".into(), "203.0.113.7:4711".into())));
        assert_eq!(client(&["198.51.100.66, [2001:db8::7]:443"]).unwrap().0, "2001:db8::7");
        assert_eq!(client(&["198.51.100.66,::ffff:203.0.113.7"]).unwrap().0, "203.0.113.7");
        assert_eq!(client(&["198.51.100.66, unknown"]), None, "the walk stops at what is not an address");
        assert_eq!(client(&["198.51.100.66, 203.0.113.7, "]), None);
        assert_eq!(client(&["10.0.0.1, 10.0.0.2"]), None, "trusted proxies only");
        assert_eq!(client(&[]), None);
    }
}
