//! `[[routes]]`: which requests need a session, and the claim validators each runs, checked while
//! read (the path globs are compiled once, into the `Policy`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The claims SuperTokens' recipes write into the access token.
pub const EMAIL_VERIFICATION_CLAIM: &str = "st-ev";
pub const MFA_CLAIM: &str = "st-mfa";
pub const ROLE_CLAIM: &str = "st-role";
pub const PERMISSION_CLAIM: &str = "st-perm";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionRequirement {
    Optional,
    Required,
    /// Credentials are not read at all: allowed, with no identity (client copies removed). For
    /// the backend SDK's own routes: its refresh call carries an expired access token, or a
    /// refresh token as `Authorization: Bearer`, neither of which is a session to judge.
    Public,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSettings {
    #[serde(default = "any_method")]
    pub methods: Vec<String>,
    pub path: String,
    #[serde(default = "optional_session")]
    pub session: SessionRequirement,
    #[serde(default)]
    pub check_database: Option<bool>,
    #[serde(default)]
    pub claims: Vec<ClaimRule>,
    /// Whether the global validators (`email_verification`, `mfa`) apply here; a route validator
    /// on the same claim replaces the global one either way (the SDK's
    /// `overrideGlobalClaimValidators`).
    #[serde(default = "yes")]
    pub global_claims: bool,
    /// Tenants (`tId`, `public` when absent) whose sessions may use the route; empty allows all.
    #[serde(default)]
    pub tenants: Vec<String>,
}

fn yes() -> bool {
    true
}

pub(crate) fn any_method() -> Vec<String> {
    vec!["*".into()]
}

fn optional_session() -> SessionRequirement {
    SessionRequirement::Optional
}

impl RouteSettings {
    /// A route on `path` for every method, with nothing else set.
    pub fn any_method(path: impl Into<String>, session: SessionRequirement) -> Self {
        Self {
            methods: any_method(),
            path: path.into(),
            session,
            check_database: None,
            claims: Vec::new(),
            global_claims: true,
            tenants: Vec::new(),
        }
    }

    /// What is wrong with the route, other than its glob (compiled with the policy).
    pub fn check(&self) -> Result<(), String> {
        if !self.path.starts_with('/') {
            return Err(format!("path `{}` must start with `/`", self.path));
        }
        if self.methods.is_empty() {
            return Err("methods must not be empty (use [\"*\"] for any)".into());
        }
        if self.session == SessionRequirement::Public
            && (!self.claims.is_empty() || !self.tenants.is_empty() || self.check_database.is_some())
        {
            return Err("a public route reads no session, so it takes no claims, tenants or check_database".into());
        }
        if self.tenants.iter().any(|t| t.trim().is_empty()) {
            return Err("tenants must not contain an empty name".into());
        }
        Ok(())
    }

    /// Whether the route meets every method and path.
    pub fn matches_everything(&self) -> bool {
        self.path == "/**" && self.methods.iter().any(|m| m == "*")
    }
}

/// A claim validator: the SDK's `hasCompletedMFARequirementsForAuth`, or a check of a claim's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ClaimSpec", into = "ClaimSpec")]
pub enum ClaimRule {
    /// `st-mfa`'s `v` is true.
    MfaCompleted,
    Value(ValueRule),
}

#[derive(Debug, Clone, PartialEq)]
pub struct ValueRule {
    pub claim: String,
    pub check: ValueCheck,
    /// The value is refetched, and refused, once older than this.
    pub max_age_secs: Option<u64>,
}

/// The checks of the SDK's primitive and array claim validators.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueCheck {
    /// `hasValue` (and `isVerified` for `st-ev = true`).
    Is(Value),
    Includes(Value),
    Excludes(Value),
    IncludesAll(Vec<Value>),
    IncludesAny(Vec<Value>),
    ExcludesAll(Vec<Value>),
}

impl ClaimRule {
    /// The validator `EmailVerification.init({mode: "REQUIRED"})` registers.
    pub fn email_verified() -> Self {
        ClaimRule::Value(ValueRule {
            claim: EMAIL_VERIFICATION_CLAIM.into(),
            check: ValueCheck::Is(Value::Bool(true)),
            max_age_secs: None,
        })
    }

    pub fn claim(&self) -> &str {
        match self {
            ClaimRule::MfaCompleted => MFA_CLAIM,
            ClaimRule::Value(v) => &v.claim,
        }
    }
}

/// A validator as `config.toml` writes it: a claim name and exactly one check.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClaimSpec {
    pub claim: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub includes: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excludes: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub includes_all: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub includes_any: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excludes_all: Option<Vec<Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_secs: Option<u64>,
}

impl TryFrom<ClaimSpec> for ClaimRule {
    type Error = String;

    fn try_from(spec: ClaimSpec) -> Result<Self, String> {
        if spec.claim.is_empty() {
            return Err("a claim validator needs a non-empty `claim`".into());
        }
        let mut checks = Vec::new();
        if let Some(v) = spec.is {
            if spec.claim == MFA_CLAIM {
                if v != Value::Bool(true) {
                    return Err("`st-mfa` only supports `is = true` (MFA requirements completed)".into());
                }
                if spec.max_age_secs.is_some() {
                    return Err("`st-mfa` takes no max_age_secs".into());
                }
                checks.push(None);
            } else {
                checks.push(Some(ValueCheck::Is(primitive(v, "is")?)));
            }
        }
        if let Some(v) = spec.includes {
            checks.push(Some(ValueCheck::Includes(primitive(v, "includes")?)));
        }
        if let Some(v) = spec.excludes {
            checks.push(Some(ValueCheck::Excludes(primitive(v, "excludes")?)));
        }
        if let Some(v) = spec.includes_all {
            checks.push(Some(ValueCheck::IncludesAll(primitives(v, "includes_all")?)));
        }
        if let Some(v) = spec.includes_any {
            checks.push(Some(ValueCheck::IncludesAny(primitives(v, "includes_any")?)));
        }
        if let Some(v) = spec.excludes_all {
            checks.push(Some(ValueCheck::ExcludesAll(primitives(v, "excludes_all")?)));
        }
        match (checks.pop(), checks.is_empty()) {
            (Some(None), true) => Ok(ClaimRule::MfaCompleted),
            (Some(Some(check)), true) => Ok(ClaimRule::Value(ValueRule {
                claim: spec.claim,
                check,
                max_age_secs: spec.max_age_secs,
            })),
            _ => Err(format!(
                "claim `{}` needs exactly one of is, includes, excludes, includes_all, includes_any, excludes_all",
                spec.claim
            )),
        }
    }
}

impl From<ClaimRule> for ClaimSpec {
    fn from(rule: ClaimRule) -> Self {
        let ValueRule {
            claim,
            check,
            max_age_secs,
        } = match rule {
            ClaimRule::MfaCompleted => {
                return ClaimSpec {
                    claim: MFA_CLAIM.into(),
                    is: Some(Value::Bool(true)),
                    ..Default::default()
                };
            }
            ClaimRule::Value(v) => v,
        };
        let mut spec = ClaimSpec {
            claim,
            max_age_secs,
            ..Default::default()
        };
        match check {
            ValueCheck::Is(v) => spec.is = Some(v),
            ValueCheck::Includes(v) => spec.includes = Some(v),
            ValueCheck::Excludes(v) => spec.excludes = Some(v),
            ValueCheck::IncludesAll(v) => spec.includes_all = Some(v),
            ValueCheck::IncludesAny(v) => spec.includes_any = Some(v),
            ValueCheck::ExcludesAll(v) => spec.excludes_all = Some(v),
        }
        spec
    }
}

fn primitive(v: Value, key: &str) -> Result<Value, String> {
    match v {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(v),
        _ => Err(format!("`{key}` must be a string, number or boolean")),
    }
}

fn primitives(vs: Vec<Value>, key: &str) -> Result<Vec<Value>, String> {
    vs.into_iter().map(|v| primitive(v, key)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(spec: Value) -> Result<ClaimRule, String> {
        ClaimRule::try_from(serde_json::from_value::<ClaimSpec>(spec).map_err(|e| e.to_string())?)
    }

    #[test]
    fn a_validator_takes_exactly_one_check() {
        assert!(rule(json!({"claim": "x", "is": 1, "includes": 2})).is_err());
        assert!(rule(json!({"claim": "x"})).is_err());
        assert!(rule(json!({"claim": "", "is": 1})).is_err());
        assert!(rule(json!({"claim": "x", "includes": {"a": 1}})).is_err());
        assert_eq!(rule(json!({"claim": "st-mfa", "is": true})), Ok(ClaimRule::MfaCompleted));
        assert!(rule(json!({"claim": "st-mfa", "is": false})).is_err());
        assert!(rule(json!({"claim": "st-mfa", "is": true, "max_age_secs": 5})).is_err());
    }

    #[test]
    fn rules_print_as_they_were_written() {
        for spec in [
            json!({"claim": "st-role", "includes": "admin"}),
            json!({"claim": "st-ev", "is": true, "max_age_secs": 60}),
            json!({"claim": "st-perm", "includes_any": ["a", "b"]}),
            json!({"claim": "st-mfa", "is": true}),
        ] {
            let parsed = rule(spec.clone()).expect("rule");
            assert_eq!(serde_json::to_value(ClaimSpec::from(parsed)).expect("json"), spec);
        }
    }
}
