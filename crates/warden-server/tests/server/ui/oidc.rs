//! Signing in to an application through Warden's OpenID Connect provider, in Chromium: the
//! application (a listener on the loopback interface) sends the browser to `/oidc/authorize`;
//! the person signs in on `/login`, allows the application on the consent page, and lands back
//! at the application with a code, under the pages' CSP (whose `form-action` names Warden
//! alone: the last hop to the application is a page that navigates, not a form's redirect);
//! disconnects it on the Applications page; then signs out through the application.

use std::time::Instant;

use base64::Engine;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use warden_core::api::CreateOidcClient;

use super::webdriver::{WAIT, button, free_port};
use super::{PASSWORD, Site};
use crate::api::user;

/// A stand-in application on `127.0.0.1:PORT`: every request gets a small page.
async fn application() -> String {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", free_port())).await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                let _ = socket.read(&mut buf).await;
                let body = "<!doctype html><title>The App</title><h1>Back at the application</h1>";
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(reply.as_bytes()).await;
            });
        }
    });
    url
}

async fn wait_for_url(site: &Site, prefix: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let url = site.browser.url().await;
        if url.starts_with(prefix) {
            return url;
        }
        if Instant::now() > deadline {
            site.browser.fail(&format!("the browser did not arrive at {prefix}")).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn param(url: &str, name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(url.split_once('?').map_or("", |(_, q)| q)).unwrap();
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

#[tokio::test]
async fn signs_in_to_an_application_and_out_again() {
    let site = Site::start().await;
    let server = &site.server;
    let app = application().await;
    server.idm().await.create_user(&user("alice")).await.unwrap();
    let created = server
        .sysadmin()
        .await
        .create_oidc_client(&CreateOidcClient {
            client_id: "the-app".into(),
            display_name: Some("The App".into()),
            redirect_uris: vec![format!("{app}/cb")],
            post_logout_redirect_uris: vec![format!("{app}/bye")],
            ..CreateOidcClient::default()
        })
        .await
        .unwrap();
    let secret = created.client_secret.unwrap().expose().to_owned();
    let verifier = "a-browser-flow-verifier-0123456789-abcdefghijklmn";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let query = serde_urlencoded::to_string([
        ("response_type", "code"),
        ("client_id", "the-app"),
        ("redirect_uri", &format!("{app}/cb")),
        ("scope", "openid profile"),
        ("state", "from-the-app"),
        ("nonce", "n-0"),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ])
    .unwrap();
    let b = &site.browser;

    // Not signed in: Warden's sign-in page, then the consent page, then the application.
    b.open(&format!("/oidc/authorize?{query}")).await;
    b.wait_for_path("/login").await;
    b.fill("#name", "alice").await;
    b.fill("#password", PASSWORD).await;
    b.click(&button("Sign in")).await;
    b.wait_for_text("main", "asks to sign you in").await;
    b.screenshot("oidc-consent").await;
    b.click(&button("Allow")).await;
    let landed = wait_for_url(&site, &format!("{app}/cb")).await;
    assert_eq!(param(&landed, "state").as_deref(), Some("from-the-app"));
    let code = param(&landed, "code").expect("a code");
    let form = serde_urlencoded::to_string([
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", &format!("{app}/cb")),
        ("code_verifier", verifier),
    ])
    .unwrap();
    // What the application posts to the provider, as itself.
    let post = |endpoint: &str, form: String| {
        let request = crate::forward_auth::http()
            .post(format!("{}/oidc/{endpoint}", site.url))
            .basic_auth("the-app", Some(&secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form);
        async move { request.send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
    };
    let tokens = post("token", form).await;
    let id_token = tokens["id_token"].as_str().expect("an ID token").to_owned();

    // Signed in and allowed before: straight back to the application.
    b.open(&format!("/oidc/authorize?{}", query.replace("from-the-app", "again"))).await;
    let landed = wait_for_url(&site, &format!("{app}/cb")).await;
    assert_eq!(param(&landed, "state").as_deref(), Some("again"));

    // The person disconnects the application on the Applications page: its access token stops
    // passing introspection, and its next sign-in asks for consent again.
    let access_token = tokens["access_token"].as_str().expect("an access token").to_owned();
    b.open("/account/applications").await;
    b.wait_for_text("main", "The App").await;
    b.screenshot("oidc-applications").await;
    b.click(&button("Disconnect")).await;
    b.wait_for_text("main", "No applications.").await;
    let introspected = post("introspect", format!("token={access_token}")).await;
    assert_eq!(introspected["active"], false, "disconnected: {introspected}");
    b.open(&format!("/oidc/authorize?{}", query.replace("from-the-app", "asked-again"))).await;
    b.wait_for_text("main", "asks to sign you in").await;
    b.click(&button("Allow")).await;
    let landed = wait_for_url(&site, &format!("{app}/cb")).await;
    assert_eq!(param(&landed, "state").as_deref(), Some("asked-again"));

    // The application signs the person out; Warden sends them back to it, signed out.
    let logout = serde_urlencoded::to_string([
        ("id_token_hint", id_token.as_str()),
        ("post_logout_redirect_uri", &format!("{app}/bye")),
        ("state", "bye"),
    ])
    .unwrap();
    b.open(&format!("/oidc/logout?{logout}")).await;
    let landed = wait_for_url(&site, &format!("{app}/bye")).await;
    assert_eq!(param(&landed, "state").as_deref(), Some("bye"));
    b.open("/").await;
    b.wait_for_path("/login").await;

    // Without a hint, Warden asks first; confirming goes back to the application.
    site.sign_in("alice", PASSWORD).await;
    b.open(&format!("/oidc/logout?client_id=the-app&post_logout_redirect_uri={}", super::query_escape(&format!("{app}/bye")))).await;
    b.wait_for_text("main", "asks you to sign out").await;
    b.click(&button("Sign out")).await;
    wait_for_url(&site, &format!("{app}/bye")).await;
    assert_eq!(b.cookie("warden_session").await, None, "signed out");
}
