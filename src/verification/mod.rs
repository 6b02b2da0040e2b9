//! Whether an access token is genuine and current: the core's keys, the signature and time
//! checks, and the cache of tokens already verified.

pub mod cache;
pub mod facts;
pub mod jwks;
pub mod signature;
