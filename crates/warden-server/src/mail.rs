//! The edge where mail leaves: templates rendered into a message, and the two transports
//! (`outbox`, a directory of `.eml` files, and `smtp`). What to send, when, and with which link
//! is the mail service's business (`services::mail`); this module only renders and delivers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Serialize;
use warden_store::MailKind;

use crate::config::{MailConfig, MailTransport, SmtpSecurity};

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("mail configuration: {0}")]
    Config(String),
    #[error("template {0}: {1}")]
    Template(String, String),
    #[error("{0}")]
    Message(String),
    #[error("sending failed: {0}")]
    Send(String),
}

/// What a template is given.
#[derive(Debug, Clone, Serialize)]
pub struct MailContext {
    /// The person's name as they would be greeted (display name, else account name).
    pub greeting: String,
    /// The account name (empty for an invitation).
    pub name: String,
    /// The link to follow.
    pub link: String,
    /// When the link stops working (RFC 3339).
    pub expires_at: String,
    /// Where the server is reached (`server.public_url`).
    pub site: String,
    /// The address written to.
    pub address: String,
}

/// A rendered message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

const KINDS: [(MailKind, &str, &str, &str); 5] = [
    (
        MailKind::Invitation,
        "You are invited to {{ site }}",
        "Hello,\n\nyou are invited to create an account at {{ site }}. Follow this link to choose your name and password:\n\n{{ link }}\n\nThe link works once, until {{ expires_at }}. If you did not expect this invitation, ignore this mail.\n",
        "<p>Hello,</p><p>you are invited to create an account at {{ site }}.</p><p><a href=\"{{ link }}\">Create your account</a></p><p>The link works once, until {{ expires_at }}. If you did not expect this invitation, ignore this mail.</p>",
    ),
    (
        MailKind::AccountNotice,
        "Your account at {{ site }}",
        "Hello {{ greeting }},\n\nan account named {{ name }} was made for you at {{ site }}. Follow this link to choose your password:\n\n{{ link }}\n\nThe link works once, until {{ expires_at }}.\n",
        "<p>Hello {{ greeting }},</p><p>an account named <b>{{ name }}</b> was made for you at {{ site }}.</p><p><a href=\"{{ link }}\">Choose your password</a></p><p>The link works once, until {{ expires_at }}.</p>",
    ),
    (
        MailKind::PasswordReset,
        "Reset your password at {{ site }}",
        "Hello {{ greeting }},\n\nsomeone asked to reset the password of the account {{ name }} at {{ site }}. If it was you, follow this link to choose a new one:\n\n{{ link }}\n\nThe link works once, until {{ expires_at }}. If it was not you, ignore this mail: your password stays as it is.\n",
        "<p>Hello {{ greeting }},</p><p>someone asked to reset the password of the account <b>{{ name }}</b> at {{ site }}. If it was you, follow this link to choose a new one:</p><p><a href=\"{{ link }}\">Choose a new password</a></p><p>The link works once, until {{ expires_at }}. If it was not you, ignore this mail: your password stays as it is.</p>",
    ),
    (
        MailKind::PasswordChangeRequired,
        "Choose a new password at {{ site }}",
        "Hello {{ greeting }},\n\nan administrator requires a new password for the account {{ name }} at {{ site }}. You have been signed out. Follow this link to choose one:\n\n{{ link }}\n\nThe link works once, until {{ expires_at }}. You can also sign in with your current password and change it then.\n",
        "<p>Hello {{ greeting }},</p><p>an administrator requires a new password for the account <b>{{ name }}</b> at {{ site }}. You have been signed out.</p><p><a href=\"{{ link }}\">Choose a new password</a></p><p>The link works once, until {{ expires_at }}. You can also sign in with your current password and change it then.</p>",
    ),
    (
        MailKind::EmailVerification,
        "Confirm your address at {{ site }}",
        "Hello {{ greeting }},\n\nplease confirm that {{ address }} belongs to the account {{ name }} at {{ site }}:\n\n{{ link }}\n\nThe link works once, until {{ expires_at }}. If you did not add this address, ignore this mail.\n",
        "<p>Hello {{ greeting }},</p><p>please confirm that {{ address }} belongs to the account <b>{{ name }}</b> at {{ site }}.</p><p><a href=\"{{ link }}\">Confirm the address</a></p><p>The link works once, until {{ expires_at }}. If you did not add this address, ignore this mail.</p>",
    ),
];

/// The templates: built in, each replaced by a file of the same name in `mail.templates_dir`.
pub struct Templates {
    env: minijinja::Environment<'static>,
}

impl Templates {
    pub fn load(dir: Option<&Path>) -> Result<Self, MailError> {
        let mut env = minijinja::Environment::new();
        // HTML parts escape what they are given; text and subjects are plain.
        env.set_auto_escape_callback(|name| {
            if Path::new(name).extension().is_some_and(|e| e.eq_ignore_ascii_case("html")) {
                minijinja::AutoEscape::Html
            } else {
                minijinja::AutoEscape::None
            }
        });
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for (kind, subject, text, html) in KINDS {
            for (suffix, built_in) in [("subject", subject), ("txt", text), ("html", html)] {
                let name = format!("{}.{suffix}", kind.as_str());
                let source = match dir.map(|d| d.join(&name)).filter(|p| p.exists()) {
                    Some(path) => {
                        std::fs::read_to_string(&path).map_err(|e| MailError::Template(name.clone(), format!("{}: {e}", path.display())))?
                    }
                    None => built_in.to_owned(),
                };
                env.add_template_owned(name.clone(), source).map_err(|e| MailError::Template(name, e.to_string()))?;
            }
        }
        Ok(Self { env })
    }

    pub fn render(&self, kind: MailKind, to: &str, context: &MailContext) -> Result<Letter, MailError> {
        let render = |suffix: &str| -> Result<String, MailError> {
            let name = format!("{}.{suffix}", kind.as_str());
            let template = self.env.get_template(&name).map_err(|e| MailError::Template(name.clone(), e.to_string()))?;
            template.render(context).map_err(|e| MailError::Template(name, e.to_string()))
        };
        Ok(Letter { to: to.to_owned(), subject: render("subject")?.trim().to_owned(), text: render("txt")?, html: render("html")? })
    }
}

/// Where mail goes.
pub enum Transport {
    Outbox(PathBuf),
    Smtp { relay: AsyncSmtpTransport<Tokio1Executor>, host: String },
}

impl Transport {
    pub fn from_config(config: &MailConfig, timeout_secs: i64) -> Result<Self, MailError> {
        match config.transport {
            MailTransport::Outbox => Ok(Self::Outbox(config.outbox_dir.clone())),
            MailTransport::Smtp => {
                let smtp = &config.smtp;
                let bad = |e: lettre::transport::smtp::Error| MailError::Config(format!("mail.smtp.host {:?}: {e}", smtp.host));
                let builder = match smtp.security {
                    SmtpSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host).map_err(bad)?,
                    SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host).map_err(bad)?,
                    SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
                };
                let port = smtp.port.unwrap_or(match smtp.security {
                    SmtpSecurity::Starttls => 587,
                    SmtpSecurity::Tls => 465,
                    SmtpSecurity::None => 25,
                });
                let mut builder = builder.port(port).timeout(Some(Duration::from_secs(u64::try_from(timeout_secs).unwrap_or(30))));
                let password = match (&smtp.password, &smtp.password_file) {
                    (_, Some(file)) => Some(
                        std::fs::read_to_string(file)
                            .map_err(|e| MailError::Config(format!("mail.smtp.password_file {}: {e}", file.display())))?
                            .trim_end()
                            .to_owned(),
                    ),
                    (Some(password), None) => Some(password.clone()),
                    (None, None) => None,
                };
                match (&smtp.username, password) {
                    (Some(user), Some(password)) => builder = builder.credentials(Credentials::new(user.clone(), password)),
                    (None, None) => {}
                    _ => return Err(MailError::Config("mail.smtp: username and password go together".into())),
                }
                Ok(Self::Smtp { relay: builder.build(), host: format!("{}:{port}", smtp.host) })
            }
        }
    }

    /// Where this transport puts mail, for the CLI and the log.
    pub fn describe(&self) -> String {
        match self {
            Self::Outbox(dir) => format!("outbox {}", dir.display()),
            Self::Smtp { host, .. } => format!("smtp {host}"),
        }
    }

    /// Delivers a letter; returns where it went (a file, or the relay).
    pub async fn send(&self, from: &str, mail_id: uuid::Uuid, letter: &Letter) -> Result<String, MailError> {
        let from: Mailbox = from.parse().map_err(|e| MailError::Config(format!("mail.from: {e}")))?;
        let to: Mailbox = letter.to.parse().map_err(|e| MailError::Message(format!("recipient {:?}: {e}", letter.to)))?;
        let message = Message::builder()
            .from(from)
            .to(to)
            .subject(&letter.subject)
            .message_id(Some(format!("<{mail_id}@warden>")))
            .multipart(MultiPart::alternative_plain_html(letter.text.clone(), letter.html.clone()))
            .map_err(|e| MailError::Message(e.to_string()))?;
        match self {
            Self::Outbox(dir) => {
                tokio::fs::create_dir_all(dir).await.map_err(|e| MailError::Send(format!("{}: {e}", dir.display())))?;
                let path = dir.join(format!("{mail_id}.eml"));
                // Written aside and renamed, so that a reader never sees half a message.
                let partial = dir.join(format!(".{mail_id}.eml.part"));
                tokio::fs::write(&partial, message.formatted())
                    .await
                    .map_err(|e| MailError::Send(format!("{}: {e}", partial.display())))?;
                tokio::fs::rename(&partial, &path).await.map_err(|e| MailError::Send(format!("{}: {e}", path.display())))?;
                Ok(path.display().to_string())
            }
            Self::Smtp { relay, host } => {
                relay.send(message).await.map_err(|e| MailError::Send(e.to_string()))?;
                Ok(format!("smtp {host}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> MailContext {
        MailContext {
            greeting: "Alice <b>".into(),
            name: "alice".into(),
            link: "https://id.example.org/recover?token=wdo_x".into(),
            expires_at: "2026-12-06T12:00:00.000Z".into(),
            site: "https://id.example.org".into(),
            address: "alice@example.org".into(),
        }
    }

    #[test]
    fn every_kind_renders_its_link_and_html_is_escaped() {
        let templates = Templates::load(None).unwrap();
        for kind in MailKind::ALL {
            let letter = templates.render(kind, "alice@example.org", &context()).unwrap();
            assert!(letter.text.contains("https://id.example.org/recover?token=wdo_x"), "{kind:?}");
            // HTML-escaped (`/` as `&#x2f;`), which every HTML reader decodes in an attribute.
            let html = letter.html.replace("&#x2f;", "/");
            assert!(html.contains("href=\"https://id.example.org/recover?token=wdo_x\""), "{kind:?}: {}", letter.html);
            assert!(!letter.subject.is_empty() && !letter.subject.contains('\n'));
            assert!(!letter.html.contains("<b>\u{20}") && !letter.html.contains("Alice <b>"), "greeting escaped: {}", letter.html);
        }
    }

    #[test]
    fn a_file_replaces_a_built_in_template_and_a_bad_one_is_refused() {
        let dir = tempfile::TempDir::new().unwrap();
        std::fs::write(dir.path().join("invitation.subject"), "Join {{ site }} today").unwrap();
        let templates = Templates::load(Some(dir.path())).unwrap();
        assert_eq!(templates.render(MailKind::Invitation, "a@b.c", &context()).unwrap().subject, "Join https://id.example.org today");
        std::fs::write(dir.path().join("invitation.txt"), "{{ unknown_variable }}").unwrap();
        let templates = Templates::load(Some(dir.path())).unwrap();
        assert!(matches!(templates.render(MailKind::Invitation, "a@b.c", &context()), Err(MailError::Template(..))));
        std::fs::write(dir.path().join("invitation.txt"), "{% if %}").unwrap();
        assert!(Templates::load(Some(dir.path())).is_err(), "a template that does not parse is refused at start");
    }
}
