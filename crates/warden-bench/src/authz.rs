//! The `authz` scenario: how long a decision takes, and what it costs over HTTP.
//!
//! 1. In process: an [`AuthzIndex`] built from a synthetic directory (no database involved)
//!    in which one user is in 50 groups (5 chains nested 10 deep) that carry 20 bindings,
//!    among thousands of other users, groups and bindings. Each `allows` call is timed on its
//!    own, for an allowed permission (found through the last chain) and a denied one (every
//!    candidate binding examined), at a small and a large directory size: the figures must
//!    not grow with the directory.
//! 2. Over HTTP, against a real in-process `wardend`: `POST /api/v1/check` with an API token
//!    and `GET /healthz` (the same server stack's bare "200 OK"), each driven by the same
//!    keep-alive clients for the same time, one after the other: requests/s and the ratio.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::ensure;
use time::OffsetDateTime;
use uuid::Uuid;
use warden_client::Client;
use warden_core::Name;
use warden_core::api::{CheckRequest, CreateApiToken, CreateBinding, CreateRole, CreateServiceAccount, CreateUser};
use warden_core::authz::{AuthzIndex, Binding, DirectoryGraph, IndexChange, Role, RoleSource, built_in_roles};
use warden_core::model::{Subject, SubjectKind};
use warden_core::namespace::Namespace;
use warden_core::permission::PermissionTree;
use warden_server::services::recovery;

use crate::load::{self, Latencies, mix};
use crate::report::{Latency, Rate, Ratio, Report};
use crate::server::{Backend, BenchServer};

#[derive(Debug, clap::Args)]
pub struct AuthzArgs {
    /// Directory sizes for the in-process checks: USERS/GROUPS pairs.
    #[arg(long, value_delimiter = ',', default_value = "10000/1000,1000000/100000")]
    sizes: Vec<String>,
    /// Timed `allows` calls per measurement.
    #[arg(long, default_value_t = 200_000)]
    samples: usize,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Seconds of load per HTTP route.
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// Skip the HTTP part.
    #[arg(long)]
    in_process_only: bool,
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

const CHAINS: usize = 5;
const DEPTH: usize = 10;
const ROLES: usize = 200;

fn name(s: String) -> Name {
    Name::from_trusted(s)
}

fn group_id(i: usize) -> Uuid {
    Uuid::from_u128(0x1000_0000_0000_0000_0000_0000_0000_0000 | i as u128)
}

fn user_id(i: usize) -> Uuid {
    Uuid::from_u128(0x2000_0000_0000_0000_0000_0000_0000_0000 | i as u128)
}

fn binding(n: usize, role: usize, group: usize, namespaces: &[&str]) -> Binding {
    Binding {
        id: Uuid::from_u128(0x3000_0000_0000_0000_0000_0000_0000_0000 | n as u128),
        role: name(format!("role{role}")),
        subject: Subject { kind: SubjectKind::Group, id: group_id(group), name: name(format!("g{group}")) },
        tenant: name("default".into()),
        namespaces: namespaces.iter().map(|n| Namespace::parse(n)).collect::<Result<_, _>>().unwrap_or_default(),
        created_at: OffsetDateTime::UNIX_EPOCH,
    }
}

/// A directory of `users` users and `groups` groups in chains of ten. User 0 is the probe:
/// directly in the bottom group of each of the first five chains (50 effective groups), which
/// carry exactly 20 bindings; the permission it is granted comes from the top of the last chain.
fn synthetic(users: usize, groups: usize) -> DirectoryGraph {
    let probe_groups = CHAINS * DEPTH;
    let mut graph =
        DirectoryGraph { groups: (0..groups).map(|g| (group_id(g), name(format!("g{g}")))).collect(), ..DirectoryGraph::default() };
    for g in 0..groups {
        if g % DEPTH != 0 {
            graph.memberships.push((group_id(g - 1), SubjectKind::Group, group_id(g)));
        }
    }
    for u in 0..users {
        graph.accounts.push((user_id(u), SubjectKind::User, name(format!("u{u}"))));
        if u == 0 {
            for chain in 0..CHAINS {
                graph.memberships.push((group_id(chain * DEPTH + DEPTH - 1), SubjectKind::User, user_id(0)));
            }
        } else {
            for k in 0..2u64 {
                let g = probe_groups + (mix(u as u64 * 2 + k) as usize % (groups - probe_groups));
                graph.memberships.push((group_id(g), SubjectKind::User, user_id(u)));
            }
        }
    }
    graph.roles = (0..ROLES)
        .map(|r| Role {
            id: name(format!("role{r}")),
            tenant: Some(name("default".into())),
            name: format!("role {r}"),
            description: None,
            permissions: (0..10).map(|p| format!("app{r}:resource{p}:write")).collect(),
            source: RoleSource::Dynamic,
        })
        .chain(built_in_roles())
        .collect();
    // The probe's 20 bindings: 4 per chain at various depths, some namespaced; the last one
    // (top of the last chain, role 199) grants the probed permission in `prod`.
    let mut n = 0;
    for chain in 0..CHAINS {
        for (k, depth) in [9usize, 6, 3, 0].into_iter().enumerate() {
            let role = if chain == CHAINS - 1 && depth == 0 { ROLES - 1 } else { chain * 4 + k };
            let namespaces: &[&str] = if k % 2 == 0 { &["prod"] } else { &[] };
            graph.bindings.push(binding(n, role, chain * DEPTH + depth, namespaces));
            n += 1;
        }
    }
    // Everyone else's bindings: one per ten groups, never on the probe's chains.
    for g in (probe_groups..groups).step_by(10) {
        let role = (mix(g as u64) as usize) % (ROLES - 1);
        graph.bindings.push(binding(n, role, g, if g % 20 == 0 { &["prod.team"] } else { &[] }));
        n += 1;
    }
    graph
}

/// The process's resident set, from `/proc/self/statm` (0 where there is none).
fn resident_bytes() -> usize {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<usize>().ok()))
        .map_or(0, |pages| pages * 4096)
}

/// Times each call on its own; the clock's own cost is measured and taken off.
fn time_calls(samples: usize, mut f: impl FnMut() -> bool, expect: bool) -> anyhow::Result<Latencies> {
    for _ in 0..samples / 10 {
        ensure!(black_box(f()) == expect, "the decision is wrong");
    }
    let overhead = {
        let mut o: Vec<Duration> = (0..1000)
            .map(|_| {
                let t = Instant::now();
                black_box(());
                t.elapsed()
            })
            .collect();
        o.sort_unstable();
        o[o.len() / 2]
    };
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        let t = Instant::now();
        let decision = black_box(f());
        times.push(t.elapsed().saturating_sub(overhead));
        ensure!(decision == expect, "the decision is wrong");
    }
    Ok(Latencies::from_unsorted(times))
}

fn ns(d: Duration) -> u64 {
    d.as_nanos() as u64
}

pub async fn run(args: &AuthzArgs) -> anyhow::Result<()> {
    let mut latencies = Vec::new();
    let mut ratios = Vec::new();
    let mut medians = Vec::new();
    println!("in-process check: user in {} groups nested {DEPTH} deep with 20 bindings", CHAINS * DEPTH);
    println!("{:<28} {:>10} {:>10} {:>10} {:>10} {:>12}", "directory", "allow p50", "allow p99", "deny p50", "deny p99", "build (s)");
    for size in &args.sizes {
        let (users, groups) = size.split_once('/').ok_or_else(|| anyhow::anyhow!("size {size:?} is not USERS/GROUPS"))?;
        let (users, groups): (usize, usize) = (users.parse()?, groups.parse()?);
        ensure!(groups > CHAINS * DEPTH + 10, "at least {} groups", CHAINS * DEPTH + 10);
        let graph = synthetic(users, groups);
        let resident_before = resident_bytes();
        let started = Instant::now();
        let index = AuthzIndex::build(1, graph, PermissionTree::default());
        let build = started.elapsed();
        let resident = resident_bytes().saturating_sub(resident_before);
        let probe = (SubjectKind::User, user_id(0));
        let prod = Namespace::parse("prod.web")?;
        let allowed = format!("app{}:resource3:write", ROLES - 1);
        let allow = time_calls(args.samples, || index.allows(probe, &allowed, "default", Some(&prod), None), true)?;
        let deny = time_calls(args.samples, || index.allows(probe, "app1000:resource0:write", "default", Some(&prod), None), false)?;
        println!(
            "{:<28} {:>8} ns {:>8} ns {:>8} ns {:>8} ns {:>12.1}",
            format!("{users} users / {groups} groups"),
            ns(allow.percentile(0.5)),
            ns(allow.percentile(0.99)),
            ns(deny.percentile(0.5)),
            ns(deny.percentile(0.99)),
            build.as_secs_f64()
        );
        // Changes applied in place to this snapshot, each on its own copy: a nesting (a chain
        // root put under another chain's bottom group) and an account joining a group.
        let roots: Vec<usize> = (CHAINS * DEPTH..groups).step_by(DEPTH).take(2000).collect();
        ensure!(roots.len() >= 2, "at least two chains outside the probe's");
        let mut k = 0;
        let nest = time_calls(
            1000,
            || {
                let at = k % (roots.len() - 1);
                k += 1;
                let change = IndexChange::GroupNested { group: group_id(roots[at] + DEPTH - 1), member: group_id(roots[at + 1]) };
                black_box(index.apply(2, &[change])).revision == 2
            },
            true,
        )?;
        let mut j = 0;
        let join = time_calls(
            1000,
            || {
                j += 1;
                let change = IndexChange::AccountAdded { group: group_id(CHAINS * DEPTH + j % 50), account: user_id(j * 7 % users) };
                black_box(index.apply(2, &[change])).revision == 2
            },
            true,
        )?;
        let footprint = index.footprint();
        let estimated: usize = footprint.iter().map(|(_, b)| b).sum();
        println!(
            "  apply in place: nesting p50 {} ns, p99 {} ns; membership p50 {} ns, p99 {} ns",
            ns(nest.percentile(0.5)),
            ns(nest.percentile(0.99)),
            ns(join.percentile(0.5)),
            ns(join.percentile(0.99))
        );
        println!("  memory: resident growth {} B/account, estimated {} B/account:", resident / users.max(1), estimated / users.max(1));
        for (structure, bytes) in &footprint {
            println!("    {structure:<50} {:>6} B/account  ({:.1} MiB)", bytes / users.max(1), *bytes as f64 / 1_048_576.0);
        }
        medians.push((users, ns(deny.percentile(0.5)).max(1)));
        latencies.push(serde_json::json!({
            "users": users, "groups": groups, "build_secs": build.as_secs_f64(),
            "allow_p50_ns": ns(allow.percentile(0.5)), "allow_p99_ns": ns(allow.percentile(0.99)), "allow_max_ns": ns(allow.max()),
            "deny_p50_ns": ns(deny.percentile(0.5)), "deny_p99_ns": ns(deny.percentile(0.99)), "deny_max_ns": ns(deny.max()),
            "nest_apply_p50_ns": ns(nest.percentile(0.5)), "nest_apply_p99_ns": ns(nest.percentile(0.99)),
            "membership_apply_p50_ns": ns(join.percentile(0.5)), "membership_apply_p99_ns": ns(join.percentile(0.99)),
            "resident_bytes": resident, "footprint": footprint.iter().map(|(k, v)| (k.to_string(), *v)).collect::<std::collections::BTreeMap<_, _>>(),
        }));
    }
    if let (Some(first), Some(last)) = (medians.first(), medians.last()) {
        println!("deny median at {} users ÷ at {} users: {:.2} (target: ~1, flat)", last.0, first.0, last.1 as f64 / first.1 as f64);
    }
    let mut report = None;
    if !args.in_process_only {
        let (r, ratio) = http(args).await?;
        ratios.push(ratio);
        report = Some(r);
    }
    if let Some(path) = &args.json {
        let json = serde_json::json!({ "in_process": latencies, "http": report, "ratios": ratios });
        std::fs::write(path, serde_json::to_string_pretty(&json)? + "\n")?;
    }
    Ok(())
}

/// Logs a break-glass account in and re-authenticates, for writes.
pub async fn elevated(server: &BenchServer, account: &str) -> anyhow::Result<Client> {
    let password = recovery::recover_account(&server.running.context, account).await?;
    let login = Client::new(&server.url)?.login(account, password.expose()).await?;
    let client = Client::new(&server.url)?.with_bearer(login.token.expose());
    client.reauth(password.expose()).await?;
    Ok(client)
}

async fn http(args: &AuthzArgs) -> anyhow::Result<(Report, Ratio)> {
    let server = BenchServer::start(Backend::Sqlite, "").await?;
    let (admin, idm) = (elevated(&server, "admin").await?, elevated(&server, "idm_admin").await?);
    idm.create_user(&CreateUser { name: "alice".into(), ..CreateUser::default() }).await?;
    idm.create_service_account(&CreateServiceAccount { name: "gateway".into(), ..CreateServiceAccount::default() }).await?;
    let role = |id: &str, permissions: &[&str]| CreateRole {
        id: Some(id.into()),
        name: id.into(),
        permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
        ..CreateRole::default()
    };
    admin.create_role(&role("checker", &["warden:check"])).await?;
    admin.create_role(&role("deployer", &["deploy:run"])).await?;
    admin.create_binding(&CreateBinding { role: "checker".into(), subject: "sa:gateway".into(), ..CreateBinding::default() }).await?;
    admin
        .create_binding(&CreateBinding {
            role: "deployer".into(),
            subject: "user:alice".into(),
            namespaces: vec!["prod".into()],
            ..CreateBinding::default()
        })
        .await?;
    let token = idm.create_api_token("gateway", &CreateApiToken::default()).await?;
    let request = Arc::new(CheckRequest {
        subject: "alice".into(),
        permission: Some("deploy:run".into()),
        namespace: Some("prod.web".into()),
        ..CheckRequest::default()
    });
    let clients: Vec<Client> =
        (0..args.clients).map(|_| Ok(Client::new(&server.url)?.with_bearer(token.token.expose()))).collect::<anyhow::Result<_>>()?;
    let budget = Some(Duration::from_secs(args.secs));
    let bare = load::drive(clients.clone(), usize::MAX, budget, |c: Client, _| async move { Ok(c.health().await?) }).await?;
    let checks = load::drive(clients.clone(), usize::MAX, budget, move |c: Client, _| {
        let request = request.clone();
        async move {
            let answer = c.check(&request).await?;
            ensure!(answer.results[0].allowed, "the check was denied");
            Ok(())
        }
    })
    .await?;
    let probe = clients[0].clone();
    let single = CheckRequest {
        subject: "alice".into(),
        permission: Some("deploy:run".into()),
        namespace: Some("prod.web".into()),
        ..CheckRequest::default()
    };
    let check_latency = load::sample(2000, |_| {
        let (c, r) = (probe.clone(), single.clone());
        async move { Ok(c.check(&r).await.map(drop)?) }
    })
    .await?;
    let health_latency = load::sample(2000, |_| {
        let c = probe.clone();
        async move { Ok(c.health().await?) }
    })
    .await?;
    let ratio = Ratio { name: "check req/s ÷ healthz req/s", value: checks.per_sec() / bare.per_sec() };
    let report = Report {
        scenario: "authz-http",
        backend: Backend::Sqlite,
        cores: crate::report::cores(),
        clients: args.clients,
        directory_size: 4,
        rates: vec![Rate::new("GET /healthz (bare 200 OK)", bare, None), Rate::new("POST /api/v1/check (API token)", checks, None)],
        latencies: vec![Latency::new("GET /healthz", &health_latency, None), Latency::new("POST /api/v1/check", &check_latency, None)],
        ratios: vec![Ratio { name: ratio.name, value: ratio.value }],
    };
    println!();
    print!("{}", report.to_table());
    server.stop().await?;
    Ok((report, ratio))
}
