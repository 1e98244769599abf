//! Compact JWS (RFC 7515) for the provider's own tokens: signing with a key of the keyring,
//! and verifying a token that claims to be one of ours.
//!
//! Written here rather than taken from a JWT library because the rules are few and strict:
//! the header's `alg` must be the algorithm of the key its `kid` names (so `none`, `HS256`
//! or any algorithm confusion is refused before a signature is looked at), and the keys are
//! parsed once, when the keyring loads, not on every token.

use serde_json::{Map, Value};
use warden_core::oidc::pkce::base64url;

use super::keys::{KeyEntry, Keyring};

/// Why a presented token is not one of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("not a compact JWS")]
    Malformed,
    #[error("the header names an algorithm or key this provider does not sign with")]
    UnknownKey,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("signing failed")]
    Signing,
}

/// Signs `claims` with `key`: `header.payload.signature`, the header carrying `typ`.
pub fn sign(key: &KeyEntry, typ: &str, claims: &Map<String, Value>) -> Result<String, JwtError> {
    let header = serde_json::json!({ "alg": key.alg.as_str(), "kid": key.kid, "typ": typ });
    let mut out = base64url(header.to_string().as_bytes());
    out.push('.');
    out.push_str(&base64url(Value::Object(claims.clone()).to_string().as_bytes()));
    let signature = key.sign(out.as_bytes()).map_err(|_| JwtError::Signing)?;
    out.push('.');
    out.push_str(&base64url(&signature));
    Ok(out)
}

/// A token's parts, before any check.
pub struct Parsed<'a> {
    pub kid: String,
    pub alg: String,
    pub typ: Option<String>,
    pub signed: &'a str,
    pub signature: Vec<u8>,
    pub claims: Map<String, Value>,
}

/// Splits and decodes a compact JWS (no check of the signature).
pub fn parse(token: &str) -> Result<Parsed<'_>, JwtError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed);
    };
    let header: Map<String, Value> = serde_json::from_slice(&decode(h)?).map_err(|_| JwtError::Malformed)?;
    let claims: Map<String, Value> = serde_json::from_slice(&decode(p)?).map_err(|_| JwtError::Malformed)?;
    let text = |k: &str| header.get(k).and_then(Value::as_str).map(str::to_owned);
    // `crit` names extensions we would have to understand: we understand none.
    if header.contains_key("crit") {
        return Err(JwtError::Malformed);
    }
    Ok(Parsed {
        kid: text("kid").ok_or(JwtError::UnknownKey)?,
        alg: text("alg").ok_or(JwtError::Malformed)?,
        typ: text("typ"),
        signed: &token[..h.len() + 1 + p.len()],
        signature: decode(s)?,
        claims,
    })
}

/// Verifies a parsed token against `keyring`: its `kid` must be there, with the same `alg`.
pub fn verify(parsed: &Parsed<'_>, keyring: &Keyring) -> Result<(), JwtError> {
    let key = keyring.by_kid(&parsed.kid).ok_or(JwtError::UnknownKey)?;
    if key.alg.as_str() != parsed.alg {
        return Err(JwtError::UnknownKey);
    }
    key.verify(parsed.signed.as_bytes(), &parsed.signature).map_err(|_| JwtError::BadSignature)
}

/// Unpadded base64url back to bytes (padding and other alphabets refused).
pub fn decode(text: &str) -> Result<Vec<u8>, JwtError> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for b in text.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return Err(JwtError::Malformed),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // A lone sixth of a byte cannot come from an encoder.
    if bits >= 6 {
        return Err(JwtError::Malformed);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips() {
        for len in 0..40 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(decode(&base64url(&bytes)).unwrap(), bytes);
        }
        assert!(decode("ab=").is_err());
        assert!(decode("a+b").is_err());
        assert!(decode("a").is_err());
    }

    #[test]
    fn a_token_must_have_three_parts_and_a_kid() {
        assert!(matches!(parse("a.b"), Err(JwtError::Malformed)));
        assert!(matches!(parse("a.b.c.d"), Err(JwtError::Malformed)));
        let header = base64url(br#"{"alg":"none"}"#);
        let body = base64url(br#"{"sub":"x"}"#);
        assert!(matches!(parse(&format!("{header}.{body}.")), Err(JwtError::UnknownKey)));
    }
}
