//! The OpenID Connect provider end to end, driven over HTTP as a relying party and a browser
//! would: the code flow with PKCE and consent, refresh with rotation and reuse detection,
//! introspection, revocation, userinfo, RP-initiated logout and client credentials; and the
//! bad paths (wrong redirect URI, PKCE, secret, reused and expired codes, forged tokens, open
//! redirects through logout). PKCE challenges are computed here with sha2 and base64, not
//! with Warden's own code.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::Duration;
use warden_core::api::{CreateGroup, CreateOidcClient, CreateServiceAccount};

use crate::api::{PgDatabase, TestServer, user};
use crate::forward_auth::http;

pub const PUBLIC: &str = "https://id.example.test";
pub const CB: &str = "https://app.example.test/cb";
pub const BYE: &str = "https://app.example.test/bye";
const VERIFIER: &str = "a-verifier-of-enough-length-0123456789-abcdefghij";

/// A form body (this crate's reqwest is built without its `form` feature).
pub trait FormBody {
    fn form<T: serde::Serialize + ?Sized>(self, form: &T) -> Self;
}

impl FormBody for reqwest::RequestBuilder {
    fn form<T: serde::Serialize + ?Sized>(self, form: &T) -> Self {
        self.header("content-type", "application/x-www-form-urlencoded").body(serde_urlencoded::to_string(form).unwrap())
    }
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn challenge(verifier: &str) -> String {
    b64url(&Sha256::digest(verifier.as_bytes()))
}

pub fn claims_of(jwt: &str) -> Value {
    let body = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(body).unwrap()).unwrap()
}

/// Text back from an HTML attribute (askama escapes `"` as `&#34;`).
fn unescape(value: &str) -> String {
    value.replace("&#38;", "&").replace("&#34;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

fn query_of(url: &str) -> Vec<(String, String)> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    serde_urlencoded::from_str(query).unwrap()
}

pub fn param(url: &str, name: &str) -> Option<String> {
    query_of(url).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// A relying party and a browser against one node.
pub struct Rp {
    pub url: String,
    pub http: reqwest::Client,
    /// The browser's session cookie (`name=token`).
    pub cookie: Option<String>,
    pub secret: String,
}

impl Rp {
    fn authorize_query(extra: &[(&str, &str)]) -> String {
        let mut q: Vec<(&str, &str)> = vec![
            ("response_type", "code"),
            ("client_id", "app"),
            ("redirect_uri", CB),
            ("scope", "openid profile email"),
            ("state", "st-1"),
            ("nonce", "n-1"),
            ("code_challenge_method", "S256"),
        ];
        let ch = challenge(VERIFIER);
        q.push(("code_challenge", &ch));
        for (k, v) in extra {
            q.retain(|(key, _)| key != k);
            q.push((k, v));
        }
        serde_urlencoded::to_string(q).unwrap()
    }

    async fn authorize(&self, extra: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self.http.get(format!("{}/oidc/authorize?{}", self.url, Self::authorize_query(extra)));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        req.send().await.unwrap()
    }

    /// A code, through the consent page the first time.
    async fn code(&self) -> String {
        let location = self.browse(&format!("/oidc/authorize?{}", Self::authorize_query(&[]))).await;
        assert_eq!(param(&location, "state").as_deref(), Some("st-1"), "{location}");
        assert_eq!(param(&location, "iss").as_deref(), Some(PUBLIC));
        param(&location, "code").expect("a code")
    }

    /// What a browser with this session does with an authorization request (`path_and_query`
    /// on this node): straight to the client, or through the consent page (allowing); returns
    /// the client's URL it lands on.
    pub async fn browse(&self, path_and_query: &str) -> String {
        let mut req = self.http.get(format!("{}{path_and_query}", self.url));
        if let Some(c) = &self.cookie {
            req = req.header("cookie", c);
        }
        let response = req.send().await.unwrap();
        if response.status() == StatusCode::FOUND {
            let location = response.headers()["location"].to_str().unwrap().to_owned();
            assert!(location.starts_with("https://"), "{location}");
            return location;
        }
        assert_eq!(response.status(), StatusCode::OK, "the consent page");
        let csrf_cookie = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
            .collect::<Vec<_>>();
        let html = response.text().await.unwrap();
        assert!(html.contains("asks to sign you in"), "{html}");
        let action = html.split("<form method=\"post\" action=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
        let fields: Vec<(String, String)> = html
            .split("<input type=\"hidden\" name=\"")
            .skip(1)
            .map(|rest| {
                let (name, rest) = rest.split_once('"').unwrap();
                let value = rest.split_once("value=\"").unwrap().1.split_once('"').unwrap().0;
                (name.to_owned(), unescape(value))
            })
            .collect();
        let mut body = fields.clone();
        body.push(("decision".into(), "allow".into()));
        let cookies = std::iter::once(self.cookie.clone().unwrap()).chain(csrf_cookie).collect::<Vec<_>>().join("; ");
        let response = self
            .http
            .post(format!("{}{action}", self.url))
            .header("cookie", cookies)
            .header("origin", PUBLIC)
            .form(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "the page that goes on to the client");
        let html = response.text().await.unwrap();
        assert!(html.contains("http-equiv=\"refresh\""), "{html}");
        let target = unescape(html.split("id=\"continue\" href=\"").nth(1).unwrap().split('"').next().unwrap());
        assert!(target.starts_with("https://"), "{target}");
        target
    }

    async fn token(&self, form: &[(&str, &str)], secret: Option<&str>) -> (StatusCode, Value) {
        let mut req = self.http.post(format!("{}/oidc/token", self.url)).form(form);
        if let Some(secret) = secret {
            req = req.basic_auth("app", Some(secret));
        }
        let response = req.send().await.unwrap();
        assert_eq!(response.headers()["cache-control"], "no-store");
        (response.status(), response.json().await.unwrap())
    }

    async fn redeem(&self, code: &str) -> (StatusCode, Value) {
        self.token(
            &[("grant_type", "authorization_code"), ("code", code), ("redirect_uri", CB), ("code_verifier", VERIFIER)],
            Some(&self.secret),
        )
        .await
    }

    async fn refresh(&self, refresh_token: &str) -> (StatusCode, Value) {
        self.token(&[("grant_type", "refresh_token"), ("refresh_token", refresh_token)], Some(&self.secret)).await
    }

    async fn introspect(&self, token: &str) -> Value {
        let response = self
            .http
            .post(format!("{}/oidc/introspect", self.url))
            .basic_auth("app", Some(&self.secret))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    async fn active(&self, token: &str) -> bool {
        self.introspect(token).await["active"].as_bool().unwrap()
    }

    /// Whether the token stops passing introspection here within a generous bound: another
    /// node's revocation reaches this one through the change feed, in milliseconds.
    async fn goes_inactive(&self, token: &str) -> bool {
        for _ in 0..100 {
            if !self.active(token).await {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        false
    }
}

/// Registers `app` (confidential, groups claim, a post-logout URI) and alice in `staff`;
/// returns the relying party with alice's browser session.
pub async fn setup(server: &TestServer) -> Rp {
    let admin = server.sysadmin().await;
    let created = admin
        .create_oidc_client(&CreateOidcClient {
            client_id: "app".into(),
            display_name: Some("The App".into()),
            redirect_uris: vec![CB.into()],
            post_logout_redirect_uris: vec![BYE.into()],
            claims: vec!["groups".into()],
            ..CreateOidcClient::default()
        })
        .await
        .unwrap();
    let idm = server.idm().await;
    idm.create_user(&user("alice")).await.unwrap();
    idm.create_group(&CreateGroup { name: "staff".into(), ..CreateGroup::default() }).await.unwrap();
    idm.add_members("staff", &["user:alice".to_owned()]).await.unwrap();
    let session = server.anonymous().login("alice", "correct horse battery").await.unwrap().token.expose().to_owned();
    let cookie_name = server.running.context.config.forward_auth.cookie_name.clone();
    Rp {
        url: server.url.clone(),
        http: http(),
        cookie: Some(format!("{cookie_name}={session}")),
        secret: created.client_secret.unwrap().expose().to_owned(),
    }
}

pub fn with_issuer(c: &mut warden_server::config::Config) {
    c.server.public_url = Some(PUBLIC.into());
}

#[tokio::test]
async fn bad_authorization_requests_are_refused_without_redirecting_to_strangers() {
    let server = TestServer::start_with(with_issuer).await;
    let rp = setup(&server).await;
    // An unknown redirect URI or client: a page, never a redirect.
    for extra in
        [[("redirect_uri", "https://evil.example/cb")], [("client_id", "nobody")], [("redirect_uri", "https://app.example.test/cb/")]]
    {
        let response = rp.authorize(&extra).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{extra:?}");
        assert!(response.headers().get("location").is_none());
    }
    // Errors the client may hear go back to it, with its state.
    for (extra, error) in [
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("scope", "profile")], "invalid_scope"),
        (vec![("response_type", "token")], "unsupported_response_type"),
    ] {
        let response = rp.authorize(&extra).await;
        assert_eq!(response.status(), StatusCode::FOUND, "{extra:?}");
        let location = response.headers()["location"].to_str().unwrap();
        assert!(location.starts_with(CB));
        assert_eq!(param(location, "error").as_deref(), Some(error), "{extra:?}");
        assert_eq!(param(location, "state").as_deref(), Some("st-1"));
    }
    // Nobody signed in: the sign-in page comes back here; prompt=none says so to the client.
    let anonymous = Rp { cookie: None, ..rp };
    let response = anonymous.authorize(&[]).await;
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with("/login?fresh=1&rd=%2Foidc%2Fauthorize"), "{location}");
    let response = anonymous.authorize(&[("prompt", "none")]).await;
    assert_eq!(param(response.headers()["location"].to_str().unwrap(), "error").as_deref(), Some("login_required"));
    // Signed in but the application not yet allowed: prompt=none cannot ask.
    let rp = Rp { cookie: setup_cookie(&server).await, ..anonymous };
    let response = rp.authorize(&[("prompt", "none")]).await;
    assert_eq!(param(response.headers()["location"].to_str().unwrap(), "error").as_deref(), Some("consent_required"));
    // A session weaker than the client asks for (acr_values=mfa) signs in again.
    let response = rp.authorize(&[("acr_values", "mfa")]).await;
    assert!(response.headers()["location"].to_str().unwrap().starts_with("/login?fresh=1"));
}

async fn setup_cookie(server: &TestServer) -> Option<String> {
    let session = server.anonymous().login("alice", "correct horse battery").await.unwrap().token.expose().to_owned();
    Some(format!("{}={session}", server.running.context.config.forward_auth.cookie_name))
}

#[tokio::test]
async fn the_code_flow_refresh_introspection_revocation_and_logout_on_sqlite() {
    let server = TestServer::start_with(with_issuer).await;
    let rp = setup(&server).await;
    code_flow(&server, &rp, &rp).await;
}

#[tokio::test]
async fn a_refresh_token_revoked_on_one_postgresql_node_is_refused_on_the_other() {
    let db = PgDatabase::create("oidc");
    let key = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    let a = TestServer::start_with(|c| {
        with_issuer(c);
        c.database.url = db.url();
        c.oidc.key_encryption_key = Some(key.clone());
    })
    .await;
    let b = TestServer::start_with(|c| {
        with_issuer(c);
        c.database.url = db.url();
        c.oidc.key_encryption_key = Some(key.clone());
    })
    .await;
    let on_a = setup(&a).await;
    let on_b = Rp { url: b.url.clone(), http: http(), cookie: on_a.cookie.clone(), secret: on_a.secret.clone() };
    code_flow(&a, &on_a, &on_b).await;
    a.running.shutdown().await.unwrap();
    b.running.shutdown().await.unwrap();
}

/// The whole flow; `other` is the same relying party at another node (or the same one).
async fn code_flow(server: &TestServer, rp: &Rp, other: &Rp) {
    // Consent once, then a code; the wrong verifier, secret or redirect URI get nothing.
    let code = rp.code().await;
    let (status, body) = rp
        .token(
            &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CB), ("code_verifier", &"x".repeat(43))],
            Some(&rp.secret),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    let (status, body) = rp.token(&[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CB)], Some(&rp.secret)).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "no verifier");
    let (status, body) = rp
        .token(
            &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", CB), ("code_verifier", VERIFIER)],
            Some("wdc_wrong"),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("invalid_client")));
    let (status, body) = rp
        .token(
            &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", BYE), ("code_verifier", VERIFIER)],
            Some(&rp.secret),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "redirect_uri");

    // The first redemption wins; a second one fails and ends what the first got.
    let (status, first) = rp.redeem(&code).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["token_type"], "Bearer");
    let id = claims_of(first["id_token"].as_str().unwrap());
    assert_eq!((id["iss"].as_str(), id["aud"].as_str(), id["nonce"].as_str()), (Some(PUBLIC), Some("app"), Some("n-1")));
    assert_eq!(id["preferred_username"], "alice");
    assert_eq!(id["groups"], serde_json::json!(["staff"]));
    assert_eq!(id["acr"], "password");
    let access = claims_of(first["access_token"].as_str().unwrap());
    assert_eq!((access["client_id"].as_str(), access["sub"].as_str()), (Some("app"), id["sub"].as_str()));
    assert!(other.active(first["access_token"].as_str().unwrap()).await);
    let (status, body) = other.redeem(&code).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "a code is good once");
    assert!(rp.goes_inactive(first["access_token"].as_str().unwrap()).await, "the first redemption's tokens are revoked");
    assert_eq!(rp.refresh(first["refresh_token"].as_str().unwrap()).await.1["error"], "invalid_grant");

    // Consent is remembered: straight to the client. Refresh rotates; a spent token presented
    // again ends the whole grant, on the other node too.
    let (_, second) = rp.redeem(&rp.code().await).await;
    let (status, third) = rp.refresh(second["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{third}");
    assert_ne!(third["refresh_token"], second["refresh_token"]);
    assert!(other.active(third["access_token"].as_str().unwrap()).await);
    let (status, body) = other.refresh(second["refresh_token"].as_str().unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")), "reuse");
    assert_eq!(rp.refresh(third["refresh_token"].as_str().unwrap()).await.1["error"], "invalid_grant", "the chain is revoked");
    assert!(other.goes_inactive(third["access_token"].as_str().unwrap()).await);

    // Revocation (RFC 7009) on one node is seen on the other.
    let (_, fourth) = rp.redeem(&rp.code().await).await;
    let revoked = rp
        .http
        .post(format!("{}/oidc/revoke", rp.url))
        .basic_auth("app", Some(&rp.secret))
        .form(&[("token", fourth["refresh_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    assert_eq!(other.refresh(fourth["refresh_token"].as_str().unwrap()).await.1["error"], "invalid_grant");
    assert!(other.goes_inactive(fourth["access_token"].as_str().unwrap()).await);

    // Its owner disconnects the application on this node: the grant's tokens stop working on
    // the other, the listing names no token, and the next sign-in asks for consent again.
    let (_, sixth) = rp.redeem(&rp.code().await).await;
    let me = server.anonymous().with_bearer(rp.cookie.as_deref().unwrap().split_once('=').unwrap().1);
    let apps = me.applications(None).await.unwrap();
    assert_eq!(apps.len(), 1, "{apps:?}");
    assert_eq!((apps[0].client_id.as_str(), apps[0].display_name.as_str()), ("app", "The App"));
    assert_eq!(apps[0].consented_scopes, ["openid", "profile", "email"]);
    assert_eq!(apps[0].grants.len(), 1, "only the live grant: {apps:?}");
    let listed = serde_json::to_string(&apps).unwrap();
    for secret in [&sixth["access_token"], &sixth["refresh_token"], &sixth["id_token"]] {
        assert!(!listed.contains(secret.as_str().unwrap()), "no token in the listing");
    }
    let withdrawn = me.withdraw_application(None, "app").await.unwrap();
    assert_eq!((withdrawn.client_id.as_str(), withdrawn.grants_revoked), ("app", 1));
    assert_eq!(other.refresh(sixth["refresh_token"].as_str().unwrap()).await.1["error"], "invalid_grant", "withdrawn");
    assert!(other.goes_inactive(sixth["access_token"].as_str().unwrap()).await);
    assert_eq!(rp.authorize(&[]).await.status(), StatusCode::OK, "the consent page again");
    assert_eq!(me.withdraw_application(None, "app").await.unwrap_err().code(), "not_found", "nothing left to withdraw");

    // Userinfo, then logout: an unregistered return address is refused; a registered one ends
    // the session and with it the grant's tokens, on every node.
    let (_, fifth) = rp.redeem(&rp.code().await).await;
    let info: Value = other
        .http
        .get(format!("{}/oidc/userinfo", other.url))
        .bearer_auth(fifth["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((info["preferred_username"].as_str(), info["groups"].clone()), (Some("alice"), serde_json::json!(["staff"])));
    let hint = fifth["id_token"].as_str().unwrap();
    let evil =
        serde_urlencoded::to_string([("id_token_hint", hint), ("post_logout_redirect_uri", "https://evil.example/"), ("state", "s")])
            .unwrap();
    let response = rp.http.get(format!("{}/oidc/logout?{evil}", rp.url)).header("cookie", rp.cookie.clone().unwrap()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get("location").is_none(), "no open redirect");
    let good = serde_urlencoded::to_string([("id_token_hint", hint), ("post_logout_redirect_uri", BYE), ("state", "s")]).unwrap();
    let response = rp.http.get(format!("{}/oidc/logout?{good}", rp.url)).header("cookie", rp.cookie.clone().unwrap()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(response.headers()["location"], format!("{BYE}?state=s").as_str());
    assert_eq!(other.refresh(fifth["refresh_token"].as_str().unwrap()).await.1["error"], "invalid_grant", "the session ended");
    assert!(other.goes_inactive(fifth["access_token"].as_str().unwrap()).await);
    let _ = server;
}

/// Connected applications are their owner's to see and disconnect, and an administrator's
/// with `warden:users:read` / `warden:credentials:write`; nobody else's request touches them.
/// The web page lists them and disconnects with a same-site form.
#[tokio::test]
async fn connected_applications_belong_to_their_owner_and_administrators() {
    let server = TestServer::start_with(with_issuer).await;
    let rp = setup(&server).await;
    let (_, tokens) = rp.redeem(&rp.code().await).await;
    let access = tokens["access_token"].as_str().unwrap();
    let idm = server.idm().await;
    idm.create_user(&user("bob")).await.unwrap();
    let bob = server.anonymous().with_bearer(server.anonymous().login("bob", "correct horse battery").await.unwrap().token.expose());

    // Another person: sees none of alice's, withdraws nothing of hers, reads no one else's.
    assert!(bob.applications(None).await.unwrap().is_empty());
    assert_eq!(bob.withdraw_application(None, "app").await.unwrap_err().code(), "not_found");
    assert_eq!(bob.applications(Some("alice")).await.unwrap_err().code(), "forbidden");
    assert_eq!(bob.withdraw_application(Some("alice"), "app").await.unwrap_err().code(), "forbidden");
    assert!(rp.active(access).await, "alice's grant is untouched");

    // An administrator reads them; unknown accounts and applications are not found.
    let apps = idm.applications(Some("alice")).await.unwrap();
    assert_eq!(apps.iter().map(|a| (a.client_id.as_str(), a.grants.len())).collect::<Vec<_>>(), [("app", 1)]);
    assert_eq!(idm.applications(Some("nobody")).await.unwrap_err().code(), "not_found");
    assert_eq!(idm.withdraw_application(Some("alice"), "no-such-app").await.unwrap_err().code(), "not_found");

    // The page lists it; a cross-site form is refused; the page's own form disconnects.
    let cookie = rp.cookie.clone().unwrap();
    let page = rp.http.get(format!("{}/account/applications", rp.url)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));
    let csrf_cookies: Vec<String> =
        page.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned()).collect();
    let html = page.text().await.unwrap();
    assert!(html.contains("The App") && html.contains("openid, profile, email"), "{html}");
    assert!(!html.contains(access), "no token on the page");
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let action = format!("{}/account/applications/app/withdraw", rp.url);
    let cookies = std::iter::once(cookie.clone()).chain(csrf_cookies).collect::<Vec<_>>().join("; ");
    let forged = rp
        .http
        .post(&action)
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .form(&[("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(rp.active(access).await, "a forged form disconnects nothing");
    let posted = rp.http.post(&action).header("cookie", &cookies).header("origin", PUBLIC).form(&[("csrf", csrf)]).send().await.unwrap();
    assert_eq!(posted.status(), StatusCode::SEE_OTHER);
    assert_eq!(posted.headers()["location"], "/account/applications");
    assert!(!rp.active(access).await, "disconnected from the page");
    let html =
        rp.http.get(format!("{}/account/applications", rp.url)).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("No applications."), "{html}");

    // An administrator disconnects it for her, audited with the administrator as actor.
    let (_, again) = rp.redeem(&rp.code().await).await;
    let done = idm.withdraw_application(Some("alice"), "app").await.unwrap();
    assert_eq!(done.grants_revoked, 1);
    assert!(!rp.active(again["access_token"].as_str().unwrap()).await);
    let events = server
        .sysadmin()
        .await
        .audit(&warden_client::AuditQuery { action: Some("oidc.consent.withdraw".into()), ..Default::default() })
        .await
        .unwrap()
        .items;
    assert_eq!(events.len(), 2, "the page's and the administrator's");
    let by_admin = &events[0];
    assert_eq!((by_admin.actor_name.as_deref(), by_admin.target_name.as_deref()), (Some("idm_admin"), Some("alice")));
    assert_eq!(by_admin.details["grants_revoked"], 1);
    assert_eq!(by_admin.details["client"], "app");
}

/// Introspection's answer is made once per token and kept, but not past a change to its
/// account: a renamed person is answered with the new name.
#[tokio::test]
async fn introspection_names_a_renamed_person_by_the_new_name() {
    let server = TestServer::start_with(with_issuer).await;
    let rp = setup(&server).await;
    let (_, tokens) = rp.redeem(&rp.code().await).await;
    let access = tokens["access_token"].as_str().unwrap();
    let first = rp.introspect(access).await;
    assert_eq!((first["active"].as_bool(), first["username"].as_str()), (Some(true), Some("alice")));
    assert_eq!(rp.introspect(access).await, first, "the same answer again");
    server.idm().await.rename_user("alice", "alicia").await.unwrap();
    let renamed = rp.introspect(access).await;
    assert_eq!((renamed["active"].as_bool(), renamed["username"].as_str()), (Some(true), Some("alicia")), "{renamed}");
    assert_eq!(renamed["sub"], first["sub"], "the same account");
}

#[tokio::test]
async fn expired_codes_forged_tokens_and_client_credentials() {
    let server = TestServer::start_with(with_issuer).await;
    let rp = setup(&server).await;
    let code = rp.code().await;
    server.clock.advance(Duration::seconds(61));
    assert_eq!(rp.redeem(&code).await.1["error"], "invalid_grant", "an expired code");

    // Tokens with alg=none or HS256 are not ours, whatever they claim.
    let (_, good) = rp.redeem(&rp.code().await).await;
    let access = good["access_token"].as_str().unwrap();
    let body = access.split('.').nth(1).unwrap();
    for header in [r#"{"alg":"none","typ":"at+jwt"}"#, r#"{"alg":"HS256","typ":"at+jwt","kid":"k"}"#] {
        let forged = format!("{}.{body}.", b64url(header.as_bytes()));
        assert!(!rp.active(&forged).await, "{header}");
        let hs = format!("{}.{body}.{}", b64url(header.as_bytes()), b64url(b"signature"));
        assert!(!rp.active(&hs).await, "{header}");
    }
    // The real header with another alg than its key's is refused too.
    let real_header: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(access.split('.').next().unwrap()).unwrap())
            .unwrap();
    let confused = serde_json::json!({ "alg": "ES256", "kid": real_header["kid"], "typ": "at+jwt" });
    let sig = access.split('.').nth(2).unwrap();
    assert!(!rp.active(&format!("{}.{body}.{sig}", b64url(confused.to_string().as_bytes()))).await);
    assert!(rp.active(access).await);

    // Client credentials: the client acts as its service account.
    let idm = server.idm().await;
    idm.create_service_account(&CreateServiceAccount { name: "robot-sa".into(), ..CreateServiceAccount::default() }).await.unwrap();
    let admin = server.sysadmin().await;
    let robot = admin
        .create_oidc_client(&CreateOidcClient {
            client_id: "robot".into(),
            redirect_uris: vec!["https://robot.example.test/cb".into()],
            service_account: Some("robot-sa".into()),
            signing_alg: Some("ES256".into()),
            ..CreateOidcClient::default()
        })
        .await
        .unwrap();
    let secret = robot.client_secret.unwrap().expose().to_owned();
    let http = http();
    let grant = |secret: String| {
        let http = http.clone();
        let url = server.url.clone();
        async move {
            http.post(format!("{url}/oidc/token"))
                .basic_auth("robot", Some(secret))
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(grant("wdc_wrong".into()).await.status(), StatusCode::UNAUTHORIZED);
    let response = grant(secret.clone()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let tokens: Value = response.json().await.unwrap();
    assert!(tokens.get("refresh_token").is_none() && tokens.get("id_token").is_none());
    let at = tokens["access_token"].as_str().unwrap();
    let header: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(at.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!((header["alg"].as_str(), header["typ"].as_str()), (Some("ES256"), Some("at+jwt")));
    let introspected: Value = http
        .post(format!("{}/oidc/introspect", server.url))
        .basic_auth("app", Some(&rp.secret))
        .form(&[("token", at)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((introspected["active"].as_bool(), introspected["username"].as_str()), (Some(true), Some("robot-sa")));
    // A public client cannot use client credentials, and introspection needs a client.
    let anonymous = http.post(format!("{}/oidc/introspect", server.url)).form(&[("token", at)]).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // The JWKS publishes every algorithm's key; discovery names the endpoints.
    let jwks: Value = http.get(format!("{}/oidc/jwks.json", server.url)).send().await.unwrap().json().await.unwrap();
    let algs: Vec<&str> = jwks["keys"].as_array().unwrap().iter().map(|k| k["alg"].as_str().unwrap()).collect();
    for alg in ["RS256", "ES256", "EdDSA"] {
        assert!(algs.contains(&alg), "{algs:?}");
    }
    assert!(jwks.to_string().find("\"d\"").is_none(), "no private part is published");
    let discovery: Value = http.get(format!("{}/.well-known/openid-configuration", server.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(discovery["issuer"], PUBLIC);
    assert_eq!(discovery["token_endpoint"], format!("{PUBLIC}/oidc/token").as_str());
    let tenant: Value =
        http.get(format!("{}/oidc/default/.well-known/openid-configuration", server.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(tenant["issuer"], format!("{PUBLIC}/oidc/default").as_str());
    let missing = http.get(format!("{}/oidc/nowhere/.well-known/openid-configuration", server.url)).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

/// Of 50 concurrent redemptions of one code, exactly one gets tokens; the tokens it got are
/// then revoked (the others showed that the code was copied).
#[tokio::test]
async fn fifty_concurrent_redemptions_of_one_code_give_one_grant() {
    let server = TestServer::start_with(with_issuer).await;
    let rp = setup(&server).await;
    let code = rp.code().await;
    let attempts = (0..50).map(|_| rp.redeem(&code));
    let results = futures_util::future::join_all(attempts).await;
    let won: Vec<&Value> = results.iter().filter(|(status, _)| *status == StatusCode::OK).map(|(_, body)| body).collect();
    assert_eq!(won.len(), 1, "exactly one redemption wins");
    for (status, body) in results.iter().filter(|(status, _)| *status != StatusCode::OK) {
        assert_eq!((*status, body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    }
    assert!(!rp.active(won[0]["access_token"].as_str().unwrap()).await, "the winner's tokens are revoked by the reuse");
}

/// `prompt=login` and `max_age` send a signed-in browser to sign in again (the page fills in
/// `login_hint`), and the new sign-in answers them; an older session does not.
#[tokio::test]
async fn prompt_login_and_max_age_ask_for_a_new_sign_in() {
    let server = TestServer::start_with(with_issuer).await;
    let rp = setup(&server).await;
    rp.code().await; // consent given once
    server.clock.advance(Duration::seconds(5));
    let response = rp.authorize(&[("prompt", "login"), ("login_hint", "alice")]).await;
    let to = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(to.starts_with("/login?fresh=1&rd="), "{to}");
    assert_eq!(param(&to, "name").as_deref(), Some("alice"));
    let page = rp.http.get(format!("{}{to}", rp.url)).header("cookie", rp.cookie.clone().unwrap()).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK, "a signed-in browser is asked again");
    assert!(page.text().await.unwrap().contains("value=\"alice\""), "the hint is the name");
    let back = param(&to, "rd").unwrap();
    assert!(back.contains("signed_in_after="), "{back}");
    // The old session does not answer the request; a new sign-in does.
    let again = rp.http.get(format!("{}{back}", rp.url)).header("cookie", rp.cookie.clone().unwrap()).send().await.unwrap();
    assert!(again.headers()["location"].to_str().unwrap().starts_with("/login?fresh=1"));
    let fresh = Rp { cookie: setup_cookie(&server).await, url: rp.url.clone(), http: http(), secret: rp.secret.clone() };
    let landed = fresh.browse(&back).await;
    assert!(param(&landed, "code").is_some(), "{landed}");
    // A forged marker is no marker.
    let forged = back.replace("signed_in_after=", "signed_in_after=AAAA");
    let response = fresh.http.get(format!("{}{forged}", rp.url)).header("cookie", fresh.cookie.clone().unwrap()).send().await.unwrap();
    assert!(response.headers()["location"].to_str().unwrap().starts_with("/login?fresh=1"));
    // max_age: a sign-in older than it is repeated.
    server.clock.advance(Duration::seconds(30));
    let response = fresh.authorize(&[("max_age", "10")]).await;
    assert!(response.headers()["location"].to_str().unwrap().starts_with("/login?fresh=1"));
    let response = fresh.authorize(&[("max_age", "60")]).await;
    assert!(response.headers()["location"].to_str().unwrap().starts_with(CB));
}

/// A person who denies consent sends the client `access_denied`, and nothing is remembered.
#[tokio::test]
async fn denied_consent_goes_back_as_access_denied() {
    let server = TestServer::start_with(with_issuer).await;
    let rp = setup(&server).await;
    let response = rp.authorize(&[]).await;
    let csrf = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect::<Vec<_>>();
    let html = response.text().await.unwrap();
    let token = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let mut form = query_of(&format!("?{}", Rp::authorize_query(&[])));
    form.push(("csrf".into(), token));
    form.push(("decision".into(), "deny".into()));
    let cookies = std::iter::once(rp.cookie.clone().unwrap()).chain(csrf).collect::<Vec<_>>().join("; ");
    let response = rp
        .http
        .post(format!("{}/oidc/consent", rp.url))
        .header("cookie", cookies)
        .header("origin", PUBLIC)
        .form(&form)
        .send()
        .await
        .unwrap();
    let html = response.text().await.unwrap();
    let target = unescape(html.split("id=\"continue\" href=\"").nth(1).unwrap().split('"').next().unwrap());
    assert_eq!(param(&target, "error").as_deref(), Some("access_denied"), "{target}");
    assert_eq!(param(&target, "state").as_deref(), Some("st-1"));
    // Still not allowed: the next request asks again.
    assert_eq!(rp.authorize(&[]).await.status(), StatusCode::OK);
    // A consent posted from another site is refused before anything is read.
    let forged = rp
        .http
        .post(format!("{}/oidc/consent", rp.url))
        .header("cookie", rp.cookie.clone().unwrap())
        .header("origin", "https://evil.example")
        .form(&[("decision", "allow")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
}

/// Lists too long for the token's budget are left to userinfo, named as distributed claims;
/// userinfo gives them whole.
#[tokio::test]
async fn long_lists_are_served_by_userinfo_and_the_token_stays_small() {
    let server = TestServer::start_with(|c| {
        with_issuer(c);
        c.oidc.max_list_claims_bytes = 120;
    })
    .await;
    let rp = setup(&server).await;
    let idm = server.idm().await;
    for g in 0..12 {
        let name = format!("team-{g:02}-with-a-long-name");
        idm.create_group(&CreateGroup { name: name.clone(), ..CreateGroup::default() }).await.unwrap();
        idm.add_members(&name, &["user:alice".to_owned()]).await.unwrap();
    }
    let (status, tokens) = rp.redeem(&rp.code().await).await;
    assert_eq!(status, StatusCode::OK);
    let id = claims_of(tokens["id_token"].as_str().unwrap());
    assert!(id.get("groups").is_none(), "{id}");
    assert_eq!(id["_claim_names"]["groups"], "userinfo");
    assert_eq!(id["_claim_sources"]["userinfo"]["endpoint"], format!("{PUBLIC}/oidc/userinfo").as_str());
    let access = claims_of(tokens["access_token"].as_str().unwrap());
    assert!(access.get("groups").is_none());
    let info: Value = rp
        .http
        .get(format!("{}/oidc/userinfo", rp.url))
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["groups"].as_array().map(Vec::len), Some(13), "every group, staff included");
}

/// Rotation: new keys sign, the old ones stay published and their tokens stay good; only a
/// system administrator rotates; the audit log says so.
#[tokio::test]
async fn rotated_keys_sign_new_tokens_while_old_ones_stay_valid() {
    let server = TestServer::start_with(with_issuer).await;
    let rp = setup(&server).await;
    let (_, before) = rp.redeem(&rp.code().await).await;
    let old_kid = header_of(before["access_token"].as_str().unwrap())["kid"].clone();
    let idm = server.idm().await;
    assert_eq!(idm.rotate_oidc_keys().await.unwrap_err().code(), "forbidden");
    let admin = server.sysadmin().await;
    let rotated = admin.rotate_oidc_keys().await.unwrap();
    assert_eq!((rotated.created.len(), rotated.retired.len()), (3, 3));
    let keys = admin.list_oidc_keys().await.unwrap();
    assert_eq!(keys.iter().filter(|k| k.retired_at.is_none()).count(), 3);
    let jwks: Value = rp.http.get(format!("{}/oidc/jwks.json", rp.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(6), "the old keys stay published");
    let (_, after) = rp.redeem(&rp.code().await).await;
    let new_kid = header_of(after["access_token"].as_str().unwrap())["kid"].clone();
    assert_ne!(old_kid, new_kid);
    assert!(rotated.created.iter().any(|k| Value::String(k.clone()) == new_kid));
    assert!(rp.active(before["access_token"].as_str().unwrap()).await, "a token of the old key stays good until it expires");
    assert!(rp.active(after["access_token"].as_str().unwrap()).await);
    // Once the old tokens have expired, the next rotation forgets the old keys.
    server.clock.advance(Duration::minutes(11));
    server.sysadmin().await.rotate_oidc_keys().await.unwrap();
    let jwks: Value = rp.http.get(format!("{}/oidc/jwks.json", rp.url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        jwks["keys"].as_array().map(Vec::len),
        Some(6),
        "the first keys are gone; the second ones are published until theirs expire"
    );
    assert!(!jwks.to_string().contains(old_kid.as_str().unwrap()));
}

/// No code, refresh token, access token or private key is in the database file or the audit
/// log: codes and access tokens are never stored, refresh tokens only as hashes, keys sealed.
#[tokio::test]
async fn no_token_or_key_is_kept_in_the_clear() {
    let server = TestServer::start_with(with_issuer).await;
    let rp = setup(&server).await;
    let code = rp.code().await;
    let (_, tokens) = rp.redeem(&code).await;
    let (_, renewed) = rp.refresh(tokens["refresh_token"].as_str().unwrap()).await;
    let path = server.running.context.config.database.url.trim_start_matches("sqlite://").to_owned();
    let mut bytes = std::fs::read(&path).unwrap();
    if let Ok(mut wal) = std::fs::read(format!("{path}-wal")) {
        bytes.append(&mut wal);
    }
    let contains = |needle: &str| bytes.windows(needle.len()).any(|w| w == needle.as_bytes());
    for secret in [
        code.as_str(),
        tokens["refresh_token"].as_str().unwrap(),
        renewed["refresh_token"].as_str().unwrap(),
        tokens["access_token"].as_str().unwrap(),
    ] {
        assert!(!contains(&secret[..40.min(secret.len())]), "a token is in the database file");
    }
    assert!(!contains("-----BEGIN") && !contains("PRIVATE KEY"), "no PEM key");
    let key_file = std::fs::read_to_string(format!("{path}.oidc-key")).unwrap();
    assert!(!contains(key_file.trim()), "the key-encryption key is not in the database");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(format!("{path}.oidc-key")).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let admin = server.sysadmin().await;
    for action in ["oidc.grant.create", "oidc.grant.refresh", "oidc.consent.grant", "oidc.keys.rotate"] {
        let page = admin.audit(&warden_client::AuditQuery { action: Some(action.into()), ..Default::default() }).await.unwrap();
        assert!(!page.items.is_empty() || action == "oidc.keys.rotate", "{action} is audited");
        let text = serde_json::to_string(&page.items).unwrap();
        assert!(!text.contains(tokens["refresh_token"].as_str().unwrap()) && !text.contains(&code));
    }
}

fn header_of(jwt: &str) -> Value {
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(jwt.split('.').next().unwrap()).unwrap()).unwrap()
}
