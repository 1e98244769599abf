//! A small W3C WebDriver client: enough of the protocol (JSON over HTTP) to drive Debian's
//! Chromium through its chromedriver as a person would, typing and clicking, plus the WebAuthn
//! extension's virtual authenticator for passkeys. Written here rather than taken from a
//! crate: the tests need a dozen commands, and each is one request.
//!
//! Every wait is a bounded poll ([`WAIT`]); a failure panics with the page's address and the
//! start of its main content, so that a red test says what the browser showed.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

/// How long an element, a page or a text is waited for.
pub const WAIT: Duration = Duration::from_secs(10);
const POLL: Duration = Duration::from_millis(100);
/// The key under which WebDriver names an element.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A refused command: WebDriver's error code (`no such element`, …) and message.
#[derive(Debug)]
pub struct Refused {
    pub error: String,
    pub message: String,
}

/// A headless Chromium, its chromedriver (a child process, ended on drop) and one session.
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`
    session: String,
    driver_port: u16,
    session_id: String,
    /// Where relative paths lead: `http://localhost:PORT`.
    site: String,
    driver: Child,
    profile: tempfile::TempDir,
}

/// An element of the page the browser shows.
pub struct Element<'b> {
    browser: &'b Browser,
    id: String,
}

/// A free loopback port (bound, read and released: another process may take it meanwhile,
/// which callers survive by trying again).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// How a selector finds elements: an XPath when it starts with `/` or `(`, else CSS.
fn locator(selector: &str) -> Value {
    let using = if selector.starts_with('/') || selector.starts_with('(') { "xpath" } else { "css selector" };
    json!({ "using": using, "value": selector })
}

/// An XPath selector for the button whose text is `text`.
pub fn button(text: &str) -> String {
    format!("//button[normalize-space(.)='{text}']")
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium session with a fresh
    /// profile; relative paths are opened under `site`.
    pub async fn start(site: &str) -> Self {
        let http = reqwest::Client::builder().timeout(Duration::from_mins(1)).build().unwrap();
        for _ in 0..5 {
            let port = free_port();
            let driver = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER} ({e}): run scripts/browser-up.sh"));
            let mut browser = Self {
                http: http.clone(),
                session: String::new(),
                driver_port: port,
                session_id: String::new(),
                site: site.trim_end_matches('/').to_owned(),
                driver,
                profile: tempfile::tempdir().unwrap(),
            };
            if !browser.driver_ready().await {
                continue; // dropped: the driver is killed, and another port tried
            }
            browser.new_session().await;
            return browser;
        }
        panic!("chromedriver did not start on any of five ports");
    }

    /// Polls the driver's `/status` until it answers ready; `false` when it exited (its port
    /// was taken) or never got ready.
    async fn driver_ready(&mut self) -> bool {
        let deadline = Instant::now() + WAIT;
        let status = format!("http://127.0.0.1:{}/status", self.driver_port);
        while Instant::now() < deadline {
            if self.driver.try_wait().ok().flatten().is_some() {
                return false;
            }
            if let Ok(r) = self.http.get(&status).send().await
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                return true;
            }
            tokio::time::sleep(POLL).await;
        }
        false
    }

    async fn new_session(&mut self) {
        let profile = format!("--user-data-dir={}", self.profile.path().display());
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                    profile, "--window-size=1280,900",
                ],
            },
        }}});
        let url = format!("http://127.0.0.1:{}/session", self.driver_port);
        let reply: Value = self.http.post(&url).json(&capabilities).send().await.unwrap().json().await.unwrap();
        let id = reply["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no WebDriver session: {reply}"));
        id.clone_into(&mut self.session_id);
        self.session = format!("{url}/{id}");
    }

    /// One command: `method` on `path` (under the session), with `body` for a POST.
    pub async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, Refused> {
        let url = format!("{}{path}", self.session);
        let request = self.http.request(method.clone(), &url);
        let request = match body {
            Some(body) => request.json(&body),
            None if method == reqwest::Method::POST => request.json(&json!({})),
            None => request,
        };
        let response = request.send().await.unwrap_or_else(|e| panic!("chromedriver: {method} {path}: {e}"));
        let ok = response.status().is_success();
        let reply: Value = response.json().await.unwrap_or_else(|e| panic!("chromedriver: {method} {path}: {e}"));
        let value = reply.get("value").cloned().unwrap_or(Value::Null);
        if ok {
            Ok(value)
        } else {
            let text = |key: &str| value[key].as_str().unwrap_or_default().to_owned();
            Err(Refused { error: text("error"), message: text("message") })
        }
    }

    async fn get(&self, path: &str) -> Value {
        self.command(reqwest::Method::GET, path, None).await.unwrap_or_else(|e| panic!("GET {path}: {e:?}"))
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.command(reqwest::Method::POST, path, Some(body)).await.unwrap_or_else(|e| panic!("POST {path}: {e:?}"))
    }

    // --- pages ----------------------------------------------------------------------------------

    /// Opens `path` of the site (or an absolute URL).
    pub async fn open(&self, path: &str) {
        let url = if path.starts_with("http") { path.to_owned() } else { format!("{}{path}", self.site) };
        self.post("/url", json!({ "url": url })).await;
    }

    pub async fn url(&self) -> String {
        self.get("/url").await.as_str().unwrap_or_default().to_owned()
    }

    /// The path and query the browser shows, without the site.
    pub async fn path(&self) -> String {
        let url = self.url().await;
        url.strip_prefix(&self.site).map_or(url.clone(), str::to_owned)
    }

    pub async fn source(&self) -> String {
        self.get("/source").await.as_str().unwrap_or_default().to_owned()
    }

    /// Panics with `what`, the page's address and the start of its main content.
    pub async fn fail(&self, what: &str) -> ! {
        let source = self.source().await;
        let main = source.find("<main").map_or(source.as_str(), |at| &source[at..]);
        let snippet: String = main.chars().take(2000).collect();
        panic!("{what}\n  at {}\n  page: {snippet}", self.url().await);
    }

    /// Waits until the browser shows `path` (and any query), e.g. after a form's redirect.
    pub async fn wait_for_path(&self, path: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let now = self.path().await;
            if now.split('?').next() == Some(path) {
                return;
            }
            if Instant::now() > deadline {
                self.fail(&format!("the browser did not arrive at {path}")).await;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page, synchronously.
    pub async fn script(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args })).await
    }

    /// Saves a PNG of the window as `target/ui-screenshots/NAME.png` in the workspace.
    pub async fn screenshot(&self, name: &str) {
        let png = self.get("/screenshot").await;
        let png = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap_or_default()).unwrap();
        let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/ui-screenshots"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    /// The browser's cookie `name` for the site, if it holds one.
    pub async fn cookie(&self, name: &str) -> Option<String> {
        let cookies = self.get("/cookie").await;
        cookies.as_array()?.iter().find(|c| c["name"] == name).and_then(|c| c["value"].as_str()).map(str::to_owned)
    }

    /// Adds a virtual CTAP2 authenticator with resident keys and user verification that
    /// consents to everything: a platform passkey provider without a person at it.
    pub async fn add_virtual_authenticator(&self) -> String {
        let options = json!({
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": true,
            "hasUserVerification": true, "isUserVerified": true, "isUserConsenting": true,
        });
        self.post("/webauthn/authenticator", options).await.as_str().unwrap().to_owned()
    }

    /// The credentials the virtual authenticator `id` holds.
    pub async fn authenticator_credentials(&self, id: &str) -> Vec<Value> {
        self.get(&format!("/webauthn/authenticator/{id}/credentials")).await.as_array().cloned().unwrap_or_default()
    }

    // --- elements -------------------------------------------------------------------------------

    /// The elements `selector` matches now (none is no error).
    pub async fn find_all(&self, selector: &str) -> Vec<Element<'_>> {
        match self.command(reqwest::Method::POST, "/elements", Some(locator(selector))).await {
            Ok(Value::Array(found)) => {
                found.iter().filter_map(|e| e[ELEMENT].as_str()).map(|id| Element { browser: self, id: id.to_owned() }).collect()
            }
            _ => Vec::new(),
        }
    }

    /// The first element `selector` matches, waited for.
    pub async fn find(&self, selector: &str) -> Element<'_> {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(found) = self.command(reqwest::Method::POST, "/element", Some(locator(selector))).await
                && let Some(id) = found[ELEMENT].as_str()
            {
                return Element { browser: self, id: id.to_owned() };
            }
            if Instant::now() > deadline {
                self.fail(&format!("no element {selector}")).await;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until `selector` matches exactly `n` elements (a page reloaded by a post shows
    /// the old count until it has loaded).
    pub async fn wait_for_count(&self, selector: &str, n: usize) {
        let deadline = Instant::now() + WAIT;
        loop {
            let found = self.find_all(selector).await.len();
            if found == n {
                return;
            }
            if Instant::now() > deadline {
                self.fail(&format!("{found} elements {selector}, not {n}")).await;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Empties the input `selector` and types `text` into it.
    pub async fn fill(&self, selector: &str, text: &str) {
        let input = self.find(selector).await;
        input.clear().await;
        input.send_keys(text).await;
    }

    /// Clicks `selector` once it is there and can be clicked (a form the script shows is
    /// `hidden` until then).
    pub async fn click(&self, selector: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let refused = match self.find_all(selector).await.into_iter().next() {
                Some(element) => match element.try_click().await {
                    Ok(()) => return,
                    Err(e) => format!("{}: {}", e.error, e.message),
                },
                None => "no such element".to_owned(),
            };
            if Instant::now() > deadline {
                self.fail(&format!("cannot click {selector}: {refused}")).await;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The text of `selector` (waited for).
    pub async fn text(&self, selector: &str) -> String {
        self.find(selector).await.text().await
    }

    /// Waits until `selector`'s text contains `needle`; returns the text.
    pub async fn wait_for_text(&self, selector: &str, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            for element in self.find_all(selector).await {
                if let Some(text) = element.try_text().await
                    && text.contains(needle)
                {
                    return text;
                }
            }
            if Instant::now() > deadline {
                self.fail(&format!("no {selector} says {needle:?}")).await;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Ends the session and chromedriver (also done on drop).
    pub fn quit(&mut self) {
        if !self.session_id.is_empty() {
            // Drop cannot await: a blocking DELETE over a plain socket, so that chromedriver
            // ends the browser it started rather than leaving it behind.
            let request = format!(
                "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.session_id, self.driver_port
            );
            if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.driver_port)) {
                let _ = stream.set_read_timeout(Some(WAIT));
                let _ = stream.write_all(request.as_bytes());
                let _ = stream.read_to_end(&mut Vec::new());
            }
            self.session_id.clear();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.quit();
    }
}

impl Element<'_> {
    fn path(&self, command: &str) -> String {
        format!("/element/{}/{command}", self.id)
    }

    async fn try_click(&self) -> Result<(), Refused> {
        self.browser.command(reqwest::Method::POST, &self.path("click"), None).await.map(|_| ())
    }

    pub async fn clear(&self) {
        self.browser.post(&self.path("clear"), json!({})).await;
    }

    pub async fn send_keys(&self, text: &str) {
        self.browser.post(&self.path("value"), json!({ "text": text })).await;
    }

    async fn try_text(&self) -> Option<String> {
        self.browser.command(reqwest::Method::GET, &self.path("text"), None).await.ok()?.as_str().map(str::to_owned)
    }

    /// The element's rendered text.
    pub async fn text(&self) -> String {
        self.browser.get(&self.path("text")).await.as_str().unwrap_or_default().to_owned()
    }

    /// An attribute's or property's value.
    pub async fn property(&self, name: &str) -> Value {
        self.browser.get(&self.path(&format!("property/{name}"))).await
    }
}
