//! Decisions: `warden check` (may a subject do this?) and the resolved permissions of an
//! account (`warden user permissions`, `warden service-account permissions`).
//!
//! `check` sends every permission in one request and says the verdict in its exit code too,
//! so scripts can write `warden check user:alice calendar:events:write && …`.

use std::process::ExitCode;

use clap::Args;
use warden_client::PermissionsQuery;
use warden_core::api::{CheckItem, CheckRequest, CheckResult, ResolvedPermissions};
use warden_core::authz::{Explanation, Grant};

use crate::output::{self, Format};
use crate::{CliError, Ctx, parse_namespace, parse_subject};

/// Exit code of `check` when any permission is denied.
pub const DENIED: u8 = 3;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  warden check user:alice calendar:events:write
  warden check sa:ci-bot deploy:run --namespace prod.eu --explain
  warden check alice deploy:run deploy:rollback --tenant acme && ./deploy.sh

Exit status: 0 if every permission is allowed, 3 if any is denied, 1 on errors, 2 on usage errors.")]
pub struct CheckArgs {
    /// Who: user:NAME, sa:NAME, a bare name or an id.
    #[arg(value_parser = parse_subject)]
    pub subject: String,
    /// The permissions to decide, e.g. calendar:events:write.
    #[arg(required = true, value_name = "PERMISSION")]
    pub permissions: Vec<String>,
    /// The tenant to decide in [default: the server's default tenant]
    #[arg(long)]
    pub tenant: Option<String>,
    /// The namespace to decide in (for every permission) [default: tenant-wide]
    #[arg(long, value_parser = parse_namespace)]
    pub namespace: Option<String>,
    /// Show the chain that grants each permission, or why none does.
    #[arg(long)]
    pub explain: bool,
}

/// Where to resolve an account's permissions.
#[derive(Debug, Clone, Default, Args)]
pub struct ScopeArgs {
    /// The tenant [default: the server's default tenant]
    #[arg(long)]
    pub tenant: Option<String>,
    /// Only what holds in this namespace [default: tenant-wide]
    #[arg(long, value_parser = parse_namespace)]
    pub namespace: Option<String>,
}

/// `warden check`: prints the decisions and returns the exit code they call for.
pub async fn check(ctx: &Ctx, args: CheckArgs) -> Result<ExitCode, CliError> {
    let request = args.request();
    let response = ctx.client.check(&request).await?;
    let text: Vec<String> = response.results.iter().flat_map(|r| decision_lines(r, args.explain)).collect();
    output::lines(ctx, &response, text)?;
    Ok(exit_code(&response.results))
}

impl CheckArgs {
    /// One batch request: every permission, each in the same namespace.
    fn request(&self) -> CheckRequest {
        let item = |permission: &String| CheckItem { permission: permission.clone(), namespace: self.namespace.clone() };
        CheckRequest {
            subject: self.subject.clone(),
            tenant: self.tenant.clone(),
            checks: self.permissions.iter().map(item).collect(),
            explain: self.explain,
            ..CheckRequest::default()
        }
    }
}

/// 0 when every decision is an allow, [`DENIED`] otherwise (no decisions at all are not an allow).
pub fn exit_code(results: &[CheckResult]) -> ExitCode {
    if !results.is_empty() && results.iter().all(|r| r.allowed) { ExitCode::SUCCESS } else { ExitCode::from(DENIED) }
}

/// `allow PERMISSION [in NAMESPACE]`, then with `explain` the grant chains or the reason.
fn decision_lines(result: &CheckResult, explain: bool) -> Vec<String> {
    let verdict = if result.allowed { "allow" } else { "deny" };
    let place = result.namespace.as_ref().map(|n| format!(" in {n}")).unwrap_or_default();
    let mut lines = vec![format!("{verdict} {}{place}", result.permission)];
    if let Some(explanation) = result.explanation.as_ref().filter(|_| explain) {
        lines.extend(explanation_lines(explanation));
    }
    lines
}

fn explanation_lines(explanation: &Explanation) -> Vec<String> {
    let mut lines: Vec<String> = explanation.grants.iter().map(|g| format!("  {}", grant_line(g))).collect();
    if let Some(reason) = explanation.reason.as_ref().filter(|_| explanation.grants.is_empty()) {
        lines.push(format!("  reason: {reason}"));
    }
    lines
}

/// `user:alice → group:ops ⇒ binding <id> role operator grants calendar:events (tree) in [prod]`.
fn grant_line(grant: &Grant) -> String {
    let path = grant.path.iter().map(ToString::to_string).collect::<Vec<_>>().join(" → ");
    let tree = if grant.via_tree { " (tree)" } else { "" };
    let scope = if grant.namespaces.is_empty() {
        "tenant-wide".to_owned()
    } else {
        format!("in [{}]", grant.namespaces.iter().map(ToString::to_string).collect::<Vec<_>>().join(", "))
    };
    format!("{path} ⇒ binding {} role {} grants {}{tree} {scope}", grant.binding, grant.role, grant.permission)
}

/// `warden user|service-account permissions`: the leaves on stdout, roles and groups on stderr.
pub async fn account_permissions(ctx: &Ctx, account: &str, scope: ScopeArgs) -> Result<(), CliError> {
    let query = PermissionsQuery { tenant: scope.tenant, namespace: scope.namespace };
    let resolved = ctx.client.account_permissions(account, &query).await?;
    output::lines(ctx, &resolved, &resolved.permissions)?;
    if ctx.format == Format::Table {
        output::note(&summary(&resolved));
    }
    Ok(())
}

fn summary(resolved: &ResolvedPermissions) -> String {
    let list = |items: &[String]| if items.is_empty() { "-".to_owned() } else { items.join(", ") };
    let place = resolved.namespace.as_ref().map(|n| format!(", namespace {n}")).unwrap_or_default();
    format!(
        "{} in tenant {}{place}: {} permission(s)\nroles: {}\ngroups: {}",
        resolved.subject,
        resolved.tenant,
        resolved.permissions.len(),
        list(&resolved.roles),
        list(&resolved.groups)
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use uuid::Uuid;
    use warden_core::model::{Subject, SubjectKind};
    use warden_core::name::Name;
    use warden_core::namespace::Namespace;

    use super::*;

    fn result(permission: &str, allowed: bool) -> CheckResult {
        CheckResult { permission: permission.into(), namespace: None, allowed, explanation: None }
    }

    fn subject(kind: SubjectKind, name: &str) -> Subject {
        Subject { kind, id: Uuid::nil(), name: Name::parse(name).unwrap() }
    }

    #[test]
    fn exit_code_is_zero_only_when_everything_is_allowed() {
        assert_eq!(exit_code(&[result("a", true), result("b", true)]), ExitCode::SUCCESS);
        assert_eq!(exit_code(&[result("a", true), result("b", false)]), ExitCode::from(3));
        assert_eq!(exit_code(&[result("a", false)]), ExitCode::from(3));
        assert_eq!(exit_code(&[]), ExitCode::from(3));
    }

    #[test]
    fn permissions_go_in_one_batch_with_the_same_namespace() {
        let args = CheckArgs {
            subject: "user:alice".into(),
            permissions: vec!["a:read".into(), "a:write".into()],
            tenant: Some("acme".into()),
            namespace: Some("prod".into()),
            explain: true,
        };
        assert_eq!(
            serde_json::to_value(args.request()).unwrap(),
            serde_json::json!({
                "subject": "user:alice",
                "tenant": "acme",
                "checks": [{"permission": "a:read", "namespace": "prod"}, {"permission": "a:write", "namespace": "prod"}],
                "explain": true,
            })
        );
    }

    #[test]
    fn decisions_read_as_lines_with_their_chains() {
        let grant = Grant {
            path: vec![subject(SubjectKind::User, "alice"), subject(SubjectKind::Group, "oncall"), subject(SubjectKind::Group, "ops")],
            binding: Uuid::nil(),
            role: Name::parse("operator").unwrap(),
            permission: "calendar:events".into(),
            via_tree: true,
            namespaces: vec![Namespace::parse("prod").unwrap()],
        };
        let allowed = CheckResult {
            permission: "calendar:events:write".into(),
            namespace: Some("prod.eu".into()),
            allowed: true,
            explanation: Some(Explanation { allowed: true, grants: vec![grant], reason: None }),
        };
        assert_eq!(
            decision_lines(&allowed, true),
            [
                "allow calendar:events:write in prod.eu",
                "  user:alice → group:oncall → group:ops ⇒ binding 00000000-0000-0000-0000-000000000000 role operator grants calendar:events (tree) in [prod]",
            ]
        );
        assert_eq!(decision_lines(&allowed, false), ["allow calendar:events:write in prod.eu"]);
        let denied = CheckResult {
            explanation: Some(Explanation { allowed: false, grants: vec![], reason: Some("user:bob has no bindings".into()) }),
            ..result("calendar:events:write", false)
        };
        assert_eq!(decision_lines(&denied, true), ["deny calendar:events:write", "  reason: user:bob has no bindings"]);
    }
}
