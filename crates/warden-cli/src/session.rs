//! Who the CLI speaks as: `login`, `reauth`, `logout`, `whoami`, and the stored session.
//!
//! A login keeps `{server, token, expires_at, account}` in `session.json` under the config
//! directory, readable only by its owner (0600, written atomically), so later commands need no
//! password. The account's name is kept so that a session the server no longer accepts can be
//! reported as "your session for NAME … has ended", with the login that renews it.
//! Credentials are chosen in a fixed order: `--token`, then `--user NAME:PASSWORD`, then the
//! stored session — and the session's token is only ever sent to the server it came from.
//! Sessions start read-only; `reauth` asks for the password again and opens a write window
//! on the server (the session file does not change).

use std::ffi::OsString;
use std::fs;
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use clap::Args;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use warden_client::{Client, ClientError};
use warden_core::api::{LoginOutcome, SecondFactorAnswer};
use warden_core::api::{ReauthResponse, WhoAmI};
use warden_core::credential::Secret;

use crate::output::{self, Format, Tabular};
use crate::{CliError, Ctx, Global};

/// Server used when neither `--server` nor a stored session names one.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";
const SESSION_FILE: &str = "session.json";

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Read the password from stdin (one line) instead of asking for it.
    #[arg(long)]
    pub password_stdin: bool,
    /// The TOTP code, for an account with a second factor (asked for on a terminal otherwise).
    #[arg(long, value_name = "CODE", conflicts_with = "backup_code")]
    pub totp: Option<String>,
    /// A backup code instead of a TOTP code.
    #[arg(long, value_name = "CODE")]
    pub backup_code: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReauthArgs {
    /// Read the password from stdin (one line) instead of asking for it.
    #[arg(long)]
    pub password_stdin: bool,
    /// The TOTP code, for an account with a second factor.
    #[arg(long, value_name = "CODE")]
    pub totp: Option<String>,
}

/// What `login` keeps on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub server: String,
    pub token: Secret,
    #[serde(with = "warden_core::timestamp")]
    pub expires_at: OffsetDateTime,
    /// The account's name at login (absent in files written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
}

/// Whose session a client speaks with: enough to say which login would renew it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub account: Option<String>,
    pub server: String,
}

impl Session {
    pub fn owner(&self) -> Owner {
        Owner { account: self.account.clone(), server: self.server.clone() }
    }
}

/// A client for `global`'s server with the credential the flags or the session give.
pub fn connect(global: &Global) -> Result<Ctx, CliError> {
    let needs_session = global.server.is_none() || (global.token.is_none() && global.basic.is_none());
    let stored = if needs_session { load_stored()? } else { None };
    let server = server_of(global, stored.as_ref());
    let client = Client::new(&server)?;
    let mut owner = None;
    let client = if let Some(token) = &global.token {
        client.with_bearer(token.as_str())
    } else if let Some(user) = &global.basic {
        let (name, password) =
            user.split_once(':').ok_or_else(|| CliError::Usage("--user must be NAME:PASSWORD (or use `warden login`)".into()))?;
        client.with_basic(name, password)
    } else {
        match stored.filter(|s| same_server(&s.server, &server)) {
            Some(session) if session.expires_at <= OffsetDateTime::now_utc() => {
                return Err(CliError::SessionEnded { owner: session.owner(), expired_at: Some(session.expires_at) });
            }
            Some(session) => {
                owner = Some(session.owner());
                client.with_bearer(session.token.expose())
            }
            None => client,
        }
    };
    Ok(Ctx { client, format: global.output, session: owner })
}

/// `warden login`: exchanges a password for a session and stores it.
pub async fn login(global: &Global, args: &LoginArgs) -> Result<(), CliError> {
    let user = global.basic.as_deref().ok_or_else(|| CliError::Usage("login needs --user NAME".into()))?;
    let (name, password) = match user.split_once(':') {
        Some(_) if args.password_stdin => return Err(CliError::Usage("give the password in --user or on stdin, not both".into())),
        Some((_, "")) => return Err(CliError::Usage("the password is empty".into())),
        Some((name, password)) => (name, Secret::new(password)),
        None => (user, read_nonempty_password(&format!("Password for {user}: "), args.password_stdin)?),
    };
    let dir = config_dir()?;
    let previous = load(&dir).ok().flatten();
    let server = server_of(global, previous.as_ref());
    let client = Client::new(&server)?;
    let reply = match client.login_outcome(name, password.expose()).await? {
        LoginOutcome::Session(reply) => reply,
        LoginOutcome::SecondFactor(step) => {
            // A passkey needs a browser (where the authenticator is); a terminal can only type.
            if !step.methods.iter().any(|m| m == "totp" || m == "backup_code") {
                return Err(CliError::Local(format!(
                    "{name}'s second factor is a passkey, which this command cannot use: sign in with a browser, \
                     or enrol TOTP or backup codes there for the command line"
                )));
            }
            let (totp, backup_code) = match (&args.totp, &args.backup_code) {
                (Some(code), _) => (Some(code.clone()), None),
                (None, Some(code)) => (None, Some(Secret::new(code.clone()))),
                (None, None) if io::stdin().is_terminal() => {
                    let typed: Vec<&str> = step.methods.iter().map(String::as_str).filter(|m| *m != "passkey").collect();
                    let code = read_nonempty_password(&format!("Second factor ({}): ", typed.join(" or ")), false)?;
                    let code = code.expose().trim().to_owned();
                    if code.contains('-') { (None, Some(Secret::new(code))) } else { (Some(code), None) }
                }
                (None, None) => {
                    return Err(CliError::Usage(format!(
                        "{name} has a second factor ({}): give --totp CODE or --backup-code CODE",
                        step.methods.join(", ")
                    )));
                }
            };
            client.login_mfa(&SecondFactorAnswer { state: step.state, totp, backup_code, passkey: None }).await?
        }
    };
    let account = reply.account.name.to_string();
    let session = Session { server: normalize(&server), token: reply.token, expires_at: reply.expires_at, account: Some(account) };
    let path = save(&dir, &session)?;
    let replaced = previous.map(|p| p.owner()).filter(|old| replaces_another(old, &session.owner()));
    // The server's MFA policy may confine this session to enrolling a second factor: say so
    // now rather than at the first refused command (the session is saved: a failure to ask
    // only leaves the note out).
    let confined = client.clone().with_bearer(session.token.expose()).whoami().await.is_ok_and(|me| me.mfa_enrolment_required);
    if global.output == Format::Json {
        // The token stays out of the output; it is in the session file.
        let mut shown = serde_json::json!({
            "account": reply.account,
            "expires_at": warden_core::timestamp::format(session.expires_at),
            "idle_timeout_secs": reply.idle_timeout_secs,
            "mfa_enrolment_required": confined,
        });
        if let Some(old) = &replaced {
            shown["replaced"] = serde_json::json!({ "account": old.account, "server": old.server });
        }
        return output::json(&shown);
    }
    if let Some(old) = &replaced {
        let whose = old.account.as_ref().map(|name| format!(" of {name}")).unwrap_or_default();
        output::note(&format!("note: this replaces the stored session{whose} on {}", old.server));
    }
    output::note(&format!(
        "logged in to {} as {} until {} (session in {})",
        session.server,
        reply.account,
        output::time(session.expires_at),
        path.display()
    ));
    if confined {
        output::note(
            "note: this account must use a second factor; until it does, only enrolling one is allowed: \
             warden reauth, warden self totp enrol, warden self totp confirm CODE, then warden reauth --totp CODE",
        );
    }
    Ok(())
}

/// Whether a new login's session takes the place of another account's (or another server's):
/// worth a note, since later commands will no longer act as that account. A session file from
/// before accounts were kept names no account; on the same server it is not flagged.
fn replaces_another(old: &Owner, new: &Owner) -> bool {
    !same_server(&old.server, &new.server) || old.account.as_ref().is_some_and(|name| Some(name) != new.account.as_ref())
}

/// `warden reauth`: proves the password again so the session (stored, or `--token`) may write
/// for a while.
pub async fn reauth(global: &Global, args: &ReauthArgs) -> Result<(), CliError> {
    if global.basic.is_some() {
        return Err(CliError::Usage("reauth elevates a session: use the stored session or --token, not --user".into()));
    }
    if global.token.is_none() && load_stored()?.is_none() {
        return Err(CliError::Usage("not logged in: run `warden login --user NAME` first (or pass --token)".into()));
    }
    let ctx = connect(global)?;
    let reply = elevate(&ctx, args).await.map_err(|err| ctx.explain(err))?;
    if ctx.format == Format::Json {
        return output::json(&reply);
    }
    output::note(&format!("write access until {}", output::time(reply.elevated_until)));
    Ok(())
}

async fn elevate(ctx: &Ctx, args: &ReauthArgs) -> Result<ReauthResponse, CliError> {
    let password = if args.password_stdin || !io::stdin().is_terminal() {
        read_nonempty_password("", true)?
    } else {
        // Asking the server first names the account in the prompt and fails before the prompt
        // if the session is no longer valid.
        let me = ctx.client.whoami().await?;
        read_nonempty_password(&format!("Password for {}: ", me.account.name), false)?
    };
    Ok(match &args.totp {
        Some(code) => ctx.client.reauth_with_totp(password.expose(), code).await?,
        None => ctx.client.reauth(password.expose()).await?,
    })
}

/// `warden logout`: ends the stored session on its server and deletes the file.
pub async fn logout(format: Format) -> Result<(), CliError> {
    let dir = config_dir()?;
    let Some(session) = load(&dir)? else {
        return output::done(format, &serde_json::json!({ "logged_out": false }), "not logged in");
    };
    let client = Client::new(&session.server)?.with_bearer(session.token.expose());
    match client.logout().await {
        Ok(()) => {}
        // Already ended or expired on the server: forgetting it is all that is left to do.
        Err(ClientError::Api(problem)) if problem.status == 401 => {}
        Err(err) => return Err(err.into()),
    }
    remove(&dir)?;
    let shown = serde_json::json!({ "logged_out": true, "server": session.server, "account": session.account });
    output::done(format, &shown, &format!("logged out of {}", session.server))
}

/// `warden whoami`.
pub async fn whoami(ctx: &Ctx) -> Result<(), CliError> {
    output::item(ctx, &ctx.client.whoami().await?)
}

impl Tabular for WhoAmI {
    const HEADERS: &'static [&'static str] = &["ACCOUNT", "ID", "METHOD", "PERMISSIONS"];

    fn row(&self) -> Vec<String> {
        vec![self.account.to_string(), self.account.id.to_string(), output::wire_name(&self.method), output::words(&self.permissions)]
    }
}

// --- the session file --------------------------------------------------------------------------

/// `$WARDEN_CONFIG_DIR`, else `$XDG_CONFIG_HOME/warden`, else `$HOME/.config/warden`.
pub fn config_dir() -> Result<PathBuf, CliError> {
    config_dir_from(|key| std::env::var_os(key))
        .ok_or_else(|| CliError::Local("cannot find a config directory: set WARDEN_CONFIG_DIR or HOME".into()))
}

fn config_dir_from(env: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let set = |key| env(key).filter(|v| !v.is_empty()).map(PathBuf::from);
    set("WARDEN_CONFIG_DIR")
        .or_else(|| set("XDG_CONFIG_HOME").map(|d| d.join("warden")))
        .or_else(|| set("HOME").map(|d| d.join(".config").join("warden")))
}

/// The stored session, if there is one.
pub fn load(dir: &Path) -> Result<Option<Session>, CliError> {
    let path = dir.join(SESSION_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CliError::Local(format!("cannot read {}: {e}", path.display()))),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| CliError::Local(format!("{} is damaged ({e}); delete it and log in again", path.display())))
}

/// Writes the session: a private directory, a 0600 temp file, then an atomic rename.
pub fn save(dir: &Path, session: &Session) -> Result<PathBuf, CliError> {
    let path = dir.join(SESSION_FILE);
    let local = |what: &str, e: io::Error| CliError::Local(format!("cannot {what} {}: {e}", path.display()));
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| local("create the directory of", e))?;
    let tmp = dir.join(format!("{SESSION_FILE}.tmp"));
    let _ = fs::remove_file(&tmp); // a leftover of a crash; absence is the normal case
    let json = serde_json::to_vec_pretty(session).map_err(|e| CliError::Local(format!("cannot encode the session: {e}")))?;
    let mut file = fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp).map_err(|e| local("write", e))?;
    file.write_all(&json).and_then(|()| file.sync_all()).map_err(|e| local("write", e))?;
    fs::rename(&tmp, &path).map_err(|e| local("write", e))?;
    Ok(path)
}

fn remove(dir: &Path) -> Result<(), CliError> {
    let path = dir.join(SESSION_FILE);
    match fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(CliError::Local(format!("cannot delete {}: {e}", path.display()))),
        _ => Ok(()),
    }
}

/// The stored session, if there is a config directory and a session in it.
fn load_stored() -> Result<Option<Session>, CliError> {
    config_dir_from(|key| std::env::var_os(key)).map_or(Ok(None), |dir| load(&dir))
}

fn server_of(global: &Global, stored: Option<&Session>) -> String {
    global.server.clone().or_else(|| stored.map(|s| s.server.clone())).unwrap_or_else(|| DEFAULT_SERVER.to_owned())
}

fn normalize(server: &str) -> String {
    server.trim().trim_end_matches('/').to_owned()
}

fn same_server(a: &str, b: &str) -> bool {
    normalize(a).eq_ignore_ascii_case(&normalize(b))
}

// --- passwords ---------------------------------------------------------------------------------

/// Reads a password as [`read_password`] does, and refuses an empty one saying where it was
/// looked for: when stdin is not a terminal, nothing piped in is the likely mistake.
pub fn read_nonempty_password(prompt: &str, from_stdin: bool) -> Result<Secret, CliError> {
    let from_stdin = from_stdin || !io::stdin().is_terminal();
    let password = read_password(prompt, from_stdin)?;
    if !password.expose().is_empty() {
        return Ok(password);
    }
    Err(CliError::Usage(if from_stdin {
        "no password came on stdin (it is read from there when stdin is not a terminal, or with --password-stdin): \
         pipe one in, or run the command on a terminal to be asked"
            .into()
    } else {
        "the password is empty".into()
    }))
}

/// Reads a password: all of stdin's first line with `--password-stdin` or when stdin is not a
/// terminal, else from the terminal with echo off.
pub fn read_password(prompt: &str, from_stdin: bool) -> Result<Secret, CliError> {
    let stdin = io::stdin();
    let local = |e: io::Error| CliError::Local(format!("cannot read the password: {e}"));
    if from_stdin || !stdin.is_terminal() {
        let mut raw = String::new();
        stdin.lock().read_to_string(&mut raw).map_err(local)?;
        return Ok(Secret::new(raw.lines().next().unwrap_or_default()));
    }
    eprint!("{prompt}");
    let echo_off = stty("-echo");
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if echo_off {
        stty("echo");
        eprintln!();
    }
    read.map_err(local)?;
    Ok(Secret::new(line.trim_end_matches(['\r', '\n'])))
}

/// Switches terminal echo through `stty` (no unsafe, no extra crate); false if that failed.
fn stty(setting: &str) -> bool {
    Command::new("stty")
        .arg(setting)
        .stdin(Stdio::inherit())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn session() -> Session {
        Session {
            server: "http://127.0.0.1:8080".into(),
            token: Secret::new("wds_0123"),
            expires_at: time::macros::datetime!(2030-01-01 0:00 UTC),
            account: Some("alice".into()),
        }
    }

    #[test]
    fn a_session_file_without_an_account_still_loads() {
        let tmp = tempfile::tempdir().unwrap();
        let old = r#"{"server": "http://127.0.0.1:8080", "token": "wds_0123", "expires_at": "2030-01-01T00:00:00Z"}"#;
        fs::write(tmp.path().join(SESSION_FILE), old).unwrap();
        assert_eq!(load(tmp.path()).unwrap().unwrap().account, None);
    }

    #[test]
    fn a_login_as_someone_else_or_elsewhere_replaces_a_session() {
        let owner = |account: Option<&str>, server: &str| Owner { account: account.map(str::to_owned), server: server.to_owned() };
        let alice = owner(Some("alice"), "http://w.example");
        assert!(!replaces_another(&alice, &owner(Some("alice"), "http://W.example/")));
        assert!(replaces_another(&alice, &owner(Some("bob"), "http://w.example")));
        assert!(replaces_another(&alice, &owner(Some("alice"), "http://other.example")));
        assert!(!replaces_another(&owner(None, "http://w.example"), &owner(Some("bob"), "http://w.example")));
    }

    #[test]
    fn session_file_is_private_and_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("nested").join("warden");
        assert!(load(&dir).unwrap().is_none());
        let path = save(&dir, &session()).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        let loaded = load(&dir).unwrap().unwrap();
        assert_eq!(loaded.token.expose(), "wds_0123");
        assert_eq!(loaded.expires_at, session().expires_at);
        // Saving again over an existing file keeps it private.
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        save(&dir, &session()).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        remove(&dir).unwrap();
        remove(&dir).unwrap();
        assert!(load(&dir).unwrap().is_none());
    }

    #[test]
    fn damaged_session_file_is_a_one_line_error() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join(SESSION_FILE), "{not json").unwrap();
        let err = load(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("damaged") && !err.contains('\n'), "{err}");
    }

    #[test]
    fn config_dir_precedence() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |key: &str| pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| OsString::from(v))
        };
        assert_eq!(config_dir_from(env(&[("WARDEN_CONFIG_DIR", "/w"), ("HOME", "/h")])), Some(PathBuf::from("/w")));
        assert_eq!(config_dir_from(env(&[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")])), Some(PathBuf::from("/x/warden")));
        assert_eq!(config_dir_from(env(&[("XDG_CONFIG_HOME", ""), ("HOME", "/h")])), Some(PathBuf::from("/h/.config/warden")));
        assert_eq!(config_dir_from(env(&[])), None);
    }

    #[test]
    fn session_token_goes_only_to_its_server() {
        assert!(same_server("http://127.0.0.1:8080/", "http://127.0.0.1:8080"));
        assert!(!same_server("https://a.example", "https://b.example"));
        let global = Global { server: None, token: None, basic: None, output: Format::Table };
        assert_eq!(server_of(&global, Some(&session())), "http://127.0.0.1:8080");
        assert_eq!(server_of(&global, None), DEFAULT_SERVER);
    }
}
