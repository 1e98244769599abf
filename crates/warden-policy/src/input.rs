//! The documents a decision is made from and returns: the original request, the subject
//! (when the request is authenticated), and the decision with the headers to pass on.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The original request, as the reverse proxy forwarded it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestInfo {
    pub method: String,
    pub scheme: String,
    pub host: String,
    pub path: String,
    #[serde(default)]
    pub query: String,
    /// Lower-cased names; credentials (cookie, authorization) are removed.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The client's address, when the proxy said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

impl RequestInfo {
    /// This request as a borrowed view, for [`crate::RuleSet::matching`] and policies.
    pub fn view(&self) -> RequestView<'_> {
        RequestView {
            method: &self.method,
            scheme: &self.scheme,
            host: &self.host,
            path: &self.path,
            query: &self.query,
            headers: HeaderList::Map(&self.headers),
            client: self.client.as_deref(),
        }
    }
}

/// The original request, borrowed from wherever the server read it: rules match on it and a
/// policy's input is built from it, without copying every field into a [`RequestInfo`] on
/// each request. The method is upper-case, the scheme and host lower-case (the server
/// normalises them); the fields mean what they mean in [`RequestInfo`].
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    pub method: &'a str,
    pub scheme: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: HeaderList<'a>,
    pub client: Option<&'a str>,
}

/// The request's headers for a policy: lower-case names, credentials removed; when a name
/// repeats, the last value counts.
#[derive(Debug, Clone, Copy)]
pub enum HeaderList<'a> {
    /// Not copied: the policy does not read them.
    Omitted,
    Pairs(&'a [(&'a str, &'a str)]),
    Map(&'a BTreeMap<String, String>),
}

impl HeaderList<'_> {
    /// Calls `f` with each (name, value) pair, in no particular order.
    pub fn each(&self, mut f: impl FnMut(&str, &str)) {
        match *self {
            Self::Omitted => {}
            Self::Pairs(pairs) => pairs.iter().for_each(|(name, value)| f(name, value)),
            Self::Map(map) => map.iter().for_each(|(name, value)| f(name, value)),
        }
    }
}

/// Who is asking, as far as the decision needs to know.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectInfo {
    pub id: String,
    pub name: String,
    /// `user` or `service_account`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// Groups the subject is effectively a member of.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Roles bound to it, directly or through groups.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Its resolved permissions in `tenant` (and the rule's namespace, if any).
    #[serde(default)]
    pub permissions: Vec<String>,
    /// `password` (session or Basic) or `token` (API token); `mfa` and `passkey` once those
    /// credentials exist.
    pub auth_strength: String,
    /// `session`, `api_token` or `basic`.
    pub token_kind: String,
    pub tenant: String,
}

/// What a Rego policy sees as `input`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyInput {
    pub request: RequestInfo,
    /// Absent (undefined in Rego) when the request carries no valid credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<SubjectInfo>,
}

/// A decision: pass or not, extra headers for the upstream (on allow) or the client (on deny),
/// and for a refusal its status and body (an allowing decision has neither).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub allow: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}
