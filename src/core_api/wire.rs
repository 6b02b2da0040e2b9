//! The core's JSON, as CDI 5.4 spells it: the bodies we send and the answers we read.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyRequest<'a> {
    pub access_token: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub anti_csrf_token: Option<&'a str>,
    pub do_anti_csrf_check: bool,
    pub enable_anti_csrf: bool,
    pub check_database: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CoreSession {
    pub handle: String,
    pub user_id: String,
    #[serde(default)]
    pub recipe_user_id: Option<String>,
    #[serde(default)]
    #[serde(rename = "userDataInJWT")]
    pub user_data_in_jwt: Option<Map<String, Value>>,
    #[serde(default)]
    pub tenant_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct CoreAccessToken {
    pub token: String,
    pub expiry: u64,
}

#[derive(Debug, Clone)]
pub enum VerifyOutcome {
    Ok {
        session: CoreSession,
        access_token: Option<CoreAccessToken>,
    },
    Unauthorised {
        message: String,
    },
    TryRefresh {
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct VerifyReply {
    pub(super) status: String,
    #[serde(default)]
    pub(super) message: Option<String>,
    #[serde(default)]
    pub(super) session: Option<CoreSession>,
    #[serde(default)]
    pub(super) access_token: Option<CoreAccessToken>,
}

/// `POST /recipe/session/regenerate`'s answer.
#[derive(Debug, Clone)]
pub enum RegenerateOutcome {
    /// `access_token` is absent when the old token expired between verification and the call.
    Ok {
        session: CoreSession,
        access_token: Option<CoreAccessToken>,
    },
    Unauthorised,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RegenerateReply {
    pub(super) status: String,
    #[serde(default)]
    pub(super) session: Option<CoreSession>,
    #[serde(default)]
    pub(super) access_token: Option<CoreAccessToken>,
}

/// The slice of a core user (`GET /user/id`) the email-verification claim reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CoreUser {
    pub id: String,
    #[serde(default)]
    pub login_methods: Vec<CoreLoginMethod>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CoreLoginMethod {
    pub recipe_user_id: String,
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct StatusReply {
    pub(super) status: String,
    #[serde(default)]
    pub(super) user: Option<CoreUser>,
    #[serde(rename = "isVerified", default)]
    pub(super) is_verified: Option<bool>,
    #[serde(default)]
    pub(super) roles: Option<Vec<String>>,
    #[serde(default)]
    pub(super) permissions: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_user_data_in_jwt_as_the_core_spells_it() {
        let s: CoreSession =
            serde_json::from_str(r#"{"handle":"h","userId":"u","userDataInJWT":{"plan":"pro"},"tenantId":"public"}"#).expect("session");
        assert_eq!(s.user_data_in_jwt.and_then(|m| m.get("plan").cloned()), Some(Value::from("pro")));
    }

    #[test]
    fn verify_body_matches_node_key_order() {
        let body = serde_json::to_string(&VerifyRequest {
            access_token: "t",
            anti_csrf_token: None,
            do_anti_csrf_check: true,
            enable_anti_csrf: false,
            check_database: true,
        })
        .expect("json");
        assert_eq!(
            body,
            r#"{"accessToken":"t","doAntiCsrfCheck":true,"enableAntiCsrf":false,"checkDatabase":true}"#
        );
    }
}
