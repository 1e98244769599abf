//! The HTTP edge's error: every failure becomes RFC 9457 problem+json with Warden's stable
//! `code`. Internal details (SQL, I/O) go to the log, never to the client.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use warden_core::api::Problem;

use warden_core::CoreError;
use warden_store::StoreError;

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

/// The status of each failure, by an exhaustive match on the error enums of every layer: a new
/// variant does not compile until it has a status here (it never falls to 500 unnoticed).
pub fn status_of(e: &ServiceError) -> StatusCode {
    match e {
        ServiceError::Core(e) => core_status(e),
        ServiceError::Store(e) => store_status(e),
        ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
        // Unknown, expired and used one-time tokens alike: 410 would claim the token once existed.
        ServiceError::Ambiguous(_) | ServiceError::TokenInvalid | ServiceError::PasskeyInvalid(_) => StatusCode::BAD_REQUEST,
        ServiceError::Unauthenticated | ServiceError::AuthFailed | ServiceError::SecondFactorRequired(_) => StatusCode::UNAUTHORIZED,
        ServiceError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        ServiceError::Protected(..)
        | ServiceError::RenameDisabled
        | ServiceError::TokenScope(_)
        | ServiceError::DynamicRolesDisabled(_)
        | ServiceError::RegistrationDisabled
        | ServiceError::NotAUser(_)
        | ServiceError::SessionRequired => StatusCode::FORBIDDEN,
        ServiceError::Immutable(_) | ServiceError::TotpExists | ServiceError::PasskeyExists | ServiceError::PublicClient(_) => {
            StatusCode::CONFLICT
        }
        ServiceError::Internal(_) | ServiceError::Config(_) => StatusCode::INTERNAL_SERVER_ERROR,
        // The server is not set up to write links: no fault of the request, and no use
        // retrying until the operator sets the key the message names.
        ServiceError::PublicUrlMissing | ServiceError::PasskeysOff | ServiceError::OidcUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        // A line that is wrong is the request's fault; a refusal of access keeps its own status.
        ServiceError::AtLine { error, .. } if error.is_fault_of_the_line() => StatusCode::BAD_REQUEST,
        ServiceError::AtLine { error, .. } => status_of(error),
    }
}

fn core_status(e: &CoreError) -> StatusCode {
    match e {
        CoreError::Validation { .. } | CoreError::EmailUnverified { .. } => StatusCode::BAD_REQUEST,
        CoreError::MembershipCycle { .. } => StatusCode::CONFLICT,
        CoreError::Forbidden { .. }
        | CoreError::NotElevated
        | CoreError::HighPrivilege(_)
        | CoreError::PasswordChangeRequired
        | CoreError::MfaEnrolmentRequired
        | CoreError::ProfileFieldDisabled { .. } => StatusCode::FORBIDDEN,
    }
}

fn store_status(e: &StoreError) -> StatusCode {
    match e {
        StoreError::NameTaken(_) | StoreError::Cycle { .. } => StatusCode::CONFLICT,
        StoreError::NotFound(_) => StatusCode::NOT_FOUND,
        StoreError::UnsupportedUrl(_) | StoreError::Database(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        let code = e.code();
        let status = status_of(&e);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every variant of every layer, with the status and code a client sees.
    #[test]
    fn every_error_has_its_status_and_code() {
        let id = uuid::Uuid::nil();
        let name = || warden_core::Name::parse("x").unwrap();
        let line = |error: ServiceError| ServiceError::AtLine { line: 7, error: Box::new(error) };
        let table: Vec<(ServiceError, u16, &str)> = vec![
            (CoreError::validation("name", "empty").into(), 400, "validation"),
            (CoreError::MembershipCycle { group: id, member: id }.into(), 409, "group.cycle"),
            (CoreError::Forbidden { permission: "p".into() }.into(), 403, "forbidden"),
            (CoreError::NotElevated.into(), 403, "session.not_elevated"),
            (CoreError::PasswordChangeRequired.into(), 403, "password.change_required"),
            (CoreError::MfaEnrolmentRequired.into(), 403, "auth.mfa_enrolment_required"),
            (CoreError::HighPrivilege("admin".into()).into(), 403, "account.high_privilege"),
            (CoreError::EmailUnverified { address: "a@example.org".into() }.into(), 400, "email.unverified"),
            (
                CoreError::ProfileFieldDisabled { field: "phones".into(), setting: "profile.disable_phone_numbers".into() }.into(),
                403,
                "profile.field_disabled",
            ),
            (StoreError::NameTaken("x".into()).into(), 409, "name.taken"),
            (StoreError::NotFound("x".into()).into(), 404, "not_found"),
            (StoreError::Cycle { group: name(), member: name() }.into(), 409, "group.cycle"),
            (StoreError::UnsupportedUrl("x".into()).into(), 500, "config"),
            (StoreError::Database("x".into()).into(), 500, "internal"),
            (ServiceError::NotFound("x".into()), 404, "not_found"),
            (ServiceError::Ambiguous("x".into()), 400, "member.ambiguous"),
            (ServiceError::Unauthenticated, 401, "unauthenticated"),
            (ServiceError::AuthFailed, 401, "auth.failed"),
            (ServiceError::RateLimited { retry_after_secs: 3 }, 429, "auth.rate_limited"),
            (ServiceError::Protected("admin".into(), "deleted"), 403, "account.protected"),
            (ServiceError::RenameDisabled, 403, "rename.disabled"),
            (ServiceError::NotAUser("sa:ci-bot".into()), 403, "self.not_a_user"),
            (ServiceError::SessionRequired, 403, "self.session_required"),
            (ServiceError::TokenScope("x".into()), 403, "token.scope"),
            (ServiceError::Immutable("x".into()), 409, "role.immutable"),
            (ServiceError::DynamicRolesDisabled("why".into()), 403, "roles.dynamic_disabled"),
            (ServiceError::Internal("x".into()), 500, "internal"),
            (ServiceError::Config("x".into()), 500, "config"),
            (ServiceError::PublicUrlMissing, 503, "config.public_url_missing"),
            (ServiceError::TokenInvalid, 400, "token.invalid"),
            (ServiceError::RegistrationDisabled, 403, "registration.disabled"),
            (ServiceError::TotpExists, 409, "totp.exists"),
            (ServiceError::SecondFactorRequired("x".into()), 401, "auth.second_factor_required"),
            (ServiceError::PasskeysOff, 503, "config.webauthn_missing"),
            (ServiceError::PasskeyInvalid("x".into()), 400, "passkey.invalid"),
            (ServiceError::PasskeyExists, 409, "passkey.exists"),
            (ServiceError::PublicClient("spa".into()), 409, "oidc_client.public"),
            (ServiceError::OidcUnavailable("set server.public_url"), 503, "oidc.unavailable"),
            (line(StoreError::NameTaken("x".into()).into()), 400, "import.invalid"),
            (line(ServiceError::Ambiguous("x".into())), 400, "import.invalid"),
            (line(CoreError::Forbidden { permission: "p".into() }.into()), 403, "forbidden"),
            (line(ServiceError::Internal("x".into())), 500, "internal"),
        ];
        for (error, status, code) in table {
            let shown = format!("{error:?}");
            let api = ApiError::from(error);
            assert_eq!((api.status.as_u16(), api.code), (status, code), "{shown}");
        }
    }
}
