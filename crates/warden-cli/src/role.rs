//! `warden role …`: named sets of permissions.
//!
//! Only dynamic roles (made through the API) change: `add-permission` and `remove-permission`
//! send a PATCH with the permissions to add or remove, so concurrent edits of other
//! permissions are not lost. Built-in roles belong to no tenant and show `*` as their tenant.

use clap::{Args, Subcommand};
use warden_client::RoleQuery;
use warden_core::api::{CreateRole, UpdateRole};
use warden_core::authz::Role;

use crate::output::{self, Tabular, opt, wire_name, words};
use crate::{CliError, Ctx};

#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Create a role.
    Create(CreateArgs),
    /// Add permissions to a role.
    AddPermission {
        /// The role's id.
        role: String,
        /// The permissions to add, e.g. calendar:events:write or a tree node such as calendar.
        #[arg(required = true, value_name = "PERMISSION")]
        permissions: Vec<String>,
    },
    /// Remove permissions from a role.
    RemovePermission {
        /// The role's id.
        role: String,
        /// The permissions to remove, as the role lists them.
        #[arg(required = true, value_name = "PERMISSION")]
        permissions: Vec<String>,
    },
    /// Show one role.
    Get {
        /// The role's id.
        role: String,
    },
    /// List roles (built-in roles are listed with every tenant).
    List {
        /// Only roles usable in this tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Delete a role.
    Delete {
        /// The role's id.
        role: String,
    },
    /// Print a role's permissions expanded to leaves, one per line.
    Permissions {
        /// The role's id.
        role: String,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The role's id [default: made by the server from the name]
    #[arg(long)]
    pub id: Option<String>,
    /// The role's display name.
    #[arg(long)]
    pub name: String,
    /// What the role is for.
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// The tenant the role belongs to [default: the server's default tenant]
    #[arg(long)]
    pub tenant: Option<String>,
    /// A permission, e.g. calendar:events:write or a tree node such as calendar (repeatable).
    #[arg(long = "permission", value_name = "PERMISSION")]
    pub permissions: Vec<String>,
}

pub async fn run(ctx: &Ctx, command: RoleCommand) -> Result<(), CliError> {
    let client = &ctx.client;
    match command {
        RoleCommand::Create(CreateArgs { id, name, description, tenant, permissions }) => {
            output::item(ctx, &client.create_role(&CreateRole { id, name, description, tenant, permissions }).await?)
        }
        RoleCommand::AddPermission { role, permissions } => {
            output::item(ctx, &client.update_role(&role, &UpdateRole { add: permissions, ..UpdateRole::default() }).await?)
        }
        RoleCommand::RemovePermission { role, permissions } => {
            output::item(ctx, &client.update_role(&role, &UpdateRole { remove: permissions, ..UpdateRole::default() }).await?)
        }
        RoleCommand::Get { role } => output::item(ctx, &client.get_role(&role).await?),
        RoleCommand::List { tenant } => output::page(ctx, &client.list_roles(&RoleQuery { tenant }).await?),
        RoleCommand::Delete { role } => {
            client.delete_role(&role).await?;
            output::done(ctx.format, &serde_json::json!({ "deleted": format!("role:{role}") }), &format!("deleted role {role}"))
        }
        RoleCommand::Permissions { role } => {
            let resolved = client.role_permissions(&role).await?;
            output::lines(ctx, &resolved, &resolved.permissions)
        }
    }
}

impl Tabular for Role {
    const HEADERS: &'static [&'static str] = &["ID", "NAME", "TENANT", "SOURCE", "PERMISSIONS"];

    fn row(&self) -> Vec<String> {
        let tenant = self.tenant.as_ref().map_or_else(|| "*".to_owned(), ToString::to_string);
        vec![self.id.to_string(), self.name.clone(), tenant, wire_name(&self.source), words(&self.permissions)]
    }

    fn detail(&self) -> Vec<(&'static str, String)> {
        let mut fields: Vec<_> = Self::HEADERS.iter().copied().zip(self.row()).collect();
        fields.insert(4, ("DESCRIPTION", opt(self.description.as_deref())));
        fields
    }
}
