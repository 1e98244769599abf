//! The `login` scenario: password logins per second through the API, against the rate at
//! which the same machine computes the same argon2id hashes with the same parallelism.
//!
//! A login is one hash plus bookkeeping (the soft lock's read of recent failures, the account
//! and its hash, a session and its audit event written in one transaction). The hash is the
//! floor; TARGETS.md asks that everything else cost at most a tenth of it. Both phases run in
//! this process for the same time, in turn, round after round (the shared machine's speed
//! drifts; a ratio is taken within each round, and the report gives their median and range):
//!
//! 1. **Hashes**: the server's own `PasswordHasher` (the configured parameters, its limit of
//!    concurrent hashes, the blocking pool), verifying a stored hash from `--clients` tasks.
//! 2. **Logins**: `POST /api/v1/auth/login` from `--clients` keep-alive clients, each as its
//!    own user (so that no user's soft lock is involved), against a real in-process server.

use std::time::{Duration, Instant};

use anyhow::ensure;
use serde::Serialize;
use warden_client::Client;
use warden_core::api::CreateUser;
use warden_core::credential::Secret;
use warden_server::config::Config;
use warden_server::password::PasswordHasher;

use crate::server::{Backend, BenchServer};

#[derive(Debug, clap::Args)]
pub struct LoginArgs {
    /// Seconds per phase.
    #[arg(long, default_value_t = 5)]
    secs: u64,
    /// Rounds of both phases.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Concurrent tasks (hashes) and clients (logins).
    #[arg(long, default_value_t = 4)]
    clients: usize,
    #[arg(long, value_enum, default_value = "sqlite")]
    backend: Backend,
    /// PostgreSQL server for `--backend postgres` (a database is created and dropped).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pg_url: String,
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

#[derive(Debug, Serialize)]
struct LoginReport {
    scenario: &'static str,
    backend: Backend,
    cores: usize,
    clients: usize,
    secs_per_phase: u64,
    rounds: usize,
    argon2_memory_kib: u32,
    argon2_iterations: u32,
    argon2_max_concurrent: usize,
    /// Per round.
    hashes_per_sec: Vec<f64>,
    logins_per_sec: Vec<f64>,
    /// Logins per second ÷ hashes per second, per round; TARGETS.md asks at least 0.9.
    ratios: Vec<f64>,
    median_ratio: f64,
}

const PASSWORD: &str = "correct horse battery staple";

pub async fn run(args: &LoginArgs) -> anyhow::Result<()> {
    ensure!(args.secs > 0 && args.clients > 0 && args.rounds > 0, "--secs, --clients and --rounds must be positive");
    let budget = Duration::from_secs(args.secs);
    let argon2 = Config::default().auth.argon2;
    let hasher = PasswordHasher::new(&argon2)?;
    let stored = hasher.hash(&Secret::new(PASSWORD)).await?;
    let server = BenchServer::start(args.backend, &args.pg_url).await?;
    let result = rounds(&server, &hasher, &stored, args, budget).await;
    let stopped = server.stop().await;
    let (hashes_per_sec, logins_per_sec) = result?;
    stopped?;
    let ratios: Vec<f64> = logins_per_sec.iter().zip(&hashes_per_sec).map(|(l, h)| l / h.max(f64::EPSILON)).collect();
    let median = |values: &[f64]| {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    };
    let report = LoginReport {
        scenario: "login",
        backend: args.backend,
        cores: crate::report::cores(),
        clients: args.clients,
        secs_per_phase: args.secs,
        rounds: args.rounds,
        argon2_memory_kib: argon2.memory_kib,
        argon2_iterations: argon2.iterations,
        argon2_max_concurrent: argon2.max_concurrent,
        median_ratio: median(&ratios),
        hashes_per_sec,
        logins_per_sec,
        ratios,
    };
    println!(
        "warden-bench login: {} cores, {} clients, {} rounds of {} s per phase, argon2id {} KiB × {} passes, {} hashes at once, {:?}",
        report.cores,
        report.clients,
        report.rounds,
        report.secs_per_phase,
        report.argon2_memory_kib,
        report.argon2_iterations,
        report.argon2_max_concurrent,
        report.backend
    );
    let range = |values: &[f64]| {
        let (lo, hi) = values.iter().fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        format!("{:.2} ({lo:.2}–{hi:.2})", median(values))
    };
    println!("argon2id hashes/s (the server's hasher alone), median (range)   {}", range(&report.hashes_per_sec));
    println!("password logins/s (POST /api/v1/auth/login), median (range)     {}", range(&report.logins_per_sec));
    println!("logins ÷ hashes, median (range)                                  {}   target ≥ 0.90", range(&report.ratios));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")?;
    }
    Ok(())
}

/// Each round's hash rate and login rate.
async fn rounds(
    server: &BenchServer,
    hasher: &PasswordHasher,
    stored: &str,
    args: &LoginArgs,
    budget: Duration,
) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let idm = server.client()?;
    for i in 0..args.clients {
        idm.create_user(&CreateUser { name: format!("login-{i}"), password: Some(Secret::new(PASSWORD)), ..CreateUser::default() }).await?;
    }
    let (mut hashes, mut logins) = (Vec::new(), Vec::new());
    for round in 0..args.rounds {
        eprintln!("  round {} of {}", round + 1, args.rounds);
        hashes.push(hash_rate(hasher, stored, args.clients, budget).await?);
        logins.push(login_rate(&server.url, args.clients, budget).await?);
    }
    Ok((hashes, logins))
}

/// Verifications per second of `stored` from `tasks` tasks, through the server's hasher.
async fn hash_rate(hasher: &PasswordHasher, stored: &str, tasks: usize, budget: Duration) -> anyhow::Result<f64> {
    let states = vec![(hasher.clone(), stored.to_owned()); tasks];
    rate(states, budget, |(hasher, stored)| async move {
        let verdict = hasher.verify(&Secret::new(PASSWORD), Some(stored)).await?;
        ensure!(verdict == warden_server::password::Verdict::Match, "the stored hash does not match");
        Ok(())
    })
    .await
}

/// Logins per second from `clients` clients, each as its own user.
async fn login_rate(url: &str, clients: usize, budget: Duration) -> anyhow::Result<f64> {
    let states = (0..clients).map(|i| Ok((Client::new(url)?, format!("login-{i}")))).collect::<anyhow::Result<Vec<_>>>()?;
    rate(states, budget, |(client, name)| async move {
        client.login(&name, PASSWORD).await?;
        Ok(())
    })
    .await
}

/// Calls of `once` per second: one task per state, each calling `once` with (a copy of) its
/// state until `budget` has passed.
async fn rate<S, F>(states: Vec<S>, budget: Duration, once: fn(S) -> F) -> anyhow::Result<f64>
where
    S: Clone + Send + 'static,
    F: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let start = Instant::now();
    let mut running = tokio::task::JoinSet::new();
    for state in states {
        running.spawn(async move {
            let mut done = 0u64;
            while start.elapsed() < budget {
                once(state.clone()).await?;
                done += 1;
            }
            anyhow::Ok(done)
        });
    }
    let mut total = 0;
    while let Some(done) = running.join_next().await {
        total += done??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}
