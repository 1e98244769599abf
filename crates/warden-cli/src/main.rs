//! `warden`, the command-line client of a Warden server.
//!
//! This file parses the command line, hands each noun to its module, and turns every failure
//! into one `error: …` line on stderr and an exit code: 0 success, 1 failure, 2 usage error
//! (and, for `check` and `policy`, 3 when the answer is deny).
//! The modules talk to the server only through `warden-client`, so the CLI shows exactly
//! what the REST API allows; `policy` alone needs no server (it runs `warden-policy` locally).

mod audit;
mod binding;
mod check;
mod group;
mod output;
mod policy;
mod role;
mod service_account;
mod session;
mod tenant;
mod transfer;
mod user;

use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};
use clap_complete::Shell;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime};
use warden_client::{Client, ClientError};
use warden_core::CoreError;
use warden_core::model::SubjectRef;
use warden_core::namespace::Namespace;

use crate::output::Format;

#[derive(Debug, Parser)]
#[command(name = "warden", version, about = "Manage a Warden server: users, service accounts, groups, roles, bindings, audit.")]
pub struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Flags every command accepts. (Field names must not be reused by any subcommand's
/// arguments: clap shares one id space between a global flag and what it propagates into.
/// The one deliberate exception is `binding create --user`, which shadows `basic`.)
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// Server base URL [default: the logged-in session's server, else http://127.0.0.1:8080]
    #[arg(long, env = "WARDEN_SERVER", global = true, value_name = "URL")]
    pub server: Option<String>,
    /// Bearer token: a session (wds_…) or API token (wdn_…). Wins over --user and the session.
    #[arg(long, env = "WARDEN_TOKEN", global = true, hide_env_values = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// HTTP Basic credentials; for `login`, the NAME to log in as (password asked for).
    #[arg(long = "user", global = true, value_name = "NAME:PASSWORD")]
    pub basic: Option<String>,
    /// How to print results.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Log in with a password and keep the session for later commands.
    Login(session::LoginArgs),
    /// Enter the password again to allow changes through the session for a while.
    Reauth(session::ReauthArgs),
    /// End the stored session and forget it.
    Logout,
    /// Show who the server thinks you are and what you may do.
    Whoami,
    /// Manage users (people).
    #[command(subcommand)]
    User(user::UserCommand),
    /// Manage service accounts (applications) and their API tokens.
    #[command(subcommand, name = "service-account", visible_alias = "sa")]
    ServiceAccount(service_account::ServiceAccountCommand),
    /// Manage groups and their members.
    #[command(subcommand)]
    Group(group::GroupCommand),
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(tenant::TenantCommand),
    /// Manage roles and their permissions.
    #[command(subcommand)]
    Role(role::RoleCommand),
    /// Grant roles to users, service accounts and groups.
    #[command(subcommand)]
    Binding(binding::BindingCommand),
    /// Decide whether a subject holds permissions (exit status 3 if any is denied).
    Check(check::CheckArgs),
    /// Read the audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Write the whole directory as NDJSON (docs/transfer.md), streamed.
    Export(transfer::ExportArgs),
    /// Create or update the directory from an export file, in batches; stops at the first bad line.
    Import(transfer::ImportArgs),
    /// Try a forward-auth Rego policy offline, without a server (exit status 3 on deny).
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
}

/// What a command needs to talk to the server and print.
pub struct Ctx {
    pub client: Client,
    pub format: Format,
}

/// Why the CLI failed; each variant has its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The server refused, or could not be reached or read.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The command line was wrong in a way clap cannot see (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Something local failed: the session file, the terminal, stdout.
    #[error("{0}")]
    Local(String),
}

impl CliError {
    fn exit_code(&self) -> ExitCode {
        match self {
            Self::Usage(_) => ExitCode::from(2),
            Self::Client(_) | Self::Local(_) => ExitCode::FAILURE,
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(&err),
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return fail(&CliError::Local(format!("cannot start the async runtime: {e}"))),
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(err) => fail(&err),
    }
}

async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    let global = &cli.global;
    match cli.command {
        Command::Login(args) => session::login(global, &args).await?,
        Command::Reauth(args) => session::reauth(global, &args).await?,
        Command::Logout => session::logout().await?,
        Command::Whoami => session::whoami(&session::connect(global)?).await?,
        Command::User(command) => user::run(&session::connect(global)?, command).await?,
        Command::ServiceAccount(command) => service_account::run(&session::connect(global)?, command).await?,
        Command::Group(command) => group::run(&session::connect(global)?, command).await?,
        Command::Tenant(command) => tenant::run(&session::connect(global)?, command).await?,
        Command::Role(command) => role::run(&session::connect(global)?, command).await?,
        Command::Binding(command @ binding::BindingCommand::Create(_)) => {
            // Its `--user` is the user to bind, which clap also hands to `global.basic`.
            let global = Global { basic: None, ..global.clone() };
            binding::run(&session::connect(&global)?, command).await?;
        }
        Command::Binding(command) => binding::run(&session::connect(global)?, command).await?,
        Command::Check(args) => return check::check(&session::connect(global)?, args).await,
        Command::Audit(command) => audit::run(&session::connect(global)?, command).await?,
        Command::Export(args) => transfer::export(&session::connect(global)?, &args).await?,
        Command::Import(args) => transfer::import(&session::connect(global)?, &args).await?,
        Command::Policy(command) => return policy::run(global.output, command),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "warden", &mut script);
            output::emit(String::from_utf8_lossy(&script).trim_end())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Argument parser for `--valid-from`, `--expires-at`, `--since`: an RFC 3339 time.
pub fn parse_rfc3339(raw: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(raw.trim(), &Rfc3339).map_err(|_| format!("{raw:?} is not an RFC 3339 time like 2026-01-31T12:00:00Z"))
}

/// Argument parser for `--namespace`: a dotted path such as `prod.team-a`, lower-cased.
pub fn parse_namespace(raw: &str) -> Result<String, String> {
    Namespace::parse(raw).map(|n| n.to_string()).map_err(reason)
}

/// Argument parser for a subject (`user:alice`, `sa:ci`, `group:ops`, a bare name or an id),
/// normalised the way the server spells it.
pub fn parse_subject(raw: &str) -> Result<String, String> {
    SubjectRef::parse(raw).map(|s| s.to_string()).map_err(reason)
}

/// A core validation error without its field name (clap names the argument already).
fn reason(err: CoreError) -> String {
    match err {
        CoreError::Validation { reason, .. } => reason,
        other => other.to_string(),
    }
}

/// Argument parser for `--birthday`: a calendar date.
pub fn parse_date(raw: &str) -> Result<Date, String> {
    Date::parse(raw.trim(), format_description!("[year]-[month]-[day]")).map_err(|_| format!("{raw:?} is not a date like 1990-01-31"))
}

fn fail(err: &CliError) -> ExitCode {
    eprintln!("error: {}", one_line(&err.to_string()));
    err.exit_code()
}

/// Help and version go out as clap renders them; real usage errors as one line, exit 2.
fn usage_error(err: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(err.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand) {
        // Nothing better to do if the terminal is gone.
        let _ = err.print();
        return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2));
    }
    eprintln!("{}", clap_one_line(&err.render().to_string()));
    ExitCode::from(2)
}

/// Folds clap's multi-line message (up to its `Usage:` block or `--help` hint) into one line.
fn clap_one_line(rendered: &str) -> String {
    let mut line = String::new();
    let message = rendered.lines().map(str::trim).take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"));
    for part in message.filter(|l| !l.is_empty()) {
        if !line.is_empty() {
            line.push_str(if line.ends_with(':') { " " } else { "; " });
        }
        line.push_str(part);
    }
    line
}

/// Server details may hold newlines; the contract is one line per failure.
fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("warden").chain(args.iter().copied()))
    }

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli = parse(&["user", "list", "--output", "json", "--server", "https://w.example", "--all"]).unwrap();
        assert_eq!(cli.global.output, Format::Json);
        assert_eq!(cli.global.server.as_deref(), Some("https://w.example"));
        assert!(matches!(cli.command, Command::User(user::UserCommand::List(ref list)) if list.page.all));
        let cli = parse(&["login", "--user", "alice", "--password-stdin"]).unwrap();
        assert_eq!(cli.global.basic.as_deref(), Some("alice"));
        assert!(matches!(cli.command, Command::Login(ref args) if args.password_stdin));
        let cli = parse(&["user", "get", "bob", "--user", "alice:pw"]).unwrap();
        assert_eq!(cli.global.basic.as_deref(), Some("alice:pw"));
        assert!(matches!(cli.command, Command::User(user::UserCommand::Get { ref user }) if user == "bob"));
        let cli = parse(&["group", "get", "staff"]).unwrap();
        assert_eq!(cli.global.basic, None);
    }

    #[test]
    fn commands_parse() {
        for ok in [
            &["user", "create", "alice", "--email", "a@x.org", "--email", "b@x.org", "--birthday", "1990-02-03"][..],
            &["user", "create", "bob", "--valid-from", "2026-01-01T00:00:00Z", "--password-stdin"],
            &["user", "update", "alice", "--clear", "display-name", "--first-name", "Al"],
            &["sa", "token", "create", "ci", "--expires-in", "90d", "--label", "deploy"],
            &["service-account", "token", "revoke", "ci", "01890a5d-ac96-774b-bcce-b302099a8057"],
            &["group", "add-member", "staff", "user:alice", "sa:ci", "group:ops"],
            &["group", "members", "staff", "--effective", "--limit", "10"],
            &["audit", "list", "--since", "1h", "--action", "user."],
            &["audit", "list", "--since", "2026-01-01T00:00:00Z"],
            &["completions", "zsh"],
            &["reauth", "--password-stdin"],
            &["tenant", "create", "acme", "--description", "ACME Corp"],
            &["tenant", "list"],
            &["export"],
            &["export", "dir.ndjson", "--include-credentials", "-o", "json"],
            &["import", "dir.ndjson", "--dry-run"],
            &["import", "-"],
            &[
                "role",
                "create",
                "--name",
                "Calendar editor",
                "--permission",
                "calendar:events:write",
                "--permission",
                "calendar:events:read",
            ],
            &["role", "create", "--id", "cal", "--name", "Cal", "--tenant", "acme"],
            &["role", "add-permission", "cal", "calendar:events:write", "calendar:tasks"],
            &["role", "remove-permission", "cal", "calendar:tasks"],
            &["role", "list", "--tenant", "acme"],
            &["role", "permissions", "cal"],
            &["binding", "list", "--subject", "group:ops", "--role", "cal", "--tenant", "acme"],
            &["binding", "delete", "01890a5d-ac96-774b-bcce-b302099a8057"],
            &["check", "alice", "calendar:events:read"],
            &["user", "permissions", "alice", "--tenant", "acme", "--namespace", "prod.eu"],
            &["sa", "permissions", "ci"],
            &["policy", "test", "--policy", "policies", "--input", "in.json"],
            &["policy", "explain", "--input", "-", "--policy", "policies", "--query", "data.app.allow", "-o", "json"],
        ] {
            parse(ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
        }
    }

    #[test]
    fn new_commands_parse_into_their_arguments() {
        let cli = parse(&["role", "create", "--name", "Cal"]).unwrap();
        assert!(matches!(cli.command, Command::Role(role::RoleCommand::Create(ref a)) if a.id.is_none() && a.permissions.is_empty()));
        let cli = parse(&["sa", "token", "create", "ci", "--read-write", "--role", "deployer", "--role", "viewer"]).unwrap();
        let Command::ServiceAccount(service_account::ServiceAccountCommand::Token(service_account::TokenCommand::Create {
            read_write,
            roles,
            ..
        })) = cli.command
        else {
            panic!("not token create")
        };
        assert!(read_write);
        assert_eq!(roles, ["deployer", "viewer"]);
        let cli = parse(&["check", "user:Alice", "a:read", "a:write", "--namespace", "Prod.EU", "--explain", "--tenant", "acme"]).unwrap();
        let Command::Check(args) = cli.command else { panic!("not check") };
        assert_eq!((args.subject.as_str(), args.permissions.len(), args.namespace.as_deref()), ("user:alice", 2, Some("prod.eu")));
        assert!(args.explain && args.tenant.as_deref() == Some("acme"));
        let cli = parse(&["binding", "create", "--role", "cal", "--group", "ops", "--namespace", "prod", "--namespace", "dev.a"]).unwrap();
        let Command::Binding(binding::BindingCommand::Create(args)) = cli.command else { panic!("not binding create") };
        assert_eq!(args.namespaces, ["prod", "dev.a"]);
    }

    #[test]
    fn policy_commands_parse_into_their_arguments() {
        let cli = parse(&["policy", "test", "--policy", "policies", "--input", "in.json"]).unwrap();
        let Command::Policy(policy::PolicyCommand::Test(args)) = cli.command else { panic!("not policy test") };
        assert_eq!((args.policy.to_str(), args.input.to_str()), (Some("policies"), Some("in.json")));
        assert_eq!(args.query, warden_policy::rego::DEFAULT_QUERY);
        let cli = parse(&["-o", "json", "policy", "explain", "--policy", "p", "--input", "-", "--query", "data.app.decision"]).unwrap();
        assert_eq!(cli.global.output, Format::Json);
        let Command::Policy(policy::PolicyCommand::Explain(args)) = cli.command else { panic!("not policy explain") };
        assert_eq!((args.input.to_str(), args.query.as_str()), (Some("-"), "data.app.decision"));
    }

    fn binding_subject(args: &[&str]) -> Result<String, CliError> {
        let args: Vec<&str> = ["binding", "create", "--role", "cal"].iter().chain(args).copied().collect();
        match parse(&args).map_err(|e| CliError::Usage(e.to_string()))?.command {
            Command::Binding(binding::BindingCommand::Create(create)) => create.subject.subject(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn binding_subject_is_exactly_one_of_three_flags() {
        assert_eq!(binding_subject(&["--user", "alice"]).unwrap(), "user:alice");
        assert_eq!(binding_subject(&["--service-account", "ci"]).unwrap(), "sa:ci");
        assert_eq!(binding_subject(&["--group", "ops"]).unwrap(), "group:ops");
        for bad in [
            &[][..],
            &["--user", "alice", "--group", "ops"],
            &["--user", "alice", "--service-account", "ci"],
            &["--service-account", "ci", "--group", "ops"],
        ] {
            let args: Vec<&str> = ["binding", "create", "--role", "cal"].iter().chain(bad).copied().collect();
            assert_eq!(parse(&args).unwrap_err().exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn binding_create_user_shadows_the_global_basic_credentials() {
        // After the subcommand, --user is the subject, and the global flag sees it too (main
        // drops it before connecting).
        let cli = parse(&["binding", "create", "--role", "cal", "--user", "alice"]).unwrap();
        assert_eq!(cli.global.basic.as_deref(), Some("alice"));
        // Before it, NAME:PASSWORD would authenticate elsewhere; here it is refused, not bound.
        let err = binding_subject(&["--user", "admin:pw"]).unwrap_err();
        assert!(matches!(err, CliError::Usage(_)), "{err}");
        let cli = parse(&["--user", "admin:pw", "binding", "create", "--role", "cal", "--group", "ops"]).unwrap();
        let Command::Binding(binding::BindingCommand::Create(create)) = cli.command else { panic!("not binding create") };
        assert!(matches!(create.subject.subject(), Err(CliError::Usage(_))));
        // Other binding commands keep the global meaning.
        let cli = parse(&["binding", "list", "--user", "admin:pw"]).unwrap();
        assert_eq!(cli.global.basic.as_deref(), Some("admin:pw"));
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for bad in [
            &["user", "create", "alice", "--birthday", "03.02.1990"][..],
            &["user", "create", "alice", "--expires-at", "tomorrow"],
            &["user", "create", "alice", "--password", "x", "--password-stdin"],
            &["sa", "token", "create", "ci", "--expires-in", "90 days"],
            &["sa", "token", "revoke", "ci", "not-a-uuid"],
            &["audit", "list", "--since", "yesterday"],
            &["group", "add-member", "staff"],
            &["user", "list", "--all", "--cursor", "x"],
            &["--output", "yaml", "whoami"],
            &["completions", "tcsh"],
            &["check", "alice"],
            &["check", "robot:x", "a:read"],
            &["check", "alice", "a:read", "--namespace", "prod..eu"],
            &["role", "create", "--id", "cal"],
            &["role", "add-permission", "cal"],
            &["binding", "create", "--group", "ops"],
            &["binding", "create", "--role", "cal", "--group", "ops", "--namespace", "no spaces"],
            &["binding", "delete", "not-a-uuid"],
            &["tenant", "delete"],
            &["policy", "test", "--input", "in.json"],
            &["policy", "test", "--policy", "policies"],
            &["policy", "explain", "--policy", "policies", "--input", "in.json", "--query"],
            &["policy", "check", "--policy", "policies", "--input", "in.json"],
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}");
            let line = clap_one_line(&err.render().to_string());
            assert!(line.starts_with("error: ") && !line.contains('\n'), "{line}");
        }
    }

    #[test]
    fn missing_arguments_fold_into_one_line() {
        let err = parse(&["user", "rename", "alice"]).unwrap_err();
        assert_eq!(clap_one_line(&err.render().to_string()), "error: the following required arguments were not provided: <NEW_NAME>");
        let err = parse(&["check", "robot:x", "a:read"]).unwrap_err();
        assert_eq!(
            clap_one_line(&err.render().to_string()),
            "error: invalid value 'robot:x' for '<SUBJECT>': unknown kind \"robot\" in \"robot:x\"; use user:, sa: or group:"
        );
    }

    #[test]
    fn failures_print_one_line() {
        assert_eq!(one_line("Bad request: line one\nline two (validation)"), "Bad request: line one line two (validation)");
        assert_eq!(CliError::Usage("x".into()).exit_code(), ExitCode::from(2));
    }
}
