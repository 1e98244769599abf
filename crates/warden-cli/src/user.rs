//! `warden user …`: people, their profile and their lifecycle.
//!
//! `create` and `update` share one set of profile flags, so a field is spelled the same way
//! in both; `update` sends only what was given (a PATCH) and `--clear FIELD` removes a value.

use clap::{Args, Subcommand, ValueEnum};
use time::{Date, OffsetDateTime};
use warden_client::ListQuery;
use warden_core::api::{CreateUser, UpdateUser};
use warden_core::credential::Secret;
use warden_core::model::{EmailInput, FlaggedEmail, PhoneInput, PhoneNumber, PostalAddress, User};

use crate::check::{self, ScopeArgs};
use crate::output::{self, PageArgs, Tabular, opt, opt_time, yes_no};
use crate::session::read_nonempty_password;
use crate::{CliError, Ctx, parse_date, parse_rfc3339};

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Create {
        /// The new user's name (lower case: letters, digits, `.`, `_`, `-`).
        name: String,
        #[command(flatten)]
        profile: Box<ProfileArgs>,
        /// Initial password: plaintext (hashed by the server) or a bcrypt hash to import.
        #[arg(long, value_name = "PLAINTEXT_OR_BCRYPT", conflicts_with = "password_stdin")]
        password: Option<String>,
        /// Read the initial password from stdin (one line).
        #[arg(long)]
        password_stdin: bool,
        /// Bind this role to the new user in the same step (repeatable); needs the right to
        /// create the binding, and a refused role creates nothing.
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        /// The tenant of the `--role` bindings (default `default`).
        #[arg(long, requires = "roles")]
        tenant: Option<String>,
    },
    /// List users by name.
    List(ListArgs),
    /// Show one user (by name or id).
    Get {
        /// The user's name or id.
        user: String,
    },
    /// Change a user's profile; unnamed fields stay as they are.
    Update {
        /// The user's name or id.
        user: String,
        #[command(flatten)]
        profile: Box<ProfileArgs>,
        /// Remove a field's value (repeatable).
        #[arg(long, value_enum, value_name = "FIELD")]
        clear: Vec<Field>,
    },
    /// Give a user a new name (the id stays). A user may rename itself where the server
    /// allows it (`auth.allow_username_change`).
    Rename {
        /// The user's current name or id.
        user: String,
        /// The name it takes.
        new_name: String,
    },
    /// Add a user to groups (as `group add-member GROUP user:NAME` for each).
    AddGroup {
        /// The user's name or id.
        user: String,
        /// The groups to join (names or ids).
        #[arg(required = true, value_name = "GROUP")]
        groups: Vec<String>,
    },
    /// Remove a user from groups it is a direct member of.
    RemoveGroup {
        /// The user's name or id.
        user: String,
        /// The groups to leave (names or ids).
        #[arg(required = true, value_name = "GROUP")]
        groups: Vec<String>,
    },
    /// Delete a user.
    Delete {
        /// The user's name or id.
        user: String,
    },
    /// Reset a user's password (a credential reset: the user's sessions end). Prompts for the
    /// new password, or reads it from stdin.
    SetPassword {
        /// The user's name or id.
        user: String,
        /// Read the new password from stdin (one line).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Lift the soft lock that failed passwords put on an account name: its failures (from
    /// every address) are forgotten and it may sign in again at once. Audited.
    #[command(after_help = "Examples:
  warden user unlock alice")]
    Unlock {
        /// The account's name (or id).
        user: String,
    },
    /// Issue a one-time link with which the user chooses a new password (signing in ends
    /// their other sessions). Prints the link alone; the user's older links stop working.
    #[command(after_help = "Examples:
  warden user recovery-link alice
  warden user recovery-link alice --expires-in 24h
  warden --output json user recovery-link alice   # {\"url\": …, \"expires_at\": …}")]
    RecoveryLink {
        /// The user's name or id.
        user: String,
        /// How long the link stays valid (`30m`, `24h`, `7d`); default: the server's
        /// `auth.recovery_link_ttl` (1h), at most its `auth.recovery_link_max_ttl` (7d).
        #[arg(long, value_name = "DURATION")]
        expires_in: Option<String>,
    },
    /// Invite people to register: each address is mailed a one-use link, bound to that
    /// address (which becomes the account's, verified) and to the roles given.
    #[command(after_help = "Examples:
  warden user invite alice@example.com bob@example.com --role help-desk
  warden user invite carol@example.com --ttl 72h")]
    Invite {
        /// The addresses to invite.
        #[arg(required = true, value_name = "EMAIL")]
        emails: Vec<String>,
        /// Bind this role to the registered account (repeatable). A role with power over
        /// Warden needs idm_superuser.
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        /// The tenant of the roles (default `default`).
        #[arg(long, requires = "roles")]
        tenant: Option<String>,
        /// How long the links work (e.g. 72h; default the server's `mail.invitation_ttl`, 7d).
        #[arg(long, value_name = "DURATION")]
        ttl: Option<String>,
    },
    /// Mail a user's verified primary address a link to choose a password (for an account
    /// made without one).
    #[command(after_help = "Examples:
  warden user create alice --email alice@example.com
  warden user send-account-notice alice")]
    SendAccountNotice {
        /// The user's name or id.
        user: String,
    },
    /// What a user can sign in with: password, TOTP, backup codes left, passkeys, the second
    /// factor's lock (never a secret).
    #[command(after_help = "Examples:
  warden user credentials alice
  warden user credentials alice -o json")]
    Credentials {
        /// The user's name or id.
        user: String,
    },
    /// Remove every second factor of a user (TOTP, backup codes, passkeys) after a lost device:
    /// the password alone signs in until the user enrols again.
    ResetSecondFactors {
        /// The user's name or id.
        user: String,
    },
    /// Require a user to choose a new password: their sessions end, a link is mailed to their
    /// verified address, and until they choose one they can do nothing else.
    RequirePasswordChange {
        /// The user's name or id.
        user: String,
    },
    /// Stop a user from authenticating (sessions and tokens stop working).
    Disable {
        /// The user's name or id.
        user: String,
    },
    /// Let a disabled user authenticate again.
    Enable {
        /// The user's name or id.
        user: String,
    },
    /// The applications a user signed in to with Warden, or (`--withdraw`) disconnect one for
    /// them: the consent is withdrawn and the application's tokens stop working.
    #[command(after_help = "Examples:
  warden user applications alice
  warden user applications alice --withdraw grafana")]
    Applications {
        /// The user's name or id.
        user: String,
        /// Disconnect this application (its client_id).
        #[arg(long, value_name = "CLIENT_ID")]
        withdraw: Option<String>,
    },
    /// Print what a user may do: the permissions one per line (roles and groups on stderr).
    Permissions {
        /// The user's name or id.
        user: String,
        #[command(flatten)]
        scope: ScopeArgs,
    },
}

/// Name filter and paging of the directory lists.
#[derive(Debug, Clone, Default, Args)]
pub struct ListArgs {
    /// Only names starting with this (`--name` too, as Kanidm's CLI spells it).
    #[arg(long, visible_alias = "name", value_name = "PREFIX")]
    pub prefix: Option<String>,
    #[command(flatten)]
    pub page: PageArgs,
}

impl ListArgs {
    pub fn query(&self, cursor: Option<String>, limit: Option<u32>) -> ListQuery {
        ListQuery { prefix: self.prefix.clone(), cursor, limit }
    }
}

#[derive(Debug, Clone, Default, Args)]
pub struct ProfileArgs {
    /// The name shown for the user, e.g. "Alice Liddell".
    #[arg(long, value_name = "TEXT")]
    display_name: Option<String>,
    /// Given name.
    #[arg(long, value_name = "TEXT")]
    first_name: Option<String>,
    /// Family name.
    #[arg(long, value_name = "TEXT")]
    last_name: Option<String>,
    /// Date of birth.
    #[arg(long, value_parser = parse_date, value_name = "YYYY-MM-DD")]
    birthday: Option<Date>,
    /// E-mail address; repeat for more, the first is primary unless --primary-email names
    /// another (update: replaces all).
    #[arg(long = "email", value_name = "ADDRESS")]
    emails: Vec<String>,
    /// The primary e-mail address: one of --email, or added to them (update without --email:
    /// made primary among the user's current addresses).
    #[arg(long, value_name = "ADDRESS")]
    primary_email: Option<String>,
    /// Phone number; repeat for more, the first is primary unless --primary-phone names
    /// another (update: replaces all).
    #[arg(long = "phone", value_name = "NUMBER")]
    phones: Vec<String>,
    /// The primary phone number, as --primary-email is for addresses.
    #[arg(long, value_name = "NUMBER")]
    primary_phone: Option<String>,
    /// A postal address, repeatable (update: replaces all):
    /// label=billing,street=1 Main St,city=Vienna,region=…,postal_code=1010,country=AT
    #[arg(long = "address", value_parser = parse_address, value_name = "label=…,street=…,city=…")]
    addresses: Vec<PostalAddress>,
    /// Address of the user's picture.
    #[arg(long, value_name = "URL")]
    avatar_url: Option<String>,
    /// Not valid before this time.
    #[arg(long, value_parser = parse_rfc3339, value_name = "RFC3339")]
    valid_from: Option<OffsetDateTime>,
    /// Not valid from this time on.
    #[arg(long, value_parser = parse_rfc3339, value_name = "RFC3339")]
    expires_at: Option<OffsetDateTime>,
    /// An additional field (`[[user_field]]`), repeatable: the value is read as JSON when it
    /// parses (`desk=12`, `remote=true`, `tags=["a","b"]`), else taken as a string; `KEY=`
    /// removes the field (update).
    #[arg(long = "field", value_parser = parse_field, value_name = "KEY=VALUE")]
    fields: Vec<(String, serde_json::Value)>,
}

/// Profile fields `update --clear` can remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Field {
    DisplayName,
    FirstName,
    LastName,
    Birthday,
    Emails,
    Phones,
    Addresses,
    AvatarUrl,
    ValidFrom,
    ExpiresAt,
}

pub async fn run(ctx: &Ctx, command: UserCommand) -> Result<(), CliError> {
    let users = &ctx.client;
    match command {
        UserCommand::Create { name, profile, password, password_stdin, roles, tenant } => {
            let password = match password {
                Some(password) => Some(Secret::new(password)),
                None if password_stdin => Some(read_nonempty_password("", true)?),
                None => None,
            };
            let request = CreateUser { roles, tenant, ..profile.into_create(name, password) };
            output::item(ctx, &users.create_user(&request).await?)
        }
        UserCommand::List(args) => output::list(ctx, &args.page, async |c, l| users.list_users(&args.query(c, l)).await).await,
        UserCommand::Get { user } => {
            let shown = output::expanded(async |expand| users.get_user_expanded(&user, expand).await).await?;
            output::item(ctx, &shown)
        }
        UserCommand::Update { user, mut profile, clear } => {
            // A new primary among the current addresses (or numbers): the list is the user's.
            if profile.primary_email.is_some() && profile.emails.is_empty() || profile.primary_phone.is_some() && profile.phones.is_empty()
            {
                let current = users.get_user(&user).await?.profile;
                if profile.primary_email.is_some() && profile.emails.is_empty() {
                    profile.emails = current.emails.into_iter().map(|e| e.address).collect();
                }
                if profile.primary_phone.is_some() && profile.phones.is_empty() {
                    profile.phones = current.phones.into_iter().map(|p| p.number).collect();
                }
            }
            output::item(ctx, &users.update_user(&user, &profile.into_update(&clear)?).await?)
        }
        UserCommand::AddGroup { user, groups } => crate::group::join(ctx, &member_of_kind("user", &user)?, &groups).await,
        UserCommand::RemoveGroup { user, groups } => crate::group::leave(ctx, &member_of_kind("user", &user)?, &groups).await,
        UserCommand::Rename { user, new_name } => output::item(ctx, &users.rename_user(&user, &new_name).await?),
        UserCommand::SetPassword { user, password_stdin } => {
            let password = read_nonempty_password(&format!("New password for {user}: "), password_stdin)?;
            users.set_password(&user, password.expose()).await?;
            let shown = serde_json::json!({ "password_reset": format!("user:{user}"), "sessions_ended": true });
            output::done(ctx.format, &shown, &format!("password of {user} reset; their sessions have ended"))
        }
        UserCommand::Unlock { user } => {
            users.unlock_user(&user).await?;
            output::done(
                ctx.format,
                &serde_json::json!({ "unlocked": format!("user:{user}") }),
                &format!("unlocked {user}: it may sign in again"),
            )
        }
        UserCommand::RecoveryLink { user, expires_in } => {
            let link = users.recovery_link(&user, expires_in.as_deref()).await?;
            output::lines(ctx, &link, [link.url.expose()])
        }
        UserCommand::Delete { user } => {
            users.delete_user(&user).await?;
            output::done(ctx.format, &serde_json::json!({ "deleted": format!("user:{user}") }), &format!("deleted user {user}"))
        }
        UserCommand::Invite { emails, roles, tenant, ttl } => crate::invitation::invite(ctx, emails, roles, tenant, ttl).await,
        UserCommand::SendAccountNotice { user } => {
            let queued = users.send_account_notice(&user).await?;
            output::lines(ctx, &queued, [format!("account notice for {user} queued to {} (mail: {})", queued.to, queued.mail)])
        }
        UserCommand::Credentials { user } => {
            let held = users.user_credentials(&user).await?;
            let yes = |b: bool| if b { "yes" } else { "no" };
            let mut lines = vec![
                format!("password: {}{}", yes(held.password), if held.password_change_required { " (must be changed)" } else { "" }),
                format!("totp: {}{}", yes(held.totp), if held.totp_pending { " (an enrolment waits for its first code)" } else { "" }),
                format!("backup codes left: {}", held.backup_codes_left),
                format!("passkeys: {}", held.passkeys.len()),
            ];
            lines.extend(held.passkeys.iter().map(|p| {
                format!("  {} {:?} registered {}, last used {}", p.id, p.name, output::time(p.created_at), output::opt_time(p.last_used_at))
            }));
            if let Some(until) = held.second_factor_locked_until {
                lines.push(format!("second factor locked until {}", output::time(until)));
            }
            output::lines(ctx, &held, lines)
        }
        UserCommand::ResetSecondFactors { user } => {
            users.reset_second_factors(&user).await?;
            let shown = serde_json::json!({ "second_factors_reset": format!("user:{user}") });
            output::done(ctx.format, &shown, &format!("second factors of {user} removed; they sign in with the password and enrol again"))
        }
        UserCommand::RequirePasswordChange { user } => say_password_change_required(ctx, &users.require_password_change(&user).await?),
        UserCommand::Disable { user } => output::item(ctx, &users.disable_user(&user).await?),
        UserCommand::Enable { user } => output::item(ctx, &users.enable_user(&user).await?),
        UserCommand::Applications { user, withdraw } => crate::oidc::applications(ctx, Some(&user), withdraw).await,
        UserCommand::Permissions { user, scope } => check::account_permissions(ctx, &format!("user:{user}"), scope).await,
    }
}

/// The addresses as given, the one named by `primary` flagged (added first if it is not
/// among them); without `primary`, plain strings (the first is primary).
pub(crate) fn flag_primary(emails: Vec<String>, primary: Option<String>) -> Vec<EmailInput> {
    let Some(primary) = primary else { return emails.into_iter().map(EmailInput::Plain).collect() };
    let mut out: Vec<EmailInput> = vec![EmailInput::Flagged(FlaggedEmail { address: primary.clone(), primary: true, verified: None })];
    out.extend(
        emails
            .into_iter()
            .filter(|e| !e.eq_ignore_ascii_case(&primary))
            .map(|address| EmailInput::Flagged(FlaggedEmail { address, primary: false, verified: None })),
    );
    out
}

/// The same for phone numbers.
pub(crate) fn flag_primary_phone(phones: Vec<String>, primary: Option<String>) -> Vec<PhoneInput> {
    let Some(primary) = primary else { return phones.into_iter().map(PhoneInput::Plain).collect() };
    let mut out: Vec<PhoneInput> = vec![PhoneInput::Flagged(PhoneNumber { number: primary.clone(), primary: true })];
    out.extend(phones.into_iter().filter(|p| *p != primary).map(|number| PhoneInput::Flagged(PhoneNumber { number, primary: false })));
    out
}

/// Reads `KEY=VALUE` for an additional field: the value as JSON when it parses, else as a
/// string; an empty value is `null` (remove the field).
pub(crate) fn parse_field(raw: &str) -> Result<(String, serde_json::Value), String> {
    let (key, value) = raw.split_once('=').ok_or_else(|| format!("{raw:?} is not KEY=VALUE"))?;
    let key = key.trim();
    if key.is_empty() {
        return Err(format!("{raw:?} names no field"));
    }
    let value = match value {
        "" => serde_json::Value::Null,
        text => serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_owned())),
    };
    Ok((key.to_owned(), value))
}

/// The additional fields of a profile, one `key=value` (JSON) per line.
pub(crate) fn fields_lines(fields: &std::collections::BTreeMap<String, serde_json::Value>) -> String {
    if fields.is_empty() {
        return "-".to_owned();
    }
    fields.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("\n")
}

/// Reads `label=billing,street=1 Main St,city=Vienna,postal_code=1010,country=AT`; `city` and
/// `locality` are the same field. A label is required; values may not contain commas.
pub(crate) fn parse_address(raw: &str) -> Result<PostalAddress, String> {
    let mut address = PostalAddress { label: String::new(), street: None, locality: None, region: None, postal_code: None, country: None };
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part.split_once('=').ok_or_else(|| format!("{part:?} is not KEY=VALUE"))?;
        let value = value.trim().to_owned();
        match key.trim() {
            "label" => address.label = value,
            "street" => address.street = Some(value),
            "city" | "locality" => address.locality = Some(value),
            "region" | "state" => address.region = Some(value),
            "postal_code" | "zip" => address.postal_code = Some(value),
            "country" => address.country = Some(value),
            other => return Err(format!("unknown address field {other:?}: use label, street, city, region, postal_code, country")),
        }
    }
    if address.label.is_empty() {
        return Err("an address needs label=… (home, billing, …)".into());
    }
    Ok(address)
}

impl ProfileArgs {
    fn into_create(self, name: String, password: Option<Secret>) -> CreateUser {
        CreateUser {
            name,
            display_name: self.display_name,
            first_name: self.first_name,
            last_name: self.last_name,
            birthday: self.birthday,
            emails: flag_primary(self.emails, self.primary_email),
            phones: flag_primary_phone(self.phones, self.primary_phone),
            addresses: self.addresses,
            avatar_url: self.avatar_url,
            valid_from: self.valid_from,
            expires_at: self.expires_at,
            password,
            roles: Vec::new(),
            tenant: None,
            fields: self.fields.into_iter().filter(|(_, v)| !v.is_null()).collect(),
        }
    }

    /// The PATCH body: given fields are set, `clear`ed ones nulled, the rest left out.
    fn into_update(self, clear: &[Field]) -> Result<UpdateUser, CliError> {
        let mut patch = UpdateUser {
            display_name: self.display_name.map(Some),
            first_name: self.first_name.map(Some),
            last_name: self.last_name.map(Some),
            birthday: self.birthday.map(Some),
            emails: Some(flag_primary(self.emails, self.primary_email)).filter(|v| !v.is_empty()),
            phones: Some(flag_primary_phone(self.phones, self.primary_phone)).filter(|v| !v.is_empty()),
            addresses: Some(self.addresses).filter(|v| !v.is_empty()),
            avatar_url: self.avatar_url.map(Some),
            valid_from: self.valid_from.map(Some),
            expires_at: self.expires_at.map(Some),
            fields: Some(self.fields.into_iter().collect()).filter(|f: &std::collections::BTreeMap<_, _>| !f.is_empty()),
        };
        for &field in clear {
            let already_set = match field {
                Field::DisplayName => patch.display_name.replace(None).is_some(),
                Field::FirstName => patch.first_name.replace(None).is_some(),
                Field::LastName => patch.last_name.replace(None).is_some(),
                Field::Birthday => patch.birthday.replace(None).is_some(),
                Field::Emails => patch.emails.replace(Vec::new()).is_some(),
                Field::Phones => patch.phones.replace(Vec::new()).is_some(),
                Field::Addresses => patch.addresses.replace(Vec::new()).is_some(),
                Field::AvatarUrl => patch.avatar_url.replace(None).is_some(),
                Field::ValidFrom => patch.valid_from.replace(None).is_some(),
                Field::ExpiresAt => patch.expires_at.replace(None).is_some(),
            };
            if already_set {
                let name = field.to_possible_value().map(|v| v.get_name().to_owned()).unwrap_or_default();
                return Err(CliError::Usage(format!("--clear {name} contradicts the value given for it")));
            }
        }
        let empty = serde_json::to_value(&patch).is_ok_and(|v| v.as_object().is_some_and(serde_json::Map::is_empty));
        if empty {
            return Err(CliError::Usage("nothing to update: give a profile flag or --clear FIELD".into()));
        }
        Ok(patch)
    }
}

impl Tabular for User {
    const HEADERS: &'static [&'static str] = &["NAME", "ID", "DISPLAY NAME", "PRIMARY EMAIL", "DISABLED"];

    fn row(&self) -> Vec<String> {
        let email = self.profile.emails.iter().find(|e| e.primary).map(|e| e.address.as_str());
        vec![self.name.to_string(), self.id.to_string(), opt(self.profile.display_name.as_deref()), opt(email), yes_no(self.disabled)]
    }

    fn detail(&self) -> Vec<(&'static str, String)> {
        let p = &self.profile;
        let list = |items: Vec<&str>| if items.is_empty() { "-".to_owned() } else { items.join(", ") };
        vec![
            ("NAME", self.name.to_string()),
            ("ID", self.id.to_string()),
            ("DISPLAY NAME", opt(p.display_name.as_deref())),
            ("FIRST NAME", opt(p.first_name.as_deref())),
            ("LAST NAME", opt(p.last_name.as_deref())),
            ("BIRTHDAY", p.birthday.map_or_else(|| "-".to_owned(), |d| d.to_string())),
            ("EMAILS", list(p.emails.iter().map(|e| e.address.as_str()).collect())),
            ("PHONES", list(p.phones.iter().map(|n| n.number.as_str()).collect())),
            (
                "ADDRESSES",
                if p.addresses.is_empty() { "-".to_owned() } else { p.addresses.iter().map(address_line).collect::<Vec<_>>().join("\n") },
            ),
            ("AVATAR URL", opt(p.avatar_url.as_deref())),
            ("FIELDS", fields_lines(&p.fields)),
            ("DISABLED", yes_no(self.disabled)),
            ("VALID FROM", opt_time(self.valid_from)),
            ("EXPIRES AT", opt_time(self.expires_at)),
            ("HAS PASSWORD", yes_no(self.has_password)),
            ("CREATED", output::time(self.created_at)),
            ("UPDATED", output::time(self.updated_at)),
        ]
    }
}

/// `KIND:NAME` for an account named on the command line (by name or id), checked.
pub fn member_of_kind(kind: &str, account: &str) -> Result<String, CliError> {
    let reference = crate::group::member_ref(&format!("{kind}:{account}"))?;
    Ok(reference.to_string())
}

/// One postal address on one line: `billing: 1 Main St, 1010 Vienna, AT`.
pub(crate) fn address_line(a: &PostalAddress) -> String {
    let town = [a.postal_code.as_deref(), a.locality.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(" ");
    let parts: Vec<&str> = [a.street.as_deref(), Some(town.as_str()).filter(|t| !t.is_empty()), a.region.as_deref(), a.country.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    format!("{}: {}", a.label, parts.join(", "))
}

/// What `require-password-change` says: who must change, how many were mailed, and where.
pub(crate) fn say_password_change_required(ctx: &Ctx, done: &warden_core::api::PasswordChangeRequired) -> Result<(), CliError> {
    let lines = [
        format!("password change required of {} user(s): {}", done.accounts.len(), done.accounts.join(", ")),
        format!("{} session(s) ended; {} mailed a link (mail: {})", done.sessions_ended, done.mailed, done.mail),
    ];
    output::lines(ctx, done, lines)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn update_sends_only_what_was_given() {
        let profile = ProfileArgs { first_name: Some("Al".into()), emails: vec!["a@x.org".into()], ..ProfileArgs::default() };
        let patch = profile.into_update(&[Field::DisplayName, Field::Phones]).unwrap();
        assert_eq!(
            serde_json::to_value(&patch).unwrap(),
            serde_json::json!({"first_name": "Al", "display_name": null, "emails": ["a@x.org"], "phones": []})
        );
    }

    #[test]
    fn field_values_are_json_when_they_parse() {
        let parsed = |raw: &str| parse_field(raw).unwrap();
        assert_eq!(parsed("desk=12"), ("desk".into(), serde_json::json!(12)));
        assert_eq!(parsed("remote=true"), ("remote".into(), serde_json::json!(true)));
        assert_eq!(parsed("tags=[\"a\",\"b\"]"), ("tags".into(), serde_json::json!(["a", "b"])));
        assert_eq!(parsed("team=infra ops"), ("team".into(), serde_json::json!("infra ops")));
        assert_eq!(parsed("note=a=b"), ("note".into(), serde_json::json!("a=b")));
        assert_eq!(parsed("team="), ("team".into(), serde_json::Value::Null));
        assert!(parse_field("team").is_err() && parse_field("=x").is_err());
        let profile = ProfileArgs { fields: vec![parsed("desk=12"), parsed("team=")], ..ProfileArgs::default() };
        assert_eq!(
            serde_json::to_value(profile.into_update(&[]).unwrap()).unwrap(),
            serde_json::json!({"fields": {"desk": 12, "team": null}})
        );
    }

    #[test]
    fn update_refuses_contradictions_and_no_ops() {
        let profile = ProfileArgs { display_name: Some("Al".into()), ..ProfileArgs::default() };
        let err = profile.into_update(&[Field::DisplayName]).unwrap_err();
        assert_eq!(err.to_string(), "--clear display-name contradicts the value given for it");
        assert!(matches!(ProfileArgs::default().into_update(&[]), Err(CliError::Usage(_))));
    }
}
