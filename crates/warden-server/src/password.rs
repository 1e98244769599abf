//! Password hashing: argon2id for everything Warden stores, bcrypt accepted on import and
//! upgraded at the first successful login.
//!
//! Hashing is deliberately slow, so it runs on the blocking pool behind a semaphore: at most
//! `max_concurrent` hashes at once, the rest wait, and the async runtime keeps serving. An
//! unknown account is checked against a dummy hash of the same cost, so "no such user" and
//! "wrong password" take the same time.

use std::sync::Arc;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;
use warden_core::credential::Secret;

use crate::config::Argon2Config;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Mismatch,
    /// Correct; the stored hash is current.
    Match,
    /// Correct, but the stored hash is bcrypt or uses weaker argon2 parameters: re-hash it.
    MatchNeedsRehash,
}

#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

struct Inner {
    params: Params,
    permits: Semaphore,
    /// A hash of a random password at the current cost, verified when the account is unknown.
    dummy: String,
}

impl PasswordHasher {
    pub fn new(config: &Argon2Config) -> Result<Self, HashError> {
        let params =
            Params::new(config.memory_kib, config.iterations, config.parallelism, None).map_err(|e| HashError::Failed(e.to_string()))?;
        let mut random = [0u8; 16];
        getrandom::fill(&mut random).map_err(|e| HashError::Failed(e.to_string()))?;
        let dummy = hash_with(&params, &hex::encode(random))?;
        Ok(Self { inner: Arc::new(Inner { params, permits: Semaphore::new(config.max_concurrent), dummy }) })
    }

    /// Hashes a new password with argon2id.
    pub async fn hash(&self, password: &Secret) -> Result<String, HashError> {
        let _permit = self.inner.permits.acquire().await.map_err(|e| HashError::Failed(e.to_string()))?;
        let params = self.inner.params.clone();
        let password = password.clone();
        tokio::task::spawn_blocking(move || hash_with(&params, password.expose())).await.map_err(|e| HashError::Failed(e.to_string()))?
    }

    /// Checks `password` against `stored`, or against the dummy hash when there is none.
    pub async fn verify(&self, password: &Secret, stored: Option<String>) -> Result<Verdict, HashError> {
        let _permit = self.inner.permits.acquire().await.map_err(|e| HashError::Failed(e.to_string()))?;
        let inner = self.inner.clone();
        let password = password.clone();
        tokio::task::spawn_blocking(move || {
            let (hash, real) = match stored {
                Some(hash) => (hash, true),
                None => (inner.dummy.clone(), false),
            };
            let verdict = verify_with(&inner.params, password.expose(), &hash);
            if real { verdict } else { Verdict::Mismatch }
        })
        .await
        .map_err(|e| HashError::Failed(e.to_string()))
    }
}

fn argon2id(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

fn hash_with(params: &Params, password: &str) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| HashError::Failed(e.to_string()))?;
    argon2id(params)
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Failed(e.to_string()))
}

fn verify_with(current: &Params, password: &str, stored: &str) -> Verdict {
    if stored.starts_with("$2") {
        return match bcrypt::verify(password, stored) {
            Ok(true) => Verdict::MatchNeedsRehash,
            _ => Verdict::Mismatch,
        };
    }
    let Ok(parsed) = PasswordHash::new(stored) else { return Verdict::Mismatch };
    if argon2id(current).verify_password(password.as_bytes(), &parsed).is_err() {
        return Verdict::Mismatch;
    }
    let outdated = parsed.algorithm.as_str() != "argon2id"
        || Params::try_from(&parsed).map_or(true, |p| p.m_cost() < current.m_cost() || p.t_cost() < current.t_cost());
    if outdated { Verdict::MatchNeedsRehash } else { Verdict::Match }
}

/// A fresh random password for break-glass recovery: `len` characters (at least 24, ~140
/// bits) from an alphabet without look-alikes.
pub fn generate_password(len: usize) -> Result<Secret, HashError> {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let len = len.max(24);
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| HashError::Failed(e.to_string()))?;
    // 256 % 57 != 0: reject-free mapping would bias; rejection sampling keeps it uniform.
    let mut out = String::with_capacity(len);
    let mut pool = bytes.to_vec();
    while out.len() < len {
        if pool.is_empty() {
            pool = vec![0u8; 24];
            getrandom::fill(&mut pool).map_err(|e| HashError::Failed(e.to_string()))?;
        }
        let b = pool.pop().unwrap_or_default();
        if usize::from(b) < 256 - 256 % ALPHABET.len() {
            out.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
        }
    }
    Ok(Secret::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Argon2Config {
        Argon2Config { memory_kib: 64, iterations: 1, parallelism: 1, max_concurrent: 2 }
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let hasher = PasswordHasher::new(&cheap()).unwrap();
        let pw = Secret::new("correct horse battery");
        let hash = hasher.hash(&pw).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(!hash.contains("correct"));
        assert_eq!(hasher.verify(&pw, Some(hash.clone())).await.unwrap(), Verdict::Match);
        assert_eq!(hasher.verify(&Secret::new("wrong"), Some(hash)).await.unwrap(), Verdict::Mismatch);
        assert_eq!(hasher.verify(&pw, None).await.unwrap(), Verdict::Mismatch);
    }

    #[tokio::test]
    async fn bcrypt_and_weaker_argon2_need_rehash() {
        let hasher = PasswordHasher::new(&cheap()).unwrap();
        let bcrypt_hash = bcrypt::hash("imported password", 4).unwrap();
        assert_eq!(hasher.verify(&Secret::new("imported password"), Some(bcrypt_hash.clone())).await.unwrap(), Verdict::MatchNeedsRehash);
        assert_eq!(hasher.verify(&Secret::new("nope"), Some(bcrypt_hash)).await.unwrap(), Verdict::Mismatch);
        let weak = PasswordHasher::new(&Argon2Config { memory_kib: 32, ..cheap() }).unwrap();
        let old = weak.hash(&Secret::new("pw-under-old-params")).await.unwrap();
        assert_eq!(hasher.verify(&Secret::new("pw-under-old-params"), Some(old)).await.unwrap(), Verdict::MatchNeedsRehash);
    }

    #[test]
    fn generated_passwords_are_long_and_distinct() {
        let a = generate_password(12).unwrap();
        let b = generate_password(12).unwrap();
        assert_eq!(a.expose().len(), 24);
        assert_ne!(a, b);
        assert_eq!(generate_password(40).unwrap().expose().len(), 40);
        // What recovery hands out meets the default policy, for either break-glass account.
        let policy = warden_core::password_policy::PasswordPolicy::default();
        for name in ["admin", "idm_admin"] {
            for _ in 0..50 {
                let generated = generate_password(policy.min_length()).unwrap();
                let owner = warden_core::password_policy::Owner { name, emails: &[] };
                policy.check("password", generated.expose(), owner).unwrap();
            }
        }
    }
}
