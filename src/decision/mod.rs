//! The decision: what the authorizer concluded about one request, before a front door renders it
//! in its own wire format.

use crate::effects::TokenEffects;
use crate::labels::Outcome;
use crate::policy::claims::{ClaimError, Reason};
use crate::session::SessionInfo;

#[derive(Debug, Clone)]
pub enum Decision {
    Allow {
        session: Box<SessionInfo>,
        effects: TokenEffects,
        /// The signed identity assertion, with `[assertion]` on.
        assertion: Option<std::sync::Arc<str>>,
    },
    /// No session, on a route where it is optional.
    Anonymous,
    /// The SDK's TRY_REFRESH_TOKEN.
    TryRefresh {
        reason: String,
    },
    /// The SDK's UNAUTHORISED; `effects` clears the tokens when the core revoked the session.
    Unauthorised {
        reason: String,
        effects: TokenEffects,
    },
    InvalidClaims {
        errors: Vec<ClaimError>,
    },
    /// The core failed or answered nonsense: fail closed (500-class).
    Error {
        reason: String,
    },
    /// The request cannot be judged as the backend would serve it (a target backends read in
    /// different ways, unreadable forwarding headers): 400, never an allow. `message` is for
    /// the client, `reason` for the log.
    BadRequest {
        message: String,
        reason: String,
    },
}

impl Decision {
    pub fn outcome(&self) -> Outcome {
        match self {
            Decision::Allow { .. } => Outcome::Allow,
            Decision::Anonymous => Outcome::Anonymous,
            Decision::TryRefresh { .. } => Outcome::TryRefresh,
            Decision::Unauthorised { .. } => Outcome::Unauthorised,
            Decision::InvalidClaims { .. } => Outcome::InvalidClaims,
            Decision::Error { .. } => Outcome::Error,
            Decision::BadRequest { .. } => Outcome::BadRequest,
        }
    }

    /// Why, for the decision log.
    pub fn reason(&self) -> &str {
        match self {
            Decision::TryRefresh { reason }
            | Decision::Unauthorised { reason, .. }
            | Decision::Error { reason }
            | Decision::BadRequest { reason, .. } => reason,
            Decision::InvalidClaims { errors } if errors.iter().any(|e| matches!(e.reason, Some(Reason::TenantNotAllowed { .. }))) => {
                "tenant not allowed on this route"
            }
            Decision::InvalidClaims { .. } => "claim validation failed",
            Decision::Allow { .. } | Decision::Anonymous => "",
        }
    }

    /// The user an allow is for; empty otherwise.
    pub fn user_id(&self) -> &str {
        match self {
            Decision::Allow { session, .. } => session.user_id(),
            _ => "",
        }
    }
}
