//! `warden registration-token …`: tokens with which people register themselves (where the
//! server's `[registration] mode` is `token`). `create` prints the token alone, so that a
//! script can hand it on; the server keeps only its hash.

use clap::Subcommand;
use uuid::Uuid;
use warden_core::api::{CreateRegistrationToken, Page, RegistrationTokenInfo};

use crate::output::{self, Tabular};
use crate::{CliError, Ctx};

#[derive(Debug, Subcommand)]
pub enum RegistrationTokenCommand {
    /// Create a token and print it (shown this once).
    Create {
        /// How many people may register with it.
        #[arg(long, default_value_t = 1)]
        max_usage: u32,
        /// How long it stays valid (e.g. 24h, 7d; at most 30d).
        #[arg(long, default_value = "24h")]
        ttl: String,
        /// Bind this role to every user registered with it (repeatable). A role with power
        /// over Warden needs idm_superuser.
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        /// The tenant of the roles (default `default`).
        #[arg(long, requires = "roles")]
        tenant: Option<String>,
    },
    /// List tokens (never the tokens themselves): uses left, expiry, revocation.
    List,
    /// Revoke a token: no one registers with it any more.
    Revoke {
        /// The token's id (`registration-token list` shows it).
        id: Uuid,
    },
}

pub async fn run(ctx: &Ctx, command: RegistrationTokenCommand) -> Result<(), CliError> {
    let client = &ctx.client;
    match command {
        RegistrationTokenCommand::Create { max_usage, ttl, roles, tenant } => {
            let body = CreateRegistrationToken { max_usage: Some(max_usage), ttl: Some(ttl), roles, tenant };
            let created = client.create_registration_token(&body).await?;
            output::lines(ctx, &created, [created.token.expose()])
        }
        RegistrationTokenCommand::List => {
            let items = client.list_registration_tokens().await?;
            output::page(ctx, &Page { items, next_cursor: None })
        }
        RegistrationTokenCommand::Revoke { id } => {
            client.revoke_registration_token(id).await?;
            let shown = serde_json::json!({ "revoked": format!("registration-token:{id}") });
            output::done(ctx.format, &shown, &format!("revoked registration token {id}"))
        }
    }
}

impl Tabular for RegistrationTokenInfo {
    const HEADERS: &'static [&'static str] = &["ID", "TENANT", "ROLES", "USES LEFT", "EXPIRES", "REVOKED"];

    fn row(&self) -> Vec<String> {
        vec![
            self.id.to_string(),
            self.tenant.clone(),
            output::words(&self.roles),
            format!("{}/{}", self.uses_left, self.max_uses),
            output::time(self.expires_at),
            output::opt_time(self.revoked_at),
        ]
    }
}
