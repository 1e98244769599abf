//! The `oidc` scenario: the OpenID Connect provider's hot paths, against the same server's
//! bare `/healthz`.
//!
//! - Client-credential grants/s with four clients, one load per signing algorithm (ES256,
//!   EdDSA, and RS256 beside them): each request authenticates a client by its secret, checks
//!   its service account and signs an RFC 9068 access token.
//! - Introspection/s of one access token by a resource server (a confidential client), as a
//!   ratio to `/healthz`'s rate in the same round.
//! - The authorization-code round trip, one at a time: `GET /authorize` with a live session
//!   (no password hash: the person is signed in) → the code → `POST /token`; p50 and p99.
//! - The size of the tokens of a person in 1,000 groups, for a client that asks for groups.
//!
//! Load comes from `wrk` in its own process (Debian's package), the server pinned to the first
//! CPU and wrk to the second, as in the `forward` scenario; rounds alternate the cases so that
//! a slow spell of the machine weighs on both sides of a ratio.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use base64::Engine;
use serde::Serialize;
use warden_client::Client;
use warden_core::api::{CreateGroup, CreateOidcClient, CreateServiceAccount, CreateUser};
use warden_core::credential::Secret;

use crate::authz::elevated;
use crate::load::Latencies;
use crate::server::{Backend, BenchServer};

/// The issuer's name; no request goes there (the bench talks to the server's own address).
const ISSUER: &str = "https://id.bench.invalid";
const CALLBACK: &str = "https://app.bench.invalid/cb";

#[derive(Debug, clap::Args)]
pub struct OidcArgs {
    /// Concurrent keep-alive connections of wrk.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Seconds of load per case in each round.
    #[arg(long, default_value_t = 3)]
    secs: u64,
    /// Rounds; every case runs once per round, in turn. Nine, because a single round's ratio
    /// swings by ±0.1 on a machine shared with other services, and the median of nine holds
    /// within a few hundredths from run to run.
    #[arg(long, default_value_t = 9)]
    rounds: usize,
    /// Sequential authorization-code round trips timed.
    #[arg(long, default_value_t = 300)]
    samples: usize,
    /// Groups the person of the token-size case is in.
    #[arg(long, default_value_t = 1000)]
    groups: usize,
    /// Only the load cases whose name contains this (the bare route always runs).
    #[arg(long)]
    only: Option<String>,
    /// The server on the first CPU and wrk on the second (`taskset`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pin: bool,
    #[arg(long)]
    json: Option<PathBuf>,
}

impl OidcArgs {
    /// Whether the server gets CPU 0 and wrk CPU 1 (then the runtime runs one worker).
    pub fn pinned(&self) -> bool {
        self.pin
    }
}

/// One case's load in one round.
#[derive(Debug, Clone, Copy, Serialize)]
struct Run {
    requests: u64,
    per_sec: f64,
    p50_us: u64,
    p99_us: u64,
}

/// A load case: a request wrk repeats (its Lua script says how).
struct Case {
    name: &'static str,
    path: &'static str,
    script: String,
    /// The least rate it should reach, per second, or the least share of `/healthz`'s.
    target: Target,
}

#[derive(Debug, Clone, Copy, Serialize)]
enum Target {
    None,
    PerSec(f64),
    Ratio(f64),
}

#[derive(Debug, Serialize)]
struct CaseReport {
    name: &'static str,
    runs: Vec<Run>,
    median_per_sec: f64,
    median_ratio: f64,
    median_p50_us: u64,
    median_p99_us: u64,
    target: Target,
}

#[derive(Debug, Serialize)]
struct OidcReport {
    scenario: &'static str,
    cores: usize,
    connections: usize,
    rounds: usize,
    secs_per_run: u64,
    pinned: bool,
    cases: Vec<CaseReport>,
    code_round_trip_p50_us: u64,
    code_round_trip_p99_us: u64,
    code_round_trip_samples: usize,
    groups: usize,
    access_token_bytes: usize,
    id_token_bytes: usize,
    /// The list claims left to userinfo by the size cap.
    claims_left_to_userinfo: Vec<String>,
}

/// wrk's report as one line: requests, duration (µs), bad statuses, socket errors, p50, p99.
const WRK_REPORT: &str = r#"done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("warden-bench %d %d %d %d %d %d\n", summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50), latency:percentile(99)))
end
"#;

/// A wrk script that sends `body` to the bare route with `GET` (which reads and ignores it):
/// what an introspection's request costs the HTTP stack alone.
fn bare_with_body(body: &str, authorization: &str) -> String {
    format!(
        "{WRK_REPORT}\nrequest = function()\n  wrk.headers[\"Authorization\"] = {authorization:?}\n  wrk.headers[\"Content-Type\"] = \"application/x-www-form-urlencoded\"\n  return wrk.format(\"GET\", nil, nil, {body:?})\nend\n"
    )
}

/// A wrk script that posts `body` with one of `authorizations` in turn (four clients).
fn post_script(body: &str, authorizations: &[String]) -> String {
    let list: Vec<String> = authorizations.iter().map(|a| format!("{a:?}")).collect();
    format!(
        "{WRK_REPORT}\nlocal auths, n = {{ {} }}, 0\nrequest = function()\n  n = n + 1\n  wrk.headers[\"Authorization\"] = auths[(n % #auths) + 1]\n  wrk.headers[\"Content-Type\"] = \"application/x-www-form-urlencoded\"\n  return wrk.format(\"POST\", nil, nil, {body:?})\nend\n",
        list.join(", ")
    )
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
}

pub async fn run(args: &OidcArgs) -> anyhow::Result<()> {
    ensure!(args.rounds > 0 && args.secs > 0 && args.clients > 0 && args.samples > 0, "counts must be positive");
    let cores = crate::report::cores();
    crate::forward::ensure_wrk().await?;
    if args.pin {
        crate::forward::pin_this_process().await?;
    }
    let server = BenchServer::start_configured(Backend::Sqlite, "", |config| {
        config.server.public_url = Some(ISSUER.into());
    })
    .await?;
    let result = measure(&server, args, cores).await;
    let stopped = server.stop().await;
    let report = result?;
    stopped?;
    print!("{}", to_table(&report));
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n").with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

async fn measure(server: &BenchServer, args: &OidcArgs, cores: usize) -> anyhow::Result<OidcReport> {
    let (admin, idm) = (elevated(server, "admin").await?, elevated(server, "idm_admin").await?);
    idm.create_service_account(&CreateServiceAccount { name: "machine".into(), ..CreateServiceAccount::default() }).await?;
    let mut secrets: Vec<(String, String)> = Vec::new();
    for (prefix, alg) in [("es", "ES256"), ("ed", "EdDSA"), ("rs", "RS256")] {
        for i in 0..4 {
            let id = format!("cc-{prefix}-{i}");
            let created = admin
                .create_oidc_client(&CreateOidcClient {
                    client_id: id.clone(),
                    redirect_uris: vec![CALLBACK.into()],
                    signing_alg: Some(alg.into()),
                    service_account: Some("machine".into()),
                    first_party: true,
                    claims: vec!["groups".into()],
                    ..CreateOidcClient::default()
                })
                .await?;
            secrets.push((id, created.client_secret.context("a confidential client has a secret")?.expose().to_owned()));
        }
    }
    let auths =
        |prefix: &str| -> Vec<String> { secrets.iter().filter(|(id, _)| id.starts_with(prefix)).map(|(id, s)| basic(id, s)).collect() };
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let (rs_id, rs_secret) = secrets.iter().find(|(id, _)| id == "cc-es-0").cloned().context("a client")?;
    let token: serde_json::Value = http
        .post(format!("{}/oidc/token", server.url))
        .header("authorization", basic(&rs_id, &rs_secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await?
        .json()
        .await?;
    let access = token["access_token"].as_str().context("client credentials gave no access token")?.to_owned();
    let cases = [
        Case { name: "GET /healthz (bare)", path: "/healthz", script: WRK_REPORT.to_owned(), target: Target::None },
        Case {
            name: "  /healthz with introspection's request",
            path: "/healthz",
            script: bare_with_body(&format!("token={access}"), &auths("cc-rs-")[0]),
            target: Target::None,
        },
        Case {
            name: "introspection of an access token",
            path: "/oidc/introspect",
            script: post_script(&format!("token={access}"), &auths("cc-rs-")),
            target: Target::Ratio(0.8),
        },
        Case {
            name: "client credentials, ES256",
            path: "/oidc/token",
            script: post_script("grant_type=client_credentials", &auths("cc-es-")),
            target: Target::PerSec(3000.0),
        },
        Case {
            name: "client credentials, EdDSA",
            path: "/oidc/token",
            script: post_script("grant_type=client_credentials", &auths("cc-ed-")),
            target: Target::PerSec(3000.0),
        },
        Case {
            name: "client credentials, RS256",
            path: "/oidc/token",
            script: post_script("grant_type=client_credentials", &auths("cc-rs-")),
            target: Target::None,
        },
    ];
    let cases: Vec<Case> = cases
        .into_iter()
        .enumerate()
        .filter(|(i, c)| *i == 0 || args.only.as_deref().is_none_or(|o| c.name.contains(o)))
        .map(|(_, c)| c)
        .collect();
    let dir = tempfile::tempdir()?;
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); cases.len()];
    for round in 0..args.rounds {
        eprintln!("  round {} of {}", round + 1, args.rounds);
        for (i, case) in cases.iter().enumerate() {
            let script = dir.path().join(format!("case{i}.lua"));
            std::fs::write(&script, &case.script)?;
            let run = wrk(&format!("{}{}", server.url, case.path), &script, args).await.with_context(|| case.name)?;
            runs[i].push(run);
        }
    }
    let bare: Vec<f64> = runs[0].iter().map(|r| r.per_sec).collect();
    let reports = cases
        .iter()
        .zip(runs)
        .map(|(case, runs)| {
            let ratios: Vec<f64> = runs.iter().zip(&bare).map(|(r, b)| r.per_sec / b.max(f64::EPSILON)).collect();
            CaseReport {
                name: case.name,
                median_per_sec: crate::forward::median_f(runs.iter().map(|r| r.per_sec).collect()),
                median_ratio: crate::forward::median_f(ratios),
                median_p50_us: crate::forward::median_u(runs.iter().map(|r| r.p50_us).collect()),
                median_p99_us: crate::forward::median_u(runs.iter().map(|r| r.p99_us).collect()),
                runs,
                target: case.target,
            }
        })
        .collect();

    // The code round trip, with a signed-in person.
    idm.create_user(&CreateUser { name: "alice".into(), password: Some(Secret::new("correct horse battery")), ..CreateUser::default() })
        .await?;
    let session = Client::new(&server.url)?.login("alice", "correct horse battery").await?.token.expose().to_owned();
    let cookie = format!("{}={session}", server.running.context.config.forward_auth.cookie_name);
    let (id, secret) = secrets.iter().find(|(id, _)| id == "cc-es-1").cloned().context("a client")?;
    let round_trip = || {
        let (http, url, cookie, id, secret) = (http.clone(), server.url.clone(), cookie.clone(), id.clone(), secret.clone());
        async move { code_flow(&http, &url, &cookie, &id, &secret).await }
    };
    round_trip().await?;
    let mut times = Vec::with_capacity(args.samples);
    for _ in 0..args.samples {
        let started = Instant::now();
        round_trip().await?;
        times.push(started.elapsed());
    }
    let latencies = Latencies::from_unsorted(times);

    // A person in many groups, and what that does to the tokens.
    eprintln!("  putting alice in {} groups", args.groups);
    for g in 0..args.groups {
        let name = format!("team-{g:04}-with-a-realistic-name");
        idm.create_group(&CreateGroup { name: name.clone(), ..CreateGroup::default() }).await?;
        idm.add_members(&name, &["user:alice".to_owned()]).await?;
    }
    let tokens = code_flow(&http, &server.url, &cookie, &id, &secret).await?;
    let access_token = tokens["access_token"].as_str().context("no access token")?;
    let id_token = tokens["id_token"].as_str().context("no ID token")?;
    let body = id_token.split('.').nth(1).context("not a JWT")?;
    let claims: serde_json::Value = serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body)?)?;
    let left: Vec<String> = claims["_claim_names"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();

    Ok(OidcReport {
        scenario: "oidc",
        cores,
        connections: args.clients,
        rounds: args.rounds,
        secs_per_run: args.secs,
        pinned: args.pin,
        cases: reports,
        code_round_trip_p50_us: micros(latencies.percentile(0.5)),
        code_round_trip_p99_us: micros(latencies.percentile(0.99)),
        code_round_trip_samples: latencies.len(),
        groups: args.groups,
        access_token_bytes: access_token.len(),
        id_token_bytes: id_token.len(),
        claims_left_to_userinfo: left,
    })
}

/// `GET /authorize` with the session cookie, then `POST /token` with the code: the tokens.
async fn code_flow(http: &reqwest::Client, url: &str, cookie: &str, client: &str, secret: &str) -> anyhow::Result<serde_json::Value> {
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", client),
        ("redirect_uri", CALLBACK),
        ("scope", "openid profile"),
        ("state", "s"),
        ("nonce", "n"),
    ])?;
    let response = http.get(format!("{url}/oidc/authorize?{query}")).header("cookie", cookie).send().await?;
    ensure!(response.status() == reqwest::StatusCode::FOUND, "authorize answered {}", response.status());
    let location = response.headers().get("location").and_then(|v| v.to_str().ok()).context("no Location")?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(location.split_once('?').map_or("", |(_, q)| q))?;
    let code = pairs.into_iter().find(|(k, _)| k == "code").map(|(_, v)| v).context("no code")?;
    let form = serde_urlencoded::to_string([("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", CALLBACK)])?;
    let response = http
        .post(format!("{url}/oidc/token"))
        .header("authorization", basic(client, secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await?;
    ensure!(response.status().is_success(), "token answered {}", response.status());
    Ok(response.json().await?)
}

async fn wrk(url: &str, script: &std::path::Path, args: &OidcArgs) -> anyhow::Result<Run> {
    let mut command = if args.pin {
        let mut taskset = tokio::process::Command::new("taskset");
        taskset.args(["-c", "1", "wrk"]);
        taskset
    } else {
        tokio::process::Command::new("wrk")
    };
    command.arg("-t1").arg(format!("-c{}", args.clients)).arg(format!("-d{}s", args.secs)).arg("-s").arg(script).arg(url);
    let output = command.output().await.context("cannot run wrk")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(output.status.success(), "wrk failed: {}{}", stdout, String::from_utf8_lossy(&output.stderr));
    let line = stdout.lines().find_map(|l| l.strip_prefix("warden-bench ")).context("wrk printed no report")?;
    let n: Vec<u64> = line.split_whitespace().map(str::parse).collect::<Result<_, _>>().context("wrk's report is not numbers")?;
    let [requests, duration_us, bad_status, socket_errors, p50_us, p99_us] = n[..] else {
        bail!("wrk's report has {} numbers, not 6", n.len());
    };
    ensure!(bad_status == 0, "{bad_status} answers were not 2xx/3xx");
    ensure!(socket_errors == 0, "{socket_errors} socket errors");
    let secs = duration_us as f64 / 1e6;
    Ok(Run { requests, per_sec: requests as f64 / secs.max(f64::EPSILON), p50_us, p99_us })
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn to_table(r: &OidcReport) -> String {
    let mut out = format!(
        "oidc: {} cores, {} connections, {} rounds of {} s per case{}\n\n",
        r.cores,
        r.connections,
        r.rounds,
        r.secs_per_run,
        if r.pinned { ", server on CPU 0 and wrk on CPU 1" } else { "" }
    );
    let _ = writeln!(out, "{:<36} {:>10} {:>8} {:>9} {:>9}  target", "case", "req/s", "÷bare", "p50 µs", "p99 µs");
    for c in &r.cases {
        let target = match c.target {
            Target::None => String::new(),
            Target::PerSec(t) => format!("≥ {t:.0}/s {}", if c.median_per_sec >= t { "met" } else { "MISSED" }),
            Target::Ratio(t) => format!("≥ {t:.2}× bare {}", if c.median_ratio >= t { "met" } else { "MISSED" }),
        };
        let _ = writeln!(
            out,
            "{:<36} {:>10.0} {:>8.2} {:>9} {:>9}  {target}",
            c.name, c.median_per_sec, c.median_ratio, c.median_p50_us, c.median_p99_us
        );
    }
    let _ = write!(
        out,
        "\nauthorization-code round trip (live session, sequential, {} samples): p50 {:.2} ms, p99 {:.2} ms  target p50 ≤ 2 ms {}\n",
        r.code_round_trip_samples,
        r.code_round_trip_p50_us as f64 / 1000.0,
        r.code_round_trip_p99_us as f64 / 1000.0,
        if r.code_round_trip_p50_us <= 2000 { "met" } else { "MISSED" }
    );
    let _ = writeln!(
        out,
        "tokens of a person in {} groups: access token {} bytes, ID token {} bytes; left to userinfo: {}",
        r.groups,
        r.access_token_bytes,
        r.id_token_bytes,
        if r.claims_left_to_userinfo.is_empty() { "nothing".to_owned() } else { r.claims_left_to_userinfo.join(", ") }
    );
    out
}
