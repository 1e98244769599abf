//! Credentials' pure parts: secret newtypes that never print, token formats, and the hashing
//! and constant-time comparison of high-entropy secrets.
//!
//! Passwords are low-entropy and hashed with argon2id by the server (that needs a thread pool
//! and is not pure); tokens are 256-bit random, so SHA-256 is enough to store them safely.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::CoreError;

/// Prefix of API tokens, so that secret scanners can find leaked ones.
pub const API_TOKEN_PREFIX: &str = "wdn_";
/// Prefix of interactive session tokens.
pub const SESSION_TOKEN_PREFIX: &str = "wds_";
/// Prefix of one-time tokens (recovery links, later registration and invitation links):
/// never a bearer credential, redeemed once through the flow that issued it.
pub const ONE_TIME_TOKEN_PREFIX: &str = "wdo_";
/// Prefix of OpenID Connect client secrets: what a confidential client authenticates with at
/// the token endpoint, never a bearer credential of the API.
pub const CLIENT_SECRET_PREFIX: &str = "wdc_";
/// Prefix of OpenID Connect refresh tokens: held by a client, redeemed once at the token
/// endpoint, never a bearer credential of the API.
pub const REFRESH_TOKEN_PREFIX: &str = "wdr_";
/// Bytes of randomness in every token.
pub const TOKEN_BYTES: usize = 32;
/// Longest password accepted (hashing cost must stay bounded).
pub const MAX_PASSWORD_LEN: usize = 1024;

/// A secret string: its `Debug` and `Display` show `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call sites that need it are few and deliberate.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self)
    }
}

impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// What kind of bearer token a string is, judged by its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Session,
    Api,
    /// A one-time token: authenticates nothing by itself.
    OneTime,
    /// An OpenID Connect client's secret: authenticates the client, never an account.
    ClientSecret,
    /// An OpenID Connect refresh token: redeemed once at the token endpoint, for new tokens.
    RefreshToken,
}

impl TokenKind {
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Session => SESSION_TOKEN_PREFIX,
            Self::Api => API_TOKEN_PREFIX,
            Self::OneTime => ONE_TIME_TOKEN_PREFIX,
            Self::ClientSecret => CLIENT_SECRET_PREFIX,
            Self::RefreshToken => REFRESH_TOKEN_PREFIX,
        }
    }

    /// Classifies a presented token; `None` if it is not one of ours.
    pub fn of(token: &str) -> Option<Self> {
        let (kind, body) = if let Some(body) = token.strip_prefix(API_TOKEN_PREFIX) {
            (Self::Api, body)
        } else if let Some(body) = token.strip_prefix(ONE_TIME_TOKEN_PREFIX) {
            (Self::OneTime, body)
        } else if let Some(body) = token.strip_prefix(CLIENT_SECRET_PREFIX) {
            (Self::ClientSecret, body)
        } else if let Some(body) = token.strip_prefix(REFRESH_TOKEN_PREFIX) {
            (Self::RefreshToken, body)
        } else {
            (Self::Session, token.strip_prefix(SESSION_TOKEN_PREFIX)?)
        };
        (body.len() == TOKEN_BYTES * 2 && body.bytes().all(|b| b.is_ascii_hexdigit())).then_some(kind)
    }
}

/// Formats fresh random bytes as a token of `kind`.
pub fn format_token(kind: TokenKind, random: &[u8; TOKEN_BYTES]) -> Secret {
    Secret(format!("{}{}", kind.prefix(), hex::encode(random)))
}

/// The SHA-256 of a token: what is stored and looked up.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Constant-time equality, for when a hash is compared rather than looked up.
    pub fn matches(&self, other: &TokenHash) -> bool {
        constant_time_eq(&self.0, &other.0)
    }
}

/// Whether `a` and `b` are equal, in a time that depends on their length only: every byte is
/// compared, eight at a time, with no early exit. (`subtle`'s byte-wise loop costs ten times
/// as much, which counts on the paths that compare on every request: a client's secret hash,
/// a cached 700-byte token.)
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut wide_a, mut wide_b) = (a.chunks_exact(8), b.chunks_exact(8));
    let mut diff = 0u64;
    for (x, y) in (&mut wide_a).zip(&mut wide_b) {
        let word = |c: &[u8]| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8]));
        diff |= word(x) ^ word(y);
    }
    for (x, y) in wide_a.remainder().iter().zip(wide_b.remainder()) {
        diff |= u64::from(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({}…)", hex::encode(&self.0[..4]))
    }
}

/// A password as presented when an account is created: plaintext to hash, or an imported bcrypt hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitialPassword {
    Plain(Secret),
    Bcrypt(Secret),
}

impl InitialPassword {
    /// Recognises `$2a$`/`$2b$`/`$2y$` bcrypt hashes; anything else is a plaintext password
    /// (which must then meet the password policy, see [`crate::password_policy`]).
    pub fn classify(value: Secret) -> Self {
        let v = value.expose();
        let is_bcrypt = v.len() == 60 && ["$2a$", "$2b$", "$2y$"].iter().any(|p| v.starts_with(p));
        if is_bcrypt { Self::Bcrypt(value) } else { Self::Plain(value) }
    }
}

/// Parses a duration such as `90d`, `12h`, `30m`, `45s` or `2w` into seconds.
pub fn parse_duration_secs(raw: &str) -> Result<i64, CoreError> {
    let raw = raw.trim();
    let err = || CoreError::validation("duration", format!("{raw:?} is not a duration like 90d, 12h, 30m"));
    let split = raw.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
    let (digits, unit) = raw.split_at(split);
    let n: i64 = digits.parse().map_err(|_| err())?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 604_800,
        "y" => 31_536_000,
        _ => return Err(err()),
    };
    let secs = n.checked_mul(factor).ok_or_else(err)?;
    if secs <= 0 || secs > 10 * 31_536_000 {
        return Err(CoreError::validation("duration", "must be between 1 second and 10 years"));
    }
    Ok(secs)
}

/// A duration in seconds as the largest unit that divides it (`90d`, `12h`, `45s`): the
/// spelling `parse_duration_secs` reads back.
pub fn format_duration(secs: i64) -> String {
    let units = [("y", 31_536_000), ("w", 604_800), ("d", 86_400), ("h", 3600), ("m", 60)];
    units
        .iter()
        .find(|(_, size)| secs % size == 0 && secs >= *size)
        .map_or_else(|| format!("{secs}s"), |(unit, size)| format!("{}{unit}", secs / size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_as_they_are_read() {
        for (secs, text) in [(90 * 86_400, "90d"), (12 * 3600, "12h"), (45, "45s"), (14 * 86_400, "2w"), (31_536_000, "1y"), (90, "90s")] {
            assert_eq!(format_duration(secs), text);
            assert_eq!(parse_duration_secs(text).unwrap(), secs);
        }
    }

    #[test]
    fn constant_time_eq_compares_every_byte() {
        let token = b"eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";
        assert!(constant_time_eq(token, token));
        for i in 0..token.len() {
            let mut other = token.to_vec();
            other[i] ^= 1;
            assert!(!constant_time_eq(token, &other), "byte {i}");
        }
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(constant_time_eq(b"", b""));
        assert!(TokenHash::of("a").matches(&TokenHash::of("a")) && !TokenHash::of("a").matches(&TokenHash::of("b")));
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2hunter2");
        assert_eq!(format!("{s:?} {s}"), "*** ***");
    }

    #[test]
    fn token_format_round_trip() {
        let api = format_token(TokenKind::Api, &[7u8; TOKEN_BYTES]);
        assert!(api.expose().starts_with("wdn_"));
        assert_eq!(TokenKind::of(api.expose()), Some(TokenKind::Api));
        let session = format_token(TokenKind::Session, &[9u8; TOKEN_BYTES]);
        assert_eq!(TokenKind::of(session.expose()), Some(TokenKind::Session));
        let one_time = format_token(TokenKind::OneTime, &[3u8; TOKEN_BYTES]);
        assert!(one_time.expose().starts_with("wdo_"));
        assert_eq!(TokenKind::of(one_time.expose()), Some(TokenKind::OneTime));
        let client_secret = format_token(TokenKind::ClientSecret, &[4u8; TOKEN_BYTES]);
        assert!(client_secret.expose().starts_with("wdc_"));
        assert_eq!(TokenKind::of(client_secret.expose()), Some(TokenKind::ClientSecret));
        assert_eq!(TokenKind::of("wdn_short"), None);
        assert_eq!(TokenKind::of("Bearer x"), None);
        assert!(TokenHash::of(api.expose()).matches(&TokenHash::of(api.expose())));
        assert!(!TokenHash::of(api.expose()).matches(&TokenHash::of(session.expose())));
    }

    #[test]
    fn passwords_classified() {
        let bcrypt = "$2b$04$abcdefghijklmnopqrstuuJ2m3e9RQzOc8bA8SR0n0vT6vBz8b5e2";
        assert_eq!(bcrypt.len(), 60);
        assert!(matches!(InitialPassword::classify(Secret::new(bcrypt)), InitialPassword::Bcrypt(_)));
        assert!(matches!(InitialPassword::classify(Secret::new("correct horse battery")), InitialPassword::Plain(_)));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_secs("90d").unwrap(), 90 * 86_400);
        assert_eq!(parse_duration_secs("12h").unwrap(), 43_200);
        for bad in ["", "d", "10", "10x", "0d", "-1d", "99999999999999999y"] {
            assert!(parse_duration_secs(bad).is_err(), "{bad}");
        }
    }
}
