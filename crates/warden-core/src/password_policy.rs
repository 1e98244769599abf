//! Password quality: the rules a password must meet when it is set (never when it is used, so
//! existing passwords keep working). Length, a zxcvbn strength estimate, no account name or
//! e-mail local part inside, and not on a list of common passwords — the shipped one
//! (`data/common-passwords.txt`, see its header for the source) plus the operator's.
//! Every refusal is a `validation` error whose reason says what to fix.

use std::collections::HashSet;

use crate::error::CoreError;

/// The longest password accepted, in bytes (argon2 input stays bounded).
pub const MAX_LENGTH_BYTES: usize = 1024;
/// The lowest `min_length` an operator may configure.
pub const MIN_LENGTH_FLOOR: usize = 8;
/// Only this many leading characters are given to zxcvbn: its matching grows fast with the
/// length, and a longer password that is weak in its first 64 characters is weak anyway.
pub const SCORED_CHARS: usize = 64;
/// Name parts shorter than this are not looked for (a two-letter name is in many passwords).
const MIN_PERSONAL_PART: usize = 3;

const SHIPPED_LIST: &str = include_str!("../data/common-passwords.txt");

/// Whose password is being set: what it must not contain.
#[derive(Debug, Clone, Copy, Default)]
pub struct Owner<'a> {
    pub name: &'a str,
    pub emails: &'a [&'a str],
}

/// The configured rules. Built once at start; checking is pure.
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    min_length: usize,
    min_score: u8,
    /// Lower-cased: the shipped list and the operator's entries.
    denied: HashSet<String>,
}

impl Default for PasswordPolicy {
    /// The defaults: 12 characters, zxcvbn score 3, the shipped list only.
    fn default() -> Self {
        Self::new(12, 3, std::iter::empty::<String>()).unwrap_or_else(|_| unreachable!("the defaults are valid"))
    }
}

impl PasswordPolicy {
    /// `min_length` in characters (8..=1024), `min_score` 0..=4, and the operator's own
    /// entries (compared case-insensitively; blank lines and `#` comments skipped).
    pub fn new(min_length: usize, min_score: u8, extra: impl IntoIterator<Item = String>) -> Result<Self, CoreError> {
        if !(MIN_LENGTH_FLOOR..=MAX_LENGTH_BYTES).contains(&min_length) {
            return Err(CoreError::validation(
                "auth.password_min_length",
                format!("must lie between {MIN_LENGTH_FLOOR} and {MAX_LENGTH_BYTES}"),
            ));
        }
        if min_score > 4 {
            return Err(CoreError::validation("auth.password_min_score", "must lie between 0 and 4"));
        }
        let denied = SHIPPED_LIST.lines().map(str::to_owned).chain(extra).filter_map(|line| list_entry(&line)).collect();
        Ok(Self { min_length, min_score, denied })
    }

    pub fn min_length(&self) -> usize {
        self.min_length
    }

    /// Whether `password` is on the shipped or the operator's list (case-insensitively).
    pub fn is_listed(&self, password: &str) -> bool {
        self.denied.contains(&password.to_lowercase())
    }

    /// Checks a new password for `owner`; a refusal names `field` (the request's field).
    pub fn check(&self, field: &'static str, password: &str, owner: Owner<'_>) -> Result<(), CoreError> {
        let refuse = |reason: String| Err(CoreError::validation(field, reason));
        if password.len() > MAX_LENGTH_BYTES {
            return refuse(format!("is too long: at most {MAX_LENGTH_BYTES} bytes"));
        }
        if password.chars().count() < self.min_length {
            return refuse(format!("is too short: at least {} characters", self.min_length));
        }
        let lowered = password.to_lowercase();
        let personal = personal_parts(owner);
        if personal.iter().any(|part| lowered.contains(&part.to_lowercase())) {
            return refuse("contains your account name or e-mail address: choose one without them".into());
        }
        if self.denied.contains(&lowered) {
            return refuse("is on the list of common passwords: choose another".into());
        }
        let scored: String = password.chars().take(SCORED_CHARS).collect();
        let estimate = zxcvbn::zxcvbn(&scored, &personal);
        if u8::from(estimate.score()) < self.min_score {
            return refuse(format!("is too easy to guess{}", advice(&estimate)));
        }
        Ok(())
    }
}

/// The owner's name and e-mail local parts that are long enough to look for.
fn personal_parts(owner: Owner<'_>) -> Vec<&str> {
    let locals = owner.emails.iter().map(|email| email.rsplit_once('@').map_or(*email, |(local, _)| local));
    std::iter::once(owner.name).chain(locals).map(str::trim).filter(|part| part.chars().count() >= MIN_PERSONAL_PART).collect()
}

fn list_entry(line: &str) -> Option<String> {
    let entry = line.trim();
    (!entry.is_empty() && !entry.starts_with('#')).then(|| entry.to_lowercase())
}

/// zxcvbn's warning and suggestions, as ` (warning; suggestion)`, or a generic hint.
fn advice(estimate: &zxcvbn::Entropy) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(feedback) = estimate.feedback() {
        parts.extend(feedback.warning().map(|w| w.to_string()));
        parts.extend(feedback.suggestions().iter().map(ToString::to_string));
    }
    if parts.is_empty() {
        parts.push("add more words or characters that do not follow a pattern".into());
    }
    format!(" ({})", parts.join("; "))
}

#[cfg(test)]
mod tests;
