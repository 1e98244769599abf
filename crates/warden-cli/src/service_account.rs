//! `warden service-account …`: applications and their API tokens.
//!
//! `token create` prints the new token alone on stdout (facts go to stderr), so
//! `TOKEN=$(warden service-account token create ci)` captures exactly the secret. It is the
//! one place the CLI ever prints a secret: the server shows it once and never again.

use clap::Subcommand;
use uuid::Uuid;
use warden_client::PageQuery;
use warden_core::api::{CreateApiToken, CreateServiceAccount};
use warden_core::credential::parse_duration_secs;
use warden_core::model::{ApiToken, ServiceAccount, SubjectKind};

use crate::check::{self, ScopeArgs};
use crate::group::member_ref;
use crate::output::{self, Format, PageArgs, Tabular, opt, opt_time, words, yes_no};
use crate::user::ListArgs;
use crate::{CliError, Ctx};

#[derive(Debug, Subcommand)]
pub enum ServiceAccountCommand {
    /// Create a service account.
    Create {
        /// The new service account's name (lower case: letters, digits, `.`, `_`, `-`).
        name: String,
        /// What the application is.
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
        /// The user or group responsible for it.
        #[arg(long, value_name = "user:NAME|group:NAME")]
        managed_by: Option<String>,
    },
    /// List service accounts by name.
    List(ListArgs),
    /// Show one service account (by name or id).
    Get {
        /// The service account's name or id.
        service_account: String,
    },
    /// Delete a service account and its tokens.
    Delete {
        /// The service account's name or id.
        service_account: String,
    },
    /// Add a service account to groups (as `group add-member GROUP sa:NAME` for each).
    AddGroup {
        /// The service account's name or id.
        service_account: String,
        /// The groups to join (names or ids).
        #[arg(required = true, value_name = "GROUP")]
        groups: Vec<String>,
    },
    /// Remove a service account from groups it is a direct member of.
    RemoveGroup {
        /// The service account's name or id.
        service_account: String,
        /// The groups to leave (names or ids).
        #[arg(required = true, value_name = "GROUP")]
        groups: Vec<String>,
    },
    /// Manage a service account's API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Print what a service account may do: the permissions one per line (roles and groups on stderr).
    Permissions {
        /// The service account's name or id.
        service_account: String,
        #[command(flatten)]
        scope: ScopeArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token and print it (alone on stdout; it is not shown again).
    Create {
        /// The service account the token acts as (name or id).
        service_account: String,
        /// Lifetime such as 90d, 12h, 2w, or `never` unless the server caps lifetimes
        /// (auth.api_token_max_lifetime) [default: the server's]
        #[arg(long, value_parser = parse_lifetime, value_name = "DURATION|never")]
        expires_in: Option<String>,
        /// What the token is for.
        #[arg(long)]
        label: Option<String>,
        /// Let the token change things [default: read-only]
        #[arg(long)]
        read_write: bool,
        /// Limit the token to this one of the account's roles (repeatable) [default: all of them]
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
    },
    /// List a service account's tokens (never their secrets).
    List {
        /// The service account's name or id.
        service_account: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Revoke a token at once.
    Revoke {
        /// The service account's name or id.
        service_account: String,
        /// The token's id (`sa token list` shows it).
        token_id: Uuid,
    },
}

pub async fn run(ctx: &Ctx, command: ServiceAccountCommand) -> Result<(), CliError> {
    let client = &ctx.client;
    match command {
        ServiceAccountCommand::Create { name, description, managed_by } => {
            let managed_by = managed_by.as_deref().map(managed_by_ref).transpose()?;
            let body = CreateServiceAccount { name, description, managed_by };
            output::item(ctx, &client.create_service_account(&body).await?)
        }
        ServiceAccountCommand::List(args) => {
            output::list(ctx, &args.page, async |c, l| client.list_service_accounts(&args.query(c, l)).await).await
        }
        ServiceAccountCommand::Get { service_account } => {
            let shown = output::expanded(async |expand| client.get_service_account_expanded(&service_account, expand).await).await?;
            output::item(ctx, &shown)
        }
        ServiceAccountCommand::AddGroup { service_account, groups } => {
            crate::group::join(ctx, &crate::user::member_of_kind("sa", &service_account)?, &groups).await
        }
        ServiceAccountCommand::RemoveGroup { service_account, groups } => {
            crate::group::leave(ctx, &crate::user::member_of_kind("sa", &service_account)?, &groups).await
        }
        ServiceAccountCommand::Delete { service_account } => {
            client.delete_service_account(&service_account).await?;
            let shown = serde_json::json!({ "deleted": format!("sa:{service_account}") });
            output::done(ctx.format, &shown, &format!("deleted service account {service_account}"))
        }
        ServiceAccountCommand::Token(command) => token(ctx, command).await,
        ServiceAccountCommand::Permissions { service_account, scope } => {
            check::account_permissions(ctx, &format!("sa:{service_account}"), scope).await
        }
    }
}

async fn token(ctx: &Ctx, command: TokenCommand) -> Result<(), CliError> {
    let client = &ctx.client;
    match command {
        TokenCommand::Create { service_account, expires_in, label, read_write, roles } => {
            let roles = Some(roles).filter(|r| !r.is_empty());
            let created = client.create_api_token(&service_account, &CreateApiToken { label, expires_in, read_write, roles }).await?;
            if ctx.format == Format::Json {
                return output::json(&created);
            }
            output::emit(created.token.expose())?;
            output::note(&format!(
                "created {} token {} for {service_account}, expires {}; store it now, it is not shown again",
                access(created.info.read_write),
                created.info.id,
                opt_time(created.info.expires_at)
            ));
            Ok(())
        }
        TokenCommand::List { service_account, page } => {
            output::list(ctx, &page, async |cursor, limit| client.list_api_tokens(&service_account, &PageQuery { cursor, limit }).await)
                .await
        }
        TokenCommand::Revoke { service_account, token_id } => {
            client.revoke_api_token(&service_account, token_id).await?;
            let shown = serde_json::json!({ "revoked": token_id, "service_account": service_account });
            output::done(ctx.format, &shown, &format!("revoked token {token_id} of {service_account}"))
        }
    }
}

/// `--managed-by` names a user or a group, never a service account.
fn managed_by_ref(raw: &str) -> Result<String, CliError> {
    let subject = member_ref(raw)?;
    match subject.kind {
        Some(SubjectKind::User | SubjectKind::Group) => Ok(subject.to_string()),
        _ => Err(CliError::Usage(format!("--managed-by {raw:?}: use user:NAME or group:NAME"))),
    }
}

fn access(read_write: bool) -> &'static str {
    if read_write { "read-write" } else { "read-only" }
}

/// Checks a lifetime locally (same rules as the server) and keeps the text as given.
fn parse_lifetime(raw: &str) -> Result<String, String> {
    if raw.trim() == "never" {
        return Ok("never".to_owned());
    }
    parse_duration_secs(raw).map(|_| raw.trim().to_owned()).map_err(|e| e.to_string())
}

impl Tabular for ServiceAccount {
    const HEADERS: &'static [&'static str] = &["NAME", "ID", "MANAGED BY", "DISABLED", "DESCRIPTION"];

    fn row(&self) -> Vec<String> {
        vec![
            self.name.to_string(),
            self.id.to_string(),
            self.managed_by.as_ref().map_or_else(|| "-".to_owned(), ToString::to_string),
            yes_no(self.disabled),
            opt(self.description.as_deref()),
        ]
    }

    fn detail(&self) -> Vec<(&'static str, String)> {
        let mut fields: Vec<_> = Self::HEADERS.iter().copied().zip(self.row()).collect();
        fields.extend([("CREATED", output::time(self.created_at)), ("UPDATED", output::time(self.updated_at))]);
        fields
    }
}

impl Tabular for ApiToken {
    const HEADERS: &'static [&'static str] = &["ID", "LABEL", "ACCESS", "ROLES", "CREATED", "EXPIRES", "LAST USED", "REVOKED"];

    fn row(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            opt(self.label.as_deref()),
            access(self.read_write).to_owned(),
            self.roles.as_deref().map_or_else(|| "*".to_owned(), words),
            output::time(self.created_at),
            self.expires_at.map_or_else(|| "never".to_owned(), output::time),
            opt_time(self.last_used_at),
            opt_time(self.revoked_at),
        ]
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn managed_by_is_a_user_or_group() {
        assert_eq!(managed_by_ref("user:Alice").unwrap(), "user:alice");
        assert_eq!(managed_by_ref("group:ops").unwrap(), "group:ops");
        for bad in ["sa:ci", "ops", "robot:x", "user:"] {
            let err = managed_by_ref(bad).unwrap_err();
            assert!(matches!(err, CliError::Usage(_)) && !err.to_string().contains('\n'), "{bad}: {err}");
        }
    }

    #[test]
    fn lifetimes_are_checked_locally() {
        assert_eq!(parse_lifetime(" 90d").unwrap(), "90d");
        assert!(parse_lifetime("90 days").is_err());
        assert!(parse_lifetime("0d").is_err());
    }
}
