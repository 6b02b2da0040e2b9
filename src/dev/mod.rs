//! The embedded issuer behind `session-authorizer dev`, also the stub core of the test suites:
//! a fresh RS256 key, a JWKS served over HTTP like a core's `/.well-known/jwks.json`, access
//! tokens minted in the core's v5 format, and the session and lookup endpoints a core answers.
//! Fault switches and request recorders belong to the test suites, around `Issuer::router()`.

mod core_routes;
mod issuer;
mod keys;

pub use issuer::{Issuer, MintOptions, StubUser};
pub use keys::KeyChoice;

#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    #[error("RSA key generation failed")]
    KeyGen,
    #[error("signing failed")]
    Sign,
    #[error("cannot bind the issuer: {0}")]
    Bind(#[from] std::io::Error),
}
