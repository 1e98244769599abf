//! `warden self preferences [TENANT]`: show, or change, the caller's own preferences in a
//! tenant. The API replaces the whole document on every write; the CLI reads it first and
//! changes only what the flags name, so `--theme dark` keeps the time zone.

use clap::{Args, ValueEnum};
use serde_json::Value;
use warden_core::builtin::DEFAULT_TENANT;
use warden_core::preferences::{TenantPreferences, Theme};

use crate::output::{self, Tabular, opt};
use crate::{CliError, Ctx};

#[derive(Debug, Args)]
pub struct PreferencesArgs {
    /// The tenant [default: default].
    tenant: Option<String>,
    /// Colour scheme.
    #[arg(long, value_enum)]
    theme: Option<ThemeArg>,
    /// Time zone, an IANA name such as Europe/Berlin or UTC.
    #[arg(long, value_name = "ZONE")]
    timezone: Option<String>,
    /// Namespace opened by default (a dotted path such as prod.team-a).
    #[arg(long, value_name = "NAMESPACE")]
    default_namespace: Option<String>,
    /// Sets a free value: KEY=VALUE, where VALUE is read as JSON if it is JSON (50, true,
    /// a list) and as a string otherwise. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Removes a free value. Repeatable.
    #[arg(long = "unset", value_name = "KEY")]
    unset: Vec<String>,
    /// Clears a field (theme, timezone, default-namespace, or every free value). Repeatable.
    #[arg(long = "clear", value_enum, value_name = "FIELD")]
    clear: Vec<Field>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ThemeArg {
    Light,
    Dark,
    System,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Field {
    Theme,
    Timezone,
    DefaultNamespace,
    Values,
}

impl PreferencesArgs {
    fn changes_something(&self) -> bool {
        self.theme.is_some()
            || self.timezone.is_some()
            || self.default_namespace.is_some()
            || !self.set.is_empty()
            || !self.unset.is_empty()
            || !self.clear.is_empty()
    }

    /// `current` with the flags applied: clears first, then the new values.
    fn apply(&self, mut doc: TenantPreferences) -> Result<TenantPreferences, CliError> {
        for field in &self.clear {
            match field {
                Field::Theme => doc.theme = None,
                Field::Timezone => doc.timezone = None,
                Field::DefaultNamespace => doc.default_namespace = None,
                Field::Values => doc.values.clear(),
            }
        }
        if let Some(theme) = self.theme {
            doc.theme = Some(match theme {
                ThemeArg::Light => Theme::Light,
                ThemeArg::Dark => Theme::Dark,
                ThemeArg::System => Theme::System,
            });
        }
        if let Some(zone) = &self.timezone {
            doc.timezone = Some(zone.clone());
        }
        if let Some(namespace) = &self.default_namespace {
            doc.default_namespace = Some(namespace.clone());
        }
        for key in &self.unset {
            doc.values.remove(key);
        }
        for pair in &self.set {
            let (key, raw) = pair.split_once('=').ok_or_else(|| CliError::Usage(format!("--set takes KEY=VALUE (got {pair:?})")))?;
            let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
            doc.values.insert(key.to_owned(), value);
        }
        Ok(doc)
    }
}

pub async fn run(ctx: &Ctx, args: PreferencesArgs) -> Result<(), CliError> {
    let client = &ctx.client;
    let tenant = args.tenant.clone().unwrap_or_else(|| DEFAULT_TENANT.to_owned());
    let current = client.preferences(&tenant).await?;
    if !args.changes_something() {
        return output::item(ctx, &current);
    }
    let changed = args.apply(current)?;
    output::item(ctx, &client.set_preferences(&tenant, &changed).await?)
}

impl Tabular for TenantPreferences {
    const HEADERS: &'static [&'static str] = &["THEME", "TIMEZONE", "DEFAULT NAMESPACE", "VALUES"];

    fn row(&self) -> Vec<String> {
        let values: Vec<String> = self.values.iter().map(|(k, v)| format!("{k}={v}")).collect();
        vec![
            opt(self.theme.map(|t| output::wire_name(&t)).as_deref()),
            opt(self.timezone.as_deref()),
            opt(self.default_namespace.as_deref()),
            if values.is_empty() { "-".to_owned() } else { values.join("\n") },
        ]
    }
}
