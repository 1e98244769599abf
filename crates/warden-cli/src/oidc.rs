//! `warden oidc client …`: the applications that may sign people in through Warden's OpenID
//! Connect provider. `create` and `rotate-secret` show a confidential client's secret this
//! once (the server keeps only its hash); `rotate-secret` prints it alone, for scripts.
//! `warden oidc keys list|rotate`: the provider's signing keys. The connected applications of
//! `warden self applications` and `warden user applications` are listed and withdrawn here too.

use clap::Subcommand;
use warden_core::api::{ConnectedApplication, CreateOidcClient, CreatedOidcClient, OidcSigningKey, Page, UpdateOidcClient};
use warden_core::oidc::OidcClient;

use crate::output::{self, Tabular};
use crate::{CliError, Ctx};

#[derive(Debug, Subcommand)]
pub enum OidcCommand {
    /// Register, list, change and delete OpenID Connect clients.
    #[command(subcommand)]
    Client(Box<ClientCommand>),
    /// The provider's signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the signing keys (those that sign, and retired ones still published).
    List,
    /// Make a new key per algorithm; the old ones stop signing and stay published until the
    /// tokens they signed have expired.
    Rotate,
}

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client; a confidential one's secret is printed this once.
    Create {
        /// The client's name, which is its OAuth client_id.
        #[arg(long)]
        name: String,
        /// What people are shown (default: the name).
        #[arg(long)]
        display_name: Option<String>,
        /// Where answers may be sent, compared exactly (repeatable): https://…,
        /// http://localhost[:port]/… or a private-use scheme such as com.example.app:/cb.
        #[arg(long = "redirect-uri", value_name = "URI", required = true)]
        redirect_uris: Vec<String>,
        /// Where people may be sent after signing out (repeatable; the same rules).
        #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
        post_logout_redirect_uris: Vec<String>,
        /// A client that cannot keep a secret (a native or single-page app): no secret is made.
        #[arg(long)]
        public: bool,
        /// Trusted by the operator: people are not asked to consent.
        #[arg(long)]
        first_party: bool,
        /// A scope the client may ask for (repeatable or comma-separated; default openid,profile,email).
        #[arg(long = "scope", value_name = "SCOPE", value_delimiter = ',')]
        scopes: Vec<String>,
        /// Claim sets to add to its tokens: groups, roles, permissions (comma-separated).
        #[arg(long, value_name = "SET", value_delimiter = ',')]
        claims: Vec<String>,
        /// The tenant the permissions claim is computed in (default `default`).
        #[arg(long, value_name = "TENANT")]
        permissions_tenant: Option<String>,
        /// The namespace the permissions claim is computed in.
        #[arg(long, value_name = "NAMESPACE")]
        permissions_namespace: Option<String>,
        /// How its ID tokens are signed: RS256 (default), ES256 or EdDSA.
        #[arg(long, value_name = "ALG")]
        signing_alg: Option<String>,
        /// The service account a confidential client acts as (client-credentials grant).
        #[arg(long, value_name = "NAME")]
        service_account: Option<String>,
    },
    /// List clients (never their secrets).
    List,
    /// Show one client.
    Get {
        /// The client's name (client_id).
        name: String,
    },
    /// Change a client; a list given replaces the old one, an empty value clears a setting.
    Update {
        /// The client's name (client_id).
        name: String,
        /// What people are shown.
        #[arg(long)]
        display_name: Option<String>,
        /// The redirect URIs (repeatable; replaces them all).
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
        /// The post-logout redirect URIs (repeatable; replaces them all).
        #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
        post_logout_redirect_uris: Vec<String>,
        /// Remove every post-logout redirect URI.
        #[arg(long, conflicts_with = "post_logout_redirect_uris")]
        no_post_logout_redirect_uris: bool,
        /// Whether people are spared the consent screen (true or false).
        #[arg(long, value_name = "BOOL")]
        first_party: Option<bool>,
        /// The scopes (repeatable or comma-separated; replaces them all).
        #[arg(long = "scope", value_name = "SCOPE", value_delimiter = ',')]
        scopes: Vec<String>,
        /// The claim sets (comma-separated; replaces them all).
        #[arg(long, value_name = "SET", value_delimiter = ',')]
        claims: Option<Vec<String>>,
        /// The tenant of the permissions claim ("" for `default`).
        #[arg(long, value_name = "TENANT")]
        permissions_tenant: Option<String>,
        /// The namespace of the permissions claim ("" for the whole tenant).
        #[arg(long, value_name = "NAMESPACE")]
        permissions_namespace: Option<String>,
        /// RS256, ES256 or EdDSA.
        #[arg(long, value_name = "ALG")]
        signing_alg: Option<String>,
        /// The service account it acts as ("" for none).
        #[arg(long, value_name = "NAME")]
        service_account: Option<String>,
    },
    /// Give a confidential client a new secret, printed this once; the old one stops working.
    RotateSecret {
        /// The client's name (client_id).
        name: String,
    },
    /// Delete a client.
    Delete {
        /// The client's name (client_id).
        name: String,
    },
}

pub async fn run(ctx: &Ctx, command: OidcCommand) -> Result<(), CliError> {
    let command = match command {
        OidcCommand::Client(command) => *command,
        OidcCommand::Keys(KeysCommand::List) => {
            let items = ctx.client.list_oidc_keys().await?;
            return output::page(ctx, &Page { items, next_cursor: None });
        }
        OidcCommand::Keys(KeysCommand::Rotate) => {
            let rotated = ctx.client.rotate_oidc_keys().await?;
            let text = format!(
                "new keys {}; retired {}",
                rotated.created.join(", "),
                if rotated.retired.is_empty() { "none".into() } else { rotated.retired.join(", ") }
            );
            let shown = serde_json::to_value(&rotated).map_err(|e| CliError::Local(e.to_string()))?;
            return output::done(ctx.format, &shown, &text);
        }
    };
    let client = &ctx.client;
    match command {
        ClientCommand::Create {
            name,
            display_name,
            redirect_uris,
            post_logout_redirect_uris,
            public,
            first_party,
            scopes,
            claims,
            permissions_tenant,
            permissions_namespace,
            signing_alg,
            service_account,
        } => {
            let body = CreateOidcClient {
                client_id: name,
                display_name,
                public,
                first_party,
                redirect_uris,
                post_logout_redirect_uris,
                scopes,
                claims,
                permissions_tenant,
                permissions_namespace,
                signing_alg,
                service_account,
            };
            let created = client.create_oidc_client(&body).await?;
            output::item(ctx, &created)?;
            if created.client_secret.is_some() && ctx.format == output::Format::Table {
                output::note("The client secret is shown this once: store it now (warden oidc client rotate-secret makes a new one).");
            }
            Ok(())
        }
        ClientCommand::List => {
            let items = client.list_oidc_clients().await?;
            output::page(ctx, &Page { items, next_cursor: None })
        }
        ClientCommand::Get { name } => output::item(ctx, &client.get_oidc_client(&name).await?),
        ClientCommand::Update {
            name,
            display_name,
            redirect_uris,
            post_logout_redirect_uris,
            no_post_logout_redirect_uris,
            first_party,
            scopes,
            claims,
            permissions_tenant,
            permissions_namespace,
            signing_alg,
            service_account,
        } => {
            let post_logout = if no_post_logout_redirect_uris { Some(Vec::new()) } else { non_empty(post_logout_redirect_uris) };
            let body = UpdateOidcClient {
                display_name,
                first_party,
                redirect_uris: non_empty(redirect_uris),
                post_logout_redirect_uris: post_logout,
                scopes: non_empty(scopes),
                claims,
                permissions_tenant,
                permissions_namespace,
                signing_alg,
                service_account,
            };
            output::item(ctx, &client.update_oidc_client(&name, &body).await?)
        }
        ClientCommand::RotateSecret { name } => {
            let rotated = client.rotate_oidc_client_secret(&name).await?;
            output::lines(ctx, &rotated, [rotated.client_secret.expose()])
        }
        ClientCommand::Delete { name } => {
            client.delete_oidc_client(&name).await?;
            let shown = serde_json::json!({ "deleted": format!("oidc-client:{name}") });
            output::done(ctx.format, &shown, &format!("deleted OIDC client {name}"))
        }
    }
}

fn non_empty(values: Vec<String>) -> Option<Vec<String>> {
    (!values.is_empty()).then_some(values)
}

impl Tabular for OidcClient {
    const HEADERS: &'static [&'static str] = &["CLIENT ID", "NAME", "TYPE", "REDIRECT URIS", "SCOPES", "CLAIMS"];

    fn row(&self) -> Vec<String> {
        let kind = if self.public { "public" } else { "confidential" };
        let claims: Vec<&str> = self.claims.iter().map(|c| c.as_str()).collect();
        vec![
            self.client_id.to_string(),
            self.display_name.clone(),
            kind.to_owned(),
            output::words(&self.redirect_uris),
            output::words(&self.scopes),
            output::words(&claims),
        ]
    }

    fn detail(&self) -> Vec<(&'static str, String)> {
        let mut fields: Vec<_> = Self::HEADERS.iter().copied().zip(self.row()).collect();
        fields.insert(0, ("ID", self.id.to_string()));
        fields.extend([
            ("POST-LOGOUT REDIRECT URIS", output::words(&self.post_logout_redirect_uris)),
            ("FIRST PARTY", output::yes_no(self.first_party)),
            ("PERMISSIONS TENANT", output::opt(self.permissions_tenant.as_ref().map(warden_core::Name::as_str))),
            ("PERMISSIONS NAMESPACE", output::opt(self.permissions_namespace.as_deref())),
            ("SIGNING ALG", self.signing_alg.as_str().to_owned()),
            ("SERVICE ACCOUNT", output::opt(self.service_account.as_ref().map(|a| a.name.as_str()))),
            ("CREATED", output::time(self.created_at)),
            ("UPDATED", output::time(self.updated_at)),
        ]);
        fields
    }
}

impl Tabular for CreatedOidcClient {
    const HEADERS: &'static [&'static str] = OidcClient::HEADERS;

    fn row(&self) -> Vec<String> {
        self.client.row()
    }

    fn detail(&self) -> Vec<(&'static str, String)> {
        let mut fields = self.client.detail();
        if let Some(secret) = &self.client_secret {
            fields.push(("CLIENT SECRET", secret.expose().to_owned()));
        }
        fields
    }
}

impl Tabular for OidcSigningKey {
    const HEADERS: &'static [&'static str] = &["KID", "ALG", "CREATED", "RETIRED"];

    fn row(&self) -> Vec<String> {
        vec![
            self.kid.clone(),
            self.alg.clone(),
            output::time(self.created_at),
            self.retired_at.map_or_else(|| "-".to_owned(), output::time),
        ]
    }
}

/// `warden self applications` and `warden user applications USER`: the applications signed in
/// to through the provider, or (`--withdraw`) disconnecting one.
pub async fn applications(ctx: &Ctx, user: Option<&str>, withdraw: Option<String>) -> Result<(), CliError> {
    if let Some(client_id) = withdraw {
        let done = ctx.client.withdraw_application(user, &client_id).await?;
        let text = format!("{} disconnected: consent withdrawn, {} grant(s) revoked", done.client_id, done.grants_revoked);
        return output::lines(ctx, &done, [text]);
    }
    let items = ctx.client.applications(user).await?;
    output::page(ctx, &Page { items, next_cursor: None })
}

impl Tabular for ConnectedApplication {
    const HEADERS: &'static [&'static str] = &["CLIENT", "NAME", "ALLOWED", "SINCE", "GRANTS", "LAST SIGN-IN"];

    fn row(&self) -> Vec<String> {
        let allowed = if self.consented_scopes.is_empty() {
            if self.first_party { "(first party)".to_owned() } else { "-".to_owned() }
        } else {
            self.consented_scopes.join(" ")
        };
        vec![
            self.client_id.clone(),
            self.display_name.clone(),
            allowed,
            self.consented_at.map_or_else(|| "-".to_owned(), output::time),
            self.grants.len().to_string(),
            self.grants.iter().map(|g| g.created_at).max().map_or_else(|| "-".to_owned(), output::time),
        ]
    }
}
