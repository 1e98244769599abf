//! Warden's rules, free of I/O.
//!
//! This crate says what a valid directory looks like and who may change it: names, accounts,
//! groups and their membership graph, credentials' pure parts (token formats, hashing of
//! high-entropy secrets) and access decisions. It never touches a clock, a socket or a
//! database: time is an argument, storage is someone else's job. The wire types of the REST
//! API live in [`api`] so that server and client agree on them by construction.
//!
//! Architecture invariant: nothing here is `async`, and nothing here depends on sqlx, axum
//! or reqwest.

pub mod access;
pub mod api;
pub mod authz;
pub mod builtin;
pub mod change;
pub mod credential;
pub mod error;
pub mod fields;
pub mod kratos;
pub mod membership;
pub mod mfa;
pub mod model;
pub mod name;
pub mod namespace;
pub mod oidc;
pub mod password_policy;
pub mod permission;
pub mod preferences;
pub mod throttle;
pub mod timestamp;
pub mod transfer;

pub use error::CoreError;
pub use name::Name;
