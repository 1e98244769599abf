//! The HTTP edge's error: every failure becomes RFC 9457 problem+json with Warden's stable
//! `code`. Internal details (SQL, I/O) go to the log, never to the client.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use warden_core::api::Problem;

use crate::services::ServiceError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    retry_after: Option<i64>,
    line: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self { status, code, detail: detail.into(), retry_after: None, line: None }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let code = e.code();
        let status = match code {
            "validation" | "member.ambiguous" | "import.invalid" => StatusCode::BAD_REQUEST,
            "name.taken" | "group.cycle" | "role.immutable" => StatusCode::CONFLICT,
            "not_found" => StatusCode::NOT_FOUND,
            "forbidden"
            | "account.protected"
            | "account.high_privilege"
            | "rename.disabled"
            | "token.scope"
            | "session.not_elevated"
            | "roles.dynamic_disabled" => StatusCode::FORBIDDEN,
            "unauthenticated" | "auth.failed" => StatusCode::UNAUTHORIZED,
            "auth.rate_limited" => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let detail = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %e, "request failed");
            "the server could not complete the request; the operator's log has the details".to_owned()
        } else {
            e.to_string()
        };
        let retry_after = match e {
            ServiceError::RateLimited { retry_after_secs } => Some(retry_after_secs),
            _ => None,
        };
        let line = match e {
            ServiceError::AtLine { line, .. } => Some(line),
            _ => None,
        };
        Self { status, code, detail, retry_after, line }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = Problem {
            type_: format!("urn:warden:problem:{}", self.code),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            code: self.code.to_owned(),
            detail: Some(self.detail),
            line: self.line,
        };
        let mut response = (self.status, Json(problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer realm="warden", Basic realm="warden", charset="UTF-8""#),
            );
        }
        if let Some(v) = self.retry_after.and_then(|secs| HeaderValue::from_str(&secs.to_string()).ok()) {
            headers.insert(header::RETRY_AFTER, v);
        }
        response
    }
}
