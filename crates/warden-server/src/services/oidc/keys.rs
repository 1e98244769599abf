//! The provider's signing keys: made at first start (one per algorithm: RS256, ES256, EdDSA),
//! kept sealed in the store, loaded once into a [`Keyring`], rotated on command.
//!
//! Sealing is AES-256-GCM under the key-encryption key (`oidc.key_encryption_key[_file]`, or
//! on SQLite a file beside the database made at first start), with the key id as associated
//! data so a sealed key cannot be passed off under another id. A database dump therefore holds
//! no usable private key. Rotation makes a new key per algorithm and retires the old ones: a
//! retired key no longer signs but stays published (and verifies) until every token it
//! signed has expired, then it is deleted.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair, Ed25519KeyPair, KeyPair, ParsedPublicKey,
    RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256,
};
use base64::Engine;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tokio::sync::Mutex;
use warden_core::model::Subject;
use warden_core::oidc::SigningAlg;
use warden_core::oidc::pkce::base64url;
use warden_store::{Action, Change, SigningKeyRecord, Store};

use crate::config::Config;
use crate::services::{Result, ServiceError};

/// How often a node reads the keys again on its own (another node may have rotated them).
const RELOAD_EVERY: time::Duration = time::Duration::seconds(60);
/// A node reads the keys at most this often when it meets a key id it does not hold.
const MISS_RELOAD_GAP: time::Duration = time::Duration::seconds(2);

/// The key-encryption key.
pub struct Kek(LessSafeKey);

impl Kek {
    /// The key from configuration, or on SQLite the host file beside the database (made on
    /// first use). `None`: there is none (PostgreSQL without a configured key).
    pub fn load(config: &Config) -> Result<Option<Self>> {
        let text = if let Some(key) = &config.oidc.key_encryption_key {
            key.trim().to_owned()
        } else if let Some(path) = &config.oidc.key_encryption_key_file {
            read_key_file(path)?
        } else if let Some(path) = beside_database(&config.database.url) {
            if !path.exists() {
                make_key_file(&path)?;
            }
            read_key_file(&path)?
        } else {
            return Ok(None);
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(|_| ServiceError::Internal("oidc.key_encryption_key is not base64".into()))?;
        Self::from_bytes(&bytes).map(Some)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != 32 {
            return Err(ServiceError::Internal("oidc.key_encryption_key must be 32 bytes".into()));
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| ServiceError::Internal("bad key-encryption key".into()))?;
        Ok(Self(LessSafeKey::new(key)))
    }

    /// `nonce ‖ ciphertext ‖ tag`, bound to `kid` (for a key; for anything else sealed under
    /// this key, a label naming its purpose, which no key id can equal).
    pub fn seal(&self, kid: &str, clear: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new().fill(&mut nonce).map_err(|_| ServiceError::Internal("no randomness".into()))?;
        let mut data = clear.to_vec();
        self.0
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(kid.as_bytes()), &mut data)
            .map_err(|_| ServiceError::Internal("sealing a key failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(out)
    }

    pub fn open(&self, kid: &str, sealed: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return Err(ServiceError::Internal(format!("signing key {kid} is not sealed")));
        }
        let (nonce, data) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| ServiceError::Internal("bad nonce".into()))?;
        let mut data = data.to_vec();
        let clear = self.0.open_in_place(nonce, Aad::from(kid.as_bytes()), &mut data).map_err(|_| {
            ServiceError::Internal(format!(
                "signing key {kid} does not open with this key-encryption key (is oidc.key_encryption_key the same on every node?)"
            ))
        })?;
        Ok(clear.to_vec())
    }
}

fn beside_database(url: &str) -> Option<PathBuf> {
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next().unwrap_or(path);
    (!path.is_empty() && !path.contains(":memory:")).then(|| PathBuf::from(format!("{path}.oidc-key")))
}

fn read_key_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path)
        .map(|t| t.trim().to_owned())
        .map_err(|e| ServiceError::Internal(format!("cannot read the key-encryption key {}: {e}", path.display())))
}

fn make_key_file(path: &Path) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut key = [0u8; 32];
    SystemRandom::new().fill(&mut key).map_err(|_| ServiceError::Internal("no randomness".into()))?;
    let text = base64::engine::general_purpose::STANDARD.encode(key);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| ServiceError::Internal(format!("cannot create {}: {e}", path.display())))?;
    file.write_all(text.as_bytes()).map_err(|e| ServiceError::Internal(format!("cannot write {}: {e}", path.display())))?;
    tracing::info!(path = %path.display(), "made the key that seals the OpenID Connect signing keys");
    Ok(())
}

/// A private key, parsed.
enum Signer {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A signature that could not be made or does not verify (the cause stays in the library).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signature failed")]
pub struct SignatureFailed;

/// One key of the keyring: its id, algorithm, parsed private and public halves, public JWK.
pub struct KeyEntry {
    pub kid: String,
    pub alg: SigningAlg,
    signer: Signer,
    verifier: ParsedPublicKey,
    pub jwk: Value,
    pub created_at: OffsetDateTime,
    pub retired_at: Option<OffsetDateTime>,
}

impl KeyEntry {
    pub fn sign(&self, message: &[u8]) -> std::result::Result<Vec<u8>, SignatureFailed> {
        match &self.signer {
            Signer::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut sig).map_err(|_| SignatureFailed)?;
                Ok(sig)
            }
            Signer::Ec(k) => k.sign(&SystemRandom::new(), message).map(|s| s.as_ref().to_vec()).map_err(|_| SignatureFailed),
            Signer::Ed(k) => Ok(k.sign(message).as_ref().to_vec()),
        }
    }

    pub fn verify(&self, message: &[u8], signature: &[u8]) -> std::result::Result<(), SignatureFailed> {
        self.verifier.verify_sig(message, signature).map_err(|_| SignatureFailed)
    }

    /// Parses a stored key (opening its private half with `kek`).
    fn load(record: &SigningKeyRecord, kek: &Kek) -> Result<Self> {
        let alg = SigningAlg::parse(&record.alg).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let pkcs8 = kek.open(&record.id, &record.sealed_private_key)?;
        Self::from_pkcs8(record.id.clone(), alg, &pkcs8, record.created_at, record.retired_at)
    }

    fn from_pkcs8(
        kid: String,
        alg: SigningAlg,
        pkcs8: &[u8],
        created_at: OffsetDateTime,
        retired_at: Option<OffsetDateTime>,
    ) -> Result<Self> {
        let bad = |e: &dyn std::fmt::Display| ServiceError::Internal(format!("signing key {kid} cannot be read: {e}"));
        let (signer, verifier, jwk) = match alg {
            SigningAlg::Rs256 => {
                let k = RsaKeyPair::from_pkcs8(pkcs8).map_err(|e| bad(&e))?;
                let public = k.public_key();
                let verifier = ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public.as_ref()).map_err(|e| bad(&e))?;
                let (n, e) = rsa_public_numbers(public.as_ref()).ok_or_else(|| bad(&"the public key is not PKCS#1"))?;
                let jwk = json!({ "kty": "RSA", "n": base64url(n), "e": base64url(e) });
                (Signer::Rsa(k), verifier, jwk)
            }
            SigningAlg::Es256 => {
                let k = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8).map_err(|e| bad(&e))?;
                let point = k.public_key().as_ref().to_vec();
                let verifier = ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point).map_err(|e| bad(&e))?;
                // An uncompressed point: 0x04 ‖ x ‖ y.
                if point.len() != 65 {
                    return Err(bad(&"not an uncompressed P-256 point"));
                }
                let jwk = json!({ "kty": "EC", "crv": "P-256", "x": base64url(&point[1..33]), "y": base64url(&point[33..]) });
                (Signer::Ec(k), verifier, jwk)
            }
            SigningAlg::EdDsa => {
                let k = Ed25519KeyPair::from_pkcs8(pkcs8).map_err(|e| bad(&e))?;
                let public = k.public_key().as_ref().to_vec();
                let verifier = ParsedPublicKey::new(&ED25519, &public).map_err(|e| bad(&e))?;
                let jwk = json!({ "kty": "OKP", "crv": "Ed25519", "x": base64url(&public) });
                (Signer::Ed(k), verifier, jwk)
            }
        };
        let mut jwk = jwk;
        if let Some(map) = jwk.as_object_mut() {
            map.insert("kid".into(), json!(kid));
            map.insert("alg".into(), json!(alg.as_str()));
            map.insert("use".into(), json!("sig"));
        }
        Ok(Self { kid, alg, signer, verifier, jwk, created_at, retired_at })
    }
}

/// The modulus and exponent of a PKCS#1 `RSAPublicKey` (`SEQUENCE { INTEGER n, INTEGER e }`),
/// without leading zeros, as a JWK carries them.
fn rsa_public_numbers(der: &[u8]) -> Option<(&[u8], &[u8])> {
    fn element(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
        let (&t, rest) = input.split_first()?;
        if t != tag {
            return None;
        }
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                return None;
            }
            let (bytes, rest) = rest.split_at(count);
            (bytes.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)), rest)
        };
        (rest.len() >= len).then(|| rest.split_at(len))
    }
    let (body, _) = element(der, 0x30)?;
    let (n, rest) = element(body, 0x02)?;
    let (e, _) = element(rest, 0x02)?;
    let trim = |v: &[u8]| -> usize { v.iter().take_while(|b| **b == 0).count() };
    Some((&n[trim(n)..], &e[trim(e)..]))
}

/// A fresh key of `alg`, as PKCS#8.
fn generate(alg: SigningAlg) -> Result<Vec<u8>> {
    let failed = |_| ServiceError::Internal(format!("cannot make a {} key", alg.as_str()));
    let rng = SystemRandom::new();
    Ok(match alg {
        SigningAlg::Rs256 => RsaKeyPair::generate(KeySize::Rsa2048).map_err(failed)?.as_der().map_err(failed)?.as_ref().to_vec(),
        SigningAlg::Es256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).map_err(failed)?.as_ref().to_vec(),
        SigningAlg::EdDsa => Ed25519KeyPair::generate_pkcs8(&rng).map_err(failed)?.as_ref().to_vec(),
    })
}

fn new_kid() -> Result<String> {
    let mut id = [0u8; 12];
    SystemRandom::new().fill(&mut id).map_err(|_| ServiceError::Internal("no randomness".into()))?;
    Ok(base64url(&id))
}

/// The keys a node holds, parsed.
pub struct Keyring {
    entries: Vec<Arc<KeyEntry>>,
    loaded_at: OffsetDateTime,
}

impl Keyring {
    /// The key that signs with `alg` now: the newest unretired one.
    pub fn signer(&self, alg: SigningAlg) -> Option<&Arc<KeyEntry>> {
        self.entries.iter().filter(|k| k.alg == alg && k.retired_at.is_none()).max_by_key(|k| k.created_at)
    }

    pub fn by_kid(&self, kid: &str) -> Option<&Arc<KeyEntry>> {
        self.entries.iter().find(|k| k.kid == kid)
    }

    pub fn entries(&self) -> &[Arc<KeyEntry>] {
        &self.entries
    }
}

/// The keys of the provider: the keyring, and how to refresh and rotate it.
pub struct Keys {
    store: Arc<dyn Store>,
    kek: Arc<Kek>,
    ring: ArcSwap<Keyring>,
    reloading: Mutex<()>,
    /// How long a retired key stays published: the longest a token it signed can live.
    publish_for: time::Duration,
}

/// What a rotation did.
pub use warden_core::api::RotatedOidcKeys as Rotated;

impl Keys {
    /// Loads the keys, making those missing (first start: one per algorithm).
    pub async fn start(store: Arc<dyn Store>, kek: Arc<Kek>, publish_for: time::Duration, now: OffsetDateTime) -> Result<Self> {
        let keys = Self {
            store,
            kek,
            ring: ArcSwap::from_pointee(Keyring { entries: Vec::new(), loaded_at: now }),
            reloading: Mutex::new(()),
            publish_for,
        };
        keys.reload(now).await?;
        let missing: Vec<SigningAlg> = SigningAlg::ALL.into_iter().filter(|a| keys.ring.load().signer(*a).is_none()).collect();
        if !missing.is_empty() {
            keys.make(None, &missing, false, now).await?;
        }
        Ok(keys)
    }

    pub fn ring(&self) -> Arc<Keyring> {
        self.ring.load_full()
    }

    /// The keyring, read again from the store when it is older than a minute.
    pub async fn current(&self, now: OffsetDateTime) -> Result<Arc<Keyring>> {
        let ring = self.ring();
        if now - ring.loaded_at < RELOAD_EVERY {
            return Ok(ring);
        }
        self.reload_if_older(now, RELOAD_EVERY).await?;
        Ok(self.ring())
    }

    /// The keyring, read again if it lacks `kid` (another node's new key) and it was not just
    /// read.
    pub async fn with_kid(&self, kid: &str, now: OffsetDateTime) -> Result<Arc<Keyring>> {
        let ring = self.current(now).await?;
        if ring.by_kid(kid).is_some() || now - ring.loaded_at < MISS_RELOAD_GAP {
            return Ok(ring);
        }
        self.reload_if_older(now, MISS_RELOAD_GAP).await?;
        Ok(self.ring())
    }

    /// Reads the keys again unless another caller did while this one waited for its turn
    /// (requests that find the keyring stale at once read it once, not once each).
    async fn reload_if_older(&self, now: OffsetDateTime, age: time::Duration) -> Result<()> {
        let _one = self.reloading.lock().await;
        if now - self.ring.load().loaded_at < age {
            return Ok(());
        }
        self.read_keys(now).await
    }

    async fn reload(&self, now: OffsetDateTime) -> Result<()> {
        let _one = self.reloading.lock().await;
        self.read_keys(now).await
    }

    async fn read_keys(&self, now: OffsetDateTime) -> Result<()> {
        let records = self.store.oidc_keys().await?;
        let mut entries = Vec::with_capacity(records.len());
        for record in &records {
            if record.retired_at.is_some_and(|r| r + self.publish_for < now) {
                continue;
            }
            entries.push(Arc::new(KeyEntry::load(record, &self.kek)?));
        }
        self.ring.store(Arc::new(Keyring { entries, loaded_at: now }));
        Ok(())
    }

    /// The published keys (JWKS), read from the store so that every node publishes a key the
    /// moment any node makes it.
    pub async fn jwks(&self, now: OffsetDateTime) -> Result<Value> {
        let records = self.store.oidc_keys().await?;
        let keys: Vec<Value> = records
            .iter()
            .filter(|r| r.retired_at.is_none_or(|r| r + self.publish_for >= now))
            .filter_map(|r| serde_json::from_str(&r.public_jwk).ok())
            .collect();
        Ok(json!({ "keys": keys }))
    }

    /// Makes a new key for every algorithm and retires the ones that signed until now.
    pub async fn rotate(&self, actor: &Subject, now: OffsetDateTime) -> Result<Rotated> {
        self.reload(now).await?;
        self.make(Some(actor), &SigningAlg::ALL, true, now).await
    }

    async fn make(&self, actor: Option<&Subject>, algs: &[SigningAlg], retire: bool, now: OffsetDateTime) -> Result<Rotated> {
        let mut created: Vec<SigningKeyRecord> = Vec::new();
        for alg in algs {
            let kid = new_kid()?;
            let pkcs8 = tokio::task::spawn_blocking({
                let alg = *alg;
                move || generate(alg)
            })
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))??;
            let entry = KeyEntry::from_pkcs8(kid.clone(), *alg, &pkcs8, now, None)?;
            created.push(SigningKeyRecord {
                id: kid.clone(),
                alg: alg.as_str().to_owned(),
                sealed_private_key: self.kek.seal(&kid, &pkcs8)?,
                public_jwk: entry.jwk.to_string(),
                created_at: now,
                retired_at: None,
            });
        }
        let retired: Vec<String> = if retire {
            self.ring().entries.iter().filter(|k| k.retired_at.is_none()).map(|k| k.kid.clone()).collect()
        } else {
            Vec::new()
        };
        let action = Action::OidcKeysRotate { created: created.iter().map(|k| k.id.clone()).collect(), retired: retired.clone() };
        let change = Change::new(now, actor, action, None);
        self.store.rotate_oidc_keys(&change, &created, &retired, now - self.publish_for).await?;
        self.reload(now).await?;
        Ok(Rotated { created: created.into_iter().map(|k| k.id).collect(), retired })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_signs_and_verifies_and_a_sealed_key_opens_only_under_its_id() {
        let kek = Kek::from_bytes(&[7u8; 32]).unwrap();
        for alg in SigningAlg::ALL {
            let pkcs8 = generate(alg).unwrap();
            let key = KeyEntry::from_pkcs8("k1".into(), alg, &pkcs8, OffsetDateTime::UNIX_EPOCH, None).unwrap();
            let sig = key.sign(b"message").unwrap();
            assert!(key.verify(b"message", &sig).is_ok(), "{alg:?}");
            assert!(key.verify(b"messagf", &sig).is_err(), "{alg:?}");
            let sealed = kek.seal("k1", &pkcs8).unwrap();
            assert!(!sealed.windows(16).any(|w| pkcs8.windows(16).any(|p| p == w)), "the clear key is not in the sealed bytes");
            assert_eq!(kek.open("k1", &sealed).unwrap(), pkcs8);
            assert!(kek.open("k2", &sealed).is_err(), "bound to its id");
            assert!(Kek::from_bytes(&[8u8; 32]).unwrap().open("k1", &sealed).is_err(), "bound to the key-encryption key");
        }
    }

    #[test]
    fn the_key_file_sits_beside_an_sqlite_database() {
        assert_eq!(beside_database("sqlite://warden-data/warden.db"), Some(PathBuf::from("warden-data/warden.db.oidc-key")));
        assert_eq!(beside_database("sqlite:/tmp/w.db?mode=rwc"), Some(PathBuf::from("/tmp/w.db.oidc-key")));
        assert_eq!(beside_database("postgres://localhost/warden"), None);
    }
}
