//! `wardend`, the command line around [`warden_server::start`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use warden_server::clock::SystemClock;
use warden_server::config::{Config, redact_url};
use warden_server::control::{self, ControlRequest};
use warden_server::services::recovery;

/// mimalloc rather than the system allocator: a request allocates dozens of small blocks (HTTP
/// headers, credential and policy values), and glibc's malloc took 10-12 % of the server's CPU
/// on the forward-auth path (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "wardend", version, about = "Warden identity and access management server")]
struct Cli {
    /// Configuration file (TOML). Without one, defaults and WARDEN_* variables apply.
    #[arg(long, short, global = true, env = "WARDEN_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Listen here instead of `server.listen` (e.g. 127.0.0.1:9080).
        #[arg(long, value_name = "ADDR")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Give a break-glass account (admin or idm_admin) a fresh password, printed on stdout.
    RecoverAccount {
        #[arg(value_parser = ["admin", "idm_admin"])]
        account: String,
    },
    /// Make an account an idm_superuser (every warden:* permission) or stop it being one.
    Superuser {
        #[command(subcommand)]
        command: SuperuserCommand,
    },
    /// Work with the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Apply pending database migrations and exit.
    Migrate,
}

#[derive(Subcommand)]
enum SuperuserCommand {
    /// Add an account to idm_superusers.
    Add { account: String },
    /// Remove an account from idm_superusers.
    Remove { account: String },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Load and validate the configuration, then print a summary.
    Check,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("WARDEN_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let serving = matches!(cli.command, Command::Serve { .. });
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        // The server's log is structured lines throughout, its last one included.
        Err(e) if serving => {
            tracing::error!(error = %format!("{e:#}"), "wardend cannot serve");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve { listen } => {
            if let Some(listen) = listen {
                config.server.listen = listen;
            }
            serve(config).await
        }
        Command::RecoverAccount { account } => {
            let socket = config.server.control_socket.clone();
            let request = ControlRequest::Recover { account: account.clone() };
            let password = if let Some(password) = control::request(&socket, &request).await? {
                eprintln!("recovered {account} through the running server");
                password
            } else {
                eprintln!("no server answers on {}; opening the database directly", socket.display());
                let ctx = warden_server::context(config, Arc::new(SystemClock)).await?;
                let password = recovery::recover_account(&ctx, &account).await;
                ctx.store.shutdown().await;
                password?.expose().to_owned()
            };
            println!("{password}");
            Ok(())
        }
        Command::Superuser { command } => {
            let (account, grant) = match command {
                SuperuserCommand::Add { account } => (account, true),
                SuperuserCommand::Remove { account } => (account, false),
            };
            let socket = config.server.control_socket.clone();
            let request = ControlRequest::Superuser { account: account.clone(), grant };
            let outcome = if let Some(outcome) = control::request(&socket, &request).await? {
                outcome
            } else {
                eprintln!("no server answers on {}; opening the database directly", socket.display());
                let ctx = warden_server::context(config, Arc::new(SystemClock)).await?;
                let outcome = recovery::set_superuser(&ctx, &account, grant).await;
                ctx.store.shutdown().await;
                format!("{account} {} idm_superusers", outcome?)
            };
            eprintln!("{outcome}");
            Ok(())
        }
        Command::Config { command: ConfigCommand::Check } => {
            eprintln!("configuration is valid");
            eprintln!("  listen:        {}", config.server.listen);
            if let Some(admin) = config.server.admin_listen {
                eprintln!("  admin_listen:  {admin}");
            }
            eprintln!("  tls:           {}", if config.server.tls.is_some() { "on" } else { "off" });
            eprintln!("  database:      {}", redact_url(&config.database.url));
            Ok(())
        }
        Command::Migrate => {
            let ctx = warden_server::context(config, Arc::new(SystemClock)).await?;
            let revision = ctx.store.revision().await;
            ctx.store.shutdown().await;
            eprintln!("database is at revision {}", revision?);
            Ok(())
        }
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    warden_server::os::raise_open_file_limit();
    let running = warden_server::start(config, Arc::new(SystemClock), true).await?;
    // What a newcomer does next: without a password on either break-glass account, nobody can
    // sign in yet.
    let mut locked_out = Vec::new();
    for (id, name, _) in warden_core::model::BREAK_GLASS {
        if running.context.store.password_hash(id).await?.is_none() {
            locked_out.push(name);
        }
    }
    if locked_out.len() == warden_core::model::BREAK_GLASS.len() {
        tracing::info!(
            next = "wardend recover-account idm_admin > idm_admin.pw; warden login --user idm_admin --password-stdin < idm_admin.pw",
            "no account has a password yet: give the break-glass identity administrator one on this host"
        );
    }
    let stop = running.stop_handle();
    tokio::spawn(async move {
        let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else { return };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
        let _ = stop.send(true);
    });
    running.stopped().await;
    tracing::info!("shutting down");
    running.shutdown().await
}
