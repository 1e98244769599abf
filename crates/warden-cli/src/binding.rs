//! `warden binding …`: a role granted to a user, service account or group in a tenant,
//! optionally limited to namespaces.
//!
//! `create` takes the subject as exactly one of `--user`, `--service-account`, `--group`.
//! Its `--user` names the user to bind and takes the place of the global `--user` (HTTP Basic
//! credentials) in this one command: there, authenticate with the session or `--token`.

use clap::{Args, Subcommand};
use uuid::Uuid;
use warden_client::BindingQuery;
use warden_core::api::CreateBinding;
use warden_core::authz::Binding;

use crate::output::{self, Tabular};
use crate::{CliError, Ctx, parse_namespace};

#[derive(Debug, Subcommand)]
pub enum BindingCommand {
    /// Bind a role to a user, service account or group.
    Create(CreateArgs),
    /// List bindings.
    List {
        /// Only bindings made directly to this subject (user:NAME, sa:NAME, group:NAME).
        #[arg(long)]
        subject: Option<String>,
        /// Only bindings of this role.
        #[arg(long)]
        role: Option<String>,
        /// Only bindings in this tenant.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Delete a binding.
    Delete {
        /// The binding's id (`binding list` shows it).
        binding_id: Uuid,
    },
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The role's id.
    #[arg(long)]
    pub role: String,
    #[command(flatten)]
    pub subject: SubjectArgs,
    /// The tenant to grant the role in [default: the server's default tenant]
    #[arg(long)]
    pub tenant: Option<String>,
    /// Limit the binding to this namespace and those below it (repeatable) [default: the whole tenant]
    #[arg(long = "namespace", value_parser = parse_namespace, value_name = "NAMESPACE")]
    pub namespaces: Vec<String>,
}

/// Who gets the role: exactly one of the three.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct SubjectArgs {
    /// The user to bind (name or id).
    // The id shadows the global `--user` (HTTP Basic credentials), which clap would otherwise
    // propagate here under the same flag name.
    #[arg(long = "user", id = "basic", value_name = "USER")]
    pub user: Option<String>,
    /// The service account to bind (name or id).
    #[arg(long, value_name = "SERVICE_ACCOUNT")]
    pub service_account: Option<String>,
    /// The group to bind (name or id); its effective members get the role.
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
}

impl SubjectArgs {
    /// The subject as the API names it: `user:U`, `sa:S` or `group:G`.
    ///
    /// A global `--user NAME:PASSWORD` given before `binding create` lands in `user` as well
    /// (clap shares the id); it is refused here rather than bound or silently ignored.
    pub fn subject(&self) -> Result<String, CliError> {
        let given = [("user", &self.user), ("sa", &self.service_account), ("group", &self.group)];
        let mut given = given.into_iter().filter_map(|(prefix, value)| value.as_deref().map(|v| (prefix, v)));
        match (given.next(), given.next()) {
            (Some(("user", value)), _) if value.contains(':') => Err(CliError::Usage(
                "in `binding create`, --user names the user to bind; authenticate with `warden login` or --token".into(),
            )),
            (Some((prefix, value)), None) => Ok(format!("{prefix}:{value}")),
            (Some(_), Some(_)) => Err(CliError::Usage("give only one of --user, --service-account, --group".into())),
            (None, _) => Err(CliError::Usage("give one of --user, --service-account, --group".into())),
        }
    }
}

pub async fn run(ctx: &Ctx, command: BindingCommand) -> Result<(), CliError> {
    let client = &ctx.client;
    match command {
        BindingCommand::Create(CreateArgs { role, subject, tenant, namespaces }) => {
            let body = CreateBinding { role, subject: subject.subject()?, tenant, namespaces };
            output::item(ctx, &client.create_binding(&body).await?)
        }
        BindingCommand::List { subject, role, tenant } => {
            output::page(ctx, &client.list_bindings(&BindingQuery { subject, role, tenant }).await?)
        }
        BindingCommand::Delete { binding_id } => {
            client.delete_binding(binding_id).await?;
            let shown = serde_json::json!({ "deleted": format!("binding:{binding_id}") });
            output::done(ctx.format, &shown, &format!("deleted binding {binding_id}"))
        }
    }
}

impl Tabular for Binding {
    const HEADERS: &'static [&'static str] = &["ID", "ROLE", "SUBJECT", "TENANT", "NAMESPACES"];

    fn row(&self) -> Vec<String> {
        let namespaces = if self.namespaces.is_empty() {
            "*".to_owned()
        } else {
            self.namespaces.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ")
        };
        vec![self.id.to_string(), self.role.to_string(), self.subject.to_string(), self.tenant.to_string(), namespaces]
    }

    fn detail(&self) -> Vec<(&'static str, String)> {
        let mut fields: Vec<_> = Self::HEADERS.iter().copied().zip(self.row()).collect();
        fields.push(("CREATED", output::time(self.created_at)));
        fields
    }
}
