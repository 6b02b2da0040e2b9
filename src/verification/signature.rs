//! Signature and time checks of a parsed access token against the JWKS: RS256 only, key by
//! `kid` (every key for v2), `exp`/`nbf`/`iat` as jose checks them, no leeway unless configured.

use std::sync::Arc;

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use crate::credentials::token::{ParsedToken, node_base64_decode};
use crate::verification::jwks::{JwksCache, JwksError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("algorithm `{0}` is not accepted (RS256 only)")]
    Algorithm(String),
    #[error("`crit` header parameters are not supported")]
    Crit,
    #[error("header parameter `{0}` is not accepted")]
    Header(&'static str),
    #[error("kid is missing or not a string")]
    Kid,
    #[error(transparent)]
    Keys(#[from] JwksError),
    #[error("signature does not verify")]
    Signature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid (nbf)")]
    NotYetValid,
    #[error("claim `{0}` has the wrong type")]
    ClaimType(&'static str),
}

impl VerifyError {
    /// Failures that no later request can turn into a success (a forged or malformed token), as
    /// opposed to expiry or key availability.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            VerifyError::Algorithm(_)
                | VerifyError::Crit
                | VerifyError::Header(_)
                | VerifyError::Kid
                | VerifyError::Signature
                | VerifyError::ClaimType(_)
        )
    }
}

/// Verifies the signature and claim types (times are checked per request, see `SessionToken`).
pub async fn verify_signature(token: &ParsedToken, jwks: &JwksCache) -> Result<(), VerifyError> {
    check_header(token)?;
    if token.version >= 3 {
        let kid = token.kid.as_deref().ok_or(VerifyError::Kid)?;
        let key = jwks.key_for(kid).await?;
        if !signature_ok(token.signature(), token.signing_input(), &key) {
            return Err(VerifyError::Signature);
        }
    } else {
        // Legacy v1/v2 tokens carry no kid and a standard-base64 signature: try every key.
        let keys = jwks.all_keys().await?;
        let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(node_base64_decode(token.signature()));
        if !keys.iter().any(|k| signature_ok(&sig, token.signing_input(), k)) {
            return Err(VerifyError::Signature);
        }
    }
    check_claim_types(token)
}

fn check_header(token: &ParsedToken) -> Result<(), VerifyError> {
    match token.header.get("alg") {
        Some(Value::String(a)) if a == "RS256" => {}
        Some(Value::String(a)) => return Err(VerifyError::Algorithm(a.clone())),
        _ => return Err(VerifyError::Algorithm(String::new())),
    }
    if token.header.contains_key("crit") {
        return Err(VerifyError::Crit);
    }
    // jose only honours `b64` through `crit`; an unencoded payload is never a SuperTokens token.
    if token.header.get("b64").is_some_and(|b| b != &Value::Bool(true)) {
        return Err(VerifyError::Header("b64"));
    }
    Ok(())
}

fn signature_ok(signature: &str, message: &[u8], key: &Arc<DecodingKey>) -> bool {
    jsonwebtoken::crypto::verify(signature, message, key, Algorithm::RS256).unwrap_or(false)
}

/// jose refuses `exp`, `nbf` and `iat` that are present but not numbers.
fn check_claim_types(token: &ParsedToken) -> Result<(), VerifyError> {
    for key in ["exp", "nbf", "iat"] {
        if token.payload.get(key).is_some_and(|v| !v.is_number()) {
            return Err(VerifyError::ClaimType(key));
        }
    }
    Ok(())
}
