//! Extractors that turn a request into what services take: the authenticated [`Actor`], a
//! JSON body whose every rejection is problem+json, and path keys (name or id).

use std::net::{IpAddr, SocketAddr};

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
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
        Ok(Self(principal))
    }
}

pub(crate) fn decode_basic(encoded: &str) -> Option<(String, Secret)> {
    let bytes = base64_decode(encoded)?;
    let text = String::from_utf8(bytes).ok()?;
    let (name, password) = text.split_once(':')?;
    Some((name.to_owned(), Secret::new(password)))
}

/// Standard base64 (with or without padding); small enough not to need a crate.
fn base64_decode(input: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let trimmed = input.trim_end_matches('=');
    if trimmed.len() % 4 == 1 || input.len() > 4096 {
        return None;
    }
    let mut out = Vec::with_capacity(trimmed.len() * 3 / 4);
    for chunk in trimmed.as_bytes().chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= value(*c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// The client's address: the peer, or with `behind_proxy` the last address in
/// `X-Forwarded-For` that is not one of the trusted proxies.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl ClientAddr {
    pub(crate) fn from_parts(parts: &Parts, app: &App) -> Self {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let server = &app.config.server;
        let Some(peer) = peer else { return Self(None) };
        if !server.behind_proxy || !server.trusted_proxies.contains(&peer) {
            return Self(Some(peer));
        }
        let forwarded = parts.headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(','));
        let chain: Vec<IpAddr> = forwarded.filter_map(|s| s.trim().parse().ok()).collect();
        Self(Some(chain.into_iter().rev().find(|ip| !server.trusted_proxies.contains(ip)).unwrap_or(peer)))
    }
}

impl FromRequestParts<App> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        Ok(Self::from_parts(parts, app))
    }
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
    }
}
