//! The core's HTTP answers, as a CDI 5.4 core gives them: the JWKS, session verify (a new
//! token on the first use after a refresh; UNAUTHORISED once revoked) and regenerate, and the
//! user, email-verification, role and permission lookups claim refetches make.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::IssuerError;
use super::issuer::Issuer;
use super::keys::{KeyChoice, SigningKey};
use crate::credentials::token::{DEFAULT_TENANT, PROTECTED_PROPS, ParsedToken};

impl Issuer {
    /// Serves the core endpoints on `addr` in the background; returns the bound address.
    pub async fn serve(self: &Arc<Self>, addr: SocketAddr) -> Result<SocketAddr, IssuerError> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let bound = listener.local_addr()?;
        let app = self.router();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "embedded issuer stopped");
            }
        });
        Ok(bound)
    }

    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/.well-known/jwks.json", get(jwks_handler))
            .route("/apiversion", get(|| async { Json(json!({"versions": ["5.4"]})) }))
            .route("/recipe/session/verify", post(verify_handler))
            .route("/recipe/session/regenerate", post(regenerate_handler))
            .route("/user/id", get(user_handler))
            .route("/recipe/user/email/verify", get(email_verify_handler))
            .route("/{tenant}/recipe/user/roles", get(roles_handler))
            .route("/recipe/role/permissions", get(permissions_handler))
            .with_state(self.clone())
    }

    /// The signing key of a genuine token (any expiry), or the core's answer refusing it.
    fn genuine_key(&self, token: &ParsedToken) -> Result<Arc<SigningKey>, Value> {
        let current = self.current();
        let retired = self.retired.read().map(|r| r.clone()).unwrap_or_default();
        let key = match token.kid.as_deref() {
            Some(k) if k == current.kid => current,
            Some(k) if k == self.statik.kid => self.statik.clone(),
            Some(k) => match retired.into_iter().find(|r| r.kid == k) {
                Some(r) => r,
                None => return Err(json!({"status": "TRY_REFRESH_TOKEN", "message": "unknown kid"})),
            },
            None => return Err(json!({"status": "TRY_REFRESH_TOKEN", "message": "unknown kid"})),
        };
        let jwk = key.jwk();
        let genuine = jsonwebtoken::DecodingKey::from_rsa_components(
            jwk.get("n").and_then(Value::as_str).unwrap_or_default(),
            jwk.get("e").and_then(Value::as_str).unwrap_or_default(),
        )
        .ok()
        .and_then(|k| jsonwebtoken::crypto::verify(token.signature(), token.signing_input(), &k, jsonwebtoken::Algorithm::RS256).ok())
        .unwrap_or(false);
        if genuine {
            Ok(key)
        } else {
            Err(json!({"status": "TRY_REFRESH_TOKEN", "message": "Access token invalid"}))
        }
    }

    pub fn is_revoked(&self, handle: &str) -> bool {
        self.revoked.lock().map(|r| r.contains(handle)).unwrap_or(true)
    }

    fn session_json(token: &ParsedToken, user_data: &Map<String, Value>) -> Value {
        json!({
            "handle": token.session_handle(),
            "userId": token.user_id(),
            "recipeUserId": token.recipe_user_id(),
            "userDataInJWT": user_data,
            "tenantId": token.tenant_id().unwrap_or_else(|| DEFAULT_TENANT.into()),
        })
    }

    /// The core's regenerate: same session and `exp`, `iat` now, the given custom claims; a new
    /// token only while the old one is unexpired.
    fn regenerate(&self, body: &RegenerateBody) -> Value {
        let Ok(token) = ParsedToken::parse(&body.access_token) else {
            return json!({"status": "UNAUTHORISED", "message": "Token parsing failed"});
        };
        let key = match self.genuine_key(&token) {
            Ok(k) => k,
            Err(_) => return json!({"status": "UNAUTHORISED", "message": "Access token invalid"}),
        };
        if self.is_revoked(token.session_handle()) {
            return json!({"status": "UNAUTHORISED", "message": "Session does not exist."});
        }
        let session = Self::session_json(&token, &body.user_data_in_jwt);
        let now_ms = self.clock.now_ms();
        if token.expiry_ms() <= now_ms as f64 {
            return json!({"status": "OK", "session": session});
        }
        let mut payload = body.user_data_in_jwt.clone();
        for (k, v) in token.payload.iter() {
            if PROTECTED_PROPS.contains(&k.as_str()) {
                payload.insert(k.clone(), v.clone());
            }
        }
        payload.insert("iat".into(), json!(now_ms / 1000));
        self.reissue(&token, &key, payload, session, token.expiry_ms() as u64, "UNAUTHORISED")
    }

    /// The core's answer carrying a new token: the old header, signed by the key of the old one.
    fn reissue(
        &self,
        token: &ParsedToken,
        key: &SigningKey,
        payload: Map<String, Value>,
        session: Value,
        expiry_ms: u64,
        failure: &str,
    ) -> Value {
        let now_ms = self.clock.now_ms();
        let signing = if key.kid == self.statik.kid {
            KeyChoice::Static
        } else {
            KeyChoice::Dynamic
        };
        match self.sign_raw(&Value::Object(token.header.clone()), &Value::Object(payload), signing) {
            Ok(new_token) => {
                json!({"status": "OK", "session": session, "accessToken": {"token": new_token, "expiry": expiry_ms, "createdTime": now_ms}})
            }
            Err(_) => json!({"status": failure, "message": "signing failed"}),
        }
    }

    fn user(&self, user_id: &str) -> Value {
        let user = self.directory.lock().ok().and_then(|d| d.users.get(user_id).cloned());
        let Some(user) = user else {
            return json!({"status": "UNKNOWN_USER_ID_ERROR"});
        };
        let emails: Vec<&String> = user.email.iter().collect();
        let mut login = json!({
            "recipeId": if user.email.is_some() { "emailpassword" } else { "passwordless" },
            "recipeUserId": user_id,
            "tenantIds": [DEFAULT_TENANT],
            "timeJoined": 0,
            "verified": user.email_verified,
        });
        if let (Some(email), Some(obj)) = (&user.email, login.as_object_mut()) {
            obj.insert("email".into(), json!(email));
        }
        json!({"status": "OK", "user": {
            "id": user_id, "isPrimaryUser": false, "tenantIds": [DEFAULT_TENANT], "emails": emails,
            "phoneNumbers": [], "thirdParty": [], "webauthn": {"credentialIds": []},
            "loginMethods": [login], "timeJoined": 0,
        }})
    }

    fn verify(&self, body: &VerifyBody) -> Value {
        let Ok(token) = ParsedToken::parse(&body.access_token) else {
            return json!({"status": "TRY_REFRESH_TOKEN", "message": "Token parsing failed"});
        };
        let key = match self.genuine_key(&token) {
            Ok(k) => k,
            Err(answer) => return answer,
        };
        if token.expiry_ms() <= self.clock.now_ms() as f64 {
            return json!({"status": "TRY_REFRESH_TOKEN", "message": "Access token expired or invalid"});
        }
        if body.enable_anti_csrf && body.do_anti_csrf_check && token.anti_csrf_token() != body.anti_csrf_token.as_deref() {
            return json!({"status": "TRY_REFRESH_TOKEN", "message": "anti-csrf check failed"});
        }
        if self.is_revoked(token.session_handle()) {
            return json!({"status": "UNAUTHORISED", "message": "Either the session has ended or has been blacklisted"});
        }
        let custom: Map<String, Value> = token
            .payload
            .iter()
            .filter(|(k, _)| !PROTECTED_PROPS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let session = Self::session_json(&token, &custom);
        if token.parent_refresh_token_hash1().is_none() {
            return json!({"status": "OK", "session": session});
        }
        // First use after a refresh: promote and mint a token without the parent hash.
        let now_ms = self.clock.now_ms();
        let mut payload = (*token.payload).clone();
        payload.insert("parentRefreshTokenHash1".into(), Value::Null);
        payload.insert("iat".into(), json!(now_ms / 1000));
        let exp = now_ms / 1000 + self.access_token_validity_secs;
        payload.insert("exp".into(), json!(exp));
        self.reissue(&token, &key, payload, session, exp * 1000, "TRY_REFRESH_TOKEN")
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VerifyBody {
    access_token: String,
    #[serde(default)]
    anti_csrf_token: Option<String>,
    #[serde(default)]
    do_anti_csrf_check: bool,
    #[serde(default)]
    enable_anti_csrf: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegenerateBody {
    access_token: String,
    #[serde(default)]
    #[serde(rename = "userDataInJWT")]
    user_data_in_jwt: Map<String, Value>,
}

async fn jwks_handler(State(issuer): State<Arc<Issuer>>) -> Json<Value> {
    Json(issuer.jwks())
}

async fn verify_handler(State(issuer): State<Arc<Issuer>>, Json(body): Json<VerifyBody>) -> Json<Value> {
    Json(issuer.verify(&body))
}

async fn regenerate_handler(State(issuer): State<Arc<Issuer>>, Json(body): Json<RegenerateBody>) -> Json<Value> {
    Json(issuer.regenerate(&body))
}

async fn user_handler(State(issuer): State<Arc<Issuer>>, Query(q): Query<HashMap<String, String>>) -> Json<Value> {
    Json(issuer.user(q.get("userId").map_or("", String::as_str)))
}

async fn email_verify_handler(State(issuer): State<Arc<Issuer>>, Query(q): Query<HashMap<String, String>>) -> Json<Value> {
    let user = issuer
        .directory
        .lock()
        .ok()
        .and_then(|d| d.users.get(q.get("userId").map_or("", String::as_str)).cloned());
    let verified = user.is_some_and(|u| u.email_verified && u.email.as_ref() == q.get("email"));
    Json(json!({"status": "OK", "isVerified": verified}))
}

async fn roles_handler(
    State(issuer): State<Arc<Issuer>>,
    Path(tenant): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    let user = q.get("userId").cloned().unwrap_or_default();
    let roles = issuer
        .directory
        .lock()
        .ok()
        .and_then(|d| d.roles.get(&(tenant, user)).cloned())
        .unwrap_or_default();
    Json(json!({"status": "OK", "roles": roles}))
}

async fn permissions_handler(State(issuer): State<Arc<Issuer>>, Query(q): Query<HashMap<String, String>>) -> Json<Value> {
    let role = q.get("role").cloned().unwrap_or_default();
    Json(match issuer.directory.lock().ok().and_then(|d| d.permissions.get(&role).cloned()) {
        Some(p) => json!({"status": "OK", "permissions": p}),
        None => json!({"status": "UNKNOWN_ROLE_ERROR"}),
    })
}
