//! Issue 14's second factors: TOTP (codes from pyotp, an implementation other than Warden's)
//! and backup codes, the sign-in step that asks for them, their lock, re-authentication, HTTP
//! Basic refused, and the sign-in page's second step.

use std::path::PathBuf;
use std::process::Command;

use time::Duration;
use warden_client::{AuditQuery, Client, ClientError};
use warden_core::api::{BeginTotp, LoginOutcome, SecondFactorAnswer, SecondFactorRequired};
use warden_core::credential::Secret;
use warden_server::clock::Clock;

use crate::api::{PgDatabase, TestServer, user};

const PASSWORD: &str = "correct horse battery";

fn code(e: &ClientError) -> &str {
    e.code()
}

/// The TOTP code of `secret` at unix time `at`, computed by pyotp.
pub fn pyotp(secret: &str, at: i64, digits: u32, digest: &str) -> String {
    let venv = std::env::var("WARDEN_VENV")
        .map_or_else(|_| PathBuf::from(std::env::var("HOME").expect("HOME")).join(".cache/warden-venv"), PathBuf::from);
    let python = venv.join("bin/python");
    assert!(python.exists(), "{} is missing: run scripts/smtp-up.sh (CI does)", python.display());
    let script = format!("import hashlib, pyotp; print(pyotp.TOTP('{secret}', digits={digits}, digest=hashlib.{digest}).at({at}))");
    let out = Command::new(python).args(["-c", &script]).output().expect("run pyotp");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Reads the QR code of an enrolment's SVG with rqrr (a decoder other than the encoder Warden
/// uses), after checking the document is inert: no script, no reference to fetch. The SVG's
/// one path is rectangles (`M x y h w v h H x V y`), drawn here into a bitmap.
fn read_qr(svg: &str) -> String {
    assert!(svg.contains("<svg") && svg.ends_with("</svg>"), "{svg}");
    for inert in ["<script", "href", "onload", "url("] {
        assert!(!svg.contains(inert), "{inert} in {svg}");
    }
    let number = |s: &str, key: &str| -> usize {
        let at = s.find(&format!("{key}=\"")).unwrap() + key.len() + 2;
        s[at..].split('"').next().unwrap().parse().unwrap()
    };
    let (width, height) = (number(svg, "width"), number(svg, "height"));
    assert!(width >= 200 && height >= 200, "{width}x{height}");
    let mut pixels = vec![255u8; width * height];
    let path = svg.split(" d=\"").nth(1).unwrap().split('"').next().unwrap();
    for rect in path.split('M').filter(|r| !r.is_empty()) {
        let nums: Vec<usize> = rect.split(|c: char| !c.is_ascii_digit()).filter(|n| !n.is_empty()).map(|n| n.parse().unwrap()).collect();
        let (left, top, w, h) = (nums[0], nums[1], nums[2], nums[3]);
        for y in top..top + h {
            for x in left..left + w {
                pixels[y * width + x] = 0;
            }
        }
    }
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| pixels[y * width + x]);
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code");
    grids[0].decode().unwrap().1
}

/// A user signed in and elevated (a write window), and its client.
async fn person(server: &TestServer, name: &str) -> Client {
    server.idm().await.create_user(&user(name)).await.unwrap();
    let session = server.anonymous().login(name, PASSWORD).await.unwrap();
    let me = server.anonymous().with_bearer(session.token.expose());
    me.reauth(PASSWORD).await.unwrap();
    me
}

/// The pending sign-in a right password yields for an account with a second factor.
pub async fn second_step(server: &TestServer, name: &str) -> SecondFactorRequired {
    match server.anonymous().login_outcome(name, PASSWORD).await.unwrap() {
        LoginOutcome::SecondFactor(step) => step,
        LoginOutcome::Session(_) => panic!("{name} signed in with a password alone"),
    }
}

fn totp_answer(step: &SecondFactorRequired, code: &str) -> SecondFactorAnswer {
    SecondFactorAnswer { state: step.state.clone(), totp: Some(code.to_owned()), backup_code: None, passkey: None }
}

async fn totp_round_trip(server: &TestServer) {
    let now = || server.clock.now().unix_timestamp();
    // Unhappy paths first: a read-only session may not add a factor (a thief could lock the
    // owner out), nor may a service account.
    server.idm().await.create_user(&user("reader")).await.unwrap();
    let reader = server.anonymous().login("reader", PASSWORD).await.unwrap();
    let reader = server.anonymous().with_bearer(reader.token.expose());
    assert_eq!(code(&reader.begin_totp(&BeginTotp::default()).await.unwrap_err()), "session.not_elevated");
    let bad = BeginTotp { algorithm: Some("MD5".into()), digits: None };
    let alice = person(server, "alice").await;
    assert_eq!(code(&alice.begin_totp(&bad).await.unwrap_err()), "validation");
    assert_eq!(code(&alice.begin_totp(&BeginTotp { algorithm: None, digits: Some(7) }).await.unwrap_err()), "validation");
    assert_eq!(code(&alice.confirm_totp("123456").await.unwrap_err()), "not_found", "nothing to confirm yet");

    let enrolment = alice.begin_totp(&BeginTotp::default()).await.unwrap();
    let secret = enrolment.secret.expose().to_owned();
    assert!(enrolment.otpauth_uri.expose().starts_with("otpauth://totp/") && enrolment.otpauth_uri.expose().contains(&secret));
    assert_eq!(read_qr(enrolment.qr_svg.expose()), enrolment.otpauth_uri.expose(), "the QR code says the URI");
    assert_eq!((enrolment.algorithm.as_str(), enrolment.digits), ("SHA1", 6));
    // Until confirmed, the password alone still signs in.
    assert!(matches!(server.anonymous().login_outcome("alice", PASSWORD).await.unwrap(), LoginOutcome::Session(_)));
    let wrong = if pyotp(&secret, now(), 6, "sha1") == "000000" { "111111" } else { "000000" };
    assert_eq!(code(&alice.confirm_totp(wrong).await.unwrap_err()), "validation");
    let status = alice.confirm_totp(&pyotp(&secret, now(), 6, "sha1")).await.unwrap();
    assert!(status.totp && !status.totp_pending);
    assert_eq!(code(&alice.begin_totp(&BeginTotp::default()).await.unwrap_err()), "totp.exists");

    // The password alone no longer signs in, nor do Basic credentials.
    let basic = server.anonymous().with_basic("alice", PASSWORD);
    assert_eq!(code(&basic.whoami().await.unwrap_err()), "auth.failed");
    let e = server.anonymous().login("alice", PASSWORD).await.unwrap_err();
    assert_eq!(code(&e), "auth.second_factor_required");
    // (Each password sign-in makes a new pending sign-in and ends the older one.)
    let step = second_step(server, "alice").await;
    assert_eq!((step.next.as_str(), step.methods.clone()), ("mfa", vec!["totp".to_owned()]));

    // The code of the step confirmed with was used: a replay fails; so do made-up states.
    assert_eq!(
        code(&server.anonymous().login_mfa(&totp_answer(&step, &pyotp(&secret, now(), 6, "sha1"))).await.unwrap_err()),
        "auth.failed"
    );
    let forged = SecondFactorAnswer { state: Secret::new("wdo_forged"), totp: Some("123456".into()), backup_code: None, passkey: None };
    assert_eq!(code(&server.anonymous().login_mfa(&forged).await.unwrap_err()), "token.invalid");
    let both = SecondFactorAnswer { backup_code: Some(Secret::new("x")), ..totp_answer(&step, "123456") };
    assert_eq!(code(&server.anonymous().login_mfa(&both).await.unwrap_err()), "validation");

    // One step later: the previous step's code is refused (used), the current one signs in once.
    server.clock.advance(Duration::seconds(30));
    let previous = pyotp(&secret, now() - 30, 6, "sha1");
    assert_eq!(code(&server.anonymous().login_mfa(&totp_answer(&step, &previous)).await.unwrap_err()), "auth.failed");
    let current = pyotp(&secret, now(), 6, "sha1");
    let session = server.anonymous().login_mfa(&totp_answer(&step, &current)).await.unwrap();
    assert_eq!(session.account.name.as_str(), "alice");
    assert_eq!(
        code(&server.anonymous().login_mfa(&totp_answer(&step, &current)).await.unwrap_err()),
        "token.invalid",
        "a pending sign-in is used once"
    );
    let step = second_step(server, "alice").await;
    assert_eq!(code(&server.anonymous().login_mfa(&totp_answer(&step, &current)).await.unwrap_err()), "auth.failed", "a code is used once");
    // The next step's code is accepted within the skew; one two steps ahead is not.
    let far = pyotp(&secret, now() + 60, 6, "sha1");
    assert_eq!(code(&server.anonymous().login_mfa(&totp_answer(&step, &far)).await.unwrap_err()), "auth.failed");
    let next = pyotp(&secret, now() + 30, 6, "sha1");
    let signed_in = server.anonymous().login_mfa(&totp_answer(&step, &next)).await.unwrap();

    // Re-authentication asks for the second factor again.
    let me = server.anonymous().with_bearer(signed_in.token.expose());
    assert_eq!(me.whoami().await.unwrap().auth_strength.as_deref(), Some("password+totp"), "the session says how it was made");
    assert_eq!(alice.whoami().await.unwrap().auth_strength.as_deref(), Some("password"));
    assert_eq!(code(&me.reauth(PASSWORD).await.unwrap_err()), "auth.second_factor_required");
    server.clock.advance(Duration::seconds(60));
    me.reauth_with_totp(PASSWORD, &pyotp(&secret, now(), 6, "sha1")).await.unwrap();

    // Backup codes: ten, each once; the use is audited with what remains.
    let codes = me.generate_backup_codes().await.unwrap().codes;
    assert_eq!(codes.len(), 10);
    let step = second_step(server, "alice").await;
    assert_eq!(step.methods, ["totp", "backup_code"]);
    let backup = |step: &SecondFactorRequired, c: &str| SecondFactorAnswer {
        state: step.state.clone(),
        totp: None,
        backup_code: Some(Secret::new(c)),
        passkey: None,
    };
    server.anonymous().login_mfa(&backup(&step, &codes[0].expose().to_uppercase())).await.unwrap();
    let step = second_step(server, "alice").await;
    assert_eq!(code(&server.anonymous().login_mfa(&backup(&step, codes[0].expose())).await.unwrap_err()), "auth.failed", "used");
    let admin = server.sysadmin().await;
    let used = admin.audit(&AuditQuery { action: Some("credential.backup_code.use".into()), ..Default::default() }).await.unwrap();
    assert_eq!(used.items[0].details["remaining"], 9);

    // Five wrong codes lock the second factor: the right code is refused until the lock ends.
    // (A right code clears the count: the used backup code above was one wrong.)
    let step = second_step(server, "alice").await;
    server.anonymous().login_mfa(&backup(&step, codes[1].expose())).await.unwrap();
    let step = second_step(server, "alice").await;
    let mut last = None;
    for _ in 0..4 {
        last = Some(server.anonymous().login_mfa(&totp_answer(&step, "000001")).await.unwrap_err());
    }
    assert_eq!(code(last.as_ref().unwrap()), "auth.failed");
    assert_eq!(
        code(&server.anonymous().login_mfa(&totp_answer(&step, "000001")).await.unwrap_err()),
        "auth.rate_limited",
        "the fifth locks"
    );
    server.clock.advance(Duration::seconds(30));
    let right = pyotp(&secret, now(), 6, "sha1");
    assert_eq!(code(&server.anonymous().login_mfa(&totp_answer(&step, &right)).await.unwrap_err()), "auth.rate_limited");
    server.clock.advance(Duration::minutes(16));
    let step = second_step(server, "alice").await;
    server.anonymous().login_mfa(&totp_answer(&step, &pyotp(&secret, now(), 6, "sha1"))).await.unwrap();
    let failures = admin.audit(&AuditQuery { action: Some("auth.second_factor.failed".into()), ..Default::default() }).await.unwrap();
    assert!(failures.items.iter().any(|e| e.details.get("locked_until").is_some()), "the lock is audited");

    // A lost device: an administrator removes every factor (a person without the right may
    // not), and the password alone signs in again.
    let mallory = person(server, "mallory").await;
    assert_eq!(code(&mallory.reset_second_factors("alice").await.unwrap_err()), "forbidden");
    let idm = server.idm().await;
    assert_eq!(code(&idm.reset_second_factors("nobody").await.unwrap_err()), "not_found");
    assert_eq!(code(&idm.reset_second_factors("mallory").await.unwrap_err()), "not_found", "mallory has none");
    // Removing it needs a write window, and brings back the password alone (with backup codes
    // left, those still ask).
    assert_eq!(code(&reader.remove_totp().await.unwrap_err()), "session.not_elevated");
    assert_eq!(code(&me.remove_totp().await.unwrap_err()), "session.not_elevated", "its write window has closed");
    server.clock.advance(Duration::seconds(30));
    me.reauth_with_totp(PASSWORD, &pyotp(&secret, now(), 6, "sha1")).await.unwrap();
    me.remove_totp().await.unwrap();
    assert_eq!(second_step(server, "alice").await.methods, ["backup_code"]);
    idm.reset_second_factors("alice").await.unwrap();
    assert!(matches!(server.anonymous().login_outcome("alice", PASSWORD).await.unwrap(), LoginOutcome::Session(_)));
    let resets = admin.audit(&AuditQuery { action: Some("credential.second_factors.reset".into()), ..Default::default() }).await.unwrap();
    assert_eq!(resets.items[0].actor_name.as_deref(), Some("idm_admin"));
}

#[tokio::test]
async fn totp_and_backup_codes_guard_the_sign_in() {
    let server = TestServer::start().await;
    totp_round_trip(&server).await;
}

#[tokio::test]
async fn totp_and_backup_codes_guard_the_sign_in_on_postgres() {
    let db = PgDatabase::create("totp");
    let url = db.url();
    let server = TestServer::start_with(|c| c.database.url = url).await;
    totp_round_trip(&server).await;
}

/// SHA-256 with 8 digits, as some tokens are set up.
#[tokio::test]
async fn sha256_and_eight_digits() {
    let server = TestServer::start().await;
    let bob = person(&server, "bob").await;
    let enrolment = bob.begin_totp(&BeginTotp { algorithm: Some("sha256".into()), digits: Some(8) }).await.unwrap();
    assert!(enrolment.otpauth_uri.expose().contains("algorithm=SHA256") && enrolment.otpauth_uri.expose().contains("digits=8"));
    let now = server.clock.now().unix_timestamp();
    bob.confirm_totp(&pyotp(enrolment.secret.expose(), now, 8, "sha256")).await.unwrap();
    server.clock.advance(Duration::seconds(30));
    let step = second_step(&server, "bob").await;
    let code8 = pyotp(enrolment.secret.expose(), now + 30, 8, "sha256");
    assert_eq!(code8.len(), 8);
    server.anonymous().login_mfa(&totp_answer(&step, &code8)).await.unwrap();
}

/// The sign-in page asks for the code after the password, and only then sets the cookie.
#[tokio::test]
async fn the_sign_in_page_asks_for_the_second_factor() {
    const PUBLIC: &str = "http://127.0.0.1";
    let server = TestServer::start_with(|c| {
        c.forward_auth.enabled = true;
        c.server.public_url = Some(PUBLIC.into());
    })
    .await;
    let carol = person(&server, "carol").await;
    let enrolment = carol.begin_totp(&BeginTotp::default()).await.unwrap();
    let secret = enrolment.secret.expose().to_owned();
    carol.confirm_totp(&pyotp(&secret, server.clock.now().unix_timestamp(), 6, "sha1")).await.unwrap();
    server.clock.advance(Duration::seconds(30));

    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = http.get(format!("{}/login", server.url)).send().await.unwrap();
    let csrf_cookie = page.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let text = page.text().await.unwrap();
    let csrf = text.split("name=\"csrf\" value=\"").nth(1).and_then(|r| r.split('"').next()).unwrap().to_owned();
    let post = |path: &str, body: String| {
        http.post(format!("{}{path}", server.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("cookie", csrf_cookie.clone())
            .header("origin", PUBLIC)
            .body(body)
            .send()
    };
    let first = post("/login", format!("name=carol&password=correct+horse+battery&csrf={csrf}")).await.unwrap();
    assert_eq!(first.status(), 200);
    assert!(first.headers().get("set-cookie").is_none(), "no session before the second factor");
    let text = first.text().await.unwrap();
    assert!(text.contains("Second factor") && text.contains("one-time-code"), "{text}");
    let state = text.split("name=\"state\" value=\"").nth(1).and_then(|r| r.split('"').next()).unwrap().to_owned();
    let wrong = post("/login/mfa", format!("state={state}&code=000002&csrf={csrf}")).await.unwrap();
    assert_eq!(wrong.status(), 401);
    let code = pyotp(&secret, server.clock.now().unix_timestamp(), 6, "sha1");
    let done = post("/login/mfa", format!("state={state}&code={code}&csrf={csrf}")).await.unwrap();
    assert_eq!(done.status(), 303);
    let cookie = done.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("warden_session=wds_"), "{cookie}");
    // Without the page's CSRF token the second step is refused.
    let forged = http
        .post(format!("{}/login/mfa", server.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("state={state}&code={code}"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
}

/// Issue 14's brute force: 1,000 wrong passwords against one account from one address, then
/// 1,000 from rotating addresses (through a trusted proxy's `X-Forwarded-For`), then 100 wrong
/// TOTP codes after the right password. The account and its factor lock, the right credentials
/// are refused while locked, and a made-up account gets exactly the same answers. Prints how
/// many guesses were evaluated (not refused outright) per phase.
#[tokio::test]
async fn brute_force_locks_and_tells_nothing() {
    let server = TestServer::start_with(|c| {
        c.server.behind_proxy = true;
        c.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let alice = person(&server, "alice").await;
    let enrolment = alice.begin_totp(&BeginTotp::default()).await.unwrap();
    let secret = enrolment.secret.expose().to_owned();
    alice.confirm_totp(&pyotp(&secret, server.clock.now().unix_timestamp(), 6, "sha1")).await.unwrap();

    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/auth/login", server.url);
    let attempt = |name: &'static str, password: &'static str, from: String| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let r = http
                .post(url)
                .header("x-forwarded-for", from)
                .json(&serde_json::json!({ "name": name, "password": password }))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap();
            (status, body["code"].as_str().unwrap_or("").to_owned())
        }
    };
    let tally = |answers: &[(u16, String)]| {
        let mut counts = std::collections::BTreeMap::new();
        for a in answers {
            *counts.entry(a.clone()).or_insert(0) += 1;
        }
        counts
    };
    // Phase 1: one address.
    for name in ["alice", "nobody"] {
        let mut answers = Vec::new();
        for _ in 0..1000 {
            answers.push(attempt(name, "a wrong guess", "203.0.113.5".into()).await);
        }
        let counts = tally(&answers);
        let evaluated = counts.get(&(401, "auth.failed".to_owned())).copied().unwrap_or(0);
        println!("one address, {name}: {evaluated} of 1000 guesses evaluated, the rest refused outright: {counts:?}");
        assert!(evaluated <= 5, "{counts:?}");
        assert_eq!(attempt(name, "correct horse battery", "203.0.113.5".into()).await.0, 429, "locked, the right password too");
    }
    // Phase 2: rotating addresses, each behind the trusted proxy.
    let mut per_name = Vec::new();
    for name in ["alice", "nobody"] {
        let mut answers = Vec::new();
        for i in 0..1000u32 {
            answers.push(attempt(name, "a wrong guess", format!("198.18.{}.{}", i / 250, i % 250 + 1)).await);
        }
        let counts = tally(&answers);
        let evaluated = counts.get(&(401, "auth.failed".to_owned())).copied().unwrap_or(0);
        println!("rotating addresses, {name}: {evaluated} of 1000 guesses evaluated: {counts:?}");
        assert!(evaluated <= 200, "the per-name limit holds across addresses: {counts:?}");
        assert_eq!(attempt(name, "correct horse battery", "192.0.2.77".into()).await.0, 429, "locked from a fresh address too");
        per_name.push(counts);
    }
    assert_eq!(per_name[0], per_name[1], "a real and a made-up account answer alike");

    // Phase 3: past the lock, the right password; then 100 wrong codes.
    server.clock.advance(Duration::days(2));
    let step = second_step(&server, "alice").await;
    let mut codes = Vec::new();
    for _ in 0..100 {
        let e = server.anonymous().login_mfa(&totp_answer(&step, "000003")).await.unwrap_err();
        codes.push(code(&e).to_owned());
    }
    let evaluated = codes.iter().filter(|c| c.as_str() == "auth.failed").count();
    println!("second factor: {evaluated} of 100 codes evaluated before the lock");
    assert_eq!(evaluated, 4, "the fifth wrong code locks");
    assert!(codes[4..].iter().all(|c| c == "auth.rate_limited"));
    let right = pyotp(&secret, server.clock.now().unix_timestamp() + 30, 6, "sha1");
    assert_eq!(code(&server.anonymous().login_mfa(&totp_answer(&step, &right)).await.unwrap_err()), "auth.rate_limited");
}
