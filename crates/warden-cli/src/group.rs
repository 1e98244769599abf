//! `warden group …`: groups and their members.
//!
//! Members are named like `user:alice`, `sa:ci-bot`, `group:staff` (or a bare name or id).
//! Every reference is checked before the first request, so a typo in the third member does
//! not leave the first two changed.

use clap::Subcommand;
use warden_client::MembersQuery;
use warden_core::api::{CreateGroup, MemberEntry};
use warden_core::model::{Group, SubjectRef};

use crate::output::{self, Format, PageArgs, Tabular, opt, yes_no};
use crate::user::ListArgs;
use crate::{CliError, Ctx};

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create a group.
    Create {
        /// The new group's name (lower case: letters, digits, `.`, `_`, `-`).
        name: String,
        /// What the group is for.
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
    /// List groups by name.
    List(ListArgs),
    /// Show one group (by name or id).
    Get {
        /// The group's name or id.
        group: String,
    },
    /// Delete a group (its members stay; they just lose this membership).
    Delete {
        /// The group's name or id.
        group: String,
    },
    /// Require every user in the group (nested groups included) to choose a new password:
    /// their sessions end, each is mailed a link, and until then they can do nothing else.
    RequirePasswordChange {
        /// The group's name or id.
        group: String,
    },
    /// Add members: user:NAME, sa:NAME, group:NAME, bare names or ids.
    AddMember {
        /// The group's name or id.
        group: String,
        /// The members to add: user:NAME, sa:NAME, group:NAME, a bare name or an id.
        #[arg(required = true, value_name = "MEMBER")]
        members: Vec<String>,
    },
    /// Remove direct members.
    RemoveMember {
        /// The group's name or id.
        group: String,
        /// The direct members to remove: user:NAME, sa:NAME, group:NAME, a bare name or an id.
        #[arg(required = true, value_name = "MEMBER")]
        members: Vec<String>,
    },
    /// List a group's members.
    Members {
        /// The group's name or id.
        group: String,
        /// Include indirect members (through nested groups).
        #[arg(long)]
        effective: bool,
        #[command(flatten)]
        page: PageArgs,
    },
}

pub async fn run(ctx: &Ctx, command: GroupCommand) -> Result<(), CliError> {
    let client = &ctx.client;
    match command {
        GroupCommand::Create { name, description } => output::item(ctx, &client.create_group(&CreateGroup { name, description }).await?),
        GroupCommand::List(args) => output::list(ctx, &args.page, async |c, l| client.list_groups(&args.query(c, l)).await).await,
        GroupCommand::Get { group } => output::item(ctx, &client.get_group(&group).await?),
        GroupCommand::Delete { group } => {
            client.delete_group(&group).await?;
            output::done(ctx.format, &serde_json::json!({ "deleted": format!("group:{group}") }), &format!("deleted group {group}"))
        }
        GroupCommand::RequirePasswordChange { group } => {
            let done = client.require_group_password_change(&group).await?;
            crate::user::say_password_change_required(ctx, &done)
        }
        GroupCommand::AddMember { group, members } => {
            let added = client.add_members(&group, &member_refs(&members)?).await?;
            match ctx.format {
                Format::Json => output::json(&added),
                Format::Table => {
                    output::note(&format!("added {} new member(s) to group {group}", added.added));
                    Ok(())
                }
            }
        }
        GroupCommand::RemoveMember { group, members } => {
            let mut removed = Vec::new();
            for member in member_refs(&members)? {
                client.remove_member(&group, &member).await?;
                if ctx.format == Format::Table {
                    output::note(&format!("removed {member} from group {group}"));
                }
                removed.push(member);
            }
            match ctx.format {
                Format::Json => output::json(&serde_json::json!({ "group": group, "removed": removed })),
                Format::Table => Ok(()),
            }
        }
        GroupCommand::Members { group, effective, page } => {
            output::list(ctx, &page, async |cursor, limit| client.group_members(&group, &MembersQuery { effective, cursor, limit }).await)
                .await
        }
    }
}

/// Attaches an account to groups, from the account's side (`warden user add-group alice staff
/// ops`): every group is looked up first, so that a misspelt one changes nothing.
pub async fn join(ctx: &Ctx, member: &str, groups: &[String]) -> Result<(), CliError> {
    let client = &ctx.client;
    for group in groups {
        client.get_group(group).await?;
    }
    let mut joined = Vec::new();
    for group in groups {
        let added = client.add_members(group, &[member.to_owned()]).await?;
        if added.added > 0 {
            joined.push(group.clone());
        }
    }
    match ctx.format {
        Format::Json => output::json(&serde_json::json!({ "member": member, "joined": joined })),
        Format::Table => {
            let already = groups.len() - joined.len();
            let note = if already > 0 { format!(" ({already} already had it)") } else { String::new() };
            output::note(&format!("added {member} to {} group(s){note}", joined.len()));
            Ok(())
        }
    }
}

/// Detaches an account from groups it is a direct member of, from the account's side.
pub async fn leave(ctx: &Ctx, member: &str, groups: &[String]) -> Result<(), CliError> {
    let client = &ctx.client;
    for group in groups {
        client.get_group(group).await?;
    }
    for group in groups {
        client.remove_member(group, member).await?;
    }
    match ctx.format {
        Format::Json => output::json(&serde_json::json!({ "member": member, "left": groups })),
        Format::Table => {
            output::note(&format!("removed {member} from {}", groups.join(", ")));
            Ok(())
        }
    }
}

/// Parses a member reference, as a usage error naming the bad one.
pub fn member_ref(raw: &str) -> Result<SubjectRef, CliError> {
    SubjectRef::parse(raw).map_err(|e| CliError::Usage(format!("bad member {raw:?}: {e}")))
}

/// Checks every reference and returns them normalised (`sa:ci-bot`, lower-case names).
fn member_refs(raw: &[String]) -> Result<Vec<String>, CliError> {
    raw.iter().map(|r| member_ref(r).map(|s| s.to_string())).collect()
}

impl Tabular for Group {
    const HEADERS: &'static [&'static str] = &["NAME", "ID", "MEMBERS", "DESCRIPTION"];

    fn row(&self) -> Vec<String> {
        vec![self.name.to_string(), self.id.to_string(), self.member_count.to_string(), opt(self.description.as_deref())]
    }

    fn detail(&self) -> Vec<(&'static str, String)> {
        let mut fields: Vec<_> = Self::HEADERS.iter().copied().zip(self.row()).collect();
        fields.extend([("CREATED", output::time(self.created_at)), ("UPDATED", output::time(self.updated_at))]);
        fields
    }
}

impl Tabular for MemberEntry {
    const HEADERS: &'static [&'static str] = &["KIND", "NAME", "ID", "DIRECT"];

    fn row(&self) -> Vec<String> {
        let s = &self.subject;
        vec![s.kind.prefix().to_owned(), s.name.to_string(), s.id.to_string(), yes_no(self.direct)]
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn member_refs_are_normalised() {
        let refs = member_refs(&["user:Alice".into(), "service_account:ci".into(), "staff".into()]).unwrap();
        assert_eq!(refs, ["user:alice", "sa:ci", "staff"]);
    }

    #[test]
    fn a_bad_member_is_a_one_line_usage_error() {
        let err = member_refs(&["user:alice".into(), "robot:x".into()]).unwrap_err();
        assert!(matches!(err, CliError::Usage(_)));
        let message = err.to_string();
        assert!(message.starts_with("bad member \"robot:x\": ") && !message.contains('\n'), "{message}");
        assert!(member_ref("group:").is_err());
    }
}
