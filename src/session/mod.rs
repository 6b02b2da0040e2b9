//! Everything about one SuperTokens session: where the token comes from, what it says, whether
//! it is genuine, and what goes back to the client.

pub mod cache;
pub mod core;
pub mod credentials;
pub mod csrf;
pub mod facts;
pub mod jwks;
pub mod token;
pub mod transport;
pub mod verify;
