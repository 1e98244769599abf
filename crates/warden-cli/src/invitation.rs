//! `warden invitation …` and `warden user invite`: invitations mail each address a one-use
//! link to register, bound to that address and to roles. The links are only ever in the mail;
//! the CLI says where the server sends it.

use clap::Subcommand;
use uuid::Uuid;
use warden_core::api::{CreateInvitations, Invitation, Page};

use crate::output::{self, Tabular};
use crate::{CliError, Ctx};

#[derive(Debug, Subcommand)]
pub enum InvitationCommand {
    /// List invitations: address, roles, expiry, whether used or revoked.
    List,
    /// Revoke an invitation: its link stops working.
    Revoke {
        /// The invitation's id (`invitation list` shows it).
        id: Uuid,
    },
}

pub async fn run(ctx: &Ctx, command: InvitationCommand) -> Result<(), CliError> {
    match command {
        InvitationCommand::List => {
            let items = ctx.client.list_invitations().await?;
            output::page(ctx, &Page { items, next_cursor: None })
        }
        InvitationCommand::Revoke { id } => {
            ctx.client.revoke_invitation(id).await?;
            output::done(ctx.format, &serde_json::json!({ "revoked": format!("invitation:{id}") }), &format!("revoked invitation {id}"))
        }
    }
}

/// `warden user invite ADDRESS… [--role ROLE]… [--tenant T] [--ttl D]`.
pub async fn invite(
    ctx: &Ctx,
    emails: Vec<String>,
    roles: Vec<String>,
    tenant: Option<String>,
    ttl: Option<String>,
) -> Result<(), CliError> {
    let made = ctx.client.create_invitations(&CreateInvitations { emails, roles, tenant, ttl }).await?;
    let lines: Vec<String> = made
        .invitations
        .iter()
        .map(|i| format!("invited {} (invitation {})", i.email, i.id))
        .chain([format!("mail: {}", made.mail)])
        .collect();
    output::lines(ctx, &made, lines)
}

impl Tabular for Invitation {
    const HEADERS: &'static [&'static str] = &["ID", "EMAIL", "TENANT", "ROLES", "STATE", "EXPIRES"];

    fn row(&self) -> Vec<String> {
        let state = match (self.revoked_at, self.used) {
            (Some(_), _) => "revoked",
            (None, true) => "used",
            (None, false) => "open",
        };
        vec![
            self.id.to_string(),
            self.email.clone(),
            self.tenant.clone(),
            output::words(&self.roles),
            state.to_owned(),
            output::time(self.expires_at),
        ]
    }
}
