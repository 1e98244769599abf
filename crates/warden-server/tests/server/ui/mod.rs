//! The web UI end to end: Debian's Chromium, headless, driven through chromedriver
//! ([`webdriver`]) against a real in-process `wardend`, as a person uses it: typing into the
//! pages' inputs, pressing their buttons, following their redirects, reading what they say.
//! The API (through `warden-client`) sets up what a test needs and checks what a page did.
//!
//! The server is reached as `http://localhost:PORT`: WebAuthn needs a secure context and an
//! origin the relying party names, and `localhost` is both (the public URL derives the rp id
//! and the origin). Screenshots of the main pages land in `target/ui-screenshots/`.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (`scripts/browser-up.sh`) and pyotp
//! (`scripts/smtp-up.sh`).

mod account;
mod admin;
mod forced;
mod headers;
mod oidc;
mod onboarding;
mod sign_in;
pub mod webdriver;

use std::path::{Path, PathBuf};
use std::time::Instant;

use warden_server::config::Config;

use self::webdriver::{Browser, button};
use crate::api::TestServer;

pub const PASSWORD: &str = "correct horse battery";

/// A server on `localhost` at a known port, and a browser pointed at it.
pub struct Site {
    pub server: TestServer,
    /// `http://localhost:PORT`
    pub url: String,
    /// Where the server writes mail (one `.eml` file each).
    pub outbox: PathBuf,
    pub browser: Browser,
}

impl Site {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A server configured by `tweak` on a free port (tried again on another if the port was
    /// taken meanwhile), and a fresh browser.
    pub async fn start_with(tweak: impl Fn(&mut Config)) -> Self {
        for _ in 0..5 {
            let port = webdriver::free_port();
            let url = format!("http://localhost:{port}");
            let mut outbox = PathBuf::new();
            let started = TestServer::try_start_with(|c| {
                c.server.listen = ([127, 0, 0, 1], port).into();
                c.server.public_url = Some(url.clone());
                outbox.clone_from(&c.mail.outbox_dir);
                tweak(c);
            })
            .await;
            match started {
                Ok(server) => {
                    let browser = Browser::start(&url).await;
                    return Self { server, url, outbox, browser };
                }
                Err(e) if e.to_string().contains("cannot listen") => {}
                Err(e) => panic!("the server did not start: {e:#}"),
            }
        }
        panic!("no free port for the server in five tries");
    }

    /// Signs `name` in with `password` on `/login` (no second factor) and waits for `/`.
    pub async fn sign_in(&self, name: &str, password: &str) {
        let b = &self.browser;
        b.open("/login").await;
        b.fill("#name", name).await;
        b.fill("#password", password).await;
        b.click(&button("Sign in")).await;
        b.wait_for_path("/").await;
        b.wait_for_text("header .who", name).await;
    }

    /// Confirms the password on `/reauth`, and waits for the browser to be back: where the
    /// page that sent it there asked (its `rd`), else at `back` (opening `/reauth?rd=BACK`).
    pub async fn elevate(&self, password: &str, back: &str) {
        let b = &self.browser;
        let here = b.path().await;
        let back = if let Some(rd) = here.strip_prefix("/reauth?rd=") {
            query_unescape(rd.split('&').next().unwrap_or_default())
        } else {
            b.open(&format!("/reauth?rd={}", query_escape(back))).await;
            back.to_owned()
        };
        b.fill("#password", password).await;
        b.click(&button("Confirm")).await;
        b.wait_for_path(back.split('?').next().unwrap_or_default()).await;
        b.wait_for_text("header .who", "elevated").await;
    }

    /// Presses the navigation's "Sign out" and waits for the page that says so.
    pub async fn sign_out(&self) {
        let b = &self.browser;
        b.click(&format!("//header//form[@action='/logout']{}", button("Sign out"))).await;
        b.wait_for_text("main", "You are signed out.").await;
        assert_eq!(b.cookie("warden_session").await, None, "the session cookie is gone");
    }

    /// The mails in the outbox, oldest first, waited for until there are `n`.
    pub async fn mails(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + webdriver::WAIT;
        loop {
            let mails = read_outbox(&self.outbox);
            if mails.len() >= n {
                return mails;
            }
            assert!(Instant::now() < deadline, "{} of {n} mails in {}", mails.len(), self.outbox.display());
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    /// The first link to `{url}/{page}?token=…` in `mail`, as a path the browser opens.
    pub fn link_in(&self, mail: &str, page: &str) -> String {
        let text = crate::mail::decoded(mail);
        let prefix = format!("{}/{page}?token=", self.url);
        let start = text.find(&prefix).unwrap_or_else(|| panic!("no {prefix} link in {text}")) + prefix.len();
        let token: String = text[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        format!("/{page}?token={token}")
    }
}

fn read_outbox(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> =
        entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "eml")).collect();
    files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    files.iter().filter_map(|p| std::fs::read_to_string(p).ok()).collect()
}

/// `text` escaped for a query string's value.
pub fn query_escape(text: &str) -> String {
    text.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// A query string's value decoded (`%XX` and `+`).
fn query_unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = text.get(i + 1..i + 3).and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[i], escaped) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
                continue;
            }
            (b'+', _) => out.push(b' '),
            (byte, _) => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
