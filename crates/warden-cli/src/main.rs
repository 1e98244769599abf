//! `warden`, the command-line client of a Warden server.
//!
//! This file parses the command line, hands each noun to its module, and turns every failure
//! into one line on stderr — `error: …`, or `{"error": {…}}` under `--output json` — and an
//! exit code: 0 success, 1 failure, 2 usage error (and, for `check` and `policy`, 3 when the
//! answer is deny).
//! The modules talk to the server only through `warden-client`, so the CLI shows exactly
//! what the REST API allows; `policy` alone needs no server (it runs `warden-policy` locally).

mod audit;
mod binding;
mod check;
mod group;
mod invitation;
mod oidc;
mod output;
mod policy;
mod preferences;
mod registration_token;
mod role;
mod self_;
mod service_account;
mod session;
mod sessions;
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
use warden_core::api::Problem;
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
    #[command(after_help = "Examples:
  warden login --user alice                      # asks for the password, read-only session
  warden reauth                                  # asks again: changes allowed for a while
  printf '%s\\n' \"$PW\" | warden login --user alice --password-stdin
  warden --server https://warden.example.org login --user alice")]
    Login(session::LoginArgs),
    /// Enter the password again to allow changes through the session for a while.
    Reauth(session::ReauthArgs),
    /// End the stored session and forget it.
    Logout,
    /// Show who the server thinks you are and what you may do.
    Whoami,
    /// Your own account: profile, password and preferences.
    #[command(
        subcommand,
        name = "self",
        after_help = "Examples:
  warden self show
  warden self update --display-name \"Alice Liddell\" --field desk=12
  warden self password
  warden self preferences acme --theme dark --timezone Europe/Berlin"
    )]
    Self_(self_::SelfCommand),
    /// Everyone's sessions and API tokens: list them, end them.
    #[command(
        subcommand,
        after_help = "Examples:
  warden session list --for alice
  warden session revoke 0193a0c4-5e1b-7c2d-9f00-2b6f4e8d1a77
  warden session revoke --for alice --all

--for names the account (the global --user is for signing in with NAME:PASSWORD)."
    )]
    Session(sessions::SessionCommand),
    /// Manage users (people).
    #[command(
        subcommand,
        after_help = "Examples:
  warden user create alice --email alice@example.org --display-name \"Alice Liddell\"
  warden user list --prefix al
  warden user get alice
  warden user update alice --phone \"+1 555 0100\" --clear birthday
  warden user add-group alice staff ops
  warden user set-password alice
  warden user permissions alice --namespace prod"
    )]
    User(user::UserCommand),
    /// Manage service accounts (applications) and their API tokens.
    #[command(
        subcommand,
        name = "service-account",
        visible_alias = "sa",
        after_help = "Examples:
  warden sa create ci-bot --description \"CI pipelines\" --managed-by group:platform
  TOKEN=$(warden sa token create ci-bot --expires-in 90d --label deploy --read-write)
  warden sa token list ci-bot
  warden sa token revoke ci-bot 0193a0c4-5e1b-7c2d-9f00-2b6f4e8d1a77
  warden sa add-group ci-bot deployers"
    )]
    ServiceAccount(service_account::ServiceAccountCommand),
    /// Manage groups and their members.
    #[command(
        subcommand,
        after_help = "Examples:
  warden group create ops --description \"On-call engineers\"
  warden group add-member ops user:alice sa:ci-bot group:oncall
  warden group members ops --effective
  warden group remove-member ops user:alice"
    )]
    Group(group::GroupCommand),
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(tenant::TenantCommand),
    /// Manage roles and their permissions.
    #[command(
        subcommand,
        after_help = "Examples:
  warden role create --id calendar-editor --name \"Calendar editor\" --permission calendar:events:write
  warden role add-permission calendar-editor calendar:events:read
  warden role permissions calendar-editor
  warden role list --tenant acme"
    )]
    Role(role::RoleCommand),
    /// Grant roles to users, service accounts and groups.
    #[command(
        subcommand,
        after_help = "Examples:
  warden binding create --role operator --group ops --namespace prod
  warden binding create --role tenant_admin --user alice --tenant acme
  warden binding list --subject group:ops
  warden binding delete 0193a0c4-5e1b-7c2d-9f00-2b6f4e8d1a77

In `binding create`, --user names the user to bind: authenticate with `warden login` or --token."
    )]
    Binding(binding::BindingCommand),
    /// Manage registration tokens (for `[registration] mode = "token"`).
    #[command(
        subcommand,
        name = "registration-token",
        after_help = "Examples:
  TOKEN=$(warden registration-token create --max-usage 3 --ttl 24h --role help-desk)
  warden registration-token list
  warden registration-token revoke 0193a0c4-5e1b-7c2d-9f00-2b6f4e8d1a77"
    )]
    RegistrationToken(registration_token::RegistrationTokenCommand),
    /// List and revoke invitations (`warden user invite` sends them).
    #[command(
        subcommand,
        after_help = "Examples:
  warden user invite alice@example.com bob@example.com --role help-desk
  warden invitation list
  warden invitation revoke 0193a0c4-5e1b-7c2d-9f00-2b6f4e8d1a77"
    )]
    Invitation(invitation::InvitationCommand),
    /// Manage OpenID Connect clients (the provider's endpoints are not served yet).
    #[command(
        subcommand,
        after_help = "Examples:
  warden oidc client create --name grafana --redirect-uri https://grafana.example.org/login/generic_oauth --claims groups,roles
  warden oidc client create --name cli-app --public --redirect-uri http://127.0.0.1/callback
  warden oidc client list
  warden oidc client rotate-secret grafana
  warden oidc client delete grafana"
    )]
    Oidc(oidc::OidcCommand),
    /// Decide whether a subject holds permissions (exit status 3 if any is denied).
    Check(check::CheckArgs),
    /// Read the audit log.
    #[command(
        subcommand,
        after_help = "Examples:
  warden audit list --since 1h
  warden audit list --actor alice --action group.member. --limit 20
  warden audit list --target ops --since 2026-01-01T00:00:00Z --all -o json"
    )]
    Audit(audit::AuditCommand),
    /// Write the whole directory as NDJSON (docs/transfer.md), streamed.
    #[command(after_help = "Examples:
  warden export directory.ndjson
  warden export backup.ndjson --include-credentials    # password hashes too (idm_superuser)
  warden export | gzip > directory.ndjson.gz")]
    Export(transfer::ExportArgs),
    /// Create or update the directory from an export file, in batches; stops at the first bad line.
    #[command(after_help = "Examples:
  warden import directory.ndjson --dry-run
  warden import directory.ndjson
  gunzip -c directory.ndjson.gz | warden import -")]
    Import(transfer::ImportArgs),
    /// Try a forward-auth Rego policy offline, without a server (exit status 3 on deny).
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Print a shell completion script.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: Shell,
    },
}

/// What a command needs to talk to the server and print.
pub struct Ctx {
    pub client: Client,
    pub format: Format,
    /// The stored session the client speaks with, if that is its credential.
    pub session: Option<session::Owner>,
}

impl Ctx {
    /// `unauthenticated` for the stored session means the session has ended (signed out,
    /// expired, revoked, or ended by a password reset): say so, and how to sign in again, rather
    /// than pass on the bare code. Other credentials' refusals stay as the server worded them,
    /// and so does any other 401 (a wrong password to `reauth` is `auth.failed`).
    pub fn explain(&self, err: CliError) -> CliError {
        match (&self.session, err) {
            (Some(owner), CliError::Client(ClientError::Api(problem))) if problem.status == 401 && problem.code == "unauthenticated" => {
                CliError::SessionEnded { owner: owner.clone(), expired_at: None }
            }
            (_, err) => err,
        }
    }
}

/// Runs `work` with `ctx`, its failures explained by [`Ctx::explain`].
async fn with_server<T>(ctx: Ctx, work: impl AsyncFnOnce(&Ctx) -> Result<T, CliError>) -> Result<T, CliError> {
    work(&ctx).await.map_err(|err| ctx.explain(err))
}

/// Why the CLI failed; each variant has its exit code and its stable code (see [`CliError::code`]).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The server refused, or could not be reached or read.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The stored session is no longer accepted (the server said 401), or it expired by its
    /// own clock (`expired_at`, known without asking).
    #[error("{}", session_ended(.owner, *.expired_at))]
    SessionEnded { owner: session::Owner, expired_at: Option<OffsetDateTime> },
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
            Self::Client(_) | Self::SessionEnded { .. } | Self::Local(_) => ExitCode::FAILURE,
        }
    }

    /// Stable machine-readable code: the server's problem code, `transport` or `decode` from
    /// the client, else `session.ended`, `usage` or `local` (docs/cli.md lists them).
    pub fn code(&self) -> &str {
        match self {
            Self::Client(err) => err.code(),
            Self::SessionEnded { .. } => "session.ended",
            Self::Usage(_) => "usage",
            Self::Local(_) => "local",
        }
    }

    /// The HTTP status the server answered with, when it did.
    fn status(&self) -> Option<u16> {
        match self {
            Self::Client(err) => err.status(),
            Self::SessionEnded { expired_at: None, .. } => Some(401),
            Self::SessionEnded { .. } | Self::Usage(_) | Self::Local(_) => None,
        }
    }

    /// The failure as one JSON object, for `--output json`.
    fn to_json(&self) -> serde_json::Value {
        let mut error = serde_json::json!({
            "code": self.code(),
            "message": one_line(&self.to_string()),
            "status": self.status(),
        });
        if let Self::Client(ClientError::Api(Problem { line: Some(line), .. })) = self {
            error["line"] = (*line).into();
        }
        serde_json::json!({ "error": error })
    }
}

/// What to do about an ended session, naming the account when the session file knows it.
fn session_ended(owner: &session::Owner, expired_at: Option<OffsetDateTime>) -> String {
    let (whose, name) = match &owner.account {
        Some(name) => (format!("your session for {name} on {}", owner.server), name.as_str()),
        None => (format!("your stored session on {}", owner.server), "NAME"),
    };
    let what = match expired_at {
        Some(at) => format!("expired at {}", output::time(at)),
        None => "has ended (signed out, expired or revoked)".to_owned(),
    };
    format!("{whose} {what}; sign in again with `warden login --user {name}`")
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(&err, json_requested(std::env::args_os().skip(1))),
    };
    let format = cli.global.output;
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => return fail(&CliError::Local(format!("cannot start the async runtime: {e}")), format),
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(err) => fail(&err, format),
    }
}

async fn run(cli: Cli) -> Result<ExitCode, CliError> {
    let global = &cli.global;
    let connect = || session::connect(global);
    match cli.command {
        Command::Login(args) => session::login(global, &args).await?,
        Command::Reauth(args) => session::reauth(global, &args).await?,
        Command::Logout => session::logout(global.output).await?,
        Command::Whoami => with_server(connect()?, session::whoami).await?,
        Command::Self_(command) => with_server(connect()?, async |ctx| self_::run(ctx, command).await).await?,
        Command::User(command) => with_server(connect()?, async |ctx| user::run(ctx, command).await).await?,
        Command::ServiceAccount(command) => with_server(connect()?, async |ctx| service_account::run(ctx, command).await).await?,
        Command::Group(command) => with_server(connect()?, async |ctx| group::run(ctx, command).await).await?,
        Command::Tenant(command) => with_server(connect()?, async |ctx| tenant::run(ctx, command).await).await?,
        Command::Role(command) => with_server(connect()?, async |ctx| role::run(ctx, command).await).await?,
        Command::Binding(command @ binding::BindingCommand::Create(_)) => {
            // Its `--user` is the user to bind, which clap also hands to `global.basic`.
            let global = Global { basic: None, ..global.clone() };
            with_server(session::connect(&global)?, async |ctx| binding::run(ctx, command).await).await?;
        }
        Command::Binding(command) => with_server(connect()?, async |ctx| binding::run(ctx, command).await).await?,
        Command::Invitation(command) => {
            with_server(connect()?, async |ctx| invitation::run(ctx, command).await).await?;
        }
        Command::Oidc(command) => with_server(connect()?, async |ctx| oidc::run(ctx, command).await).await?,
        Command::RegistrationToken(command) => {
            with_server(connect()?, async |ctx| registration_token::run(ctx, command).await).await?;
        }
        Command::Check(args) => return with_server(connect()?, async |ctx| check::check(ctx, args).await).await,
        Command::Session(command) => {
            // `--user NAME` (no password) names whose sessions, as `warden login --user NAME`
            // names who signs in; the caller speaks with its stored session or token.
            let (global, command) = sessions::account_from_user_flag(global.clone(), command)?;
            with_server(session::connect(&global)?, async |ctx| sessions::run(ctx, command).await).await?;
        }
        Command::Audit(command) => with_server(connect()?, async |ctx| audit::run(ctx, command).await).await?,
        Command::Export(args) => with_server(connect()?, async |ctx| transfer::export(ctx, &args).await).await?,
        Command::Import(args) => with_server(connect()?, async |ctx| transfer::import(ctx, &args).await).await?,
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

/// Prints the failure as one line on stderr — `error: …`, or a JSON object under `--output json` —
/// and returns its exit code.
fn fail(err: &CliError, format: Format) -> ExitCode {
    match format {
        Format::Table => eprintln!("error: {}", one_line(&err.to_string())),
        Format::Json => eprintln!("{}", err.to_json()),
    }
    err.exit_code()
}

/// Help and version go out as clap renders them; real usage errors as one line, exit 2.
fn usage_error(err: &clap::Error, json: bool) -> ExitCode {
    use clap::error::ErrorKind;
    if json && err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        // The help clap would show is no JSON; a script wants the error.
        return fail(&CliError::Usage("a subcommand is needed here; `--help` lists them".into()), Format::Json);
    }
    if matches!(err.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand) {
        // Nothing better to do if the terminal is gone.
        let _ = err.print();
        return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2));
    }
    let line = clap_one_line(&err.render().to_string());
    if json {
        fail(&CliError::Usage(line.trim_start_matches("error: ").to_owned()), Format::Json)
    } else {
        eprintln!("{line}");
        ExitCode::from(2)
    }
}

/// Whether a command line that clap refused asked for `--output json` (the last `--output`,
/// `--output=`, `-o`, `-o=` or `-oVALUE` wins, as in clap), so that even a usage error comes
/// out as JSON.
fn json_requested(args: impl IntoIterator<Item = std::ffi::OsString>) -> bool {
    let mut json = false;
    let mut args = args.into_iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        let value = match arg.as_str() {
            "--" => break,
            "--output" | "-o" => args.next(),
            other => other.strip_prefix("--output=").or_else(|| other.strip_prefix("-o")).map(|v| v.trim_start_matches('=').to_owned()),
        };
        if let Some(value) = value {
            json = value == "json";
        }
    }
    json
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

    /// Every subcommand, argument and flag a user can reach, with the path that leads to it.
    fn missing_help(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in command.get_arguments().filter(|a| !a.is_hide_set()) {
            // Global flags are described once, on `warden` itself.
            if arg.is_global_set() && path != "warden" {
                continue;
            }
            if arg.get_help().is_none() && arg.get_long_help().is_none() {
                missing.push(format!("{path} {}", arg.get_long().map_or_else(|| format!("<{}>", arg.get_id()), |l| format!("--{l}"))));
            }
        }
        for sub in command.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
            let sub_path = format!("{path} {}", sub.get_name());
            if sub.get_about().is_none() && sub.get_long_about().is_none() {
                missing.push(sub_path.clone());
            }
            missing_help(sub, &sub_path, missing);
        }
    }

    #[test]
    fn every_command_argument_and_flag_has_help() {
        let mut missing = Vec::new();
        missing_help(&Cli::command(), "warden", &mut missing);
        assert!(missing.is_empty(), "no help text for:\n  {}", missing.join("\n  "));
    }

    #[test]
    fn main_commands_show_examples() {
        let cli = Cli::command();
        for name in ["login", "user", "service-account", "group", "role", "binding", "check", "export", "import", "audit"] {
            let command = cli.find_subcommand(name).unwrap_or_else(|| panic!("no command {name}"));
            let after = command.get_after_help().map(ToString::to_string).unwrap_or_default();
            assert!(after.contains("Examples:\n  warden "), "`warden {name} --help` has no Examples section");
        }
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
    fn json_is_found_on_a_command_line_clap_refused() {
        let asks = |args: &[&str]| json_requested(args.iter().map(std::ffi::OsString::from));
        for yes in [&["-o", "json", "user"][..], &["user", "--output", "json"], &["--output=json"], &["-ojson"], &["-o=json"]] {
            assert!(asks(yes), "{yes:?}");
        }
        for no in [&["user", "rename"][..], &["-o", "json", "-o", "table"], &["--", "-o", "json"], &["--output", "yaml"]] {
            assert!(!asks(no), "{no:?}");
        }
    }

    #[test]
    fn failures_have_stable_codes_in_json() {
        let usage = CliError::Usage("bad\nthing".into()).to_json();
        assert_eq!(usage, serde_json::json!({"error": {"code": "usage", "message": "bad thing", "status": null}}));
        let problem = Problem {
            type_: "about:blank".into(),
            title: "Bad request".into(),
            status: 400,
            code: "import.invalid".into(),
            detail: Some("group nowhere not found".into()),
            line: Some(6),
        };
        let refused = CliError::Client(ClientError::Api(problem)).to_json();
        assert_eq!(refused["error"]["code"], "import.invalid");
        assert_eq!((refused["error"]["status"].as_u64(), refused["error"]["line"].as_u64()), (Some(400), Some(6)));
    }

    #[test]
    fn an_ended_session_says_whose_and_how_to_renew_it() {
        let owner = session::Owner { account: Some("alice".into()), server: "http://w.example".into() };
        let ended = CliError::SessionEnded { owner: owner.clone(), expired_at: None };
        assert_eq!(
            ended.to_string(),
            "your session for alice on http://w.example has ended (signed out, expired or revoked); sign in again with `warden login --user alice`"
        );
        assert_eq!((ended.code(), ended.status()), ("session.ended", Some(401)));
        let expired = CliError::SessionEnded { owner, expired_at: Some(time::macros::datetime!(2026-01-02 03:04:05 UTC)) };
        assert!(expired.to_string().contains("expired at 2026-01-02 03:04:05Z;"), "{expired}");
        let unnamed = CliError::SessionEnded { owner: session::Owner { account: None, server: "http://w".into() }, expired_at: None };
        assert!(
            unnamed.to_string().starts_with("your stored session on http://w has ended") && unnamed.to_string().ends_with("--user NAME`")
        );
    }

    #[test]
    fn failures_print_one_line() {
        assert_eq!(one_line("Bad request: line one\nline two (validation)"), "Bad request: line one line two (validation)");
        assert_eq!(CliError::Usage("x".into()).exit_code(), ExitCode::from(2));
    }
}
