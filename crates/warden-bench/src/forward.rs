//! The `forward` scenario: forward-auth under load, against the same server's bare "200 OK".
//!
//! One in-process `wardend` with two forward-auth setups: a simple rule (`/simple/**` needs
//! `deploy:run` in `prod`) and a Rego policy (`/rego/**`). The same keep-alive clients drive,
//! for the same time each, `GET /healthz` (the baseline), then `/auth/forward` as Traefik would
//! call it with a session cookie and with an API token, by rule and by policy. Every request's
//! latency is recorded under load, so p99 is the one a proxy would see.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use reqwest::header::{HeaderMap, HeaderValue};
use warden_client::Client;
use warden_core::api::{CreateApiToken, CreateBinding, CreateRole, CreateServiceAccount, CreateUser};
use warden_core::credential::Secret;

use crate::authz::elevated;
use crate::load::{Latencies, Throughput};
use crate::report::{Latency, Rate, Ratio, Report};
use crate::server::{Backend, BenchServer};

#[derive(Debug, clap::Args)]
pub struct ForwardArgs {
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Seconds of load per case.
    #[arg(long, default_value_t = 10)]
    secs: u64,
    #[arg(long)]
    json: Option<std::path::PathBuf>,
}

const POLICY: &str = r#"package warden.forward_auth

import rego.v1

default allow := false

allow if {
    input.request.method == "GET"
    "deploy:run" in input.subject.permissions
}

headers := {"X-Policy": "rego"} if allow
"#;

/// How to make one request of a case.
type MakeRequest = Arc<dyn Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync>;
type Case = (&'static str, MakeRequest);

/// Drives `request` from every client for `secs`; each request's time is recorded.
async fn drive(clients: &[reqwest::Client], secs: u64, request: MakeRequest) -> anyhow::Result<(Throughput, Latencies)> {
    let start = Instant::now();
    let budget = Duration::from_secs(secs);
    let mut tasks = tokio::task::JoinSet::new();
    for client in clients {
        let (client, request) = (client.clone(), request.clone());
        tasks.spawn(async move {
            let mut times = Vec::new();
            while start.elapsed() < budget {
                let t = Instant::now();
                let response = request(&client).send().await?;
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
    Ok((Throughput { done: all.len(), elapsed: start.elapsed() }, Latencies::from_unsorted(all)))
}

fn forwarded(path: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("x-forwarded-method", HeaderValue::from_static("GET"));
    h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
    h.insert("x-forwarded-host", HeaderValue::from_static("app.example.org"));
    if let Ok(v) = HeaderValue::from_str(path) {
        h.insert("x-forwarded-uri", v);
    }
    h
}

pub async fn run(args: &ForwardArgs) -> anyhow::Result<()> {
    let policy_dir = tempfile::tempdir()?;
    std::fs::write(policy_dir.path().join("bench.rego"), POLICY)?;
    let dir = policy_dir.path().to_owned();
    let rules: Vec<warden_policy::Rule> = serde_json::from_value(serde_json::json!([
        {"path": "/simple/**", "action": "permission", "permission": "deploy:run", "namespace": "prod"},
        {"path": "/rego/**", "action": "policy", "namespace": "prod"},
    ]))?;
    let server = BenchServer::start_configured(Backend::Sqlite, "", move |config| {
        config.forward_auth.policy_dir = Some(dir);
        config.forward_auth.rules = rules;
    })
    .await?;
    let (admin, idm) = (elevated(&server, "admin").await?, elevated(&server, "idm_admin").await?);
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

    let clients: Vec<reqwest::Client> = (0..args.clients).map(|_| reqwest::Client::builder().build()).collect::<Result<_, _>>()?;
    let base = server.url.clone();
    let healthz = format!("{base}/healthz");
    let forward = format!("{base}/auth/forward");
    let cookie = format!("warden_session={session}");
    let bearer = format!("Bearer {token}");
    let cases: Vec<Case> = vec![
        ("GET /healthz (bare 200 OK)", Arc::new(move |c: &reqwest::Client| c.get(&healthz))),
        ("forward-auth, rule, session cookie", {
            let (f, cookie) = (forward.clone(), cookie.clone());
            Arc::new(move |c: &reqwest::Client| c.get(&f).headers(forwarded("/simple/x")).header("cookie", &cookie))
        }),
        ("forward-auth, rule, API token", {
            let (f, bearer) = (forward.clone(), bearer.clone());
            Arc::new(move |c: &reqwest::Client| c.get(&f).headers(forwarded("/simple/x")).header("authorization", &bearer))
        }),
        ("forward-auth, Rego, session cookie", {
            let (f, cookie) = (forward.clone(), cookie.clone());
            Arc::new(move |c: &reqwest::Client| c.get(&f).headers(forwarded("/rego/x")).header("cookie", &cookie))
        }),
        ("forward-auth, Rego, API token", {
            let (f, bearer) = (forward.clone(), bearer.clone());
            Arc::new(move |c: &reqwest::Client| c.get(&f).headers(forwarded("/rego/x")).header("authorization", &bearer))
        }),
    ];
    let mut rates = Vec::new();
    let mut latencies = Vec::new();
    let mut ratios = Vec::new();
    let mut bare = 0.0;
    for (name, request) in cases {
        let (throughput, times) = drive(&clients, args.secs, request).await.with_context(|| format!("case {name:?}"))?;
        if bare == 0.0 {
            bare = throughput.per_sec();
        } else {
            ratios.push(Ratio { name, value: throughput.per_sec() / bare });
        }
        let target = if name.contains("Rego") {
            Some("≥ 0.5 of bare, p99 < 2 ms")
        } else if name.contains("rule") {
            Some("≥ 0.8 of bare, p99 < 2 ms")
        } else {
            None
        };
        rates.push(Rate::new(name, throughput, target));
        latencies.push(Latency::new(name, &times, Some("p99 < 2 ms")));
    }
    let report = Report {
        scenario: "forward",
        backend: Backend::Sqlite,
        cores: crate::report::cores(),
        clients: args.clients,
        directory_size: 4,
        rates,
        latencies,
        ratios,
    };
    print!("{}", report.to_table());
    if let Some(path) = &args.json {
        report.write_json(path)?;
    }
    server.stop().await
}
