//! The HTTP edge: routers, shared state and the listeners.
//!
//! Two route sets: the *public* one (health, sign-in, self-service, the API description) and
//! the *management* one (everything an administrator does). With `server.admin_listen` set,
//! management routes exist only on that listener; otherwise one listener serves both.

pub mod api;
pub mod conn;
pub mod csrf;
pub mod error;
pub mod extract;
pub mod forward_auth;

use std::ops::Deref;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, MatchedPath, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use utoipa::OpenApi;

use self::error::ApiError;
use crate::config::Config;
use crate::services::Context;
use crate::services::access::Access;
use crate::services::auth::Auth;
use crate::services::directory::Directory;
use crate::services::forward::ForwardAuth;
use crate::services::transfer::Transfer;

/// What handlers share: the services, and the configuration for the edge's own decisions.
#[derive(Clone)]
pub struct App(Arc<AppInner>);

pub struct AppInner {
    pub ctx: Context,
    pub directory: Directory,
    pub auth: Auth,
    pub access: Access,
    pub forward: ForwardAuth,
    pub transfer: Transfer,
    pub config: Arc<Config>,
}

impl Deref for App {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl App {
    pub fn new(ctx: Context) -> crate::services::Result<Self> {
        let directory = Directory::new(ctx.clone());
        let auth = Auth::new(ctx.clone(), directory.clone());
        let access = Access::new(ctx.clone(), directory.clone());
        let forward = ForwardAuth::new(ctx.clone(), auth.clone())?;
        let transfer = Transfer::new(ctx.clone());
        let config = ctx.config.clone();
        Ok(Self(Arc::new(AppInner { ctx, directory, auth, access, forward, transfer, config })))
    }
}

/// Health, sign-in, self-service, forward-auth and the API description.
fn public_routes(app: &App) -> Router<App> {
    let router = if app.config.forward_auth.enabled {
        Router::new()
            .route("/auth/forward", axum::routing::any(forward_auth::forward))
            .route("/login", get(forward_auth::login_form).post(forward_auth::login_submit))
            .route("/login/done", get(forward_auth::login_done))
            .route("/logout", get(forward_auth::logout_form).post(forward_auth::logout))
    } else {
        Router::new()
    };
    router
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/api/v1/openapi.json", get(|| async { Json(api::ApiDoc::openapi()) }))
        .route("/api/v1/auth/login", post(api::login))
        .route("/api/v1/auth/logout", post(api::logout))
        .route("/api/v1/auth/reauth", post(api::reauth))
        .route("/api/v1/self", get(api::whoami))
        .route("/api/v1/self/rename", post(api::rename_self))
}

/// Everything an administrator does.
fn management_routes() -> Router<App> {
    Router::new()
        .route("/api/v1/users", get(api::list_users).post(api::create_user))
        .route("/api/v1/users/{user}", get(api::get_user).patch(api::update_user).delete(api::delete_user))
        .route("/api/v1/users/{user}/rename", post(api::rename_user))
        .route("/api/v1/users/{user}/disable", post(api::disable_user))
        .route("/api/v1/users/{user}/enable", post(api::enable_user))
        .route("/api/v1/users/{user}/groups", get(api::list_user_groups))
        .route("/api/v1/service-accounts", get(api::list_service_accounts).post(api::create_service_account))
        .route("/api/v1/service-accounts/{sa}", get(api::get_service_account).delete(api::delete_service_account))
        .route("/api/v1/service-accounts/{sa}/tokens", get(api::list_tokens).post(api::create_token))
        .route("/api/v1/service-accounts/{sa}/groups", get(api::list_service_account_groups))
        .route("/api/v1/service-accounts/{sa}/tokens/{token_id}", axum::routing::delete(api::revoke_token))
        .route("/api/v1/groups", get(api::list_groups).post(api::create_group))
        .route("/api/v1/groups/{group}", get(api::get_group).delete(api::delete_group))
        .route("/api/v1/groups/{group}/members", get(api::list_members).post(api::add_members))
        .route("/api/v1/groups/{group}/members/{member}", axum::routing::delete(api::remove_member))
        .route("/api/v1/users/{user}/password", axum::routing::put(api::set_password))
        .route("/api/v1/audit", get(api::audit))
        .route("/api/v1/tenants", get(api::list_tenants).post(api::create_tenant))
        .route("/api/v1/tenants/{tenant}", axum::routing::delete(api::delete_tenant))
        .route("/api/v1/roles", get(api::list_roles).post(api::create_role))
        .route("/api/v1/roles/{role}", get(api::get_role).patch(api::update_role).delete(api::delete_role))
        .route("/api/v1/roles/{role}/permissions", get(api::role_permissions))
        .route("/api/v1/bindings", get(api::list_bindings).post(api::create_binding))
        .route("/api/v1/bindings/{binding}", axum::routing::delete(api::delete_binding))
        .route("/api/v1/check", post(api::check))
        .route("/api/v1/accounts/{account}/permissions", get(api::account_permissions))
        // The import body is read as a stream, line by line: no whole-body limit applies.
        .route("/api/v1/export", get(api::export))
        .route("/api/v1/import", post(api::import))
}

async fn readyz(State(app): State<App>) -> impl IntoResponse {
    match app.ctx.store.revision().await {
        Ok(revision) => (StatusCode::OK, Json(json!({ "status": "ready", "backend": app.ctx.store.backend(), "revision": revision }))),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "unavailable" })))
        }
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "route.not_found", "no such endpoint")
}

/// A method that a route does not take. Where the path matched only through a parameter
/// (`POST /api/v1/users/invite` against `/api/v1/users/{user}`), no such endpoint exists: a word
/// read as a name must not turn a missing route into "wrong method".
async fn method_not_allowed(matched: Option<MatchedPath>) -> ApiError {
    match matched {
        Some(path) if path.as_str().contains('{') => ApiError::new(StatusCode::NOT_FOUND, "route.not_found", "no such endpoint"),
        _ => ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method.not_allowed", "this endpoint does not take that method"),
    }
}

fn finish(router: Router<App>, app: &App) -> Router {
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(app.config.server.max_body_bytes))
        .with_state(app.clone())
}

/// The routers to serve: `(public, Some(admin))` with an admin listener, else `(all, None)`.
pub fn routers(app: &App) -> (Router, Option<Router>) {
    if app.config.server.admin_listen.is_some() {
        let admin = finish(public_routes(app).merge(management_routes()), app);
        (finish(public_routes(app), app), Some(admin))
    } else {
        (finish(public_routes(app).merge(management_routes()), app), None)
    }
}

/// Loads the certificate chain and key named in `[server.tls]`.
pub fn tls_acceptor(tls: &crate::config::TlsConfig) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&tls.cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| anyhow::anyhow!("cannot read certificate {}: {e}", tls.cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| anyhow::anyhow!("cannot read key {}: {e}", tls.key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
