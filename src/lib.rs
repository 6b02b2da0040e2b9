//! session-authorizer: decides, for every request an API gateway forwards, whether it carries a
//! valid SuperTokens session, with the decisions of supertokens-node's `getSession`.
#![forbid(unsafe_code)]
// Request paths never panic: no unwrap/expect/indexing outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

pub mod app;
pub mod authorizer;
pub mod canonical_target;
pub mod clock;
pub mod core_api;
pub mod credentials;
pub mod decision;
#[cfg(any(test, feature = "dev-issuer"))]
pub mod dev;
pub mod effects;
pub mod front_door;
pub mod labels;
pub mod observe;
pub mod policy;
pub mod request;
pub mod session;
pub mod settings;
pub mod verification;
