//! The AWS Lambda authorizer contract over HTTP (`POST /authorize`): REST `REQUEST`/`TOKEN`
//! events, HTTP API payload 2.0 (and 1.0), and AppSync, detected from the event itself.
//!
//! Events are read with borrowed, typed serde structs holding only the fields a decision needs;
//! responses are written in the exact shape of the SuperTokens docs' Node handler.
//!
//! `authorize` is the one entry point: `POST /authorize` and the Lambda Runtime API loop
//! (`session-authorizer lambda`) both call it and differ only in how they carry a refusal.

mod borrowed;
mod event;
mod reply;
pub mod runtime;

pub use event::{Decoded, Reply, decode};
pub use reply::{INTERNAL_BODY, UNAUTHORIZED_BODY, render};

use crate::state::AppState;

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("request body is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error(
        "not a Lambda authorizer event: expected `type` REQUEST or TOKEN with `methodArn`, `version` \"2.0\" with `routeArn`, or AppSync `authorizationToken` with `requestContext.apiId`"
    )]
    Unrecognised,
    #[error("{kind} event is missing `{field}`")]
    Missing { kind: &'static str, field: &'static str },
    #[error("not a Lambda authorizer event: the body is {0}, not a JSON object")]
    NotAnObject(&'static str),
}

/// Why an invocation gets no response object. Over HTTP each is a status code; under the Lambda
/// Runtime API each is a function error whose message is this `Display`.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// Not an authorizer event (HTTP 400).
    #[error(transparent)]
    Event(#[from] EventError),
    /// TRY_REFRESH_TOKEN or UNAUTHORISED. API Gateway answers 401 only when a Lambda fails with
    /// exactly this message, so it must never change.
    #[error("Unauthorized")]
    Unauthorized,
    /// The core failed, or the answer could not be written: fail closed (HTTP 500; any other
    /// function error is API Gateway's 500 too).
    #[error("Internal server error")]
    Internal,
}

/// One authorizer invocation: the event in, the contract's response object (JSON text) out.
pub async fn authorize(state: &AppState, event: &[u8]) -> Result<String, Refusal> {
    let live = state.live();
    let settings = &live.settings.lambda;
    let decoded = decode(event, settings)?;
    let decision = live.authorizer.decide(&decoded.request).await;
    // Only AppSync's answer depends on the time (its TTL).
    let now_ms = if decoded.reply == Reply::AppSync { state.clock.now_ms() } else { 0 };
    render(&decision, &decoded.reply, settings, now_ms)
}
