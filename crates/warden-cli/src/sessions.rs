//! `warden session …` and `warden self sessions`: the sessions and API tokens that can sign
//! accounts in, and ending them. (The CLI's own stored session is `session.rs`.)
//!
//! Operators list everyone's (`warden:users:read`) and end anyone's (`warden:credentials:write`,
//! an administrator's only as idm_superuser); a person lists and ends their own.

use clap::Subcommand;
use uuid::Uuid;
use warden_client::SessionsQuery;
use warden_core::api::{CredentialKind, SessionInfo};

use crate::output::{self, PageArgs, Tabular, opt, opt_time};
use crate::{CliError, Ctx};

/// The subcommands of `warden session`.
#[derive(Debug, Subcommand)]
pub enum SessionCommand {
    /// List live sessions: everyone's, or one account's sessions and API tokens.
    #[command(after_help = "Examples:
  warden session list
  warden session list --user alice -o json")]
    List {
        /// Only this account's (name or id), with its API tokens. `--user NAME` (without a
        /// password) says the same.
        #[arg(long = "for", visible_alias = "account", value_name = "NAME")]
        user: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// End one session or API token, or every session of an account.
    #[command(after_help = "Examples:
  warden session revoke 0193a0c4-5e1b-7c2d-9f00-2b6f4e8d1a77
  warden session revoke --user alice --all")]
    Revoke {
        /// The session's or API token's id.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<Uuid>,
        /// Whose sessions --all ends (name or id).
        #[arg(long = "for", visible_alias = "account", value_name = "NAME", requires = "all")]
        user: Option<String>,
        /// End every session of the account --user (or --for) names (its API tokens stay).
        #[arg(long)]
        all: bool,
    },
}

pub async fn run(ctx: &Ctx, command: SessionCommand) -> Result<(), CliError> {
    let client = &ctx.client;
    match command {
        SessionCommand::List { user, page } => {
            output::list(ctx, &page, async |cursor, limit| client.list_sessions(&SessionsQuery { user: user.clone(), cursor, limit }).await)
                .await
        }
        SessionCommand::Revoke { id: Some(id), .. } => {
            client.revoke_session(id).await?;
            output::done(ctx.format, &serde_json::json!({ "revoked": id }), &format!("{id} revoked"))
        }
        SessionCommand::Revoke { user: Some(user), all: true, .. } => {
            let done = client.revoke_user_sessions(&user).await?;
            let message = format!("{} session(s) of {user} ended", done.sessions_ended);
            output::done(ctx.format, &serde_json::json!({ "sessions_ended": done.sessions_ended }), &message)
        }
        SessionCommand::Revoke { .. } => Err(CliError::Usage("name a session id, or --user NAME --all".into())),
    }
}

/// Reads a global `--user NAME` without a password as the account `session list|revoke` is
/// about (the issue's `--user NAME`); `--user NAME:PASSWORD` stays a credential. Naming the
/// account twice (`--user` and `--for`) is a usage error.
pub fn account_from_user_flag(mut global: crate::Global, mut command: SessionCommand) -> Result<(crate::Global, SessionCommand), CliError> {
    let Some(name) = global.basic.clone().filter(|u| !u.contains(':')) else { return Ok((global, command)) };
    let slot = match &mut command {
        SessionCommand::List { user, .. } | SessionCommand::Revoke { user, .. } => user,
    };
    if slot.is_some() {
        return Err(CliError::Usage("name the account once: --user NAME or --for NAME".into()));
    }
    *slot = Some(name);
    global.basic = None;
    Ok((global, command))
}

/// `warden self sessions [--revoke ID]`.
pub async fn run_own(ctx: &Ctx, revoke: Option<Uuid>) -> Result<(), CliError> {
    match revoke {
        Some(id) => {
            ctx.client.revoke_own_session(id).await?;
            output::done(ctx.format, &serde_json::json!({ "revoked": id }), &format!("{id} revoked"))
        }
        None => output::page(ctx, &ctx.client.own_sessions().await?),
    }
}

impl Tabular for SessionInfo {
    const HEADERS: &'static [&'static str] =
        &["ID", "KIND", "ACCOUNT", "STRENGTH", "CLIENT", "USER AGENT", "CREATED", "LAST USED", "ENDS", "CURRENT"];

    fn row(&self) -> Vec<String> {
        let kind = match self.kind {
            CredentialKind::Session => "session",
            CredentialKind::ApiToken => "api_token",
        };
        vec![
            self.id.to_string(),
            kind.to_owned(),
            self.account.name.to_string(),
            self.auth_strength.clone(),
            opt(self.client.as_deref()),
            opt(self.user_agent.as_deref()),
            output::time(self.created_at),
            opt_time(self.last_used_at),
            self.ends_at.map_or_else(|| "never".to_owned(), output::time),
            if self.current { "*".to_owned() } else { String::new() },
        ]
    }
}
