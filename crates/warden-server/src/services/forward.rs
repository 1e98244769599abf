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

use std::collections::HashMap;
use std::sync::Mutex;

use arc_swap::ArcSwapOption;
use http::{HeaderMap, HeaderName, HeaderValue};
use warden_core::access::{AuthMethod, Principal};
use warden_core::authz::AuthzIndex;
use warden_core::credential::Secret;
use warden_core::model::{Subject, SubjectKind};
use warden_core::namespace::Namespace;
use warden_policy::rego::{Policy, RequestFields, Runtime};
use warden_policy::{Decision, HeaderList, RequestView, RuleSet, SubjectInfo, SubjectValue, Verdict};

use super::auth::{Auth, Bearer};
use super::credentials::{Contact, Credential};
use super::{Context, Result, ServiceError};
use crate::config::ForwardAuthConfig;

/// The credential a forwarded request carried (borrowed from the request's headers).
pub enum Presented<'a> {
    None,
    /// A session or API token from `Authorization: Bearer`.
    Bearer(&'a str),
    /// A session token from the session cookie.
    Cookie(&'a str),
    Basic(String, Secret),
}

/// Headers for the upstream, ready to send: the response takes a copy of the map, which costs
/// less than inserting (and hashing) each header again. An identity's map also holds the
/// answer's own `Content-Length: 0`, which the HTTP stack would otherwise add to the copy
/// (growing it, a second allocation).
pub type Headers = Arc<HeaderMap>;

/// What to answer the proxy.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// 200, with identity (and policy) headers for the upstream.
    Allow { headers: Headers },
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
    /// The configured identity header names, parsed once (`None`: disabled).
    names: Arc<[Option<HeaderName>; 8]>,
    /// Identities by account and token kind; each list holds one per namespace judged in.
    identities: Arc<Mutex<Identities>>,
    /// Policy decisions on requests without a valid credential.
    anonymous: Arc<Memo>,
}

/// Identities by (account id, token kind).
type Identities = HashMap<(uuid::Uuid, &'static str), Vec<Arc<Identity>>>;

/// A subject's description and identity headers, valid for one snapshot revision, namespace,
/// contact and set of token roles (two API tokens of one account may carry different roles):
/// computing groups, roles and permissions allocates, and a proxy asks about the same people
/// all day. Looking one up allocates nothing.
struct Identity {
    revision: i64,
    namespace: Option<String>,
    contact: Contact,
    token_roles: Option<Vec<String>>,
    subject: SubjectInfo,
    /// The subject as policies see it, converted the first time a policy asks.
    policy_subject: std::sync::OnceLock<SubjectValue>,
    headers: Headers,
    /// Policy decisions on this identity's requests.
    decisions: Memo,
}

/// Policy decisions remembered by request, for one identity or for anonymous requests: a
/// decision takes microseconds on the VM, a proxy asks about the same requests over and over,
/// and a policy that reads neither the clock nor anything else outside its input decides the
/// same input alike. Only such a policy's decisions are remembered, only when it does not
/// read the request's headers (which hold per-request values), keyed by the request fields it
/// may read, and only for the policy load that made them; the subject's part of the input is
/// the identity's, which lasts one snapshot revision. Past its bound the memo starts over.
struct Memo {
    limit: usize,
    inner: Mutex<MemoInner>,
}

#[derive(Default)]
struct MemoInner {
    generation: u64,
    outcomes: HashMap<String, Outcome>,
    /// The header map of the allow remembered last, which the next equal one shares.
    last_allow: Option<Headers>,
}

impl Memo {
    fn new(limit: usize) -> Self {
        Self { limit, inner: Mutex::new(MemoInner::default()) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemoInner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn get(&self, generation: u64, key: &str) -> Option<Outcome> {
        let inner = self.lock();
        if inner.generation != generation {
            return None;
        }
        inner.outcomes.get(key).cloned()
    }

    /// Remembers `outcome` for `key`. An allow shares the header map of the allow remembered
    /// last when the two are equal: most requests of one identity get the same headers, and a
    /// map is the largest part of an entry.
    fn put(&self, generation: u64, key: String, mut outcome: Outcome) {
        let mut inner = self.lock();
        if inner.generation != generation || inner.outcomes.len() >= self.limit {
            inner.outcomes.clear();
            inner.last_allow = None;
            inner.generation = generation;
        }
        if let Outcome::Allow { headers } = &mut outcome {
            match &inner.last_allow {
                Some(last) if last == headers => *headers = last.clone(),
                _ => inner.last_allow = Some(headers.clone()),
            }
        }
        inner.outcomes.insert(key, outcome);
    }
}

/// Decisions remembered per identity, and for anonymous requests.
const DECISIONS_PER_IDENTITY: usize = 16;
const ANONYMOUS_DECISIONS: usize = 4096;

/// What tells one request from another for a policy that reads `fields` (never the
/// headers): the fields it reads, each prefixed by its length so that no two keys differ only
/// in where one field ends; a field it does not read is left out, so requests that differ only
/// there share a decision.
fn memo_key(request: &RequestView<'_>, fields: RequestFields) -> String {
    use std::fmt::Write as _;
    let mut key = String::with_capacity(64 + request.host.len() + request.path.len() + request.query.len());
    let parts = [
        (fields.method, Some(request.method)),
        (fields.scheme, Some(request.scheme)),
        (fields.host, Some(request.host)),
        (fields.path, Some(request.path)),
        (fields.query, Some(request.query)),
        (fields.client, request.client),
    ];
    for (read, part) in parts {
        match (read, part) {
            (false, _) => key.push('_'),
            (true, Some(part)) => {
                let _ = write!(key, "{}:{part}", part.len());
            }
            (true, None) => key.push('-'),
        }
    }
    key
}

/// Identities kept at most; past this the map starts over.
const IDENTITIES: usize = 50_000;

/// Who a forwarded request's credential says it is.
enum Authenticated {
    /// A session or API token, with the snapshot to judge by.
    Bearer(Bearer, Arc<AuthzIndex>),
    /// HTTP Basic: the account and its contact details, read for this request.
    Basic(Principal, Contact),
}

impl Authenticated {
    fn account(&self) -> &Subject {
        match self {
            Self::Bearer(b, _) => &b.cached.owner,
            Self::Basic(p, _) => &p.account,
        }
    }

    fn key(&self) -> (SubjectKind, uuid::Uuid) {
        let account = self.account();
        (account.kind, account.id)
    }

    fn password_change_required(&self) -> bool {
        match self {
            Self::Bearer(b, _) => b.cached.password_change_required,
            Self::Basic(p, _) => p.password_change_required,
        }
    }

    /// Whether the MFA policy confines the credential to enrolling a second factor: a session
    /// that proved none, or Basic (a password alone), of an account that must use one.
    fn mfa_enrolment_required(&self, policy: &warden_core::mfa::MfaPolicy) -> bool {
        match self {
            Self::Bearer(b, index) => {
                let strength = match &b.cached.credential {
                    Credential::Session(session) => Some(session.auth_strength),
                    Credential::Api(_) => None,
                };
                policy.confines(index, self.key(), b.method, strength)
            }
            Self::Basic(p, _) => p.mfa_enrolment_required,
        }
    }

    fn contact(&self) -> &Contact {
        match self {
            Self::Bearer(b, _) => &b.cached.contact,
            Self::Basic(_, c) => c,
        }
    }

    fn method(&self) -> AuthMethod {
        match self {
            Self::Bearer(b, _) => b.method,
            Self::Basic(p, _) => p.method,
        }
    }

    fn token_roles(&self) -> Option<&[String]> {
        match self {
            Self::Bearer(b, _) => b.token_roles(),
            Self::Basic(p, _) => p.token_roles.as_deref(),
        }
    }

    fn index(&self) -> &AuthzIndex {
        match self {
            Self::Bearer(_, index) => index,
            Self::Basic(p, _) => &p.index,
        }
    }
}

impl ForwardAuth {
    /// Compiles the rules and loads the policy (a broken policy at start-up is an error).
    pub fn new(ctx: Context, auth: Auth) -> Result<Self> {
        let config = &ctx.config.forward_auth;
        let rules = RuleSet::new(config.rules.clone()).map_err(|e| ServiceError::Config(e.to_string()))?;
        let policy = match &config.policy_dir {
            Some(dir) => {
                let policy = Policy::load(dir, &config.policy_query).map_err(|e| ServiceError::Config(e.to_string()))?;
                log_runtime(&policy, dir);
                Some(Arc::new(policy))
            }
            None => None,
        };
        let h = &config.headers;
        let parse = |name: &String| if name.is_empty() { None } else { HeaderName::from_bytes(name.as_bytes()).ok() };
        let names = [&h.user, &h.user_id, &h.email, &h.name, &h.groups, &h.roles, &h.permissions, &h.auth_strength].map(parse);
        Ok(Self {
            ctx,
            auth,
            rules: Arc::new(rules),
            policy: Arc::new(ArcSwapOption::new(policy)),
            names: Arc::new(names),
            identities: Arc::new(Mutex::new(HashMap::new())),
            anonymous: Arc::new(Memo::new(ANONYMOUS_DECISIONS)),
        })
    }

    /// The subject and identity headers of `who`, from the identity cache when the snapshot
    /// has not moved since they were computed.
    fn identity(&self, who: &Authenticated, tenant: &str, namespace: Option<&str>) -> Arc<Identity> {
        let revision = who.index().revision;
        let key = (who.account().id, Self::strength_and_kind(who.method()).1);
        let same_holder = |i: &Identity| i.contact == *who.contact() && i.token_roles.as_deref() == who.token_roles();
        let current = |i: &Identity| i.revision == revision && i.namespace.as_deref() == namespace && same_holder(i);
        let lock = || self.identities.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(hit) = lock().get(&key).and_then(|list| list.iter().find(|i| current(i))) {
            return hit.clone();
        }
        let subject = Self::subject_info(who, tenant, namespace);
        let identity = Arc::new(Identity {
            revision,
            namespace: namespace.map(str::to_owned),
            contact: who.contact().clone(),
            token_roles: who.token_roles().map(<[String]>::to_vec),
            headers: Arc::new(self.identity_headers(&subject)),
            policy_subject: std::sync::OnceLock::new(),
            subject,
            decisions: Memo::new(DECISIONS_PER_IDENTITY),
        });
        let mut identities = lock();
        if identities.len() >= IDENTITIES {
            identities.clear();
        }
        let list = identities.entry(key).or_default();
        // What an older snapshot computed is dropped, and what this one computed for the same
        // holder and namespace replaced; other tokens' identities stay.
        list.retain(|i| i.revision == revision && !(same_holder(i) && i.namespace.as_deref() == namespace));
        list.push(identity.clone());
        identity
    }

    fn config(&self) -> &ForwardAuthConfig {
        &self.ctx.config.forward_auth
    }

    /// Whether the proxy at `peer` may tell us about the original request.
    pub fn trusts(&self, peer: Option<IpAddr>) -> bool {
        peer.is_some_and(|ip| self.config().trusted_proxies.contains(&ip.to_canonical()))
    }

    /// Judges `request`; `headers` lists its headers (without credentials) when a policy needs
    /// them; `client` is the client's address, which throttles Basic credentials.
    pub async fn decide<'a>(
        &self,
        request: RequestView<'a>,
        headers: impl FnOnce() -> Vec<(&'a str, &'a str)>,
        presented: Presented<'_>,
        client: Option<IpAddr>,
    ) -> Result<Outcome> {
        let matched = self.rules.matching(&request);
        let allow_basic = matched.is_some_and(|m| m.rule.allow_basic);
        let who = self.authenticate(presented, allow_basic, client).await?;
        if who.as_ref().is_some_and(Authenticated::password_change_required) {
            // Signed in, but nothing is allowed until the new password is chosen.
            let body = "A new password is required before you continue: use the link mailed to you.".to_owned();
            return Ok(Outcome::Deny { status: 403, headers: Vec::new(), body: Some(body) });
        }
        if who.as_ref().is_some_and(|w| w.mfa_enrolment_required(&self.ctx.mfa)) {
            // Signed in without the second factor this account must use: nothing passes until
            // one is enrolled in Warden and proved.
            let body = "This account must use a second factor: enrol one in Warden, then sign in again with it.".to_owned();
            return Ok(Outcome::Deny { status: 403, headers: Vec::new(), body: Some(body) });
        }
        let tenant = self.config().tenant.as_str();
        let Some(matched) = matched else {
            return match self.policy.load_full() {
                Some(policy) => {
                    let identity = who.as_ref().map(|w| self.identity(w, tenant, None));
                    Ok(self.by_policy(&policy, request, headers, identity.as_deref()))
                }
                None => Ok(Self::denied(who.as_ref())),
            };
        };
        let namespace = matched.rule.namespace.as_deref();
        let identity = who.as_ref().map(|w| self.identity(w, tenant, namespace));
        let subject = identity.as_ref().map(|i| &i.subject);
        let holds = |permission: &str, rule_tenant: Option<&str>, namespace: Option<&Namespace>| {
            let Some(w) = &who else { return false };
            w.index().allows(w.key(), permission, rule_tenant.unwrap_or(tenant), namespace, w.token_roles())
        };
        match matched.judge(subject, holds) {
            Verdict::Allow => Ok(Outcome::Allow { headers: identity.map(|i| i.headers.clone()).unwrap_or_default() }),
            Verdict::Unauthenticated => Ok(Outcome::Unauthenticated { body: None }),
            Verdict::Forbidden => Ok(Self::denied(who.as_ref())),
            Verdict::Policy => match self.policy.load_full() {
                Some(policy) => Ok(self.by_policy(&policy, request, headers, identity.as_deref())),
                None => Ok(Self::denied(who.as_ref())),
            },
        }
    }

    fn denied(who: Option<&Authenticated>) -> Outcome {
        if who.is_some() { Outcome::Deny { status: 403, headers: Vec::new(), body: None } } else { Outcome::Unauthenticated { body: None } }
    }

    /// Asks the policy about `identity` (none: anonymous), or what it answered before to the
    /// same request (see [`Memo`]); the request's headers are listed only if the policy may
    /// read them.
    fn by_policy<'a>(
        &self,
        policy: &Policy,
        request: RequestView<'a>,
        headers: impl FnOnce() -> Vec<(&'a str, &'a str)>,
        identity: Option<&Identity>,
    ) -> Outcome {
        let memo = identity.map_or(&*self.anonymous, |i| &i.decisions);
        let key = (policy.is_deterministic() && !policy.reads_request_headers()).then(|| memo_key(&request, policy.request_fields()));
        if let Some(remembered) = key.as_deref().and_then(|key| memo.get(policy.generation(), key)) {
            return remembered;
        }
        let listed = if policy.reads_request_headers() { headers() } else { Vec::new() };
        let request = RequestView { headers: HeaderList::Pairs(&listed), ..request };
        let subject = identity.map(|i| i.policy_subject.get_or_init(|| SubjectValue::new(&i.subject)));
        let outcome = match policy.decide(&request, subject) {
            Ok(decision) => Self::outcome(decision, identity),
            Err(e) => {
                // Not remembered: a failure may be passing (a limit reached under load).
                tracing::error!(error = %e, "forward-auth policy failed; denying");
                return Self::outcome(Decision::default(), identity);
            }
        };
        if let Some(key) = key {
            memo.put(policy.generation(), key, outcome.clone());
        }
        outcome
    }

    /// The answer to the proxy for a policy's decision about `identity`.
    fn outcome(decision: Decision, identity: Option<&Identity>) -> Outcome {
        let Decision { allow, status, headers, body } = decision;
        let extra: Vec<(String, String)> = headers.into_iter().filter(|(name, _)| policy_may_set(name)).collect();
        if allow && extra.is_empty() {
            return Outcome::Allow { headers: identity.map(|i| i.headers.clone()).unwrap_or_default() };
        }
        if allow {
            let mut all = identity.map(|i| HeaderMap::clone(&i.headers)).unwrap_or_default();
            // A policy's header replaces an identity header of the same name.
            for (name, value) in &extra {
                if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
                    all.insert(name, value);
                }
            }
            return Outcome::Allow { headers: Arc::new(all) };
        }
        match status {
            Some(401) | None if identity.is_none() => Outcome::Unauthenticated { body },
            status => Outcome::Deny { status: refusal_status(status), headers: extra, body },
        }
    }

    async fn authenticate(&self, presented: Presented<'_>, allow_basic: bool, client: Option<IpAddr>) -> Result<Option<Authenticated>> {
        let found = match presented {
            Presented::None => return Ok(None),
            Presented::Bearer(token) | Presented::Cookie(token) => {
                self.auth.bearer(token).await.map(|bearer| Authenticated::Bearer(bearer, self.ctx.authz.snapshot()))
            }
            Presented::Basic(_, _) if !allow_basic => return Ok(None),
            Presented::Basic(name, password) => match self.auth.authenticate_basic(&name, &password, client).await {
                Ok(principal) => {
                    let owner = self.ctx.store.account(&warden_core::model::NameOrId::Id(principal.account.id), self.ctx.now()).await?;
                    let contact = owner.map(|o| Contact { email: o.email, display_name: o.display_name }).unwrap_or_default();
                    Ok(Authenticated::Basic(principal, contact))
                }
                Err(e) => Err(e),
            },
        };
        match found {
            Ok(who) => Ok(Some(who)),
            // Guessing stays locked out (RateLimited); a store failure is an error.
            Err(ServiceError::Unauthenticated | ServiceError::AuthFailed) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn strength_and_kind(method: AuthMethod) -> (&'static str, &'static str) {
        match method {
            AuthMethod::ApiToken => ("token", "api_token"),
            AuthMethod::Password => ("password", "basic"),
            AuthMethod::Session | AuthMethod::Host => ("password", "session"),
        }
    }

    fn subject_info(who: &Authenticated, tenant: &str, namespace: Option<&str>) -> SubjectInfo {
        let (account, key, index, token_roles) = (who.account(), who.key(), who.index(), who.token_roles());
        let namespace = namespace.and_then(|n| Namespace::parse(n).ok());
        let (level, token_kind) = Self::strength_and_kind(who.method());
        // A session says how it was made (`password+totp`, …); other credentials their kind.
        let strength = match who {
            Authenticated::Bearer(b, _) => match &b.cached.credential {
                Credential::Session(session) => session.auth_strength.as_str(),
                Credential::Api(_) => level,
            },
            Authenticated::Basic(..) => level,
        };
        SubjectInfo {
            id: account.id.to_string(),
            name: account.name.to_string(),
            kind: if account.kind == SubjectKind::User { "user" } else { "service_account" }.to_owned(),
            email: who.contact().email.clone(),
            display_name: who.contact().display_name.clone(),
            groups: index.effective_groups(key).iter().map(ToString::to_string).collect(),
            roles: index
                .roles_of(key)
                .iter()
                .filter(|r| token_roles.is_none_or(|only| only.iter().any(|o| o == r.as_str())))
                .map(ToString::to_string)
                .collect(),
            permissions: index.permissions_of(key, tenant, namespace.as_ref(), token_roles),
            auth_strength: strength.to_owned(),
            token_kind: token_kind.to_owned(),
            tenant: tenant.to_owned(),
        }
    }

    fn identity_headers(&self, s: &SubjectInfo) -> HeaderMap {
        let values = [
            Some(s.name.clone()),
            Some(s.id.clone()),
            s.email.clone(),
            s.display_name.clone(),
            // An empty list is left out, as an absent e-mail is: an upstream that tests for the
            // header's presence must not read "in no group" as "in a group named ''".
            Some(s.groups.join(",")).filter(|v| !v.is_empty()),
            Some(s.roles.join(",")).filter(|v| !v.is_empty()),
            Some(s.permissions.join(",")).filter(|v| !v.is_empty()),
            Some(s.auth_strength.clone()),
        ];
        let mut headers = HeaderMap::with_capacity(values.len() + 1);
        for (name, value) in self.names.iter().zip(values) {
            if let (Some(name), Some(Ok(value))) = (name, value.map(|v| HeaderValue::from_str(&v))) {
                headers.insert(name.clone(), value);
            }
        }
        // An allow has no body (see `Headers`).
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from_static("0"));
        headers
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
                    log_runtime(&policy, &dir);
                    self.policy.store(Some(Arc::new(policy)));
                }
                Err(e) => {
                    tracing::error!(error = %e, dir = %dir.display(), "new forward-auth policy refused; the previous one stays in force");
                }
            }
        }
    }
}

/// Says which engine runs the policy: operators should know when theirs runs slower.
fn log_runtime(policy: &Policy, dir: &std::path::Path) {
    match policy.runtime() {
        Runtime::Vm => tracing::info!(dir = %dir.display(), "forward-auth policy compiled for the Rego VM"),
        Runtime::Interpreter { reason } => {
            tracing::warn!(dir = %dir.display(), %reason, "forward-auth policy runs on the (slower) Rego interpreter");
        }
    }
}

/// Whether a policy may set the header `name`: not the ones that frame the answer or the
/// connection, which Warden's HTTP stack owns (a `Content-Length` that disagrees with the body
/// would leave the proxy waiting).
fn policy_may_set(name: &str) -> bool {
    const FRAMING: [&str; 9] =
        ["content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer", "proxy-connection", "host"];
    !FRAMING.iter().any(|f| f.eq_ignore_ascii_case(name.trim()))
}

/// The status of a refusal: the policy's, unless it names a success or a redirect — a refusal
/// must never let the request through.
fn refusal_status(status: Option<u16>) -> u16 {
    status.filter(|s| *s >= 400).unwrap_or(403)
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

#[cfg(test)]
mod tests {
    use warden_policy::rego::RequestFields;
    use warden_policy::{HeaderList, RequestView};

    use super::{memo_key, policy_may_set, refusal_status};

    #[test]
    fn a_memo_shares_equal_header_maps_and_forgets_other_generations() {
        use std::sync::Arc;

        use http::{HeaderMap, HeaderValue};

        use super::{Memo, Outcome};
        let map = |value: &'static str| {
            let mut m = HeaderMap::new();
            m.insert("x-policy", HeaderValue::from_static(value));
            Arc::new(m)
        };
        let memo = Memo::new(3);
        memo.put(1, "a".into(), Outcome::Allow { headers: map("one") });
        memo.put(1, "b".into(), Outcome::Allow { headers: map("one") });
        memo.put(1, "c".into(), Outcome::Allow { headers: map("two") });
        let headers = |key: &str| match memo.get(1, key) {
            Some(Outcome::Allow { headers }) => headers,
            other => panic!("{other:?}"),
        };
        assert!(Arc::ptr_eq(&headers("a"), &headers("b")), "equal maps are one");
        assert!(!Arc::ptr_eq(&headers("a"), &headers("c")));
        assert!(memo.get(2, "a").is_none(), "another policy load remembers nothing of this one");
        memo.put(1, "d".into(), Outcome::Deny { status: 403, headers: vec![], body: None });
        assert!(memo.get(1, "a").is_none(), "past its bound the memo starts over");
        assert!(matches!(memo.get(1, "d"), Some(Outcome::Deny { status: 403, .. })));
    }

    #[test]
    fn remembered_decisions_are_keyed_by_what_the_policy_reads() {
        let request = |path: &'static str, client: Option<&'static str>| RequestView {
            method: "GET",
            scheme: "https",
            host: "app.example.org",
            path,
            query: "",
            headers: HeaderList::Omitted,
            client,
        };
        let method_only = RequestFields { method: true, ..RequestFields::default() };
        assert_eq!(memo_key(&request("/a", None), method_only), memo_key(&request("/b", Some("203.0.113.1")), method_only));
        let all = RequestFields { headers: false, ..RequestFields::ALL };
        assert_ne!(memo_key(&request("/a", None), all), memo_key(&request("/b", None), all));
        assert_ne!(memo_key(&request("/a", None), all), memo_key(&request("/a", Some("")), all), "no client is not an empty one");
        // Lengths keep fields apart: a path that ends where a query would begin is another key.
        let split = |path: &'static str, query: &'static str| RequestView { query, ..request(path, None) };
        assert_ne!(memo_key(&split("/a1:", "b"), all), memo_key(&split("/a", "1:b"), all));
    }

    #[test]
    fn policies_do_not_frame_the_answer() {
        for owned in ["Content-Length", "transfer-encoding", "Connection", "Upgrade", "Host"] {
            assert!(!policy_may_set(owned), "{owned}");
        }
        for free in ["X-Remote-Policy", "Location", "WWW-Authenticate", "Content-Type", "Cache-Control"] {
            assert!(policy_may_set(free), "{free}");
        }
    }

    #[test]
    fn a_refusal_never_passes() {
        assert_eq!(refusal_status(None), 403);
        assert_eq!(refusal_status(Some(200)), 403);
        assert_eq!(refusal_status(Some(302)), 403);
        assert_eq!(refusal_status(Some(451)), 451);
        assert_eq!(refusal_status(Some(503)), 503);
    }
}
