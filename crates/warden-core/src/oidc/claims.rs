//! What a token or the userinfo answer says of an account.
//!
//! The standard claims follow the scopes (`profile`: `preferred_username`, `name`,
//! `given_name`, `family_name` and the mapped additional fields; `email`: `email` and
//! `email_verified`), `sub` is the account's stable id. The list claims a client opts into
//! (`groups`, `roles`, `permissions`) can be long: in a token they are held to a byte budget,
//! because tokens travel in headers and a proxy answers an oversized one with HTTP 431. The
//! overflow rule: the lists are taken in the order groups, roles, permissions, each whole or
//! not at all; one that does not fit in what is left of the budget is left out of the token
//! and named as a distributed claim (`_claim_names` / `_claim_sources`, OpenID Connect Core
//! §5.6.2) whose source is the userinfo endpoint, which always answers with every list whole.

use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::ClaimSet;

/// The default budget for list claims in one token, in bytes of JSON.
pub const DEFAULT_LIST_BUDGET: usize = 4096;

/// The account, as the claims describe it.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    pub id: Uuid,
    pub name: String,
    pub display_name: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    /// The primary address and whether it is verified.
    pub email: Option<(String, bool)>,
    /// Additional fields mapped to claims (`oidc.field_claims`): claim name and value.
    pub fields: Vec<(String, Value)>,
}

/// The list claims a client opted into, computed for the account.
#[derive(Debug, Clone, Default)]
pub struct Lists {
    pub groups: Option<Vec<String>>,
    pub roles: Option<Vec<String>>,
    pub permissions: Option<Vec<String>>,
}

impl Lists {
    fn each(&self) -> [(ClaimSet, Option<&Vec<String>>); 3] {
        [
            (ClaimSet::Groups, self.groups.as_ref()),
            (ClaimSet::Roles, self.roles.as_ref()),
            (ClaimSet::Permissions, self.permissions.as_ref()),
        ]
    }
}

/// The claims names a standard claim may not be replaced by a mapped field.
const RESERVED: [&str; 20] = [
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "sid",
    "scope",
    "client_id",
    "groups",
    "roles",
    "permissions",
    "_claim_names",
    "_claim_sources",
];

/// Whether a mapped field may be published as the claim `name`.
pub fn is_mappable(name: &str) -> bool {
    !RESERVED.contains(&name)
        && !matches!(name, "preferred_username" | "name" | "given_name" | "family_name" | "email" | "email_verified")
        && !name.is_empty()
}

/// The claims `scopes` release of `identity`, `sub` first.
pub fn standard(identity: &Identity, scopes: &[String]) -> Map<String, Value> {
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(identity.id.to_string()));
    let has = |s: &str| scopes.iter().any(|x| x == s);
    if has("profile") {
        claims.insert("preferred_username".into(), json!(identity.name));
        claims.insert("name".into(), json!(identity.display_name.as_deref().unwrap_or(&identity.name)));
        if let Some(g) = &identity.given_name {
            claims.insert("given_name".into(), json!(g));
        }
        if let Some(f) = &identity.family_name {
            claims.insert("family_name".into(), json!(f));
        }
        for (name, value) in &identity.fields {
            if is_mappable(name) {
                claims.insert(name.clone(), value.clone());
            }
        }
    }
    if has("email")
        && let Some((address, verified)) = &identity.email
    {
        claims.insert("email".into(), json!(address));
        claims.insert("email_verified".into(), json!(verified));
    }
    claims
}

/// Adds every list whole (the userinfo answer).
pub fn add_all(claims: &mut Map<String, Value>, lists: &Lists) {
    for (set, list) in lists.each() {
        if let Some(list) = list {
            claims.insert(set.as_str().into(), json!(list));
        }
    }
}

/// Adds the lists that fit in `budget` bytes, in order, each whole; those that do not are named
/// as distributed claims served by `userinfo_endpoint`. Returns the sets left out.
pub fn add_within(claims: &mut Map<String, Value>, lists: &Lists, budget: usize, userinfo_endpoint: &str) -> Vec<ClaimSet> {
    let mut left = budget;
    let mut out: Vec<ClaimSet> = Vec::new();
    for (set, list) in lists.each() {
        let Some(list) = list else { continue };
        let value = json!(list);
        // The claim's own bytes: `"name":[…],`.
        let size = set.as_str().len() + 4 + value.to_string().len();
        if size <= left {
            left -= size;
            claims.insert(set.as_str().into(), value);
        } else {
            out.push(set);
        }
    }
    if !out.is_empty() {
        let names: Map<String, Value> = out.iter().map(|s| (s.as_str().to_owned(), json!("userinfo"))).collect();
        claims.insert("_claim_names".into(), Value::Object(names));
        claims.insert("_claim_sources".into(), json!({ "userinfo": { "endpoint": userinfo_endpoint } }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Identity {
        Identity {
            id: Uuid::from_u128(7),
            name: "alice".into(),
            display_name: Some("Alice Liddell".into()),
            given_name: Some("Alice".into()),
            family_name: None,
            email: Some(("alice@example.org".into(), true)),
            fields: vec![("department".into(), json!("R&D")), ("sub".into(), json!("forged"))],
        }
    }

    #[test]
    fn scopes_decide_the_standard_claims() {
        let only_openid = standard(&alice(), &["openid".into()]);
        assert_eq!(only_openid.len(), 1);
        assert_eq!(only_openid["sub"], json!(Uuid::from_u128(7).to_string()));
        let all = standard(&alice(), &["openid".into(), "profile".into(), "email".into()]);
        assert_eq!(all["preferred_username"], json!("alice"));
        assert_eq!(all["name"], json!("Alice Liddell"));
        assert_eq!(all["given_name"], json!("Alice"));
        assert_eq!(all["email_verified"], json!(true));
        assert_eq!(all["department"], json!("R&D"));
        // A mapped field never replaces a protocol claim.
        assert_eq!(all["sub"], json!(Uuid::from_u128(7).to_string()));
    }

    #[test]
    fn lists_that_do_not_fit_go_to_userinfo_whole() {
        let groups: Vec<String> = (0..1000).map(|i| format!("group-{i:04}")).collect();
        let lists = Lists { groups: Some(groups.clone()), roles: Some(vec!["viewer".into()]), permissions: None };
        let mut claims = Map::new();
        let out = add_within(&mut claims, &lists, DEFAULT_LIST_BUDGET, "https://id.example.org/oidc/userinfo");
        assert_eq!(out, vec![ClaimSet::Groups]);
        assert!(!claims.contains_key("groups"));
        assert_eq!(claims["roles"], json!(["viewer"]));
        assert_eq!(claims["_claim_names"], json!({"groups": "userinfo"}));
        assert_eq!(claims["_claim_sources"]["userinfo"]["endpoint"], json!("https://id.example.org/oidc/userinfo"));
        assert!(Value::Object(claims).to_string().len() < DEFAULT_LIST_BUDGET);
        let mut full = Map::new();
        add_all(&mut full, &lists);
        assert_eq!(full["groups"].as_array().map(Vec::len), Some(1000));
    }

    #[test]
    fn lists_within_the_budget_are_all_there() {
        let lists = Lists { groups: Some(vec!["ops".into()]), roles: Some(vec![]), permissions: Some(vec!["app:read".into()]) };
        let mut claims = Map::new();
        assert!(add_within(&mut claims, &lists, DEFAULT_LIST_BUDGET, "u").is_empty());
        assert_eq!(claims["groups"], json!(["ops"]));
        assert_eq!(claims["roles"], json!([]));
        assert!(!claims.contains_key("_claim_names"));
    }
}
