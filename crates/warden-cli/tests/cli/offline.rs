//! The `warden` binary's contract where no server is needed: exit codes and one-line errors.

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
