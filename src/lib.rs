//! session-authorizer: decides, for every request an API gateway forwards, whether it carries a
//! valid SuperTokens session, with the decisions of supertokens-node's `getSession`.
#![forbid(unsafe_code)]
// Request paths never panic: no unwrap/expect/indexing outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

pub mod claims;
pub mod clock;
pub mod config;
pub mod config_errors;
pub mod decision;
pub mod dev;
pub mod metrics;
pub mod policy;
pub mod protocol;
pub mod refetch;
pub mod request_target;
pub mod runtime_api;
pub mod server;
pub mod session;
pub mod startup;
pub mod state;
pub mod telemetry;
