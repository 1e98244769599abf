//! The provider as an independent relying party sees it: `openidconnect` (a Rust OIDC client
//! written by others) discovers Warden, sends the person to sign in, redeems the code with
//! PKCE, verifies the ID token against the published keys (RS256, ES256 and EdDSA), refreshes,
//! introspects, revokes and logs out, on SQLite and on two PostgreSQL nodes. Only the browser's
//! part (a session cookie and the consent form) is played by hand.

use std::io;

use base64::Engine;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreErrorResponseType, CoreJwsSigningAlgorithm, CoreRevocableToken, CoreTokenResponse,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndSessionUrl, HttpRequest, HttpResponse, IntrospectionUrl,
    IssuerUrl, LogoutRequest, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PostLogoutRedirectUrl, ProviderMetadataWithLogout,
    RedirectUrl, RequestTokenError, RevocationUrl, Scope, TokenIntrospectionResponse, TokenResponse,
};
use reqwest::StatusCode;
use warden_core::api::{CreateOidcClient, CreateServiceAccount};

use crate::api::{PgDatabase, TestServer};
use crate::forward_auth::http;
use crate::oidc_flow::{BYE, CB, PUBLIC, Rp, param, setup, with_issuer};

/// Sends the relying party's requests to `node`: the issuer's name stays in every URL (and
/// in every check), only the connection goes to the test server.
async fn relay(http: reqwest::Client, node: String, request: HttpRequest) -> Result<HttpResponse, io::Error> {
    let (parts, body) = request.into_parts();
    let url = parts.uri.to_string().replacen(PUBLIC, &node, 1);
    let mut outgoing = http.request(parts.method, url).body(body);
    for (name, value) in &parts.headers {
        outgoing = outgoing.header(name, value);
    }
    let response = outgoing.send().await.map_err(io::Error::other)?;
    let mut back = ::http::Response::builder().status(response.status());
    for (name, value) in response.headers() {
        back = back.header(name, value);
    }
    let body = response.bytes().await.map_err(io::Error::other)?;
    back.body(body.to_vec()).map_err(io::Error::other)
}

#[tokio::test]
async fn an_independent_relying_party_on_sqlite() {
    let server = TestServer::start_with(with_issuer).await;
    let rp = setup(&server).await;
    relying_party(&server, &rp, &rp).await;
}

#[tokio::test]
async fn an_independent_relying_party_on_two_postgresql_nodes() {
    let db = PgDatabase::create("oidc_rp");
    let key = base64::engine::general_purpose::STANDARD.encode([3u8; 32]);
    let node = |c: &mut warden_server::config::Config| {
        with_issuer(c);
        c.database.url = db.url();
        c.oidc.key_encryption_key = Some(key.clone());
    };
    let a = TestServer::start_with(node).await;
    let b = TestServer::start_with(node).await;
    let on_a = setup(&a).await;
    let on_b = Rp { url: b.url.clone(), http: http(), cookie: on_a.cookie.clone(), secret: on_a.secret.clone() };
    relying_party(&a, &on_a, &on_b).await;
    a.running.shutdown().await.unwrap();
    b.running.shutdown().await.unwrap();
}

/// Signs in through `rp`'s node and uses the tokens at `other`'s.
async fn relying_party(server: &TestServer, rp: &Rp, other: &Rp) {
    let net = http();
    let (to_a, to_b) = ((net.clone(), rp.url.clone()), (net.clone(), other.url.clone()));
    let at_a = move |r| relay(to_a.0.clone(), to_a.1.clone(), r);
    let at_b = move |r| relay(to_b.0.clone(), to_b.1.clone(), r);

    let metadata = ProviderMetadataWithLogout::discover_async(IssuerUrl::new(PUBLIC.into()).unwrap(), &at_a).await.expect("discovery");
    let end_session: EndSessionUrl = metadata.additional_metadata().end_session_endpoint.clone().expect("an end_session_endpoint");
    let client = CoreClient::from_provider_metadata(metadata, ClientId::new("app".into()), Some(ClientSecret::new(rp.secret.clone())))
        .set_redirect_uri(RedirectUrl::new(CB.into()).unwrap())
        .set_introspection_url(IntrospectionUrl::new(format!("{PUBLIC}/oidc/introspect")).unwrap())
        .set_revocation_url(RevocationUrl::new(format!("{PUBLIC}/oidc/revoke")).unwrap());

    // Sign in: the authorization URL is the library's, with its own state, nonce and PKCE.
    let sign_in = || async {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .add_scope(Scope::new("profile".into()))
            .add_scope(Scope::new("email".into()))
            .set_pkce_challenge(challenge)
            .url();
        let landed = rp.browse(url.as_str().strip_prefix(PUBLIC).unwrap()).await;
        assert_eq!(param(&landed, "state").as_deref(), Some(state.secret().as_str()));
        let code = AuthorizationCode::new(param(&landed, "code").unwrap());
        let tokens: CoreTokenResponse =
            client.exchange_code(code).unwrap().set_pkce_verifier(verifier).request_async(&at_a).await.expect("tokens");
        (tokens, nonce)
    };
    let (tokens, nonce) = sign_in().await;
    let id_token = tokens.id_token().expect("an ID token");
    let verifier = client.id_token_verifier();
    let claims = id_token.claims(&verifier, &nonce).expect("the ID token verifies");
    assert_eq!(claims.preferred_username().map(|u| u.as_str()), Some("alice"));
    assert_eq!(claims.issuer().as_str(), PUBLIC);
    let alg = id_token.signing_alg().unwrap().clone();
    assert_eq!(alg, CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256);
    let expected = AccessTokenHash::from_token(tokens.access_token(), &alg, id_token.signing_key(&verifier).unwrap()).unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected));
    let info = client.introspect(tokens.access_token()).request_async(&at_b).await.unwrap();
    assert!(info.active());
    assert_eq!(info.client_id().map(|c| c.as_str()), Some("app"));
    let user = client.user_info(tokens.access_token().clone(), Some(claims.subject().clone())).unwrap().request_async(&at_b).await;
    let user: openidconnect::core::CoreUserInfoClaims = user.expect("userinfo");
    assert_eq!(user.email().map(|e| e.as_str()), None, "alice has no address");

    // Refresh, then the spent refresh token at the other node: refused, and the chain ends.
    let refresh = tokens.refresh_token().unwrap();
    let renewed = client.exchange_refresh_token(refresh).unwrap().request_async(&at_a).await.expect("a refresh");
    match client.exchange_refresh_token(refresh).unwrap().request_async(&at_b).await {
        Err(RequestTokenError::ServerResponse(e)) => assert_eq!(*e.error(), CoreErrorResponseType::InvalidGrant),
        other => panic!("a reused refresh token must be refused: {other:?}"),
    }
    assert!(client.exchange_refresh_token(renewed.refresh_token().unwrap()).unwrap().request_async(&at_a).await.is_err());

    // Revocation at one node, refused at the other.
    let (tokens, _) = sign_in().await;
    client.revoke_token(CoreRevocableToken::from(tokens.refresh_token().unwrap().clone())).unwrap().request_async(&at_a).await.unwrap();
    assert!(client.exchange_refresh_token(tokens.refresh_token().unwrap()).unwrap().request_async(&at_b).await.is_err());

    // Logout with the ID token as hint: back to the registered address, the session ended.
    let (tokens, _) = sign_in().await;
    let url = LogoutRequest::from(end_session)
        .set_id_token_hint(tokens.id_token().unwrap())
        .set_post_logout_redirect_uri(PostLogoutRedirectUrl::new(BYE.into()).unwrap())
        .set_state(CsrfToken::new("bye-state".into()))
        .http_get_url();
    let response = net.get(url.as_str().replacen(PUBLIC, &rp.url, 1)).header("cookie", rp.cookie.clone().unwrap()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(response.headers()["location"], format!("{BYE}?state=bye-state").as_str());
    assert!(client.exchange_refresh_token(tokens.refresh_token().unwrap()).unwrap().request_async(&at_b).await.is_err());

    // ES256 and EdDSA clients: the library verifies their ID tokens with the published keys,
    // and client credentials work for a client tied to a service account.
    let admin = server.sysadmin().await;
    server
        .idm()
        .await
        .create_service_account(&CreateServiceAccount { name: "reporter".into(), ..CreateServiceAccount::default() })
        .await
        .unwrap();
    let browser = Rp { cookie: Some(fresh_cookie(server).await), url: rp.url.clone(), http: http(), secret: String::new() };
    for (name, alg, expected) in
        [("app-es", "ES256", CoreJwsSigningAlgorithm::EcdsaP256Sha256), ("app-ed", "EdDSA", CoreJwsSigningAlgorithm::EdDsa)]
    {
        let created = admin
            .create_oidc_client(&CreateOidcClient {
                client_id: name.into(),
                redirect_uris: vec![CB.into()],
                first_party: true,
                signing_alg: Some(alg.into()),
                service_account: Some("reporter".into()),
                ..CreateOidcClient::default()
            })
            .await
            .unwrap();
        let metadata = ProviderMetadataWithLogout::discover_async(IssuerUrl::new(PUBLIC.into()).unwrap(), &at_b).await.unwrap();
        let secret = created.client_secret.unwrap().expose().to_owned();
        let client = CoreClient::from_provider_metadata(metadata, ClientId::new(name.into()), Some(ClientSecret::new(secret)))
            .set_redirect_uri(RedirectUrl::new(CB.into()).unwrap());
        let (challenge, pkce) = PkceCodeChallenge::new_random_sha256();
        let (url, _, nonce) = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .set_pkce_challenge(challenge)
            .url();
        let landed = browser.browse(url.as_str().strip_prefix(PUBLIC).unwrap()).await;
        let code = AuthorizationCode::new(param(&landed, "code").expect("first party: no consent page"));
        let tokens = client.exchange_code(code).unwrap().set_pkce_verifier(pkce).request_async(&at_b).await.unwrap();
        let verifier = client.id_token_verifier().set_allowed_algs(vec![expected.clone()]);
        let id_token = tokens.id_token().unwrap();
        id_token.claims(&verifier, &nonce).unwrap_or_else(|e| panic!("{alg}: {e}"));
        assert_eq!(id_token.signing_alg().unwrap(), &expected);
        let machine = client.exchange_client_credentials().unwrap().request_async(&at_a).await.expect("client credentials");
        assert!(machine.refresh_token().is_none());
    }
}

async fn fresh_cookie(server: &TestServer) -> String {
    let session = server.anonymous().login("alice", "correct horse battery").await.unwrap().token.expose().to_owned();
    format!("{}={session}", server.running.context.config.forward_auth.cookie_name)
}
