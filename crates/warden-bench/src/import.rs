//! The `import` scenario: users/s through `POST /api/v1/import`, beside the disk's own durable
//! commit rate measured in the same run.
//!
//! 1. the disk: single-row durable transactions for a few seconds (SQLite: a scratch file
//!    beside the server's, WAL and `synchronous=FULL`; PostgreSQL: a scratch table in the
//!    bench database), before and after the import;
//! 2. one import, streamed as the CLI would send it (generated on the fly, never whole in
//!    memory): `--groups G` groups, `--users N` users with a profile (display name, names,
//!    an e-mail), each in one group (or `--memberships M` distinct groups): N + G + N×M records;
//! 3. the server's memory: this process's resident set (`VmRSS`; the server runs in it, the
//!    upload is generated piece by piece) before and after the import, beside the
//!    authorization snapshot's own estimate of its bytes ([`AuthzIndex::footprint`]) and the
//!    credential cache's entries, so that the growth per user can be told apart: index,
//!    caches, and the rest (connection pools, allocator slack, the import's freed buffers);
//!    and once more after the server has stopped, which is what the allocator kept.
//!
//! [`AuthzIndex::footprint`]: warden_core::authz::AuthzIndex::footprint

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context as _, ensure};
use warden_client::Client;
use warden_core::credential::Secret;
use warden_server::services::recovery;

use crate::load::{Throughput, mix};
use crate::report::{Rate, Ratio, Report};
use crate::server::{Backend, BenchServer};

/// Lines per piece of the upload.
const LINES_PER_PIECE: usize = 2000;

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Users imported (each with a profile, each in one group).
    #[arg(long, default_value_t = 100_000)]
    users: usize,
    /// Groups imported first.
    #[arg(long, default_value_t = 1_000)]
    groups: usize,
    /// Groups each user is put in (distinct; at most `--groups`).
    #[arg(long, default_value_t = 1)]
    memberships: usize,
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    backend: Backend,
    /// PostgreSQL server to use; the bench creates and drops its own database on it.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pg_url: String,
    /// Seconds of each disk measurement.
    #[arg(long, default_value_t = 3)]
    disk_secs: u64,
    /// Also write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn user_line(i: usize, groups: usize, memberships: usize) -> String {
    let name = format!("u{:06x}-{i}", mix(i as u64) & 0xff_ffff);
    let first = mix(i as u64 ^ 0x5eed_5eed) % groups as u64;
    let mut line = format!(
        "{{\"kind\":\"user\",\"name\":\"{name}\",\"profile\":{{\"display_name\":\"Bench User {i}\",\"first_name\":\"Bench\",\"last_name\":\"User {i}\",\
         \"emails\":[{{\"address\":\"{name}@bench.example.org\",\"primary\":true}}],\"phones\":[],\"addresses\":[]}}}}\n"
    );
    // Consecutive groups from a random first one: distinct while `memberships <= groups`.
    for k in 0..memberships as u64 {
        let group = (first + k) % groups as u64;
        let _ = writeln!(line, "{{\"kind\":\"member\",\"group\":\"grp-{group:06}\",\"member\":\"user:{name}\"}}");
    }
    line
}

/// The import file, in pieces: header, groups, then each user followed by its membership,
/// then the end line.
pub fn file(
    users: usize,
    groups: usize,
    memberships: usize,
) -> impl futures_util::Stream<Item = std::io::Result<Vec<u8>>> + Send + 'static {
    let records = groups + (1 + memberships) * users;
    let pieces = std::iter::once("{\"kind\":\"header\",\"format\":1}\n".to_owned())
        .chain((0..groups).map(|g| format!("{{\"kind\":\"group\",\"name\":\"grp-{g:06}\"}}\n")))
        .chain((0..users).map(move |i| user_line(i, groups, memberships)))
        .chain(std::iter::once(format!("{{\"kind\":\"end\",\"records\":{records}}}\n")))
        .collect_chunks(LINES_PER_PIECE);
    futures_util::stream::iter(pieces.map(|piece| Ok(piece.into_bytes())))
}

/// Groups an iterator of lines into strings of `n` lines.
trait CollectChunks: Iterator<Item = String> + Sized {
    fn collect_chunks(self, n: usize) -> impl Iterator<Item = String> + Send
    where
        Self: Send,
    {
        let mut lines = self.peekable();
        std::iter::from_fn(move || {
            lines.peek()?;
            Some(lines.by_ref().take(n).collect::<String>())
        })
    }
}

impl<I: Iterator<Item = String>> CollectChunks for I {}

/// The password of `bench-importer`, the account [`importer`] makes.
pub const IMPORTER_PASSWORD: &str = "bench importer password";

/// An idm_superuser (only it, or a holder of `warden:import:write`, may import), logged in and
/// elevated.
pub async fn importer(server: &BenchServer) -> anyhow::Result<Client> {
    let password = IMPORTER_PASSWORD;
    let idm = server.client()?;
    idm.create_user(&warden_core::api::CreateUser {
        name: "bench-importer".into(),
        password: Some(Secret::new(password)),
        ..Default::default()
    })
    .await?;
    recovery::set_superuser(&server.running.context, "bench-importer", true).await.context("cannot make the importer a superuser")?;
    let login = Client::new(&server.url)?.login("bench-importer", password).await?;
    let client = Client::new(&server.url)?.with_bearer(login.token.expose());
    client.reauth(password).await?;
    Ok(client)
}

pub async fn run(args: &ImportArgs) -> anyhow::Result<()> {
    ensure!(args.users >= 1 && args.groups >= 1, "--users and --groups must be at least 1");
    ensure!(args.memberships <= args.groups, "--memberships must be at most --groups");
    let server = BenchServer::start_configured(args.backend, &args.pg_url, |config| config.authz.elevation_window = "24h".into()).await?;
    eprintln!("wardend ({}) on {}", server.backend(), server.url);
    let outcome = scenario(&server, args).await;
    let stopped = server.stop().await;
    // What the allocator still holds once the server and its database are gone: the part of
    // the growth that was not the server's live state.
    eprintln!("memory: resident {:.1} MiB after the server stopped ({})", resident_bytes() as f64 / 1_048_576.0, resident_split());
    let report = outcome?;
    stopped?;
    print!("{}", report.to_table());
    if let Some(path) = &args.json {
        report.write_json(path)?;
    }
    Ok(())
}

/// This process's resident set in bytes, from `/proc/self/status` (0 where there is none).
pub fn resident_bytes() -> usize {
    status_bytes("VmRSS:")
}

/// One `kB` line of `/proc/self/status`, in bytes (0 where there is none).
fn status_bytes(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// The resident set split by kind: anonymous (heaps), file-backed (mapped files), shared.
fn resident_split() -> String {
    let mib = |field| status_bytes(field) as f64 / 1_048_576.0;
    format!("anonymous {:.1} MiB, files {:.1} MiB, shared {:.1} MiB", mib("RssAnon:"), mib("RssFile:"), mib("RssShmem:"))
}

/// Bytes per user, for the report.
fn per_user(bytes: usize, users: usize) -> f64 {
    bytes as f64 / users.max(1) as f64
}

async fn scenario(server: &BenchServer, args: &ImportArgs) -> anyhow::Result<Report> {
    let client = importer(server).await?;
    let disk_before = crate::server::disk_commits(server, args.disk_secs).await?;
    eprintln!("disk: {:.0} durable commits/s", disk_before.per_sec());
    let context = &server.running.context;
    let index_before: usize = context.authz.snapshot().footprint().iter().map(|(_, b)| b).sum();
    let resident_before = resident_bytes();
    let started = Instant::now();
    let records = args.groups + (1 + args.memberships) * args.users;
    let summary = client.import(file(args.users, args.groups, args.memberships), false).await?;
    let elapsed = started.elapsed();
    ensure!(summary.created == records as u64, "the import created {} records, not {}", summary.created, records);
    let resident_after = resident_bytes();
    let footprint = context.authz.snapshot().footprint();
    let index_after: usize = footprint.iter().map(|(_, b)| b).sum();
    let cached = context.authz.credentials.len();
    eprintln!(
        "memory: resident {:.1} → {:.1} MiB ({:.0} B/user); index estimate {:.1} → {:.1} MiB ({:.0} B/user); {cached} cached credentials",
        resident_before as f64 / 1_048_576.0,
        resident_after as f64 / 1_048_576.0,
        per_user(resident_after.saturating_sub(resident_before), args.users),
        index_before as f64 / 1_048_576.0,
        index_after as f64 / 1_048_576.0,
        per_user(index_after.saturating_sub(index_before), args.users),
    );
    for (structure, bytes) in &footprint {
        eprintln!("  {structure:<50} {:>6.0} B/user", per_user(*bytes, args.users));
    }
    let disk_after = crate::server::disk_commits(server, args.disk_secs).await?;
    eprintln!("memory: resident {:.1} MiB after the disk probe ({})", resident_bytes() as f64 / 1_048_576.0, resident_split());
    let users = Throughput { done: args.users, elapsed };
    let records = Throughput { done: records, elapsed };
    let target = match args.backend {
        Backend::Sqlite => ">= 20000/s",
        Backend::Postgres => ">= 10000/s",
    };
    let disk = f64::midpoint(disk_before.per_sec(), disk_after.per_sec());
    Ok(Report {
        scenario: "import",
        backend: args.backend,
        cores: crate::report::cores(),
        clients: 1,
        directory_size: args.users + 3,
        rates: vec![
            Rate::new("users imported (profile + --memberships each)", users, Some(target)),
            Rate::new("records imported (users, groups, members)", records, None),
            Rate::new("disk: durable 1-row commits, before", disk_before, None),
            Rate::new("disk: durable 1-row commits, after", disk_after, None),
        ],
        latencies: vec![],
        ratios: vec![
            Ratio { name: "users imported/s ÷ disk commits/s", value: users.per_sec() / disk.max(f64::EPSILON) },
            Ratio { name: "batches (one commit each)", value: summary.batches as f64 },
            Ratio { name: "seconds for 1M users at this rate", value: 1_000_000.0 / users.per_sec().max(f64::EPSILON) },
            Ratio { name: "resident before the import (MiB)", value: resident_before as f64 / 1_048_576.0 },
            Ratio { name: "resident growth per user (B)", value: per_user(resident_after.saturating_sub(resident_before), args.users) },
            Ratio { name: "index estimate per user (B)", value: per_user(index_after.saturating_sub(index_before), args.users) },
            Ratio { name: "cached credentials", value: cached as f64 },
        ],
    })
}
