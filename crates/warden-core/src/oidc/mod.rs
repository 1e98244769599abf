//! OpenID Connect clients: the applications that will sign people in through Warden.
//!
//! A client is registered by an administrator before the provider serves it, and what it may
//! ask for is fixed here: the exact redirect URIs (compared as strings, never as patterns: a
//! wildcard or a fragment is refused, so a stolen code can only travel to a URI named in
//! advance), the scopes, the opt-in claim sets and the signing algorithm of its ID tokens. A
//! confidential client authenticates with a secret that is only ever stored hashed; a public
//! one (a native or single-page app) has none.
//!
//! The provider's own rules live beside: [`request`] (what an authorization request may ask
//! and how it is judged), [`pkce`] (the proof a code's redeemer must give), and [`claims`]
//! (what a token says of an account, within a size cap).

pub mod claims;
pub mod pkce;
pub mod request;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::model::Subject;
use crate::{CoreError, Name};

/// The scopes a client may ask for unless it is registered with others.
pub const DEFAULT_SCOPES: [&str; 3] = ["openid", "profile", "email"];
/// The longest redirect URI accepted.
pub const MAX_URI_LEN: usize = 2000;
/// The most redirect URIs (of either kind) one client may have.
pub const MAX_URIS: usize = 32;
/// The most scopes one client may have.
pub const MAX_SCOPES: usize = 32;

/// How a client's ID tokens will be signed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SigningAlg {
    #[default]
    #[serde(rename = "RS256")]
    Rs256,
    #[serde(rename = "ES256")]
    Es256,
    #[serde(rename = "EdDSA")]
    EdDsa,
}

impl SigningAlg {
    pub const ALL: [Self; 3] = [Self::Rs256, Self::Es256, Self::EdDsa];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// The stored or typed text back.
    pub fn parse(raw: &str) -> Result<Self, CoreError> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == raw)
            .ok_or_else(|| CoreError::validation("signing_alg", format!("must be RS256, ES256 or EdDSA (got {raw:?})")))
    }
}

/// A set of claims a client opts into, beyond the standard ones its scopes give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ClaimSet {
    /// The names of the groups the account is an effective member of.
    Groups,
    /// The roles bound to the account.
    Roles,
    /// The account's effective permissions in the client's tenant and namespace.
    Permissions,
}

impl ClaimSet {
    pub const ALL: [Self; 3] = [Self::Groups, Self::Roles, Self::Permissions];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Groups => "groups",
            Self::Roles => "roles",
            Self::Permissions => "permissions",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, CoreError> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == raw)
            .ok_or_else(|| CoreError::validation("claims", format!("must be groups, roles or permissions (got {raw:?})")))
    }
}

/// A registered client (its secret, if it has one, is never part of it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OidcClient {
    pub id: Uuid,
    /// The OAuth `client_id`: the client's name, unique, under the rules of every name.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub client_id: Name,
    pub display_name: String,
    /// No secret: the client cannot keep one (PKCE will be required of it).
    pub public: bool,
    /// Trusted by the operator: people will not be asked to consent.
    pub first_party: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub scopes: Vec<String>,
    pub claims: Vec<ClaimSet>,
    /// Where the `permissions` claim is computed (default: the `default` tenant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub permissions_tenant: Option<Name>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions_namespace: Option<String>,
    pub signing_alg: SigningAlg,
    /// The service account the client acts as in the client-credentials grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<Subject>,
    #[serde(with = "crate::timestamp")]
    pub created_at: OffsetDateTime,
    #[serde(with = "crate::timestamp")]
    pub updated_at: OffsetDateTime,
}

/// Checks a list of redirect URIs for `field`: each one valid ([`check_redirect_uri`]), no
/// duplicates, at most [`MAX_URIS`], and (unless `may_be_empty`) at least one.
pub fn check_redirect_uris(field: &'static str, uris: &[String], may_be_empty: bool) -> Result<Vec<String>, CoreError> {
    if uris.is_empty() && !may_be_empty {
        return Err(CoreError::validation(field, "at least one is needed"));
    }
    if uris.len() > MAX_URIS {
        return Err(CoreError::validation(field, format!("at most {MAX_URIS}")));
    }
    let mut checked: Vec<String> = Vec::with_capacity(uris.len());
    for uri in uris {
        check_redirect_uri(uri).map_err(|reason| CoreError::validation(field, format!("{uri:?}: {reason}")))?;
        if !checked.contains(uri) {
            checked.push(uri.clone());
        }
    }
    Ok(checked)
}

/// Why `uri` cannot be a redirect URI, if it cannot: it must be an absolute `https://` URL, an
/// `http://` URL on the loopback interface (`localhost` or `127.0.0.1`, any port: a native
/// app's local listener), or a private-use scheme named after a domain (`com.example.app:/cb`).
/// Redirect URIs are compared as exact strings, so a fragment, a wildcard or user info (which
/// would make a URI look like another host) is refused.
pub fn check_redirect_uri(uri: &str) -> Result<(), &'static str> {
    if uri.is_empty() {
        return Err("must not be empty");
    }
    if uri.len() > MAX_URI_LEN {
        return Err("is too long");
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must not contain spaces or control characters");
    }
    if uri.contains('#') {
        return Err("must not have a fragment");
    }
    if uri.contains('*') {
        return Err("must not contain a wildcard: redirect URIs are compared exactly");
    }
    let (scheme, rest) = uri.split_once(':').ok_or("must be an absolute URI")?;
    let scheme_ok = scheme.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && scheme.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '.' | '-'));
    if !scheme_ok {
        return Err("must start with a lower-case scheme");
    }
    let authority = rest.strip_prefix("//").map(|after| after.split(['/', '?']).next().unwrap_or_default());
    if authority.is_some_and(|a| a.contains('@')) {
        return Err("must not carry user info");
    }
    match scheme {
        "https" => match authority {
            Some(a) if !a.is_empty() && !a.starts_with(':') => Ok(()),
            _ => Err("an https URL needs a host"),
        },
        "http" => {
            let host = authority.map(|a| a.rsplit_once(':').map_or(a, |(host, _)| host));
            let port = authority.and_then(|a| a.rsplit_once(':')).map(|(_, port)| port);
            if !matches!(host, Some("localhost" | "127.0.0.1")) {
                return Err("plain http is allowed only on localhost or 127.0.0.1");
            }
            if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
                return Err("has an invalid port");
            }
            Ok(())
        }
        _ if !scheme.contains('.') => Err("must be https, http on localhost, or a private-use scheme such as com.example.app"),
        _ if rest.is_empty() => Err("needs a path after the scheme"),
        _ => Ok(()),
    }
}

/// Checks the allowed scopes (default [`DEFAULT_SCOPES`]): each a plain word, no duplicates.
pub fn check_scopes(scopes: &[String]) -> Result<Vec<String>, CoreError> {
    if scopes.is_empty() {
        return Ok(DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect());
    }
    if scopes.len() > MAX_SCOPES {
        return Err(CoreError::validation("scopes", format!("at most {MAX_SCOPES}")));
    }
    let mut checked: Vec<String> = Vec::with_capacity(scopes.len());
    for scope in scopes {
        let ok = !scope.is_empty() && scope.len() <= 128 && scope.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
        if !ok {
            return Err(CoreError::validation("scopes", format!("{scope:?} is not a scope (printable, no spaces or quotes)")));
        }
        if !checked.contains(scope) {
            checked.push(scope.clone());
        }
    }
    Ok(checked)
}

/// Parses the claim sets a client opts into, each once, in a stable order (empty entries are
/// skipped, so that an empty list can be typed as `--claims ""`).
pub fn parse_claims(claims: &[String]) -> Result<Vec<ClaimSet>, CoreError> {
    let mut parsed =
        claims.iter().map(String::as_str).map(str::trim).filter(|c| !c.is_empty()).map(ClaimSet::parse).collect::<Result<Vec<_>, _>>()?;
    parsed.sort();
    parsed.dedup();
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_accepted() {
        for uri in [
            "https://grafana.example.org/login/generic_oauth",
            "https://app.example.org:8443/cb?x=1",
            "http://localhost/cb",
            "http://localhost:8080/cb",
            "http://127.0.0.1:53682/",
            "com.example.app:/oauth2redirect",
            "com.example.app:/cb",
        ] {
            assert_eq!(check_redirect_uri(uri), Ok(()), "{uri}");
        }
    }

    #[test]
    fn redirect_uris_refused() {
        for uri in [
            "",
            "https://grafana.example.org/cb#frag",
            "https://*.example.org/cb",
            "https://grafana.example.org/*",
            "https://user:pw@grafana.example.org/cb",
            "https://evil.example@grafana.example.org/cb",
            "http://grafana.example.org/cb",
            "http://localhost.evil.example/cb",
            "http://localhost:/cb",
            "https:///cb",
            "https://:443/cb",
            "/relative/cb",
            "grafana.example.org/cb",
            "javascript:alert(1)",
            "HTTPS://grafana.example.org/cb",
            "https://grafana.example.org/a b",
            "com.example.app:",
        ] {
            assert!(check_redirect_uri(uri).is_err(), "{uri:?} must be refused");
        }
    }

    #[test]
    fn uri_lists_name_their_field() {
        let err = check_redirect_uris("redirect_uris", &[], false).unwrap_err();
        assert!(matches!(err, CoreError::Validation { ref field, .. } if field == "redirect_uris"));
        assert!(check_redirect_uris("post_logout_redirect_uris", &[], true).unwrap().is_empty());
        let err = check_redirect_uris("post_logout_redirect_uris", &["http://evil.example/".into()], true).unwrap_err();
        assert!(matches!(err, CoreError::Validation { ref field, .. } if field == "post_logout_redirect_uris"));
    }

    #[test]
    fn scopes_default_and_claims_parse() {
        assert_eq!(check_scopes(&[]).unwrap(), vec!["openid", "profile", "email"]);
        assert!(check_scopes(&["a b".into()]).is_err());
        assert_eq!(parse_claims(&["roles".into(), "groups".into(), "roles".into()]).unwrap(), vec![ClaimSet::Groups, ClaimSet::Roles]);
        assert!(parse_claims(&["everything".into()]).is_err());
        for alg in SigningAlg::ALL {
            assert_eq!(SigningAlg::parse(alg.as_str()).unwrap(), alg);
            assert_eq!(serde_json::to_value(alg).unwrap(), serde_json::Value::String(alg.as_str().into()));
        }
    }
}
