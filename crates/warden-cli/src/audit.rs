//! `warden audit list`: who changed what, newest first.

use clap::{Args, Subcommand};
use time::OffsetDateTime;
use warden_client::AuditQuery;
use warden_core::credential::parse_duration_secs;
use warden_core::model::AuditEvent;

use crate::output::{self, PageArgs, Tabular};
use crate::{CliError, Ctx, parse_rfc3339};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit events, newest first.
    List(AuditListArgs),
}

#[derive(Debug, Args)]
pub struct AuditListArgs {
    /// Only events by this actor (name or id).
    #[arg(long)]
    actor: Option<String>,
    /// Only events about this target (name or id).
    #[arg(long)]
    target: Option<String>,
    /// Only actions starting with this, e.g. `user.` or `group.member.add`.
    #[arg(long, value_name = "PREFIX")]
    action: Option<String>,
    /// Only events since this time: RFC 3339, or a duration back from now such as 1h or 7d.
    #[arg(long, value_parser = parse_since, value_name = "TIME|DURATION")]
    since: Option<OffsetDateTime>,
    #[command(flatten)]
    page: PageArgs,
}

pub async fn run(ctx: &Ctx, command: AuditCommand) -> Result<(), CliError> {
    match command {
        AuditCommand::List(args) => {
            let query = |cursor, limit| AuditQuery {
                actor: args.actor.clone(),
                target: args.target.clone(),
                action: args.action.clone(),
                since: args.since,
                cursor,
                limit,
            };
            output::list(ctx, &args.page, async |c, l| ctx.client.audit(&query(c, l)).await).await
        }
    }
}

fn parse_since(raw: &str) -> Result<OffsetDateTime, String> {
    let now = OffsetDateTime::now_utc();
    since_at(raw, now.replace_nanosecond(0).unwrap_or(now))
}

/// `raw` as a time: RFC 3339 as given, or a duration counted back from `now`.
fn since_at(raw: &str, now: OffsetDateTime) -> Result<OffsetDateTime, String> {
    if let Ok(at) = parse_rfc3339(raw) {
        return Ok(at);
    }
    let secs = parse_duration_secs(raw).map_err(|_| format!("{raw:?} is neither an RFC 3339 time nor a duration like 1h or 7d"))?;
    Ok(now - time::Duration::seconds(secs))
}

impl Tabular for AuditEvent {
    const HEADERS: &'static [&'static str] = &["AT", "ACTOR", "ACTION", "TARGET", "REVISION"];

    fn row(&self) -> Vec<String> {
        let actor = self.actor_name.clone().or_else(|| self.actor_id.map(|id| id.to_string())).unwrap_or_else(|| "(server)".to_owned());
        let target_name = self.target_name.clone().or_else(|| self.target_id.map(|id| id.to_string()));
        let target = match (&self.target_kind, target_name) {
            (Some(kind), Some(name)) => format!("{kind}:{name}"),
            (None, Some(name)) => name,
            (_, None) => "-".to_owned(),
        };
        // A membership change names its member beside the group.
        let target = match self.details.get("member").and_then(|m| m.as_str()) {
            Some(member) if self.action.starts_with("group.member.") => format!("{target} ({member})"),
            _ => target,
        };
        vec![output::time(self.at), actor, self.action.clone(), target, self.revision.to_string()]
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn since_takes_a_time_or_a_duration_back() {
        let now = datetime!(2026-03-01 12:00 UTC);
        assert_eq!(since_at("1h", now).unwrap(), datetime!(2026-03-01 11:00 UTC));
        assert_eq!(since_at("7d", now).unwrap(), datetime!(2026-02-22 12:00 UTC));
        assert_eq!(since_at("2026-01-01T00:00:00+01:00", now).unwrap(), datetime!(2025-12-31 23:00 UTC));
        assert!(since_at("yesterday", now).is_err());
    }
}
