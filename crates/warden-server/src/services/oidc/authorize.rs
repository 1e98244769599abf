//! The browser's side of the provider: the authorization request (sign in if needed, consent if
//! needed, then a code for the client) and RP-initiated logout.
//!
//! Nothing here ever sends a browser to a URI that was not registered for the client exactly:
//! an unknown client or redirect URI is said on a page, and so is a `post_logout_redirect_uri`
//! that the client did not register.

use serde_json::{Map, Value};
use warden_core::model::Subject;
use warden_core::oidc::request::{self, AuthorizationRequest, AuthorizeParams, Refusal, SignIn};
use warden_store::{Action, Change, SessionRecord};

use super::cache::CachedClient;
use super::jwt;
use super::provider::{Code, Issuer, Provider};
use crate::services::{Result, ServiceError};

/// The browser's session, as the provider needs it.
pub struct Browser {
    pub account: Subject,
    pub session: SessionRecord,
    /// A screen the account must pass first (a password to change, a factor to enrol).
    pub held_at: Option<&'static str>,
}

/// What to do with an authorization request.
#[derive(Debug, PartialEq, Eq)]
pub enum Authorized {
    /// Send the browser to the client (its redirect URI with a code, or with an error).
    ToClient(String),
    /// Say this on a page; the client is not told.
    Refused(String),
    /// Sign in (again) first: this page of Warden's.
    SignIn(String),
    /// The account must pass this screen first.
    Held(&'static str),
    /// Ask the person.
    Consent(ConsentPrompt),
}

/// What the consent page shows.
#[derive(Debug, PartialEq, Eq)]
pub struct ConsentPrompt {
    pub client_id: String,
    pub client_name: String,
    pub scopes: Vec<String>,
    pub claims: Vec<String>,
}

/// The person's answer on the consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    NotAsked,
    Allowed,
    Denied,
}

impl Provider {
    /// Judges an authorization request for the browser's session (if any) and says what comes
    /// next. `consent` is the answer posted from the consent page, if this is that post.
    pub async fn authorize(
        &self,
        issuer: &Issuer,
        params: &AuthorizeParams,
        browser: Option<&Browser>,
        consent: Consent,
    ) -> Result<Authorized> {
        let ready = self.ready().await?;
        let Some(client_id) = params.client_id.as_deref().filter(|c| !c.is_empty()) else {
            return Ok(Authorized::Refused("The request names no application (client_id).".into()));
        };
        let Some(client) = self.client_of(issuer, client_id, self.ctx.now()).await? else {
            return Ok(Authorized::Refused(format!("No application {client_id:?} is registered here.")));
        };
        let mut req = match request::check(&client.client, params) {
            Ok(r) => r,
            Err(Refusal::Page(why)) => return Ok(Authorized::Refused(format!("The request cannot be served: {why}."))),
            Err(Refusal::Redirect { error, description }) => {
                let redirect_uri = params.redirect_uri.clone().unwrap_or_default();
                let state = params.state.as_deref().filter(|s| s.len() <= request::MAX_OPAQUE_LEN);
                return Ok(Authorized::ToClient(error_uri(&redirect_uri, issuer, error, &description, state)));
            }
        };
        req.signed_in_after = params.signed_in_after.as_deref().and_then(|m| Provider::open_login_marker(&ready, m, client_id));
        let now = self.ctx.now().unix_timestamp();
        let refuse = |error: &'static str, why: &str| {
            Ok(Authorized::ToClient(error_uri(&req.redirect_uri, issuer, error, why, req.state.as_deref())))
        };

        let Some(browser) = browser else {
            if req.prompt.none {
                return refuse("login_required", "nobody is signed in");
            }
            return Ok(Authorized::SignIn(Self::sign_in_url(&ready, issuer, params, &req, now)?));
        };
        if let Some(screen) = browser.held_at {
            if req.prompt.none {
                return refuse("interaction_required", "the account must act on Warden first");
            }
            return Ok(Authorized::Held(screen));
        }
        let auth_time = browser.session.created_at.unix_timestamp();
        if request::sign_in(&req, auth_time, browser.session.auth_strength, now) == SignIn::Needed {
            if req.prompt.none {
                return refuse("login_required", "a new or stronger sign-in is needed");
            }
            return Ok(Authorized::SignIn(Self::sign_in_url(&ready, issuer, params, &req, now)?));
        }
        match consent {
            Consent::Denied => return refuse("access_denied", "the person did not allow it"),
            Consent::Allowed => {
                let action = Action::OidcConsentGrant { client: client.client.client_id.clone(), scopes: req.scopes.clone() };
                let change = Change::new(self.ctx.now(), Some(&browser.account), action, Some(&browser.account));
                self.ctx.store.grant_oidc_consent(&change, browser.account.id, client.client.id, &req.scopes).await?;
            }
            Consent::NotAsked => {
                if self.consent_needed(&client, &req, browser).await? {
                    if req.prompt.none {
                        return refuse("consent_required", "the person has not allowed this application");
                    }
                    return Ok(Authorized::Consent(ConsentPrompt {
                        client_id: client.client.client_id.to_string(),
                        client_name: client.client.display_name.clone(),
                        scopes: req.scopes.clone(),
                        claims: client.client.claims.iter().map(|c| c.as_str().to_owned()).collect(),
                    }));
                }
            }
        }
        let code = Code {
            iss: issuer.url.clone(),
            client: client.client.id,
            account: browser.account.id,
            session: browser.session.id,
            redirect_uri: req.redirect_uri.clone(),
            scopes: req.scopes.clone(),
            nonce: req.nonce.clone(),
            challenge: req.code_challenge.clone(),
            auth_time,
            strength: browser.session.auth_strength,
            exp: now + self.times.code_secs,
        };
        let code = Provider::seal_code(&ready, &code)?;
        let mut query = vec![("code", code.as_str()), ("iss", issuer.url.as_str())];
        if let Some(state) = req.state.as_deref() {
            query.push(("state", state));
        }
        Ok(Authorized::ToClient(with_query(&req.redirect_uri, &query)))
    }

    /// Whether the person must be asked: never for a first-party client; else unless they
    /// allowed every scope asked before (and `prompt=consent` does not ask again).
    async fn consent_needed(&self, client: &CachedClient, req: &AuthorizationRequest, browser: &Browser) -> Result<bool> {
        if client.client.first_party && !req.prompt.consent {
            return Ok(false);
        }
        if req.prompt.consent {
            return Ok(true);
        }
        let given = self.ctx.store.oidc_consent(browser.account.id, client.client.id).await?.unwrap_or_default();
        Ok(!req.scopes.iter().all(|s| given.contains(s)))
    }

    /// `/login`, coming back to this request: with `fresh` so that a browser signed in already
    /// is asked again, the `login_hint` as the name, and for `prompt=login` the sealed marker
    /// that says a sign-in after now answers it.
    fn sign_in_url(
        ready: &super::provider::Ready,
        issuer: &Issuer,
        params: &AuthorizeParams,
        req: &AuthorizationRequest,
        now: i64,
    ) -> Result<String> {
        let mut back = params.clone();
        back.signed_in_after = if req.prompt.login { Some(Provider::seal_login_marker(ready, now, &req.client_id)?) } else { None };
        // `prompt=login` stays: the marker says when the sign-in that answers it happened.
        let query = serde_urlencoded::to_string(back.pairs()).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let rd = format!("{}/authorize?{query}", issuer.path);
        let mut login = vec![("fresh", "1"), ("rd", rd.as_str())];
        if let Some(hint) = &req.login_hint {
            login.push(("name", hint.as_str()));
        }
        Ok(with_query("/login", &login))
    }

    /// Where a consent page's form may send the browser: the request's redirect URI when it is
    /// registered for its client (for the page's `form-action`).
    pub async fn redirect_target(&self, issuer: &Issuer, params: &AuthorizeParams) -> Option<String> {
        let client = self.client_of(issuer, params.client_id.as_deref()?, self.ctx.now()).await.ok()??;
        let uri = params.redirect_uri.as_deref()?;
        client.client.redirect_uris.iter().any(|u| u == uri).then(|| uri.to_owned())
    }

    /// RP-initiated logout: checks the hint and the return URI and says what to do.
    pub async fn end_session(
        &self,
        issuer: &Issuer,
        req: &LogoutRequest,
        browser: Option<&Browser>,
        confirmed: bool,
    ) -> Result<EndSession> {
        let ready = self.ready().await?;
        let hint = match req.id_token_hint.as_deref().filter(|h| !h.is_empty()) {
            None => None,
            Some(token) => match self.hint_claims(&ready, issuer, token).await? {
                Some(claims) => Some(claims),
                None => return Ok(EndSession::Refused("The sign-out request carries a token Warden did not issue.".into())),
            },
        };
        let hinted_client = hint.as_ref().and_then(|c| match c.get("aud") {
            Some(Value::String(a)) => Some(a.clone()),
            Some(Value::Array(a)) => a.first().and_then(Value::as_str).map(str::to_owned),
            _ => None,
        });
        let named = req.client_id.as_deref().filter(|c| !c.is_empty());
        if let (Some(a), Some(b)) = (hinted_client.as_deref(), named)
            && a != b
        {
            return Ok(EndSession::Refused("The sign-out request names two different applications.".into()));
        }
        let client = match hinted_client.as_deref().or(named) {
            Some(id) => self.client_of(issuer, id, self.ctx.now()).await?,
            None => None,
        };
        let back = match req.post_logout_redirect_uri.as_deref().filter(|u| !u.is_empty()) {
            None => None,
            Some(uri) => match &client {
                Some(c) if c.client.post_logout_redirect_uris.iter().any(|u| u == uri) => {
                    let query: Vec<(&str, &str)> = req.state.as_deref().map(|s| vec![("state", s)]).unwrap_or_default();
                    Some(with_query(uri, &query))
                }
                _ => return Ok(EndSession::Refused(format!("{uri:?} is not a sign-out return address registered for the application."))),
            },
        };
        let client_name = client.as_ref().map(|c| c.client.display_name.clone());
        let Some(browser) = browser else { return Ok(EndSession::Done { end_browser_session: false, back }) };
        let hint_is_theirs =
            hint.as_ref().and_then(|c| c.get("sub")).and_then(Value::as_str) == Some(browser.account.id.to_string().as_str());
        if hint_is_theirs || confirmed {
            return Ok(EndSession::Done { end_browser_session: true, back });
        }
        Ok(EndSession::Confirm { client_name, back_target: back })
    }

    /// The claims of an ID token this issuer signed (expired ones too: a hint may be old).
    async fn hint_claims(&self, ready: &super::provider::Ready, issuer: &Issuer, token: &str) -> Result<Option<Map<String, Value>>> {
        let Ok(parsed) = jwt::parse(token) else { return Ok(None) };
        let ring = ready.keys.with_kid(&parsed.kid, self.ctx.now()).await?;
        if jwt::verify(&parsed, &ring).is_err() || parsed.claims.get("iss").and_then(Value::as_str) != Some(issuer.url.as_str()) {
            return Ok(None);
        }
        Ok(Some(parsed.claims))
    }
}

/// The query of an end-session request. No `Debug`: `id_token_hint` is a token.
#[derive(Clone, Default, serde::Deserialize, serde::Serialize)]
pub struct LogoutRequest {
    pub id_token_hint: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
    pub client_id: Option<String>,
}

/// What an end-session request comes to.
#[derive(Debug, PartialEq, Eq)]
pub enum EndSession {
    /// Sign out (if `end_browser_session`), then go `back` to the client or show a page.
    Done {
        end_browser_session: bool,
        back: Option<String>,
    },
    /// Ask the person to confirm (no valid hint of theirs).
    Confirm {
        client_name: Option<String>,
        back_target: Option<String>,
    },
    Refused(String),
}

/// `uri` with `query` appended (after its own query, if it has one).
pub fn with_query(uri: &str, query: &[(&str, &str)]) -> String {
    if query.is_empty() {
        return uri.to_owned();
    }
    let encoded = serde_urlencoded::to_string(query).unwrap_or_default();
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{encoded}")
}

fn error_uri(redirect_uri: &str, issuer: &Issuer, error: &str, description: &str, state: Option<&str>) -> String {
    let mut query = vec![("error", error), ("error_description", description), ("iss", issuer.url.as_str())];
    if let Some(state) = state {
        query.push(("state", state));
    }
    with_query(redirect_uri, &query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_append_after_a_registered_query() {
        assert_eq!(with_query("https://a.example/cb", &[("code", "x y")]), "https://a.example/cb?code=x+y");
        assert_eq!(with_query("https://a.example/cb?tenant=1", &[("code", "c")]), "https://a.example/cb?tenant=1&code=c");
        assert_eq!(with_query("https://a.example/cb", &[]), "https://a.example/cb");
    }
}
