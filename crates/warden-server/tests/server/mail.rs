//! Issue 13's mail: invitations, account notices and forgotten passwords, delivered to a real
//! SMTP server process (aiosmtpd, `scripts/smtp-sink.py`), the link read out of the received
//! message and used. A queued mail survives a restart; no token is stored or logged in clear.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration as StdDuration;

use time::Duration;
use warden_client::{AuditQuery, ClientError};
use warden_core::api::{CreateInvitations, CreateUser, RegisterRequest};
use warden_core::credential::Secret;
use warden_server::clock::Clock;
use warden_server::config::{Config, MailTransport, SmtpSecurity};

use crate::api::{PgDatabase, TestServer, role, user};

const PUBLIC_URL: &str = "https://id.example.test";

fn code(e: &ClientError) -> &str {
    e.code()
}

/// An aiosmtpd process writing what it receives into a directory; stopped when dropped.
pub struct SmtpSink {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl SmtpSink {
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    pub fn start_with(args: &[&str]) -> Self {
        let venv = std::env::var("WARDEN_VENV")
            .map_or_else(|_| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/warden-venv"), PathBuf::from);
        let python = venv.join("bin/python");
        assert!(python.exists(), "{} is missing: run scripts/smtp-up.sh (CI does)", python.display());
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/smtp-sink.py");
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(python)
            .arg(script)
            .arg(dir.path())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the SMTP sink");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| panic!("the SMTP sink said {line:?}"));
        Self { child, port, dir }
    }

    /// The messages received so far, oldest first.
    pub fn messages(&self) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        names.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect()
    }

    /// Waits (up to 20 s) until `n` messages arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<String> {
        for _ in 0..200 {
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
        panic!("expected {n} messages, got {}", self.messages().len());
    }

    pub fn configure(&self, config: &mut Config) {
        config.server.public_url = Some(PUBLIC_URL.into());
        config.mail.transport = MailTransport::Smtp;
        config.mail.smtp.host = "127.0.0.1".into();
        config.mail.smtp.port = Some(self.port);
        config.mail.smtp.security = SmtpSecurity::None;
        config.mail.from = "Warden <warden@id.example.test>".into();
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A message's text with quoted-printable soft breaks and escapes undone (enough to read a
/// link out of it).
pub fn decoded(message: &str) -> String {
    let joined = message.replace("=\r\n", "").replace("=\n", "");
    let mut out = Vec::with_capacity(joined.len());
    let bytes = joined.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The token of the first `{PUBLIC_URL}/{page}?token=…` link in a message.
pub fn token_in(message: &str, page: &str) -> String {
    let text = decoded(message);
    let prefix = format!("{PUBLIC_URL}/{page}?token=");
    let start = text.find(&prefix).unwrap_or_else(|| panic!("no {page} link in {text}")) + prefix.len();
    let token: String = text[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
    assert!(token.starts_with("wdo_") && token.len() == 68, "{token}");
    token
}

fn header<'m>(message: &'m str, name: &str) -> Option<&'m str> {
    message.lines().find_map(|l| l.strip_prefix(&format!("{name}: ")))
}

async fn invitation_round_trip(server: &TestServer, sink: &SmtpSink) {
    let admin = server.sysadmin().await;
    admin.create_role(&role("help-desk", "Help desk", &["tickets:read"])).await.unwrap();
    let idm = server.idm().await;
    // Unhappy paths first: a bad address, nothing to invite, an unknown role.
    let bad = CreateInvitations { emails: vec!["not an address".into()], ..CreateInvitations::default() };
    assert_eq!(code(&idm.create_invitations(&bad).await.unwrap_err()), "validation");
    assert_eq!(code(&idm.create_invitations(&CreateInvitations::default()).await.unwrap_err()), "validation");
    let unknown = CreateInvitations { emails: vec!["bob@example.org".into()], roles: vec!["nope".into()], ..CreateInvitations::default() };
    assert_eq!(code(&idm.create_invitations(&unknown).await.unwrap_err()), "not_found");
    idm.create_user(&CreateUser { emails: vec!["taken@example.org".into()], ..user("holder") }).await.unwrap();
    let taken = CreateInvitations { emails: vec!["carol@example.org".into(), "TAKEN@example.org".into()], ..CreateInvitations::default() };
    let e = idm.create_invitations(&taken).await.unwrap_err();
    assert!(code(&e) == "validation" && e.to_string().contains("already"), "{e}");
    assert!(idm.list_invitations().await.unwrap().is_empty(), "a refused request writes nothing");

    let req = CreateInvitations {
        emails: vec!["bob@example.org".into(), "carol@example.org".into()],
        roles: vec!["help-desk".into()],
        ..CreateInvitations::default()
    };
    let made = idm.create_invitations(&req).await.unwrap();
    assert_eq!(made.invitations.len(), 2);
    assert!(made.mail.starts_with("smtp 127.0.0.1:"), "{}", made.mail);
    let messages = sink.wait_for(2).await;
    let to_bob = messages.iter().find(|m| header(m, "To").is_some_and(|t| t.contains("bob@example.org"))).expect("bob's mail");
    assert!(header(to_bob, "Subject").is_some_and(|s| s.contains("invited")), "{to_bob}");
    let token = token_in(to_bob, "register");

    // Opening the link never uses it.
    let http = reqwest::Client::new();
    for _ in 0..2 {
        let page = http.get(format!("{}/register?token={token}", server.url)).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains("bob@example.org"));
    }
    let register = |name: &str| RegisterRequest {
        token: Some(Secret::new(token.clone())),
        name: name.into(),
        password: Secret::new("birch's own passphrase"),
        email: Some("someone-else@example.org".into()),
        display_name: None,
        first_name: None,
        last_name: None,
    };
    let bob = server.anonymous().register(&register("bob")).await.unwrap();
    assert_eq!(bob.profile.emails.len(), 1);
    assert_eq!((bob.profile.emails[0].address.as_str(), bob.profile.emails[0].verified), ("bob@example.org", true));
    // Once only, and the invited address signs in at once (it is verified).
    assert_eq!(code(&server.anonymous().register(&register("bob2")).await.unwrap_err()), "token.invalid");
    server.anonymous().login("bob@example.org", "birch's own passphrase").await.unwrap();
    let bindings =
        admin.list_bindings(&warden_core::api::BindingQuery { subject: Some("user:bob".into()), ..Default::default() }).await.unwrap();
    assert_eq!(bindings.items.iter().map(|b| b.role.as_str()).collect::<Vec<_>>(), ["help-desk"]);

    let listed = idm.list_invitations().await.unwrap();
    assert_eq!(listed.iter().filter(|i| i.used).count(), 1);
    // Revoking carol's ends her link.
    let carol = listed.iter().find(|i| i.email == "carol@example.org").unwrap();
    idm.revoke_invitation(carol.id).await.unwrap();
    assert_eq!(code(&idm.revoke_invitation(carol.id).await.unwrap_err()), "not_found");
    let to_carol = messages.iter().find(|m| header(m, "To").is_some_and(|t| t.contains("carol@example.org"))).unwrap();
    let e = server
        .anonymous()
        .register(&RegisterRequest { token: Some(Secret::new(token_in(to_carol, "register"))), ..register("carol") })
        .await
        .unwrap_err();
    assert_eq!(code(&e), "token.invalid");

    // Audited: who invited, the link made as the mail left, who registered.
    for action in ["invitation.create", "mail.link.issue", "user.register", "invitation.revoke"] {
        let events = admin.audit(&AuditQuery { action: Some(action.into()), ..Default::default() }).await.unwrap();
        assert!(!events.items.is_empty(), "{action} is audited");
        assert!(!serde_json::to_string(&events.items).unwrap().contains(&token), "no token in the audit log");
    }
}

#[tokio::test]
async fn an_invitation_arrives_over_smtp_and_registers_once() {
    let sink = SmtpSink::start();
    let server = TestServer::start_with(|c| sink.configure(c)).await;
    invitation_round_trip(&server, &sink).await;
    // The database holds no token in clear.
    let token = token_in(&sink.messages()[0], "register");
    let db = std::fs::read(server.running.context.config.database.url.trim_start_matches("sqlite://")).unwrap();
    assert!(!db.windows(token.len()).any(|w| w == token.as_bytes()), "the token is not in the database file");
}

#[tokio::test]
async fn an_invitation_arrives_over_smtp_and_registers_once_on_postgres() {
    let sink = SmtpSink::start();
    let db = PgDatabase::create("mail");
    let url = db.url();
    let server = TestServer::start_with(|c| {
        sink.configure(c);
        c.database.url = url;
    })
    .await;
    invitation_round_trip(&server, &sink).await;
}

#[tokio::test]
async fn invitations_need_a_public_url_and_the_right() {
    let server = TestServer::start().await;
    let idm = server.idm().await;
    let req = CreateInvitations { emails: vec!["bob@example.org".into()], ..CreateInvitations::default() };
    assert_eq!(code(&idm.create_invitations(&req).await.unwrap_err()), "config.public_url_missing");
    let server = TestServer::start_with(|c| c.server.public_url = Some(PUBLIC_URL.into())).await;
    server.idm().await.create_user(&user("mallory")).await.unwrap();
    let mallory = server.anonymous().with_basic("mallory", "correct horse battery");
    assert_eq!(code(&mallory.create_invitations(&req).await.unwrap_err()), "forbidden");
    assert_eq!(code(&mallory.list_invitations().await.unwrap_err()), "forbidden");
}

#[tokio::test]
async fn an_account_notice_lets_the_owner_choose_a_first_password() {
    an_account_notice_lets_the_owner_choose_a_first_password_on(None).await;
}

#[tokio::test]
async fn an_account_notice_lets_the_owner_choose_a_first_password_on_postgres() {
    let db = PgDatabase::create("notice");
    an_account_notice_lets_the_owner_choose_a_first_password_on(Some(db.url())).await;
}

async fn an_account_notice_lets_the_owner_choose_a_first_password_on(database: Option<String>) {
    let sink = SmtpSink::start();
    let server = TestServer::start_with(|c| {
        sink.configure(c);
        if let Some(url) = database {
            c.database.url = url;
        }
    })
    .await;
    let idm = server.idm().await;
    let no_address = CreateUser { name: "dave".into(), ..CreateUser::default() };
    idm.create_user(&no_address).await.unwrap();
    assert_eq!(code(&idm.send_account_notice("dave").await.unwrap_err()), "validation", "no address to write to");
    assert_eq!(code(&idm.send_account_notice("nobody").await.unwrap_err()), "not_found");
    let alice = CreateUser { name: "alice".into(), emails: vec!["alice@example.org".into()], ..CreateUser::default() };
    idm.create_user(&alice).await.unwrap();
    let queued = idm.send_account_notice("alice").await.unwrap();
    assert_eq!(queued.to, "alice@example.org");
    let message = &sink.wait_for(1).await[0];
    assert!(header(message, "To").is_some_and(|t| t.contains("alice@example.org")));
    let token = token_in(message, "recover");
    let session = server.anonymous().recover(&token, "amber's first passphrase").await.unwrap();
    assert_eq!(session.account.name.as_str(), "alice");
    server.anonymous().login("alice", "amber's first passphrase").await.unwrap();
    assert_eq!(code(&server.anonymous().recover(&token, "another passphrase!").await.unwrap_err()), "token.invalid");
    // A user without the right cannot send one.
    idm.create_user(&user("mallory")).await.unwrap();
    let mallory = server.anonymous().with_basic("mallory", "correct horse battery");
    assert_eq!(code(&mallory.send_account_notice("alice").await.unwrap_err()), "forbidden");
}

#[tokio::test]
async fn forgot_password_answers_alike_and_mails_only_real_accounts() {
    forgot_password_answers_alike_and_mails_only_real_accounts_on(None).await;
}

#[tokio::test]
async fn forgot_password_answers_alike_and_mails_only_real_accounts_on_postgres() {
    let db = PgDatabase::create("forgot");
    forgot_password_answers_alike_and_mails_only_real_accounts_on(Some(db.url())).await;
}

async fn forgot_password_answers_alike_and_mails_only_real_accounts_on(database: Option<String>) {
    let sink = SmtpSink::start();
    let server = TestServer::start_with(|c| {
        sink.configure(c);
        if let Some(url) = database {
            c.database.url = url;
        }
    })
    .await;
    let idm = server.idm().await;
    let erin = CreateUser { emails: vec!["erin@example.org".into()], ..user("erin") };
    idm.create_user(&erin).await.unwrap();
    let unverified =
        CreateUser { emails: vec![serde_json::from_str(r#"{"address":"frank@example.org","verified":false}"#).unwrap()], ..user("frank") };
    idm.create_user(&unverified).await.unwrap();

    let http = reqwest::Client::new();
    let ask = |who: &'static str| {
        let http = http.clone();
        let url = format!("{}/api/v1/auth/forgot-password", server.url);
        async move {
            let started = std::time::Instant::now();
            let r = http.post(url).json(&serde_json::json!({ "name_or_email": who })).send().await.unwrap();
            let elapsed = started.elapsed();
            (r.status().as_u16(), r.text().await.unwrap(), elapsed)
        }
    };
    let mut answers = Vec::new();
    for who in ["erin", "nobody", "erin@example.org", "nobody@example.org", "frank"] {
        answers.push(ask(who).await);
    }
    let first = &answers[0];
    for (status, body, elapsed) in &answers {
        assert_eq!((*status, body.as_str()), (202, first.1.as_str()), "the same answer whatever is named");
        // Nothing is looked up before the answer; a generous bound only.
        assert!(*elapsed < StdDuration::from_secs(1), "{elapsed:?}");
    }
    // Erin (by name and by address) gets two mails; no one else any.
    let messages = sink.wait_for(2).await;
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    let messages_now = sink.messages();
    assert_eq!(messages_now.len(), 2, "only the real, verified account is written to");
    assert!(messages.iter().all(|m| header(m, "To").is_some_and(|t| t.contains("erin@example.org"))));
    // The newer link ends the older one; the newest sets the password.
    let older = token_in(&messages[0], "recover");
    let newer = token_in(&messages[1], "recover");
    assert_eq!(code(&server.anonymous().recover(&older, "ember's new passphrase").await.unwrap_err()), "token.invalid");
    server.anonymous().recover(&newer, "ember's new passphrase").await.unwrap();
    server.anonymous().login("erin", "ember's new passphrase").await.unwrap();

    // Per account: at most 3 mails an hour (the third is this one), whoever asks.
    for _ in 0..3 {
        ask("erin").await;
    }
    tokio::time::sleep(StdDuration::from_millis(800)).await;
    assert_eq!(sink.messages().len(), 3, "the account's limit holds");
    // Per client: the 11th request within the hour is refused, saying nothing of accounts.
    for _ in 0..2 {
        assert_eq!(ask("nobody").await.0, 202);
    }
    let (status, body, _) = ask("nobody").await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("auth.rate_limited"));
    // Audited without the token, with the asking address.
    let events = server
        .sysadmin()
        .await
        .audit(&AuditQuery { action: Some("credential.password_reset.request".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(events.items.len(), 3);
    assert!(events.items.iter().all(|e| e.actor_id.is_none() && e.details["client"] == "127.0.0.1"));
}

/// A mail that could not be sent waits in the database: a restarted server (here with the
/// relay back) sends it, once.
#[tokio::test]
async fn a_queued_mail_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/warden.db", dir.path().display());
    let base = |port: u16| {
        let mut config = Config::default();
        config.server.listen = "127.0.0.1:0".parse().unwrap();
        config.database.url = url.clone();
        config.server.control_socket = dir.path().join("wardend.sock");
        config.auth.argon2.memory_kib = 64;
        config.auth.argon2.iterations = 1;
        config.server.public_url = Some(PUBLIC_URL.into());
        config.mail.transport = MailTransport::Smtp;
        config.mail.smtp.host = "127.0.0.1".into();
        config.mail.smtp.port = Some(port);
        config.mail.smtp.security = SmtpSecurity::None;
        config.mail.smtp.timeout = "2s".into();
        config.mail.poll_interval = "1s".into();
        config
    };
    // A port nothing listens on: every attempt fails.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let clock = std::sync::Arc::new(warden_server::clock::ManualClock::new(time::OffsetDateTime::now_utc()));
    let first = warden_server::start(base(closed), clock.clone(), false).await.unwrap();
    let context = first.context.clone();
    let admin_password = warden_server::services::recovery::recover_account(&context, "idm_admin").await.unwrap();
    let client = warden_client::Client::new(&format!("http://{}", first.public_addr)).unwrap();
    let token = client.login("idm_admin", admin_password.expose()).await.unwrap().token;
    let idm = client.with_bearer(token.expose());
    idm.reauth(admin_password.expose()).await.unwrap();
    idm.create_invitations(&CreateInvitations { emails: vec!["gina@example.org".into()], ..CreateInvitations::default() }).await.unwrap();
    // The first attempt fails and is put off.
    let mut waited = 0;
    loop {
        let mails = context.store.mails(10).await.unwrap();
        if mails[0].last_error.is_some() {
            assert!(mails[0].sent_at.is_none() && mails[0].not_before > clock.now());
            break;
        }
        waited += 1;
        assert!(waited < 100, "the first attempt never ended");
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    first.shutdown().await.unwrap();

    // Restarted past the back-off with the relay up: sent once.
    let sink = SmtpSink::start();
    clock.advance(Duration::minutes(5));
    let second = warden_server::start(base(sink.port), clock.clone(), false).await.unwrap();
    let message = &sink.wait_for(1).await[0];
    assert!(header(message, "To").is_some_and(|t| t.contains("gina@example.org")));
    tokio::time::sleep(StdDuration::from_millis(1500)).await;
    assert_eq!(sink.messages().len(), 1, "sent once");
    let mails = second.context.store.mails(10).await.unwrap();
    assert!(mails[0].sent_at.is_some() && mails[0].mail.attempts == 2, "{:?}", mails[0]);
    second.shutdown().await.unwrap();
}

/// A group's forced password change: every effective member (nested groups included) is
/// flagged, signed out and mailed a link; a flagged account's new session may only see itself
/// and sign out (`403 password.change_required` for everything else, forward-auth included);
/// a new password clears the flag.
#[tokio::test]
async fn a_group_must_change_its_passwords() {
    a_group_must_change_its_passwords_on(None).await;
}

#[tokio::test]
async fn a_group_must_change_its_passwords_on_postgres() {
    let db = PgDatabase::create("forced");
    a_group_must_change_its_passwords_on(Some(db.url())).await;
}

async fn a_group_must_change_its_passwords_on(database: Option<String>) {
    let sink = SmtpSink::start();
    let server = TestServer::start_with(|c| {
        sink.configure(c);
        if let Some(url) = database {
            c.database.url = url;
        }
        c.forward_auth.enabled = true;
        c.forward_auth.rules = vec![
            serde_json::from_value(
                serde_json::json!({ "name": "app", "host": "app.example.test", "action": "authenticated", "allow_basic": true }),
            )
            .unwrap(),
        ];
    })
    .await;
    let idm = server.idm().await;
    for (name, address) in [("hana", Some("hana@example.org")), ("ivan", Some("ivan@example.org")), ("jo", None)] {
        idm.create_user(&CreateUser { emails: address.into_iter().map(Into::into).collect(), ..user(name) }).await.unwrap();
    }
    idm.create_user(&user("kim")).await.unwrap();
    idm.create_group(&warden_core::api::CreateGroup { name: "staff".into(), description: None }).await.unwrap();
    idm.create_group(&warden_core::api::CreateGroup { name: "night-shift".into(), description: None }).await.unwrap();
    idm.add_members("staff", &["user:hana".into(), "user:jo".into(), "group:night-shift".into()]).await.unwrap();
    idm.add_members("night-shift", &["user:ivan".into()]).await.unwrap();
    let hana_before = server.anonymous().login("hana", "correct horse battery").await.unwrap();

    // Unhappy paths first: no such group; a user without the right.
    assert_eq!(code(&idm.require_group_password_change("nobody").await.unwrap_err()), "not_found");
    let kim = server.anonymous().with_basic("kim", "correct horse battery");
    assert_eq!(code(&kim.require_group_password_change("staff").await.unwrap_err()), "forbidden");

    let done = idm.require_group_password_change("staff").await.unwrap();
    let mut accounts = done.accounts.clone();
    accounts.sort();
    assert_eq!(accounts, ["hana", "ivan", "jo"], "nested members too");
    assert_eq!((done.mailed, done.sessions_ended), (2, 1), "jo has no address to write to");
    let session = server.anonymous().with_bearer(hana_before.token.expose());
    assert_eq!(code(&session.whoami().await.unwrap_err()), "unauthenticated", "sessions ended");
    let messages = sink.wait_for(2).await;
    let to_hana = messages.iter().find(|m| header(m, "To").is_some_and(|t| t.contains("hana@example.org"))).unwrap();
    assert!(header(to_hana, "Subject").is_some_and(|s| s.contains("new password")), "{to_hana}");

    // Signing in with the old password works, but the session may do nothing else.
    let ivan = server.anonymous().login("ivan", "correct horse battery").await.unwrap();
    let ivan = server.anonymous().with_bearer(ivan.token.expose());
    let me = ivan.whoami().await.unwrap();
    assert_eq!((me.account.name.as_str(), me.password_change_required), ("ivan", true));
    assert_eq!(code(&ivan.list_users(&warden_client::ListQuery::default()).await.unwrap_err()), "password.change_required");
    assert_eq!(code(&ivan.list_invitations().await.unwrap_err()), "password.change_required");
    let jo = server.anonymous().with_basic("jo", "correct horse battery");
    assert_eq!(code(&jo.list_groups(&warden_client::ListQuery::default()).await.unwrap_err()), "password.change_required");
    let forward = reqwest::Client::new()
        .get(format!("{}/auth/forward", server.url))
        .header("x-forwarded-host", "app.example.test")
        .header("x-forwarded-uri", "/")
        .header("x-forwarded-proto", "https")
        .basic_auth("jo", Some("correct horse battery"))
        .send()
        .await
        .unwrap();
    assert_eq!(forward.status(), 403, "forward-auth lets no flagged account through");

    // The mailed link sets a new password and clears the flag.
    let token = token_in(to_hana, "recover");
    let fresh = server.anonymous().recover(&token, "hazel's new passphrase").await.unwrap();
    let hana = server.anonymous().with_bearer(fresh.token.expose());
    assert_eq!(code(&hana.list_users(&warden_client::ListQuery::default()).await.unwrap_err()), "forbidden", "an ordinary user again");
    // So does any new password (here an administrator's).
    idm.set_password("jo", "jo's new passphrase!").await.unwrap();
    let jo = server.anonymous().with_basic("jo", "jo's new passphrase!");
    assert_eq!(code(&jo.list_groups(&warden_client::ListQuery::default()).await.unwrap_err()), "forbidden");

    let events = server
        .sysadmin()
        .await
        .audit(&AuditQuery { action: Some("credential.password_change.require".into()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(events.items.len(), 3);
    assert!(events.items.iter().all(|e| e.details["group"] == "staff" && e.actor_name.as_deref() == Some("idm_admin")));
}

/// E-mail verification: a registrant's address and an address a user adds to their own profile
/// are mailed a link; the page never consumes it; following it verifies the address, which then
/// signs in and may become primary. An address removed meanwhile is not verified by its link.
#[tokio::test]
async fn claimed_addresses_are_verified_by_their_mailed_link() {
    let sink = SmtpSink::start();
    let server = TestServer::start_with(|c| {
        sink.configure(c);
        c.registration.mode = warden_server::config::RegistrationMode::Public;
    })
    .await;
    let walk_in = RegisterRequest {
        token: None,
        name: "lena".into(),
        password: Secret::new("linden's own passphrase"),
        email: Some("lena@example.org".into()),
        display_name: None,
        first_name: None,
        last_name: None,
    };
    server.anonymous().register(&walk_in).await.unwrap();
    let e = server.anonymous().login("lena@example.org", "linden's own passphrase").await.unwrap_err();
    assert_eq!(code(&e), "auth.failed", "not before it is verified");
    let message = &sink.wait_for(1).await[0];
    assert!(header(message, "Subject").is_some_and(|s| s.contains("Confirm")), "{message}");
    let token = token_in(message, "verify-email");

    // Unhappy paths first: a made-up token, and the page never consumes the real one.
    assert_eq!(code(&server.anonymous().verify_email("wdo_00000000").await.unwrap_err()), "token.invalid");
    let http = reqwest::Client::new();
    for _ in 0..2 {
        let page = http.get(format!("{}/verify-email?token={token}", server.url)).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let text = page.text().await.unwrap();
        assert!(text.contains("lena@example.org") && text.contains("lena"), "{text}");
    }
    let done = server.anonymous().verify_email(&token).await.unwrap();
    assert_eq!((done.account.as_str(), done.address.as_str()), ("lena", "lena@example.org"));
    assert_eq!(code(&server.anonymous().verify_email(&token).await.unwrap_err()), "token.invalid", "once only");
    let session = server.anonymous().login("lena@example.org", "linden's own passphrase").await.unwrap();
    let lena = server.anonymous().with_bearer(session.token.expose());

    // An address added to one's own profile: unverified, mailed, and not primary until verified.
    let add = |emails: serde_json::Value| {
        serde_json::from_value::<warden_core::api::UpdateProfile>(serde_json::json!({ "emails": emails })).unwrap()
    };
    let read = lena.update_own_profile(&add(serde_json::json!(["lena@example.org", "lena@work.example"]))).await.unwrap();
    assert_eq!(read.profile.emails.iter().map(|e| e.verified).collect::<Vec<_>>(), [true, false]);
    let second = sink.wait_for(2).await[1].clone();
    assert!(header(&second, "To").is_some_and(|t| t.contains("lena@work.example")));
    // Asking again for a verified address is refused; for the new one, a second link comes.
    assert_eq!(code(&lena.resend_verification("lena@example.org").await.unwrap_err()), "validation");
    assert_eq!(code(&lena.resend_verification("someone@else.example").await.unwrap_err()), "validation");
    lena.resend_verification("lena@work.example").await.unwrap();
    let third = sink.wait_for(3).await[2].clone();
    server.anonymous().verify_email(&token_in(&third, "verify-email")).await.unwrap();
    let me = lena.own_profile().await.unwrap();
    assert!(me.profile.emails.iter().all(|e| e.verified), "{:?}", me.profile.emails);

    // An address removed before its link is followed is not verified by it.
    lena.update_own_profile(&add(serde_json::json!(["lena@example.org", "lena@work.example", "old@example.org"]))).await.unwrap();
    let fourth = sink.wait_for(4).await[3].clone();
    lena.update_own_profile(&add(serde_json::json!(["lena@example.org", "lena@work.example"]))).await.unwrap();
    assert_eq!(code(&server.anonymous().verify_email(&token_in(&fourth, "verify-email")).await.unwrap_err()), "token.invalid");

    let events =
        server.sysadmin().await.audit(&AuditQuery { action: Some("user.email.verify".into()), ..Default::default() }).await.unwrap();
    assert_eq!(events.items.len(), 2);
    assert!(events.items.iter().all(|e| e.details["client"] == "127.0.0.1" && e.target_name.as_deref() == Some("lena")));
}

/// Two nodes on one PostgreSQL database share the mail queue: every mail is sent exactly once
/// whichever node takes it, and a database dump holds none of the links' tokens.
#[tokio::test]
async fn two_nodes_send_each_mail_once_and_the_dump_holds_no_token() {
    let sink = SmtpSink::start();
    let db = PgDatabase::create("mail_nodes");
    let url = db.url();
    let node = |url: String| {
        let sink = &sink;
        async move {
            TestServer::start_with(|c| {
                sink.configure(c);
                c.database.url = url;
            })
            .await
        }
    };
    let a = node(url.clone()).await;
    let b = node(url.clone()).await;
    // One session of idm_admin, used on both nodes (recovering the account twice would end it).
    let token = a.token_for("idm_admin").await;
    let (idm_a, idm_b) = (a.anonymous().with_bearer(&token), b.anonymous().with_bearer(&token));
    // Both nodes queue, and both send (each wakes on its own queueing and polls every second).
    let emails = |node: &str| (0..15).map(|i| format!("{node}{i}@example.org")).collect::<Vec<_>>();
    let (to_a, to_b) = (
        CreateInvitations { emails: emails("a"), ..CreateInvitations::default() },
        CreateInvitations { emails: emails("b"), ..CreateInvitations::default() },
    );
    let (ra, rb) = tokio::join!(idm_a.create_invitations(&to_a), idm_b.create_invitations(&to_b));
    ra.unwrap();
    rb.unwrap();
    let messages = sink.wait_for(30).await;
    tokio::time::sleep(StdDuration::from_millis(2500)).await;
    let messages_now = sink.messages();
    assert_eq!(messages_now.len(), 30, "each mail once");
    let mut recipients: Vec<String> = messages.iter().filter_map(|m| header(m, "To").map(str::to_owned)).collect();
    recipients.sort();
    recipients.dedup();
    assert_eq!(recipients.len(), 30);

    let dump = std::process::Command::new("pg_dump").arg("--data-only").arg(&url).output().expect("pg_dump");
    assert!(dump.status.success(), "{}", String::from_utf8_lossy(&dump.stderr));
    let dump = String::from_utf8_lossy(&dump.stdout);
    assert!(dump.contains("a0@example.org"), "the dump holds the queue");
    for message in &messages_now {
        let token = token_in(message, "register");
        assert!(!dump.contains(&token), "a token in the database dump");
    }
}
