//! Rendering what the server returned: pretty JSON for scripts, plain tables for people.
//!
//! Every noun describes its table once (a [`Tabular`] impl) and every command prints through
//! [`item`], [`list`], [`page`], [`lines`] (or [`lines_as`], without a server) or [`note`], so
//! output looks the same everywhere and stays in one place.
//! Data goes to stdout, messages to stderr; a closed stdout (`warden … | head`) is not an error.

use std::io::{self, Write};

use clap::{Args, ValueEnum};
use comfy_table::{Table, presets};
use serde::Serialize;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};
use warden_client::ClientError;
use warden_core::api::{Expanded, Page};

use crate::{CliError, Ctx};

/// How results are printed (`--output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Columns for people; messages on stderr.
    Table,
    /// Pretty JSON on stdout; errors as a JSON object on stderr.
    Json,
}

/// A type the CLI can show as a table row, and as a FIELD/VALUE table on its own.
pub trait Tabular: Serialize {
    const HEADERS: &'static [&'static str];

    fn row(&self) -> Vec<String>;

    /// The fields of the one-item view; by default the list columns.
    fn detail(&self) -> Vec<(&'static str, String)> {
        Self::HEADERS.iter().copied().zip(self.row()).collect()
    }
}

/// An account with its groups and roles: the account's own view, then what was expanded.
impl<T: Tabular> Tabular for Expanded<T> {
    const HEADERS: &'static [&'static str] = T::HEADERS;

    fn row(&self) -> Vec<String> {
        self.account.row()
    }

    fn detail(&self) -> Vec<(&'static str, String)> {
        let list = |items: &[String]| if items.is_empty() { "-".to_owned() } else { items.join(", ") };
        let mut rows = self.account.detail();
        if let Some(groups) = &self.groups {
            rows.push(("GROUPS", list(&groups.direct)));
            rows.push(("EFFECTIVE GROUPS", list(&groups.effective)));
        }
        if let Some(roles) = &self.roles {
            let held: Vec<String> = roles
                .iter()
                .map(|r| {
                    let scope = if r.namespaces.is_empty() { String::new() } else { format!(" [{}]", r.namespaces.join(", ")) };
                    format!("{} in {}{scope} via {}", r.role, r.tenant, r.via)
                })
                .collect();
            rows.push(("ROLES", if held.is_empty() { "-".to_owned() } else { held.join("\n") }));
        }
        rows
    }
}

/// Fetches an account with as much of its groups and roles as the caller may read: `fetch`
/// is asked for both, then for groups alone, then for the account alone.
pub async fn expanded<T, F>(mut fetch: F) -> Result<Expanded<T>, CliError>
where
    F: AsyncFnMut(&'static str) -> Result<Expanded<T>, ClientError>,
{
    for expand in ["groups,roles", "groups"] {
        match fetch(expand).await {
            Err(e) if e.code() == "forbidden" => {}
            found => return Ok(found?),
        }
    }
    Ok(fetch("").await?)
}

/// Paging flags shared by every list.
#[derive(Debug, Clone, Default, Args)]
pub struct PageArgs {
    /// Items per page (the server caps it).
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
    /// Continue after this cursor (printed by the previous page).
    #[arg(long, value_name = "CURSOR", conflicts_with = "all")]
    pub cursor: Option<String>,
    /// Follow every page to the end.
    #[arg(long)]
    pub all: bool,
}

/// Prints one item: its JSON, or a FIELD/VALUE table.
pub fn item<T: Tabular>(ctx: &Ctx, value: &T) -> Result<(), CliError> {
    match ctx.format {
        Format::Json => json(value),
        Format::Table => {
            let rows = value.detail().into_iter().map(|(field, value)| vec![field.to_owned(), value]);
            emit(&table(&[], rows))
        }
    }
}

/// Fetches one page (or, with `--all`, every page) through `fetch` and prints it.
pub async fn list<T, F>(ctx: &Ctx, args: &PageArgs, mut fetch: F) -> Result<(), CliError>
where
    T: Tabular,
    F: AsyncFnMut(Option<String>, Option<u32>) -> Result<Page<T>, ClientError>,
{
    let mut page = fetch(args.cursor.clone(), args.limit).await?;
    while let Some(cursor) = page.next_cursor.take_if(|_| args.all) {
        let mut next = fetch(Some(cursor.clone()), args.limit).await?;
        if next.next_cursor.as_deref() == Some(cursor.as_str()) {
            return Err(CliError::Local(format!("the server repeated cursor {cursor:?}; stopping")));
        }
        page.items.append(&mut next.items);
        page.next_cursor = next.next_cursor;
    }
    self::page(ctx, &page)?;
    if let (Format::Table, Some(cursor)) = (ctx.format, &page.next_cursor) {
        note(&format!("more results: --cursor {cursor} (or --all)"));
    }
    Ok(())
}

/// Prints a page as the server sent it: its JSON, or a table of its items (for lists the
/// server does not page, such as roles and bindings).
pub fn page<T: Tabular>(ctx: &Ctx, page: &Page<T>) -> Result<(), CliError> {
    match ctx.format {
        Format::Json => json(page),
        Format::Table => emit(&table(T::HEADERS, page.items.iter().map(Tabular::row))),
    }
}

/// Prints `value` as JSON, or `lines` one per line (nothing at all when there are none).
pub fn lines<T, L>(ctx: &Ctx, value: &T, lines: impl IntoIterator<Item = L>) -> Result<(), CliError>
where
    T: Serialize + ?Sized,
    L: std::fmt::Display,
{
    lines_as(ctx.format, value, lines)
}

/// [`lines`] for commands that need no server (and so have no [`Ctx`]), such as `warden policy`.
pub fn lines_as<T, L>(format: Format, value: &T, lines: impl IntoIterator<Item = L>) -> Result<(), CliError>
where
    T: Serialize + ?Sized,
    L: std::fmt::Display,
{
    match format {
        Format::Json => json(value),
        Format::Table => {
            let text = lines.into_iter().map(|l| l.to_string()).collect::<Vec<_>>().join("\n");
            if text.is_empty() { Ok(()) } else { emit(&text) }
        }
    }
}

/// Prints a value as pretty JSON.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::Local(format!("cannot print JSON: {e}")))?;
    emit(&text)
}

/// Reports an action that has nothing else to show: `value` as JSON on stdout, or `message`
/// on stderr for the person at the terminal. (Under `--output json`, stdout always carries a
/// document, so a script can parse what every command did.)
pub fn done(format: Format, value: &serde_json::Value, message: &str) -> Result<(), CliError> {
    match format {
        Format::Json => json(value),
        Format::Table => {
            note(message);
            Ok(())
        }
    }
}

/// A message for the person at the terminal (stderr), never data.
pub fn note(message: &str) {
    eprintln!("{message}");
}

/// Writes a block of text and a newline to stdout; a closed pipe ends output quietly.
pub fn emit(text: &str) -> Result<(), CliError> {
    let mut out = io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(CliError::Local(format!("cannot write output: {e}"))),
        _ => Ok(()),
    }
}

/// A borderless table, columns two spaces apart, like `ls -l` or `kubectl get`.
fn table(headers: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut table = Table::new();
    table.load_style(presets::NOTHING);
    if !headers.is_empty() {
        table.set_header(headers.to_vec());
    }
    table.add_rows(rows);
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table.trim_fmt()
}

/// A timestamp in UTC to the second, e.g. `2026-01-02 03:04:05Z`.
pub fn time(at: OffsetDateTime) -> String {
    at.to_offset(UtcOffset::UTC)
        .format(format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z"))
        .unwrap_or_else(|_| at.to_string())
}

/// An optional timestamp; `-` when absent.
pub fn opt_time(at: Option<OffsetDateTime>) -> String {
    at.map_or_else(|| "-".to_owned(), time)
}

/// An optional text; `-` when absent.
pub fn opt(text: Option<&str>) -> String {
    text.unwrap_or("-").to_owned()
}

/// A list in one cell, space-separated; `-` when empty.
pub fn words(items: &[impl AsRef<str>]) -> String {
    if items.is_empty() { "-".to_owned() } else { items.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(" ") }
}

/// How a unit enum is spelled on the wire (`built_in`, `password`), for table cells.
pub fn wire_name<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

/// `yes` / `no`.
pub fn yes_no(flag: bool) -> String {
    if flag { "yes" } else { "no" }.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_plain_columns() {
        let text = table(&["NAME", "ID"], [vec!["alice".to_owned(), "1".to_owned()], vec!["bo".to_owned(), "22".to_owned()]]);
        assert_eq!(text, "NAME   ID\nalice  1\nbo     22");
    }

    #[test]
    fn times_are_utc_seconds() {
        let at = time::macros::datetime!(2026-01-02 04:04:05.123 +01:00);
        assert_eq!(super::time(at), "2026-01-02 03:04:05Z");
        assert_eq!(opt_time(None), "-");
    }
}
