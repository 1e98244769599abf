//! The store conformance suite: every scenario is written once against `&dyn Store` and run
//! against both backends on real databases.
//!
//! - SQLite: a fresh file in a temporary directory.
//! - PostgreSQL: a throw-away database on the server at 127.0.0.1:5432 (trust auth, user
//!   `postgres`; override the server with `WARDEN_TEST_POSTGRES=postgres://user@host:port`).
//!   An unreachable server FAILS the PostgreSQL tests: CI requires them. Each database is
//!   created with an ICU `en-US` default collation where the server supports it, like a typical
//!   production database, so that nothing silently depends on the "C" collation; servers
//!   without ICU (or older than 15) get their default.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashSet};
use std::future::Future;
use std::sync::Arc;

use serde_json::json;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use time::macros::date;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;
use warden_core::Name;
use warden_core::access::AuthStrength;
use warden_core::api::MemberEntry;
use warden_core::authz::{Binding, Role, RoleSource, Tenant, built_in_bindings};
use warden_core::builtin::{BUILT_IN_GROUPS, DEFAULT_TENANT, IDM_ADMINS_GROUP, SYSTEM_ADMINS_GROUP};
use warden_core::credential::TokenHash;
use warden_core::model::{
    ADMIN_ID, ApiToken, AuditEvent, EmailAddress, Group, IDM_ADMIN_ID, NameOrId, PhoneNumber, PostalAddress, Profile, ServiceAccount,
    Subject, SubjectKind, User,
};
use warden_core::namespace::Namespace;
use warden_core::oidc::{ClaimSet, OidcClient, SigningAlg};
use warden_core::throttle::{Failures, Throttle, ThrottleKey};
use warden_core::transfer::Record;
use warden_store::{
    Action, AuditQuery, BindingFilter, Change, ImportCounts, ImportLine, LineError, ListQuery, MAX_PAGE, NameReservation, OneTimeToken,
    PgStore, Recovery, Registration, RegistrationToken, SessionRecord, SqliteStore, Store, StoreError, TokenPurpose,
};
use warden_store::{CeremonyKind, GrantCreated, NewGrant, PasskeyRecord, PasskeyUse, SigningKeyRecord};

// ---------------------------------------------------------------------------------------------
// Harness.

const DEFAULT_PG_SERVER: &str = "postgres://postgres@127.0.0.1:5432";

/// How long closing a store may take once its scenario is over.
const CLOSE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

fn pg_server() -> String {
    std::env::var("WARDEN_TEST_POSTGRES").unwrap_or_else(|_| DEFAULT_PG_SERVER.to_owned())
}

/// Re-raises a scenario's panic on the test thread (after the database was cleaned up).
fn rethrow(outcome: Result<(), tokio::task::JoinError>) {
    if let Err(e) = outcome {
        if e.is_panic() {
            std::panic::resume_unwind(e.into_panic());
        }
        panic!("scenario did not finish: {e}");
    }
}

async fn run_sqlite<F, Fut>(scenario: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::TempDir::new().expect("temporary directory");
    let url = format!("sqlite://{}/warden.db", dir.path().display());
    let store = Arc::new(SqliteStore::open(&url).await.expect("open the SQLite store"));
    assert_eq!(store.backend(), "sqlite");
    let outcome = tokio::spawn(scenario(store.clone())).await;
    let closed = tokio::time::timeout(CLOSE_DEADLINE, store.close()).await;
    drop(dir);
    rethrow(outcome);
    closed.expect("SqliteStore::close hangs");
}

async fn execute(conn: &mut PgConnection, sql: String) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(AssertSqlSafe(sql)).execute(conn).await.map(|_| ())
}

async fn run_postgres<F, Fut>(scenario: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let server = pg_server();
    let mut admin = PgConnection::connect(&format!("{server}/postgres")).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL at {server} is required by the conformance suite (CI runs it; start one with scripts/postgres-up.sh, \
                 or point WARDEN_TEST_POSTGRES at one): {e}"
        )
    });
    let db = format!("warden_t_{}", Uuid::now_v7().simple());
    let icu = format!("CREATE DATABASE {db} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'");
    if let Err(e) = execute(&mut admin, icu).await {
        eprintln!("no ICU database ({e}); using the server's default collation");
        execute(&mut admin, format!("CREATE DATABASE {db}")).await.expect("CREATE DATABASE");
    }
    let outcome = match PgStore::open(&format!("{server}/{db}")).await {
        Ok(store) => {
            let store = Arc::new(store);
            assert_eq!(store.backend(), "postgres");
            let outcome = tokio::spawn(scenario(store.clone())).await;
            let closed = tokio::time::timeout(CLOSE_DEADLINE, store.close()).await;
            Ok((outcome, closed))
        }
        Err(e) => Err(e),
    };
    let dropped = execute(&mut admin, format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await;
    admin.close().await.ok();
    match outcome {
        Ok((outcome, closed)) => {
            rethrow(outcome);
            closed.expect("PgStore::close hangs: something still holds a pooled connection");
        }
        Err(e) => panic!("cannot open PgStore on {db}: {e}"),
    }
    dropped.expect("DROP DATABASE");
}

/// Generates `sqlite_<name>` and `postgres_<name>` for each scenario. Scenarios take
/// `&dyn Store`, or with `arc` an `Arc<dyn Store>` (to spawn tasks).
macro_rules! conformance {
    ($($scenario:ident $(($arc:ident))? => $sqlite:ident, $postgres:ident;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $sqlite() {
                run_sqlite(|store| async move { conformance!(@call $scenario $($arc)?, store) }).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $postgres() {
                run_postgres(|store| async move { conformance!(@call $scenario $($arc)?, store) }).await;
            }
        )*
    };
    (@call $scenario:ident arc, $store:ident) => { $scenario($store).await };
    (@call $scenario:ident, $store:ident) => { $scenario(&*$store).await };
}

conformance! {
    bootstrap => sqlite_bootstrap, postgres_bootstrap;
    bootstrap_race => sqlite_bootstrap_race, postgres_bootstrap_race;
    users => sqlite_users, postgres_users;
    listing => sqlite_listing, postgres_listing;
    groups_and_nesting => sqlite_groups_and_nesting, postgres_groups_and_nesting;
    service_accounts => sqlite_service_accounts, postgres_service_accounts;
    credentials => sqlite_credentials, postgres_credentials;
    audit => sqlite_audit, postgres_audit;
    concurrency(arc) => sqlite_concurrency, postgres_concurrency;
    tenants => sqlite_tenants, postgres_tenants;
    roles => sqlite_roles, postgres_roles;
    bindings => sqlite_bindings, postgres_bindings;
    graph(arc) => sqlite_graph, postgres_graph;
    events_since => sqlite_events_since, postgres_events_since;
    elevation => sqlite_elevation, postgres_elevation;
    token_scope => sqlite_token_scope, postgres_token_scope;
    ending_sessions => sqlite_ending_sessions, postgres_ending_sessions;
    reserved_names => sqlite_reserved_names, postgres_reserved_names;
    revision_feed => sqlite_revision_feed, postgres_revision_feed;
    login_reservations(arc) => sqlite_login_reservations, postgres_login_reservations;
    group_commit(arc) => sqlite_group_commit, postgres_group_commit;
    transfer => sqlite_transfer, postgres_transfer;
    primary_email => sqlite_primary_email, postgres_primary_email;
    one_time_tokens => sqlite_one_time_tokens, postgres_one_time_tokens;
    one_time_token_race(arc) => sqlite_one_time_token_race, postgres_one_time_token_race;
    user_with_bindings => sqlite_user_with_bindings, postgres_user_with_bindings;
    registration_tokens => sqlite_registration_tokens, postgres_registration_tokens;
    registration_race(arc) => sqlite_registration_race, postgres_registration_race;
    mail_queue(arc) => sqlite_mail_queue, postgres_mail_queue;
    preferences => sqlite_preferences, postgres_preferences;
    session_details => sqlite_session_details, postgres_session_details;
    passkeys(arc) => sqlite_passkeys, postgres_passkeys;
    oidc_clients => sqlite_oidc_clients, postgres_oidc_clients;
    oidc_grants(arc) => sqlite_oidc_grants, postgres_oidc_grants;
}

/// `warden_store::open` picks the backend from the URL and refuses anything else.
#[tokio::test]
async fn open_dispatches_on_the_url() {
    let dir = tempfile::TempDir::new().expect("temporary directory");
    let store = warden_store::open(&format!("sqlite://{}/nested/dir/warden.db", dir.path().display())).await.expect("open");
    assert_eq!(store.backend(), "sqlite");
    assert_eq!(store.revision().await.unwrap(), 0);
    drop(store);
    for url in ["mysql://localhost/warden", "warden.db", ""] {
        let err = warden_store::open(url).await.err().expect("unsupported URL must be refused");
        assert!(matches!(err, StoreError::UnsupportedUrl(ref u) if u == url), "{url:?}: {err:?}");
        assert_eq!(err.code(), "config");
    }
}

/// The database holds password hashes: its file and the WAL and shared-memory files beside it
/// are the server user's alone (0600), whatever the process's umask; a file an older version
/// created readable by others is tightened when the store opens it.
#[tokio::test]
async fn sqlite_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path| std::fs::metadata(path).expect("stat").permissions().mode() & 0o777;
    let dir = tempfile::TempDir::new().expect("temporary directory");
    let db = dir.path().join("data/warden.db");
    let store = warden_store::open(&format!("sqlite://{}", db.display())).await.expect("open");
    store.ensure_builtins(now()).await.expect("a first write");
    assert_eq!(mode(&dir.path().join("data")), 0o700, "the directory");
    for file in ["warden.db", "warden.db-wal", "warden.db-shm"] {
        assert_eq!(mode(&dir.path().join("data").join(file)), 0o600, "{file}");
    }
    store.shutdown().await;
    drop(store);

    let old = dir.path().join("old.db");
    std::fs::write(&old, b"").expect("an empty database file");
    std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let store = warden_store::open(&format!("sqlite://{}", old.display())).await.expect("open");
    assert_eq!(mode(&old), 0o600, "an existing file readable by others is tightened");
    store.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// Now, truncated to milliseconds (what storage keeps).
fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t.replace_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000).unwrap()
}

fn n(name: &str) -> Name {
    Name::parse(name).unwrap_or_else(|e| panic!("{name:?} is not a valid name: {e}"))
}

fn admin() -> Subject {
    Subject { kind: SubjectKind::ServiceAccount, id: ADMIN_ID, name: n("admin") }
}

fn change(action: &'static str, target: &Subject) -> Change {
    Change::new(now(), Some(&admin()), sample(action), Some(target))
}

/// A typed action of the given audit name with placeholder details (the store keeps what it
/// is given; the server's tests check what the details say).
fn sample(name: &str) -> Action {
    let id = Uuid::nil();
    let details = match name {
        "user.create" => json!({ "password": false }),
        "user.update" => json!({ "fields": [] }),
        "user.rename" => json!({ "from": "old", "to": "new" }),
        "account.recover" => json!({ "via": "test" }),
        "auth.login" => json!({ "session_id": id, "client": null }),
        "auth.login.failed" => json!({ "client": null }),
        "auth.logout" | "session.revoke" => json!({ "session_id": id }),
        "auth.reauth" => json!({ "session_id": id, "window_secs": 600 }),
        "api_token.create" => json!({ "token_id": id, "label": null, "expires_at": null, "read_write": false, "roles": null }),
        "api_token.revoke" => json!({ "token_id": id }),
        "group.member.add" | "group.member.remove" => json!({ "member": "user:x", "member_id": id, "member_kind": "user" }),
        "tenant.create" | "tenant.delete" => json!({ "tenant": "t" }),
        "role.create" => json!({ "role": "r", "tenant": null, "permissions": [] }),
        "role.update" => json!({ "role": "r", "permissions": [] }),
        "role.delete" => json!({ "role": "r" }),
        "binding.create" => json!({ "binding": id, "role": "r", "tenant": "t", "namespaces": [] }),
        "binding.delete" => json!({ "binding": id, "role": "r", "tenant": "t" }),
        "credential.passkey.register" | "credential.passkey.rename" => json!({ "passkey_id": id, "name": "key" }),
        "credential.passkey.remove" => json!({ "passkey_id": id }),
        _ => json!({}),
    };
    Action::parse(name, &details).unwrap_or_else(|e| panic!("{e}"))
}

fn new_user(name: &str) -> User {
    let at = now();
    User {
        id: Uuid::now_v7(),
        name: n(name),
        profile: Profile::default(),
        disabled: false,
        valid_from: None,
        expires_at: None,
        has_password: false,
        created_at: at,
        updated_at: at,
    }
}

async fn create_user(store: &dyn Store, name: &str) -> User {
    let user = new_user(name);
    store.create_user(&change("user.create", &user.subject()), &user, None).await.unwrap()
}

fn new_group(name: &str) -> Group {
    let at = now();
    Group {
        id: Uuid::now_v7(),
        name: n(name),
        description: Some(format!("the {name} group")),
        member_count: 0,
        created_at: at,
        updated_at: at,
    }
}

async fn create_group(store: &dyn Store, name: &str) -> Group {
    let group = new_group(name);
    store.create_group(&change("group.create", &group.subject()), &group).await.unwrap()
}

fn new_service_account(name: &str, managed_by: Option<Subject>) -> ServiceAccount {
    let at = now();
    ServiceAccount {
        id: Uuid::now_v7(),
        name: n(name),
        description: Some(format!("{name} bot")),
        managed_by,
        disabled: false,
        created_at: at,
        updated_at: at,
    }
}

async fn create_sa(store: &dyn Store, name: &str, managed_by: Option<Subject>) -> ServiceAccount {
    let sa = new_service_account(name, managed_by);
    store.create_service_account(&change("service_account.create", &sa.subject()), &sa).await.unwrap()
}

fn member_changes(group: &Group, members: &[Subject]) -> Vec<Change> {
    let _ = group;
    members
        .iter()
        .map(|m| {
            let action = Action::MemberAdd { member: m.to_string(), member_id: m.id, member_kind: m.kind, via: None };
            Change::new(now(), Some(&admin()), action, Some(m))
        })
        .collect()
}

async fn add(store: &dyn Store, group: &Group, members: &[Subject]) -> u64 {
    store.add_members(&member_changes(group, members), &group.subject(), members).await.unwrap()
}

/// Every audit event, oldest first.
async fn audit_all(store: &dyn Store) -> Vec<AuditEvent> {
    let page = store.audit(&AuditQuery { limit: MAX_PAGE, ..AuditQuery::default() }).await.unwrap();
    assert!(page.next_cursor.is_none(), "more than {MAX_PAGE} audit events");
    let mut events = page.items;
    events.reverse();
    events
}

async fn audit_count(store: &dyn Store) -> usize {
    audit_all(store).await.len()
}

/// Revision and number of audit events: a failed mutation must leave both unchanged.
async fn state(store: &dyn Store) -> (i64, usize) {
    (store.revision().await.unwrap(), audit_count(store).await)
}

async fn service_account_names(store: &dyn Store) -> Vec<String> {
    let page = store.list_service_accounts(&ListQuery { limit: MAX_PAGE, ..ListQuery::default() }).await.unwrap();
    page.items.into_iter().map(|a| a.name.to_string()).collect()
}

async fn user_names(store: &dyn Store) -> Vec<String> {
    let page = store.list_users(&ListQuery { limit: MAX_PAGE, ..ListQuery::default() }).await.unwrap();
    page.items.into_iter().map(|u| u.name.to_string()).collect()
}

/// Members as `(name, kind, direct)`, in listing order (one big page).
async fn members(store: &dyn Store, group: &Group, effective: bool) -> Vec<(String, SubjectKind, bool)> {
    let page = store.members(group.id, effective, &ListQuery { limit: MAX_PAGE, ..ListQuery::default() }).await.unwrap();
    assert!(page.next_cursor.is_none());
    page.items.into_iter().map(|m| (m.subject.name.to_string(), m.subject.kind, m.direct)).collect()
}

/// Walks every page of a member listing.
async fn members_paged(store: &dyn Store, group: &Group, effective: bool, limit: u32) -> Vec<MemberEntry> {
    let mut all = Vec::new();
    let mut after = None;
    for _ in 0..1000 {
        let page = store.members(group.id, effective, &ListQuery { prefix: None, after: after.clone(), limit }).await.unwrap();
        assert!(page.items.len() <= limit as usize);
        all.extend(page.items);
        match page.next_cursor {
            Some(cursor) => after = Some(cursor),
            None => return all,
        }
    }
    panic!("member paging does not end");
}

fn by_name(key: &str) -> NameOrId {
    NameOrId::Name(n(key))
}

fn m(name: &str, kind: SubjectKind, direct: bool) -> (String, SubjectKind, bool) {
    (name.to_owned(), kind, direct)
}

// ---------------------------------------------------------------------------------------------
// 1. Bootstrap: the break-glass accounts, the built-in groups with their bindings, and the
//    break-glass accounts' memberships in them.

/// The built-in groups as `(name, role)`, spelled out rather than read from the constants.
const BUILT_IN_SHAPE: [(&str, &str); 5] = [
    ("idm_superusers", "idm_superuser"),
    ("system_admins", "system_admin"),
    ("idm_admins", "idm_admin"),
    ("service_desk", "service_desk"),
    ("auditors", "auditor"),
];

async fn group_names(store: &dyn Store) -> Vec<String> {
    let page = store.list_groups(&ListQuery { limit: MAX_PAGE, ..ListQuery::default() }).await.unwrap();
    page.items.into_iter().map(|g| g.name.to_string()).collect()
}

fn sorted_by_id(mut bindings: Vec<Binding>) -> Vec<Binding> {
    bindings.sort_by_key(|b| b.id);
    bindings
}

/// Asserts that the built-ins created at `at` are all there, with their exact shape.
async fn assert_builtins(store: &dyn Store, at: OffsetDateTime) {
    use SubjectKind::ServiceAccount as SA;

    // The break-glass accounts are service accounts: no person, no personal data.
    for (id, name) in [(ADMIN_ID, "admin"), (IDM_ADMIN_ID, "idm_admin")] {
        let account = store.service_account(&by_name(name)).await.unwrap().unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(account.id, id);
        assert_eq!(account.name.as_str(), name);
        assert!(!account.disabled);
        assert!(account.description.is_some());
        assert_eq!(account.created_at, at);
        assert_eq!(store.service_account(&NameOrId::Id(id)).await.unwrap(), Some(account));
        assert_eq!(store.user(&by_name(name)).await.unwrap(), None, "{name} is not a person");
        assert_eq!(store.password_hash(id).await.unwrap(), None, "{name} is created without a credential");
        let owner = store.account(&by_name(name), at).await.unwrap().unwrap();
        assert_eq!(owner.subject, Subject { kind: SubjectKind::ServiceAccount, id, name: n(name) });
        assert!(owner.active);
        assert_eq!((owner.email, owner.display_name), (None, None));
    }

    assert_eq!(BUILT_IN_GROUPS.len(), BUILT_IN_SHAPE.len());
    for (group, (name, role)) in BUILT_IN_GROUPS.iter().zip(BUILT_IN_SHAPE) {
        let stored = store.group(&by_name(name)).await.unwrap().unwrap_or_else(|| panic!("group {name} missing"));
        assert_eq!(stored.id, group.id, "{name} has its fixed id");
        assert_eq!(stored.description.as_deref(), Some(group.description));
        assert_eq!(stored.created_at, at);
        let binding = store.binding(group.binding).await.unwrap().unwrap_or_else(|| panic!("binding of {name} missing"));
        let subject = Subject { kind: SubjectKind::Group, id: group.id, name: n(name) };
        assert_eq!(
            binding,
            Binding {
                id: group.binding,
                role: n(role),
                subject: subject.clone(),
                tenant: n(DEFAULT_TENANT),
                namespaces: vec![],
                created_at: at
            },
            "{name} is bound to {role} in the default tenant, tenant-wide"
        );
        assert_eq!(store.bindings(&BindingFilter { subject: Some(group.id), ..BindingFilter::default() }).await.unwrap(), [binding]);
    }
    let mut names = BUILT_IN_SHAPE.map(|(name, _)| name.to_owned()).to_vec();
    names.sort();
    assert_eq!(group_names(store).await, names);

    // admin ∈ system_admins, idm_admin ∈ idm_admins, and no other built-in group has members.
    let member_lists = [
        ("idm_superusers", vec![]),
        ("system_admins", vec![m("admin", SA, true)]),
        ("idm_admins", vec![m("idm_admin", SA, true)]),
        ("service_desk", vec![]),
        ("auditors", vec![]),
    ];
    for (name, expected) in member_lists {
        let group = store.group(&by_name(name)).await.unwrap().unwrap();
        assert_eq!(members(store, &group, true).await, expected, "members of {name}");
        assert_eq!(group.member_count, expected.len() as u64);
    }

    // Exactly the five built-in bindings; built-in roles are code, not rows.
    assert_eq!(sorted_by_id(store.bindings(&BindingFilter::default()).await.unwrap()), sorted_by_id(built_in_bindings(at)));
    assert!(store.dynamic_roles().await.unwrap().is_empty(), "built-in roles are not stored");
    let (revision, graph) = store.graph().await.unwrap();
    assert_eq!(revision, store.revision().await.unwrap());
    let mut memberships = graph.memberships.clone();
    memberships.sort();
    let mut expected = vec![(SYSTEM_ADMINS_GROUP, SA, ADMIN_ID), (IDM_ADMINS_GROUP, SA, IDM_ADMIN_ID)];
    expected.sort();
    assert_eq!(memberships, expected);
    assert_eq!(graph.groups.len(), 5);
    assert!(graph.roles.is_empty());
    assert_eq!(sorted_by_id(graph.bindings), sorted_by_id(built_in_bindings(at)));
}

async fn bootstrap(store: &dyn Store) {
    let r0 = store.revision().await.unwrap();
    assert_eq!(r0, 0, "a fresh store starts at revision 0");
    assert!(audit_all(store).await.is_empty());
    assert!(group_names(store).await.is_empty());
    assert!(store.bindings(&BindingFilter::default()).await.unwrap().is_empty());

    let at = now();
    store.ensure_builtins(at).await.unwrap();
    let r1 = store.revision().await.unwrap();
    assert_eq!(r1, r0 + 7, "one revision per break-glass account (2) and per built-in group (5)");

    store.ensure_builtins(at + Duration::minutes(5)).await.unwrap();
    assert_eq!(state(store).await, (r1, 7), "ensure_builtins is idempotent");

    assert_builtins(store, at).await;
    assert!(user_names(store).await.is_empty(), "the break-glass accounts are not listed as users");
    assert_eq!(service_account_names(store).await, ["admin", "idm_admin"]);

    // One event per piece: the accounts first, then each group with its binding and members.
    let events = audit_all(store).await;
    assert_eq!(events.len(), 7, "{events:?}");
    assert_eq!(events.iter().map(|e| e.revision).collect::<Vec<_>>(), [1, 2, 3, 4, 5, 6, 7]);
    assert!(events.iter().all(|e| e.actor_id.is_none() && e.actor_name.is_none() && e.at == at));
    let (accounts, groups) = events.split_at(2);
    assert!(accounts.iter().all(|e| e.action == "account.bootstrap" && e.target_kind.as_deref() == Some("service_account")));
    let targets: BTreeSet<_> = accounts.iter().map(|e| (e.target_id.unwrap(), e.target_name.clone().unwrap())).collect();
    assert_eq!(targets, BTreeSet::from([(ADMIN_ID, "admin".to_owned()), (IDM_ADMIN_ID, "idm_admin".to_owned())]));
    for (event, group) in groups.iter().zip(BUILT_IN_GROUPS) {
        assert_eq!(event.action, "group.bootstrap");
        assert_eq!(event.target_kind.as_deref(), Some("group"));
        assert_eq!((event.target_id, event.target_name.as_deref()), (Some(group.id), Some(group.name)));
        assert_eq!(event.details, json!({ "role": group.role, "binding": group.binding }));
    }
    let filtered = store.audit(&AuditQuery { action_prefix: Some("account.bootstrap".into()), ..AuditQuery::default() }).await.unwrap();
    assert_eq!(filtered.items.len(), 2);
    let filtered = store.audit(&AuditQuery { action_prefix: Some("group.bootstrap".into()), ..AuditQuery::default() }).await.unwrap();
    assert_eq!(filtered.items.len(), 5);
}

/// Several nodes starting at once against one database all bootstrap successfully, and every
/// piece is created once.
async fn bootstrap_race(store: &dyn Store) {
    let first = now();
    for round in 0..5 {
        let at = if round == 0 { first } else { now() };
        let (a, b, c, d) =
            tokio::join!(store.ensure_builtins(at), store.ensure_builtins(at), store.ensure_builtins(at), store.ensure_builtins(at));
        for result in [a, b, c, d] {
            result.expect("a concurrent ensure_builtins must not fail");
        }
    }
    assert_eq!(service_account_names(store).await, ["admin", "idm_admin"]);
    assert_eq!(store.revision().await.unwrap(), 7);
    assert_builtins(store, first).await;
    let events = audit_all(store).await;
    assert_eq!(
        events.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        [
            "account.bootstrap",
            "account.bootstrap",
            "group.bootstrap",
            "group.bootstrap",
            "group.bootstrap",
            "group.bootstrap",
            "group.bootstrap"
        ]
    );

    // A missing built-in group comes back whole: group, binding and membership, in one change.
    let idm_admins = store.group(&NameOrId::Id(IDM_ADMINS_GROUP)).await.unwrap().unwrap();
    assert_eq!(store.delete_group(&change("group.delete", &idm_admins.subject()), IDM_ADMINS_GROUP).await.unwrap(), 1);
    let binding = BUILT_IN_GROUPS.iter().find(|g| g.id == IDM_ADMINS_GROUP).unwrap().binding;
    assert_eq!(store.binding(binding).await.unwrap(), None, "the binding goes with its group");
    let before = state(store).await;
    let again = now();
    store.ensure_builtins(again).await.unwrap();
    assert_eq!(state(store).await, (before.0 + 1, before.1 + 1));
    let restored = store.group(&NameOrId::Id(IDM_ADMINS_GROUP)).await.unwrap().unwrap();
    assert_eq!((restored.name.as_str(), restored.created_at), ("idm_admins", again));
    assert_eq!(members(store, &restored, false).await, [m("idm_admin", SubjectKind::ServiceAccount, true)]);
    assert_eq!(store.binding(binding).await.unwrap().unwrap().role.as_str(), "idm_admin");
    assert_eq!(store.bindings(&BindingFilter::default()).await.unwrap().len(), 5);

    // A user who took a break-glass name is not mistaken for the break-glass account.
    store.delete_account(&change("user.delete", &admin()), ADMIN_ID, None).await.unwrap();
    let impostor = create_user(store, "admin").await;
    let before = state(store).await;
    let err = store.ensure_builtins(now()).await.expect_err("the name admin is taken by someone else");
    assert!(matches!(err, StoreError::NameTaken(ref name) if name == "admin"), "{err:?}");
    assert_eq!(state(store).await, before, "a refused bootstrap leaves nothing behind");
    let system_admins = store.group(&NameOrId::Id(SYSTEM_ADMINS_GROUP)).await.unwrap().unwrap();
    assert!(members(store, &system_admins, true).await.is_empty(), "the impostor gets no built-in membership");
    assert!(store.bindings(&BindingFilter { subject: Some(impostor.id), ..BindingFilter::default() }).await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// 2. Users.

fn full_profile() -> Profile {
    Profile {
        display_name: Some("Alice Liddell".into()),
        first_name: Some("Alice".into()),
        last_name: Some("Liddell".into()),
        birthday: Some(date!(1990 - 05 - 17)),
        emails: vec![
            EmailAddress { address: "alice@example.org".into(), primary: true, verified: true },
            EmailAddress { address: "a.liddell@example.com".into(), primary: false, verified: false },
        ],
        phones: vec![
            PhoneNumber { number: "+49 30 1234567".into(), primary: true },
            PhoneNumber { number: "+1 555 0100".into(), primary: false },
        ],
        addresses: vec![
            PostalAddress {
                label: "home".into(),
                street: Some("1 Rabbit Hole".into()),
                locality: Some("Oxford".into()),
                region: Some("Oxfordshire".into()),
                postal_code: Some("OX1 1AA".into()),
                country: Some("GB".into()),
            },
            PostalAddress { label: "billing".into(), country: Some("DE".into()), ..PostalAddress::default() },
        ],
        avatar_url: Some("https://example.org/alice.png".into()),
        fields: [("desk".to_owned(), json!(12)), ("tags".to_owned(), json!(["a", {"b": null}]))].into_iter().collect(),
    }
}

async fn users(store: &dyn Store) {
    let t0 = now();
    let alice = User {
        profile: full_profile(),
        valid_from: Some(t0 - Duration::days(1)),
        expires_at: Some(t0 + Duration::days(30)),
        ..new_user("alice")
    };
    let created = store
        .create_user(&change("user.create", &alice.subject()), &alice, Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"))
        .await
        .unwrap();
    let expected = User { has_password: true, ..alice.clone() };
    assert_eq!(created, expected);
    assert_eq!(store.user(&by_name("alice")).await.unwrap(), Some(expected.clone()));
    assert_eq!(store.user(&NameOrId::Id(alice.id)).await.unwrap(), Some(expected.clone()));
    assert_eq!(store.user(&by_name("nobody")).await.unwrap(), None);
    assert_eq!(store.user(&NameOrId::Id(Uuid::now_v7())).await.unwrap(), None);
    assert_eq!(store.service_account(&by_name("alice")).await.unwrap(), None, "a user is not a service account");
    assert!(store.password_hash(alice.id).await.unwrap().is_some());

    // The validity window decides whether the account is active.
    let active_at = |at: OffsetDateTime| async move { store.account(&by_name("alice"), at).await.unwrap().unwrap().active };
    assert!(active_at(t0).await);
    assert!(!active_at(t0 - Duration::days(2)).await, "before valid_from");
    assert!(!active_at(t0 + Duration::days(30)).await, "at expires_at");

    // Duplicate names: refused, and nothing half-written.
    let before = state(store).await;
    let dup = new_user("alice");
    let err = store.create_user(&change("user.create", &dup.subject()), &dup, Some("hash")).await.unwrap_err();
    assert!(matches!(err, StoreError::NameTaken(ref name) if name == "alice"), "{err:?}");
    assert_eq!(err.code(), "name.taken");
    assert_eq!(state(store).await, before, "a refused create leaves revision and audit alone");
    assert_eq!(user_names(store).await, ["alice"]);
    assert_eq!(store.user(&NameOrId::Id(dup.id)).await.unwrap(), None);
    assert_eq!(store.password_hash(dup.id).await.unwrap(), None);

    // Users and service accounts share one name space.
    let sa = new_service_account("alice", None);
    let err = store.create_service_account(&change("service_account.create", &sa.subject()), &sa).await.unwrap_err();
    assert!(matches!(err, StoreError::NameTaken(ref name) if name == "alice"), "{err:?}");
    assert_eq!(state(store).await, before);
    assert_eq!(store.service_account(&NameOrId::Id(sa.id)).await.unwrap(), None);
    assert!(store.list_service_accounts(&ListQuery::default()).await.unwrap().items.is_empty());
    assert_eq!(store.user(&by_name("alice")).await.unwrap(), Some(expected.clone()));

    // Groups have their own name space.
    let group = create_group(store, "alice").await;
    assert_eq!(store.group(&by_name("alice")).await.unwrap().unwrap().id, group.id);

    // update_user replaces profile, window and disabled flag.
    let updated = User {
        profile: Profile {
            display_name: Some("Alice L.".into()),
            emails: vec![EmailAddress { address: "new@example.org".into(), primary: true, verified: true }],
            ..Profile::default()
        },
        disabled: true,
        valid_from: None,
        expires_at: None,
        updated_at: t0 + Duration::seconds(1),
        ..expected.clone()
    };
    let r = store.revision().await.unwrap();
    assert_eq!(store.update_user(&change("user.update", &updated.subject()), &updated, false).await.unwrap(), updated);
    assert_eq!(store.revision().await.unwrap(), r + 1);
    let read = store.user(&by_name("alice")).await.unwrap().unwrap();
    assert_eq!(read, updated);
    assert!(read.profile.phones.is_empty());
    assert_eq!(read.profile.birthday, None);
    assert_eq!(read.created_at, alice.created_at, "update keeps created_at");
    assert!(read.has_password, "update keeps the password");
    assert!(!active_at(t0).await, "disabled");

    // Updating something that is not a user.
    let before = state(store).await;
    let ghost = new_user("ghost");
    let err = store.update_user(&change("user.update", &ghost.subject()), &ghost, false).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let svc = create_sa(store, "svc", None).await;
    let before_sa = state(store).await;
    assert_eq!(before_sa.0, before.0 + 1);
    let as_user = User { id: svc.id, ..new_user("svc") };
    let err = store.update_user(&change("user.update", &as_user.subject()), &as_user, false).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "update_user must not touch a service account: {err:?}");
    assert_eq!(state(store).await, before_sa);

    // Rename keeps the id; the old name no longer resolves.
    let bob = create_user(store, "bob").await;
    store.rename_account(&change("user.rename", &updated.subject()), alice.id, &n("alice2"), NameReservation::default()).await.unwrap();
    assert_eq!(store.user(&by_name("alice")).await.unwrap(), None);
    let renamed = store.user(&by_name("alice2")).await.unwrap().unwrap();
    assert_eq!(renamed.id, alice.id);
    assert_eq!(renamed.profile, updated.profile);
    assert_eq!(store.user(&NameOrId::Id(alice.id)).await.unwrap().unwrap().name.as_str(), "alice2");

    // Renaming onto a taken name (a user, or a service account) is refused.
    let before = state(store).await;
    for taken in ["bob", "svc"] {
        let err = store
            .rename_account(&change("user.rename", &renamed.subject()), alice.id, &n(taken), NameReservation::default())
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NameTaken(ref name) if name == taken), "{err:?}");
    }
    let err = store
        .rename_account(&change("user.rename", &bob.subject()), Uuid::now_v7(), &n("fresh"), NameReservation::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(state(store).await, before);
    assert_eq!(store.user(&NameOrId::Id(alice.id)).await.unwrap().unwrap().name.as_str(), "alice2");
    assert_eq!(store.user(&by_name("bob")).await.unwrap().unwrap().id, bob.id);

    // A service account can be renamed too (accounts share the operation).
    store.rename_account(&change("user.rename", &svc.subject()), svc.id, &n("svc2"), NameReservation::default()).await.unwrap();
    assert_eq!(store.service_account(&by_name("svc2")).await.unwrap().unwrap().id, svc.id);

    // Delete, then delete again.
    store.delete_account(&change("user.delete", &bob.subject()), bob.id, None).await.unwrap();
    assert_eq!(store.user(&by_name("bob")).await.unwrap(), None);
    assert_eq!(store.user(&NameOrId::Id(bob.id)).await.unwrap(), None);
    assert_eq!(store.account(&by_name("bob"), now()).await.unwrap().map(|o| o.subject), None);
    let before = state(store).await;
    let err = store.delete_account(&change("user.delete", &bob.subject()), bob.id, None).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(err.code(), "not_found");
    assert_eq!(state(store).await, before);
    assert_eq!(user_names(store).await, ["alice2"]);

    // The name is free again once its holder is gone.
    let bob2 = create_user(store, "bob").await;
    assert_ne!(bob2.id, bob.id);

    // A person's own profile edit writes the profile alone: a disable that happened since the
    // person read their account stays.
    let disabled = User { disabled: true, ..bob2.clone() };
    store.update_user(&change("user.disable", &bob2.subject()), &disabled, true).await.unwrap();
    let before = state(store).await;
    let own = Action::ProfileUpdate { fields: vec!["display_name".into()], emails_to_verify: 0 };
    let edit = Change::new(now(), Some(&bob2.subject()), own, Some(&bob2.subject()));
    let profile = Profile { display_name: Some("Bob".into()), ..Profile::default() };
    store.update_profile(&edit, bob2.id, &profile, now(), &[]).await.unwrap();
    assert_eq!(state(store).await, (before.0 + 1, before.1 + 1), "one revision, one event");
    let read = store.user(&NameOrId::Id(bob2.id)).await.unwrap().unwrap();
    assert_eq!((read.profile.display_name.as_deref(), read.disabled), (Some("Bob"), true));
    let err = store.update_profile(&edit, bob.id, &profile, now(), &[]).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(state(store).await, (before.0 + 1, before.1 + 1), "a refused edit writes nothing");
}

// ---------------------------------------------------------------------------------------------
// 3. Listing.

const LIST_NAMES: [&str; 25] = [
    "bob", "alice", "al", "alan", "c_d", "al.b", "carol", "al-b", "al_b", "al0", "bobby", "bo", "c.d", "c-d", "c0", "dave", "d9", "eve",
    "e.v.e", "frank", "gina", "x-ray", "zed", "z_z", "albert",
];

async fn list_all_pages(store: &dyn Store, prefix: Option<&str>, limit: u32) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let query = ListQuery { prefix: prefix.map(str::to_owned), after: after.clone(), limit };
        let page = store.list_users(&query).await.unwrap();
        let names: Vec<String> = page.items.iter().map(|u| u.name.to_string()).collect();
        if let Some(cursor) = &page.next_cursor {
            assert_eq!(Some(cursor), names.last(), "the cursor is the last name of the page");
        }
        pages.push(names);
        match page.next_cursor {
            Some(cursor) => after = Some(cursor),
            None => return pages,
        }
        assert!(pages.len() < 100, "paging does not end");
    }
}

async fn listing(store: &dyn Store) {
    for name in LIST_NAMES {
        create_user(store, name).await;
    }
    let mut expected: Vec<String> = LIST_NAMES.iter().map(|s| (*s).to_owned()).collect();
    expected.sort(); // byte order
    // Spelled out: '-' < '.' < digits < '_' < letters, on both backends.
    assert_eq!(&expected[..8], ["al", "al-b", "al.b", "al0", "al_b", "alan", "albert", "alice"]);

    let pages = list_all_pages(store, None, 10).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [10, 10, 5]);
    let all: Vec<String> = pages.concat();
    assert_eq!(all, expected);
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), 25, "no duplicates");

    // Exactly one full page has no cursor; one less than everything does.
    let exact = store.list_users(&ListQuery { limit: 25, ..ListQuery::default() }).await.unwrap();
    assert_eq!(exact.items.len(), 25);
    assert_eq!(exact.next_cursor, None);
    let short = store.list_users(&ListQuery { limit: 24, ..ListQuery::default() }).await.unwrap();
    assert_eq!(short.items.len(), 24);
    assert_eq!(short.next_cursor.as_deref(), Some(expected[23].as_str()));
    // limit 0 means the default page size.
    assert_eq!(store.list_users(&ListQuery::default()).await.unwrap().items.len(), 25);

    // Prefix filters.
    let al = list_all_pages(store, Some("al"), 100).await.concat();
    assert_eq!(al, ["al", "al-b", "al.b", "al0", "al_b", "alan", "albert", "alice"]);
    let al_paged = list_all_pages(store, Some("al"), 3).await;
    assert_eq!(al_paged.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 2]);
    assert_eq!(al_paged.concat(), al);
    assert_eq!(list_all_pages(store, Some("ali"), 10).await.concat(), ["alice"]);
    assert_eq!(list_all_pages(store, Some("bo"), 10).await.concat(), ["bo", "bob", "bobby"]);
    assert_eq!(list_all_pages(store, Some("c"), 10).await.concat(), ["c-d", "c.d", "c0", "c_d", "carol"]);
    assert_eq!(list_all_pages(store, Some("al."), 10).await.concat(), ["al.b"]);
    assert_eq!(list_all_pages(store, Some("z"), 10).await.concat(), ["z_z", "zed"]);
    assert!(list_all_pages(store, Some("zz"), 10).await.concat().is_empty());
    // A cursor combined with a prefix.
    let after = store.list_users(&ListQuery { prefix: Some("al".into()), after: Some("al_b".into()), limit: 10 }).await.unwrap();
    assert_eq!(after.items.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(), ["alan", "albert", "alice"]);

    // Groups and service accounts list in the same order, each in their own name space.
    for name in ["ops", "c_d", "c.d", "c-d", "c0", "carol"] {
        create_group(store, name).await;
    }
    let groups = store.list_groups(&ListQuery { prefix: Some("c".into()), ..ListQuery::default() }).await.unwrap();
    assert_eq!(groups.items.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(), ["c-d", "c.d", "c0", "c_d", "carol"]);
    let group_pages = store.list_groups(&ListQuery { limit: 4, ..ListQuery::default() }).await.unwrap();
    assert_eq!(group_pages.items.len(), 4);
    let rest = store.list_groups(&ListQuery { after: group_pages.next_cursor, limit: 4, ..ListQuery::default() }).await.unwrap();
    assert_eq!(rest.items.iter().map(|g| g.name.as_str()).collect::<Vec<_>>(), ["carol", "ops"]);
    assert_eq!(rest.next_cursor, None);

    for name in ["svc-b", "svc.a", "svc_c", "svc0"] {
        create_sa(store, name, None).await;
    }
    let sas = store.list_service_accounts(&ListQuery { prefix: Some("svc".into()), ..ListQuery::default() }).await.unwrap();
    assert_eq!(sas.items.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["svc-b", "svc.a", "svc0", "svc_c"]);
    assert_eq!(user_names(store).await.len(), 25, "service accounts are not listed as users");
}

// ---------------------------------------------------------------------------------------------
// 4. Groups and nesting.

async fn groups_and_nesting(store: &dyn Store) {
    use SubjectKind::{Group as G, ServiceAccount as S, User as U};

    let ua1 = create_user(store, "ua1").await;
    let ua2 = create_user(store, "ua2").await;
    let ub1 = create_user(store, "ub1").await;
    let uc1 = create_user(store, "uc1").await;
    let uc2 = create_user(store, "uc2").await;
    let sac = create_sa(store, "sa-c", None).await;
    let ga = create_group(store, "ga").await;
    let gb = create_group(store, "gb").await;
    let gc = create_group(store, "gc").await;
    // A group named like a user: member listings must keep both apart (and page through both).
    let g_uc1 = create_group(store, "uc1").await;

    assert_eq!(store.group(&by_name("ga")).await.unwrap().unwrap(), ga);
    assert_eq!(store.group(&NameOrId::Id(gb.id)).await.unwrap().unwrap(), gb);
    assert_eq!(store.group(&by_name("nope")).await.unwrap(), None);

    // Duplicate group name.
    let before = state(store).await;
    let dup = new_group("ga");
    let err = store.create_group(&change("group.create", &dup.subject()), &dup).await.unwrap_err();
    assert!(matches!(err, StoreError::NameTaken(ref name) if name == "ga"), "{err:?}");
    assert_eq!(state(store).await, before);

    // a ⊃ b ⊃ c.
    assert_eq!(add(store, &ga, &[ua1.subject(), ua2.subject(), gb.subject()]).await, 3);
    assert_eq!(add(store, &gb, &[ub1.subject(), gc.subject()]).await, 2);
    assert_eq!(add(store, &gc, &[uc1.subject(), uc2.subject(), sac.subject(), g_uc1.subject()]).await, 4);
    assert_eq!(store.group(&NameOrId::Id(ga.id)).await.unwrap().unwrap().member_count, 3);
    assert_eq!(store.group(&NameOrId::Id(gc.id)).await.unwrap().unwrap().member_count, 4);

    assert_eq!(members(store, &ga, false).await, [m("gb", G, true), m("ua1", U, true), m("ua2", U, true)]);
    let effective_a = [
        m("gb", G, true),
        m("gc", G, false),
        m("sa-c", S, false),
        m("ua1", U, true),
        m("ua2", U, true),
        m("ub1", U, false),
        m("uc1", G, false),
        m("uc1", U, false),
        m("uc2", U, false),
    ];
    assert_eq!(members(store, &ga, true).await, effective_a);
    assert_eq!(
        members(store, &gb, true).await,
        [m("gc", G, true), m("sa-c", S, false), m("ub1", U, true), m("uc1", G, false), m("uc1", U, false), m("uc2", U, false)]
    );
    assert_eq!(members(store, &gc, false).await, members(store, &gc, true).await, "c has no subgroups with members");
    assert!(members(store, &g_uc1, true).await.is_empty());

    // Member paging, including the user/group name tie.
    for limit in [1, 2, 4] {
        let paged = members_paged(store, &ga, true, limit).await;
        let paged: Vec<_> = paged.into_iter().map(|e| (e.subject.name.to_string(), e.subject.kind, e.direct)).collect();
        assert_eq!(paged, effective_a, "limit {limit}");
    }
    let direct_paged = members_paged(store, &ga, false, 2).await;
    assert_eq!(direct_paged.len(), 3);
    assert_eq!(direct_paged[0].subject, gb.subject());

    // Cycles are refused, and nothing is written.
    let before = state(store).await;
    let snapshot_c = members(store, &gc, false).await;
    for (group, member) in [(&gc, &ga), (&ga, &ga), (&gb, &ga), (&gc, &gb)] {
        let err = store.add_members(&member_changes(group, &[member.subject()]), &group.subject(), &[member.subject()]).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Cycle { group: ref g, member: ref mm } if *g == group.name && *mm == member.name),
            "{} into {}: {err:?}",
            member.name,
            group.name
        );
        assert_eq!(err.code(), "group.cycle");
    }
    // A batch with a cycle in it is refused as a whole.
    let newcomer = create_user(store, "newcomer").await;
    let before = (before.0 + 1, before.1 + 1);
    let batch = [newcomer.subject(), ga.subject()];
    let err = store.add_members(&member_changes(&gc, &batch), &gc.subject(), &batch).await.unwrap_err();
    assert!(matches!(err, StoreError::Cycle { .. }), "{err:?}");
    assert_eq!(state(store).await, before);
    assert_eq!(members(store, &gc, false).await, snapshot_c);

    // Missing group or member.
    let ghost_group = new_group("ghost");
    let err =
        store.add_members(&member_changes(&ghost_group, &[ua1.subject()]), &ghost_group.subject(), &[ua1.subject()]).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let ghost_user = new_user("ghost").subject();
    let err = store.add_members(&member_changes(&gc, std::slice::from_ref(&ghost_user)), &gc.subject(), &[ghost_user]).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(state(store).await, before);

    // Members already there are skipped.
    let (rev, events) = state(store).await;
    assert_eq!(add(store, &ga, &[ua1.subject(), ub1.subject(), ub1.subject()]).await, 1, "only ub1 is new (once)");
    assert_eq!(state(store).await, (rev + 1, events + 1), "one transaction, one event per added member");
    assert_eq!(members(store, &ga, true).await.into_iter().find(|e| e.0 == "ub1"), Some(m("ub1", U, true)));
    let before = state(store).await;
    assert_eq!(add(store, &ga, &[ua1.subject(), gb.subject()]).await, 0);
    assert_eq!(state(store).await, before, "adding nothing changes nothing");

    // remove_member.
    assert!(store.remove_member(&change("group.member.remove", &ub1.subject()), ga.id, &ub1.subject()).await.unwrap());
    let before = state(store).await;
    assert!(!store.remove_member(&change("group.member.remove", &ub1.subject()), ga.id, &ub1.subject()).await.unwrap());
    assert_eq!(state(store).await, before, "removing a non-member changes nothing");
    assert_eq!(members(store, &ga, true).await, effective_a, "ub1 is still an indirect member");

    // Deleting b drops its memberships (both ways) but no account and no other group.
    let removed = store.delete_group(&change("group.delete", &gb.subject()), gb.id).await.unwrap();
    assert_eq!(removed, 3, "a⊃b, b⊃ub1, b⊃c");
    let event = audit_all(store).await.pop().unwrap();
    assert_eq!(event.action, "group.delete");
    assert_eq!(event.details["memberships_removed"], json!(3));
    assert_eq!(store.group(&NameOrId::Id(gb.id)).await.unwrap(), None);
    assert_eq!(members(store, &ga, true).await, [m("ua1", U, true), m("ua2", U, true)]);
    assert_eq!(members(store, &gc, false).await, snapshot_c, "c keeps its members");
    for user in [&ua1, &ua2, &ub1, &uc1, &uc2] {
        assert!(store.user(&NameOrId::Id(user.id)).await.unwrap().is_some(), "{} survives", user.name);
    }
    assert!(store.service_account(&NameOrId::Id(sac.id)).await.unwrap().is_some());
    let before = state(store).await;
    let err = store.delete_group(&change("group.delete", &gb.subject()), gb.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(state(store).await, before);

    // Deleting an account removes it from every group.
    add(store, &ga, &[uc1.subject()]).await;
    store.delete_account(&change("user.delete", &uc1.subject()), uc1.id, None).await.unwrap();
    assert_eq!(members(store, &ga, true).await, [m("ua1", U, true), m("ua2", U, true)]);
    assert_eq!(members(store, &gc, false).await, [m("sa-c", S, true), m("uc1", G, true), m("uc2", U, true)]);
    assert_eq!(store.group(&NameOrId::Id(gc.id)).await.unwrap().unwrap().member_count, 3);
    store.delete_account(&change("user.delete", &sac.subject()), sac.id, None).await.unwrap();
    assert_eq!(members(store, &gc, false).await, [m("uc1", G, true), m("uc2", U, true)]);
}

// ---------------------------------------------------------------------------------------------
// 5. Service accounts.

async fn service_accounts(store: &dyn Store) {
    let owner = create_user(store, "owner").await;
    let ops = create_group(store, "ops").await;
    let ci = create_sa(store, "ci-bot", Some(ops.subject())).await;
    let deploy = create_sa(store, "deploy", Some(owner.subject())).await;
    let lonely = create_sa(store, "lonely", None).await;
    // A service account managed by another service account.
    create_sa(store, "sub-bot", Some(ci.subject())).await;

    assert_eq!(store.service_account(&by_name("ci-bot")).await.unwrap(), Some(ci.clone()));
    assert_eq!(store.service_account(&NameOrId::Id(ci.id)).await.unwrap().unwrap().managed_by, Some(ops.subject()));
    assert_eq!(store.service_account(&by_name("deploy")).await.unwrap(), Some(deploy.clone()));
    assert_eq!(deploy.managed_by, Some(owner.subject()));
    assert_eq!(store.service_account(&by_name("lonely")).await.unwrap().unwrap().managed_by, None);
    assert_eq!(store.service_account(&by_name("sub-bot")).await.unwrap().unwrap().managed_by, Some(ci.subject()));
    assert_eq!(store.user(&by_name("ci-bot")).await.unwrap(), None, "a service account is not a user");
    let owner_sub = store.account(&by_name("ci-bot"), now()).await.unwrap().unwrap();
    assert_eq!(owner_sub.subject, ci.subject());
    assert!(owner_sub.active);

    // A manager that does not exist.
    let before = state(store).await;
    let orphan = new_service_account("orphan", Some(new_group("phantom").subject()));
    let err = store.create_service_account(&change("service_account.create", &orphan.subject()), &orphan).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let orphan = new_service_account("orphan", Some(new_user("phantom").subject()));
    let err = store.create_service_account(&change("service_account.create", &orphan.subject()), &orphan).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(state(store).await, before);
    assert_eq!(store.service_account(&by_name("orphan")).await.unwrap(), None);

    // A disabled service account is not active.
    let off = ServiceAccount { disabled: true, ..new_service_account("off", None) };
    store.create_service_account(&change("service_account.create", &off.subject()), &off).await.unwrap();
    assert!(store.service_account(&by_name("off")).await.unwrap().unwrap().disabled);
    assert!(!store.account(&by_name("off"), now()).await.unwrap().unwrap().active);

    let listed = store.list_service_accounts(&ListQuery::default()).await.unwrap();
    assert_eq!(listed.items.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["ci-bot", "deploy", "lonely", "off", "sub-bot"]);
    assert_eq!(user_names(store).await, ["owner"]);

    // Deleting a manager leaves the service account unmanaged.
    store.delete_group(&change("group.delete", &ops.subject()), ops.id).await.unwrap();
    let ci_now = store.service_account(&NameOrId::Id(ci.id)).await.unwrap().expect("the service account survives its group");
    assert_eq!(ci_now.managed_by, None);
    store.delete_account(&change("user.delete", &owner.subject()), owner.id, None).await.unwrap();
    assert_eq!(store.service_account(&by_name("deploy")).await.unwrap().expect("survives its manager").managed_by, None);
    store.delete_account(&change("user.delete", &ci.subject()), ci.id, None).await.unwrap();
    assert_eq!(store.service_account(&by_name("sub-bot")).await.unwrap().unwrap().managed_by, None);

    // Names shared across name spaces.
    let shared_sa = create_sa(store, "shared", None).await;
    let shared_group = create_group(store, "shared").await;
    let mut named = store.subjects_named(&n("shared")).await.unwrap();
    named.sort_by_key(|s| s.kind);
    assert_eq!(named, [shared_sa.subject(), shared_group.subject()]);
    assert_eq!(store.subjects_named(&n("lonely")).await.unwrap(), [lonely.subject()]);
    assert!(store.subjects_named(&n("nobody")).await.unwrap().is_empty());

    // subject_by_id with and without a kind.
    assert_eq!(store.subject_by_id(None, shared_sa.id).await.unwrap(), Some(shared_sa.subject()));
    assert_eq!(store.subject_by_id(Some(SubjectKind::ServiceAccount), shared_sa.id).await.unwrap(), Some(shared_sa.subject()));
    assert_eq!(store.subject_by_id(Some(SubjectKind::User), shared_sa.id).await.unwrap(), None);
    assert_eq!(store.subject_by_id(Some(SubjectKind::Group), shared_sa.id).await.unwrap(), None);
    assert_eq!(store.subject_by_id(Some(SubjectKind::Group), shared_group.id).await.unwrap(), Some(shared_group.subject()));
    assert_eq!(store.subject_by_id(None, shared_group.id).await.unwrap(), Some(shared_group.subject()));
    assert_eq!(store.subject_by_id(Some(SubjectKind::ServiceAccount), shared_group.id).await.unwrap(), None);
    let user = create_user(store, "person").await;
    assert_eq!(store.subject_by_id(Some(SubjectKind::User), user.id).await.unwrap(), Some(user.subject()));
    assert_eq!(store.subject_by_id(None, Uuid::now_v7()).await.unwrap(), None);
    assert_eq!(store.subject_by_id(None, ci.id).await.unwrap(), None, "deleted");
}

// ---------------------------------------------------------------------------------------------
// 6. Credentials.

async fn credentials(store: &dyn Store) {
    let carol = create_user(store, "carol").await;
    assert!(!carol.has_password);
    assert_eq!(store.password_hash(carol.id).await.unwrap(), None);

    store.set_password_hash(&change("credential.password.set", &carol.subject()), carol.id, "hash-1", false).await.unwrap();
    assert_eq!(store.password_hash(carol.id).await.unwrap().as_deref(), Some("hash-1"));
    assert!(store.user(&NameOrId::Id(carol.id)).await.unwrap().unwrap().has_password);
    store.set_password_hash(&change("credential.password.set", &carol.subject()), carol.id, "hash-2", false).await.unwrap();
    assert_eq!(store.password_hash(carol.id).await.unwrap().as_deref(), Some("hash-2"), "replaced");
    let before = state(store).await;
    let ghost = Uuid::now_v7();
    let err = store.set_password_hash(&change("credential.password.set", &carol.subject()), ghost, "hash", true).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(state(store).await, before);
    assert_eq!(store.password_hash(ghost).await.unwrap(), None);

    // Sessions.
    let t0 = now();
    let session = SessionRecord {
        id: Uuid::now_v7(),
        account_id: carol.id,
        created_at: t0,
        expires_at: t0 + Duration::hours(8),
        idle_timeout_secs: 1800,
        last_seen_at: t0,
        elevated_until: None,
        client: None,
        user_agent: None,
        auth_strength: AuthStrength::Password,
    };
    let token = TokenHash::of("wds_session-one");
    let r = store.revision().await.unwrap();
    store.create_session(&change("auth.login", &carol.subject()), &session, &token).await.unwrap();
    assert_eq!(store.revision().await.unwrap(), r, "a login is bookkeeping: audited, no revision");
    let (found, owner) = store.session(&token, t0).await.unwrap().expect("session found by its hash");
    assert_eq!(found, session);
    assert_eq!(owner.subject, carol.subject());
    assert!(owner.active);
    assert!(store.session(&TokenHash::of("wds_other"), t0).await.unwrap().is_none());

    // Changing the password without ending sessions keeps them.
    store.set_password_hash(&change("credential.password.set", &carol.subject()), carol.id, "hash-2", false).await.unwrap();
    assert!(store.session(&token, t0).await.unwrap().is_some());

    // A session for an account that does not exist.
    let before = state(store).await;
    let stray = SessionRecord { id: Uuid::now_v7(), account_id: ghost, ..session.clone() };
    assert!(store.create_session(&change("auth.login", &carol.subject()), &stray, &TokenHash::of("wds_stray")).await.is_err());
    assert_eq!(state(store).await, before);
    // The same token hash twice.
    let twin = SessionRecord { id: Uuid::now_v7(), ..session.clone() };
    assert!(store.create_session(&change("auth.login", &carol.subject()), &twin, &token).await.is_err());
    assert_eq!(state(store).await, before);

    // Touching is bookkeeping: no revision, no event.
    let t1 = t0 + Duration::minutes(10);
    store.touch_session(session.id, t1).await.unwrap();
    assert_eq!(state(store).await, before);
    let (touched, _) = store.session(&token, t1).await.unwrap().unwrap();
    assert_eq!(touched.last_seen_at, t1);
    assert_eq!(touched.created_at, t0);

    // Liveness: idle timeout and absolute expiry.
    assert!(touched.is_live(t1));
    assert!(touched.is_live(t1 + Duration::minutes(29)));
    assert!(!touched.is_live(t1 + Duration::minutes(30)), "idle for the whole timeout");
    assert!(!found.is_live(t0 + Duration::minutes(35)), "without the touch it would be idle");
    let busy = SessionRecord { last_seen_at: t0 + Duration::hours(8) - Duration::seconds(1), ..touched.clone() };
    assert!(busy.is_live(t0 + Duration::hours(8) - Duration::milliseconds(1)));
    assert!(!busy.is_live(t0 + Duration::hours(8)), "absolute expiry");

    // The owner of a disabled account's session is not active; nor outside the window.
    let disabled = User { disabled: true, has_password: true, ..carol.clone() };
    store.update_user(&change("user.update", &carol.subject()), &disabled, false).await.unwrap();
    let (_, owner) = store.session(&token, t1).await.unwrap().unwrap();
    assert!(!owner.active);
    let windowed = User { disabled: false, expires_at: Some(t1), has_password: true, ..carol.clone() };
    store.update_user(&change("user.update", &carol.subject()), &windowed, false).await.unwrap();
    assert!(store.session(&token, t1 - Duration::milliseconds(1)).await.unwrap().unwrap().1.active);
    assert!(!store.session(&token, t1).await.unwrap().unwrap().1.active);
    store.update_user(&change("user.update", &carol.subject()), &User { has_password: true, ..carol.clone() }, false).await.unwrap();

    // Deleting a session.
    assert!(store.delete_session(&change("auth.logout", &carol.subject()), session.id).await.unwrap());
    assert!(store.session(&token, t1).await.unwrap().is_none());
    let before = state(store).await;
    assert!(!store.delete_session(&change("auth.logout", &carol.subject()), session.id).await.unwrap());
    assert_eq!(state(store).await, before, "deleting nothing changes nothing");

    // Purging: only what can no longer authenticate goes, in one audited change.
    let p0 = t0 + Duration::days(30);
    let fresh =
        SessionRecord { id: Uuid::now_v7(), created_at: p0, expires_at: p0 + Duration::hours(8), last_seen_at: p0, ..session.clone() };
    let idle = SessionRecord { id: Uuid::now_v7(), created_at: p0, last_seen_at: p0 - Duration::minutes(30), ..fresh.clone() };
    let over = SessionRecord { id: Uuid::now_v7(), created_at: p0 - Duration::hours(8), expires_at: p0, last_seen_at: p0, ..fresh.clone() };
    let hashes = [TokenHash::of("wds_fresh"), TokenHash::of("wds_idle"), TokenHash::of("wds_over")];
    for (record, hash) in [&fresh, &idle, &over].into_iter().zip(&hashes) {
        store.create_session(&change("auth.login", &carol.subject()), record, hash).await.unwrap();
    }
    let before = state(store).await;
    assert_eq!(store.purge_sessions(&change("session.purge", &carol.subject()), p0 - Duration::minutes(1)).await.unwrap(), 0);
    assert_eq!(state(store).await, before, "purging nothing changes nothing");
    assert_eq!(store.purge_sessions(&change("session.purge", &carol.subject()), p0).await.unwrap(), 2);
    assert_eq!(state(store).await, (before.0, before.1 + 1), "one event; bookkeeping, no revision");
    let event = audit_all(store).await.into_iter().find(|e| e.action == "session.purge").expect("the purge is audited");
    assert_eq!(event.details["count"], 2);
    assert!(store.session(&hashes[0], p0).await.unwrap().is_some(), "a live session stays");
    for gone in &hashes[1..] {
        assert!(store.session(gone, p0).await.unwrap().is_none());
    }
    store.delete_session(&change("auth.logout", &carol.subject()), fresh.id).await.unwrap();

    // Login attempts: reserved before the check, bookkeeping shared by the nodes, by key digest.
    let (pair, name_key, client_key) = (
        ThrottleKey::name_from("carol", Some("203.0.113.7".parse().unwrap())),
        ThrottleKey::name("carol"),
        ThrottleKey::client("203.0.113.7".parse().unwrap()),
    );
    let day = Duration::hours(24);
    let strict = Throttle::new(2, day, Duration::minutes(15));
    let loose = Throttle::new(10, day, Duration::minutes(15));
    let keys = [(pair, strict), (name_key, loose), (client_key, loose)];
    let before = state(store).await;
    let first = store.reserve_login_attempt(&keys, p0).await.unwrap().expect("nothing on record");
    let second = store.reserve_login_attempt(&keys, p0).await.unwrap().expect("the second of two free ones");
    assert_ne!(first, second);
    assert_eq!(store.reserve_login_attempt(&keys, p0).await.unwrap(), Err(Duration::seconds(1)), "two in flight: the third waits");
    assert_eq!(state(store).await, before, "no revision, no event");
    assert_eq!(store.login_failures(&pair, p0 - day).await.unwrap(), Failures { count: 2, latest: Some(p0) }, "a refusal records nothing");
    // A success takes its own attempt back and clears the keys it is given.
    store.login_succeeded(first, &[]).await.unwrap();
    assert_eq!(store.login_failures(&pair, p0 - day).await.unwrap().count, 1);
    assert_eq!(store.login_failures(&client_key, p0 - day).await.unwrap().count, 1);
    let third = store.reserve_login_attempt(&keys, p0 + Duration::seconds(5)).await.unwrap().expect("a place again");
    store.login_succeeded(third, &[pair]).await.unwrap();
    assert_eq!(store.login_failures(&pair, p0 - day).await.unwrap(), Failures::default(), "cleared");
    assert_eq!(store.login_failures(&name_key, p0 - day).await.unwrap().count, 1, "other keys keep the failed attempt");
    assert_eq!(store.login_failures(&name_key, p0).await.unwrap().count, 0, "only after `since`");
    // Host recovery forgets every attempt at a name, under all of their keys.
    store.forget_login_attempts(&name_key).await.unwrap();
    for key in [pair, name_key, client_key] {
        assert_eq!(store.login_failures(&key, p0 - day).await.unwrap(), Failures::default());
    }
    // An administrator's unlock does the same, with its event (bookkeeping: no revision).
    store.reserve_login_attempt(&keys, p0 + Duration::seconds(10)).await.unwrap().unwrap();
    store.reserve_login_attempt(&keys, p0 + Duration::seconds(10)).await.unwrap().unwrap();
    let before = state(store).await;
    let unlock = Action::CredentialUnlock { name: "carol".into(), failures_cleared: 0 };
    let removed = store.unlock_login(&Change::new(now(), Some(&admin()), unlock, Some(&carol.subject())), &name_key).await.unwrap();
    assert_eq!(removed, 6, "two attempts under three keys each");
    assert_eq!(state(store).await, (before.0, before.1 + 1), "one event, no revision");
    for key in [pair, name_key, client_key] {
        assert_eq!(store.login_failures(&key, p0 - day).await.unwrap(), Failures::default());
    }
    let event = audit_all(store).await.into_iter().find(|e| e.action == "credential.unlock").expect("the unlock is audited");
    assert_eq!((event.details["name"].as_str(), event.details["failures_cleared"].as_u64()), (Some("carol"), Some(6)));
    // A reservation forgets what no key's window holds any more.
    let other = [(ThrottleKey::name("dave"), loose)];
    store.reserve_login_attempt(&other, p0).await.unwrap().unwrap();
    store.reserve_login_attempt(&keys, p0 + day + Duration::seconds(1)).await.unwrap().unwrap();
    assert_eq!(store.login_failures(&ThrottleKey::name("dave"), p0 - day).await.unwrap(), Failures::default());

    // A password reset that ends sessions ends all of them, in the same change.
    let (t3, t4) = (TokenHash::of("wds_three"), TokenHash::of("wds_four"));
    for t in [&t3, &t4] {
        let record = SessionRecord { id: Uuid::now_v7(), ..session.clone() };
        store.create_session(&change("auth.login", &carol.subject()), &record, t).await.unwrap();
    }
    let before = state(store).await;
    store.set_password_hash(&change("credential.password.set", &carol.subject()), carol.id, "hash-3", true).await.unwrap();
    assert_eq!(state(store).await, (before.0 + 1, before.1 + 1), "one revision, one event");
    assert!(store.session(&t3, t0).await.unwrap().is_none());
    assert!(store.session(&t4, t0).await.unwrap().is_none());
    assert_eq!(store.password_hash(carol.id).await.unwrap().as_deref(), Some("hash-3"));
    // Ending sessions for a missing account changes nothing either.
    let err = store.set_password_hash(&change("credential.password.set", &carol.subject()), ghost, "h", true).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(state(store).await, (before.0 + 1, before.1 + 1));

    // A person's own change keeps the session it came through and ends the others, in one
    // change that records how many.
    let (keep, other) = (SessionRecord { id: Uuid::now_v7(), ..session.clone() }, SessionRecord { id: Uuid::now_v7(), ..session.clone() });
    let (t5, t6) = (TokenHash::of("wds_five"), TokenHash::of("wds_six"));
    store.create_session(&change("auth.login", &carol.subject()), &keep, &t5).await.unwrap();
    store.create_session(&change("auth.login", &carol.subject()), &other, &t6).await.unwrap();
    let before = state(store).await;
    let own = Action::PasswordChange { session_kept: keep.id, client: None, sessions_ended: 0 };
    let by_carol = Change::new(now(), Some(&carol.subject()), own, Some(&carol.subject()));
    store.change_password(&by_carol, carol.id, "hash-4", keep.id).await.unwrap();
    assert_eq!(state(store).await, (before.0 + 1, before.1 + 1), "one revision, one event");
    assert!(store.session(&t5, t0).await.unwrap().is_some(), "the session kept");
    assert!(store.session(&t6, t0).await.unwrap().is_none());
    assert_eq!(store.password_hash(carol.id).await.unwrap().as_deref(), Some("hash-4"));
    let event = audit_all(store).await.into_iter().find(|e| e.action == "credential.password.change").unwrap();
    assert_eq!(event.details["sessions_ended"], 1);
    let err = store.change_password(&by_carol, ghost, "h", keep.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(state(store).await, (before.0 + 1, before.1 + 1), "a refused change writes nothing");

    // API tokens, for a user and for a service account.
    let bot = create_sa(store, "bot", None).await;
    let tok = ApiToken {
        id: Uuid::now_v7(),
        account_id: carol.id,
        label: Some("laptop".into()),
        created_at: t0,
        expires_at: Some(t0 + Duration::days(90)),
        last_used_at: None,
        revoked_at: None,
        read_write: false,
        roles: None,
    };
    let tok2 = ApiToken { id: Uuid::now_v7(), label: None, created_at: t0 + Duration::seconds(1), expires_at: None, ..tok.clone() };
    let bot_tok = ApiToken { id: Uuid::now_v7(), account_id: bot.id, label: Some("ci".into()), ..tok2.clone() };
    let (h1, h2, hb) = (TokenHash::of("wdn_one"), TokenHash::of("wdn_two"), TokenHash::of("wdn_bot"));
    store.create_api_token(&change("api_token.create", &carol.subject()), &tok, &h1).await.unwrap();
    store.create_api_token(&change("api_token.create", &carol.subject()), &tok2, &h2).await.unwrap();
    store.create_api_token(&change("api_token.create", &bot.subject()), &bot_tok, &hb).await.unwrap();
    let before = state(store).await;
    let stray = ApiToken { id: Uuid::now_v7(), account_id: ghost, ..tok.clone() };
    let err = store.create_api_token(&change("api_token.create", &carol.subject()), &stray, &TokenHash::of("wdn_stray")).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(state(store).await, before);

    let (found, owner) = store.api_token(&h1, t0).await.unwrap().unwrap();
    assert_eq!(found, tok);
    assert_eq!(owner.subject, carol.subject());
    assert!(owner.active);
    let (found, owner) = store.api_token(&hb, t0).await.unwrap().unwrap();
    assert_eq!(found, bot_tok);
    assert_eq!(owner.subject, bot.subject());
    assert!(store.api_token(&TokenHash::of("wdn_nope"), t0).await.unwrap().is_none());
    assert_eq!(store.list_api_tokens(carol.id).await.unwrap(), [tok.clone(), tok2.clone()]);
    assert_eq!(store.list_api_tokens(bot.id).await.unwrap(), std::slice::from_ref(&bot_tok));
    assert!(store.list_api_tokens(ghost).await.unwrap().is_empty());

    let used = t0 + Duration::minutes(3);
    store.touch_api_token(tok.id, used).await.unwrap();
    assert_eq!(state(store).await, before, "touching a token is bookkeeping");
    assert_eq!(store.api_token(&h1, used).await.unwrap().unwrap().0.last_used_at, Some(used));
    assert_eq!(store.api_token(&h2, used).await.unwrap().unwrap().0.last_used_at, None);

    // Revocation: once, only by the owning account.
    let before = state(store).await;
    assert!(!store.revoke_api_token(&change("api_token.revoke", &bot.subject()), bot.id, tok.id).await.unwrap(), "not bot's token");
    assert_eq!(state(store).await, before);
    let revoke = change("api_token.revoke", &carol.subject());
    assert!(store.revoke_api_token(&revoke, carol.id, tok.id).await.unwrap());
    let after_revoke = state(store).await;
    assert_eq!(after_revoke, (before.0 + 1, before.1 + 1));
    assert!(!store.revoke_api_token(&change("api_token.revoke", &carol.subject()), carol.id, tok.id).await.unwrap());
    assert_eq!(state(store).await, after_revoke);
    let (revoked, _) = store.api_token(&h1, used).await.unwrap().expect("a revoked token is still found");
    assert_eq!(revoked.revoked_at, Some(revoke.at));
    assert!(!revoked.is_usable(used));
    assert_eq!(store.list_api_tokens(carol.id).await.unwrap()[0].revoked_at, Some(revoke.at));

    // Deleting the account drops its password, sessions and tokens.
    let token2 = TokenHash::of("wds_session-two");
    let session2 = SessionRecord { id: Uuid::now_v7(), ..session.clone() };
    store.create_session(&change("auth.login", &carol.subject()), &session2, &token2).await.unwrap();
    assert!(store.session(&token2, t0).await.unwrap().is_some());
    store.delete_account(&change("user.delete", &carol.subject()), carol.id, None).await.unwrap();
    assert!(store.session(&token2, t0).await.unwrap().is_none());
    assert!(store.api_token(&h1, t0).await.unwrap().is_none());
    assert!(store.api_token(&h2, t0).await.unwrap().is_none());
    assert!(store.list_api_tokens(carol.id).await.unwrap().is_empty());
    assert_eq!(store.password_hash(carol.id).await.unwrap(), None);
    assert!(store.api_token(&hb, t0).await.unwrap().is_some(), "other accounts keep their tokens");
    store.delete_account(&change("user.delete", &bot.subject()), bot.id, None).await.unwrap();
    assert!(store.api_token(&hb, t0).await.unwrap().is_none());
}

// ---------------------------------------------------------------------------------------------
// 7. Audit.

async fn audit_pages(store: &dyn Store, query: &AuditQuery) -> Vec<AuditEvent> {
    let mut all = Vec::new();
    let mut query = query.clone();
    loop {
        let page = store.audit(&query).await.unwrap();
        assert!(page.items.len() <= query.limit as usize);
        all.extend(page.items);
        match page.next_cursor {
            Some(cursor) => query.before_seq = Some(cursor.parse().expect("the audit cursor is a sequence number")),
            None => return all,
        }
        assert!(all.len() < 10_000, "audit paging does not end");
    }
}

async fn audit(store: &dyn Store) {
    let t0 = now();
    let at = |i: i64| t0 + Duration::seconds(i);
    let ops = Subject { kind: SubjectKind::ServiceAccount, id: Uuid::now_v7(), name: n("ops-bot") };
    let mut expected: Vec<(&str, Option<String>, Option<String>)> = Vec::new();

    let alice = new_user("alice");
    let c = Change::new(at(1), Some(&admin()), Action::UserCreate { password: true }, Some(&alice.subject()));
    store.create_user(&c, &alice, None).await.unwrap();
    expected.push(("user.create", Some("admin".into()), Some("alice".into())));

    let bob = new_user("bob");
    store.create_user(&Change::new(at(2), Some(&ops), sample("user.create"), Some(&bob.subject())), &bob, None).await.unwrap();
    expected.push(("user.create", Some("ops-bot".into()), Some("bob".into())));

    // A refused mutation leaves no trace.
    let dup = new_user("bob");
    store.create_user(&Change::new(at(2), Some(&ops), sample("user.create"), Some(&dup.subject())), &dup, None).await.unwrap_err();

    let staff = new_group("staff");
    store.create_group(&Change::new(at(3), Some(&admin()), sample("group.create"), Some(&staff.subject())), &staff).await.unwrap();
    expected.push(("group.create", Some("admin".into()), Some("staff".into())));

    let members = [alice.subject(), bob.subject()];
    let changes: Vec<Change> = members.iter().map(|m| Change::new(at(4), Some(&ops), sample("group.member.add"), Some(m))).collect();
    assert_eq!(store.add_members(&changes, &staff.subject(), &members).await.unwrap(), 2);
    expected.push(("group.member.add", Some("ops-bot".into()), Some("alice".into())));
    expected.push(("group.member.add", Some("ops-bot".into()), Some("bob".into())));

    store
        .set_password_hash(
            &Change::new(at(5), Some(&admin()), sample("credential.password.set"), Some(&alice.subject())),
            alice.id,
            "h",
            false,
        )
        .await
        .unwrap();
    expected.push(("credential.password.set", Some("admin".into()), Some("alice".into())));

    // An event with no actor and no target.
    store.record(&Change::new(at(6), None, Action::AccountRecover { via: "host".into() }, None)).await.unwrap();
    expected.push(("account.recover", None, None));

    store.record(&Change::new(at(7), None, sample("auth.login.failed"), Some(&alice.subject()))).await.unwrap();
    expected.push(("auth.login.failed", None, Some("alice".into())));

    store
        .remove_member(&Change::new(at(8), Some(&admin()), sample("group.member.remove"), Some(&bob.subject())), staff.id, &bob.subject())
        .await
        .unwrap();
    expected.push(("group.member.remove", Some("admin".into()), Some("bob".into())));

    store
        .rename_account(
            &Change::new(at(9), Some(&ops), sample("user.rename"), Some(&bob.subject())),
            bob.id,
            &n("robert"),
            NameReservation::default(),
        )
        .await
        .unwrap();
    expected.push(("user.rename", Some("ops-bot".into()), Some("bob".into())));

    // An action whose name starts another's, which a careless prefix filter confuses.
    store.record(&Change::new(at(10), Some(&ops), sample("auth.login"), None)).await.unwrap();
    expected.push(("auth.login", Some("ops-bot".into()), None));
    store.record(&Change::new(at(11), Some(&ops), sample("auth.login.failed"), None)).await.unwrap();
    expected.push(("auth.login.failed", Some("ops-bot".into()), None));

    store.delete_group(&Change::new(at(12), Some(&admin()), sample("group.delete"), Some(&staff.subject())), staff.id).await.unwrap();
    expected.push(("group.delete", Some("admin".into()), Some("staff".into())));

    store
        .delete_account(&Change::new(at(13), Some(&admin()), sample("user.delete"), Some(&alice.subject())), alice.id, None)
        .await
        .unwrap();
    expected.push(("user.delete", Some("admin".into()), Some("alice".into())));

    // Exactly one event per mutation (per added member), in order.
    let events = audit_all(store).await;
    let got: Vec<_> = events.iter().map(|e| (e.action.as_str(), e.actor_name.clone(), e.target_name.clone())).collect();
    assert_eq!(got, expected);
    assert_eq!(events.iter().map(|e| e.at).collect::<Vec<_>>(), [1, 2, 3, 4, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13].map(at));
    // Changes that touch neither the snapshot nor cached credentials (a notice without a
    // target, logins and failed logins) are recorded at the current revision.
    assert_eq!(events.iter().map(|e| e.revision).collect::<Vec<_>>(), [1, 2, 3, 4, 4, 5, 5, 5, 6, 7, 7, 7, 8, 9]);
    assert_eq!(store.revision().await.unwrap(), 9);
    assert_eq!(events.iter().map(|e| e.id).collect::<HashSet<_>>().len(), events.len(), "unique event ids");
    assert_eq!(events[0].details, json!({ "password": true }));
    assert_eq!(events[0].actor_id, Some(ADMIN_ID));
    assert_eq!(events[0].target_id, Some(alice.id));
    assert_eq!(events[0].target_kind.as_deref(), Some("user"));
    assert_eq!(events[1].actor_id, Some(ops.id));
    assert_eq!(events[2].target_kind.as_deref(), Some("group"));
    assert_eq!(events[3].details["member_kind"], json!("user"));
    assert_eq!(events[6].details, json!({ "via": "host" }));
    assert_eq!((events[6].actor_id, events[6].target_id, events[6].target_kind.as_deref()), (None, None, None));
    assert_eq!(events[12].details["memberships_removed"], json!(1));

    let actions = |events: &[AuditEvent]| events.iter().map(|e| e.action.clone()).collect::<Vec<_>>();
    let query = |q: AuditQuery| async move { store.audit(&AuditQuery { limit: MAX_PAGE, ..q }).await.unwrap().items };

    // Filters (newest first).
    let by_ops = query(AuditQuery { actor_name: Some("ops-bot".into()), ..AuditQuery::default() }).await;
    assert_eq!(actions(&by_ops), ["auth.login.failed", "auth.login", "user.rename", "group.member.add", "group.member.add", "user.create"]);
    assert!(by_ops.iter().all(|e| e.actor_id == Some(ops.id)));
    let by_ops_id = query(AuditQuery { actor_id: Some(ops.id), ..AuditQuery::default() }).await;
    assert_eq!(by_ops_id, by_ops);
    assert!(query(AuditQuery { actor_name: Some("ops".into()), ..AuditQuery::default() }).await.is_empty(), "names match exactly");

    let on_alice = query(AuditQuery { target_name: Some("alice".into()), ..AuditQuery::default() }).await;
    assert_eq!(actions(&on_alice), ["user.delete", "auth.login.failed", "credential.password.set", "group.member.add", "user.create"]);
    assert_eq!(query(AuditQuery { target_id: Some(alice.id), ..AuditQuery::default() }).await, on_alice);

    let group_events = query(AuditQuery { action_prefix: Some("group.".into()), ..AuditQuery::default() }).await;
    assert_eq!(actions(&group_events), ["group.delete", "group.member.remove", "group.member.add", "group.member.add", "group.create"]);
    let logins = query(AuditQuery { action_prefix: Some("auth.login".into()), ..AuditQuery::default() }).await;
    assert_eq!(actions(&logins), ["auth.login.failed", "auth.login", "auth.login.failed"]);
    let failed = query(AuditQuery { action_prefix: Some("auth.login.".into()), ..AuditQuery::default() }).await;
    assert_eq!(actions(&failed), ["auth.login.failed", "auth.login.failed"]);
    let member_events = query(AuditQuery { action_prefix: Some("group.member.".into()), ..AuditQuery::default() }).await;
    assert_eq!(actions(&member_events), ["group.member.remove", "group.member.add", "group.member.add"]);
    assert!(query(AuditQuery { action_prefix: Some("user.created".into()), ..AuditQuery::default() }).await.is_empty());
    assert_eq!(query(AuditQuery { action_prefix: Some(String::new()), ..AuditQuery::default() }).await.len(), 14);

    let recent = query(AuditQuery { since: Some(at(9)), ..AuditQuery::default() }).await;
    assert_eq!(actions(&recent), ["user.delete", "group.delete", "auth.login.failed", "auth.login", "user.rename"]);
    assert!(query(AuditQuery { since: Some(at(14)), ..AuditQuery::default() }).await.is_empty());

    let combined = query(AuditQuery {
        actor_name: Some("admin".into()),
        action_prefix: Some("group.".into()),
        since: Some(at(4)),
        ..AuditQuery::default()
    })
    .await;
    assert_eq!(actions(&combined), ["group.delete", "group.member.remove"]);

    // Cursor paging: newest first, every event once.
    let mut newest_first = events.clone();
    newest_first.reverse();
    for limit in [1, 3, 5, 14] {
        let paged = audit_pages(store, &AuditQuery { limit, ..AuditQuery::default() }).await;
        assert_eq!(paged, newest_first, "limit {limit}");
    }
    let first = store.audit(&AuditQuery { limit: 14, ..AuditQuery::default() }).await.unwrap();
    assert_eq!(first.next_cursor, None, "exactly one full page has no cursor");
    let first = store.audit(&AuditQuery { limit: 4, ..AuditQuery::default() }).await.unwrap();
    assert_eq!(first.items.len(), 4);
    assert!(first.next_cursor.is_some());
    let paged_filtered = audit_pages(store, &AuditQuery { action_prefix: Some("group.".into()), limit: 2, ..AuditQuery::default() }).await;
    assert_eq!(paged_filtered, group_events);
    let paged_ops = audit_pages(store, &AuditQuery { actor_name: Some("ops-bot".into()), limit: 4, ..AuditQuery::default() }).await;
    assert_eq!(paged_ops, by_ops);
}

// ---------------------------------------------------------------------------------------------
// 8. Concurrency.

async fn concurrency(store: Arc<dyn Store>) {
    const TASKS: usize = 8;
    const PER_TASK: usize = 20;
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..TASKS {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            for i in 0..PER_TASK {
                create_user(&*store, &format!("c{t}-{i}")).await;
            }
        });
    }
    // Writers racing for one name: exactly one wins.
    for _ in 0..4 {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let user = new_user("contested");
            match store.create_user(&change("user.create", &user.subject()), &user, None).await {
                Ok(_) | Err(StoreError::NameTaken(_)) => {}
                Err(e) => panic!("unexpected error: {e:?}"),
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.expect("a writer task failed");
    }

    let shared = store;
    let store = &*shared;
    let total = TASKS * PER_TASK + 1;
    let names = user_names(store).await;
    assert_eq!(names.len(), total);
    assert_eq!(names.iter().collect::<HashSet<_>>().len(), total);
    assert!(names.contains(&"contested".to_owned()));
    assert_eq!(store.revision().await.unwrap(), total as i64);

    let events = audit_all(store).await;
    assert_eq!(events.len(), total, "one event per created user");
    assert!(events.iter().all(|e| e.action == "user.create"));
    let revisions: Vec<i64> = events.iter().map(|e| e.revision).collect();
    assert!(revisions.windows(2).all(|w| w[0] < w[1]), "revisions strictly increase in log order: {revisions:?}");
    assert_eq!(revisions, (1..=total as i64).collect::<Vec<_>>(), "no revision lost or reused");
    let targets: HashSet<_> = events.iter().map(|e| e.target_name.clone().unwrap()).collect();
    assert_eq!(targets, names.into_iter().collect::<HashSet<_>>());

    // Racing nestings in opposite directions: the cycle check holds under concurrency.
    let x = create_group(store, "race-x").await;
    let y = create_group(store, "race-y").await;
    let store: Arc<dyn Store> = Arc::clone(&shared);
    for round in 0..10 {
        let nest = |outer: &Group, inner: &Group| {
            let (store, outer, inner) = (Arc::clone(&store), outer.clone(), inner.clone());
            tokio::spawn(async move {
                let members = [inner.subject()];
                store.add_members(&member_changes(&outer, &members), &outer.subject(), &members).await
            })
        };
        let (xy, yx) = (nest(&x, &y), nest(&y, &x));
        let results = [xy.await.unwrap(), yx.await.unwrap()];
        let added = results.iter().filter(|r| matches!(r, Ok(1))).count();
        let cycles = results.iter().filter(|r| matches!(r, Err(StoreError::Cycle { .. }))).count();
        assert_eq!((added, cycles), (1, 1), "round {round}: {results:?}");
        for (outer, inner) in [(&x, &y), (&y, &x)] {
            store.remove_member(&change("group.member.remove", &inner.subject()), outer.id, &inner.subject()).await.unwrap();
        }
        assert!(members(&*store, &x, false).await.is_empty() && members(&*store, &y, false).await.is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// 9. Authorization helpers.

/// A change by admin without a target (tenants and roles are not subjects).
fn act(action: &'static str) -> Change {
    Change::new(now(), Some(&admin()), sample(action), None)
}

fn new_tenant(name: &str) -> Tenant {
    Tenant { name: n(name), description: Some(format!("the {name} tenant")), created_at: now() }
}

async fn create_tenant(store: &dyn Store, name: &str) -> Tenant {
    let tenant = new_tenant(name);
    let change = Change::new(now(), Some(&admin()), Action::TenantCreate { tenant: tenant.name.clone() }, None);
    store.create_tenant(&change, &tenant).await.unwrap()
}

async fn tenant_names(store: &dyn Store) -> Vec<String> {
    store.tenants().await.unwrap().into_iter().map(|t| t.name.to_string()).collect()
}

fn new_role(id: &str, tenant: &str, permissions: &[&str]) -> Role {
    Role {
        id: n(id),
        tenant: Some(n(tenant)),
        name: format!("Role {id}"),
        description: Some(format!("what {id} may do")),
        permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
        source: RoleSource::Dynamic,
    }
}

async fn create_role(store: &dyn Store, id: &str, tenant: &str, permissions: &[&str]) -> Role {
    let role = new_role(id, tenant, permissions);
    store.create_role(&act("role.create"), &role).await.unwrap()
}

fn new_binding(role: &str, subject: &Subject, tenant: &str, namespaces: &[&str]) -> Binding {
    Binding {
        id: Uuid::now_v7(),
        role: n(role),
        subject: subject.clone(),
        tenant: n(tenant),
        namespaces: namespaces.iter().map(|ns| Namespace::parse(ns).unwrap()).collect(),
        created_at: now(),
    }
}

async fn bind(store: &dyn Store, role: &str, subject: &Subject, tenant: &str, namespaces: &[&str]) -> Binding {
    let binding = new_binding(role, subject, tenant, namespaces);
    store.create_binding(&change("binding.create", subject), &binding).await.unwrap()
}

async fn bindings_where(store: &dyn Store, subject: Option<Uuid>, role: Option<&str>, tenant: Option<&str>) -> Vec<Binding> {
    let filter = BindingFilter { subject, role: role.map(n), tenant: tenant.map(n) };
    store.bindings(&filter).await.unwrap()
}

fn renamed(binding: &Binding, name: &str) -> Binding {
    Binding { subject: Subject { name: n(name), ..binding.subject.clone() }, ..binding.clone() }
}

// ---------------------------------------------------------------------------------------------
// 10. Tenants.

async fn tenants(store: &dyn Store) {
    // The default tenant comes with the schema, not as a change.
    let listed = store.tenants().await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].name.as_str(), DEFAULT_TENANT);
    // It dates from the database's creation (just now), not from 1970.
    let age = time::OffsetDateTime::now_utc() - listed[0].created_at;
    assert!(age >= time::Duration::ZERO && age < time::Duration::minutes(10), "default tenant created at {}", listed[0].created_at);
    assert_eq!(store.tenant(&n(DEFAULT_TENANT)).await.unwrap().as_ref(), Some(&listed[0]));
    assert_eq!(store.tenant(&n("acme")).await.unwrap(), None);
    assert_eq!(state(store).await, (0, 0));

    let acme = new_tenant("acme");
    assert_eq!(store.create_tenant(&act("tenant.create"), &acme).await.unwrap(), acme);
    assert_eq!(state(store).await, (0, 1), "one event; no revision (the snapshot keeps no tenants)");
    assert_eq!(store.tenant(&n("acme")).await.unwrap(), Some(acme.clone()));
    let bare = Tenant { description: None, ..new_tenant("bare") };
    store.create_tenant(&act("tenant.create"), &bare).await.unwrap();
    assert_eq!(store.tenant(&n("bare")).await.unwrap(), Some(bare));

    // Duplicates are refused and leave nothing behind.
    let before = state(store).await;
    for taken in ["acme", DEFAULT_TENANT] {
        let err = store.create_tenant(&act("tenant.create"), &new_tenant(taken)).await.unwrap_err();
        assert!(matches!(err, StoreError::NameTaken(ref name) if name == taken), "{err:?}");
        assert_eq!(err.code(), "name.taken");
    }
    assert_eq!(state(store).await, before);
    assert_eq!(store.tenant(&n("acme")).await.unwrap(), Some(acme.clone()), "the holder is untouched");

    // Listed by name, in byte order on both backends.
    for name in ["zeta", "b_x", "b-x", "b.x", "b0", "beta"] {
        create_tenant(store, name).await;
    }
    assert_eq!(tenant_names(store).await, ["acme", "b-x", "b.x", "b0", "b_x", "bare", "beta", "default", "zeta"]);

    // Deleting a tenant takes its roles and every binding in it along, and nothing else.
    let alice = create_user(store, "alice").await;
    let staff = create_group(store, "staff").await;
    create_role(store, "acme-editor", "acme", &["docs:write"]).await;
    let viewer = create_role(store, "viewer", DEFAULT_TENANT, &["docs:read"]).await;
    let zeta_role = create_role(store, "zeta-role", "zeta", &["docs:read"]).await;
    let in_acme = [
        bind(store, "acme-editor", &alice.subject(), "acme", &[]).await,
        bind(store, "viewer", &staff.subject(), "acme", &["prod"]).await,
        bind(store, "auditor", &alice.subject(), "acme", &[]).await,
    ];
    let kept =
        [bind(store, "viewer", &alice.subject(), DEFAULT_TENANT, &[]).await, bind(store, "zeta-role", &staff.subject(), "zeta", &[]).await];
    assert_eq!(bindings_where(store, None, None, Some("acme")).await.len(), 3);
    let before = state(store).await;
    store.delete_tenant(&act("tenant.delete"), &n("acme")).await.unwrap();
    assert_eq!(state(store).await, (before.0 + 1, before.1 + 1), "one change");
    assert_eq!(store.tenant(&n("acme")).await.unwrap(), None);
    assert_eq!(tenant_names(store).await, ["b-x", "b.x", "b0", "b_x", "bare", "beta", "default", "zeta"]);
    assert_eq!(store.dynamic_role(&n("acme-editor")).await.unwrap(), None, "its roles go");
    assert_eq!(store.dynamic_roles().await.unwrap(), [viewer.clone(), zeta_role.clone()], "other tenants' roles stay");
    for gone in &in_acme {
        assert_eq!(store.binding(gone.id).await.unwrap(), None, "binding in the deleted tenant: {gone:?}");
    }
    assert!(bindings_where(store, None, None, Some("acme")).await.is_empty());
    assert_eq!(sorted_by_id(store.bindings(&BindingFilter::default()).await.unwrap()), sorted_by_id(kept.to_vec()));
    assert!(store.user(&NameOrId::Id(alice.id)).await.unwrap().is_some(), "subjects survive");
    assert!(store.group(&NameOrId::Id(staff.id)).await.unwrap().is_some());

    // A role dies with its tenant even where it was bound in another tenant: no binding may
    // outlive its role (a later role with the same id would inherit it).
    create_tenant(store, "acme").await;
    create_role(store, "acme-editor", "acme", &["docs:write"]).await;
    let cross = bind(store, "acme-editor", &staff.subject(), DEFAULT_TENANT, &[]).await;
    store.delete_tenant(&act("tenant.delete"), &n("acme")).await.unwrap();
    assert_eq!(store.binding(cross.id).await.unwrap(), None, "the deleted role's binding in another tenant");
    assert_eq!(sorted_by_id(store.bindings(&BindingFilter::default()).await.unwrap()), sorted_by_id(kept.to_vec()));

    // Unknown tenants: NotFound, nothing changes.
    let before = state(store).await;
    for name in ["acme", "nowhere"] {
        let err = store.delete_tenant(&act("tenant.delete"), &n(name)).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{name}: {err:?}");
        assert_eq!(err.code(), "not_found");
    }
    assert_eq!(state(store).await, before);

    // The name is free again, and the new tenant starts empty.
    create_tenant(store, "acme").await;
    assert!(bindings_where(store, None, None, Some("acme")).await.is_empty());
    assert_eq!(store.dynamic_roles().await.unwrap(), [viewer, zeta_role]);
}

// ---------------------------------------------------------------------------------------------
// 11. Dynamic roles.

async fn roles(store: &dyn Store) {
    create_tenant(store, "acme").await;
    assert!(store.dynamic_roles().await.unwrap().is_empty());

    let editor = new_role("editor", "acme", &["docs:write", "docs:read", "calendar"]);
    let before = state(store).await;
    assert_eq!(store.create_role(&act("role.create"), &editor).await.unwrap(), editor);
    assert_eq!(state(store).await, (before.0 + 1, before.1 + 1));
    assert_eq!(store.dynamic_role(&n("editor")).await.unwrap(), Some(editor.clone()), "permissions keep their order");
    assert_eq!(store.dynamic_role(&n("nope")).await.unwrap(), None);
    let empty = Role { description: None, permissions: vec![], ..new_role("empty", DEFAULT_TENANT, &[]) };
    store.create_role(&act("role.create"), &empty).await.unwrap();
    assert_eq!(store.dynamic_role(&n("empty")).await.unwrap(), Some(empty.clone()));

    // A missing tenant, a taken id (in any tenant): refused, nothing half-written.
    let before = state(store).await;
    let err = store.create_role(&act("role.create"), &new_role("ghost", "nowhere", &["x"])).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(store.dynamic_role(&n("ghost")).await.unwrap(), None);
    for tenant in ["acme", DEFAULT_TENANT] {
        let err = store.create_role(&act("role.create"), &new_role("editor", tenant, &["other"])).await.unwrap_err();
        assert!(matches!(err, StoreError::NameTaken(ref id) if id == "editor"), "{err:?}");
    }
    assert_eq!(state(store).await, before);
    assert_eq!(store.dynamic_role(&n("editor")).await.unwrap(), Some(editor.clone()), "the holder is untouched");

    // Listed by id, in byte order on both backends.
    for id in ["r_b", "r-b", "r.b", "r0"] {
        create_role(store, id, "acme", &[]).await;
    }
    let ids: Vec<String> = store.dynamic_roles().await.unwrap().into_iter().map(|r| r.id.to_string()).collect();
    assert_eq!(ids, ["editor", "empty", "r-b", "r.b", "r0", "r_b"]);

    // update_role replaces description and permissions.
    let updated = Role { description: Some("edits documents".into()), permissions: vec!["docs".into()], ..editor.clone() };
    let before = state(store).await;
    assert_eq!(store.update_role(&act("role.update"), &updated).await.unwrap(), updated);
    assert_eq!(state(store).await, (before.0 + 1, before.1 + 1));
    assert_eq!(store.dynamic_role(&n("editor")).await.unwrap(), Some(updated.clone()));
    let cleared = Role { description: None, permissions: vec![], ..updated.clone() };
    store.update_role(&act("role.update"), &cleared).await.unwrap();
    assert_eq!(store.dynamic_role(&n("editor")).await.unwrap(), Some(cleared));
    store.update_role(&act("role.update"), &updated).await.unwrap();
    let before = state(store).await;
    let err = store.update_role(&act("role.update"), &new_role("ghost", "acme", &["x"])).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(state(store).await, before);
    assert_eq!(store.dynamic_role(&n("ghost")).await.unwrap(), None, "an update creates nothing");

    // delete_role removes exactly its own bindings and says how many.
    let alice = create_user(store, "alice").await;
    let bot = create_sa(store, "bot", None).await;
    let staff = create_group(store, "staff").await;
    create_role(store, "viewer", "acme", &["docs:read"]).await;
    let doomed = [
        bind(store, "editor", &alice.subject(), "acme", &[]).await,
        bind(store, "editor", &staff.subject(), "acme", &["prod", "staging.eu"]).await,
        bind(store, "editor", &bot.subject(), "acme", &[]).await,
    ];
    let kept = [
        bind(store, "viewer", &alice.subject(), "acme", &[]).await,
        bind(store, "auditor", &alice.subject(), DEFAULT_TENANT, &[]).await,
        bind(store, "empty", &staff.subject(), DEFAULT_TENANT, &[]).await,
    ];
    let before = state(store).await;
    assert_eq!(store.delete_role(&act("role.delete"), &n("editor")).await.unwrap(), 3);
    assert_eq!(state(store).await, (before.0 + 1, before.1 + 1), "one change");
    let event = audit_all(store).await.pop().unwrap();
    assert_eq!((event.action.as_str(), event.details["bindings_removed"].clone()), ("role.delete", json!(3)));
    assert_eq!(store.dynamic_role(&n("editor")).await.unwrap(), None);
    for gone in &doomed {
        assert_eq!(store.binding(gone.id).await.unwrap(), None);
    }
    assert_eq!(sorted_by_id(store.bindings(&BindingFilter::default()).await.unwrap()), sorted_by_id(kept.to_vec()));
    assert!(bindings_where(store, None, Some("editor"), None).await.is_empty());

    // A role without bindings; an unknown role; a built-in role (not stored: its bindings stay).
    assert_eq!(store.delete_role(&act("role.delete"), &n("r0")).await.unwrap(), 0);
    let before = state(store).await;
    for id in ["editor", "nope", "auditor"] {
        let err = store.delete_role(&act("role.delete"), &n(id)).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{id}: {err:?}");
    }
    assert_eq!(state(store).await, before);
    assert_eq!(sorted_by_id(store.bindings(&BindingFilter::default()).await.unwrap()), sorted_by_id(kept.to_vec()));
    let ids: Vec<String> = store.dynamic_roles().await.unwrap().into_iter().map(|r| r.id.to_string()).collect();
    assert_eq!(ids, ["empty", "r-b", "r.b", "r_b", "viewer"]);
}

// ---------------------------------------------------------------------------------------------
// 12. Bindings.

async fn bindings(store: &dyn Store) {
    create_tenant(store, "acme").await;
    create_role(store, "editor", "acme", &["docs:write"]).await;
    create_role(store, "viewer", DEFAULT_TENANT, &["docs:read"]).await;
    let alice = create_user(store, "alice").await;
    let bot = create_sa(store, "bot", None).await;
    let staff = create_group(store, "staff").await;

    // To a user (limited to namespaces), a service account and a group; a built-in role too.
    let to_user = new_binding("editor", &alice.subject(), "acme", &["prod.team-a", "staging"]);
    let before = state(store).await;
    assert_eq!(store.create_binding(&change("binding.create", &alice.subject()), &to_user).await.unwrap(), to_user);
    assert_eq!(state(store).await, (before.0 + 1, before.1 + 1));
    assert_eq!(store.binding(to_user.id).await.unwrap(), Some(to_user.clone()));
    let to_sa = bind(store, "viewer", &bot.subject(), DEFAULT_TENANT, &[]).await;
    let to_group = bind(store, "editor", &staff.subject(), "acme", &["prod"]).await;
    let group_default = bind(store, "viewer", &staff.subject(), DEFAULT_TENANT, &["dev.x", "dev.y"]).await;
    let builtin = bind(store, "auditor", &alice.subject(), DEFAULT_TENANT, &[]).await;
    for b in [&to_user, &to_sa, &to_group, &group_default, &builtin] {
        assert_eq!(store.binding(b.id).await.unwrap().as_ref(), Some(b), "read back as created");
    }
    assert_eq!(store.binding(to_sa.id).await.unwrap().unwrap().subject.kind, SubjectKind::ServiceAccount);
    assert_eq!(store.binding(to_group.id).await.unwrap().unwrap().subject.kind, SubjectKind::Group);
    assert_eq!(store.binding(Uuid::now_v7()).await.unwrap(), None);

    // Listing: by tenant, then role, then id; filters combine.
    let all = [to_user.clone(), to_group.clone(), builtin.clone(), to_sa.clone(), group_default.clone()];
    assert_eq!(store.bindings(&BindingFilter::default()).await.unwrap(), all);
    assert_eq!(bindings_where(store, Some(alice.id), None, None).await, [to_user.clone(), builtin.clone()]);
    assert_eq!(bindings_where(store, Some(staff.id), None, None).await, [to_group.clone(), group_default.clone()]);
    assert_eq!(bindings_where(store, Some(bot.id), None, None).await, std::slice::from_ref(&to_sa));
    assert_eq!(bindings_where(store, None, Some("editor"), None).await, [to_user.clone(), to_group.clone()]);
    assert_eq!(bindings_where(store, None, Some("auditor"), None).await, std::slice::from_ref(&builtin));
    assert_eq!(bindings_where(store, None, None, Some(DEFAULT_TENANT)).await, [builtin.clone(), to_sa.clone(), group_default.clone()]);
    assert_eq!(bindings_where(store, None, None, Some("acme")).await, [to_user.clone(), to_group.clone()]);
    assert_eq!(bindings_where(store, Some(staff.id), None, Some(DEFAULT_TENANT)).await, std::slice::from_ref(&group_default));
    assert_eq!(bindings_where(store, Some(alice.id), Some("editor"), Some("acme")).await, std::slice::from_ref(&to_user));
    assert_eq!(bindings_where(store, None, Some("viewer"), Some(DEFAULT_TENANT)).await, [to_sa.clone(), group_default.clone()]);
    assert!(bindings_where(store, None, Some("viewer"), Some("acme")).await.is_empty());
    assert!(bindings_where(store, Some(alice.id), Some("viewer"), None).await.is_empty());
    assert!(bindings_where(store, Some(Uuid::now_v7()), None, None).await.is_empty());
    assert!(bindings_where(store, None, Some("nope"), None).await.is_empty());
    assert!(bindings_where(store, None, None, Some("nowhere")).await.is_empty());

    // Byte order of tenants and role ids in the listing, on both backends.
    for tenant in ["t_a", "t-a"] {
        create_tenant(store, tenant).await;
    }
    for role in ["o_x", "o-x"] {
        create_role(store, role, "t-a", &[]).await;
    }
    let ordered = [
        bind(store, "o_x", &bot.subject(), "t-a", &[]).await,
        bind(store, "o-x", &bot.subject(), "t_a", &[]).await,
        bind(store, "o-x", &bot.subject(), "t-a", &[]).await,
    ];
    let listed = bindings_where(store, Some(bot.id), None, None).await;
    let keys: Vec<(String, String)> = listed.iter().map(|b| (b.tenant.to_string(), b.role.to_string())).collect();
    assert_eq!(keys, [("default", "viewer"), ("t-a", "o-x"), ("t-a", "o_x"), ("t_a", "o-x")].map(|(t, r)| (t.to_owned(), r.to_owned())));
    for b in &ordered {
        assert!(store.delete_binding(&change("binding.delete", &bot.subject()), b.id).await.unwrap());
    }

    // Refused: an unknown subject (of either kind), a group id given as an account and back,
    // an unknown tenant, a taken id. Nothing is half-written.
    let before = state(store).await;
    let ghost_user = new_user("ghost").subject();
    let ghost_group = new_group("ghosts").subject();
    let group_as_user = Subject { kind: SubjectKind::User, ..staff.subject() };
    let user_as_group = Subject { kind: SubjectKind::Group, ..alice.subject() };
    for subject in [&ghost_user, &ghost_group, &group_as_user, &user_as_group] {
        let b = new_binding("viewer", subject, DEFAULT_TENANT, &[]);
        let err = store.create_binding(&change("binding.create", subject), &b).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{subject:?}: {err:?}");
        assert_eq!(store.binding(b.id).await.unwrap(), None);
    }
    let lost = new_binding("viewer", &alice.subject(), "nowhere", &[]);
    let err = store.create_binding(&change("binding.create", &alice.subject()), &lost).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let twin = Binding { role: n("auditor"), ..to_user.clone() };
    store.create_binding(&change("binding.create", &alice.subject()), &twin).await.expect_err("the id is taken");
    assert_eq!(state(store).await, before);
    assert_eq!(store.bindings(&BindingFilter::default()).await.unwrap(), all);

    // Subject names are read at query time: a rename shows at once.
    store.rename_account(&change("user.rename", &alice.subject()), alice.id, &n("alicia"), NameReservation::default()).await.unwrap();
    let (to_user, builtin) = (renamed(&to_user, "alicia"), renamed(&builtin, "alicia"));
    assert_eq!(store.binding(to_user.id).await.unwrap(), Some(to_user.clone()));
    assert_eq!(bindings_where(store, Some(alice.id), None, None).await, [to_user.clone(), builtin.clone()]);
    let (_, graph) = store.graph().await.unwrap();
    assert!(graph.bindings.contains(&to_user) && graph.bindings.contains(&builtin));

    // Deleting a subject deletes its bindings.
    store.delete_account(&change("user.delete", &bot.subject()), bot.id, None).await.unwrap();
    assert_eq!(store.binding(to_sa.id).await.unwrap(), None);
    store.delete_group(&change("group.delete", &staff.subject()), staff.id).await.unwrap();
    assert_eq!(store.binding(to_group.id).await.unwrap(), None);
    assert_eq!(store.binding(group_default.id).await.unwrap(), None);
    assert_eq!(store.bindings(&BindingFilter::default()).await.unwrap(), [to_user.clone(), builtin.clone()]);

    // delete_binding: true once, then false without a trace.
    let before = state(store).await;
    assert!(store.delete_binding(&change("binding.delete", &alice.subject()), builtin.id).await.unwrap());
    assert_eq!(state(store).await, (before.0 + 1, before.1 + 1));
    assert_eq!(store.binding(builtin.id).await.unwrap(), None);
    let before = state(store).await;
    assert!(!store.delete_binding(&change("binding.delete", &alice.subject()), builtin.id).await.unwrap());
    assert!(!store.delete_binding(&change("binding.delete", &alice.subject()), Uuid::now_v7()).await.unwrap());
    assert_eq!(state(store).await, before);

    store.delete_account(&change("user.delete", &alice.subject()), alice.id, None).await.unwrap();
    assert!(store.bindings(&BindingFilter::default()).await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// 13. The authorization graph.

fn sorted<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort();
    items
}

async fn graph(store: Arc<dyn Store>) {
    use SubjectKind::{Group as G, ServiceAccount as S, User as U};
    let shared = store;
    let store = &*shared;

    let (revision, empty) = store.graph().await.unwrap();
    assert_eq!(revision, 0);
    assert!(empty.memberships.is_empty() && empty.groups.is_empty() && empty.roles.is_empty() && empty.bindings.is_empty());

    let u1 = create_user(store, "u1").await;
    let u2 = create_user(store, "u2").await;
    let bot = create_sa(store, "bot", None).await;
    let ga = create_group(store, "ga").await;
    let gb = create_group(store, "gb").await;
    let gc = create_group(store, "gc").await;
    add(store, &ga, &[u1.subject(), gb.subject()]).await;
    add(store, &gb, &[u2.subject(), bot.subject()]).await;
    create_tenant(store, "acme").await;
    let r1 = create_role(store, "r1", "acme", &["docs:write"]).await;
    let r2 = create_role(store, "r2", DEFAULT_TENANT, &["docs:read"]).await;
    let b1 = bind(store, "r1", &ga.subject(), "acme", &["prod"]).await;
    let b2 = bind(store, "r2", &u1.subject(), DEFAULT_TENANT, &[]).await;
    let b3 = bind(store, "auditor", &bot.subject(), DEFAULT_TENANT, &[]).await;

    let (revision, graph) = store.graph().await.unwrap();
    assert_eq!(revision, store.revision().await.unwrap());
    assert_eq!(sorted(graph.memberships), sorted(vec![(ga.id, U, u1.id), (ga.id, G, gb.id), (gb.id, U, u2.id), (gb.id, S, bot.id)]));
    assert_eq!(sorted(graph.groups), sorted(vec![(ga.id, n("ga")), (gb.id, n("gb")), (gc.id, n("gc"))]));
    let mut roles = graph.roles;
    roles.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(roles, [r1.clone(), r2]);
    assert_eq!(sorted_by_id(graph.bindings), sorted_by_id(vec![b1.clone(), b2, b3.clone()]));

    // It follows changes, and its revision is always the current one.
    store.remove_member(&change("group.member.remove", &u1.subject()), ga.id, &u1.subject()).await.unwrap();
    store.delete_role(&act("role.delete"), &n("r2")).await.unwrap();
    store.rename_account(&change("user.rename", &u2.subject()), u2.id, &n("u2b"), NameReservation::default()).await.unwrap();
    let (revision, graph) = store.graph().await.unwrap();
    assert_eq!(revision, store.revision().await.unwrap());
    assert_eq!(sorted(graph.memberships), sorted(vec![(ga.id, G, gb.id), (gb.id, U, u2.id), (gb.id, S, bot.id)]));
    assert_eq!(graph.roles, std::slice::from_ref(&r1));
    assert_eq!(sorted_by_id(graph.bindings), sorted_by_id(vec![b1.clone(), b3.clone()]));

    // Built-in groups and their bindings are in it; built-in roles are not.
    let at = now();
    store.ensure_builtins(at).await.unwrap();
    let (revision, graph) = store.graph().await.unwrap();
    assert_eq!(revision, store.revision().await.unwrap());
    assert_eq!(graph.groups.len(), 3 + BUILT_IN_GROUPS.len());
    assert!(graph.memberships.contains(&(SYSTEM_ADMINS_GROUP, SubjectKind::ServiceAccount, ADMIN_ID)));
    assert!(graph.memberships.contains(&(IDM_ADMINS_GROUP, SubjectKind::ServiceAccount, IDM_ADMIN_ID)));
    assert_eq!(graph.roles, [r1]);
    let mut expected = built_in_bindings(at);
    expected.extend([b1, b3]);
    assert_eq!(sorted_by_id(graph.bindings), sorted_by_id(expected));

    // One snapshot: while a writer adds members one change at a time, every graph read has
    // exactly as many members as its revision says.
    let crowd = create_group(store, "crowd").await;
    let mut people = Vec::new();
    for i in 0..30 {
        people.push(create_user(store, &format!("p{i}")).await);
    }
    let base = store.revision().await.unwrap();
    let writer = {
        let (store, crowd) = (Arc::clone(&shared), crowd.clone());
        tokio::spawn(async move {
            for person in people {
                let members = [person.subject()];
                store.add_members(&member_changes(&crowd, &members), &crowd.subject(), &members).await.unwrap();
            }
        })
    };
    let mut reads = 0;
    loop {
        let done = writer.is_finished();
        let (revision, graph) = store.graph().await.unwrap();
        let in_crowd = graph.memberships.iter().filter(|(g, _, _)| *g == crowd.id).count() as i64;
        assert_eq!(in_crowd, revision - base, "graph at revision {revision} is not one snapshot");
        reads += 1;
        if done {
            break;
        }
    }
    writer.await.unwrap();
    assert!(reads > 1);
    assert_eq!(store.graph().await.unwrap().0, base + 30);
}

// ---------------------------------------------------------------------------------------------
// 14. Events since a revision.

async fn events_since(store: &dyn Store) {
    assert!(store.events_since(0, 100).await.unwrap().is_empty());
    let a = create_user(store, "a").await; // 1
    let b = create_user(store, "b").await; // 2
    let g = create_group(store, "g").await; // 3
    add(store, &g, &[a.subject(), b.subject()]).await; // 4, two events
    store.record(&change("account.recover", &a.subject())).await.unwrap(); // 5
    store.delete_group(&change("group.delete", &g.subject()), g.id).await.unwrap(); // 6

    let all = store.events_since(0, 100).await.unwrap();
    assert_eq!(all, audit_all(store).await, "oldest first, everything");
    assert_eq!(all.iter().map(|e| e.revision).collect::<Vec<_>>(), [1, 2, 3, 4, 4, 5, 6]);
    assert_eq!(
        all.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["user.create", "user.create", "group.create", "group.member.add", "group.member.add", "account.recover", "group.delete"]
    );
    assert_eq!(all[3].target_id, Some(a.id));
    assert_eq!(all[4].target_id, Some(b.id));

    // Only later revisions, in order.
    assert_eq!(store.events_since(3, 100).await.unwrap(), all[3..]);
    assert_eq!(store.events_since(4, 100).await.unwrap(), all[5..]);
    assert_eq!(store.events_since(5, 100).await.unwrap(), all[6..]);
    assert!(store.events_since(6, 100).await.unwrap().is_empty());
    assert!(store.events_since(1000, 100).await.unwrap().is_empty());
    assert_eq!(store.events_since(-1, 100).await.unwrap(), all);

    // The limit counts events and keeps the oldest.
    assert_eq!(store.events_since(0, 3).await.unwrap(), all[..3]);
    assert_eq!(store.events_since(2, 2).await.unwrap(), all[2..4]);
    assert_eq!(store.events_since(0, 1).await.unwrap(), all[..1]);
    assert_eq!(store.events_since(5, 10).await.unwrap(), all[6..]);

    // A refused change adds nothing to read.
    let dup = new_user("a");
    store.create_user(&change("user.create", &dup.subject()), &dup, None).await.unwrap_err();
    assert!(store.events_since(6, 100).await.unwrap().is_empty());
    create_user(store, "c").await;
    let later = store.events_since(6, 100).await.unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!((later[0].revision, later[0].target_name.as_deref()), (7, Some("c")));
}

// ---------------------------------------------------------------------------------------------
// 15. Session elevation and token scope.

async fn elevation(store: &dyn Store) {
    let carol = create_user(store, "carol").await;
    let t0 = now();
    let session = SessionRecord {
        id: Uuid::now_v7(),
        account_id: carol.id,
        created_at: t0,
        expires_at: t0 + Duration::hours(8),
        idle_timeout_secs: 1800,
        last_seen_at: t0,
        elevated_until: None,
        client: None,
        user_agent: None,
        auth_strength: AuthStrength::Password,
    };
    let token = TokenHash::of("wds_elevation");
    store.create_session(&change("auth.login", &carol.subject()), &session, &token).await.unwrap();
    let (found, _) = store.session(&token, t0).await.unwrap().unwrap();
    assert_eq!(found, session);
    assert!(!found.is_elevated(t0), "read-only until re-authenticated");

    // Elevating opens the write window, in one audited change.
    let until = t0 + Duration::minutes(5);
    let before = state(store).await;
    assert!(store.elevate_session(&change("auth.reauth", &carol.subject()), session.id, until, None).await.unwrap());
    assert_eq!(state(store).await, (before.0 + 1, before.1 + 1));
    let (elevated, _) = store.session(&token, t0).await.unwrap().unwrap();
    assert_eq!(elevated, SessionRecord { elevated_until: Some(until), ..session.clone() });
    assert!(elevated.is_elevated(t0));
    assert!(elevated.is_elevated(until - Duration::milliseconds(1)));
    assert!(!elevated.is_elevated(until), "the window is half-open");
    assert!(!SessionRecord { elevated_until: None, ..elevated.clone() }.is_elevated(t0));

    // Touching keeps it; elevating again replaces it (later or earlier).
    store.touch_session(session.id, t0 + Duration::minutes(1)).await.unwrap();
    assert_eq!(store.session(&token, t0).await.unwrap().unwrap().0.elevated_until, Some(until));
    for next in [t0 + Duration::minutes(15), t0 - Duration::seconds(1)] {
        assert!(store.elevate_session(&change("auth.reauth", &carol.subject()), session.id, next, None).await.unwrap());
        assert_eq!(store.session(&token, t0).await.unwrap().unwrap().0.elevated_until, Some(next));
    }
    assert!(!store.session(&token, t0).await.unwrap().unwrap().0.is_elevated(t0));

    // A re-authentication that proved a second factor records the stronger sign-in in the same
    // write; one without a strength leaves it as it is.
    let before = state(store).await;
    assert!(
        store.elevate_session(&change("auth.reauth", &carol.subject()), session.id, until, Some(AuthStrength::PasswordTotp)).await.unwrap()
    );
    assert_eq!(state(store).await, (before.0 + 1, before.1 + 1), "one revision, one audit event");
    let (raised, _) = store.session(&token, t0).await.unwrap().unwrap();
    let touched = t0 + Duration::minutes(1);
    let expected =
        SessionRecord { elevated_until: Some(until), last_seen_at: touched, auth_strength: AuthStrength::PasswordTotp, ..session.clone() };
    assert_eq!(raised, expected, "the strength and the window change, nothing else");
    assert!(store.elevate_session(&change("auth.reauth", &carol.subject()), session.id, until, None).await.unwrap());
    assert_eq!(store.session(&token, t0).await.unwrap().unwrap().0.auth_strength, AuthStrength::PasswordTotp);

    // An unknown session: false, no trace; another session is not affected.
    let other_token = TokenHash::of("wds_other-session");
    let other = SessionRecord { id: Uuid::now_v7(), ..session.clone() };
    store.create_session(&change("auth.login", &carol.subject()), &other, &other_token).await.unwrap();
    let before = state(store).await;
    assert!(
        !store
            .elevate_session(&change("auth.reauth", &carol.subject()), Uuid::now_v7(), until, Some(AuthStrength::PasswordTotp))
            .await
            .unwrap()
    );
    assert_eq!(state(store).await, before);
    assert_eq!(store.session(&other_token, t0).await.unwrap().unwrap().0.elevated_until, None);
    store.delete_session(&change("auth.logout", &carol.subject()), other.id).await.unwrap();
    let before = state(store).await;
    assert!(!store.elevate_session(&change("auth.reauth", &carol.subject()), other.id, until, None).await.unwrap(), "ended session");
    assert_eq!(state(store).await, before);

    // A session created with a write window (a fresh login) keeps it.
    let fresh_token = TokenHash::of("wds_fresh");
    let fresh = SessionRecord { id: Uuid::now_v7(), elevated_until: Some(t0 + Duration::minutes(10)), ..session.clone() };
    store.create_session(&change("auth.login", &carol.subject()), &fresh, &fresh_token).await.unwrap();
    assert_eq!(store.session(&fresh_token, t0).await.unwrap().unwrap().0, fresh);
}

async fn token_scope(store: &dyn Store) {
    let carol = create_user(store, "carol").await;
    let t0 = now();
    let read_only = ApiToken {
        id: Uuid::now_v7(),
        account_id: carol.id,
        label: Some("reader".into()),
        created_at: t0,
        expires_at: None,
        last_used_at: None,
        revoked_at: None,
        read_write: false,
        roles: None,
    };
    let scoped = ApiToken {
        id: Uuid::now_v7(),
        label: Some("scoped".into()),
        created_at: t0 + Duration::seconds(1),
        read_write: true,
        roles: Some(vec!["editor".into(), "auditor".into()]),
        ..read_only.clone()
    };
    let no_roles =
        ApiToken { id: Uuid::now_v7(), label: None, created_at: t0 + Duration::seconds(2), roles: Some(vec![]), ..scoped.clone() };
    let hashes = [TokenHash::of("wdn_reader"), TokenHash::of("wdn_scoped"), TokenHash::of("wdn_none")];
    for (token, hash) in [&read_only, &scoped, &no_roles].into_iter().zip(&hashes) {
        store.create_api_token(&change("api_token.create", &carol.subject()), token, hash).await.unwrap();
    }
    for (token, hash) in [&read_only, &scoped, &no_roles].into_iter().zip(&hashes) {
        let (found, owner) = store.api_token(hash, t0).await.unwrap().unwrap();
        assert_eq!(&found, token, "read_write and roles round-trip");
        assert_eq!(owner.subject, carol.subject());
    }
    assert_eq!(store.list_api_tokens(carol.id).await.unwrap(), [read_only.clone(), scoped.clone(), no_roles.clone()]);
    assert_ne!(store.api_token(&hashes[2], t0).await.unwrap().unwrap().0.roles, None, "no roles is not all roles");

    // Revoking and touching keep the scope.
    let used = t0 + Duration::minutes(1);
    store.touch_api_token(scoped.id, used).await.unwrap();
    assert!(store.revoke_api_token(&change("api_token.revoke", &carol.subject()), carol.id, scoped.id).await.unwrap());
    let (after, _) = store.api_token(&hashes[1], used).await.unwrap().unwrap();
    assert_eq!((after.read_write, after.roles), (true, scoped.roles.clone()));
    assert_eq!(after.last_used_at, Some(used));
}

// ---------------------------------------------------------------------------------------------
// 16. The revision feed.

async fn next_revision(feed: &mut tokio::sync::mpsc::Receiver<i64>) -> i64 {
    tokio::time::timeout(std::time::Duration::from_secs(2), feed.recv())
        .await
        .expect("a committed revision is announced within 2 s")
        .expect("the feed is open")
}

async fn revision_feed(store: &dyn Store) {
    let feed = store.revision_feed().await.unwrap();
    if store.backend() == "sqlite" {
        assert!(feed.is_none(), "SQLite has one node: no feed");
        return;
    }
    let mut feed = feed.expect("PostgreSQL announces every commit");
    let mut second = store.revision_feed().await.unwrap().unwrap();

    create_user(store, "alice").await;
    let r1 = store.revision().await.unwrap();
    assert_eq!(next_revision(&mut feed).await, r1);
    assert_eq!(next_revision(&mut second).await, r1, "every subscriber hears it");

    // Rolled-back changes announce nothing: the next announcement is the next commit.
    let dup = new_user("alice");
    store.create_user(&change("user.create", &dup.subject()), &dup, None).await.unwrap_err();
    let ghost = Uuid::now_v7();
    assert!(!store.delete_binding(&act("binding.delete"), ghost).await.unwrap());
    store.touch_session(ghost, now()).await.unwrap();
    create_group(store, "staff").await;
    assert_eq!(store.revision().await.unwrap(), r1 + 1);
    assert_eq!(next_revision(&mut feed).await, r1 + 1);

    // Commits in a row arrive in order, from whichever pooled connection made them.
    for i in 0..5 {
        create_user(store, &format!("u{i}")).await;
    }
    for expected in r1 + 2..=r1 + 6 {
        assert_eq!(next_revision(&mut feed).await, expected);
    }
    assert!(feed.try_recv().is_err(), "nothing else was committed");
    drop(feed);

    // A subscriber that outlives the scenario must not keep the store from closing: the
    // harness closes it with a deadline.
    tokio::spawn(async move { while second.recv().await.is_some() {} });
}

/// 50 reservations of one key at once (PostgreSQL: on 50 connections): exactly the free
/// number are granted, whatever the interleaving, and every refusal names a wait.
async fn login_reservations(store: Arc<dyn Store>) {
    let at = now();
    let keys = [
        (
            ThrottleKey::name_from("erin", Some("198.51.100.4".parse().unwrap())),
            Throttle::new(5, Duration::hours(24), Duration::minutes(15)),
        ),
        (ThrottleKey::name("erin"), Throttle::new(200, Duration::hours(24), Duration::minutes(15))),
    ];
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let store = store.clone();
        tasks.spawn(async move { store.reserve_login_attempt(&keys, at).await.unwrap() });
    }
    let (mut granted, mut refused) = (0, 0);
    while let Some(outcome) = tasks.join_next().await {
        match outcome.unwrap() {
            Ok(_) => granted += 1,
            Err(wait) => {
                assert!(wait > Duration::ZERO);
                refused += 1;
            }
        }
    }
    assert_eq!((granted, refused), (5, 45));
    assert_eq!(store.login_failures(&keys[1].0, at - Duration::hours(1)).await.unwrap().count, 5);

    // A right password's attempt is released in the session's own write: it and the failures
    // under the keys named go, the session is there, and one audit event records it. (From
    // another address: this one is locked by the burst above.)
    let erin = create_user(&*store, "erin").await;
    let later = at + Duration::minutes(1);
    let elsewhere =
        [(ThrottleKey::name_from("erin", Some("203.0.113.9".parse().unwrap())), keys[0].1), (ThrottleKey::name("erin"), keys[1].1)];
    let attempt = store.reserve_login_attempt(&elsewhere, later).await.unwrap().unwrap();
    assert_eq!(store.login_failures(&elsewhere[0].0, at - Duration::hours(1)).await.unwrap().count, 1);
    assert_eq!(store.login_failures(&keys[1].0, at - Duration::hours(1)).await.unwrap().count, 6);
    let session = SessionRecord {
        id: Uuid::now_v7(),
        account_id: erin.id,
        created_at: later,
        expires_at: later + Duration::hours(8),
        idle_timeout_secs: 1800,
        last_seen_at: later,
        elevated_until: None,
        client: None,
        user_agent: None,
        auth_strength: AuthStrength::Password,
    };
    let token = TokenHash::of("wds_after-login");
    let events = audit_count(&*store).await;
    store.create_session_after_login(&change("auth.login", &erin.subject()), &session, &token, attempt, &[elsewhere[0].0]).await.unwrap();
    assert_eq!(store.login_failures(&elsewhere[0].0, at - Duration::hours(1)).await.unwrap().count, 0, "released");
    assert_eq!(store.login_failures(&keys[1].0, at - Duration::hours(1)).await.unwrap().count, 5, "the attempt is no failure of the name");
    assert_eq!(store.login_failures(&keys[0].0, at - Duration::hours(1)).await.unwrap().count, 5, "the other address's stay");
    assert!(store.session(&token, later).await.unwrap().is_some());
    assert_eq!(audit_count(&*store).await, events + 1);
}

/// `update_user` with `end_sessions` deletes every session of that user (and no other) in the
/// same transaction, and its one event counts them.
async fn ending_sessions(store: &dyn Store) {
    let (dave, erin) = (create_user(store, "dave").await, create_user(store, "erin").await);
    let t0 = now();
    let session = |account: Uuid| SessionRecord {
        id: Uuid::now_v7(),
        account_id: account,
        created_at: t0,
        expires_at: t0 + Duration::hours(8),
        idle_timeout_secs: 1800,
        last_seen_at: t0,
        elevated_until: None,
        client: None,
        user_agent: None,
        auth_strength: AuthStrength::Password,
    };
    for (account, token) in [(&dave, "wds_dave-1"), (&dave, "wds_dave-2"), (&erin, "wds_erin-1")] {
        store.create_session(&change("auth.login", &account.subject()), &session(account.id), &TokenHash::of(token)).await.unwrap();
    }
    let (r, events) = state(store).await;
    let disabled = User { disabled: true, ..dave.clone() };
    store.update_user(&change("user.disable", &dave.subject()), &disabled, true).await.unwrap();
    assert_eq!(state(store).await, (r + 1, events + 1), "one revision, one event");
    for token in ["wds_dave-1", "wds_dave-2"] {
        assert!(store.session(&TokenHash::of(token), t0).await.unwrap().is_none(), "{token}");
    }
    assert!(store.session(&TokenHash::of("wds_erin-1"), t0).await.unwrap().is_some(), "another user's session stays");
    let event = audit_all(store).await.into_iter().find(|e| e.action == "user.disable").unwrap();
    assert_eq!(event.details["sessions_ended"], 2);
    // Enabling again brings nothing back.
    store.update_user(&change("user.enable", &dave.subject()), &dave, false).await.unwrap();
    assert!(store.session(&TokenHash::of("wds_dave-1"), t0).await.unwrap().is_none());
    // Without end_sessions nothing is deleted and nothing counted.
    store.update_user(&change("user.update", &erin.subject()), &erin, false).await.unwrap();
    assert!(store.session(&TokenHash::of("wds_erin-1"), t0).await.unwrap().is_some());
    let event = audit_all(store).await.into_iter().find(|e| e.action == "user.update").unwrap();
    assert!(event.details.get("sessions_ended").is_none());
}

/// A session keeps where it signed in from and how; sessions list by id (of one account or
/// all), are found by id, and end together per account in one audited change that counts them.
async fn session_details(store: &dyn Store) {
    let (fay, gus) = (create_user(store, "fay").await, create_user(store, "gus").await);
    let t0 = now();
    let session = |account: Uuid, strength: AuthStrength| SessionRecord {
        id: Uuid::now_v7(),
        account_id: account,
        created_at: t0,
        expires_at: t0 + Duration::hours(8),
        idle_timeout_secs: 1800,
        last_seen_at: t0,
        elevated_until: None,
        client: Some("2001:db8::7".into()),
        user_agent: Some("Mozilla/5.0 (X11) Firefox/140.0 ünïcode".into()),
        auth_strength: strength,
    };
    let mut made = Vec::new();
    for (i, strength) in AuthStrength::ALL.into_iter().enumerate() {
        let record = session(fay.id, strength);
        store.create_session(&change("auth.login", &fay.subject()), &record, &TokenHash::of(&format!("wds_fay-{i}"))).await.unwrap();
        let (found, _) = store.session(&TokenHash::of(&format!("wds_fay-{i}")), t0).await.unwrap().unwrap();
        assert_eq!(found, record, "every detail comes back as stored");
        made.push(record);
    }
    let bare = SessionRecord { client: None, user_agent: None, ..session(gus.id, AuthStrength::Password) };
    store.create_session(&change("auth.login", &gus.subject()), &bare, &TokenHash::of("wds_gus-1")).await.unwrap();

    // One account's, by id, in pages; all accounts' together.
    let page1 = store.list_sessions(Some(fay.id), None, 3).await.unwrap();
    let page2 = store.list_sessions(Some(fay.id), Some(page1[2].session.id), 3).await.unwrap();
    let listed: Vec<SessionRecord> = page1.iter().chain(&page2).map(|l| l.session.clone()).collect();
    assert_eq!(listed, made);
    assert!(page1.iter().all(|l| l.account == fay.subject()));
    let all = store.list_sessions(None, None, 100).await.unwrap();
    assert!(all.iter().any(|l| l.session == bare && l.account == gus.subject()));
    assert!(all.windows(2).all(|w| w[0].session.id < w[1].session.id), "in id order");
    let found = store.session_by_id(bare.id).await.unwrap().unwrap();
    assert_eq!((found.session, found.account), (bare.clone(), gus.subject()));
    assert!(store.session_by_id(Uuid::now_v7()).await.unwrap().is_none());
    assert_eq!(made[0].ends_at(), t0 + Duration::minutes(30));

    // Ending all of one account's: one event with the count, a revision (caches must forget).
    let (r, events) = state(store).await;
    let revoke_all = Change::new(now(), Some(&admin()), Action::SessionRevokeAll { sessions_ended: 0 }, Some(&fay.subject()));
    assert_eq!(store.delete_account_sessions(&revoke_all, fay.id).await.unwrap(), 5);
    assert_eq!(state(store).await, (r + 1, events + 1));
    assert!(store.list_sessions(Some(fay.id), None, 100).await.unwrap().is_empty());
    assert!(store.session_by_id(bare.id).await.unwrap().is_some(), "another account's stays");
    let event = audit_all(store).await.into_iter().find(|e| e.action == "session.revoke_all").unwrap();
    assert_eq!(event.details["sessions_ended"], 5);
    assert_eq!(event.target_id, Some(fay.id));

    // API tokens by id.
    assert!(store.api_token_by_id(Uuid::now_v7()).await.unwrap().is_none());
}

/// A name an account gives up (rename, deletion) stays reserved for it: a rename that honours
/// reservations cannot take it until the reservation ends, its old holder can, and a rename
/// that does not honour them (an administrator's) can; a refused rename writes nothing.
async fn reserved_names(store: &dyn Store) {
    let (dave, mallory) = (create_user(store, "dave").await, create_user(store, "mallory").await);
    let t0 = now();
    let at =
        |t: OffsetDateTime, action: &'static str, target: &User| Change::new(t, Some(&admin()), sample(action), Some(&target.subject()));
    let self_service = NameReservation { keep_until: Some(t0 + Duration::days(30)), honour: true };
    store.rename_account(&at(t0, "user.rename", &dave), dave.id, &n("david"), self_service).await.unwrap();
    let before = state(store).await;
    let err = store.rename_account(&at(t0, "user.rename", &mallory), mallory.id, &n("dave"), self_service).await.unwrap_err();
    assert!(matches!(err, StoreError::NameTaken(_)), "{err:?}");
    assert_eq!(state(store).await, before, "a refused rename writes nothing");
    assert_eq!(user_names(store).await, ["david", "mallory"]);
    // Its old holder may take it back (and "david" is then reserved for it in turn).
    store.rename_account(&at(t0, "user.rename", &dave), dave.id, &n("dave"), self_service).await.unwrap();
    // A deletion reserves the name too; an administrator's rename may take it anyway.
    store.delete_account(&at(t0, "user.delete", &dave), dave.id, Some(t0 + Duration::days(30))).await.unwrap();
    let err = store.rename_account(&at(t0, "user.rename", &mallory), mallory.id, &n("dave"), self_service).await.unwrap_err();
    assert!(matches!(err, StoreError::NameTaken(_)), "{err:?}");
    let admin_rename = NameReservation { keep_until: None, honour: false };
    store.rename_account(&at(t0, "user.rename", &mallory), mallory.id, &n("dave"), admin_rename).await.unwrap();
    store.rename_account(&at(t0, "user.rename", &mallory), mallory.id, &n("mallory"), admin_rename).await.unwrap();
    // After the reservation ends, anyone may.
    let later = t0 + Duration::days(30);
    store.rename_account(&at(later, "user.rename", &mallory), mallory.id, &n("david"), self_service).await.unwrap();
    store.rename_account(&at(later, "user.rename", &mallory), mallory.id, &n("dave"), self_service).await.unwrap();
    // Without a reservation a deleted name is free at once.
    let erin = create_user(store, "erin").await;
    store.delete_account(&at(later, "user.delete", &erin), erin.id, None).await.unwrap();
    let frank = create_user(store, "frank").await;
    store.rename_account(&at(later, "user.rename", &frank), frank.id, &n("erin"), self_service).await.unwrap();
}

/// Group commit: 52 writes sent at once are committed in fewer transactions than writes. The
/// refused ones (11 taken names, 4 membership cycles) refuse only themselves, and every kept
/// write has its own event at its own revision, with no revision skipped or shared.
async fn group_commit(store: Arc<dyn Store>) {
    let (a, b) = (create_group(&*store, "gc-a").await, create_group(&*store, "gc-b").await);
    add(&*store, &a, &[b.subject()]).await;
    let (r1, e1) = state(&*store).await;
    let before = store.write_stats();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..52 {
        let (store, a, b) = (store.clone(), a.subject(), b.subject());
        tasks.spawn(async move {
            if i % 13 == 12 {
                // b is in a: adding a to b would make a cycle.
                let action = Action::MemberAdd { member: a.to_string(), member_id: a.id, member_kind: a.kind, via: None };
                let change = Change::new(now(), Some(&admin()), action, Some(&b));
                store.add_members(&[change], &b, std::slice::from_ref(&a)).await.map(|_| ())
            } else {
                let user = new_user(&format!("gc-u-{}", i % 40));
                store.create_user(&change("user.create", &user.subject()), &user, None).await.map(|_| ())
            }
        });
    }
    let (mut kept, mut taken, mut cycles) = (0, 0, 0);
    while let Some(outcome) = tasks.join_next().await {
        match outcome.unwrap() {
            Ok(()) => kept += 1,
            Err(StoreError::NameTaken(_)) => taken += 1,
            Err(StoreError::Cycle { .. }) => cycles += 1,
            Err(e) => panic!("{e:?}"),
        }
    }
    // 48 creations of 37 distinct names (i % 40 for every i but the cycles' 12, 25, 38, 51),
    // and 4 cycles.
    assert_eq!((kept, taken, cycles), (37, 11, 4));
    assert_eq!(state(&*store).await, (r1 + 37, e1 + 37), "one revision and one event per kept write");
    let events = store.events_since(r1, 1000).await.unwrap();
    assert_eq!(events.iter().map(|e| e.revision).collect::<Vec<_>>(), (r1 + 1..=r1 + 37).collect::<Vec<_>>(), "gap-free");
    assert!(events.iter().all(|e| e.action == "user.create"));
    assert_eq!(user_names(&*store).await.len(), 37);
    let b_members = store.members(b.id, false, &ListQuery::default()).await.unwrap();
    assert!(b_members.items.is_empty(), "no refused membership was written");
    let after = store.write_stats();
    let (writes, commits) = (after.writes - before.writes, after.commits - before.commits);
    assert_eq!(writes, 37);
    assert!(commits < writes, "writes sent together share commits: {writes} writes in {commits} commits");
}

// ---------------------------------------------------------------------------------------------
// Bulk export and import.

/// The records of a small directory, as an export writes them (sorted, normalised).
fn directory_records(with_hash: bool) -> Vec<Record> {
    let line = |json: serde_json::Value| -> Record { serde_json::from_value(json).unwrap() };
    let mut user = json!({"kind": "user", "name": "alice", "profile": serde_json::to_value(full_profile()).unwrap(), "disabled": false,
        "expires_at": "2030-01-01T00:00:00Z"});
    if with_hash {
        user["password_hash"] = json!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA");
    }
    vec![
        line(json!({"kind": "tenant", "name": "acme", "description": "Acme"})),
        line(json!({"kind": "role", "id": "deployer", "tenant": "acme", "name": "Deployer", "permissions": ["deploy:run"]})),
        line(user),
        line(json!({"kind": "user", "name": "bob", "disabled": true})),
        line(json!({"kind": "group", "name": "eng", "description": "Engineers"})),
        line(json!({"kind": "group", "name": "staff"})),
        line(json!({"kind": "service_account", "name": "ci-bot", "manager": "group:staff"})),
        line(json!({"kind": "member", "group": "eng", "member": "user:bob"})),
        line(json!({"kind": "member", "group": "idm_admins", "member": "user:alice"})),
        line(json!({"kind": "member", "group": "staff", "member": "group:eng"})),
        line(json!({"kind": "member", "group": "staff", "member": "sa:ci-bot"})),
        line(json!({"kind": "member", "group": "staff", "member": "user:alice"})),
        line(json!({"kind": "binding", "role": "deployer", "tenant": "acme", "subject": "group:staff", "namespaces": ["prod"]})),
        line(json!({"kind": "binding", "role": "tenant_admin", "tenant": "acme", "subject": "user:bob"})),
    ]
}

fn import_change() -> Change {
    let action = Action::Import { first_line: 0, last_line: 0, created: 0, updated: 0, accounts: vec![], groups: vec![] };
    Change::new(now(), Some(&admin()), action, None)
}

/// Imports `records` (numbered from line 2, after the header) in batches of `batch`,
/// committing each: what the import service does.
async fn import(store: &dyn Store, records: &[Record], batch: usize) -> Result<ImportCounts, LineError> {
    let lines: Vec<ImportLine> = records.iter().enumerate().map(|(i, r)| ImportLine { line: i as u64 + 2, record: r.clone() }).collect();
    let mut importer = store.importer().await.unwrap();
    let mut total = ImportCounts::default();
    for chunk in lines.chunks(batch) {
        total += importer.apply(&import_change(), chunk).await?;
        importer.commit().await.unwrap();
    }
    Ok(total)
}

async fn export(store: &dyn Store, credentials: bool) -> Vec<Record> {
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let collect = tokio::spawn(async move {
        let mut records = Vec::new();
        while let Some(r) = rx.recv().await {
            records.push(r);
        }
        records
    });
    let sent = store.export(credentials, tx).await.unwrap();
    let records = collect.await.unwrap();
    assert_eq!(sent, records.len() as u64);
    records
}

async fn transfer(store: &dyn Store) {
    store.ensure_builtins(now()).await.unwrap();
    assert!(export(store, true).await.is_empty(), "what every server has is never exported");

    // Refused batches leave nothing, and say at which line.
    let before = state(store).await;
    let mut bad = directory_records(false);
    bad.insert(8, serde_json::from_value(json!({"kind": "member", "group": "staff", "member": "user:nobody"})).unwrap());
    let err = import(store, &bad, 1000).await.unwrap_err();
    assert_eq!((err.line, err.error.code()), (10, "not_found"), "{err}");
    assert_eq!(state(store).await, before, "the bad batch is rolled back");
    assert!(store.user(&by_name("alice")).await.unwrap().is_none());

    // Batches before the bad one stay committed.
    let err = import(store, &bad, 4).await.unwrap_err();
    assert_eq!(err.line, 10);
    assert_eq!(user_names(store).await, ["alice", "bob"]);
    let (revision, _) = state(store).await;
    assert_eq!(revision, before.0 + 2, "one revision per committed batch");
    let events = store.events_since(before.0, 100).await.unwrap();
    assert_eq!(events.len(), 2, "one event per batch");
    assert_eq!(events[0].action, "import.batch");
    match warden_core::change::recorded(&events[0]).unwrap().1 {
        Action::Import { first_line, last_line, created, updated, accounts, groups } => {
            assert_eq!((first_line, last_line, created, updated, accounts.len(), groups.len()), (2, 5, 4, 0, 2, 0));
        }
        other => panic!("{other:?}"),
    }

    // The whole file: everything is there, and exports as it was written.
    let counts = import(store, &directory_records(true), 5).await.unwrap();
    assert_eq!(
        counts,
        ImportCounts { created: 6, updated: 1, unchanged: 7 },
        "alice gains a password hash; 7 came with the batches before"
    );
    assert_eq!(export(store, true).await, directory_records(true));
    assert_eq!(export(store, false).await, directory_records(false), "hashes only when asked for");
    let alice = store.user(&by_name("alice")).await.unwrap().unwrap();
    assert!(alice.has_password);
    assert_eq!(alice.profile, full_profile());
    let bot = store.service_account(&by_name("ci-bot")).await.unwrap().unwrap();
    assert_eq!(bot.managed_by.map(|m| m.name), Some(n("staff")));

    // Again: nothing changes, no revision, no event.
    let before = state(store).await;
    let counts = import(store, &directory_records(true), 3).await.unwrap();
    assert_eq!(counts, ImportCounts { created: 0, updated: 0, unchanged: 14 });
    assert_eq!(state(store).await, before);

    // Updates by name; disabling a user ends its sessions.
    let session = SessionRecord {
        id: Uuid::now_v7(),
        account_id: alice.id,
        created_at: now(),
        expires_at: now() + Duration::hours(1),
        idle_timeout_secs: 600,
        last_seen_at: now(),
        elevated_until: None,
        client: None,
        user_agent: None,
        auth_strength: AuthStrength::Password,
    };
    store.create_session(&change("auth.login", &alice.subject()), &session, &TokenHash([7; 32])).await.unwrap();
    let disabled: Record =
        serde_json::from_value(json!({"kind": "user", "name": "alice", "disabled": true, "profile": {"display_name": "Alice"}})).unwrap();
    let counts = import(store, &[disabled], 10).await.unwrap();
    assert_eq!(counts, ImportCounts { created: 0, updated: 1, unchanged: 0 });
    let alice2 = store.user(&by_name("alice")).await.unwrap().unwrap();
    assert!(alice2.disabled && alice2.has_password && alice2.id == alice.id);
    assert!(store.session(&TokenHash([7; 32]), now()).await.unwrap().is_none(), "sessions end");

    // A cycle is refused at its line; a name held by another kind of account too.
    let cycle: Record = serde_json::from_value(json!({"kind": "member", "group": "eng", "member": "group:staff"})).unwrap();
    let err = import(store, &[cycle], 10).await.unwrap_err();
    assert_eq!((err.line, err.error.code()), (2, "group.cycle"));
    let clash: Record = serde_json::from_value(json!({"kind": "user", "name": "ci-bot"})).unwrap();
    let err = import(store, &[clash], 10).await.unwrap_err();
    assert_eq!((err.line, err.error.code()), (2, "name.taken"));

    // Into an empty SQLite store (from either backend): it exports identically.
    let dir = tempfile::tempdir().unwrap();
    let other = SqliteStore::open(&format!("sqlite://{}/other.db", dir.path().display())).await.unwrap();
    other.ensure_builtins(now()).await.unwrap();
    let exported = export(store, true).await;
    import(&other, &exported, 4).await.unwrap();
    assert_eq!(export(&other, true).await, exported);
    other.close().await;

    // Within a batch, kinds are applied in replay order: a membership may come before its user.
    let interleaved: Vec<Record> = vec![
        serde_json::from_value(json!({"kind": "member", "group": "staff", "member": "user:zed"})).unwrap(),
        serde_json::from_value(json!({"kind": "user", "name": "zed"})).unwrap(),
    ];
    assert_eq!(import(store, &interleaved, 10).await.unwrap(), ImportCounts { created: 2, updated: 0, unchanged: 0 });

    let names = [n("alice"), n("staff"), n("nobody")];
    let mut found: Vec<(SubjectKind, String)> =
        store.subjects_with_names(&names).await.unwrap().into_iter().map(|s| (s.kind, s.name.to_string())).collect();
    found.sort();
    assert_eq!(found, [(SubjectKind::User, "alice".to_owned()), (SubjectKind::Group, "staff".to_owned())]);
}

// ---------------------------------------------------------------------------------------------
// Sign-in by primary e-mail address.

async fn primary_email(store: &dyn Store) {
    let email = |address: &str, primary: bool| EmailAddress { address: address.into(), primary, verified: true };
    let with = |name: &str, emails: Vec<EmailAddress>| User { profile: Profile { emails, ..Profile::default() }, ..new_user(name) };
    let alice = with("alice", vec![email("Alice@Example.org", true), email("a@example.com", false)]);
    store.create_user(&change("user.create", &alice.subject()), &alice, None).await.unwrap();
    let found = |address: &'static str| async move {
        store.users_with_primary_email(address).await.unwrap().iter().map(ToString::to_string).collect::<Vec<_>>()
    };
    assert_eq!(found("alice@example.org").await, ["alice"], "ASCII case does not matter");
    assert_eq!(found("ALICE@EXAMPLE.ORG").await, ["alice"]);
    assert!(found("a@example.com").await.is_empty(), "only the primary address signs in");
    assert!(found("nobody@example.org").await.is_empty());

    // The primary address follows updates, and a shared one names both holders.
    let moved = User { profile: Profile { emails: vec![email("alice@new.example", true)], ..Profile::default() }, ..alice.clone() };
    store.update_user(&change("user.update", &alice.subject()), &moved, false).await.unwrap();
    assert!(found("alice@example.org").await.is_empty());
    assert_eq!(found("alice@new.example").await, ["alice"]);
    let twin = with("twin", vec![email("alice@new.example", true)]);
    store.create_user(&change("user.create", &twin.subject()), &twin, None).await.unwrap();
    assert_eq!(found("alice@new.example").await, ["alice", "twin"]);
}

/// Migration 0009 turns break-glass accounts made as users (before it) into service accounts
/// with their ids, memberships and display name (as the description), and nothing else. Run on
/// a current database whose break-glass rows are put back into their old shape first.
async fn break_glass_migration(
    store: &dyn Store,
    run: &mut (dyn FnMut(&'static str) -> futures_util::future::BoxFuture<'static, ()> + Send),
) {
    store.ensure_builtins(now()).await.unwrap();
    let alice = create_user(store, "alice").await;
    run("UPDATE accounts SET kind = 'user', description = NULL, profile = '{\"display_name\":\"Break-glass system administrator\"}' \
         WHERE name IN ('admin', 'idm_admin')")
    .await;
    assert_eq!(user_names(store).await, ["admin", "alice", "idm_admin"], "the shape before the migration");
    let migration = match store.backend() {
        "sqlite" => include_str!("../migrations/sqlite/0009_break_glass_service_accounts.sql"),
        _ => include_str!("../migrations/postgres/0009_break_glass_service_accounts.sql"),
    };
    run(migration).await;
    assert_eq!(user_names(store).await, ["alice"]);
    let admin = store.service_account(&NameOrId::Id(ADMIN_ID)).await.unwrap().unwrap();
    assert_eq!((admin.name.as_str(), admin.description.as_deref()), ("admin", Some("Break-glass system administrator")));
    assert_eq!(store.service_account(&NameOrId::Id(IDM_ADMIN_ID)).await.unwrap().unwrap().name.as_str(), "idm_admin");
    let system_admins = store.group(&NameOrId::Id(SYSTEM_ADMINS_GROUP)).await.unwrap().unwrap();
    assert_eq!(members(store, &system_admins, false).await, [m("admin", SubjectKind::ServiceAccount, true)]);
    assert_eq!(store.user(&NameOrId::Id(alice.id)).await.unwrap().map(|u| u.name), Some(alice.name), "others untouched");
}

/// Migration 0013 marks every address stored before it verified (administrators set them),
/// in order, and signs in by a primary address only while it is verified.
async fn verified_email_migration(
    store: &dyn Store,
    run: &mut (dyn FnMut(&'static str) -> futures_util::future::BoxFuture<'static, ()> + Send),
) {
    let emails = |list: &[&str]| {
        list.iter().enumerate().map(|(i, a)| EmailAddress { address: (*a).into(), primary: i == 0, verified: false }).collect()
    };
    let bob = User { profile: Profile { emails: emails(&["bob@example.org", "b@example.com"]), ..Profile::default() }, ..new_user("bob") };
    store.create_user(&change("user.create", &bob.subject()), &bob, None).await.unwrap();
    assert!(store.users_with_primary_email("bob@example.org").await.unwrap().is_empty(), "an unverified address does not sign in");
    // The shape before the flag existed.
    run("UPDATE accounts SET profile = '{\"emails\":[{\"address\":\"bob@example.org\",\"primary\":true},{\"address\":\"b@example.com\",\"primary\":false}]}' WHERE name = 'bob'").await;
    let migration = match store.backend() {
        "sqlite" => include_str!("../migrations/sqlite/0013_verified_email.sql"),
        _ => include_str!("../migrations/postgres/0013_verified_email.sql"),
    };
    run(migration).await;
    let read = store.user(&NameOrId::Id(bob.id)).await.unwrap().unwrap();
    let flags: Vec<_> = read.profile.emails.iter().map(|e| (e.address.as_str(), e.primary, e.verified)).collect();
    assert_eq!(flags, [("bob@example.org", true, true), ("b@example.com", false, true)]);
    assert_eq!(
        store.users_with_primary_email("BOB@example.org").await.unwrap().iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["bob"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_migrations() {
    use sqlx::sqlite::SqliteConnection;
    let dir = tempfile::TempDir::new().expect("temporary directory");
    let url = format!("sqlite://{}/warden.db", dir.path().display());
    let store = SqliteStore::open(&url).await.expect("open the SQLite store");
    let conn = Arc::new(tokio::sync::Mutex::new(SqliteConnection::connect(&url).await.expect("a second connection")));
    let mut run = move |sql: &'static str| -> futures_util::future::BoxFuture<'static, ()> {
        let conn = conn.clone();
        Box::pin(async move {
            sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn.lock().await).await.expect(sql);
        })
    };
    break_glass_migration(&store, &mut run).await;
    verified_email_migration(&store, &mut run).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_migrations() {
    let server = pg_server();
    let mut admin = PgConnection::connect(&format!("{server}/postgres"))
        .await
        .expect("PostgreSQL is required by the conformance suite (scripts/postgres-up.sh starts one)");
    let db = format!("warden_t_{}", Uuid::now_v7().simple());
    execute(&mut admin, format!("CREATE DATABASE {db}")).await.expect("CREATE DATABASE");
    let url = format!("{server}/{db}");
    let store = PgStore::open(&url).await.expect("open the PostgreSQL store");
    let conn = Arc::new(tokio::sync::Mutex::new(PgConnection::connect(&url).await.expect("a second connection")));
    let mut run = move |sql: &'static str| -> futures_util::future::BoxFuture<'static, ()> {
        let conn = conn.clone();
        Box::pin(async move {
            sqlx::raw_sql(AssertSqlSafe(sql)).execute(&mut *conn.lock().await).await.expect(sql);
        })
    };
    let outcome = tokio::spawn(async move {
        break_glass_migration(&store, &mut run).await;
        verified_email_migration(&store, &mut run).await;
        store.close().await;
    })
    .await;
    execute(&mut admin, format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await.expect("DROP DATABASE");
    rethrow(outcome);
}

// ---------------------------------------------------------------------------------------------
// One-time tokens.

fn recovery_token(account: Uuid, at: OffsetDateTime, ttl: Duration) -> OneTimeToken {
    OneTimeToken {
        id: Uuid::now_v7(),
        purpose: TokenPurpose::Recovery,
        account_id: account,
        created_at: at,
        expires_at: at + ttl,
        consumed_at: None,
        issued_by: Some(IDM_ADMIN_ID),
        detail: None,
    }
}

fn issue_change(user: &User, token: &OneTimeToken) -> Change {
    let action = Action::RecoveryLinkIssue { token_id: token.id, expires_at: token.expires_at.to_string() };
    Change::new(token.created_at, Some(&admin()), action, Some(&user.subject()))
}

fn redeem_change(user: &User, token: &OneTimeToken, at: OffsetDateTime, session: Uuid) -> Change {
    let action = Action::RecoveryLinkRedeem {
        token_id: token.id,
        purpose: "recovery".into(),
        issued_by: token.issued_by,
        client: None,
        session_id: session,
        sessions_ended: 0,
    };
    Change::new(at, Some(&user.subject()), action, Some(&user.subject()))
}

/// A redemption of `token` (by its text) for `user` at `at`, with a session of its own.
fn recovery(user: &User, token: &str, at: OffsetDateTime) -> Recovery {
    let session = SessionRecord {
        id: Uuid::now_v7(),
        account_id: user.id,
        created_at: at,
        expires_at: at + Duration::hours(8),
        idle_timeout_secs: 3600,
        last_seen_at: at,
        elevated_until: None,
        client: None,
        user_agent: None,
        auth_strength: AuthStrength::Password,
    };
    let session_token = TokenHash::of(&format!("wds_{}", session.id.simple()));
    Recovery {
        token: TokenHash::of(token),
        purpose: TokenPurpose::Recovery,
        account: user.id,
        password_hash: "new-hash".into(),
        session,
        session_token,
    }
}

async fn redeem(store: &dyn Store, user: &User, token: &OneTimeToken, text: &str, at: OffsetDateTime) -> bool {
    let recovery = recovery(user, text, at);
    store.redeem_recovery(&redeem_change(user, token, at, recovery.session.id), &recovery).await.unwrap()
}

async fn one_time_tokens(store: &dyn Store) {
    let dana = create_user(store, "dana").await;
    let erin = create_user(store, "erin").await;
    let t0 = now();

    // Unknown: refused, nothing written.
    let ghost = recovery_token(dana.id, t0, Duration::hours(1));
    let before = state(store).await;
    assert!(!redeem(store, &dana, &ghost, "wdo_unknown", t0).await);
    assert_eq!(state(store).await, before, "a refused redemption writes nothing, not even its event");

    // Issued: found by its hash only, not consumed by reading.
    let first = recovery_token(dana.id, t0, Duration::hours(1));
    store.issue_one_time_token(&issue_change(&dana, &first), &first, &TokenHash::of("wdo_first"), true).await.unwrap();
    assert_eq!(store.one_time_token(&TokenHash::of("wdo_first")).await.unwrap(), Some(first.clone()));
    assert_eq!(store.one_time_token(&TokenHash::of("wdo_first")).await.unwrap().unwrap().consumed_at, None, "reading consumes nothing");
    assert!(store.one_time_token(&TokenHash::of("wdo_other")).await.unwrap().is_none());

    // A newer token for the same account ends the older one; another account's stays.
    let for_erin = recovery_token(erin.id, t0, Duration::hours(1));
    store.issue_one_time_token(&issue_change(&erin, &for_erin), &for_erin, &TokenHash::of("wdo_erin"), true).await.unwrap();
    let second = recovery_token(dana.id, t0, Duration::hours(1));
    store.issue_one_time_token(&issue_change(&dana, &second), &second, &TokenHash::of("wdo_second"), true).await.unwrap();
    assert!(store.one_time_token(&TokenHash::of("wdo_first")).await.unwrap().is_none(), "the older link is gone");
    assert!(!redeem(store, &dana, &first, "wdo_first", t0).await);
    assert!(store.one_time_token(&TokenHash::of("wdo_erin")).await.unwrap().is_some(), "another account's link stays");

    // Another account's token does not redeem for this one.
    assert!(!redeem(store, &dana, &for_erin, "wdo_erin", t0).await);

    // Expired: refused at and after its expiry.
    let short = recovery_token(erin.id, t0, Duration::minutes(5));
    store.issue_one_time_token(&issue_change(&erin, &short), &short, &TokenHash::of("wdo_short"), true).await.unwrap();
    assert!(!redeem(store, &erin, &short, "wdo_short", t0 + Duration::minutes(5)).await, "expired");
    assert!(store.one_time_token(&TokenHash::of("wdo_short")).await.unwrap().unwrap().consumed_at.is_none());

    // Redeemed once: password set, every earlier session ended, the new one created.
    let old = recovery(&dana, "wdo_x", t0);
    store.create_session(&change("auth.login", &dana.subject()), &old.session, &old.session_token).await.unwrap();
    let r = store.revision().await.unwrap();
    let redemption = recovery(&dana, "wdo_second", t0 + Duration::minutes(1));
    let at = t0 + Duration::minutes(1);
    assert!(store.redeem_recovery(&redeem_change(&dana, &second, at, redemption.session.id), &redemption).await.unwrap());
    assert!(store.revision().await.unwrap() > r, "ending sessions takes a revision (other nodes drop them)");
    assert_eq!(store.password_hash(dana.id).await.unwrap().as_deref(), Some("new-hash"));
    assert!(store.session(&old.session_token, at).await.unwrap().is_none(), "the earlier session ended");
    assert!(store.session(&redemption.session_token, at).await.unwrap().is_some(), "the new session exists");
    let stored = store.one_time_token(&TokenHash::of("wdo_second")).await.unwrap().unwrap();
    assert_eq!(stored.consumed_at, Some(at));
    let events =
        store.audit(&AuditQuery { action_prefix: Some("credential.recovery_link.redeem".into()), ..AuditQuery::default() }).await.unwrap();
    assert_eq!(events.items.len(), 1);
    assert_eq!(events.items[0].details["sessions_ended"], json!(1));

    // Consumed: refused, nothing written.
    let before = state(store).await;
    assert!(!redeem(store, &dana, &second, "wdo_second", at).await);
    assert_eq!(state(store).await, before);
}

/// Fifty redemptions of one token at once: exactly one wins, on every backend.
async fn one_time_token_race(store: Arc<dyn Store>) {
    let fred = create_user(&*store, "fred").await;
    let t0 = now();
    let token = recovery_token(fred.id, t0, Duration::hours(1));
    store.issue_one_time_token(&issue_change(&fred, &token), &token, &TokenHash::of("wdo_race"), true).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (store, fred, token) = (store.clone(), fred.clone(), token.clone());
        tasks.push(tokio::spawn(async move { redeem(&*store, &fred, &token, "wdo_race", now()).await }));
    }
    let mut wins = 0;
    for task in tasks {
        wins += usize::from(task.await.unwrap());
    }
    assert_eq!(wins, 1, "exactly one concurrent redemption succeeds");
    let events =
        store.audit(&AuditQuery { action_prefix: Some("credential.recovery_link.redeem".into()), ..AuditQuery::default() }).await.unwrap();
    assert_eq!(events.items.len(), 1, "only the winner is audited");
}

/// A user and its first bindings are one transaction: each change keeps its event and
/// revision, and a binding that cannot be written (no such tenant) leaves no user behind.
async fn user_with_bindings(store: &dyn Store) {
    create_tenant(store, "acme").await;
    create_role(store, "desk", "acme", &["tickets:read"]).await;
    create_role(store, "support", "acme", &["tickets:write"]).await;
    let before = state(store).await;
    let bob = new_user("bob");
    let grants: Vec<(Change, Binding)> = ["desk", "support"]
        .iter()
        .map(|role| (change("binding.create", &bob.subject()), new_binding(role, &bob.subject(), "acme", &[])))
        .collect();
    let created =
        store.create_user_with_bindings(&change("user.create", &bob.subject()), &bob, Some("$argon2id$x"), &grants).await.unwrap();
    assert!(created.has_password);
    assert_eq!(state(store).await, (before.0 + 3, before.1 + 3));
    let bound = bindings_where(store, Some(bob.id), None, None).await;
    assert_eq!(sorted_by_id(bound), grants.iter().map(|(_, b)| b.clone()).collect::<Vec<_>>());

    let before = state(store).await;
    let carol = new_user("carol");
    let grants = vec![
        (change("binding.create", &carol.subject()), new_binding("desk", &carol.subject(), "acme", &[])),
        (change("binding.create", &carol.subject()), new_binding("desk", &carol.subject(), "nowhere", &[])),
    ];
    let e = store.create_user_with_bindings(&change("user.create", &carol.subject()), &carol, None, &grants).await.unwrap_err();
    assert!(matches!(e, StoreError::NotFound(_)), "{e:?}");
    assert_eq!(state(store).await, before);
    assert!(store.user(&by_name("carol")).await.unwrap().is_none());
    assert!(bindings_where(store, Some(carol.id), None, None).await.is_empty());
}

fn registration_token(max_uses: u32, expires_at: OffsetDateTime, roles: &[&str]) -> RegistrationToken {
    RegistrationToken {
        id: Uuid::now_v7(),
        tenant: n("default"),
        roles: roles.iter().map(|r| n(r)).collect(),
        max_uses,
        uses_left: max_uses,
        created_at: now(),
        expires_at,
        revoked_at: None,
        created_by: Some(ADMIN_ID),
        email: None,
    }
}

fn token_change(action: Action) -> Change {
    Change::new(now(), Some(&admin()), action, None)
}

async fn create_registration_token(store: &dyn Store, token: &RegistrationToken, secret: &str) {
    let action = Action::RegistrationTokenCreate {
        token_id: token.id,
        tenant: token.tenant.clone(),
        roles: token.roles.iter().map(ToString::to_string).collect(),
        max_uses: token.max_uses,
        expires_at: "2030-01-01T00:00:00Z".into(),
    };
    store.create_registration_token(&token_change(action), token, &TokenHash::of(secret), &[]).await.unwrap();
}

/// Registers `name` with `secret` (or none) at `at`, binding the token's roles.
async fn register(store: &dyn Store, name: &str, secret: Option<&str>, roles: &[&str], at: OffsetDateTime) -> bool {
    let user = new_user(name);
    let bindings =
        roles.iter().map(|role| (change("binding.create", &user.subject()), new_binding(role, &user.subject(), "default", &[]))).collect();
    let action = Action::UserRegister { token_id: None, client: Some("203.0.113.7".into()), password: true, emails_to_verify: 0 };
    let change = Change::new(at, None, action, Some(&user.subject()));
    let registration =
        Registration { user, password_hash: Some("$argon2id$x".into()), token: secret.map(TokenHash::of), bindings, mails: Vec::new() };
    store.register(&change, &registration).await.unwrap()
}

/// Registration tokens are kept by hash, counted down by each registration, and refuse (with
/// nothing written) once used up, expired or revoked; public registration needs none.
async fn registration_tokens(store: &dyn Store) {
    create_role(store, "desk", "default", &["tickets:read"]).await;
    let t0 = now();
    let token = registration_token(2, t0 + Duration::hours(1), &["desk"]);
    create_registration_token(store, &token, "wdr_two").await;
    let stored = store.registration_token(&TokenHash::of("wdr_two")).await.unwrap().unwrap();
    assert_eq!(stored, token);
    assert!(stored.is_usable(t0));
    assert!(store.registration_token(&TokenHash::of("wdr_nope")).await.unwrap().is_none());

    let before = state(store).await;
    assert!(register(store, "reg1", Some("wdr_two"), &["desk"], now()).await);
    assert_eq!(state(store).await, (before.0 + 2, before.1 + 2), "the registration and its binding");
    assert_eq!(bindings_where(store, store.user(&by_name("reg1")).await.unwrap().map(|u| u.id), None, None).await.len(), 1);
    assert_eq!(store.registration_token(&TokenHash::of("wdr_two")).await.unwrap().unwrap().uses_left, 1);
    // Expired at the change's time: refused; the use left stays.
    let before = state(store).await;
    assert!(!register(store, "late", Some("wdr_two"), &["desk"], t0 + Duration::hours(2)).await);
    assert!(!register(store, "nobody", Some("wdr_nope"), &[], now()).await);
    assert_eq!(state(store).await, before);
    assert!(store.user(&by_name("late")).await.unwrap().is_none());
    assert!(register(store, "reg2", Some("wdr_two"), &["desk"], now()).await);
    // Used up.
    assert!(!register(store, "reg3", Some("wdr_two"), &["desk"], now()).await);
    assert!(store.user(&by_name("reg3")).await.unwrap().is_none());
    assert!(!store.registration_token(&TokenHash::of("wdr_two")).await.unwrap().unwrap().is_usable(now()));

    // Revoked.
    let other = registration_token(5, t0 + Duration::hours(1), &[]);
    create_registration_token(store, &other, "wdr_five").await;
    let revoke = token_change(Action::RegistrationTokenRevoke { token_id: other.id });
    assert!(store.revoke_registration_token(&revoke, other.id).await.unwrap());
    assert!(!store.revoke_registration_token(&revoke, other.id).await.unwrap(), "once");
    assert!(!store.revoke_registration_token(&revoke, Uuid::now_v7()).await.unwrap());
    assert!(!register(store, "reg4", Some("wdr_five"), &[], now()).await);
    let listed: Vec<Uuid> = store.registration_tokens().await.unwrap().into_iter().map(|t| t.id).collect();
    assert_eq!(listed, [other.id, token.id], "newest first");

    // Public mode: no token, no bindings.
    assert!(register(store, "walk-in", None, &[], now()).await);
    let walk_in = store.user(&by_name("walk-in")).await.unwrap().unwrap();
    assert!(walk_in.has_password);
    let events = store.audit(&AuditQuery { action_prefix: Some("user.register".into()), ..AuditQuery::default() }).await.unwrap();
    assert_eq!(events.items.len(), 3);
}

/// 20 concurrent registrations on a 3-use token: exactly 3 users.
async fn registration_race(store: Arc<dyn Store>) {
    let token = registration_token(3, now() + Duration::hours(1), &[]);
    create_registration_token(&*store, &token, "wdr_race").await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move { register(&*store, &format!("racer{i}"), Some("wdr_race"), &[], now()).await }));
    }
    let mut wins = 0;
    for task in tasks {
        wins += usize::from(task.await.unwrap());
    }
    assert_eq!(wins, 3, "exactly the token's uses succeed");
    assert_eq!(user_names(&*store).await.iter().filter(|n| n.starts_with("racer")).count(), 3);
    let events = store.audit(&AuditQuery { action_prefix: Some("user.register".into()), ..AuditQuery::default() }).await.unwrap();
    assert_eq!(events.items.len(), 3, "only the winners are audited");
    assert_eq!(store.registration_token(&TokenHash::of("wdr_race")).await.unwrap().unwrap().uses_left, 0);
}

// ---------------------------------------------------------------------------------------------
// The mail queue.

/// Mail is queued with its change; of senders taking at once each mail goes to one; a lease
/// hides a taken mail until it runs out; the outcomes are kept; the per-account limit counts
/// inside the write.
async fn mail_queue(store: Arc<dyn Store>) {
    use warden_store::{MailKind, MailOutcome, QueuedMail};
    let alice = create_user(&*store, "alice").await;
    let at = now();
    let mails: Vec<QueuedMail> =
        (0..30).map(|i| QueuedMail::new(MailKind::PasswordReset, format!("a{i}@example.org"), Some(alice.id), None, at)).collect();
    let notice = Action::AccountNoticeSend { mail_id: mails[0].id, address: "a0@example.org".into() };
    store.queue_mail(&Change::new(at, Some(&admin()), notice, Some(&alice.subject())), &mails).await.unwrap();

    // Four senders at once: every mail is taken exactly once.
    let lease = at + time::Duration::minutes(5);
    let takers: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.take_mail(at, lease, 10).await.unwrap() })
        })
        .collect();
    let mut taken = Vec::new();
    for t in takers {
        taken.extend(t.await.unwrap());
    }
    let mut ids: Vec<Uuid> = taken.iter().map(|m| m.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!((taken.len(), ids.len()), (30, 30), "each mail to one sender");
    assert!(taken.iter().all(|m| m.attempts == 1 && m.account_id == Some(alice.id)));
    assert!(store.take_mail(at, lease, 10).await.unwrap().is_empty(), "leased mail is not taken again");

    // Outcomes: sent stays sent; a retry waits for its time; a given-up mail is never taken.
    store.finish_mail(mails[0].id, at, &MailOutcome::Sent).await.unwrap();
    let later = at + time::Duration::minutes(1);
    store.finish_mail(mails[1].id, at, &MailOutcome::Retry { error: "451".into(), next: later }).await.unwrap();
    store.finish_mail(mails[2].id, at, &MailOutcome::GaveUp { error: "550".into() }).await.unwrap();
    assert!(store.take_mail(at, lease, 100).await.unwrap().is_empty(), "the retry is not due yet");
    let retried = store.take_mail(later, later + time::Duration::minutes(5), 100).await.unwrap();
    assert_eq!(retried.iter().map(|m| (m.id, m.attempts)).collect::<Vec<_>>(), [(mails[1].id, 2)]);
    // Past the lease, the 27 never finished are taken again (their sender died).
    let again = store.take_mail(lease, lease + time::Duration::minutes(5), 100).await.unwrap();
    assert_eq!(again.len(), 27, "the 27 unfinished; the retried one is leased a minute longer");
    let statuses = store.mails(100).await.unwrap();
    let of = |id: Uuid| statuses.iter().find(|s| s.mail.id == id).unwrap();
    assert!(of(mails[0].id).sent_at.is_some());
    assert_eq!(of(mails[2].id).last_error.as_deref(), Some("550"));
    assert!(of(mails[2].id).failed_at.is_some());

    // The per-account limit: 30 queued since `at`, so a limit of 30 refuses and writes nothing.
    let one = QueuedMail::new(MailKind::PasswordReset, "a@example.org", Some(alice.id), None, at);
    let request = || Change::new(at, None, Action::PasswordResetRequest { mail_id: one.id, client: None }, Some(&alice.subject()));
    assert!(!store.queue_mail_within(&request(), &one, at, 30).await.unwrap());
    assert_eq!(store.mails(100).await.unwrap().len(), 30, "nothing written");
    assert!(store.queue_mail_within(&request(), &one, at, 31).await.unwrap());
    assert_eq!(store.mails(100).await.unwrap().len(), 31);
}

/// Preferences: per account and tenant, replaced whole, audited without a revision, gone with
/// the account or the tenant; an unknown account or tenant is `NotFound` and writes nothing.
async fn preferences(store: &dyn Store) {
    use warden_core::preferences::{TenantPreferences, Theme};
    let alice = create_user(store, "alice").await;
    let bob = create_user(store, "bob").await;
    create_tenant(store, "acme").await;
    let default = n(DEFAULT_TENANT);
    let acme = n("acme");
    let set = |account: &User, tenant: &Name| {
        Change::new(now(), Some(&account.subject()), Action::PreferencesSet { tenant: tenant.clone() }, Some(&account.subject()))
    };
    assert_eq!(store.preferences(alice.id, &default).await.unwrap(), None);

    let dark = TenantPreferences {
        theme: Some(Theme::Dark),
        timezone: Some("Europe/Berlin".into()),
        default_namespace: Some("prod.team-a".into()),
        values: serde_json::from_value(json!({"page_size": 50, "pinned": ["a", "b"]})).unwrap(),
    };
    let before = state(store).await;
    store.set_preferences(&set(&alice, &default), alice.id, &default, &dark).await.unwrap();
    let after = state(store).await;
    assert_eq!((after.0, after.1), (before.0, before.1 + 1), "one audit event, no revision");
    let stored = store.preferences(alice.id, &default).await.unwrap().unwrap();
    assert_eq!(stored.preferences, dark);
    assert!(stored.updated_at >= alice.created_at);
    // Per tenant and per account.
    assert_eq!(store.preferences(alice.id, &acme).await.unwrap(), None);
    assert_eq!(store.preferences(bob.id, &default).await.unwrap(), None);
    let light = TenantPreferences { theme: Some(Theme::Light), ..TenantPreferences::default() };
    store.set_preferences(&set(&alice, &acme), alice.id, &acme, &light).await.unwrap();
    store.set_preferences(&set(&bob, &default), bob.id, &default, &light).await.unwrap();
    assert_eq!(store.preferences(alice.id, &default).await.unwrap().unwrap().preferences, dark);
    // Replaced whole.
    store.set_preferences(&set(&alice, &default), alice.id, &default, &light).await.unwrap();
    assert_eq!(store.preferences(alice.id, &default).await.unwrap().unwrap().preferences, light);

    // Unknown tenant or account: NotFound, nothing written.
    let before = state(store).await;
    let err = store.set_preferences(&set(&alice, &n("nowhere")), alice.id, &n("nowhere"), &light).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let ghost = new_user("ghost");
    let err = store.set_preferences(&set(&ghost, &default), ghost.id, &default, &light).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(state(store).await, before);

    // Gone with the tenant, and with the account.
    store.delete_tenant(&Change::new(now(), Some(&admin()), Action::TenantDelete { tenant: acme.clone() }, None), &acme).await.unwrap();
    assert_eq!(store.preferences(alice.id, &acme).await.unwrap(), None);
    let delete = Change::new(now(), Some(&admin()), Action::UserDelete { name_reserved_until: None }, Some(&alice.subject()));
    store.delete_account(&delete, alice.id, None).await.unwrap();
    assert_eq!(store.preferences(alice.id, &default).await.unwrap(), None);
    assert!(store.preferences(bob.id, &default).await.unwrap().is_some(), "bob's stay");
}

fn passkey(account: Uuid, credential_id: &[u8]) -> PasskeyRecord {
    PasskeyRecord {
        id: Uuid::now_v7(),
        account_id: account,
        credential_id: credential_id.to_vec(),
        name: "laptop".into(),
        credential: "{}".into(),
        sign_count: 0,
        created_at: now(),
        last_used_at: None,
    }
}

/// Passkeys: a credential id belongs to one passkey; a use is taken only if the counter moves
/// forward (or both are 0); a ceremony is taken once, only as its own kind and before it
/// expires, and of fifty concurrent takers exactly one gets it; removing a passkey leaves the
/// others and is audited; an account's deletion takes its passkeys and ceremonies with it.
async fn passkeys(store: Arc<dyn Store>) {
    let fred = create_user(&*store, "fred").await;
    let wilma = create_user(&*store, "wilma").await;
    let key = passkey(fred.id, b"cred-1");
    assert!(store.add_passkey(&change("credential.passkey.register", &fred.subject()), &key).await.unwrap());
    let events = audit_count(&*store).await;
    assert!(!store.add_passkey(&change("credential.passkey.register", &wilma.subject()), &passkey(wilma.id, b"cred-1")).await.unwrap());
    assert_eq!(audit_count(&*store).await, events, "a refused registration writes nothing");
    let other = passkey(fred.id, b"cred-2");
    assert!(store.add_passkey(&change("credential.passkey.register", &fred.subject()), &other).await.unwrap());
    assert_eq!(store.passkeys(fred.id).await.unwrap().len(), 2);
    assert_eq!(store.passkey_by_credential_id(b"cred-1").await.unwrap().unwrap().id, key.id);
    assert!(store.passkey_by_credential_id(b"nobody").await.unwrap().is_none());

    // The counter: 0 stays usable for authenticators without one; once it moved, only forward.
    assert_eq!(store.use_passkey(key.id, "{\"n\":0}", 0, now()).await.unwrap(), PasskeyUse::Taken);
    assert_eq!(store.use_passkey(key.id, "{\"n\":5}", 5, now()).await.unwrap(), PasskeyUse::Taken);
    assert_eq!(store.use_passkey(key.id, "{\"n\":5}", 5, now()).await.unwrap(), PasskeyUse::CounterBehind, "a replay");
    assert_eq!(store.use_passkey(key.id, "{\"n\":3}", 3, now()).await.unwrap(), PasskeyUse::CounterBehind, "a clone");
    assert_eq!(store.use_passkey(key.id, "{\"n\":0}", 0, now()).await.unwrap(), PasskeyUse::CounterBehind, "no going back to 0");
    let stored = store.passkey_by_credential_id(b"cred-1").await.unwrap().unwrap();
    assert_eq!((stored.sign_count, stored.credential.as_str()), (5, "{\"n\":5}"));
    assert!(stored.last_used_at.is_some());
    assert_eq!(store.use_passkey(Uuid::now_v7(), "{}", 9, now()).await.unwrap(), PasskeyUse::Gone);

    // Renaming and removing touch only the owner's passkey.
    assert!(!store.rename_passkey(&change("credential.passkey.rename", &wilma.subject()), wilma.id, key.id, "mine").await.unwrap());
    assert!(store.rename_passkey(&change("credential.passkey.rename", &fred.subject()), fred.id, key.id, "old laptop").await.unwrap());
    assert!(!store.remove_passkey(&change("credential.passkey.remove", &wilma.subject()), wilma.id, key.id).await.unwrap());
    assert!(store.remove_passkey(&change("credential.passkey.remove", &fred.subject()), fred.id, key.id).await.unwrap());
    let left: Vec<String> = store.passkeys(fred.id).await.unwrap().into_iter().map(|p| p.name).collect();
    assert_eq!(left, ["laptop"]);
    let counts = store.factor_counts(fred.id).await.unwrap();
    assert_eq!((counts.totp, counts.backup_codes_left, counts.passkeys), (false, 0, 1));
    assert_eq!(store.factor_counts(wilma.id).await.unwrap(), warden_store::FactorCounts::default());

    // Ceremonies: once, as their kind, before they expire.
    let t0 = now();
    let hash = |s: &str| TokenHash::of(s);
    store.start_ceremony(&hash("wdo_a"), CeremonyKind::SignIn, None, "state-a", t0 + Duration::minutes(5), t0).await.unwrap();
    assert!(store.take_ceremony(&hash("wdo_a"), CeremonyKind::Register, t0).await.unwrap().is_none(), "another kind");
    assert!(store.take_ceremony(&hash("wdo_a"), CeremonyKind::SignIn, t0).await.unwrap().is_none(), "spent by the first try");
    store.start_ceremony(&hash("wdo_b"), CeremonyKind::Reauth, Some(fred.id), "state-b", t0 + Duration::minutes(5), t0).await.unwrap();
    let taken = store.take_ceremony(&hash("wdo_b"), CeremonyKind::Reauth, t0).await.unwrap().unwrap();
    assert_eq!((taken.account_id, taken.state.as_str()), (Some(fred.id), "state-b"));
    store.start_ceremony(&hash("wdo_c"), CeremonyKind::SignIn, None, "state-c", t0 + Duration::minutes(5), t0).await.unwrap();
    assert!(store.take_ceremony(&hash("wdo_c"), CeremonyKind::SignIn, t0 + Duration::minutes(6)).await.unwrap().is_none(), "expired");
    store.start_ceremony(&hash("wdo_race"), CeremonyKind::SignIn, None, "race", t0 + Duration::minutes(5), t0).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let store = store.clone();
        tasks
            .push(tokio::spawn(async move { store.take_ceremony(&TokenHash::of("wdo_race"), CeremonyKind::SignIn, now()).await.unwrap() }));
    }
    let mut wins = 0;
    for task in tasks {
        wins += usize::from(task.await.unwrap().is_some());
    }
    assert_eq!(wins, 1, "exactly one concurrent taker gets the ceremony");
    let unknown =
        store.start_ceremony(&hash("wdo_d"), CeremonyKind::Reauth, Some(Uuid::now_v7()), "x", t0 + Duration::minutes(5), t0).await;
    assert!(matches!(unknown, Err(StoreError::NotFound(_))), "{unknown:?}");
}

// ---------------------------------------------------------------------------------------------
// OpenID Connect clients.

fn new_oidc_client(name: &str, public: bool, service_account: Option<Subject>) -> OidcClient {
    let at = now();
    OidcClient {
        id: Uuid::now_v7(),
        client_id: n(name),
        display_name: format!("{name} app"),
        public,
        first_party: false,
        redirect_uris: vec![format!("https://{name}.example.org/cb")],
        post_logout_redirect_uris: vec![],
        scopes: vec!["openid".into(), "profile".into()],
        claims: vec![ClaimSet::Groups, ClaimSet::Roles],
        permissions_tenant: Some(n("default")),
        permissions_namespace: Some("prod".into()),
        signing_alg: SigningAlg::Es256,
        service_account,
        created_at: at,
        updated_at: at,
    }
}

fn oidc_change(action: Action) -> Change {
    Change::new(now(), Some(&admin()), action, None)
}

/// Clients are written with their audit events and no revision (nothing cached holds them); a
/// secret is kept only as its hash and never read with the client; a taken `client_id` is
/// `NameTaken`; rotating a public client's secret writes nothing; deleting a client's service
/// account unties it.
async fn oidc_clients(store: &dyn Store) {
    let bot = create_sa(store, "grafana-bot", None).await;
    let grafana = new_oidc_client("grafana", false, Some(bot.subject()));
    let create = |c: &OidcClient| oidc_change(Action::OidcClientCreate { id: c.id, client: c.client_id.clone(), public: c.public });
    let before = state(store).await;
    store.create_oidc_client(&create(&grafana), &grafana, Some(&TokenHash::of("wdc_one"))).await.unwrap();
    assert_eq!(state(store).await, (before.0, before.1 + 1), "an audit event, no revision");
    assert_eq!(store.oidc_client("grafana").await.unwrap().unwrap(), grafana);
    assert_eq!(store.oidc_client_secret(grafana.id).await.unwrap(), Some(TokenHash::of("wdc_one")));
    assert!(store.oidc_client("nope").await.unwrap().is_none());

    // The name is taken; nothing is written.
    let before = state(store).await;
    let twin = new_oidc_client("grafana", true, None);
    let err = store.create_oidc_client(&create(&twin), &twin, None).await.unwrap_err();
    assert!(matches!(err, StoreError::NameTaken(ref name) if name == "grafana"), "{err:?}");
    // A service account that does not exist.
    let ghost = Subject { kind: SubjectKind::ServiceAccount, id: Uuid::now_v7(), name: n("ghost") };
    let haunted = new_oidc_client("haunted", false, Some(ghost));
    let err = store.create_oidc_client(&create(&haunted), &haunted, Some(&TokenHash::of("wdc_x"))).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(state(store).await, before);

    // A public client: no secret, and none can be rotated in.
    let spa = new_oidc_client("spa", true, None);
    store.create_oidc_client(&create(&spa), &spa, None).await.unwrap();
    assert_eq!(store.oidc_client_secret(spa.id).await.unwrap(), None);
    let before = state(store).await;
    let rotate = |c: &OidcClient| oidc_change(Action::OidcClientSecretRotate { id: c.id, client: c.client_id.clone() });
    assert!(!store.rotate_oidc_client_secret(&rotate(&spa), spa.id, &TokenHash::of("wdc_two")).await.unwrap());
    assert_eq!(store.oidc_client_secret(spa.id).await.unwrap(), None);
    assert_eq!(state(store).await, before);
    // A confidential one: the new hash replaces the old.
    assert!(store.rotate_oidc_client_secret(&rotate(&grafana), grafana.id, &TokenHash::of("wdc_two")).await.unwrap());
    assert_eq!(store.oidc_client_secret(grafana.id).await.unwrap(), Some(TokenHash::of("wdc_two")));
    assert_eq!(state(store).await, (before.0 + 1, before.1 + 1), "every node's client cache must hear of it: a revision");
    let names: Vec<String> = store.oidc_clients().await.unwrap().iter().map(|c| c.client_id.to_string()).collect();
    assert_eq!(names, ["grafana", "spa"]);

    // An update writes every changeable field.
    let mut changed = store.oidc_client("grafana").await.unwrap().unwrap();
    changed.display_name = "Grafana".into();
    changed.first_party = true;
    changed.redirect_uris.push("http://localhost:3000/cb".into());
    changed.post_logout_redirect_uris = vec!["https://grafana.example.org/".into()];
    changed.claims = vec![ClaimSet::Permissions];
    changed.permissions_tenant = None;
    changed.permissions_namespace = None;
    changed.signing_alg = SigningAlg::EdDsa;
    changed.updated_at = now() + Duration::seconds(1);
    let update = |c: &OidcClient| {
        oidc_change(Action::OidcClientUpdate { id: c.id, client: c.client_id.clone(), fields: vec!["display_name".into()] })
    };
    assert!(store.update_oidc_client(&update(&changed), &changed).await.unwrap());
    assert_eq!(store.oidc_client("grafana").await.unwrap().unwrap(), changed);
    let missing = new_oidc_client("missing", false, None);
    assert!(!store.update_oidc_client(&update(&missing), &missing).await.unwrap());

    // The service account goes: the client stays, untied, and keeps its secret.
    store.delete_account(&change("service_account.delete", &bot.subject()), bot.id, None).await.unwrap();
    let untied = store.oidc_client("grafana").await.unwrap().unwrap();
    assert_eq!(untied.service_account, None);
    assert!(store.oidc_client_secret(grafana.id).await.unwrap().is_some());

    // Deleted, with its event; a second delete writes nothing.
    let delete = |c: &OidcClient| oidc_change(Action::OidcClientDelete { id: c.id, client: c.client_id.clone() });
    let before = state(store).await;
    assert!(store.delete_oidc_client(&delete(&grafana), grafana.id).await.unwrap());
    assert!(!store.delete_oidc_client(&delete(&grafana), grafana.id).await.unwrap());
    assert_eq!(state(store).await, (before.0 + 1, before.1 + 1), "every node's client cache must hear of it: a revision");
    assert!(store.oidc_client("grafana").await.unwrap().is_none());
    assert_eq!(store.oidc_client_secret(grafana.id).await.unwrap(), None);
    let events = audit_all(store).await;
    let names: Vec<&str> = events.iter().filter(|e| e.action.starts_with("oidc_client.")).map(|e| e.action.as_str()).collect();
    assert_eq!(names.iter().filter(|n| **n == "oidc_client.create").count(), 2);
    assert!(names.contains(&"oidc_client.secret.rotate") && names.contains(&"oidc_client.update") && names.contains(&"oidc_client.delete"));
    let created = events.iter().find(|e| e.action == "oidc_client.create").unwrap();
    assert_eq!((created.target_kind.as_deref(), created.target_name.as_deref()), (Some("oidc_client"), Some("grafana")));
}

/// The provider's one-time rules, held by the database: of 50 concurrent redemptions of one
/// code exactly one creates a grant and the others find it; of 50 concurrent uses of one
/// refresh token exactly one spends it; a revoked grant spends nothing; a grant lives only
/// while its session does, and the purge takes grants whose session is gone; consents widen
/// in place; keys are retired and forgotten.
async fn oidc_grants(store: Arc<dyn Store>) {
    let alice = create_user(&*store, "alice-rp").await.subject();
    let client = new_oidc_client("rp", false, None);
    let create = oidc_change(Action::OidcClientCreate { id: client.id, client: client.client_id.clone(), public: false });
    store.create_oidc_client(&create, &client, Some(&TokenHash::of("wdc_rp"))).await.unwrap();
    let t0 = now();
    let session = SessionRecord {
        id: Uuid::now_v7(),
        account_id: alice.id,
        created_at: t0,
        expires_at: t0 + Duration::hours(8),
        idle_timeout_secs: 1800,
        last_seen_at: t0,
        elevated_until: None,
        client: None,
        user_agent: None,
        auth_strength: AuthStrength::PasswordTotp,
    };
    store.create_session(&change("auth.login", &alice), &session, &TokenHash::of("wds_rp-session")).await.unwrap();
    let grant = |code: &str, refresh: &str| NewGrant {
        id: Uuid::now_v7(),
        client: client.id,
        account: alice.id,
        session: session.id,
        code: TokenHash::of(code),
        scopes: vec!["openid".into()],
        auth_time: t0,
        auth_strength: AuthStrength::PasswordTotp,
        created_at: t0,
        expires_at: t0 + Duration::days(30),
        refresh_token: TokenHash::of(refresh),
    };
    let grant_change = |g: &NewGrant| {
        Change::new(
            t0,
            Some(&alice),
            Action::OidcGrantCreate { grant: g.id, client: client.client_id.clone(), session: session.id, scopes: g.scopes.clone() },
            Some(&alice),
        )
    };

    // One code, 50 redemptions at once: one grant.
    let attempts: Vec<NewGrant> = (0..50).map(|i| grant("code-one", &format!("wdr_first-{i}"))).collect();
    let tasks = attempts.into_iter().map(|g| {
        let store = store.clone();
        let c = grant_change(&g);
        tokio::spawn(async move { (g.id, store.create_oidc_grant(&c, &g).await.unwrap()) })
    });
    let results: Vec<(Uuid, GrantCreated)> = futures_util::future::join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    let winners: Vec<Uuid> = results.iter().filter(|(_, r)| *r == GrantCreated::Created).map(|(id, _)| *id).collect();
    assert_eq!(winners.len(), 1, "one redemption creates the grant");
    for (_, r) in &results {
        if let GrantCreated::CodeUsed { grant } = r {
            assert_eq!(*grant, winners[0], "the others find the first grant");
        }
    }
    let first = store.oidc_grant(winners[0], t0).await.unwrap().unwrap();
    assert!(first.is_live(t0));
    assert_eq!((first.account, first.session, first.auth_strength), (alice.id, session.id, AuthStrength::PasswordTotp));
    assert_eq!(first.session_expires_at, Some(session.expires_at));

    // Its refresh token, used 50 times at once: spent once.
    let refresh = results.iter().position(|(id, _)| *id == winners[0]).unwrap();
    let old = TokenHash::of(&format!("wdr_first-{refresh}"));
    let (found, spent) = store.oidc_refresh_token(&old, t0).await.unwrap().unwrap();
    assert_eq!((found.id, spent), (first.id, false));
    let tasks = (0..50).map(|i| {
        let store = store.clone();
        let c = Change::new(t0, None, Action::OidcGrantRefresh { grant: first.id, client: client.client_id.clone() }, Some(&alice));
        let new = TokenHash::of(&format!("wdr_second-{i}"));
        tokio::spawn(async move { store.rotate_refresh_token(&c, first.id, &old, &new).await.unwrap() })
    });
    let spent_by: Vec<bool> = futures_util::future::join_all(tasks).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(spent_by.iter().filter(|s| **s).count(), 1, "one use spends a refresh token");
    assert!(store.oidc_refresh_token(&old, t0).await.unwrap().unwrap().1, "it is spent");

    // Revoked: nothing more is spent, and the grant says so.
    let next = (0..50).find(|i| spent_by[*i]).unwrap();
    let current = TokenHash::of(&format!("wdr_second-{next}"));
    let revoke = Change::new(
        t0,
        None,
        Action::OidcGrantRevoke {
            grant: first.id,
            client: client.client_id.clone(),
            reason: warden_core::change::GrantRevocation::Revoked,
        },
        Some(&alice),
    );
    assert!(store.revoke_oidc_grant(&revoke, first.id).await.unwrap());
    assert!(!store.revoke_oidc_grant(&revoke, first.id).await.unwrap(), "once");
    let refresh_change =
        Change::new(t0, None, Action::OidcGrantRefresh { grant: first.id, client: client.client_id.clone() }, Some(&alice));
    assert!(!store.rotate_refresh_token(&refresh_change, first.id, &current, &TokenHash::of("wdr_third")).await.unwrap());
    assert!(!store.oidc_grant(first.id, t0).await.unwrap().unwrap().is_live(t0));

    // A second grant dies with its session, and the purge takes it.
    let second = grant("code-two", "wdr_other");
    assert_eq!(store.create_oidc_grant(&grant_change(&second), &second).await.unwrap(), GrantCreated::Created);
    assert!(store.oidc_grant(second.id, t0).await.unwrap().unwrap().is_live(t0));
    let logout = Change::new(t0, Some(&alice), Action::Logout { session_id: session.id }, Some(&alice));
    assert!(store.delete_session(&logout, session.id).await.unwrap());
    let ended = store.oidc_grant(second.id, t0).await.unwrap().unwrap();
    assert_eq!(ended.session_expires_at, None);
    assert!(!ended.is_live(t0));
    assert!(store.purge_oidc_grants(t0).await.unwrap() >= 2);
    assert!(store.oidc_grant(second.id, t0).await.unwrap().is_none());
    assert!(store.oidc_refresh_token(&TokenHash::of("wdr_other"), t0).await.unwrap().is_none(), "its refresh tokens go with it");

    // Consents widen in place.
    assert_eq!(store.oidc_consent(alice.id, client.id).await.unwrap(), None);
    for scopes in [vec!["openid".to_owned()], vec!["openid".to_owned(), "email".to_owned()]] {
        let c = Change::new(
            t0,
            Some(&alice),
            Action::OidcConsentGrant { client: client.client_id.clone(), scopes: scopes.clone() },
            Some(&alice),
        );
        store.grant_oidc_consent(&c, alice.id, client.id, &scopes).await.unwrap();
        assert_eq!(store.oidc_consent(alice.id, client.id).await.unwrap(), Some(scopes));
    }

    // Disconnecting an application: its consent and live grants go in one write; another
    // client's grant stays, and a second withdrawal writes nothing.
    let other = new_oidc_client("rp-other", false, None);
    let create = oidc_change(Action::OidcClientCreate { id: other.id, client: other.client_id.clone(), public: false });
    store.create_oidc_client(&create, &other, Some(&TokenHash::of("wdc_rp-other"))).await.unwrap();
    let live_session = SessionRecord { id: Uuid::now_v7(), ..session.clone() };
    store.create_session(&change("auth.login", &alice), &live_session, &TokenHash::of("wds_rp-session-2")).await.unwrap();
    let kept = NewGrant { client: other.id, session: live_session.id, ..grant("code-kept", "wdr_kept") };
    let gone = NewGrant { session: live_session.id, ..grant("code-gone", "wdr_gone") };
    for g in [&gone, &kept] {
        assert_eq!(store.create_oidc_grant(&grant_change(g), g).await.unwrap(), GrantCreated::Created);
    }
    let listed: Vec<Uuid> = store.oidc_grants_of(alice.id, t0).await.unwrap().into_iter().map(|g| g.id).collect();
    assert_eq!(listed.iter().copied().collect::<BTreeSet<_>>(), BTreeSet::from([gone.id, kept.id]), "only live grants: {listed:?}");
    let consents = store.oidc_consents_of(alice.id).await.unwrap();
    assert_eq!(consents.iter().map(|c| (c.client, c.scopes.len())).collect::<Vec<_>>(), vec![(client.id, 2)]);
    let withdraw =
        Change::new(t0, Some(&alice), Action::OidcConsentWithdraw { client: client.client_id.clone(), grants_revoked: 0 }, Some(&alice));
    assert_eq!(store.withdraw_oidc_consent(&withdraw, alice.id, client.id).await.unwrap(), Some(1));
    assert_eq!(store.oidc_consent(alice.id, client.id).await.unwrap(), None, "the next sign-in asks again");
    assert!(!store.oidc_grant(gone.id, t0).await.unwrap().unwrap().is_live(t0), "its grant is revoked");
    assert!(store.oidc_grant(kept.id, t0).await.unwrap().unwrap().is_live(t0), "another client's grant stays");
    let refresh_gone = Change::new(t0, None, Action::OidcGrantRefresh { grant: gone.id, client: client.client_id.clone() }, Some(&alice));
    assert!(!store.rotate_refresh_token(&refresh_gone, gone.id, &TokenHash::of("wdr_gone"), &TokenHash::of("wdr_x")).await.unwrap());
    assert_eq!(store.withdraw_oidc_consent(&withdraw, alice.id, client.id).await.unwrap(), None, "nothing left to withdraw");
    // A grant whose session ended is dead already: nothing to withdraw from the other client.
    let logout = Change::new(t0, Some(&alice), Action::Logout { session_id: live_session.id }, Some(&alice));
    assert!(store.delete_session(&logout, live_session.id).await.unwrap());
    assert!(store.oidc_grants_of(alice.id, t0).await.unwrap().is_empty());
    let withdraw_other =
        Change::new(t0, Some(&alice), Action::OidcConsentWithdraw { client: other.client_id.clone(), grants_revoked: 0 }, Some(&alice));
    assert_eq!(store.withdraw_oidc_consent(&withdraw_other, alice.id, other.id).await.unwrap(), None, "dead grants do not count");
    let withdrawn: Vec<_> = audit_all(&*store).await.into_iter().filter(|e| e.action == "oidc.consent.withdraw").collect();
    assert_eq!(withdrawn.len(), 1, "one event, for the write that did something");
    assert_eq!(withdrawn[0].details["grants_revoked"], 1, "{:?}", withdrawn[0].details);

    // Keys: retired, then forgotten once their tokens cannot live.
    let key = |id: &str| SigningKeyRecord {
        id: id.into(),
        alg: "ES256".into(),
        sealed_private_key: vec![1, 2, 3],
        public_jwk: "{}".into(),
        created_at: t0,
        retired_at: None,
    };
    let rotate = |created: Vec<String>, retired: Vec<String>| Change::new(t0, None, Action::OidcKeysRotate { created, retired }, None);
    store.rotate_oidc_keys(&rotate(vec!["k1".into()], vec![]), &[key("k1")], &[], t0 - Duration::hours(1)).await.unwrap();
    store
        .rotate_oidc_keys(&rotate(vec!["k2".into()], vec!["k1".into()]), &[key("k2")], &["k1".into()], t0 - Duration::hours(1))
        .await
        .unwrap();
    let keys = store.oidc_keys().await.unwrap();
    assert_eq!(
        keys.iter().map(|k| (k.id.as_str(), k.retired_at.is_some())).collect::<BTreeSet<_>>(),
        BTreeSet::from([("k1", true), ("k2", false)])
    );
    store
        .rotate_oidc_keys(&rotate(vec!["k3".into()], vec!["k2".into()]), &[key("k3")], &["k2".into()], t0 + Duration::seconds(1))
        .await
        .unwrap();
    let ids: BTreeSet<String> = store.oidc_keys().await.unwrap().into_iter().map(|k| k.id).collect();
    assert_eq!(ids, BTreeSet::from(["k3".to_owned()]), "retired keys past their tokens' life are gone");
    // Every write was audited; the key material never was.
    let events = audit_all(&*store).await;
    assert!(events.iter().any(|e| e.action == "oidc.grant.revoke"));
    assert!(!serde_json::to_string(&events).unwrap().contains("wdr_"), "no token in the log");
}
