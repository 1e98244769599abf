//! Simple forward-auth rules, evaluated in order: the first rule whose host, path and method
//! match the request decides; no match means deny.

use serde::{Deserialize, Serialize};

use warden_core::access::AuthStrength;
use warden_core::namespace::Namespace;

use crate::PolicyError;
use crate::glob::Glob;
use crate::input::{RequestView, SubjectInfo};

/// What a matching rule requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Anyone may pass.
    AllowAnonymous,
    /// Any authenticated account may pass.
    Authenticated,
    /// The subject must hold `permission` (in `tenant`, and `namespace` if given).
    Permission,
    /// The subject must be an effective member of `group`.
    Group,
    /// The credential must be at least `strength` (`password`, `mfa`, `passkey`).
    AuthStrength,
    /// The Rego policy decides.
    Policy,
    /// Nobody passes.
    Deny,
}

/// One `[[forward_auth.rule]]` block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    #[serde(default)]
    pub name: Option<String>,
    /// Host pattern (`*.example.org`); any host when absent.
    #[serde(default)]
    pub host: Option<String>,
    /// Path pattern (`/admin/**`); any path when absent.
    #[serde(default)]
    pub path: Option<String>,
    /// Methods (`GET`, …); any method when empty.
    #[serde(default)]
    pub methods: Vec<String>,
    pub action: Action,
    #[serde(default)]
    pub permission: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub strength: Option<String>,
    /// Accept HTTP Basic credentials for this rule (each costs a password hash and counts
    /// towards the soft lock).
    #[serde(default)]
    pub allow_basic: bool,
}

/// The outcome of a rule for an (optionally authenticated) subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    /// No (valid) credential, and the rule needs one.
    Unauthenticated,
    /// Authenticated, but the rule is not satisfied.
    Forbidden,
    /// Hand the request to the Rego policy.
    Policy,
}

/// The weakest strength a rule may name: an API token, below every level of
/// [`AuthStrength::LEVELS`] (the one ranking of how a sign-in was proved).
const TOKEN: &str = "token";

/// A strength's rank: the levels a rule names (`token`, `password`, `mfa`, `passkey`), and how
/// a credential was authenticated, ranked at its [`AuthStrength::level`] (`password+totp` and
/// `password+backup_code` are `mfa`; a passkey, alone or after the password, is `passkey`,
/// which also satisfies `mfa`).
fn strength_rank(s: &str) -> Option<usize> {
    if s == TOKEN {
        return Some(0);
    }
    let level = match AuthStrength::parse(s) {
        Some(strength) => strength.level(),
        None => s,
    };
    AuthStrength::LEVELS.iter().position(|x| *x == level).map(|at| at + 1)
}

impl Rule {
    /// A short label for logs and explanations.
    pub fn label(&self, index: usize) -> String {
        self.name.clone().unwrap_or_else(|| format!("rule #{}", index + 1))
    }

    /// Refuses an incomplete rule (the namespace is checked where it is parsed, in [`RuleSet::new`]).
    fn check(&self, index: usize) -> Result<(), PolicyError> {
        let fail = |reason: &str| Err(PolicyError::Rule { rule: self.label(index), reason: reason.to_owned() });
        match self.action {
            Action::Permission if self.permission.is_none() => fail("action = \"permission\" needs permission = \"…\""),
            Action::Group if self.group.is_none() => fail("action = \"group\" needs group = \"…\""),
            Action::AuthStrength if self.strength.as_deref().and_then(strength_rank).is_none() => {
                fail("action = \"auth_strength\" needs strength = \"password\", \"mfa\" or \"passkey\"")
            }
            _ if self.path.as_deref().is_some_and(|p| !p.starts_with('/')) => fail("path patterns start with /"),
            _ if self.tenant.as_deref().is_some_and(|t| warden_core::Name::parse(t).is_err()) => fail("tenant is not a valid name"),
            _ => Ok(()),
        }
    }

    fn matches(&self, request: &RequestView<'_>, host: Option<&Glob>, path: Option<&Glob>) -> bool {
        host.is_none_or(|g| g.matches(request.host))
            && path.is_none_or(|g| g.matches(request.path))
            && (self.methods.is_empty() || self.methods.iter().any(|m| m.eq_ignore_ascii_case(request.method)))
    }

    /// Judges `subject` by this rule, whose namespace is `namespace` (parsed);
    /// `holds(permission, tenant, namespace)` asks the authorization snapshot.
    fn judge(
        &self,
        subject: Option<&SubjectInfo>,
        namespace: Option<&Namespace>,
        holds: impl Fn(&str, Option<&str>, Option<&Namespace>) -> bool,
    ) -> Verdict {
        if self.action == Action::AllowAnonymous {
            return Verdict::Allow;
        }
        if self.action == Action::Policy {
            return Verdict::Policy;
        }
        let Some(subject) = subject else { return Verdict::Unauthenticated };
        let ok = match self.action {
            Action::Authenticated => true,
            Action::Permission => self.permission.as_deref().is_some_and(|p| holds(p, self.tenant.as_deref(), namespace)),
            Action::Group => self.group.as_deref().is_some_and(|g| subject.groups.iter().any(|x| x.eq_ignore_ascii_case(g))),
            Action::AuthStrength => {
                let needed = self.strength.as_deref().and_then(strength_rank).unwrap_or(usize::MAX);
                strength_rank(&subject.auth_strength).is_some_and(|have| have >= needed)
            }
            Action::Deny | Action::AllowAnonymous | Action::Policy => false,
        };
        if ok { Verdict::Allow } else { Verdict::Forbidden }
    }
}

/// A rule with its patterns and namespace parsed once.
#[derive(Debug, Clone)]
struct Compiled {
    rule: Rule,
    host: Option<Glob>,
    path: Option<Glob>,
    namespace: Option<Namespace>,
}

/// The configured rules, compiled once.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Compiled>,
}

/// The rule that decides a request.
#[derive(Debug, Clone, Copy)]
pub struct Matched<'a> {
    /// Its position among the configured rules.
    pub index: usize,
    pub rule: &'a Rule,
    namespace: Option<&'a Namespace>,
}

impl Matched<'_> {
    /// Judges `subject`; `holds(permission, tenant, namespace)` asks the authorization snapshot.
    pub fn judge(&self, subject: Option<&SubjectInfo>, holds: impl Fn(&str, Option<&str>, Option<&Namespace>) -> bool) -> Verdict {
        self.rule.judge(subject, self.namespace, holds)
    }
}

impl RuleSet {
    pub fn new(rules: Vec<Rule>) -> Result<Self, PolicyError> {
        let mut compiled = Vec::with_capacity(rules.len());
        for (i, rule) in rules.into_iter().enumerate() {
            rule.check(i)?;
            let host = rule.host.as_deref().map(Glob::host);
            let path = rule.path.as_deref().map(Glob::path);
            let namespace = rule.namespace.as_deref().map(Namespace::parse).transpose().map_err(|_| PolicyError::Rule {
                rule: rule.label(i),
                reason: "namespace must be a dotted path like prod.team-a".into(),
            })?;
            compiled.push(Compiled { rule, host, path, namespace });
        }
        Ok(Self { rules: compiled })
    }

    /// The first rule that matches the request.
    pub fn matching(&self, request: &RequestView<'_>) -> Option<Matched<'_>> {
        self.rules.iter().enumerate().find(|(_, c)| c.rule.matches(request, c.host.as_ref(), c.path.as_ref())).map(|(index, c)| Matched {
            index,
            rule: &c.rule,
            namespace: c.namespace.as_ref(),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RequestInfo;

    fn request(host: &str, path: &str, method: &str) -> RequestInfo {
        RequestInfo { method: method.into(), scheme: "https".into(), host: host.into(), path: path.into(), ..RequestInfo::default() }
    }

    fn rule(toml_like: serde_json::Value) -> Rule {
        serde_json::from_value(toml_like).unwrap()
    }

    fn subject(groups: &[&str], strength: &str) -> SubjectInfo {
        SubjectInfo {
            name: "alice".into(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            auth_strength: strength.into(),
            ..SubjectInfo::default()
        }
    }

    #[test]
    fn first_match_decides_and_default_is_none() {
        let rules = RuleSet::new(vec![
            rule(serde_json::json!({"name": "assets", "path": "/static/**", "action": "allow_anonymous"})),
            rule(serde_json::json!({"host": "admin.example.org", "action": "group", "group": "ops"})),
            rule(serde_json::json!({"path": "/api/**", "methods": ["POST"], "action": "permission", "permission": "app:write", "namespace": "prod"})),
            rule(serde_json::json!({"host": "*.example.org", "action": "authenticated"})),
        ])
        .unwrap();
        let label = |r: &RequestInfo| rules.matching(&r.view()).map(|m| m.rule.label(m.index));
        assert_eq!(label(&request("app.example.org", "/static/app.css", "GET")).as_deref(), Some("assets"));
        assert_eq!(label(&request("admin.example.org", "/", "GET")).as_deref(), Some("rule #2"));
        assert_eq!(label(&request("app.example.org", "/api/x", "post")).as_deref(), Some("rule #3"));
        assert_eq!(label(&request("app.example.org", "/api/x", "GET")).as_deref(), Some("rule #4"));
        assert_eq!(label(&request("evil.com", "/", "GET")), None);
    }

    /// Judges `subject` by `rule` as the server does: compiled in a rule set, then matched.
    fn judge(rule: &Rule, subject: Option<&SubjectInfo>, holds: impl Fn(&str, Option<&str>, Option<&Namespace>) -> bool) -> Verdict {
        let rules = RuleSet::new(vec![rule.clone()]).unwrap();
        rules.matching(&request("app.example.org", "/", "GET").view()).unwrap().judge(subject, holds)
    }

    #[test]
    fn judging() {
        let never = |_: &str, _: Option<&str>, _: Option<&Namespace>| false;
        let always = |_: &str, _: Option<&str>, _: Option<&Namespace>| true;
        let group = rule(serde_json::json!({"action": "group", "group": "ops"}));
        assert_eq!(judge(&group, None, never), Verdict::Unauthenticated);
        assert_eq!(judge(&group, Some(&subject(&["ops"], "password")), never), Verdict::Allow);
        assert_eq!(judge(&group, Some(&subject(&["dev"], "password")), never), Verdict::Forbidden);
        let perm = rule(serde_json::json!({"action": "permission", "permission": "a:b"}));
        assert_eq!(judge(&perm, Some(&subject(&[], "password")), always), Verdict::Allow);
        assert_eq!(judge(&perm, Some(&subject(&[], "password")), never), Verdict::Forbidden);
        let mfa = rule(serde_json::json!({"action": "auth_strength", "strength": "mfa"}));
        assert_eq!(judge(&mfa, Some(&subject(&[], "password")), never), Verdict::Forbidden);
        assert_eq!(judge(&mfa, Some(&subject(&[], "passkey")), never), Verdict::Allow);
        for two in ["password+totp", "password+backup_code", "password+passkey"] {
            assert_eq!(judge(&mfa, Some(&subject(&[], two)), never), Verdict::Allow, "{two}");
        }
        let passkey = rule(serde_json::json!({"action": "auth_strength", "strength": "passkey"}));
        assert_eq!(judge(&passkey, Some(&subject(&[], "password+totp")), never), Verdict::Forbidden);
        for with_passkey in ["passkey", "password+passkey"] {
            assert_eq!(judge(&passkey, Some(&subject(&[], with_passkey)), never), Verdict::Allow, "{with_passkey}");
        }
        assert_eq!(judge(&rule(serde_json::json!({"action": "deny"})), Some(&subject(&[], "passkey")), always), Verdict::Forbidden);
    }

    #[test]
    fn incomplete_rules_are_refused() {
        assert!(RuleSet::new(vec![rule(serde_json::json!({"action": "permission"}))]).is_err());
        assert!(RuleSet::new(vec![rule(serde_json::json!({"action": "auth_strength", "strength": "retina"}))]).is_err());
        assert!(RuleSet::new(vec![rule(serde_json::json!({"action": "authenticated", "path": "api/**"}))]).is_err());
        assert!(
            RuleSet::new(vec![rule(serde_json::json!({"action": "permission", "permission": "a", "namespace": "Not A Namespace"}))])
                .is_err()
        );
        assert!(RuleSet::new(vec![rule(serde_json::json!({"action": "permission", "permission": "a", "tenant": "9bad"}))]).is_err());
        assert!(serde_json::from_value::<Rule>(serde_json::json!({"action": "maybe"})).is_err());
    }
}
