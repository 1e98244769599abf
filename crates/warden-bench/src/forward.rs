//! The `forward` scenario: forward-auth under load, against the same server's bare "200 OK".
//!
//! One in-process `wardend` with two forward-auth setups: a simple rule (`/simple/**` needs
//! `deploy:run` in `prod`) and a Rego policy (`/rego/**`). The same load generator drives, for
//! the same time each, `GET /healthz` (the baseline), then `/auth/forward` as Traefik would
//! call it with a session cookie and with an API token, by rule and by policy.
//!
//! Two more cases take the difference apart (they have no target): `/healthz` with the same
//! request headers as forward-auth's (what the larger request costs the HTTP stack), and
//! `/auth/forward` under an `allow_anonymous` rule without a credential (the route's own fixed
//! cost, without authentication or identity headers).
//!
//! The machines we measure on are small and shared, and their speed drifts over seconds. So the
//! cases run in turn, round after round, and each round's forward-auth rates are divided by the
//! same round's bare rate: a slow spell weighs on a ratio's both sides. The report gives the
//! median ratio over the rounds and its range.
//!
//! The default generator is `wrk` (Debian's package), a separate process: it costs the server
//! least, so the ratio shows the server's own cost per request. `--generator client` uses
//! reqwest clients inside this process instead, where nothing needs installing.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use serde::Serialize;
use warden_client::Client;
use warden_core::api::{CreateApiToken, CreateBinding, CreateRole, CreateServiceAccount, CreateUser};
use warden_core::credential::Secret;

use crate::authz::elevated;
use crate::load::Latencies;
use crate::server::{Backend, BenchServer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Generator {
    /// wrk, in its own process (`apt install wrk`).
    Wrk,
    /// reqwest clients in this process, sharing its runtime with the server.
    Client,
}

#[derive(Debug, clap::Args)]
pub struct ForwardArgs {
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Seconds of load per case in each round.
    #[arg(long, default_value_t = 3)]
    secs: u64,
    /// Rounds; every case runs once per round, in turn.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// The load generator.
    #[arg(long, value_enum, default_value_t = Generator::Wrk)]
    generator: Generator,
    /// Threads wrk drives its connections from.
    #[arg(long, default_value_t = 1)]
    wrk_threads: usize,
    /// With wrk: the server on the first CPU and wrk on the second (`taskset`), so that the two
    /// do not preempt each other; `--pin false` lets the kernel place them.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pin: bool,
    /// Write the benchmark policy so that regorus's VM runs it (`vm`), or in a form only its
    /// interpreter runs (`interpreter`: `headers` as a partial object with a constant key).
    #[arg(long, value_enum, default_value_t = RegoEngine::Vm)]
    rego_engine: RegoEngine,
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RegoEngine {
    Vm,
    Interpreter,
}

impl ForwardArgs {
    /// Whether the server gets CPU 0 and wrk CPU 1.
    pub fn pinned(&self) -> bool {
        self.generator == Generator::Wrk && self.pin
    }
}

pub const POLICY: &str = r#"package warden.forward_auth

import rego.v1

default allow := false

allow if {
    input.request.method == "GET"
    startswith(input.request.path, "/rego/")
    "deploy:run" in input.subject.permissions
}

headers := {"X-Policy": "rego"} if allow
"#;

/// `policy` rewritten so that only the interpreter runs it: a partial object with a constant
/// key (`headers["X-Policy"] := …`), which the VM does not compile, says the same.
pub fn interpreter_only(policy: &str) -> String {
    policy.replace(r#"headers := {"X-Policy": "rego"} if allow"#, r#"headers["X-Policy"] := "rego" if allow"#)
}

/// One kind of request: where to, with which headers, and what TARGETS.md asks of it.
struct Case {
    name: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    /// Whether each request asks about another path (`{X-Forwarded-Uri}/{n}`), so that no
    /// policy decision is remembered from an earlier request.
    new_path_each_request: bool,
    /// The least share of the bare route's rate it should reach.
    target_ratio: Option<f64>,
}

/// One case's load in one round.
#[derive(Debug, Clone, Copy, Serialize)]
struct Run {
    requests: u64,
    secs: f64,
    per_sec: f64,
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
    /// CPU time this process spent per request: the server's own cost with wrk (the load
    /// generator's too with the in-process clients).
    cpu_us_per_request: f64,
}

/// A case over all rounds.
#[derive(Debug, Serialize)]
struct CaseReport {
    name: &'static str,
    runs: Vec<Run>,
    median_per_sec: f64,
    /// Per-round ratios to the bare route (absent for the bare route itself).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    ratios: Vec<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    median_ratio: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_ratio: Option<f64>,
    median_p50_us: u64,
    median_p99_us: u64,
    worst_p99_us: u64,
    median_cpu_us_per_request: f64,
}

#[derive(Debug, Serialize)]
struct ForwardReport {
    scenario: &'static str,
    generator: Generator,
    cores: usize,
    clients: usize,
    rounds: usize,
    secs_per_run: u64,
    /// Whether the server and wrk ran on CPUs of their own.
    pinned: bool,
    rego_engine: RegoEngine,
    /// p99 the target asks for, in microseconds.
    target_p99_us: u64,
    cases: Vec<CaseReport>,
}

const TARGET_P99_US: u64 = 2_000;

/// What Traefik sends about `GET https://app.example.org{uri}`, with the credential if any.
fn forwarded_headers(uri: &str, credential: Option<(&'static str, &str)>) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        ("x-forwarded-method", "GET".to_owned()),
        ("x-forwarded-proto", "https".to_owned()),
        ("x-forwarded-host", "app.example.org".to_owned()),
        ("x-forwarded-uri", uri.to_owned()),
    ];
    headers.extend(credential.map(|(name, value)| (name, value.to_owned())));
    headers
}

impl Case {
    /// `/auth/forward` as Traefik calls it about `GET https://app.example.org{uri}`, with one
    /// credential header.
    fn forward(name: &'static str, uri: &str, credential: (&'static str, &str), target_ratio: f64) -> Self {
        Self {
            name,
            path: "/auth/forward",
            headers: forwarded_headers(uri, Some(credential)),
            new_path_each_request: false,
            target_ratio: Some(target_ratio),
        }
    }

    /// A case that explains the others and has no target.
    fn diagnostic(name: &'static str, path: &'static str, headers: Vec<(&'static str, String)>) -> Self {
        Self { name, path, headers, new_path_each_request: false, target_ratio: None }
    }

    /// Whether forward-auth answers this case with an identity.
    fn has_credential(&self) -> bool {
        self.headers.iter().any(|(name, _)| matches!(*name, "cookie" | "authorization"))
    }

    /// Each request about another path under `uri`.
    fn with_new_paths(self) -> Self {
        Self { new_path_each_request: true, ..self }
    }

    fn uri(&self) -> Option<&str> {
        self.headers.iter().find(|(name, _)| *name == "x-forwarded-uri").map(|(_, v)| v.as_str())
    }

    /// The headers each request carries as they are: with a new path each time, not the fixed
    /// `X-Forwarded-Uri` (which each request sets itself; Warden refuses it sent twice).
    fn sent_headers(&self) -> impl Iterator<Item = &(&'static str, String)> {
        self.headers.iter().filter(|(name, _)| !(self.new_path_each_request && *name == "x-forwarded-uri"))
    }
}

pub async fn run(args: &ForwardArgs) -> anyhow::Result<()> {
    ensure!(args.rounds > 0 && args.secs > 0 && args.clients > 0, "--rounds, --secs and --clients must be positive");
    // Counted before pinning, which leaves this process one CPU to see.
    let cores = crate::report::cores();
    let pinned = args.pinned();
    if args.generator == Generator::Wrk {
        ensure_wrk().await?;
    }
    if pinned {
        pin_this_process().await?;
    }
    let policy_dir = tempfile::tempdir()?;
    let policy = match args.rego_engine {
        RegoEngine::Vm => POLICY.to_owned(),
        RegoEngine::Interpreter => interpreter_only(POLICY),
    };
    std::fs::write(policy_dir.path().join("bench.rego"), policy)?;
    let runtime = warden_policy::rego::Policy::load(policy_dir.path(), warden_policy::rego::DEFAULT_QUERY)?.runtime();
    eprintln!("  the Rego policy runs on: {runtime}");
    let expected_vm = args.rego_engine == RegoEngine::Vm;
    ensure!(
        (runtime == warden_policy::rego::Runtime::Vm) == expected_vm,
        "the benchmark policy runs on {runtime}, not on the engine asked for"
    );
    let dir = policy_dir.path().to_owned();
    let rules: Vec<warden_policy::Rule> = serde_json::from_value(serde_json::json!([
        {"path": "/public/**", "action": "allow_anonymous"},
        {"path": "/simple/**", "action": "permission", "permission": "deploy:run", "namespace": "prod"},
        {"path": "/rego/**", "action": "policy", "namespace": "prod"},
    ]))?;
    let server = BenchServer::start_configured(Backend::Sqlite, "", move |config| {
        config.forward_auth.policy_dir = Some(dir);
        config.forward_auth.rules = rules;
    })
    .await?;
    let result = measure(&server, args, cores).await;
    let stopped = server.stop().await;
    let report = result?;
    stopped?;
    print!("{}", to_table(&report));
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, json + "\n").with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// Seeds the accounts, checks that every case is answered as expected, then drives the rounds.
async fn measure(server: &BenchServer, args: &ForwardArgs, cores: usize) -> anyhow::Result<ForwardReport> {
    let (admin, idm) = (elevated(server, "admin").await?, elevated(server, "idm_admin").await?);
    idm.create_user(&CreateUser { name: "alice".into(), password: Some(Secret::new("correct horse battery")), ..CreateUser::default() })
        .await?;
    idm.create_service_account(&CreateServiceAccount { name: "deployer".into(), ..CreateServiceAccount::default() }).await?;
    admin
        .create_role(&CreateRole {
            id: Some("deploy".into()),
            name: "Deploy".into(),
            permissions: vec!["deploy:run".into()],
            ..CreateRole::default()
        })
        .await?;
    for subject in ["user:alice", "sa:deployer"] {
        admin
            .create_binding(&CreateBinding {
                role: "deploy".into(),
                subject: subject.into(),
                namespaces: vec!["prod".into()],
                ..CreateBinding::default()
            })
            .await?;
    }
    let session = Client::new(&server.url)?.login("alice", "correct horse battery").await?.token.expose().to_owned();
    let token = idm.create_api_token("deployer", &CreateApiToken::default()).await?.token.expose().to_owned();
    let cookie = format!("warden_session={session}");
    let bearer = format!("Bearer {token}");
    let cases = vec![
        Case::diagnostic("GET /healthz (bare 200 OK)", "/healthz", vec![]),
        Case::diagnostic(
            "  the same, with forward-auth's request headers",
            "/healthz",
            forwarded_headers("/simple/x", Some(("cookie", &cookie))),
        ),
        Case::diagnostic("  forward-auth, public rule, no credential", "/auth/forward", forwarded_headers("/public/x", None)),
        Case::forward("forward-auth, rule, session cookie", "/simple/x", ("cookie", &cookie), 0.8),
        Case::forward("forward-auth, rule, API token", "/simple/x", ("authorization", &bearer), 0.8),
        Case::forward("forward-auth, Rego, session cookie", "/rego/x", ("cookie", &cookie), 0.5),
        Case::forward("forward-auth, Rego, API token", "/rego/x", ("authorization", &bearer), 0.5),
        Case::forward("forward-auth, Rego, API token, each path new", "/rego/x", ("authorization", &bearer), 0.5).with_new_paths(),
    ];
    for case in &cases {
        check(&server.url, case).await.with_context(|| format!("case {:?}", case.name))?;
    }
    let script = tempfile::tempdir()?;
    let scripts = Scripts { report: script.path().join("report.lua"), new_paths: script.path().join("new_paths.lua") };
    std::fs::write(&scripts.report, WRK_REPORT)?;
    std::fs::write(&scripts.new_paths, format!("{WRK_REPORT}{WRK_NEW_PATHS}"))?;
    let clients: Vec<reqwest::Client> = (0..args.clients).map(|_| reqwest::Client::builder().build()).collect::<Result<_, _>>()?;
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); cases.len()];
    for round in 0..args.rounds {
        eprintln!("  round {} of {}", round + 1, args.rounds);
        for (case, case_runs) in cases.iter().zip(&mut runs) {
            let url = format!("{}{}", server.url, case.path);
            let cpu_before = process_cpu()?;
            let mut run = match args.generator {
                Generator::Wrk => wrk(&url, case, args, &scripts).await,
                Generator::Client => drive(&clients, args.secs, &url, case).await,
            }
            .with_context(|| format!("case {:?}", case.name))?;
            run.cpu_us_per_request = process_cpu()?.saturating_sub(cpu_before).as_secs_f64() * 1e6 / run.requests.max(1) as f64;
            case_runs.push(run);
        }
    }
    let bare: Vec<f64> = runs[0].iter().map(|r| r.per_sec).collect();
    let reports = cases
        .iter()
        .zip(runs)
        .map(|(case, runs)| {
            // Every case but the baseline has a ratio to it.
            let ratios: Vec<f64> = if case.name == cases[0].name {
                vec![]
            } else {
                runs.iter().zip(&bare).map(|(r, b)| r.per_sec / b.max(f64::EPSILON)).collect()
            };
            CaseReport {
                name: case.name,
                median_per_sec: median_f(runs.iter().map(|r| r.per_sec).collect()),
                median_ratio: (!ratios.is_empty()).then(|| median_f(ratios.clone())),
                ratios,
                target_ratio: case.target_ratio,
                median_p50_us: median_u(runs.iter().map(|r| r.p50_us).collect()),
                median_p99_us: median_u(runs.iter().map(|r| r.p99_us).collect()),
                worst_p99_us: runs.iter().map(|r| r.p99_us).max().unwrap_or_default(),
                median_cpu_us_per_request: median_f(runs.iter().map(|r| r.cpu_us_per_request).collect()),
                runs,
            }
        })
        .collect();
    Ok(ForwardReport {
        scenario: "forward",
        generator: args.generator,
        cores,
        clients: args.clients,
        rounds: args.rounds,
        secs_per_run: args.secs,
        pinned: args.pinned(),
        rego_engine: args.rego_engine,
        target_p99_us: TARGET_P99_US,
        cases: reports,
    })
}

/// One request of `case`, which must pass (forward-auth with the identity headers): a
/// benchmark of refusals would measure the wrong thing.
async fn check(base: &str, case: &Case) -> anyhow::Result<()> {
    let mut request = reqwest::Client::new().get(format!("{base}{}", case.path));
    for (name, value) in case.sent_headers() {
        request = request.header(*name, value);
    }
    if case.new_path_each_request {
        request = request.header("x-forwarded-uri", format!("{}/0", case.uri().unwrap_or_default()));
    }
    let response = request.send().await?;
    ensure!(response.status().is_success(), "answered {}", response.status());
    if case.path == "/auth/forward" && case.has_credential() {
        ensure!(response.headers().contains_key("x-remote-user"), "no X-Remote-User in the answer");
    }
    if case.name.contains("Rego") {
        ensure!(response.headers().get("x-policy").is_some_and(|v| v == "rego"), "the policy's header is missing");
    }
    Ok(())
}

/// Drives `url` from every client for `secs`; each request's time is recorded.
async fn drive(clients: &[reqwest::Client], secs: u64, url: &str, case: &Case) -> anyhow::Result<Run> {
    let start = Instant::now();
    let budget = Duration::from_secs(secs);
    let headers: Arc<[(&'static str, String)]> = case.sent_headers().cloned().collect();
    let new_paths = case.new_path_each_request.then(|| case.uri().unwrap_or_default().to_owned());
    let mut tasks = tokio::task::JoinSet::new();
    for (c, client) in clients.iter().enumerate() {
        let (client, url, headers, new_paths) = (client.clone(), url.to_owned(), headers.clone(), new_paths.clone());
        tasks.spawn(async move {
            let mut times = Vec::new();
            while start.elapsed() < budget {
                let t = Instant::now();
                let mut request = client.get(&url);
                for (name, value) in headers.iter() {
                    request = request.header(*name, value);
                }
                if let Some(prefix) = &new_paths {
                    request = request.header("x-forwarded-uri", format!("{prefix}/{c}-{}", times.len()));
                }
                let response = request.send().await?;
                let status = response.status();
                let body = response.bytes().await?;
                ensure!(status.is_success(), "unexpected status {status}: {}", String::from_utf8_lossy(&body));
                times.push(t.elapsed());
            }
            anyhow::Ok(times)
        });
    }
    let mut all = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        all.extend(joined??);
    }
    let secs = start.elapsed().as_secs_f64();
    let times = Latencies::from_unsorted(all);
    let us = |d: Duration| d.as_micros() as u64;
    Ok(Run {
        requests: times.len() as u64,
        secs,
        per_sec: times.len() as f64 / secs,
        p50_us: us(times.percentile(0.5)),
        p99_us: us(times.percentile(0.99)),
        max_us: us(times.max()),
        cpu_us_per_request: 0.0,
    })
}

/// wrk's report, as one line this module reads: requests, duration (µs), non-2xx/3xx answers,
/// socket errors, then p50, p99 and max latency (µs).
const WRK_REPORT: &str = r#"done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("warden-bench %d %d %d %d %d %d %d\n", summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
"#;

/// A `request` function for wrk that asks about another path each time: the case's
/// `X-Forwarded-Uri` (the script's argument) followed by a counter. Each wrk thread runs its
/// own copy, so the counters of two threads overlap; with one thread (the default) they do not.
const WRK_NEW_PATHS: &str = r#"
local prefix, n = "/", 0
init = function(args) prefix = args[1] or "/" end
request = function()
  n = n + 1
  wrk.headers["x-forwarded-uri"] = prefix .. "/" .. n
  return wrk.format()
end
"#;

/// The wrk scripts: the report alone, and with [`WRK_NEW_PATHS`].
struct Scripts {
    report: PathBuf,
    new_paths: PathBuf,
}

pub(crate) async fn ensure_wrk() -> anyhow::Result<()> {
    match tokio::process::Command::new("wrk").arg("--version").output().await {
        Ok(_) => Ok(()),
        Err(e) => bail!("cannot run wrk ({e}): install Debian's wrk, or use --generator client"),
    }
}

/// Puts every thread of this process (the server's) on CPU 0; threads started later inherit it.
pub(crate) async fn pin_this_process() -> anyhow::Result<()> {
    ensure!(crate::report::cores() >= 2, "--pin needs two CPUs (one for the server, one for wrk); use --pin false");
    let output = tokio::process::Command::new("taskset")
        .args(["-a", "-p", "-c", "0", &std::process::id().to_string()])
        .output()
        .await
        .context("cannot run taskset (util-linux); use --pin false")?;
    ensure!(output.status.success(), "taskset failed: {}", String::from_utf8_lossy(&output.stderr));
    Ok(())
}

async fn wrk(url: &str, case: &Case, args: &ForwardArgs, scripts: &Scripts) -> anyhow::Result<Run> {
    let script = if case.new_path_each_request { &scripts.new_paths } else { &scripts.report };
    let mut command = if args.pinned() {
        let mut taskset = tokio::process::Command::new("taskset");
        taskset.args(["-c", "1", "wrk"]);
        taskset
    } else {
        tokio::process::Command::new("wrk")
    };
    command
        .arg(format!("-t{}", args.wrk_threads.min(args.clients)))
        .arg(format!("-c{}", args.clients))
        .arg(format!("-d{}s", args.secs))
        .arg("-s")
        .arg(script);
    for (name, value) in case.sent_headers() {
        command.arg("-H").arg(format!("{name}: {value}"));
    }
    command.arg(url);
    if case.new_path_each_request {
        command.arg("--").arg(case.uri().unwrap_or_default());
    }
    let output = command.output().await.context("cannot run wrk")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(output.status.success(), "wrk failed: {}{}", stdout, String::from_utf8_lossy(&output.stderr));
    let line = stdout.lines().find_map(|l| l.strip_prefix("warden-bench ")).context("wrk printed no report")?;
    let n: Vec<u64> = line.split_whitespace().map(str::parse).collect::<Result<_, _>>().context("wrk's report is not numbers")?;
    let [requests, duration_us, bad_status, socket_errors, p50_us, p99_us, max_us] = n[..] else {
        bail!("wrk's report has {} numbers, not 7", n.len());
    };
    ensure!(bad_status == 0, "{bad_status} answers were not 2xx/3xx");
    ensure!(socket_errors == 0, "{socket_errors} socket errors");
    let secs = duration_us as f64 / 1e6;
    Ok(Run { requests, secs, per_sec: requests as f64 / secs.max(f64::EPSILON), p50_us, p99_us, max_us, cpu_us_per_request: 0.0 })
}

/// User and system CPU time of this process so far (Linux: `/proc/self/stat`, in clock ticks
/// of 1/100 s, which is what Linux reports to user space whatever its internal tick).
fn process_cpu() -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("cannot read /proc/self/stat")?;
    // Fields after the command name (which is in parentheses and may hold spaces): utime and
    // stime are the 12th and 13th.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).context("unexpected /proc/self/stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).context("unexpected /proc/self/stat");
    Ok(Duration::from_millis((ticks(11)? + ticks(12)?) * 10))
}

pub(crate) fn median_f(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or_default()
}

pub(crate) fn median_u(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

fn to_table(report: &ForwardReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let generator = match (report.generator, report.pinned) {
        (Generator::Wrk, true) => "wrk on CPU 1, server on CPU 0",
        (Generator::Wrk, false) => "wrk",
        (Generator::Client, _) => "in-process reqwest",
    };
    let _ = writeln!(
        out,
        "warden-bench forward: {} cores, {generator}, {} keep-alive connections, {} rounds of {} s per case, Rego on the {}",
        report.cores,
        report.clients,
        report.rounds,
        report.secs_per_run,
        match report.rego_engine {
            RegoEngine::Vm => "VM",
            RegoEngine::Interpreter => "interpreter",
        }
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<46} {:>9} {:>16} {:>7} {:>8} {:>8} {:>9} {:>10}",
        "case (medians over rounds)", "req/s", "ratio (range)", "target", "p50 µs", "p99 µs", "worst p99", "CPU µs/req"
    );
    for c in &report.cases {
        let ratio = match c.median_ratio {
            Some(m) => {
                let (lo, hi) = c.ratios.iter().fold((f64::MAX, f64::MIN), |(lo, hi), r| (lo.min(*r), hi.max(*r)));
                format!("{m:.2} ({lo:.2}–{hi:.2})")
            }
            None => "1".to_owned(),
        };
        let target = c.target_ratio.map(|t| format!("≥ {t}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<46} {:>9.0} {:>16} {:>7} {:>8} {:>8} {:>9} {:>10.1}",
            c.name, c.median_per_sec, ratio, target, c.median_p50_us, c.median_p99_us, c.worst_p99_us, c.median_cpu_us_per_request
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "target: p99 < {} µs under this load", report.target_p99_us);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_take_the_middle() {
        assert!((median_f(vec![3.0, 1.0, 2.0]) - 2.0).abs() < f64::EPSILON);
        assert_eq!(median_u(vec![9, 1, 5, 7, 3]), 5);
        assert_eq!(median_u(vec![]), 0);
    }
}
