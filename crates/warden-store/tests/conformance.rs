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
use warden_core::api::MemberEntry;
use warden_core::credential::TokenHash;
use warden_core::model::{
    ADMIN_ID, ApiToken, AuditEvent, EmailAddress, Group, IDM_ADMIN_ID, NameOrId, PhoneNumber, PostalAddress, Profile, ServiceAccount,
    Subject, SubjectKind, User,
};
use warden_store::{AuditQuery, Change, ListQuery, MAX_PAGE, PgStore, SessionRecord, SqliteStore, Store, StoreError};

// ---------------------------------------------------------------------------------------------
// Harness.

const DEFAULT_PG_SERVER: &str = "postgres://postgres@127.0.0.1:5432";

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
    store.close().await;
    drop(dir);
    rethrow(outcome);
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
    let mut admin = PgConnection::connect(&format!("{server}/postgres"))
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {server} is required by the conformance suite (CI runs it): {e}"));
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
            store.close().await;
            Ok(outcome)
        }
        Err(e) => Err(e),
    };
    let dropped = execute(&mut admin, format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await;
    admin.close().await.ok();
    match outcome {
        Ok(outcome) => rethrow(outcome),
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
    Subject { kind: SubjectKind::User, id: ADMIN_ID, name: n("admin") }
}

fn change(action: &'static str, target: &Subject) -> Change {
    Change::new(now(), Some(&admin()), action, Some(target))
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
    members.iter().map(|m| change("group.member.add", m).with_details(json!({ "group": group.name.as_str() }))).collect()
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
// 1. Break-glass bootstrap.

async fn bootstrap(store: &dyn Store) {
    let r0 = store.revision().await.unwrap();
    assert_eq!(r0, 0, "a fresh store starts at revision 0");
    assert!(audit_all(store).await.is_empty());

    let at = now();
    store.ensure_break_glass(at).await.unwrap();
    let r1 = store.revision().await.unwrap();
    assert_eq!(r1, r0 + 2, "one revision per break-glass account");

    store.ensure_break_glass(at + Duration::minutes(5)).await.unwrap();
    assert_eq!(store.revision().await.unwrap(), r1, "ensure_break_glass is idempotent");

    for (id, name) in [(ADMIN_ID, "admin"), (IDM_ADMIN_ID, "idm_admin")] {
        let user = store.user(&by_name(name)).await.unwrap().unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(user.id, id);
        assert_eq!(user.name.as_str(), name);
        assert!(!user.has_password, "{name} is created without a credential");
        assert!(!user.disabled);
        assert!(user.profile.display_name.is_some());
        assert_eq!(user.created_at, at);
        assert_eq!(store.user(&NameOrId::Id(id)).await.unwrap(), Some(user));
        assert_eq!(store.password_hash(id).await.unwrap(), None);
        let owner = store.account(&by_name(name), at).await.unwrap().unwrap();
        assert_eq!(owner.subject, Subject { kind: SubjectKind::User, id, name: n(name) });
        assert!(owner.active);
    }
    assert_eq!(user_names(store).await, ["admin", "idm_admin"]);

    let events = audit_all(store).await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events.iter().all(|e| e.action == "account.bootstrap" && e.actor_id.is_none() && e.actor_name.is_none()));
    assert!(events.iter().all(|e| e.target_kind.as_deref() == Some("user") && e.at == at));
    let targets: BTreeSet<_> = events.iter().map(|e| (e.target_id.unwrap(), e.target_name.clone().unwrap())).collect();
    assert_eq!(targets, BTreeSet::from([(ADMIN_ID, "admin".to_owned()), (IDM_ADMIN_ID, "idm_admin".to_owned())]));
    assert_eq!(events.iter().map(|e| e.revision).collect::<Vec<_>>(), [1, 2]);
    let filtered = store.audit(&AuditQuery { action_prefix: Some("account.bootstrap".into()), ..AuditQuery::default() }).await.unwrap();
    assert_eq!(filtered.items.len(), 2);
}

/// Several nodes starting at once against one database all bootstrap successfully, and the
/// accounts are created once.
async fn bootstrap_race(store: &dyn Store) {
    for _ in 0..5 {
        let at = now();
        let (a, b, c, d) = tokio::join!(
            store.ensure_break_glass(at),
            store.ensure_break_glass(at),
            store.ensure_break_glass(at),
            store.ensure_break_glass(at)
        );
        for result in [a, b, c, d] {
            result.expect("a concurrent ensure_break_glass must not fail");
        }
    }
    assert_eq!(user_names(store).await, ["admin", "idm_admin"]);
    assert_eq!(store.revision().await.unwrap(), 2);
    let events = audit_all(store).await;
    assert_eq!(events.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["account.bootstrap", "account.bootstrap"]);

    // A user who took a break-glass name is not mistaken for the break-glass account.
    store.delete_account(&change("account.delete", &admin()), ADMIN_ID).await.unwrap();
    create_user(store, "admin").await;
    let err = store.ensure_break_glass(now()).await.expect_err("the name admin is taken by someone else");
    assert!(matches!(err, StoreError::NameTaken(ref name) if name == "admin"), "{err:?}");
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
            EmailAddress { address: "alice@example.org".into(), primary: true },
            EmailAddress { address: "a.liddell@example.com".into(), primary: false },
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
            emails: vec![EmailAddress { address: "new@example.org".into(), primary: true }],
            ..Profile::default()
        },
        disabled: true,
        valid_from: None,
        expires_at: None,
        updated_at: t0 + Duration::seconds(1),
        ..expected.clone()
    };
    let r = store.revision().await.unwrap();
    assert_eq!(store.update_user(&change("user.update", &updated.subject()), &updated).await.unwrap(), updated);
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
    let err = store.update_user(&change("user.update", &ghost.subject()), &ghost).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let svc = create_sa(store, "svc", None).await;
    let before_sa = state(store).await;
    assert_eq!(before_sa.0, before.0 + 1);
    let as_user = User { id: svc.id, ..new_user("svc") };
    let err = store.update_user(&change("user.update", &as_user.subject()), &as_user).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "update_user must not touch a service account: {err:?}");
    assert_eq!(state(store).await, before_sa);

    // Rename keeps the id; the old name no longer resolves.
    let bob = create_user(store, "bob").await;
    store.rename_account(&change("account.rename", &updated.subject()), alice.id, &n("alice2")).await.unwrap();
    assert_eq!(store.user(&by_name("alice")).await.unwrap(), None);
    let renamed = store.user(&by_name("alice2")).await.unwrap().unwrap();
    assert_eq!(renamed.id, alice.id);
    assert_eq!(renamed.profile, updated.profile);
    assert_eq!(store.user(&NameOrId::Id(alice.id)).await.unwrap().unwrap().name.as_str(), "alice2");

    // Renaming onto a taken name (a user, or a service account) is refused.
    let before = state(store).await;
    for taken in ["bob", "svc"] {
        let err = store.rename_account(&change("account.rename", &renamed.subject()), alice.id, &n(taken)).await.unwrap_err();
        assert!(matches!(err, StoreError::NameTaken(ref name) if name == taken), "{err:?}");
    }
    let err = store.rename_account(&change("account.rename", &bob.subject()), Uuid::now_v7(), &n("fresh")).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(state(store).await, before);
    assert_eq!(store.user(&NameOrId::Id(alice.id)).await.unwrap().unwrap().name.as_str(), "alice2");
    assert_eq!(store.user(&by_name("bob")).await.unwrap().unwrap().id, bob.id);

    // A service account can be renamed too (accounts share the operation).
    store.rename_account(&change("account.rename", &svc.subject()), svc.id, &n("svc2")).await.unwrap();
    assert_eq!(store.service_account(&by_name("svc2")).await.unwrap().unwrap().id, svc.id);

    // Delete, then delete again.
    store.delete_account(&change("account.delete", &bob.subject()), bob.id).await.unwrap();
    assert_eq!(store.user(&by_name("bob")).await.unwrap(), None);
    assert_eq!(store.user(&NameOrId::Id(bob.id)).await.unwrap(), None);
    assert_eq!(store.account(&by_name("bob"), now()).await.unwrap().map(|o| o.subject), None);
    let before = state(store).await;
    let err = store.delete_account(&change("account.delete", &bob.subject()), bob.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(err.code(), "not_found");
    assert_eq!(state(store).await, before);
    assert_eq!(user_names(store).await, ["alice2"]);

    // The name is free again once its holder is gone.
    let bob2 = create_user(store, "bob").await;
    assert_ne!(bob2.id, bob.id);
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
    store.delete_account(&change("account.delete", &uc1.subject()), uc1.id).await.unwrap();
    assert_eq!(members(store, &ga, true).await, [m("ua1", U, true), m("ua2", U, true)]);
    assert_eq!(members(store, &gc, false).await, [m("sa-c", S, true), m("uc1", G, true), m("uc2", U, true)]);
    assert_eq!(store.group(&NameOrId::Id(gc.id)).await.unwrap().unwrap().member_count, 3);
    store.delete_account(&change("account.delete", &sac.subject()), sac.id).await.unwrap();
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
    store.delete_account(&change("account.delete", &owner.subject()), owner.id).await.unwrap();
    assert_eq!(store.service_account(&by_name("deploy")).await.unwrap().expect("survives its manager").managed_by, None);
    store.delete_account(&change("account.delete", &ci.subject()), ci.id).await.unwrap();
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

    store.set_password_hash(&change("account.password.set", &carol.subject()), carol.id, "hash-1", false).await.unwrap();
    assert_eq!(store.password_hash(carol.id).await.unwrap().as_deref(), Some("hash-1"));
    assert!(store.user(&NameOrId::Id(carol.id)).await.unwrap().unwrap().has_password);
    store.set_password_hash(&change("account.password.set", &carol.subject()), carol.id, "hash-2", false).await.unwrap();
    assert_eq!(store.password_hash(carol.id).await.unwrap().as_deref(), Some("hash-2"), "replaced");
    let before = state(store).await;
    let ghost = Uuid::now_v7();
    let err = store.set_password_hash(&change("account.password.set", &carol.subject()), ghost, "hash", true).await.unwrap_err();
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
    };
    let token = TokenHash::of("wds_session-one");
    let r = store.revision().await.unwrap();
    store.create_session(&change("auth.login", &carol.subject()), &session, &token).await.unwrap();
    assert_eq!(store.revision().await.unwrap(), r + 1);
    let (found, owner) = store.session(&token, t0).await.unwrap().expect("session found by its hash");
    assert_eq!(found, session);
    assert_eq!(owner.subject, carol.subject());
    assert!(owner.active);
    assert!(store.session(&TokenHash::of("wds_other"), t0).await.unwrap().is_none());

    // Changing the password without ending sessions keeps them.
    store.set_password_hash(&change("account.password.set", &carol.subject()), carol.id, "hash-2", false).await.unwrap();
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
    store.update_user(&change("user.update", &carol.subject()), &disabled).await.unwrap();
    let (_, owner) = store.session(&token, t1).await.unwrap().unwrap();
    assert!(!owner.active);
    let windowed = User { disabled: false, expires_at: Some(t1), has_password: true, ..carol.clone() };
    store.update_user(&change("user.update", &carol.subject()), &windowed).await.unwrap();
    assert!(store.session(&token, t1 - Duration::milliseconds(1)).await.unwrap().unwrap().1.active);
    assert!(!store.session(&token, t1).await.unwrap().unwrap().1.active);
    store.update_user(&change("user.update", &carol.subject()), &User { has_password: true, ..carol.clone() }).await.unwrap();

    // Deleting a session.
    assert!(store.delete_session(&change("auth.logout", &carol.subject()), session.id).await.unwrap());
    assert!(store.session(&token, t1).await.unwrap().is_none());
    let before = state(store).await;
    assert!(!store.delete_session(&change("auth.logout", &carol.subject()), session.id).await.unwrap());
    assert_eq!(state(store).await, before, "deleting nothing changes nothing");

    // A password reset that ends sessions ends all of them, in the same change.
    let (t3, t4) = (TokenHash::of("wds_three"), TokenHash::of("wds_four"));
    for t in [&t3, &t4] {
        let record = SessionRecord { id: Uuid::now_v7(), ..session.clone() };
        store.create_session(&change("auth.login", &carol.subject()), &record, t).await.unwrap();
    }
    let before = state(store).await;
    store.set_password_hash(&change("account.password.reset", &carol.subject()), carol.id, "hash-3", true).await.unwrap();
    assert_eq!(state(store).await, (before.0 + 1, before.1 + 1), "one revision, one event");
    assert!(store.session(&t3, t0).await.unwrap().is_none());
    assert!(store.session(&t4, t0).await.unwrap().is_none());
    assert_eq!(store.password_hash(carol.id).await.unwrap().as_deref(), Some("hash-3"));
    // Ending sessions for a missing account changes nothing either.
    let err = store.set_password_hash(&change("account.password.reset", &carol.subject()), ghost, "h", true).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(state(store).await, (before.0 + 1, before.1 + 1));

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
    };
    let tok2 = ApiToken { id: Uuid::now_v7(), label: None, created_at: t0 + Duration::seconds(1), expires_at: None, ..tok.clone() };
    let bot_tok = ApiToken { id: Uuid::now_v7(), account_id: bot.id, label: Some("ci".into()), ..tok2.clone() };
    let (h1, h2, hb) = (TokenHash::of("wdn_one"), TokenHash::of("wdn_two"), TokenHash::of("wdn_bot"));
    store.create_api_token(&change("token.create", &carol.subject()), &tok, &h1).await.unwrap();
    store.create_api_token(&change("token.create", &carol.subject()), &tok2, &h2).await.unwrap();
    store.create_api_token(&change("token.create", &bot.subject()), &bot_tok, &hb).await.unwrap();
    let before = state(store).await;
    let stray = ApiToken { id: Uuid::now_v7(), account_id: ghost, ..tok.clone() };
    let err = store.create_api_token(&change("token.create", &carol.subject()), &stray, &TokenHash::of("wdn_stray")).await.unwrap_err();
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
    assert!(!store.revoke_api_token(&change("token.revoke", &bot.subject()), bot.id, tok.id).await.unwrap(), "not bot's token");
    assert_eq!(state(store).await, before);
    let revoke = change("token.revoke", &carol.subject());
    assert!(store.revoke_api_token(&revoke, carol.id, tok.id).await.unwrap());
    let after_revoke = state(store).await;
    assert_eq!(after_revoke, (before.0 + 1, before.1 + 1));
    assert!(!store.revoke_api_token(&change("token.revoke", &carol.subject()), carol.id, tok.id).await.unwrap());
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
    store.delete_account(&change("account.delete", &carol.subject()), carol.id).await.unwrap();
    assert!(store.session(&token2, t0).await.unwrap().is_none());
    assert!(store.api_token(&h1, t0).await.unwrap().is_none());
    assert!(store.api_token(&h2, t0).await.unwrap().is_none());
    assert!(store.list_api_tokens(carol.id).await.unwrap().is_empty());
    assert_eq!(store.password_hash(carol.id).await.unwrap(), None);
    assert!(store.api_token(&hb, t0).await.unwrap().is_some(), "other accounts keep their tokens");
    store.delete_account(&change("account.delete", &bot.subject()), bot.id).await.unwrap();
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
    let c = Change::new(at(1), Some(&admin()), "user.create", Some(&alice.subject())).with_details(json!({ "via": "test", "n": 1 }));
    store.create_user(&c, &alice, None).await.unwrap();
    expected.push(("user.create", Some("admin".into()), Some("alice".into())));

    let bob = new_user("bob");
    store.create_user(&Change::new(at(2), Some(&ops), "user.create", Some(&bob.subject())), &bob, None).await.unwrap();
    expected.push(("user.create", Some("ops-bot".into()), Some("bob".into())));

    // A refused mutation leaves no trace.
    let dup = new_user("bob");
    store.create_user(&Change::new(at(2), Some(&ops), "user.create", Some(&dup.subject())), &dup, None).await.unwrap_err();

    let staff = new_group("staff");
    store.create_group(&Change::new(at(3), Some(&admin()), "group.create", Some(&staff.subject())), &staff).await.unwrap();
    expected.push(("group.create", Some("admin".into()), Some("staff".into())));

    let members = [alice.subject(), bob.subject()];
    let changes: Vec<Change> = members.iter().map(|m| Change::new(at(4), Some(&ops), "group.member.add", Some(m))).collect();
    assert_eq!(store.add_members(&changes, &staff.subject(), &members).await.unwrap(), 2);
    expected.push(("group.member.add", Some("ops-bot".into()), Some("alice".into())));
    expected.push(("group.member.add", Some("ops-bot".into()), Some("bob".into())));

    store
        .set_password_hash(&Change::new(at(5), Some(&admin()), "account.password.set", Some(&alice.subject())), alice.id, "h", false)
        .await
        .unwrap();
    expected.push(("account.password.set", Some("admin".into()), Some("alice".into())));

    // An event with no actor and no target.
    store.record(&Change::new(at(6), None, "server.recovery", None).with_details(json!({ "reason": "host" }))).await.unwrap();
    expected.push(("server.recovery", None, None));

    store.record(&Change::new(at(7), None, "auth.login.failed", Some(&alice.subject()))).await.unwrap();
    expected.push(("auth.login.failed", None, Some("alice".into())));

    store
        .remove_member(&Change::new(at(8), Some(&admin()), "group.member.remove", Some(&bob.subject())), staff.id, &bob.subject())
        .await
        .unwrap();
    expected.push(("group.member.remove", Some("admin".into()), Some("bob".into())));

    store.rename_account(&Change::new(at(9), Some(&ops), "account.rename", Some(&bob.subject())), bob.id, &n("robert")).await.unwrap();
    expected.push(("account.rename", Some("ops-bot".into()), Some("bob".into())));

    // Prefix look-alikes that a careless prefix filter would match.
    store.record(&Change::new(at(10), Some(&ops), "groups.sync", None)).await.unwrap();
    expected.push(("groups.sync", Some("ops-bot".into()), None));
    store.record(&Change::new(at(11), Some(&ops), "group", None)).await.unwrap();
    expected.push(("group", Some("ops-bot".into()), None));

    store.delete_group(&Change::new(at(12), Some(&admin()), "group.delete", Some(&staff.subject())), staff.id).await.unwrap();
    expected.push(("group.delete", Some("admin".into()), Some("staff".into())));

    store.delete_account(&Change::new(at(13), Some(&admin()), "account.delete", Some(&alice.subject())), alice.id).await.unwrap();
    expected.push(("account.delete", Some("admin".into()), Some("alice".into())));

    // Exactly one event per mutation (per added member), in order.
    let events = audit_all(store).await;
    let got: Vec<_> = events.iter().map(|e| (e.action.as_str(), e.actor_name.clone(), e.target_name.clone())).collect();
    assert_eq!(got, expected);
    assert_eq!(events.iter().map(|e| e.at).collect::<Vec<_>>(), [1, 2, 3, 4, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13].map(at));
    assert_eq!(events.iter().map(|e| e.revision).collect::<Vec<_>>(), [1, 2, 3, 4, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    assert_eq!(store.revision().await.unwrap(), 13);
    assert_eq!(events.iter().map(|e| e.id).collect::<HashSet<_>>().len(), events.len(), "unique event ids");
    assert_eq!(events[0].details, json!({ "via": "test", "n": 1 }));
    assert_eq!(events[0].actor_id, Some(ADMIN_ID));
    assert_eq!(events[0].target_id, Some(alice.id));
    assert_eq!(events[0].target_kind.as_deref(), Some("user"));
    assert_eq!(events[1].actor_id, Some(ops.id));
    assert_eq!(events[2].target_kind.as_deref(), Some("group"));
    assert_eq!(events[3].details, json!({}));
    assert_eq!(events[6].details, json!({ "reason": "host" }));
    assert_eq!((events[6].actor_id, events[6].target_id, events[6].target_kind.as_deref()), (None, None, None));
    assert_eq!(events[12].details["memberships_removed"], json!(1));

    let actions = |events: &[AuditEvent]| events.iter().map(|e| e.action.clone()).collect::<Vec<_>>();
    let query = |q: AuditQuery| async move { store.audit(&AuditQuery { limit: MAX_PAGE, ..q }).await.unwrap().items };

    // Filters (newest first).
    let by_ops = query(AuditQuery { actor_name: Some("ops-bot".into()), ..AuditQuery::default() }).await;
    assert_eq!(actions(&by_ops), ["group", "groups.sync", "account.rename", "group.member.add", "group.member.add", "user.create"]);
    assert!(by_ops.iter().all(|e| e.actor_id == Some(ops.id)));
    let by_ops_id = query(AuditQuery { actor_id: Some(ops.id), ..AuditQuery::default() }).await;
    assert_eq!(by_ops_id, by_ops);
    assert!(query(AuditQuery { actor_name: Some("ops".into()), ..AuditQuery::default() }).await.is_empty(), "names match exactly");

    let on_alice = query(AuditQuery { target_name: Some("alice".into()), ..AuditQuery::default() }).await;
    assert_eq!(actions(&on_alice), ["account.delete", "auth.login.failed", "account.password.set", "group.member.add", "user.create"]);
    assert_eq!(query(AuditQuery { target_id: Some(alice.id), ..AuditQuery::default() }).await, on_alice);

    let group_events = query(AuditQuery { action_prefix: Some("group.".into()), ..AuditQuery::default() }).await;
    assert_eq!(actions(&group_events), ["group.delete", "group.member.remove", "group.member.add", "group.member.add", "group.create"]);
    let group_any = query(AuditQuery { action_prefix: Some("group".into()), ..AuditQuery::default() }).await;
    assert_eq!(
        actions(&group_any),
        ["group.delete", "group", "groups.sync", "group.member.remove", "group.member.add", "group.member.add", "group.create"]
    );
    let member_events = query(AuditQuery { action_prefix: Some("group.member.".into()), ..AuditQuery::default() }).await;
    assert_eq!(actions(&member_events), ["group.member.remove", "group.member.add", "group.member.add"]);
    assert!(query(AuditQuery { action_prefix: Some("user.created".into()), ..AuditQuery::default() }).await.is_empty());
    assert_eq!(query(AuditQuery { action_prefix: Some(String::new()), ..AuditQuery::default() }).await.len(), 14);

    let recent = query(AuditQuery { since: Some(at(9)), ..AuditQuery::default() }).await;
    assert_eq!(actions(&recent), ["account.delete", "group.delete", "group", "groups.sync", "account.rename"]);
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
    let paged_filtered = audit_pages(store, &AuditQuery { action_prefix: Some("group".into()), limit: 2, ..AuditQuery::default() }).await;
    assert_eq!(paged_filtered, group_any);
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
