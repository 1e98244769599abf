//! `warden self …`: the signed-in person's own account, as `/api/v1/self/*` serves it.
//!
//! Everything here acts on the caller alone and needs no `warden:*` permission: a profile edit
//! works on a read-only session, a password change proves the current password instead.

use clap::{Args, Subcommand, ValueEnum};
use time::Date;
use warden_core::api::UpdateProfile;
use warden_core::model::PostalAddress;

use crate::output;
use crate::session::read_password;
use crate::user::{flag_primary, flag_primary_phone, parse_address, parse_field};
use crate::{CliError, Ctx, parse_date};

/// The subcommands of `warden self`.
#[derive(Debug, Subcommand)]
pub enum SelfCommand {
    /// Show your own profile (additional fields as their visibility lets you see them).
    Show,
    /// Change your own profile; unnamed parts stay as they are. A new e-mail address stays
    /// unverified until its link is followed, and cannot become primary before.
    #[command(after_help = "Examples:
  warden self update --display-name \"Alice Liddell\" --phone \"+43 1 234567\"
  warden self update --email alice@example.org --email alice@work.example   # replaces the list
  warden self update --primary-email alice@work.example                     # among your addresses
  warden self update --field desk=12 --field pronouns=she/her --field nickname=")]
    Update {
        #[command(flatten)]
        profile: Box<SelfProfileArgs>,
        /// Remove a value (repeatable).
        #[arg(long, value_enum, value_name = "PART")]
        clear: Vec<SelfField>,
    },
    /// Change your own password: asks for the current one and the new one (twice). Your other
    /// sessions end; this one stays.
    #[command(after_help = "Examples:
  warden self password
  printf '%s\\n%s\\n' \"$OLD\" \"$NEW\" | warden self password --password-stdin")]
    Password {
        /// Read the current password (first line) and the new one (second line) from stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Your TOTP authenticator: `enrol` prints the secret and the otpauth:// URI, `confirm CODE`
    /// activates it, `remove` takes it away (all need a write window: `warden reauth`).
    #[command(
        subcommand,
        after_help = "Examples:
  warden self totp enrol
  warden self totp confirm 123456
  warden self totp remove"
    )]
    Totp(TotpCommand),
    /// Your passkeys: list them, rename or remove one (removing needs a write window). A
    /// passkey is registered in a browser, where the authenticator is.
    #[command(
        subcommand,
        after_help = "Examples:
  warden self passkey list
  warden self passkey rename 0193a0c4-5e1b-7c2d-9f00-2b6f4e8d1a77 \"work laptop\"
  warden self passkey remove 0193a0c4-5e1b-7c2d-9f00-2b6f4e8d1a77"
    )]
    Passkey(PasskeyCommand),
    /// Ten new single-use backup codes (the old ones stop working); shown this once.
    BackupCodes,
    /// Mail a new verification link to one of your own unverified addresses.
    #[command(after_help = "Examples:
  warden self resend-verification alice@work.example")]
    ResendVerification {
        /// The address (one of yours, not yet verified).
        address: String,
    },
    /// List your sessions and API tokens (where and how each signed in, when it ends), or end one.
    #[command(after_help = "Examples:
  warden self sessions
  warden self sessions --revoke 0193a0c4-5e1b-7c2d-9f00-2b6f4e8d1a77")]
    Sessions {
        /// End this one of yours (your current session too, as a logout).
        #[arg(long, value_name = "ID")]
        revoke: Option<uuid::Uuid>,
    },
    /// List the applications you signed in to with Warden (what each may learn, its live
    /// sign-ins), or disconnect one: its consent is withdrawn and its tokens stop working.
    #[command(after_help = "Examples:
  warden self applications
  warden self applications --withdraw grafana")]
    Applications {
        /// Disconnect this application (its client_id).
        #[arg(long, value_name = "CLIENT_ID")]
        withdraw: Option<String>,
    },
    /// Show your preferences in a tenant, or change those the flags name.
    #[command(after_help = "Examples:
  warden self preferences                        # in the default tenant
  warden self preferences acme --theme dark --timezone Europe/Berlin --default-namespace prod.team-a
  warden self preferences acme --set page_size=50 --set pinned='[\"flows\"]' --unset old_key")]
    Preferences(crate::preferences::PreferencesArgs),
}

#[derive(Debug, Subcommand)]
pub enum TotpCommand {
    /// Start an enrolment: prints the secret and the otpauth:// URI for an authenticator app.
    Enrol {
        /// SHA1 (the default) or SHA256.
        #[arg(long)]
        algorithm: Option<String>,
        /// 6 (the default) or 8.
        #[arg(long)]
        digits: Option<u32>,
        /// Also draw the QR code in the terminal, for the phone's camera.
        #[arg(long)]
        qr: bool,
    },
    /// Activate the enrolment with a code from the app.
    Confirm {
        /// The code the app shows now.
        code: String,
    },
    /// Remove the authenticator.
    Remove,
}

#[derive(Debug, Subcommand)]
pub enum PasskeyCommand {
    /// Your passkeys: id, name, when registered and last used.
    List,
    /// Give one of your passkeys another name.
    Rename {
        /// The passkey's id (from `warden self passkey list`).
        id: uuid::Uuid,
        /// The new name (1 to 64 characters).
        name: String,
    },
    /// Remove one of your passkeys: it signs no one in any more.
    Remove {
        /// The passkey's id (from `warden self passkey list`).
        id: uuid::Uuid,
    },
}

impl output::Tabular for warden_core::api::PasskeyInfo {
    const HEADERS: &'static [&'static str] = &["ID", "NAME", "REGISTERED", "LAST USED"];

    fn row(&self) -> Vec<String> {
        vec![self.id.to_string(), self.name.clone(), output::time(self.created_at), output::opt_time(self.last_used_at)]
    }
}

/// `text` as a QR code of Unicode half blocks (two rows of modules a line), dark on light.
fn terminal_qr(text: &str) -> Result<String, CliError> {
    let code = qrcode::QrCode::new(text.as_bytes()).map_err(|e| CliError::Local(format!("QR code: {e}")))?;
    Ok(code
        .render::<qrcode::render::unicode::Dense1x2>()
        .dark_color(qrcode::render::unicode::Dense1x2::Light)
        .light_color(qrcode::render::unicode::Dense1x2::Dark)
        .build())
}

/// What `self update` can change.
#[derive(Debug, Clone, Default, Args)]
pub struct SelfProfileArgs {
    /// The name shown for you, e.g. "Alice Liddell".
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
    /// E-mail address; repeat for more (replaces all). The first is primary unless
    /// --primary-email names another.
    #[arg(long = "email", value_name = "ADDRESS")]
    emails: Vec<String>,
    /// The primary e-mail address: one of --email or, without --email, one of your current
    /// addresses. It must be verified (or already primary).
    #[arg(long, value_name = "ADDRESS")]
    primary_email: Option<String>,
    /// Phone number; repeat for more (replaces all).
    #[arg(long = "phone", value_name = "NUMBER")]
    phones: Vec<String>,
    /// The primary phone number, as --primary-email is for addresses.
    #[arg(long, value_name = "NUMBER")]
    primary_phone: Option<String>,
    /// A postal address, repeatable (replaces all):
    /// label=home,street=1 Main St,city=Vienna,postal_code=1010,country=AT
    #[arg(long = "address", value_parser = parse_address, value_name = "label=…,street=…,city=…")]
    addresses: Vec<PostalAddress>,
    /// Address of your picture.
    #[arg(long, value_name = "URL")]
    avatar_url: Option<String>,
    /// An additional field the server lets users write, repeatable: JSON when it parses, else
    /// a string; `KEY=` removes it.
    #[arg(long = "field", value_parser = parse_field, value_name = "KEY=VALUE")]
    fields: Vec<(String, serde_json::Value)>,
}

/// Parts `self update --clear` can remove.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SelfField {
    DisplayName,
    FirstName,
    LastName,
    Birthday,
    Emails,
    Phones,
    Addresses,
    AvatarUrl,
}

pub async fn run(ctx: &Ctx, command: SelfCommand) -> Result<(), CliError> {
    let me = &ctx.client;
    match command {
        SelfCommand::Show => output::item(ctx, &me.own_profile().await?),
        SelfCommand::Preferences(args) => crate::preferences::run(ctx, args).await,
        SelfCommand::Totp(TotpCommand::Enrol { algorithm, digits, qr }) => {
            let enrolment = me.begin_totp(&warden_core::api::BeginTotp { algorithm, digits }).await?;
            let mut lines = vec![format!("secret: {}", enrolment.secret.expose()), enrolment.otpauth_uri.expose().to_owned()];
            if qr {
                lines.push(terminal_qr(enrolment.otpauth_uri.expose())?);
            }
            output::lines(ctx, &enrolment, lines)
        }
        SelfCommand::Totp(TotpCommand::Confirm { code }) => {
            let status = me.confirm_totp(&code).await?;
            output::lines(ctx, &status, ["TOTP is now your second factor; sign-ins ask for a code"])
        }
        SelfCommand::Totp(TotpCommand::Remove) => {
            me.remove_totp().await?;
            output::done(ctx.format, &serde_json::json!({ "totp_removed": true }), "TOTP authenticator removed")
        }
        SelfCommand::Passkey(PasskeyCommand::List) => {
            let keys = me.passkeys().await?;
            output::page(ctx, &warden_core::api::Page { items: keys, next_cursor: None })
        }
        SelfCommand::Passkey(PasskeyCommand::Rename { id, name }) => {
            let key = me.rename_passkey(id, &name).await?;
            output::lines(ctx, &key, [format!("passkey {} is now {:?}", key.id, key.name)])
        }
        SelfCommand::Passkey(PasskeyCommand::Remove { id }) => {
            me.remove_passkey(id).await?;
            output::done(ctx.format, &serde_json::json!({ "passkey_removed": id }), &format!("passkey {id} removed"))
        }
        SelfCommand::BackupCodes => {
            let codes = me.generate_backup_codes().await?;
            let lines: Vec<String> = codes.codes.iter().map(|c| c.expose().to_owned()).collect();
            output::lines(ctx, &codes, lines)
        }
        SelfCommand::Sessions { revoke } => crate::sessions::run_own(ctx, revoke).await,
        SelfCommand::Applications { withdraw } => crate::oidc::applications(ctx, None, withdraw).await,
        SelfCommand::ResendVerification { address } => {
            let queued = me.resend_verification(&address).await?;
            output::lines(ctx, &queued, [format!("verification link queued to {} (mail: {})", queued.to, queued.mail)])
        }
        SelfCommand::Update { mut profile, clear } => {
            // A new primary among the current addresses (or numbers).
            if profile.primary_email.is_some() && profile.emails.is_empty() || profile.primary_phone.is_some() && profile.phones.is_empty()
            {
                let current = me.own_profile().await?.profile;
                if profile.primary_email.is_some() && profile.emails.is_empty() {
                    profile.emails = current.emails.into_iter().map(|e| e.address).collect();
                }
                if profile.primary_phone.is_some() && profile.phones.is_empty() {
                    profile.phones = current.phones.into_iter().map(|p| p.number).collect();
                }
            }
            output::item(ctx, &me.update_own_profile(&profile.into_update(&clear)?).await?)
        }
        SelfCommand::Password { password_stdin } => {
            let (current, new) = read_change(password_stdin)?;
            me.change_own_password(&current, &new).await?;
            output::done(
                ctx.format,
                &serde_json::json!({ "password_changed": true, "other_sessions_ended": true }),
                "password changed; your other sessions have ended",
            )
        }
    }
}

/// The current and the new password: two lines of stdin, or asked for on the terminal (the
/// new one twice).
fn read_change(from_stdin: bool) -> Result<(String, String), CliError> {
    use std::io::{IsTerminal, Read};
    let (current, new) = if from_stdin || !std::io::stdin().is_terminal() {
        let mut raw = String::new();
        std::io::stdin().read_to_string(&mut raw).map_err(|e| CliError::Local(format!("cannot read the passwords: {e}")))?;
        let mut lines = raw.lines();
        (lines.next().unwrap_or_default().to_owned(), lines.next().unwrap_or_default().to_owned())
    } else {
        let current = read_password("Current password: ", false)?.expose().to_owned();
        let new = read_password("New password: ", false)?.expose().to_owned();
        if read_password("New password again: ", false)?.expose() != new {
            return Err(CliError::Usage("the new passwords differ".into()));
        }
        (current, new)
    };
    if current.is_empty() || new.is_empty() {
        return Err(CliError::Usage(
            "give the current password and the new one: on stdin, one per line (--password-stdin), or on a terminal when asked".into(),
        ));
    }
    Ok((current, new))
}

impl SelfProfileArgs {
    /// The PATCH body: given parts are set, `clear`ed ones nulled (lists emptied), the rest
    /// left out.
    fn into_update(self, clear: &[SelfField]) -> Result<UpdateProfile, CliError> {
        let mut patch = UpdateProfile {
            display_name: self.display_name.map(Some),
            first_name: self.first_name.map(Some),
            last_name: self.last_name.map(Some),
            birthday: self.birthday.map(Some),
            avatar_url: self.avatar_url.map(Some),
            emails: Some(flag_primary(self.emails, self.primary_email)).filter(|v| !v.is_empty()),
            phones: Some(flag_primary_phone(self.phones, self.primary_phone)).filter(|v| !v.is_empty()),
            addresses: Some(self.addresses).filter(|v| !v.is_empty()),
            fields: Some(self.fields.into_iter().collect()).filter(|f: &std::collections::BTreeMap<_, _>| !f.is_empty()),
        };
        for &part in clear {
            let already_set = match part {
                SelfField::DisplayName => patch.display_name.replace(None).is_some(),
                SelfField::FirstName => patch.first_name.replace(None).is_some(),
                SelfField::LastName => patch.last_name.replace(None).is_some(),
                SelfField::Birthday => patch.birthday.replace(None).is_some(),
                SelfField::AvatarUrl => patch.avatar_url.replace(None).is_some(),
                SelfField::Emails => patch.emails.replace(Vec::new()).is_some(),
                SelfField::Phones => patch.phones.replace(Vec::new()).is_some(),
                SelfField::Addresses => patch.addresses.replace(Vec::new()).is_some(),
            };
            if already_set {
                let name = part.to_possible_value().map(|v| v.get_name().to_owned()).unwrap_or_default();
                return Err(CliError::Usage(format!("--clear {name} contradicts the value given for it")));
            }
        }
        let empty = serde_json::to_value(&patch).is_ok_and(|v| v.as_object().is_some_and(serde_json::Map::is_empty));
        if empty {
            return Err(CliError::Usage("nothing to update: give a profile flag or --clear PART".into()));
        }
        Ok(patch)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn update_sends_only_what_was_given() {
        let profile = SelfProfileArgs {
            first_name: Some("Al".into()),
            primary_email: Some("b@x.org".into()),
            emails: vec!["a@x.org".into(), "b@x.org".into()],
            fields: vec![("desk".into(), serde_json::json!(12))],
            ..SelfProfileArgs::default()
        };
        let patch = profile.into_update(&[SelfField::Phones]).unwrap();
        assert_eq!(
            serde_json::to_value(&patch).unwrap(),
            serde_json::json!({
                "first_name": "Al",
                "emails": [{"address": "b@x.org", "primary": true}, {"address": "a@x.org", "primary": false}],
                "phones": [],
                "fields": {"desk": 12},
            })
        );
        let contradiction = SelfProfileArgs { display_name: Some("Al".into()), ..SelfProfileArgs::default() };
        assert!(matches!(contradiction.into_update(&[SelfField::DisplayName]), Err(CliError::Usage(_))));
        assert!(matches!(SelfProfileArgs::default().into_update(&[]), Err(CliError::Usage(_))));
    }
}
