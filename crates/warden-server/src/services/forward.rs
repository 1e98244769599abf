//! Forward-auth decisions: who is this, and may they pass?
//!
//! The HTTP edge hands over the original request and the credential it carried; this service
//! authenticates it from the credential cache (no database in the steady state), picks the
//! first matching rule, and judges by the authorization snapshot or the Rego policy. The
//! policy is reloaded when its files change; a policy that fails to compile is refused and the
//! one in force stays.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use warden_core::access::{AuthMethod, Principal};
use warden_core::credential::Secret;
use warden_core::model::SubjectKind;
use warden_core::namespace::Namespace;
use warden_policy::rego::Policy;
use warden_policy::{Decision, PolicyInput, RequestInfo, Rule, RuleSet, SubjectInfo, Verdict};

use super::auth::Auth;
use super::credentials::Contact;
use super::{Context, Result, ServiceError};
use crate::config::ForwardAuthConfig;

/// The credential a forwarded request carried.
pub enum Presented {
    None,
    /// A session or API token from `Authorization: Bearer`.
    Bearer(String),
    /// A session token from the session cookie.
    Cookie(String),
    Basic(String, Secret),
}

/// What to answer the proxy.
#[derive(Debug)]
pub enum Outcome {
    /// 200, with identity and policy headers for the upstream.
    Allow { headers: Vec<(String, String)> },
    /// No valid credential: sign in (browsers) or 401.
    Unauthenticated { body: Option<String> },
    /// Authenticated but not allowed (or a policy's own status).
    Deny { status: u16, headers: Vec<(String, String)>, body: Option<String> },
}

#[derive(Clone)]
pub struct ForwardAuth {
    ctx: Context,
    auth: Auth,
    rules: Arc<RuleSet>,
    policy: Arc<ArcSwapOption<Policy>>,
}

struct Authenticated {
    principal: Principal,
    contact: Contact,
}

impl ForwardAuth {
    /// Compiles the rules and loads the policy (a broken policy at start-up is an error).
    pub fn new(ctx: Context, auth: Auth) -> Result<Self> {
        let config = &ctx.config.forward_auth;
        let rules = RuleSet::new(config.rules.clone()).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let policy = match &config.policy_dir {
            Some(dir) => Some(Arc::new(Policy::load(dir, &config.policy_query).map_err(|e| ServiceError::Internal(e.to_string()))?)),
            None => None,
        };
        Ok(Self { ctx, auth, rules: Arc::new(rules), policy: Arc::new(ArcSwapOption::new(policy)) })
    }

    fn config(&self) -> &ForwardAuthConfig {
        &self.ctx.config.forward_auth
    }

    /// Whether the proxy at `peer` may tell us about the original request.
    pub fn trusts(&self, peer: Option<IpAddr>) -> bool {
        peer.is_some_and(|ip| self.config().trusted_proxies.contains(&ip.to_canonical()))
    }

    pub async fn decide(&self, request: RequestInfo, presented: Presented, client: Option<IpAddr>) -> Result<Outcome> {
        let matched = self.rules.matching(&request);
        let allow_basic = matched.is_some_and(|(_, r)| r.allow_basic);
        let who = self.authenticate(presented, allow_basic, client).await?;
        let tenant = self.config().tenant.clone();
        let Some((_, rule)) = matched else {
            return match self.policy.load_full() {
                Some(policy) => Ok(self.by_policy(&policy, request, who.as_ref(), &tenant, None)),
                None => Ok(Self::denied(who.as_ref())),
            };
        };
        let subject = who.as_ref().map(|w| Self::subject_info(w, &tenant, rule.namespace.as_deref()));
        let holds = |permission: &str, rule_tenant: Option<&str>, namespace: Option<&str>| {
            let Some(w) = &who else { return false };
            let namespace = namespace.and_then(|n| Namespace::parse(n).ok());
            let p = &w.principal;
            p.index.allows(
                (p.account.kind, p.account.id),
                permission,
                rule_tenant.unwrap_or(&tenant),
                namespace.as_ref(),
                p.token_roles.as_deref(),
            )
        };
        match rule.judge(subject.as_ref(), holds) {
            Verdict::Allow => Ok(Outcome::Allow { headers: self.identity_headers(subject.as_ref()) }),
            Verdict::Unauthenticated => Ok(Outcome::Unauthenticated { body: None }),
            Verdict::Forbidden => Ok(Self::denied(who.as_ref())),
            Verdict::Policy => match self.policy.load_full() {
                Some(policy) => Ok(self.by_policy(&policy, request, who.as_ref(), &tenant, rule.namespace.as_deref())),
                None => Ok(Self::denied(who.as_ref())),
            },
        }
    }

    fn denied(who: Option<&Authenticated>) -> Outcome {
        if who.is_some() { Outcome::Deny { status: 403, headers: Vec::new(), body: None } } else { Outcome::Unauthenticated { body: None } }
    }

    fn by_policy(
        &self,
        policy: &Policy,
        mut request: RequestInfo,
        who: Option<&Authenticated>,
        tenant: &str,
        namespace: Option<&str>,
    ) -> Outcome {
        request.headers.retain(|name, _| name != "authorization" && name != "cookie");
        let subject = who.map(|w| Self::subject_info(w, tenant, namespace));
        let input = PolicyInput { request, subject };
        let Decision { allow, status, headers, body } = match policy.evaluate(&input) {
            Ok(decision) => decision,
            Err(e) => {
                tracing::error!(error = %e, "forward-auth policy failed; denying");
                Decision::default()
            }
        };
        let extra: Vec<(String, String)> = headers.into_iter().collect();
        if allow {
            let mut headers = self.identity_headers(input.subject.as_ref());
            headers.extend(extra);
            return Outcome::Allow { headers };
        }
        match status {
            Some(401) | None if input.subject.is_none() => Outcome::Unauthenticated { body },
            status => Outcome::Deny { status: status.unwrap_or(403), headers: extra, body },
        }
    }

    async fn authenticate(&self, presented: Presented, allow_basic: bool, client: Option<IpAddr>) -> Result<Option<Authenticated>> {
        let found = match presented {
            Presented::None => return Ok(None),
            Presented::Bearer(token) | Presented::Cookie(token) => self.auth.authenticate_bearer_with_contact(&token).await,
            Presented::Basic(_, _) if !allow_basic => return Ok(None),
            Presented::Basic(name, password) => match self.auth.authenticate_basic(&name, &password, client).await {
                Ok(principal) => {
                    let owner = self.ctx.store.account(&warden_core::model::NameOrId::Id(principal.account.id), self.ctx.now()).await?;
                    let contact = owner.map(|o| Contact { email: o.email, display_name: o.display_name }).unwrap_or_default();
                    Ok((principal, contact))
                }
                Err(e) => Err(e),
            },
        };
        match found {
            Ok((principal, contact)) => Ok(Some(Authenticated { principal, contact })),
            // Guessing stays locked out (RateLimited); a store failure is an error.
            Err(ServiceError::Unauthenticated | ServiceError::AuthFailed) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn subject_info(who: &Authenticated, tenant: &str, namespace: Option<&str>) -> SubjectInfo {
        let p = &who.principal;
        let key = (p.account.kind, p.account.id);
        let namespace = namespace.and_then(|n| Namespace::parse(n).ok());
        let (strength, token_kind) = match p.method {
            AuthMethod::ApiToken => ("token", "api_token"),
            AuthMethod::Password => ("password", "basic"),
            AuthMethod::Session | AuthMethod::Host => ("password", "session"),
        };
        SubjectInfo {
            id: p.account.id.to_string(),
            name: p.account.name.to_string(),
            kind: if p.account.kind == SubjectKind::User { "user" } else { "service_account" }.to_owned(),
            email: who.contact.email.clone(),
            display_name: who.contact.display_name.clone(),
            groups: p.index.effective_groups(key).iter().map(ToString::to_string).collect(),
            roles: p.index.roles_of(key).iter().map(ToString::to_string).collect(),
            permissions: p.index.permissions_of(key, tenant, namespace.as_ref()),
            auth_strength: strength.to_owned(),
            token_kind: token_kind.to_owned(),
            tenant: tenant.to_owned(),
        }
    }

    fn identity_headers(&self, subject: Option<&SubjectInfo>) -> Vec<(String, String)> {
        let Some(s) = subject else { return Vec::new() };
        let names = &self.config().headers;
        let join = |v: &[String]| v.join(",");
        [
            (&names.user, Some(s.name.clone())),
            (&names.user_id, Some(s.id.clone())),
            (&names.email, s.email.clone()),
            (&names.name, s.display_name.clone()),
            (&names.groups, Some(join(&s.groups))),
            (&names.roles, Some(join(&s.roles))),
            (&names.permissions, Some(join(&s.permissions))),
            (&names.auth_strength, Some(s.auth_strength.clone())),
        ]
        .into_iter()
        .filter(|(name, _)| !name.is_empty())
        .filter_map(|(name, value)| value.map(|v| (name.clone(), v)))
        .collect()
    }

    /// The header names Warden sets: a client must never be able to send them to an upstream.
    pub fn identity_header_names(&self) -> Vec<String> {
        let h = &self.config().headers;
        [&h.user, &h.user_id, &h.email, &h.name, &h.groups, &h.roles, &h.permissions, &h.auth_strength]
            .into_iter()
            .filter(|n| !n.is_empty())
            .cloned()
            .collect()
    }

    /// Keeps the policy current: reloads when a file in the directory changes, keeps the old
    /// one (and logs why) when the new one does not compile.
    pub async fn watch_policy(self, every: Duration) {
        let Some(dir) = self.config().policy_dir.clone() else { return };
        let mut seen = fingerprint(&dir);
        loop {
            tokio::time::sleep(every).await;
            let now = fingerprint(&dir);
            if now == seen {
                continue;
            }
            seen = now;
            match Policy::load(&dir, &self.config().policy_query) {
                Ok(policy) => {
                    tracing::info!(dir = %dir.display(), "forward-auth policy reloaded");
                    self.policy.store(Some(Arc::new(policy)));
                }
                Err(e) => {
                    tracing::error!(error = %e, dir = %dir.display(), "new forward-auth policy refused; the previous one stays in force");
                }
            }
        }
    }

    /// The rule that matches, for logs and tests.
    pub fn rule_for(&self, request: &RequestInfo) -> Option<Rule> {
        self.rules.matching(request).map(|(_, r)| r.clone())
    }
}

/// Names, sizes and modification times of the policy files: what a change looks like.
fn fingerprint(dir: &std::path::Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "rego"))
        .map(|e| {
            let meta = e.metadata().ok();
            (e.path(), meta.as_ref().map_or(0, std::fs::Metadata::len), meta.and_then(|m| m.modified().ok()))
        })
        .collect();
    files.sort();
    files
}
