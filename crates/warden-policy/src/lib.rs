//! Forward-auth decisions, without I/O: which simple rule applies to a request and what it
//! requires, and what a Rego policy says.
//!
//! The server authenticates the request and resolves the subject (from its caches and the
//! authorization snapshot); this crate only judges. The CLI uses the same code to test
//! policies offline, so what `warden policy test` says is what the server will do.
//!
//! Architecture invariant: no network, no database, no clock; the policy files are read by
//! [`rego::Policy::load`] and nowhere else.

pub mod canonical;
pub mod glob;
pub mod input;
pub mod rego;
pub mod rules;
pub mod value;

pub use input::{Decision, HeaderList, PolicyInput, RequestInfo, RequestView, SubjectInfo};
pub use rules::{Action, Rule, RuleSet, Verdict};
pub use value::SubjectValue;

/// Errors of this layer; each has a stable code.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("invalid rule {rule}: {reason}")]
    Rule { rule: String, reason: String },
    #[error("cannot load policy: {0}")]
    Load(String),
    #[error("policy evaluation failed: {0}")]
    Eval(String),
    /// A forwarded request's path that has no one meaning (see [`canonical`]).
    #[error("the request's path is refused: {0}")]
    Path(&'static str),
    /// A forwarded request's host that is not a host.
    #[error("the request's host is refused: {0}")]
    Host(&'static str),
}

impl PolicyError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Rule { .. } => "config",
            Self::Load(_) => "policy.invalid",
            Self::Eval(_) => "policy.eval",
            Self::Path(_) => "forward.path_invalid",
            Self::Host(_) => "forward.host_invalid",
        }
    }
}

/// regorus reports a policy error as a source excerpt (`--> FILE:LINE:COL`, the line, a caret,
/// `error: MESSAGE`); one line says the same as `FILE:LINE:COL: MESSAGE`. Anything else is kept.
pub fn one_line(message: &str) -> String {
    let Some((before, excerpt)) = message.split_once("--> ") else { return message.to_owned() };
    let location = excerpt.lines().next().unwrap_or_default().trim();
    match excerpt.rsplit_once("error: ") {
        Some((_, reason)) if !location.is_empty() => format!("{before}{location}: {}", reason.trim()),
        _ => message.to_owned(),
    }
}
