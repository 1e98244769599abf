//! `warden policy …`: tries a forward-auth Rego policy offline, on a request written by hand.
//!
//! No server is involved: the policy is loaded and judged by `warden-policy`, the same code
//! `wardend` runs, so what `test` says is what the server decides for that input. Like
//! `warden check`, the verdict is in the exit code too (0 allow, 3 deny), so a policy's tests
//! can be a shell script.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::Value;
use warden_policy::rego::{DEFAULT_QUERY, Explanation, Policy, Runtime};
use warden_policy::{Decision, PolicyError, PolicyInput, RequestInfo, one_line};

use crate::CliError;
use crate::check::DENIED;
use crate::output::{self, Format};

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Evaluate a policy on one input and print the decision (exit status 3 on deny).
    Test(PolicyArgs),
    /// Like `test`, then print the query's result and the policy lines the evaluation covered.
    Explain(PolicyArgs),
}

#[derive(Debug, Args)]
#[command(after_help = "Exit status: 0 if the policy allows, 3 if it denies, 1 on errors (the policy does not compile, the input \
                        is malformed), 2 on usage errors.")]
pub struct PolicyArgs {
    /// The policy directory: every *.rego file in it is loaded, as the server does.
    #[arg(long, value_name = "DIR")]
    pub policy: PathBuf,
    /// The input: a JSON document {"request": {…}, "subject": {…}} (subject optional); `-` reads stdin.
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// The query whose result decides: a boolean, or an object {allow, status, headers, body}.
    #[arg(long, value_name = "QUERY", default_value = DEFAULT_QUERY)]
    pub query: String,
}

/// Runs a `warden policy` command and returns the exit code its verdict calls for.
pub fn run(format: Format, command: PolicyCommand) -> Result<ExitCode, CliError> {
    match command {
        PolicyCommand::Test(args) => {
            let (policy, input) = args.load()?;
            let decision = policy.evaluate(&input).map_err(|e| CliError::Local(one_line(&e.to_string())))?;
            output::lines_as(format, &decision, decision_lines(&decision))?;
            Ok(exit_code(&decision))
        }
        PolicyCommand::Explain(args) => {
            let (policy, input) = args.load()?;
            let explanation = policy.explain(&input).map_err(|e| CliError::Local(one_line(&e.to_string())))?;
            output::lines_as(format, &explanation, explanation_lines(&explanation))?;
            Ok(exit_code(&explanation.decision))
        }
    }
}

impl PolicyArgs {
    /// Compiles the policy and reads the input; either failing is an error (exit 1).
    fn load(&self) -> Result<(Policy, PolicyInput), CliError> {
        let policy = Policy::load(&self.policy, &self.query).map_err(load_error)?;
        if let Runtime::Interpreter { reason } = policy.runtime() {
            output::note(&format!("note: the server runs this policy on the slower Rego interpreter: {reason}"));
        }
        let input = read_input(&self.input)?;
        for difference in unlike_the_server(&input.request) {
            output::note(&format!("warning: {}: {difference}", input_name(&self.input)));
        }
        Ok((policy, input))
    }
}

/// Whatever fails while loading is the policy's fault, including what regorus only finds on
/// the trial evaluation `load` makes (an unsafe variable, an unknown function, conflicting rules).
fn load_error(err: PolicyError) -> CliError {
    let detail = match err {
        PolicyError::Load(detail) | PolicyError::Eval(detail) => detail,
        other => other.to_string(),
    };
    CliError::Local(format!("cannot load policy: {}", one_line(&detail)))
}

/// How messages name the input: its path, or `stdin` for `-`.
fn input_name(path: &Path) -> String {
    if path == Path::new("-") { "stdin".to_owned() } else { path.display().to_string() }
}

/// 0 on allow, [`DENIED`] on deny.
fn exit_code(decision: &Decision) -> ExitCode {
    if decision.allow { ExitCode::SUCCESS } else { ExitCode::from(DENIED) }
}

/// Reads the input document from `path` (stdin for `-`); errors name the file and the problem.
fn read_input(path: &Path) -> Result<PolicyInput, CliError> {
    let text = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map(|_| text)
    } else {
        std::fs::read_to_string(path)
    };
    let text = text.map_err(|e| CliError::Local(format!("cannot read input {}: {e}", input_name(path))))?;
    parse_input(&text).map_err(|problem| CliError::Local(format!("{}: {problem}", input_name(path))))
}

/// A policy input from JSON. The input is read strictly: a field it does not have is refused
/// rather than dropped, so a typo (`subjet`) cannot silently turn into an anonymous request.
fn parse_input(text: &str) -> Result<PolicyInput, String> {
    let given: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let input: PolicyInput = serde_json::from_str(text).map_err(|e| format!("not a policy input: {e}"))?;
    let understood = serde_json::to_value(&input).map_err(|e| e.to_string())?;
    match misfit(&given, &understood, "") {
        Some(problem) => Err(format!("not a policy input: {problem}")),
        None => Ok(input),
    }
}

/// Where `given` differs in shape from `understood` (the same document read and written back):
/// a field the input does not have, or an object written as an array (which serde accepts).
/// A `null` may be missing: it stands for an absent optional field.
fn misfit(given: &Value, understood: &Value, at: &str) -> Option<String> {
    match (given, understood) {
        (Value::Object(given), Value::Object(understood)) => given.iter().find_map(|(key, value)| {
            let path = if at.is_empty() { key.clone() } else { format!("{at}.{key}") };
            match understood.get(key) {
                None if value.is_null() => None,
                None => Some(format!("unknown field `{path}`")),
                Some(inner) => misfit(value, inner, &path),
            }
        }),
        (Value::Array(_), Value::Object(_)) if at.is_empty() => Some("expected an object {\"request\": …, \"subject\": …}".to_owned()),
        (Value::Array(_), Value::Object(_)) => Some(format!("`{at}` must be an object")),
        _ => None,
    }
}

/// What in a hand-written request the server would never send a policy: it upper-cases the
/// method, lower-cases the scheme, the host (without port) and header names, and removes
/// credential headers. The policy still sees the input as written; these are warnings.
fn unlike_the_server(request: &RequestInfo) -> Vec<String> {
    let mut differences = Vec::new();
    if request.method != request.method.to_ascii_uppercase() {
        differences.push(format!("the server sends the method in upper case, not {:?}", request.method));
    }
    if request.scheme != request.scheme.to_ascii_lowercase() {
        differences.push(format!("the server sends the scheme in lower case, not {:?}", request.scheme));
    }
    if request.host != request.host.to_ascii_lowercase() || request.host.contains(':') || request.host.ends_with('.') {
        differences.push(format!("the server sends the host in lower case, without a port or trailing dot, not {:?}", request.host));
    }
    match warden_policy::canonical::canonical_path(&request.path) {
        Ok(canonical) if canonical != request.path => {
            differences.push(format!("the server sends the canonical path {canonical:?}, not {:?}", request.path));
        }
        Ok(_) => {}
        Err(e) => differences.push(format!("the server answers 400 to the path {:?} ({e})", request.path)),
    }
    for name in request.headers.keys() {
        if name != &name.to_ascii_lowercase() {
            differences.push(format!("the server sends header names in lower case, not {name:?}"));
        } else if matches!(name.as_str(), "authorization" | "cookie" | "proxy-authorization") {
            differences.push(format!("the server never passes the {name} header to a policy"));
        }
    }
    differences
}

/// `allow` or `deny`, then `status: …`, `header: NAME: VALUE` and `body: "…"` when the
/// decision carries them.
fn decision_lines(decision: &Decision) -> Vec<String> {
    let mut lines = vec![if decision.allow { "allow" } else { "deny" }.to_owned()];
    lines.extend(decision.status.map(|status| format!("status: {status}")));
    lines.extend(decision.headers.iter().map(|(name, value)| format!("header: {name}: {value}")));
    lines.extend(decision.body.as_ref().map(|body| format!("body: {}", Value::from(body.as_str()))));
    lines
}

/// The decision, then the query's result as pretty JSON and the covered policy lines.
fn explanation_lines(explanation: &Explanation) -> Vec<String> {
    let mut lines = decision_lines(&explanation.decision);
    lines.push(format!("engine: {}", explanation.runtime));
    lines.push("result:".to_owned());
    let result = serde_json::to_string_pretty(&explanation.result).unwrap_or_else(|_| explanation.result.to_string());
    lines.extend(result.lines().map(|line| format!("  {line}")));
    if explanation.covered.is_empty() {
        lines.push("covered: none".to_owned());
    } else {
        lines.push("covered:".to_owned());
        lines.extend(explanation.covered.iter().map(|line| format!("  {line}")));
    }
    lines
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    #[test]
    fn inputs_parse_with_or_without_a_subject() {
        let anonymous =
            parse_input(r#"{"request": {"method": "GET", "scheme": "https", "host": "app.example.org", "path": "/"}}"#).unwrap();
        assert_eq!((anonymous.request.path.as_str(), anonymous.subject), ("/", None));
        let text = json!({
            "request": {"method": "GET", "scheme": "https", "host": "app.example.org", "path": "/x", "headers": {"x-team": "ops"}},
            "subject": {"id": "1", "name": "alice", "kind": "user", "email": null, "groups": ["ops"], "auth_strength": "password",
                        "token_kind": "session", "tenant": "default"},
        });
        let input = parse_input(&text.to_string()).unwrap();
        let subject = input.subject.unwrap();
        assert_eq!((subject.name.as_str(), subject.groups.as_slice(), subject.email), ("alice", &["ops".to_owned()][..], None));
        assert_eq!(input.request.headers.get("x-team").map(String::as_str), Some("ops"));
    }

    #[test]
    fn malformed_inputs_say_what_is_wrong() {
        for (text, problem) in [
            ("{", "EOF while parsing"),
            ("[]", "invalid length 0"),
            ("7", "invalid type: integer"),
            (r#"[{"method": "GET", "scheme": "https", "host": "h", "path": "/"}]"#, "expected an object"),
            (r#"{"request": ["GET", "https", "h", "/", "", {}, null]}"#, "`request` must be an object"),
            (r#"{"request": {"method": "GET"}}"#, "missing field `scheme`"),
            (r#"{"request": {"method": "GET", "scheme": "https", "host": "h", "path": "/"}, "subjet": {}}"#, "unknown field `subjet`"),
            (
                r#"{"request": {"method": "GET", "scheme": "https", "host": "h", "path": "/", "hedaers": {}}}"#,
                "unknown field `request.hedaers`",
            ),
            (
                r#"{"request": {"method": "GET", "scheme": "https", "host": "h", "path": "/", "headers": {"a": 1}}}"#,
                "invalid type: integer",
            ),
        ] {
            let err = parse_input(text).unwrap_err();
            assert!(err.contains(problem), "{text}: {err}");
            assert!(err.starts_with(if text == "{" { "not JSON: " } else { "not a policy input: " }), "{err}");
        }
    }

    #[test]
    fn requests_the_server_would_never_send_are_flagged() {
        let request = |method: &str, host: &str, header: &str| RequestInfo {
            method: method.into(),
            scheme: "https".into(),
            host: host.into(),
            path: "/".into(),
            headers: BTreeMap::from([(header.to_owned(), "x".to_owned())]),
            ..RequestInfo::default()
        };
        assert!(unlike_the_server(&request("GET", "app.example.org", "x-team")).is_empty());
        let differences = unlike_the_server(&request("get", "App.example.org:443", "X-Team"));
        assert_eq!(differences.len(), 3, "{differences:?}");
        let differences = unlike_the_server(&request("GET", "app.example.org", "authorization"));
        assert_eq!(differences, ["the server never passes the authorization header to a policy"]);
        let with_path = |path: &str| RequestInfo { path: path.into(), ..request("GET", "app.example.org", "x-team") };
        assert_eq!(
            unlike_the_server(&with_path("/static/../admin")),
            [r#"the server sends the canonical path "/admin", not "/static/../admin""#]
        );
        let differences = unlike_the_server(&with_path("/admin%2Fusers"));
        assert!(differences.len() == 1 && differences[0].starts_with("the server answers 400"), "{differences:?}");
    }

    #[test]
    fn compiler_excerpts_become_one_line() {
        let excerpt = "cannot load policy: --> p/policy.rego:3:12\n  |\n3 | allow if { x == 1 }\n  |            ^\nerror: use of undefined variable `x` is unsafe";
        assert_eq!(one_line(excerpt), "cannot load policy: p/policy.rego:3:12: use of undefined variable `x` is unsafe");
        assert_eq!(one_line("cannot load policy: no .rego files in p"), "cannot load policy: no .rego files in p");
        let err = load_error(PolicyError::Eval(
            "--> p/a.rego:4:1\n  |\n4 | status := 403\n  | ^\nerror: rule conflicts with rule at p/a.rego:3:1".into(),
        ));
        assert_eq!(err.to_string(), "cannot load policy: p/a.rego:4:1: rule conflicts with rule at p/a.rego:3:1");
    }

    #[test]
    fn decisions_read_as_lines() {
        assert_eq!(decision_lines(&Decision { allow: true, ..Decision::default() }), ["allow"]);
        let denied = Decision {
            allow: false,
            status: Some(403),
            headers: BTreeMap::from([("X-Reason".to_owned(), "not in ops".to_owned())]),
            body: Some("no \"ops\"\nsorry".to_owned()),
        };
        assert_eq!(decision_lines(&denied), ["deny", "status: 403", "header: X-Reason: not in ops", r#"body: "no \"ops\"\nsorry""#]);
        assert_eq!(exit_code(&denied), ExitCode::from(3));
        assert_eq!(exit_code(&Decision { allow: true, ..Decision::default() }), ExitCode::SUCCESS);
    }

    #[test]
    fn explanations_show_the_result_and_the_covered_lines() {
        let explanation = Explanation {
            decision: Decision { allow: true, ..Decision::default() },
            result: json!({"allow": true}),
            covered: vec!["p/policy.rego:5: allow if input.request.path == \"/public\"".to_owned()],
            runtime: Runtime::Vm,
        };
        assert_eq!(
            explanation_lines(&explanation),
            [
                "allow",
                "engine: vm",
                "result:",
                "  {",
                "    \"allow\": true",
                "  }",
                "covered:",
                "  p/policy.rego:5: allow if input.request.path == \"/public\""
            ]
        );
        let nothing = Explanation {
            decision: Decision::default(),
            result: Value::Null,
            covered: vec![],
            runtime: Runtime::Interpreter { reason: "t.rego:3:9: partial object rules with constant keys are not yet supported".into() },
        };
        assert_eq!(
            explanation_lines(&nothing),
            [
                "deny",
                "engine: interpreter (t.rego:3:9: partial object rules with constant keys are not yet supported)",
                "result:",
                "  null",
                "covered: none"
            ]
        );
    }
}
