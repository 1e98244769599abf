//! The `warden` binary's contract where no server is needed: exit codes, one-line errors (text, and
//! JSON under `--output json`), and an expired stored session named with its login.

use std::process::{Command, Output};

/// Runs `warden` with a private, empty config directory and no credentials from the caller.
fn warden(args: &[&str]) -> (Output, tempfile::TempDir) {
    let config = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let output = Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .env("WARDEN_CONFIG_DIR", config.path())
        .env_remove("WARDEN_TOKEN")
        .env_remove("WARDEN_SERVER")
        .output()
        .unwrap_or_else(|e| panic!("run warden: {e}"));
    (output, config)
}

fn one_error_line(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(stderr.starts_with("error: "), "{stderr:?}");
    assert!(output.stdout.is_empty(), "{:?}", String::from_utf8_lossy(&output.stdout));
    stderr
}

#[test]
fn bad_member_reference_is_a_one_line_usage_error() {
    let (output, _config) = warden(&["group", "add-member", "staff", "user:alice", "robot:x"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(one_error_line(&output).contains("robot:x"));
}

#[test]
fn clap_usage_errors_are_one_line_too() {
    for args in [&["user", "rename", "alice"][..], &["user", "lst"], &["audit", "list", "--since", "yesterday"]] {
        let (output, _config) = warden(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        one_error_line(&output);
    }
}

#[test]
fn unreachable_server_is_named_and_exits_1() {
    // Port 1 on loopback refuses at once; nothing listens there.
    let (output, _config) = warden(&["--server", "http://127.0.0.1:1", "user", "list"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(one_error_line(&output).contains("http://127.0.0.1:1"));
}

#[test]
fn completions_need_no_server() {
    let (output, _config) = warden(&["completions", "bash"]);
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("warden"));
}

/// A policy, and the inputs to try it on, in a private directory.
const POLICY: &str = r#"package warden.forward_auth

import rego.v1

default allow := false

allow if input.request.path == "/public"

allow if {
    "ops" in input.subject.groups
    input.request.method == "GET"
}

status := 403 if { input.subject; not allow }

headers := {"X-Team": "ops"} if allow
"#;

fn policy_input(method: &str, path: &str) -> String {
    serde_json::json!({
        "request": {"method": method, "scheme": "https", "host": "app.example.org", "path": path},
        "subject": {"id": "1", "name": "alice", "kind": "user", "groups": ["ops"], "auth_strength": "password",
                    "token_kind": "session", "tenant": "default"},
    })
    .to_string()
}

fn policy_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policy")).unwrap();
    std::fs::write(dir.path().join("policy/forward_auth.rego"), POLICY).unwrap();
    std::fs::write(dir.path().join("allow.json"), policy_input("GET", "/app")).unwrap();
    std::fs::write(dir.path().join("deny.json"), policy_input("POST", "/app")).unwrap();
    dir
}

/// `warden policy VERB --policy DIR/policy --input DIR/INPUT`, pointed at a server that does
/// not exist: the command must not need one.
fn warden_policy(verb: &str, dir: &std::path::Path, policy: &str, input: &str, extra: &[&str]) -> Output {
    let policy = dir.join(policy).display().to_string();
    let input = dir.join(input).display().to_string();
    let mut args = vec!["--server", "http://127.0.0.1:1", "policy", verb, "--policy", &policy, "--input", &input];
    args.extend_from_slice(extra);
    warden(&args).0
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn policy_test_says_allow_or_deny_in_its_exit_code() {
    let dir = policy_dir();
    let allowed = warden_policy("test", dir.path(), "policy", "allow.json", &[]);
    assert_eq!(allowed.status.code(), Some(0), "{allowed:?}");
    assert_eq!(stdout(&allowed), "allow\nheader: X-Team: ops\n");
    let denied = warden_policy("test", dir.path(), "policy", "deny.json", &[]);
    assert_eq!(denied.status.code(), Some(3), "{denied:?}");
    assert_eq!(stdout(&denied), "deny\nstatus: 403\n");
    let json = warden_policy("test", dir.path(), "policy", "deny.json", &["-o", "json"]);
    assert_eq!(json.status.code(), Some(3));
    let decision: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(decision, serde_json::json!({"allow": false, "status": 403}));
    let by_query = warden_policy("test", dir.path(), "policy", "deny.json", &["--query", "data.warden.forward_auth.status"]);
    assert_eq!((by_query.status.code(), stdout(&by_query).as_str()), (Some(3), "deny\n"), "a number is no decision");
}

#[test]
fn policy_explain_shows_the_result_and_the_lines_that_ran() {
    let dir = policy_dir();
    let explained = warden_policy("explain", dir.path(), "policy", "allow.json", &[]);
    assert_eq!(explained.status.code(), Some(0), "{explained:?}");
    let text = stdout(&explained);
    assert!(text.starts_with("allow\nheader: X-Team: ops\nengine: vm\nresult:\n"), "{text}");
    assert!(text.contains("forward_auth.rego:10: \"ops\" in input.subject.groups"), "{text}");
    let denied = warden_policy("explain", dir.path(), "policy", "deny.json", &["-o", "json"]);
    assert_eq!(denied.status.code(), Some(3));
    let explanation: serde_json::Value = serde_json::from_slice(&denied.stdout).unwrap();
    assert_eq!(explanation["decision"], serde_json::json!({"allow": false, "status": 403}));
    assert_eq!(explanation["result"], serde_json::json!({"allow": false, "status": 403}));
    assert!(explanation["covered"].as_array().is_some_and(|lines| !lines.is_empty()), "{explanation}");
    assert_eq!(explanation["runtime"], serde_json::json!({"engine": "vm"}));
}

#[test]
fn a_policy_the_vm_cannot_run_is_flagged_and_still_decided() {
    let dir = policy_dir();
    std::fs::create_dir(dir.path().join("slow")).unwrap();
    let constant_key = POLICY.replace(r#"headers := {"X-Team": "ops"} if allow"#, r#"headers["X-Team"] := "ops" if allow"#);
    std::fs::write(dir.path().join("slow/forward_auth.rego"), constant_key).unwrap();
    let output = warden_policy("test", dir.path(), "slow", "allow.json", &[]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(stdout(&output), "allow\nheader: X-Team: ops\n", "the same decision as on the VM");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("slower Rego interpreter") && stderr.contains("forward_auth.rego:16:10: partial object rules with constant keys"),
        "{stderr}"
    );
    let explained = warden_policy("explain", dir.path(), "slow", "allow.json", &[]);
    assert!(stdout(&explained).contains("engine: interpreter ("), "{explained:?}");
}

#[test]
fn a_broken_policy_is_one_error_line_with_the_compilers_message() {
    let dir = policy_dir();
    std::fs::create_dir(dir.path().join("broken")).unwrap();
    std::fs::write(dir.path().join("broken/forward_auth.rego"), "package warden.forward_auth\n\nallow if {\n").unwrap();
    for verb in ["test", "explain"] {
        let output = warden_policy(verb, dir.path(), "broken", "allow.json", &[]);
        assert_eq!(output.status.code(), Some(1), "{verb}");
        let line = one_error_line(&output);
        assert!(line.contains("forward_auth.rego:4:1: expecting expression"), "{line}");
    }
}

#[test]
fn a_malformed_input_is_one_error_line_naming_the_file() {
    let dir = policy_dir();
    std::fs::write(dir.path().join("truncated.json"), r#"{"request": {"method": "GET""#).unwrap();
    std::fs::write(
        dir.path().join("typo.json"),
        r#"{"request": {"method": "GET", "scheme": "https", "host": "h", "path": "/"}, "subjet": {}}"#,
    )
    .unwrap();
    for (file, problem) in
        [("truncated.json", "EOF while parsing"), ("typo.json", "unknown field `subjet`"), ("missing.json", "cannot read")]
    {
        let output = warden_policy("test", dir.path(), "policy", file, &[]);
        assert_eq!(output.status.code(), Some(1), "{file}");
        let line = one_error_line(&output);
        assert!(line.contains(file) && line.contains(problem), "{line}");
    }
}

/// Under `--output json` a failure is one JSON object on stderr, stdout stays empty, and the
/// exit codes are those of table mode.
fn one_json_error(output: &Output) -> serde_json::Value {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(output.stdout.is_empty(), "{:?}", String::from_utf8_lossy(&output.stdout));
    let error: serde_json::Value = serde_json::from_str(&stderr).unwrap_or_else(|e| panic!("{e}: {stderr:?}"));
    assert!(error["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{error}");
    error["error"].clone()
}

#[test]
fn an_unreachable_server_is_a_json_error_under_output_json() {
    let (output, _config) = warden(&["--output", "json", "--server", "http://127.0.0.1:1", "user", "list"]);
    assert_eq!(output.status.code(), Some(1));
    let error = one_json_error(&output);
    assert_eq!((error["code"].as_str(), error["status"].is_null()), (Some("transport"), true), "{error}");
    assert!(error["message"].as_str().unwrap().contains("http://127.0.0.1:1"), "{error}");
}

#[test]
fn usage_errors_are_json_errors_under_output_json() {
    for args in
        [&["user", "rename", "alice", "-o", "json"][..], &["-ojson", "group", "add-member", "staff", "robot:x"], &["-o", "json", "user"]]
    {
        let (output, _config) = warden(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert_eq!(one_json_error(&output)["code"], "usage", "{args:?}");
    }
}

#[test]
fn an_expired_stored_session_names_the_account_and_the_login() {
    let config = tempfile::tempdir().unwrap();
    let session = serde_json::json!({
        "server": "http://127.0.0.1:1", "token": "wds_x", "expires_at": "2020-01-01T00:00:00Z", "account": "alice",
    });
    std::fs::write(config.path().join("session.json"), session.to_string()).unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(args)
            .env("WARDEN_CONFIG_DIR", config.path())
            .env_remove("WARDEN_TOKEN")
            .env_remove("WARDEN_SERVER")
            .output()
            .unwrap()
    };
    let output = run(&["whoami"]);
    assert_eq!(output.status.code(), Some(1));
    let line = one_error_line(&output);
    assert!(
        line.contains("your session for alice on http://127.0.0.1:1 expired at 2020-01-01 00:00:00Z")
            && line.contains("`warden login --user alice`"),
        "{line}"
    );
    let error = one_json_error(&run(&["-o", "json", "user", "list"]));
    assert_eq!(error["code"], "session.ended", "{error}");
}
