//! The `policy` scenario: what one forward-auth decision costs in process, without HTTP.
//!
//! The `forward` scenario measures the whole request; this one takes its decision apart, so
//! that work on the decision path can be measured to the tenth of a microsecond: matching the
//! simple rules, building a policy's input document, and evaluating the policy `forward` uses
//! (on the VM, and on the interpreter for comparison), for a request with and without the
//! headers a policy may read.

use std::hint::black_box;
use std::time::Instant;

use warden_policy::rego::Policy;
use warden_policy::value::input_value;
use warden_policy::{HeaderList, RequestView, Rule, RuleSet, SubjectInfo, SubjectValue};

#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    /// Decisions per measurement.
    #[arg(long, default_value_t = 200_000)]
    iterations: u32,
}

/// The headers a browser's request carries through a proxy, credentials removed.
const HEADERS: [(&str, &str); 7] = [
    ("accept", "text/html,application/xhtml+xml"),
    ("accept-language", "en-GB,en;q=0.9"),
    ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/140.0"),
    ("x-forwarded-for", "203.0.113.7"),
    ("x-forwarded-host", "app.example.org"),
    ("x-forwarded-proto", "https"),
    ("x-forwarded-uri", "/rego/x?page=2"),
];

/// Nanoseconds per call of `f`, over `iterations` calls after a tenth as many unmeasured.
fn per_call(iterations: u32, mut f: impl FnMut()) -> f64 {
    for _ in 0..iterations / 10 {
        f();
    }
    let start = Instant::now();
    for _ in 0..iterations {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(iterations)
}

pub fn run(args: &PolicyArgs) -> anyhow::Result<()> {
    let n = args.iterations.max(1);
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("bench.rego"), crate::forward::POLICY)?;
    let vm = Policy::load(dir.path(), warden_policy::rego::DEFAULT_QUERY)?;
    let interpreted = tempfile::tempdir()?;
    std::fs::write(interpreted.path().join("bench.rego"), crate::forward::interpreter_only(crate::forward::POLICY))?;
    let interpreter = Policy::load(interpreted.path(), warden_policy::rego::DEFAULT_QUERY)?;
    anyhow::ensure!(vm.runtime() == warden_policy::rego::Runtime::Vm, "the benchmark policy does not run on the VM");
    anyhow::ensure!(interpreter.runtime() != warden_policy::rego::Runtime::Vm, "the interpreter's copy runs on the VM");

    let rules: Vec<Rule> = serde_json::from_value(serde_json::json!([
        {"path": "/static/**", "action": "allow_anonymous"},
        {"host": "admin.example.org", "action": "group", "group": "ops"},
        {"path": "/simple/**", "action": "permission", "permission": "deploy:run", "namespace": "prod"},
        {"path": "/rego/**", "action": "policy", "namespace": "prod"},
    ]))?;
    let rules = RuleSet::new(rules)?;
    let subject = SubjectValue::new(&SubjectInfo {
        id: "0192f5e4-7a4b-7c3d-9e2f-123456789abc".into(),
        name: "alice".into(),
        kind: "user".into(),
        email: Some("alice@example.org".into()),
        display_name: Some("Alice".into()),
        groups: vec!["staff".into(), "ops".into()],
        roles: vec!["deploy".into()],
        permissions: vec!["deploy:run".into()],
        auth_strength: "password".into(),
        token_kind: "session".into(),
        tenant: "default".into(),
    });
    let bare = RequestView {
        method: "GET",
        scheme: "https",
        host: "app.example.org",
        path: "/rego/x",
        query: "page=2",
        headers: HeaderList::Omitted,
        client: Some("203.0.113.7"),
    };
    let with_headers = RequestView { headers: HeaderList::Pairs(&HEADERS), ..bare };
    anyhow::ensure!(vm.decide(&bare, Some(&subject))?.allow, "the policy refuses the benchmark request");

    println!("warden-bench policy: one thread, {n} calls per line, nanoseconds per call");
    let rows = [
        (
            "match the rules (4 rules, the 4th matches)",
            per_call(n, || {
                black_box(rules.matching(black_box(&bare)));
            }),
        ),
        ("input document, no headers", per_call(n, || drop(black_box(input_value(black_box(&bare), Some(&subject)))))),
        ("input document, 7 headers", per_call(n, || drop(black_box(input_value(black_box(&with_headers), Some(&subject)))))),
        ("decision on the VM, no headers", per_call(n, || drop(black_box(vm.decide(black_box(&bare), Some(&subject)))))),
        ("decision on the VM, 7 headers", per_call(n, || drop(black_box(vm.decide(black_box(&with_headers), Some(&subject)))))),
        (
            "decision on the interpreter, no headers",
            per_call(n / 10, || drop(black_box(interpreter.decide(black_box(&bare), Some(&subject))))),
        ),
    ];
    for (what, ns) in rows {
        println!("{what:<46} {ns:>9.0}");
    }
    Ok(())
}
