//! `warden tenant …`: the isolated spaces roles and bindings live in.

use clap::Subcommand;
use warden_core::api::CreateTenant;
use warden_core::authz::Tenant;

use crate::output::{self, Tabular, opt};
use crate::{CliError, Ctx};

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant.
    Create {
        /// The new tenant's name.
        name: String,
        /// What the tenant is for.
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
    /// List tenants.
    List,
    /// Delete a tenant.
    Delete {
        /// The tenant's name.
        tenant: String,
    },
}

pub async fn run(ctx: &Ctx, command: TenantCommand) -> Result<(), CliError> {
    let client = &ctx.client;
    match command {
        TenantCommand::Create { name, description } => output::item(ctx, &client.create_tenant(&CreateTenant { name, description }).await?),
        TenantCommand::List => output::page(ctx, &client.list_tenants().await?),
        TenantCommand::Delete { tenant } => {
            client.delete_tenant(&tenant).await?;
            output::done(ctx.format, &serde_json::json!({ "deleted": format!("tenant:{tenant}") }), &format!("deleted tenant {tenant}"))
        }
    }
}

impl Tabular for Tenant {
    const HEADERS: &'static [&'static str] = &["NAME", "DESCRIPTION", "CREATED"];

    fn row(&self) -> Vec<String> {
        vec![self.name.to_string(), opt(self.description.as_deref()), output::time(self.created_at)]
    }
}
