//! What every page sends, without a browser: a strict Content-Security-Policy (script and
//! style from the site only, nothing inline), no framing; and forms that refuse a post without
//! the page's CSRF token or from another site.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use super::PASSWORD;
use crate::api::{TestServer, user};

const FORM: &str = "application/x-www-form-urlencoded";

fn encoded(fields: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(fields).unwrap()
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

/// Asserts the page's headers and that its HTML has no inline script or style to allow.
fn assert_strict(path: &str, headers: &HeaderMap, html: &str) {
    let csp = header(headers, "content-security-policy");
    assert!(csp.contains("script-src 'self'") && csp.contains("style-src 'self'"), "{path}: {csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{path}: {csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
    assert_eq!(header(headers, "x-frame-options"), "DENY", "{path}");
    assert_eq!(header(headers, "x-content-type-options"), "nosniff", "{path}");
    assert!(!html.contains(" style="), "{path}: a style attribute");
    for (at, _) in html.match_indices("<script") {
        let tag = &html[at..];
        let open = &tag[..tag.find('>').unwrap()];
        assert!(open.contains(" src=\"/assets/"), "{path}: an inline script {open}");
        assert!(tag[open.len() + 1..].starts_with("</script>"), "{path}: a script with content");
    }
}

/// The problem's code of a refused post.
async fn refusal(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    (status, body["code"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn every_page_sends_a_strict_csp_and_forms_refuse_forgery() {
    let server = TestServer::start().await;
    server.idm().await.create_user(&user("alice")).await.unwrap();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    for (path, status) in [("/login", 200), ("/register?token=x", 400), ("/forgot-password", 200), ("/logout", 200)] {
        let response = http.get(format!("{}{path}", server.url)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
        let headers = response.headers().clone();
        assert!(header(&headers, "content-type").starts_with("text/html"), "{path}");
        assert_eq!(header(&headers, "cache-control"), "no-store", "{path}");
        assert_strict(path, &headers, &response.text().await.unwrap());
    }
    // A signed-in page too (the session cookie is the API's session token).
    let token = server.anonymous().login("alice", PASSWORD).await.unwrap().token.expose().to_owned();
    let session = format!("warden_session={token}");
    for path in ["/", "/account/profile", "/account/security", "/account/sessions"] {
        let response = http.get(format!("{}{path}", server.url)).header("cookie", &session).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers().clone();
        assert_strict(path, &headers, &response.text().await.unwrap());
    }
    // A page that does not exist: a page for a browser, problem+json for an API client.
    let missing = http.get(format!("{}/account/nowhere", server.url)).header("accept", "text/html").send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let headers = missing.headers().clone();
    let html = missing.text().await.unwrap();
    assert!(html.contains("Page not found"), "{html}");
    assert_strict("/account/nowhere", &headers, &html);
    let (status, code) =
        refusal(http.get(format!("{}/api/v1/nowhere", server.url)).header("accept", "text/html").send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (StatusCode::NOT_FOUND, "route.not_found"));

    // A form posted from a session that has ended: to sign in, and back to the form's page.
    let host = server.url.trim_start_matches("http://").to_owned();
    let stale = http
        .post(format!("{}/account/profile", server.url))
        .header("cookie", "warden_session=wds_0000")
        .header("referer", format!("http://{host}/account/profile"))
        .header("content-type", FORM)
        .body(encoded(&[("display_name", "x")]))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), StatusCode::SEE_OTHER);
    assert_eq!(header(stale.headers(), "location"), "/login?rd=%2Faccount%2Fprofile");

    // The stylesheet is a stylesheet, never sniffed into anything else.
    let css = http.get(format!("{}/assets/warden.css", server.url)).send().await.unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    assert!(header(css.headers(), "content-type").starts_with("text/css"));
    assert_eq!(header(css.headers(), "x-content-type-options"), "nosniff");

    // Posts without the CSRF cookie and token: refused before a field is read.
    let form = [("name", "alice"), ("password", PASSWORD)];
    let (status, code) =
        refusal(http.post(format!("{}/login", server.url)).header("content-type", FORM).body(encoded(&form)).send().await.unwrap()).await;
    assert_eq!((status, code.as_str()), (StatusCode::FORBIDDEN, "csrf.token_invalid"));
    let profile = format!("{}/account/profile", server.url);
    let (status, code) = refusal(
        http.post(&profile)
            .header("cookie", &session)
            .header("content-type", FORM)
            .body(encoded(&[("display_name", "Mallory")]))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, code.as_str()), (StatusCode::FORBIDDEN, "csrf.token_invalid"));
    // A token that is not the cookie's.
    let csrf = "a".repeat(64);
    let cookies = format!("{session}; warden_csrf={csrf}");
    let forged = [("display_name", "Mallory"), ("csrf", &"b".repeat(64))];
    let (status, code) =
        refusal(http.post(&profile).header("cookie", &cookies).header("content-type", FORM).body(encoded(&forged)).send().await.unwrap())
            .await;
    assert_eq!((status, code.as_str()), (StatusCode::FORBIDDEN, "csrf.token_invalid"));
    // The right pair, from another site.
    let from_elsewhere = [("display_name", "Mallory"), ("csrf", csrf.as_str())];
    let response = http
        .post(&profile)
        .header("cookie", &cookies)
        .header("origin", "https://evil.example")
        .header("sec-fetch-site", "cross-site")
        .header("content-type", FORM)
        .body(encoded(&from_elsewhere))
        .send()
        .await
        .unwrap();
    let (status, code) = refusal(response).await;
    assert_eq!((status, code.as_str()), (StatusCode::FORBIDDEN, "request.cross_site"));
    assert_eq!(server.idm().await.get_user("alice").await.unwrap().profile.display_name, None, "nothing written");
}
