//! The OpenID Connect provider's use cases: the registry of clients ([`clients`]), and the
//! provider itself: its keys ([`keys`]), tokens' signatures ([`jwt`]), what its hot endpoints
//! cache ([`cache`]), issuers, client authentication and claims ([`provider`]), the browser's
//! side of a sign-in ([`authorize`]), the clients' side ([`tokens`]), and a person's connected
//! applications ([`applications`]).

pub mod applications;
pub mod authorize;
pub mod cache;
pub mod clients;
pub mod jwt;
pub mod keys;
pub mod provider;
pub mod tokens;
