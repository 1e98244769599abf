//! The `pages` scenario: how long the web console's heaviest pages take at scale. A directory
//! of `--users` users (default a million) is imported, each in one of `users / --members`
//! groups (so each group has about `--members` members, default 10,000); then, with an
//! administrator's session cookie as a browser sends it, each page is fetched one request at a
//! time and timed whole (request, rendering, reply over loopback):
//!
//! - the users list: its first page, a page deep in the list (a cursor in the middle of the
//!   names), and a name-prefix search;
//! - a group's page with its direct members (first page), and with its effective members;
//! - beside them, the same server's `/healthz`, the floor of a request on this machine.
//!
//! The figures are p50/p99 per page (the target: under 100 ms per page at a million users),
//! and each page's p50 over `/healthz`'s.

use std::path::PathBuf;

use anyhow::{Context as _, ensure};
use reqwest::header::COOKIE;

use crate::load::{Latencies, sample};
use crate::report::{Latency, Ratio, Report};
use crate::server::{Backend, BenchServer};

#[derive(Debug, clap::Args)]
pub struct PagesArgs {
    /// Users in the directory.
    #[arg(long, default_value_t = 1_000_000)]
    users: usize,
    /// Members of each group (users / members groups).
    #[arg(long, default_value_t = 10_000)]
    members: usize,
    /// Timed requests per page.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    backend: Backend,
    /// PostgreSQL server to use; the bench creates and drops its own database on it.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pg_url: String,
    /// Also write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub async fn run(args: &PagesArgs) -> anyhow::Result<()> {
    ensure!(args.users >= args.members && args.members >= 1, "--members must be between 1 and --users");
    let server = BenchServer::start_configured(args.backend, &args.pg_url, |config| {
        config.authz.elevation_window = "24h".into();
        // The importer is a superuser; a second factor is beside the point of this run.
        config.auth.mfa_required_for_admin_roles = false;
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
    }
    Ok(())
}

/// One page as the bench fetches it.
struct Page {
    name: &'static str,
    path: String,
    /// Text the page must hold (the reply is checked, not only its status).
    expect: &'static str,
}

async fn scenario(server: &BenchServer, args: &PagesArgs) -> anyhow::Result<Report> {
    let groups = (args.users / args.members).max(1);
    let importer = crate::import::importer(server).await?;
    eprintln!("importing {} users into {groups} groups …", args.users);
    let started = std::time::Instant::now();
    let summary = importer.import(crate::import::file(args.users, groups, 1), false).await?;
    eprintln!("imported {} records in {:.0} s", summary.created, started.elapsed().as_secs_f64());

    // The importer's session, as its browser would hold it.
    let login = warden_client::Client::new(&server.url)?.login("bench-importer", crate::import::IMPORTER_PASSWORD).await?;
    let cookie = format!("{}={}", server.running.context.config.forward_auth.cookie_name, login.token.expose());
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;

    let pages = [
        Page { name: "users list, first page", path: "/admin/users".into(), expect: "Next page" },
        Page { name: "users list, a page in the middle", path: "/admin/users?cursor=u8".into(), expect: "Next page" },
        Page { name: "users list, name-prefix search", path: "/admin/users?prefix=u7".into(), expect: "/admin/users/u7" },
        Page { name: "group with ~members: direct members", path: "/admin/groups/grp-000000".into(), expect: "Next page" },
        Page { name: "group with ~members: effective members", path: "/admin/groups/grp-000000?effective=1".into(), expect: "Next page" },
    ];
    let health = sample(args.samples, |_| {
        let request = http.get(format!("{}/healthz", server.url));
        async move {
            ensure!(request.send().await?.status().is_success(), "/healthz failed");
            Ok(())
        }
    })
    .await?;
    let mut latencies = vec![Latency::new("GET /healthz (floor)", &health, None)];
    let mut ratios = Vec::new();
    for page in &pages {
        let timed: Latencies = sample(args.samples, |_| {
            let request = http.get(format!("{}{}", server.url, page.path)).header(COOKIE, &cookie);
            async move {
                let reply = request.send().await?;
                let status = reply.status();
                let body = reply.text().await?;
                ensure!(status.is_success(), "{} answered {status}", page.path);
                ensure!(body.contains(page.expect), "{} lacks {:?}", page.path, page.expect);
                Ok(())
            }
        })
        .await
        .with_context(|| page.name)?;
        latencies.push(Latency::new(page.name, &timed, Some("< 100 ms")));
        ratios.push(Ratio { name: page.name, value: timed.percentile(0.5).as_secs_f64() / health.percentile(0.5).as_secs_f64().max(1e-9) });
    }
    Ok(Report {
        scenario: "pages",
        backend: args.backend,
        cores: crate::report::cores(),
        clients: 1,
        directory_size: args.users + 3,
        rates: vec![],
        latencies,
        ratios,
    })
}
