//! `wardend`'s integration tests, in one test binary (link time on 2 cores): a real server in
//! this process on ephemeral ports, real databases, real reverse proxies.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod authz;
mod first_hour;
mod forward_auth;
mod hardening;
mod kratos;
mod mail;
mod mfa_policy;
mod oidc;
mod oidc_flow;
mod oidc_rp;
mod passkeys;
mod password_policy;
mod preferences;
mod proxies;
mod recovery;
mod registration;
mod second_factor;
mod self_service;
mod sessions;
mod transfer;
mod ui;
