//! `warden-bench`: Warden's benchmark harness.
//!
//! It starts a real `wardend` in this process (release build, real clock, default argon2
//! parameters, a fresh database), seeds it through the public API the way an operator's
//! scripts would, and prints figures *and ratios measured in the same run*: the machines we
//! measure on are small and shared, so an absolute number means little on its own, while a
//! ratio to a baseline taken a moment earlier on the same machine does (see `docs/benchmarks.md`
//! and the targets there).
//!
//! It is not a test: it asserts nothing about timing. It fails only when the server answers
//! wrongly (a request refused, a count that does not add up).

mod authz;
mod directory;
mod forward;
mod import;
mod load;
mod login;
mod oidc;
mod pages;
mod policy;
mod report;
mod server;

use clap::{Parser, Subcommand};

/// The allocator `wardend` runs with, so that the in-process server is measured as deployed.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "warden-bench", version, about = "Benchmarks of a real, in-process wardend")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Directory writes through the API (users, groups, memberships) and read latencies.
    Directory(directory::DirectoryArgs),
    /// Authorization decisions: in-process check latency at two directory sizes, and the
    /// HTTP check API's throughput against the same server's bare "200 OK".
    Authz(authz::AuthzArgs),
    /// Forward-auth requests/s and latency under load (cookie and API token, rule and Rego)
    /// against the same server's bare "200 OK".
    Forward(forward::ForwardArgs),
    /// Bulk import (users with a profile, each in a group) through `POST /api/v1/import`,
    /// beside the disk's durable commit rate.
    Import(import::ImportArgs),
    /// The web console's heaviest pages (users list, a group with many members) at a million
    /// users: p50/p99 per page beside the same server's `/healthz`.
    Pages(pages::PagesArgs),
    /// The OpenID Connect provider: client-credential grants/s per signing algorithm,
    /// introspection against `/healthz`, the code round trip, and token size at 1,000 groups.
    Oidc(oidc::OidcArgs),
    /// Password logins/s through the API against the raw argon2id rate at the same parameters.
    Login(login::LoginArgs),
    /// One forward-auth decision in process, in parts: rule matching, a policy's input
    /// document, and the policy on the Rego VM and the interpreter.
    Policy(policy::PolicyArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; figures are meaningless (use `cargo run --release -p warden-bench`)");
    }
    if let Scenario::Policy(args) = &cli.scenario {
        return policy::run(args);
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    // A server pinned to one CPU runs one worker: two would take turns on it in time slices
    // of milliseconds, which is what a p99 would then measure.
    let pinned = match &cli.scenario {
        Scenario::Forward(args) => args.pinned(),
        Scenario::Oidc(args) => args.pinned(),
        _ => false,
    };
    if pinned {
        runtime.worker_threads(1);
    }
    runtime.enable_all().build()?.block_on(async {
        match cli.scenario {
            Scenario::Directory(args) => directory::run(&args).await,
            Scenario::Authz(args) => authz::run(&args).await,
            Scenario::Forward(args) => forward::run(&args).await,
            Scenario::Login(args) => login::run(&args).await,
            Scenario::Import(args) => import::run(&args).await,
            Scenario::Pages(args) => pages::run(&args).await,
            Scenario::Oidc(args) => oidc::run(&args).await,
            Scenario::Policy(_) => unreachable!("runs without a runtime"),
        }
    })
}
