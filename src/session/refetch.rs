//! Claim refetch: supertokens-node's `validateClaims` steps before validation. A validator whose
//! `shouldRefetch` holds asks the core for the claim's current value, the value goes into the
//! payload as `{"v": value, "t": now}`, and a changed payload becomes the `userDataInJWT` of a
//! `POST /recipe/session/regenerate`.

use serde_json::{Map, Value, json};

use crate::core_api::{CoreClient, CoreError};
use crate::credentials::token::{DEFAULT_TENANT, PROTECTED_PROPS};
use crate::policy::claims::{ClaimRule, EMAIL_VERIFICATION_CLAIM, MFA_CLAIM, PERMISSION_CLAIM, ROLE_CLAIM, should_refetch};
use crate::session::SessionInfo;

#[derive(Debug, thiserror::Error)]
pub enum RefetchError {
    /// The SDK throws `UNKNOWN_USER_ID` (a 500) when the core does not know the session's user.
    #[error("UNKNOWN_USER_ID: the core does not know user `{0}`")]
    UnknownUser(String),
    /// `st-mfa` is computed by the MFA recipe from the user, the tenant's factors and more; the
    /// claim is written at sign-in, so a session without it is sent back to sign in.
    #[error("the session has no st-mfa claim; sign in again so the MFA recipe can add it")]
    MfaMissing,
    #[error(transparent)]
    Core(#[from] CoreError),
}

/// Who the claims are fetched for.
pub struct Subject<'a> {
    pub user_id: &'a str,
    pub recipe_user_id: &'a str,
    pub tenant_id: &'a str,
}

impl<'a> Subject<'a> {
    /// `getUserId()`, `getRecipeUserId()` and `payload.tId ?? DEFAULT_TENANT_ID`: the SDK's
    /// `validateClaims` reads the tenant from the payload being validated, not from the session
    /// (they differ for a legacy token, whose payload has no `tId`).
    pub fn of(session: &'a SessionInfo, payload: &'a Map<String, Value>) -> Self {
        Self {
            user_id: session.user_id(),
            recipe_user_id: session.recipe_user_id(),
            tenant_id: payload.get("tId").and_then(Value::as_str).unwrap_or(DEFAULT_TENANT),
        }
    }
}

/// Runs every due refetch on `payload`; `Ok(None)` when nothing changed.
pub async fn refetch<'v>(
    core: &CoreClient,
    validators: impl Iterator<Item = &'v ClaimRule>,
    subject: &Subject<'_>,
    payload: &Map<String, Value>,
    now_ms: u64,
) -> Result<Option<Map<String, Value>>, RefetchError> {
    let mut updated: Option<Map<String, Value>> = None;
    for v in validators {
        let current = updated.as_ref().unwrap_or(payload);
        if !should_refetch(v, current, now_ms) {
            continue;
        }
        if let Some(value) = fetch_value(core, v.claim(), subject).await? {
            updated
                .get_or_insert_with(|| payload.clone())
                .insert(v.claim().to_owned(), json!({"v": value, "t": now_ms}));
        }
    }
    // `t` is always new, so any fetched value changes the payload.
    Ok(updated.filter(|u| u != payload))
}

/// The claim's `fetchValue`; `None` (JavaScript's `undefined`) for claims only the app can fetch.
async fn fetch_value(core: &CoreClient, claim: &str, subject: &Subject<'_>) -> Result<Option<Value>, RefetchError> {
    match claim {
        EMAIL_VERIFICATION_CLAIM => email_verified(core, subject).await.map(|v| Some(Value::Bool(v))),
        ROLE_CLAIM => Ok(Some(json!(core.roles_for_user(subject.tenant_id, subject.user_id).await?))),
        PERMISSION_CLAIM => {
            let mut permissions: Vec<String> = Vec::new();
            for role in core.roles_for_user(subject.tenant_id, subject.user_id).await? {
                for p in core.permissions_for_role(&role).await?.unwrap_or_default() {
                    if !permissions.contains(&p) {
                        permissions.push(p);
                    }
                }
            }
            Ok(Some(json!(permissions)))
        }
        MFA_CLAIM => Err(RefetchError::MfaMissing),
        _ => Ok(None),
    }
}

/// `EmailVerificationClaim.fetchValue`: the recipe user's email from `/user/id`, then its status;
/// a login method without an email counts as verified.
async fn email_verified(core: &CoreClient, subject: &Subject<'_>) -> Result<bool, RefetchError> {
    let unknown = || RefetchError::UnknownUser(subject.recipe_user_id.to_owned());
    let user = core.get_user(subject.recipe_user_id).await?.ok_or_else(unknown)?;
    let method = user
        .login_methods
        .iter()
        .find(|m| m.recipe_user_id == subject.recipe_user_id)
        .ok_or_else(unknown)?;
    match &method.email {
        Some(email) => Ok(core.is_email_verified(subject.recipe_user_id, email).await?),
        None => Ok(true),
    }
}

/// `mergeIntoAccessTokenPayload`'s body for the core: the payload without protected props and
/// without keys set to `null`.
pub fn user_data_for_regenerate(payload: &Map<String, Value>) -> Map<String, Value> {
    payload
        .iter()
        .filter(|(k, v)| !PROTECTED_PROPS.contains(&k.as_str()) && !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regenerate_body_drops_protected_and_null_keys() {
        let p: Map<String, Value> = serde_json::from_value(json!({
            "st-ev": {"v": true, "t": 1}, "sub": "u", "gone": null, "plan": "pro", "exp": 1, "tId": "public"
        }))
        .expect("map");
        let body = user_data_for_regenerate(&p);
        assert_eq!(
            serde_json::to_string(&body).expect("json"),
            r#"{"st-ev":{"v":true,"t":1},"plan":"pro"}"#
        );
    }
}
