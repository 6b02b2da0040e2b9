//! The assertion signing key: read from a PKCS#8 PEM file or generated at start, held parsed
//! (signing never re-reads it), and published as a JWK with its RFC 7638 thumbprint as `kid`.

use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::settings::AssertionAlgorithm;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("`assertion.key_file` ({path}): {message}")]
    File { path: String, message: String },
    #[error("cannot generate an assertion key: {0}")]
    Generate(String),
    #[error("signing failed: {0}")]
    Sign(String),
}

enum Pair {
    Es256(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

/// One signing key with its public half.
pub struct SigningKey {
    pair: Pair,
    rng: SystemRandom,
    pub kid: String,
    /// The public key as a JWK (with `kid`, `alg` and `use`).
    pub jwk: Value,
    /// Where it came from: `None` when generated at start.
    pub source: Option<std::path::PathBuf>,
    pub algorithm: AssertionAlgorithm,
}

impl SigningKey {
    pub fn generate(algorithm: AssertionAlgorithm) -> Result<Self, KeyError> {
        let rng = SystemRandom::new();
        let pkcs8 = match algorithm {
            AssertionAlgorithm::Es256 => EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|e| KeyError::Generate(e.to_string()))?
                .as_ref()
                .to_vec(),
            AssertionAlgorithm::EdDsa => Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|e| KeyError::Generate(e.to_string()))?
                .as_ref()
                .to_vec(),
        };
        Self::from_pkcs8(algorithm, &pkcs8, None).map_err(|e| KeyError::Generate(e.to_string()))
    }

    pub fn from_file(algorithm: AssertionAlgorithm, path: &Path) -> Result<Self, KeyError> {
        let file_error = |message: String| KeyError::File {
            path: path.display().to_string(),
            message,
        };
        let der = match PrivateKeyDer::from_pem_file(path) {
            Ok(PrivateKeyDer::Pkcs8(der)) => der,
            Ok(_) => {
                return Err(file_error(
                    "not a PKCS#8 key (BEGIN PRIVATE KEY): convert it with `openssl pkcs8 -topk8 -nocrypt`".into(),
                ));
            }
            Err(e) => return Err(file_error(format!("cannot read a PEM private key: {e:?}"))),
        };
        Self::from_pkcs8(algorithm, der.secret_pkcs8_der(), Some(path.to_path_buf()))
            .map_err(|e| file_error(format!("not an {} key: {e}", algorithm.as_str())))
    }

    fn from_pkcs8(algorithm: AssertionAlgorithm, der: &[u8], source: Option<std::path::PathBuf>) -> Result<Self, String> {
        let (pair, members) = match algorithm {
            AssertionAlgorithm::Es256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der).map_err(|e| e.to_string())?;
                // An uncompressed point: 0x04, then x and y.
                let point = pair.public_key().as_ref();
                let (x, y) = match (point.get(1..33), point.get(33..65)) {
                    (Some(x), Some(y)) => (x, y),
                    _ => return Err("unexpected public key encoding".into()),
                };
                let members = json!({"crv": "P-256", "kty": "EC", "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)});
                (Pair::Es256(pair), members)
            }
            AssertionAlgorithm::EdDsa => {
                let pair = Ed25519KeyPair::from_pkcs8(der).map_err(|e| e.to_string())?;
                let members = json!({"crv": "Ed25519", "kty": "OKP", "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())});
                (Pair::EdDsa(pair), members)
            }
        };
        // RFC 7638: the required members in lexicographic order, no spaces (serde_json's map
        // keeps keys sorted unless preserve_order is on, so the text is built by hand).
        let canonical = match &members {
            Value::Object(m) if m.contains_key("y") => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                m.get("x").and_then(Value::as_str).unwrap_or_default(),
                m.get("y").and_then(Value::as_str).unwrap_or_default()
            ),
            Value::Object(m) => format!(
                r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                m.get("x").and_then(Value::as_str).unwrap_or_default()
            ),
            _ => String::new(),
        };
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        let mut jwk = members;
        if let Value::Object(m) = &mut jwk {
            m.insert("kid".into(), Value::String(kid.clone()));
            m.insert("alg".into(), Value::String(algorithm.as_str().into()));
            m.insert("use".into(), Value::String("sig".into()));
        }
        Ok(Self {
            pair,
            rng: SystemRandom::new(),
            kid,
            jwk,
            source,
            algorithm,
        })
    }

    /// The JWS signature of `signing_input` (`header.payload`): ES256 as the fixed `r || s`.
    pub fn sign(&self, signing_input: &[u8]) -> Result<Vec<u8>, KeyError> {
        match &self.pair {
            Pair::Es256(pair) => pair
                .sign(&self.rng, signing_input)
                .map(|s| s.as_ref().to_vec())
                .map_err(|e| KeyError::Sign(e.to_string())),
            Pair::EdDsa(pair) => Ok(pair.sign(signing_input).as_ref().to_vec()),
        }
    }
}
