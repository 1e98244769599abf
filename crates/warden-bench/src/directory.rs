//! The `directory` scenario: how fast the directory fills through the API, and how fast it
//! answers once full.
//!
//! 1. `N` users, one `POST /api/v1/users` each (no password, so argon2 does not dominate),
//!    spread over `C` clients;
//! 2. `M` groups, then nesting in chains of depth 10 (group `i` inside group `i-1` unless
//!    `i % 10 == 0`), then each user into one group, one request per membership;
//! 3. optionally `K` more users written straight through the store (there is no bulk API
//!    yet), so that reads are measured against a large directory;
//! 4. sequential latencies of `GET /healthz` (the baseline), a user by name, the effective
//!    members of a chain root, and a page of the user list at a random cursor.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;
use uuid::Uuid;
use warden_client::{Client, ListQuery, MembersQuery};
use warden_core::Name;
use warden_core::api::{CreateGroup, CreateUser};
use warden_core::model::{self, Profile, Subject, User};
use warden_server::clock::{Clock as _, SystemClock};
use warden_store::{Action, Change, Store};

use crate::load::{self, Latencies, Picker, Progress, mix};
use crate::report::{Latency, Rate, Ratio, Report};
use crate::server::{Backend, BenchServer};

/// Groups per nesting chain.
const CHAIN: usize = 10;
/// Page size of the list and member requests.
const PAGE: u32 = 100;

#[derive(Debug, clap::Args)]
pub struct DirectoryArgs {
    /// Users created through the API.
    #[arg(long, default_value_t = 10_000)]
    users: usize,
    /// Groups created through the API (nested in chains of 10).
    #[arg(long, default_value_t = 1_000)]
    groups: usize,
    /// Concurrent API clients (and store writers for --bulk-users).
    #[arg(long, default_value_t = 4)]
    clients: usize,
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    backend: Backend,
    /// SQLite only: `normal` runs the server with `?synchronous=normal` (commits without an
    /// fsync each; an operator's choice), `full` is the default.
    #[arg(long, default_value = "full")]
    sqlite_synchronous: String,
    /// PostgreSQL server to use; the bench creates and drops its own database on it.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pg_url: String,
    /// Requests per latency measurement.
    #[arg(long, default_value_t = 2_000)]
    samples: usize,
    /// Extra users inserted straight through the store before the latencies are measured.
    #[arg(long, default_value_t = 0)]
    bulk_users: usize,
    /// Stop the bulk insert after this many seconds (the report says how many were inserted).
    #[arg(long)]
    bulk_max_secs: Option<u64>,
    /// Also write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// The name of user `i`: a scrambled prefix, so that insertion order is not name order (as in
/// a real directory), and the number, so that names are unique.
fn user_name(i: usize) -> String {
    format!("u{:06x}-{i}", mix(i as u64) & 0xff_ffff)
}

fn group_name(i: usize) -> String {
    format!("grp-{i:06}")
}

/// The group user `i` joins.
fn group_of_user(i: usize, groups: usize) -> usize {
    (mix(i as u64 ^ 0x5eed_5eed) % groups as u64) as usize
}

/// The `j`-th group that is not the root of its chain (so has a parent).
fn nested_group(j: usize) -> usize {
    j / (CHAIN - 1) * CHAIN + j % (CHAIN - 1) + 1
}

fn nested_count(groups: usize) -> usize {
    groups - groups.div_ceil(CHAIN)
}

fn create_user_request(i: usize) -> CreateUser {
    let name = user_name(i);
    CreateUser {
        display_name: Some(format!("Bench User {i}")),
        emails: vec![format!("{name}@bench.example.org").into()],
        name,
        ..CreateUser::default()
    }
}

pub async fn run(args: &DirectoryArgs) -> anyhow::Result<()> {
    ensure!(args.clients >= 1, "--clients must be at least 1");
    ensure!(args.users >= 1 && args.groups >= 1, "--users and --groups must be at least 1");
    ensure!(args.samples >= 1, "--samples must be at least 1");
    // Writes need an elevated session; its window (10 min by default) must outlast the API
    // phases of a large run. Nothing on the measured paths depends on its length.
    let synchronous = args.sqlite_synchronous.clone();
    let server = BenchServer::start_configured(args.backend, &args.pg_url, |config| {
        config.authz.elevation_window = "24h".into();
        if config.database.url.starts_with("sqlite:") {
            config.database.url = format!("{}?synchronous={synchronous}", config.database.url);
        }
    })
    .await?;
    eprintln!("wardend ({}) on {}", server.backend(), server.url);
    let outcome = scenario(&server, args).await;
    let stopped = server.stop().await;
    let report = outcome?;
    stopped?;
    print!("{}", report.to_table());
    if let Some(path) = &args.json {
        report.write_json(path)?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

async fn scenario(server: &BenchServer, args: &DirectoryArgs) -> anyhow::Result<Report> {
    let (n, m) = (args.users, args.groups);
    let clients = (0..args.clients).map(|_| server.client()).collect::<anyhow::Result<Vec<_>>>()?;
    let mut rates = Vec::new();
    let mut ratios = Vec::new();
    let store = server.running.context.store.clone();

    eprintln!("measuring the disk's own durable commit rate (one row per commit, beside the server's database)…");
    let disk = crate::server::disk_commits(server, 3).await?;
    let disk_rate = disk.per_sec();
    rates.push(Rate::new("disk: one-row durable commits", disk, None));

    eprintln!("creating {n} users through the API…");
    let before = store.write_stats();
    let users = load::drive(clients.clone(), n, None, |c: Client, i| async move {
        c.create_user(&create_user_request(i)).await?;
        Ok(())
    })
    .await?;
    ratios.push(Ratio { name: "users: writes per commit (group commit)", value: per_commit(before, store.write_stats()) });
    ratios.push(Ratio { name: "users/s ÷ disk commits/s (target >= 0.3)", value: users.per_sec() / disk_rate.max(f64::EPSILON) });
    rates.push(Rate::new("users created (API, 1 request each)", users, Some(">= 1500/s")));

    eprintln!("creating {m} groups…");
    let groups = load::drive(clients.clone(), m, None, |c: Client, i| async move {
        c.create_group(&CreateGroup { name: group_name(i), description: None }).await?;
        Ok(())
    })
    .await?;
    rates.push(Rate::new("groups created (API)", groups, None));

    eprintln!("nesting groups in chains of {CHAIN}…");
    let nesting = load::drive(clients.clone(), nested_count(m), None, |c: Client, j| async move {
        let g = nested_group(j);
        let added = c.add_members(&group_name(g - 1), &[format!("group:{}", group_name(g))]).await?;
        ensure!(added.added == 1, "group {g} was already nested");
        Ok(())
    })
    .await?;
    rates.push(Rate::new("groups nested (API, cycle-checked)", nesting, None));

    eprintln!("adding {n} users to groups…");
    let before = store.write_stats();
    let memberships = load::drive(clients.clone(), n, None, move |c: Client, i| async move {
        let added = c.add_members(&group_name(group_of_user(i, m)), &[format!("user:{}", user_name(i))]).await?;
        ensure!(added.added == 1, "user {i} was already a member");
        Ok(())
    })
    .await?;
    ratios.push(Ratio { name: "memberships: writes per commit", value: per_commit(before, store.write_stats()) });
    rates.push(Rate::new("memberships added (API, 1 request each)", memberships, Some(">= 2000/s")));

    let mut population = n;
    if args.bulk_users > 0 {
        let bulk = bulk_insert(server, args).await?;
        population += bulk.done;
        rates.push(Rate::new("users inserted (store.create_user, no API)", bulk, Some("bulk import >= 20000/s")));
    }
    // The break-glass accounts are users too.
    let directory_size = population + 2;
    eprintln!("measuring latencies at {directory_size} accounts…");
    let reads = measure_reads(&clients[0], args.samples, population, m).await?;
    let ratio = reads.get_user.percentile(0.5).as_secs_f64() / reads.healthz.percentile(0.5).as_secs_f64().max(1e-9);
    let latencies = vec![
        Latency::new("GET /healthz (baseline)", &reads.healthz, None),
        Latency::new("GET /api/v1/users/{name}", &reads.get_user, None),
        Latency::new("GET group members, effective, chain root", &reads.members, None),
        Latency::new("GET /api/v1/users?limit=100&cursor=…", &reads.list, Some("p99 <= 20 ms at 1M users")),
    ];

    Ok(Report {
        scenario: "directory",
        backend: args.backend,
        cores: crate::report::cores(),
        clients: args.clients,
        directory_size,
        rates,
        latencies,
        ratios: ratios
            .into_iter()
            .chain([
                Ratio { name: "GET user p50 / GET /healthz p50", value: ratio },
                Ratio { name: "GET /healthz p50 / GET user p50", value: 1.0 / ratio.max(f64::EPSILON) },
            ])
            .collect(),
    })
}

/// Inserts users `N..N+K` through the store, the fastest write path that exists (one
/// transaction per user; the store has no batch insert).
/// Writes per durable commit between two readings of the store's counters.
fn per_commit(before: warden_store::WriteStats, after: warden_store::WriteStats) -> f64 {
    let commits = after.commits.saturating_sub(before.commits).max(1);
    after.writes.saturating_sub(before.writes) as f64 / commits as f64
}

async fn bulk_insert(server: &BenchServer, args: &DirectoryArgs) -> anyhow::Result<load::Throughput> {
    let k = args.bulk_users;
    eprintln!("inserting {k} users through the store with {} writers…", args.clients);
    let store: Arc<dyn Store> = server.running.context.store.clone();
    let workers = vec![(store, server.operator.clone()); args.clients];
    let progress = Arc::new(Progress::new("bulk", 100_000));
    let first = args.users;
    let budget = args.bulk_max_secs.map(Duration::from_secs);
    let done = load::drive(workers, k, budget, move |(store, operator): (Arc<dyn Store>, Subject), j| {
        let progress = progress.clone();
        async move {
            progress.tick(j);
            let user = bulk_user(first + j)?;
            let change = Change::new(user.created_at, Some(&operator), Action::UserCreate { password: false }, Some(&user.subject()));
            store.create_user(&change, &user, None).await?;
            Ok(())
        }
    })
    .await?;
    if done.done < k {
        eprintln!("bulk insert stopped by --bulk-max-secs after {} of {k} users", done.done);
    }
    Ok(done)
}

/// User `i` as the API would have created it.
fn bulk_user(i: usize) -> anyhow::Result<User> {
    let name = user_name(i);
    let now = SystemClock.now();
    let now = now.replace_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000)?;
    let profile = Profile {
        display_name: Some(format!("Bench User {i}")),
        emails: model::emails_in_order(&[format!("{name}@bench.example.org")])?,
        ..Profile::default()
    };
    Ok(User {
        id: Uuid::now_v7(),
        name: Name::parse(&name)?,
        profile: model::validate_profile(profile, now.date())?,
        disabled: false,
        valid_from: None,
        expires_at: None,
        has_password: false,
        created_at: now,
        updated_at: now,
    })
}

/// Sequential latencies of the reads, and of the baseline they are compared with.
struct Reads {
    healthz: Latencies,
    get_user: Latencies,
    members: Latencies,
    list: Latencies,
}

async fn measure_reads(c: &Client, samples: usize, population: usize, groups: usize) -> anyhow::Result<Reads> {
    let healthz = load::sample(samples, |_| async { Ok(c.health().await?) }).await?;

    let mut pick = Picker::new(1);
    let names: Vec<String> = (0..samples + 100).map(|_| user_name(pick.below(population))).collect();
    let get_user = load::sample(samples, |i| {
        let name = &names[i % names.len()];
        async move {
            let user = c.get_user(name).await?;
            ensure!(user.name.as_str() == name, "asked for {name}, got {}", user.name);
            Ok(())
        }
    })
    .await?;

    let chains = groups.div_ceil(CHAIN);
    let roots: Vec<String> = (0..samples + 100).map(|_| group_name(pick.below(chains) * CHAIN)).collect();
    let members = load::sample(samples, |i| {
        let root = &roots[i % roots.len()];
        async move {
            let query = MembersQuery { effective: true, cursor: None, limit: Some(PAGE) };
            let page = c.group_members(root, &query).await?;
            ensure!(!page.items.is_empty() || groups == 1, "chain root {root} has no members");
            Ok(())
        }
    })
    .await?;

    let cursors: Vec<String> = (0..samples + 100).map(|_| user_name(pick.below(population))).collect();
    let list = load::sample(samples, |i| {
        let cursor = &cursors[i % cursors.len()];
        async move {
            let query = ListQuery { prefix: None, cursor: Some(cursor.clone()), limit: Some(PAGE) };
            let page = c.list_users(&query).await?;
            if let Some(first) = page.items.first() {
                ensure!(first.name.as_str() > cursor.as_str(), "page after {cursor} starts at {}", first.name);
            }
            Ok(())
        }
    })
    .await?;

    Ok(Reads { healthz, get_user, members, list })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_covers_every_non_root_once() {
        for m in [1, 9, 10, 11, 25, 1000] {
            let nested: Vec<usize> = (0..nested_count(m)).map(nested_group).collect();
            let expected: Vec<usize> = (0..m).filter(|g| g % CHAIN != 0).collect();
            assert_eq!(nested, expected, "m = {m}");
        }
    }

    #[test]
    fn generated_names_are_valid_and_distinct() {
        let names: std::collections::HashSet<String> = (0..10_000).map(user_name).collect();
        assert_eq!(names.len(), 10_000);
        for name in names.iter().take(100).chain([&group_name(0)]) {
            assert!(Name::parse(name).is_ok(), "{name}");
        }
        let first = &create_user_request(3).emails[0];
        assert!(matches!(first, warden_core::model::EmailInput::Plain(a) if a.ends_with("@bench.example.org")));
    }
}
