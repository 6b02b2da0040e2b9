//! `SessionInfo`: the verified session behind an allow, as the front doors and identity headers
//! read it. On the cached path nothing is copied per request: the ids and claims stay in the
//! cached token until something reads them.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::core_api::CoreSession;
use crate::credentials::token::DEFAULT_TENANT;
use crate::session::NewAccessToken;
use crate::verification::cache::SessionToken;

#[derive(Debug, Clone)]
pub struct SessionInfo {
    ids: Ids,
    pub expiry_ms: u64,
    claims: Claims,
}

/// Where the session's ids come from: a cached token or the core.
#[derive(Debug, Clone)]
enum Ids {
    Token(Arc<SessionToken>),
    Core(Arc<CoreIds>),
}

#[derive(Debug)]
struct CoreIds {
    user_id: String,
    recipe_user_id: String,
    tenant_id: String,
    session_handle: String,
}

/// Where the claims payload comes from: parsed from the cached token only when something reads it.
#[derive(Debug, Clone)]
enum Claims {
    Token(Arc<SessionToken>),
    Payload(Arc<Map<String, Value>>),
}

impl SessionInfo {
    /// The session a verified token proves on its own, without the core.
    pub fn from_token(token: &Arc<SessionToken>) -> Self {
        Self {
            ids: Ids::Token(token.clone()),
            expiry_ms: token.expiry_ms as u64,
            claims: Claims::Token(token.clone()),
        }
    }

    /// The session as the SDK builds it after a core verify: the payload of the token the core
    /// minted, else of the token presented (v2: the core's `userDataInJWT`); the core's tenant,
    /// else the verified token's.
    pub fn from_core(session: &CoreSession, minted: Option<&NewAccessToken>, token: &Arc<SessionToken>, verified: bool) -> Self {
        let claims = match (minted, token.version >= 3) {
            (Some(m), true) => Claims::Payload(Arc::new(m.payload.clone())),
            (None, true) => Claims::Token(token.clone()),
            (_, false) => Claims::Payload(Arc::new(session.user_data_in_jwt.clone().unwrap_or_default())),
        };
        let tenant_id = match (&session.tenant_id, verified) {
            (Some(t), _) => t.clone(),
            (None, true) => token.tenant_id().unwrap_or(DEFAULT_TENANT).to_owned(),
            (None, false) => DEFAULT_TENANT.to_owned(),
        };
        Self {
            ids: Ids::Core(Arc::new(CoreIds {
                recipe_user_id: session.recipe_user_id.clone().unwrap_or_else(|| session.user_id.clone()),
                user_id: session.user_id.clone(),
                tenant_id,
                session_handle: session.handle.clone(),
            })),
            expiry_ms: token.expiry_ms as u64,
            claims,
        }
    }

    pub fn user_id(&self) -> &str {
        match &self.ids {
            Ids::Token(t) => t.user_id(),
            Ids::Core(c) => &c.user_id,
        }
    }

    pub fn recipe_user_id(&self) -> &str {
        match &self.ids {
            Ids::Token(t) => t.recipe_user_id(),
            Ids::Core(c) => &c.recipe_user_id,
        }
    }

    /// The session's tenant (`getTenantId()`); `None` only for a v4+ token without `tId`.
    pub fn tenant_id(&self) -> Option<&str> {
        match &self.ids {
            Ids::Token(t) => t.tenant_id(),
            Ids::Core(c) => Some(&c.tenant_id),
        }
    }

    /// The tenant, the default one when the session names none (as route rules read it).
    pub fn tenant_or_default(&self) -> &str {
        self.tenant_id().unwrap_or(DEFAULT_TENANT)
    }

    pub fn session_handle(&self) -> &str {
        match &self.ids {
            Ids::Token(t) => t.session_handle(),
            Ids::Core(c) => &c.session_handle,
        }
    }

    /// The access-token payload (v2: `userData`) that validators and claim headers read.
    pub fn claims(&self) -> Arc<Map<String, Value>> {
        match &self.claims {
            Claims::Token(t) => t.claims(),
            Claims::Payload(p) => p.clone(),
        }
    }

    /// The payload after a regenerate.
    pub fn set_claims(&mut self, payload: Arc<Map<String, Value>>) {
        self.claims = Claims::Payload(payload);
    }
}
