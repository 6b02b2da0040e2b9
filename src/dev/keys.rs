//! The issuer's RSA keys: a dynamic key (rotated like the core's), a static key, and a rogue
//! key that shares the dynamic kid but is published nowhere.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::IssuerError;

pub(super) struct SigningKey {
    pub(super) kid: String,
    pair: KeyPair,
}

impl SigningKey {
    pub(super) fn generate(kid: String) -> Result<Self, IssuerError> {
        Ok(Self {
            kid,
            pair: KeyPair::generate(KeySize::Rsa2048).map_err(|_| IssuerError::KeyGen)?,
        })
    }

    pub(super) fn jwk(&self) -> Value {
        let pk = self.pair.public_key();
        json!({
            "kty": "RSA",
            "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(pk.modulus().big_endian_without_leading_zero()),
            "e": URL_SAFE_NO_PAD.encode(pk.exponent().big_endian_without_leading_zero()),
            "alg": "RS256",
            "use": "sig",
        })
    }

    pub(super) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, IssuerError> {
        let mut sig = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut sig)
            .map_err(|_| IssuerError::Sign)?;
        Ok(sig)
    }
}

/// Which key signs a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyChoice {
    #[default]
    Dynamic,
    Static,
    /// A key that is not in the JWKS (same kid as the dynamic key).
    Rogue,
}
