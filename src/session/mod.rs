//! The session behind a verified token: what the token proves alone, what the core says of it,
//! and its claims' current values.

pub mod core_checked;
mod info;
pub mod refetch;

use serde_json::{Map, Value};

pub use core_checked::{CoreSessions, Established};
pub use info::SessionInfo;

/// A new access token minted by the core for this request.
#[derive(Debug, Clone)]
pub struct NewAccessToken {
    pub token: String,
    pub expiry_ms: u64,
    pub user_id: String,
    /// The new token's payload, in the token's key order.
    pub payload: Map<String, Value>,
}

/// Why the session stage refuses a request, in the SDK's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// TRY_REFRESH_TOKEN.
    #[error("{0}")]
    TryRefresh(String),
    /// UNAUTHORISED: the session is gone, its tokens are cleared.
    #[error("{0}")]
    Unauthorised(String),
    /// The core failed or answered nonsense.
    #[error("{0}")]
    Error(String),
}
