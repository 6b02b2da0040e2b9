//! session-authorizer: decides, for every request an API gateway forwards, whether it carries a
//! valid SuperTokens session, with the decisions of supertokens-node's `getSession`.
//!
//! # Layout
//!
//! The folders are the stages of one decision, in the order a request meets them:
//!
//! ```text
//! front door (parse) -> canonical target -> credentials -> verification -> session -> policy
//!   -> effects -> Decision -> front door (render)
//! ```
//!
//! - [`front_door`]: one module per wire format (the Lambda contract, Envoy ext_authz HTTP and
//!   gRPC, forward-auth); each reads its format into a [`request::AuthRequest`] and writes the
//!   [`decision::Decision`] back in it. Wire formats, the SDK's JSON bodies included, live here
//!   only.
//! - [`authorizer`]: the short orchestrator that runs the stages below for every front door.
//! - [`canonical_target`]: every path a backend may route the request target as; one route must
//!   judge them all.
//! - [`credentials`]: which token the SDK would read (Bearer or cookie), its parse, anti-CSRF.
//! - [`verification`]: signature and times, the core's keys, the cache of verified tokens.
//! - [`session`]: the session a token proves, or the core's answer when the SDK would ask it;
//!   claim refetch and regenerate.
//! - [`policy`]: routes, tenants and claim validators.
//! - [`effects`]: the cookies and headers a decision sends back; [`assertion`]: the signed
//!   identity an allow carries to the backend.
//! - [`decision`]: the value a decision is; [`labels`] names it for metrics and logs.
//!
//! Beneath them: [`settings`] (typed while read, the leaf everything depends on), [`clock`],
//! [`core_api`] (the client of the SuperTokens core), [`state`] (the live configuration, swapped
//! whole by a reload). Around them: [`app`] (listeners, TLS, startup, reload), [`observe`]
//! (metrics, logs, traces) and, with the default `dev-issuer` feature, [`dev`] (the
//! embedded issuer of `session-authorizer dev`). `ARCHITECTURE.md` follows one request through.
#![forbid(unsafe_code)]
// Request paths never panic: no unwrap/expect/indexing outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

pub mod app;
pub mod assertion;
pub mod authorizer;
pub mod canonical_target;
pub mod clock;
pub mod config;
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
pub mod state;
pub mod trace_context;
pub mod verification;
