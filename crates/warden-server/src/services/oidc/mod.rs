//! The OpenID Connect provider's use cases. So far only the registry of clients: which
//! applications may sign people in through Warden, where their answers may be sent and what
//! they may ask for. The provider's own endpoints (authorization, token, userinfo) build on it.

pub mod clients;
