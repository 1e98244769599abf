//! Proof Key for Code Exchange (RFC 7636), `S256` only: the client that asked for a code proves
//! at the token endpoint that it is the one that asked, so a code caught on its way back (by
//! another app on a phone claiming the same scheme, by a log) is worth nothing alone. `plain`
//! is refused: it proves nothing to anyone who saw the request.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The one method accepted.
pub const METHOD: &str = "S256";

/// Whether `value` has the shape of a verifier (RFC 7636 §4.1): 43 to 128 characters from the
/// unreserved set.
pub fn is_verifier(value: &str) -> bool {
    (43..=128).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether `value` has the shape of an `S256` challenge: 43 base64url characters (a SHA-256
/// without padding).
pub fn is_challenge(value: &str) -> bool {
    value.len() == 43 && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

/// The `S256` challenge of `verifier`: `BASE64URL(SHA256(verifier))`, unpadded.
pub fn challenge_of(verifier: &str) -> String {
    base64url(&Sha256::digest(verifier.as_bytes()))
}

/// Whether `verifier` answers `challenge`, compared in constant time.
pub fn verify(challenge: &str, verifier: &str) -> bool {
    is_verifier(verifier) && bool::from(challenge_of(verifier).as_bytes().ct_eq(challenge.as_bytes()))
}

/// Unpadded base64url (RFC 4648 §5), the encoding of every part of a JWT and of PKCE.
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_example_verifies() {
        // RFC 7636, appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(challenge_of(verifier), challenge);
        assert!(is_challenge(challenge));
        assert!(verify(challenge, verifier));
    }

    #[test]
    fn a_wrong_or_malformed_verifier_fails() {
        let challenge = challenge_of("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert!(!verify(&challenge, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK"));
        assert!(!verify(&challenge, "short"));
        assert!(!verify(&challenge, ""));
        // `plain`: the challenge itself as the verifier proves nothing.
        assert!(!verify(&challenge, &challenge));
        assert!(!is_challenge("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-c="));
    }

    #[test]
    fn base64url_matches_the_rfc_vectors() {
        for (raw, encoded) in
            [("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"), ("fooba", "Zm9vYmE"), ("foobar", "Zm9vYmFy")]
        {
            assert_eq!(base64url(raw.as_bytes()), encoded);
        }
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }
}
