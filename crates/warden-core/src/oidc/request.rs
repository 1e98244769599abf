//! Judging an authorization request (OpenID Connect Core §3.1.2) against its client.
//!
//! Two kinds of refusal, and the difference matters: while the client or its redirect URI is in
//! doubt nothing may be sent to that URI (an attacker would choose it), so the person is told
//! on a page ([`Refusal::Page`]); once both are known good, errors travel back to the client
//! as `error=…` on its redirect URI ([`Refusal::Redirect`]).

use crate::access::AuthStrength;

use super::{OidcClient, pkce};

/// The longest `state` or `nonce` accepted: enough for any client's own encoding of its state,
/// short enough that a code and its tokens stay small.
pub const MAX_OPAQUE_LEN: usize = 512;
/// The longest `login_hint` accepted.
pub const MAX_HINT_LEN: usize = 256;

/// The query of `GET /authorize`, as sent.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
    pub acr_values: Option<String>,
    pub response_mode: Option<String>,
    /// Set by Warden itself on the way back from its sign-in page for `prompt=login`: the
    /// sign-in must be this recent. Not a parameter of the protocol; the provider authenticates
    /// it (it is MAC'd) before trusting it, and [`check`] leaves it unread.
    pub signed_in_after: Option<String>,
}

impl AuthorizeParams {
    /// The parameters that are set, by name, in the order of the protocol: what goes back into
    /// a query (the way back from the sign-in page) or a form (the consent page).
    pub fn pairs(&self) -> Vec<(&'static str, &str)> {
        [
            ("response_type", &self.response_type),
            ("client_id", &self.client_id),
            ("redirect_uri", &self.redirect_uri),
            ("scope", &self.scope),
            ("state", &self.state),
            ("nonce", &self.nonce),
            ("code_challenge", &self.code_challenge),
            ("code_challenge_method", &self.code_challenge_method),
            ("prompt", &self.prompt),
            ("max_age", &self.max_age),
            ("login_hint", &self.login_hint),
            ("acr_values", &self.acr_values),
            ("response_mode", &self.response_mode),
            ("signed_in_after", &self.signed_in_after),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
        .collect()
    }
}

/// What the person is to be asked, from `prompt`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    /// Never show a page: answer at once, or with an error.
    pub none: bool,
    /// Sign in again, whatever session there is.
    pub login: bool,
    /// Ask for consent even if it was given before.
    pub consent: bool,
}

/// A request that may be served: its client and redirect URI are known good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    /// Asked for and allowed, in the order asked, each once.
    pub scopes: Vec<String>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    /// The `S256` challenge, when one was sent (always, for a public client).
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    /// Seconds: a sign-in older than this must be repeated.
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// The weakest sign-in the client accepts (from `acr_values`).
    pub acr: Option<AcrLevel>,
    /// Unix seconds: a `prompt=login` has been answered by a sign-in at or after this (see
    /// [`AuthorizeParams::signed_in_after`]; set by the provider once it has checked the MAC).
    pub signed_in_after: Option<i64>,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The client or redirect URI cannot be trusted: say so on a page, send nothing anywhere.
    Page(String),
    /// An OAuth error for the client, sent to its (verified) redirect URI with `state`.
    Redirect { error: &'static str, description: String },
}

impl Refusal {
    fn redirect(error: &'static str, description: impl Into<String>) -> Self {
        Self::Redirect { error, description: description.into() }
    }
}

/// How strongly a client asks the person to have signed in: Warden's levels, as `acr` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AcrLevel {
    Password,
    Mfa,
    Passkey,
}

impl AcrLevel {
    pub const ALL: [Self; 3] = [Self::Password, Self::Mfa, Self::Passkey];

    /// The `acr` value, the same words as [`AuthStrength::level`].
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Mfa => "mfa",
            Self::Passkey => "passkey",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == raw)
    }

    /// The level a sign-in of `strength` reached.
    pub fn of(strength: AuthStrength) -> Self {
        Self::parse(strength.level()).unwrap_or(Self::Password)
    }

    /// Whether a sign-in of `strength` is at least this strong.
    pub fn met_by(self, strength: AuthStrength) -> bool {
        Self::of(strength) >= self
    }
}

/// Judges `params` for `client` (the one its `client_id` names; the caller looked it up).
pub fn check(client: &OidcClient, params: &AuthorizeParams) -> Result<AuthorizationRequest, Refusal> {
    let redirect_uri = params.redirect_uri.as_deref().filter(|u| !u.is_empty());
    let Some(redirect_uri) = redirect_uri else {
        return Err(Refusal::Page("the request names no redirect_uri".into()));
    };
    if !client.redirect_uris.iter().any(|u| u == redirect_uri) {
        return Err(Refusal::Page(format!("{redirect_uri:?} is not a redirect URI registered for this application")));
    }
    // From here on, errors go back to the client.
    if params.response_mode.as_deref().is_some_and(|m| m != "query") {
        return Err(Refusal::redirect("invalid_request", "only response_mode=query is supported"));
    }
    match params.response_type.as_deref() {
        Some("code") => {}
        None | Some("") => return Err(Refusal::redirect("invalid_request", "response_type is missing")),
        Some(_) => {
            return Err(Refusal::redirect("unsupported_response_type", "only the authorization code flow (response_type=code) is served"));
        }
    }
    let scopes = scopes(client, params.scope.as_deref())?;
    let state = opaque("state", params.state.as_deref())?;
    let nonce = opaque("nonce", params.nonce.as_deref())?;
    let code_challenge = challenge(client, params)?;
    let prompt = prompt(params.prompt.as_deref())?;
    let max_age = match params.max_age.as_deref().filter(|m| !m.is_empty()) {
        None => None,
        Some(raw) => match raw.parse::<i64>() {
            Ok(secs) if secs >= 0 => Some(secs),
            _ => return Err(Refusal::redirect("invalid_request", "max_age must be a number of seconds")),
        },
    };
    let login_hint = params.login_hint.as_deref().map(str::trim).filter(|h| !h.is_empty()).map(|h| h.chars().take(MAX_HINT_LEN).collect());
    let acr = params.acr_values.as_deref().and_then(|raw| raw.split(' ').filter_map(AcrLevel::parse).min());
    Ok(AuthorizationRequest {
        client_id: client.client_id.to_string(),
        redirect_uri: redirect_uri.to_owned(),
        scopes,
        state,
        nonce,
        code_challenge,
        prompt,
        max_age,
        login_hint,
        acr,
        signed_in_after: None,
    })
}

/// The scopes asked for: `openid` among them, each allowed to the client, each once.
fn scopes(client: &OidcClient, raw: Option<&str>) -> Result<Vec<String>, Refusal> {
    let mut out: Vec<String> = Vec::new();
    for scope in raw.unwrap_or_default().split(' ').filter(|s| !s.is_empty()) {
        if !client.scopes.iter().any(|s| s == scope) {
            return Err(Refusal::redirect("invalid_scope", format!("the scope {scope:?} is not allowed to this client")));
        }
        if !out.iter().any(|s| s == scope) {
            out.push(scope.to_owned());
        }
    }
    if !out.iter().any(|s| s == "openid") {
        return Err(Refusal::redirect("invalid_scope", "the openid scope is required"));
    }
    Ok(out)
}

fn opaque(name: &str, raw: Option<&str>) -> Result<Option<String>, Refusal> {
    match raw.filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) if v.len() > MAX_OPAQUE_LEN => {
            Err(Refusal::redirect("invalid_request", format!("{name} is longer than {MAX_OPAQUE_LEN} bytes")))
        }
        Some(v) => Ok(Some(v.to_owned())),
    }
}

/// The PKCE challenge: `S256` only; required of a public client.
fn challenge(client: &OidcClient, params: &AuthorizeParams) -> Result<Option<String>, Refusal> {
    let challenge = params.code_challenge.as_deref().filter(|c| !c.is_empty());
    let method = params.code_challenge_method.as_deref().filter(|m| !m.is_empty());
    match (challenge, method) {
        (None, None) if client.public => {
            Err(Refusal::redirect("invalid_request", "a public client must use PKCE (code_challenge with S256)"))
        }
        (None, None) => Ok(None),
        (None, Some(_)) => Err(Refusal::redirect("invalid_request", "code_challenge_method without code_challenge")),
        (Some(_), method) if method != Some(pkce::METHOD) => {
            Err(Refusal::redirect("invalid_request", "code_challenge_method must be S256 (plain is not accepted)"))
        }
        (Some(c), _) if !pkce::is_challenge(c) => Err(Refusal::redirect("invalid_request", "code_challenge is not an S256 challenge")),
        (Some(c), _) => Ok(Some(c.to_owned())),
    }
}

fn prompt(raw: Option<&str>) -> Result<Prompt, Refusal> {
    let mut prompt = Prompt::default();
    for value in raw.unwrap_or_default().split(' ').filter(|v| !v.is_empty()) {
        match value {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            // Warden holds one session per browser: there is no account to choose.
            "select_account" => {}
            other => return Err(Refusal::redirect("invalid_request", format!("prompt={other} is not supported"))),
        }
    }
    if prompt.none && (prompt.login || prompt.consent) {
        return Err(Refusal::redirect("invalid_request", "prompt=none cannot be combined with other values"));
    }
    Ok(prompt)
}

/// What the browser's session means for a request: go on, or why not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignIn {
    /// The session will do.
    Enough,
    /// There is none, it is too old, or it is too weak: sign in (again).
    Needed,
}

/// Whether a session that signed in at `auth_time` (Unix seconds) with `strength` serves
/// `request` at `now`: `prompt=login` (until the sign-in it asked for has happened), `max_age`
/// and the requested `acr` each can ask for a new one.
pub fn sign_in(request: &AuthorizationRequest, auth_time: i64, strength: AuthStrength, now: i64) -> SignIn {
    let stale = request.max_age.is_some_and(|max| now - auth_time > max);
    let asked_again = request.prompt.login && request.signed_in_after.is_none_or(|after| auth_time < after);
    let too_weak = request.acr.is_some_and(|acr| !acr.met_by(strength));
    if stale || asked_again || too_weak { SignIn::Needed } else { SignIn::Enough }
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;
    use uuid::Uuid;

    use super::*;
    use crate::Name;
    use crate::oidc::SigningAlg;

    fn client(public: bool) -> OidcClient {
        OidcClient {
            id: Uuid::nil(),
            client_id: Name::from_trusted("grafana".into()),
            display_name: "Grafana".into(),
            public,
            first_party: false,
            redirect_uris: vec!["https://grafana.example.org/cb".into()],
            post_logout_redirect_uris: vec![],
            scopes: vec!["openid".into(), "profile".into(), "email".into()],
            claims: vec![],
            permissions_tenant: None,
            permissions_namespace: None,
            signing_alg: SigningAlg::Rs256,
            service_account: None,
            created_at: OffsetDateTime::UNIX_EPOCH,
            updated_at: OffsetDateTime::UNIX_EPOCH,
        }
    }

    fn params() -> AuthorizeParams {
        AuthorizeParams {
            response_type: Some("code".into()),
            client_id: Some("grafana".into()),
            redirect_uri: Some("https://grafana.example.org/cb".into()),
            scope: Some("openid email openid".into()),
            state: Some("s".into()),
            nonce: Some("n".into()),
            code_challenge: Some(pkce::challenge_of("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")),
            code_challenge_method: Some("S256".into()),
            ..AuthorizeParams::default()
        }
    }

    fn redirected(r: Result<AuthorizationRequest, Refusal>) -> &'static str {
        match r {
            Err(Refusal::Redirect { error, .. }) => error,
            other => panic!("expected a redirected error, got {other:?}"),
        }
    }

    #[test]
    fn set_parameters_are_given_back_in_order() {
        let p = AuthorizeParams { prompt: Some("login".into()), ..params() };
        let names: Vec<&str> = p.pairs().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            names,
            ["response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge", "code_challenge_method", "prompt"]
        );
        assert!(AuthorizeParams::default().pairs().is_empty());
    }

    #[test]
    fn a_good_request_is_accepted() {
        let r = check(&client(true), &params()).unwrap();
        assert_eq!(r.scopes, vec!["openid", "email"]);
        assert_eq!(r.state.as_deref(), Some("s"));
        assert!(r.code_challenge.is_some());
    }

    #[test]
    fn an_unregistered_redirect_uri_is_never_redirected_to() {
        for uri in [
            None,
            Some(""),
            Some("https://evil.example/cb"),
            Some("https://grafana.example.org/cb/"),
            Some("https://grafana.example.org/cb?x"),
        ] {
            let p = AuthorizeParams { redirect_uri: uri.map(str::to_owned), ..params() };
            assert!(matches!(check(&client(false), &p), Err(Refusal::Page(_))), "{uri:?}");
        }
    }

    #[test]
    fn errors_after_the_redirect_uri_go_back_to_the_client() {
        let c = client(true);
        assert_eq!(
            redirected(check(&c, &AuthorizeParams { response_type: Some("token".into()), ..params() })),
            "unsupported_response_type"
        );
        assert_eq!(redirected(check(&c, &AuthorizeParams { scope: Some("profile".into()), ..params() })), "invalid_scope");
        assert_eq!(redirected(check(&c, &AuthorizeParams { scope: Some("openid admin".into()), ..params() })), "invalid_scope");
        assert_eq!(
            redirected(check(&c, &AuthorizeParams { code_challenge: None, code_challenge_method: None, ..params() })),
            "invalid_request"
        );
        assert_eq!(redirected(check(&c, &AuthorizeParams { code_challenge_method: Some("plain".into()), ..params() })), "invalid_request");
        assert_eq!(redirected(check(&c, &AuthorizeParams { code_challenge_method: None, ..params() })), "invalid_request");
        assert_eq!(redirected(check(&c, &AuthorizeParams { code_challenge: Some("short".into()), ..params() })), "invalid_request");
        assert_eq!(redirected(check(&c, &AuthorizeParams { prompt: Some("none login".into()), ..params() })), "invalid_request");
        assert_eq!(redirected(check(&c, &AuthorizeParams { max_age: Some("-1".into()), ..params() })), "invalid_request");
        assert_eq!(redirected(check(&c, &AuthorizeParams { state: Some("x".repeat(513)), ..params() })), "invalid_request");
        assert_eq!(redirected(check(&c, &AuthorizeParams { response_mode: Some("fragment".into()), ..params() })), "invalid_request");
        // A confidential client may leave PKCE out.
        assert!(check(&client(false), &AuthorizeParams { code_challenge: None, code_challenge_method: None, ..params() }).is_ok());
    }

    #[test]
    fn acr_values_ask_for_the_weakest_level_listed() {
        let r = check(&client(true), &AuthorizeParams { acr_values: Some("urn:other passkey mfa".into()), ..params() }).unwrap();
        assert_eq!(r.acr, Some(AcrLevel::Mfa));
        assert_eq!(sign_in(&r, 100, AuthStrength::Password, 200), SignIn::Needed);
        assert_eq!(sign_in(&r, 100, AuthStrength::PasswordTotp, 200), SignIn::Enough);
        assert_eq!(sign_in(&r, 100, AuthStrength::Passkey, 200), SignIn::Enough);
        let r = check(&client(true), &AuthorizeParams { acr_values: Some("urn:other".into()), ..params() }).unwrap();
        assert_eq!(r.acr, None);
    }

    #[test]
    fn max_age_and_prompt_login_ask_for_a_new_sign_in() {
        let r = check(&client(true), &AuthorizeParams { max_age: Some("60".into()), ..params() }).unwrap();
        assert_eq!(sign_in(&r, 100, AuthStrength::Password, 160), SignIn::Enough);
        assert_eq!(sign_in(&r, 100, AuthStrength::Password, 161), SignIn::Needed);
        let r = check(&client(true), &AuthorizeParams { prompt: Some("login".into()), ..params() }).unwrap();
        assert_eq!(sign_in(&r, 100, AuthStrength::Password, 100), SignIn::Needed);
        let back = AuthorizationRequest { signed_in_after: Some(150), ..r };
        assert_eq!(sign_in(&back, 149, AuthStrength::Password, 200), SignIn::Needed);
        assert_eq!(sign_in(&back, 150, AuthStrength::Password, 200), SignIn::Enough);
    }
}
