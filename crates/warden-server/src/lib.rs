//! `wardend`: Warden's server.
//!
//! [`start`] wires the pieces: it opens the store named by the configuration (migrating it),
//! makes sure the break-glass accounts exist, builds the services and serves the HTTP
//! listeners and the local control socket. `main.rs` is only the command line around it; the
//! integration tests call [`start`] directly with a manual clock.
//!
//! Architecture invariant: handlers (in [`http`]) call services (in [`services`]); services
//! call the store; nothing writes around the services.

pub mod clock;
pub mod config;
pub mod control;
pub mod http;
pub mod mail;
pub mod os;
pub mod password;
pub mod services;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::config::Config;
use crate::services::Context;

/// A running server: its bound addresses and the means to stop it.
pub struct Running {
    pub public_addr: SocketAddr,
    pub admin_addr: Option<SocketAddr>,
    pub context: Context,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
    control: Option<JoinHandle<()>>,
    follower: JoinHandle<()>,
    policy_watch: JoinHandle<()>,
    session_purge: Option<JoinHandle<()>>,
    postman: JoinHandle<()>,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish, and closes the store.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        for task in self.tasks.drain(..) {
            task.await??;
        }
        self.follower.abort();
        self.policy_watch.abort();
        self.postman.abort();
        if let Some(purge) = self.session_purge.take() {
            purge.abort();
        }
        if let Some(control) = self.control.take() {
            control.abort();
            let _ = std::fs::remove_file(&self.context.config.server.control_socket);
        }
        self.context.store.shutdown().await;
        Ok(())
    }

    /// Resolves when a shutdown has been requested.
    pub async fn stopped(&self) {
        let mut rx = self.stop.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    pub fn stop_handle(&self) -> watch::Sender<bool> {
        self.stop.clone()
    }
}

/// Builds the shared service context: store (migrated), hasher, parsed durations.
pub async fn context(config: Config, clock: Arc<dyn Clock>) -> anyhow::Result<Context> {
    let times = config.auth_times()?;
    let passwords = Arc::new(config.password_policy()?);
    let mfa = Arc::new(config.mfa_policy()?);
    let hasher = password::PasswordHasher::new(&config.auth.argon2)?;
    let store = warden_store::open(&config.database.url)
        .await
        .with_context(|| format!("cannot open database {}", config::redact_url(&config.database.url)))?;
    store.ensure_builtins(clock.now()).await?;
    let authz = services::index::IndexHolder::load(store.clone(), config.permission_tree()?, config.system_roles()?).await?;
    let mail = services::mail::Mailer::new(&config.mail)?;
    let webauthn = config.relying_party()?.as_ref().map(services::authn::passkey::verifier).transpose()?;
    Ok(Context { store, clock, hasher, config: Arc::new(config), times, authz, mail, passwords, webauthn, mfa })
}

/// Starts the server described by `config`.
pub async fn start(mut config: Config, clock: Arc<dyn Clock>, with_control_socket: bool) -> anyhow::Result<Running> {
    config.resolve_fallbacks();
    config.validate()?;
    let tls = config.server.tls.as_ref().map(http::tls_acceptor).transpose()?;
    let ctx = context(config, clock).await?;
    let app = http::App::new(ctx.clone())?;
    let reload = std::time::Duration::from_secs(
        warden_core::credential::parse_duration_secs(&ctx.config.forward_auth.policy_reload_interval).unwrap_or(2).unsigned_abs(),
    );
    let policy_watch = tokio::spawn(app.forward.clone().watch_policy(reload));
    let (public_router, admin_router) = http::routers(&app);
    let (stop, _) = watch::channel(false);
    let mut limits = ctx.config.connection_limits()?;
    let listeners = if admin_router.is_some() { 2 } else { 1 };
    limits.max_connections = os::fit_connection_cap(limits.max_connections, os::open_file_limit(), listeners);

    let mut tasks = Vec::new();
    let mut bind = |addr: SocketAddr, key: &str, router: axum::Router| -> anyhow::Result<SocketAddr> {
        let std_listener = std::net::TcpListener::bind(addr).map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
                format!(": another process listens there; pick another address with `wardend serve --listen ADDR` or {key}")
            } else {
                format!(" ({key})")
            };
            anyhow::anyhow!("cannot listen on {addr}: {e}{hint}")
        })?;
        std_listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(std_listener)?;
        let bound = listener.local_addr()?;
        let mut rx = stop.subscribe();
        let shutdown = async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        tasks.push(tokio::spawn(http::conn::serve(listener, router, tls.clone(), limits, shutdown)));
        Ok(bound)
    };
    let public_addr = bind(ctx.config.server.listen, "server.listen", public_router)?;
    let admin_addr = match (ctx.config.server.admin_listen, admin_router) {
        (Some(addr), Some(router)) => Some(bind(addr, "server.admin_listen", router)?),
        _ => None,
    };
    let control = if with_control_socket {
        let path = &ctx.config.server.control_socket;
        let listener = control::bind(path).with_context(|| format!("cannot create control socket {}", path.display()))?;
        Some(tokio::spawn(control::serve(listener, ctx.clone())))
    } else {
        None
    };
    let poll = std::time::Duration::from_secs(ctx.times.poll_secs.unsigned_abs());
    let follower = tokio::spawn(ctx.authz.clone().follow(poll));
    let session_purge = ctx
        .times
        .session_purge_secs
        .map(|secs| tokio::spawn(app.auth.clone().purge_sessions_every(std::time::Duration::from_secs(secs.unsigned_abs()))));
    // The provider's keys are loaded (at first start, made) now, not on the first sign-in.
    tokio::spawn({
        let oidc = app.oidc.clone();
        async move { oidc.start().await }
    });
    tracing::info!(%public_addr, ?admin_addr, backend = ctx.store.backend(), "wardend is serving");
    tracing::info!(to = %ctx.mail.destination(), "mail");
    let postman = tokio::spawn(services::mail::Postman::new(ctx.clone()).run());
    Ok(Running { public_addr, admin_addr, context: ctx, stop, tasks, control, follower, policy_watch, session_purge, postman })
}
