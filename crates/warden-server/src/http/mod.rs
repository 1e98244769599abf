//! The HTTP edge: routers, shared state and the listeners.
//!
//! Two route sets: the *public* one (health, sign-in, self-service, the API description) and
//! the *management* one (everything an administrator does). With `server.admin_listen` set,
//! management routes exist only on that listener; otherwise one listener serves both. The API
//! description covers both sets wherever it is served, and is made from the same registrations
//! as the routers (`RestApi`).

pub mod api;
pub mod conn;
pub mod error;
pub mod extract;
pub mod forward_auth;
pub mod kratos;
pub mod oidc;
pub mod passkey;
pub mod session;
pub mod ui;

use std::ops::Deref;
use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, MatchedPath, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use self::error::ApiError;
use crate::config::Config;
use crate::services::Context;
use crate::services::access::Access;
use crate::services::auth::Auth;
use crate::services::authn::email_verification::EmailVerification;
use crate::services::authn::invitation::Invitations;
use crate::services::authn::passkey::Passkeys;
use crate::services::authn::password_mail::PasswordMail;
use crate::services::authn::recovery_link::RecoveryLinks;
use crate::services::authn::registration::Registrations;
use crate::services::authn::second_factor::SecondFactors;
use crate::services::compat::kratos::KratosCompat;
use crate::services::directory::Directory;
use crate::services::forward::ForwardAuth;
use crate::services::oidc::clients::OidcClients;
use crate::services::oidc::provider::Provider;
use crate::services::preferences::PreferencesService;
use crate::services::self_service::SelfService;
use crate::services::sessions::Sessions;
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
    pub recovery: RecoveryLinks,
    pub registration: Registrations,
    pub invitations: Invitations,
    pub oidc_clients: OidcClients,
    /// The OpenID Connect provider.
    pub oidc: Provider,
    pub password_mail: PasswordMail,
    pub kratos: KratosCompat,
    pub preferences: PreferencesService,
    pub self_service: SelfService,
    pub sessions: Sessions,
    pub email_verification: EmailVerification,
    pub second_factors: SecondFactors,
    pub passkeys: Passkeys,
    /// Passwordless ceremonies one client address may start per minute.
    pub passkey_ceremonies: crate::services::client_limit::ClientLimit,
    /// The Content-Security-Policy of every page ([`session::page_csp`]).
    pub page_csp: axum::http::HeaderValue,
    pub config: Arc<Config>,
}

impl Deref for App {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

/// Passwordless ceremonies one client address may start per minute: each holds a row for five
/// minutes, so this bounds what one address can make the store keep.
const PASSKEY_CEREMONIES_PER_MINUTE: u32 = 30;

impl App {
    pub fn new(ctx: Context) -> crate::services::Result<Self> {
        let directory = Directory::new(ctx.clone());
        let auth = Auth::new(ctx.clone(), directory.clone());
        let access = Access::new(ctx.clone(), directory.clone());
        let forward = ForwardAuth::new(ctx.clone(), auth.clone())?;
        let transfer = Transfer::new(ctx.clone());
        let recovery = RecoveryLinks::new(ctx.clone());
        let registration = Registrations::new(ctx.clone(), access.clone(), directory.clone());
        let invitations = Invitations::new(ctx.clone(), registration.clone());
        let oidc_clients = OidcClients::new(ctx.clone());
        let oidc = Provider::new(ctx.clone())?;
        let password_mail = PasswordMail::new(ctx.clone());
        let kratos = KratosCompat::new(ctx.clone(), directory.clone(), recovery.clone());
        let preferences = PreferencesService::new(ctx.clone());
        let self_service = SelfService::new(ctx.clone(), auth.clone());
        let sessions = Sessions::new(ctx.clone());
        let email_verification = EmailVerification::new(ctx.clone());
        let second_factors = SecondFactors::new(ctx.clone());
        let passkeys = Passkeys::new(ctx.clone());
        let passkey_ceremonies = crate::services::client_limit::ClientLimit::new(PASSKEY_CEREMONIES_PER_MINUTE, 60);
        let config = ctx.config.clone();
        let page_csp = session::page_csp(&config.forward_auth);
        Ok(Self(Arc::new(AppInner {
            ctx,
            directory,
            auth,
            access,
            forward,
            transfer,
            recovery,
            registration,
            invitations,
            oidc_clients,
            oidc,
            password_mail,
            kratos,
            preferences,
            self_service,
            sessions,
            email_verification,
            second_factors,
            passkeys,
            passkey_ceremonies,
            page_csp,
            config,
        })))
    }
}

/// The REST API's two route sets and the document that describes them both. Each operation is
/// registered once, with `routes!` on its handler's `#[utoipa::path]`, and that registration
/// makes both the route and the document's entry, so the two cannot drift apart. Only the
/// pages outside the API (health, forward-auth, the document itself) use plain `.route`.
struct RestApi {
    public: Router<App>,
    management: Router<App>,
    document: Arc<utoipa::openapi::OpenApi>,
}

impl RestApi {
    fn new(app: &App) -> Self {
        let (public, public_document) = public_api().split_for_parts();
        let (management, management_document) = management_api().split_for_parts();
        let mut document = api::ApiDoc::openapi();
        document.merge(public_document);
        document.merge(management_document);
        api::complete(&mut document, &app.config.forward_auth.cookie_name);
        Self { public, management, document: Arc::new(document) }
    }
}

/// Sign-in, sessions and the caller's own account. One `routes!` per path: utoipa-axum serves
/// every handler of a `routes!` on every path among them.
fn public_api() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .merge(oidc::protocol::documented())
        .routes(routes!(api::login))
        .routes(routes!(api::login_mfa))
        .routes(routes!(api::second_factor_status))
        .routes(routes!(api::begin_totp, api::remove_totp))
        .routes(routes!(api::confirm_totp))
        .routes(routes!(api::generate_backup_codes))
        .routes(routes!(passkey::begin_registration))
        .routes(routes!(passkey::finish_registration))
        .routes(routes!(passkey::list))
        .routes(routes!(passkey::rename, passkey::remove))
        .routes(routes!(passkey::begin_sign_in))
        .routes(routes!(passkey::finish_sign_in))
        .routes(routes!(passkey::begin_reauth))
        .routes(routes!(api::logout))
        .routes(routes!(api::recover))
        .routes(routes!(api::forgot_password))
        .routes(routes!(api::register))
        .routes(routes!(api::reauth))
        .routes(routes!(api::whoami))
        .routes(routes!(api::rename_self))
        .routes(routes!(api::get_preferences, api::put_preferences))
        .routes(routes!(api::get_profile, api::update_profile))
        .routes(routes!(api::change_password))
        .routes(routes!(api::verify_email))
        .routes(routes!(api::resend_verification))
        .routes(routes!(api::list_own_sessions))
        .routes(routes!(api::revoke_own_session))
        .routes(routes!(oidc::list_own_applications))
        .routes(routes!(oidc::withdraw_own_application))
}

/// Everything an administrator does. One `routes!` per path, as above.
fn management_api() -> OpenApiRouter<App> {
    OpenApiRouter::new()
        .routes(routes!(api::list_users, api::create_user))
        .routes(routes!(api::get_user, api::update_user, api::delete_user))
        .routes(routes!(api::rename_user))
        .routes(routes!(api::disable_user))
        .routes(routes!(api::enable_user))
        .routes(routes!(api::list_user_groups))
        .routes(routes!(api::set_password))
        .routes(routes!(api::unlock_user))
        .routes(routes!(api::issue_recovery_link))
        .routes(routes!(api::send_account_notice))
        .routes(routes!(api::require_password_change))
        .routes(routes!(api::reset_second_factors))
        .routes(routes!(api::user_credentials))
        .routes(routes!(api::require_group_password_change))
        .routes(routes!(api::list_invitations, api::create_invitations))
        .routes(routes!(api::revoke_invitation))
        .routes(routes!(api::list_registration_tokens, api::create_registration_token))
        .routes(routes!(api::revoke_registration_token))
        .routes(routes!(oidc::list_clients, oidc::create_client))
        .routes(routes!(oidc::get_client, oidc::update_client, oidc::delete_client))
        .routes(routes!(oidc::rotate_client_secret))
        .routes(routes!(oidc::list_keys))
        .routes(routes!(oidc::rotate_keys))
        .routes(routes!(oidc::list_user_applications))
        .routes(routes!(oidc::withdraw_user_application))
        .routes(routes!(api::list_service_accounts, api::create_service_account))
        .routes(routes!(api::get_service_account, api::delete_service_account))
        .routes(routes!(api::list_tokens, api::create_token))
        .routes(routes!(api::revoke_token))
        .routes(routes!(api::list_service_account_groups))
        .routes(routes!(api::list_groups, api::create_group))
        .routes(routes!(api::get_group, api::delete_group))
        .routes(routes!(api::list_members, api::add_members))
        .routes(routes!(api::remove_member))
        .routes(routes!(api::audit))
        .routes(routes!(api::list_sessions))
        .routes(routes!(api::revoke_session))
        .routes(routes!(api::revoke_user_sessions))
        .routes(routes!(api::list_tenants, api::create_tenant))
        .routes(routes!(api::delete_tenant))
        .routes(routes!(api::list_roles, api::create_role))
        .routes(routes!(api::get_role, api::update_role, api::delete_role))
        .routes(routes!(api::role_permissions))
        .routes(routes!(api::list_bindings, api::create_binding))
        .routes(routes!(api::delete_binding))
        .routes(routes!(api::check))
        .routes(routes!(api::account_permissions))
        .routes(routes!(api::export))
        // The import body is read as a stream, line by line: no whole-body limit applies.
        .routes(routes!(api::import))
        // Ory Kratos' admin calls (docs/kratos.md).
        .routes(routes!(kratos::list_identities, kratos::create_identity))
        .routes(routes!(kratos::get_identity, kratos::delete_identity))
        .routes(routes!(kratos::recovery_link))
}

/// Health, forward-auth, the web UI's pages for people, the API description (none of them part
/// of the API), and the public REST API.
fn public_routes(app: &App, rest: &RestApi) -> Router<App> {
    let forward = if app.config.forward_auth.enabled {
        Router::new().route("/auth/forward", axum::routing::any(forward_auth::forward))
    } else {
        Router::new()
    };
    let document = rest.document.clone();
    forward
        .merge(ui::public_routes())
        .merge(oidc::protocol::routes())
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/api/v1/openapi.json", get(move || async move { Json(document.as_ref()).into_response() }))
        .merge(rest.public.clone())
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

/// No such route: problem+json for API clients, and a page for a browser that asked for one
/// outside the API (a mistyped or outdated link to the web UI).
async fn not_found(visit: ui::Visit, uri: axum::http::Uri, headers: axum::http::HeaderMap) -> axum::response::Response {
    let wants_page = headers.get(axum::http::header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
    if wants_page && !uri.path().starts_with("/api/") {
        return visit.message(None, StatusCode::NOT_FOUND, "Page not found", "There is no such page.");
    }
    ApiError::new(StatusCode::NOT_FOUND, "route.not_found", "no such endpoint").into_response()
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
        .layer(axum::middleware::from_fn(log_request))
        .with_state(app.clone())
}

/// One structured line per request at `debug` (`WARDEN_LOG=debug`): method, path (never the
/// query, which may carry a token), status and time taken. Off, it costs one level check.
async fn log_request(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return next.run(request).await;
    }
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    tracing::debug!(%method, path, status = response.status().as_u16(), micros, "request");
    response
}

/// The routers to serve: `(public, Some(admin))` with an admin listener, else `(all, None)`.
pub fn routers(app: &App) -> (Router, Option<Router>) {
    let rest = RestApi::new(app);
    let all = finish(public_routes(app, &rest).merge(rest.management.clone()).merge(ui::console_routes()), app);
    if app.config.server.admin_listen.is_some() { (finish(public_routes(app, &rest), app), Some(all)) } else { (all, None) }
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
