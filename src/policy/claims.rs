//! Claim validators (`st-ev`, `st-role`, `st-perm`, `st-mfa`, any primitive claim) evaluated on
//! the access-token payload, with SuperTokens' `claimValidationErrors` JSON in Node's field order.

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

pub const EMAIL_VERIFICATION_CLAIM: &str = "st-ev";
pub const MFA_CLAIM: &str = "st-mfa";
pub const ROLE_CLAIM: &str = "st-role";
pub const PERMISSION_CLAIM: &str = "st-perm";
/// The SDK's `isVerified` refetches a `false` value once it is older than this.
pub const EV_REFETCH_ON_FALSE_SECS: u64 = 10;

/// The validators the SDK's recipes register for every route, in recipe-init order.
pub fn global_validators(st: &crate::settings::SuperTokensSettings) -> Vec<Validator> {
    let mut v = Vec::new();
    if st.email_verification == crate::settings::EmailVerificationMode::Required {
        v.push(Validator::email_verified());
    }
    if st.mfa {
        v.push(Validator::mfa_completed());
    }
    v
}

/// A validator as written in `config.toml`: a claim name and exactly one check.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ValidatorSpec {
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

#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// `hasValue` (and `isVerified` for `st-ev = true`).
    Is(Value),
    Includes(Value),
    Excludes(Value),
    IncludesAll(Vec<Value>),
    IncludesAny(Vec<Value>),
    ExcludesAll(Vec<Value>),
    /// `hasCompletedMFARequirementsForAuth`: the `v` of `st-mfa`.
    MfaCompleted,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Validator {
    pub claim: String,
    pub check: Check,
    pub max_age_secs: Option<u64>,
}

impl Validator {
    /// The validator `EmailVerification.init({mode: "REQUIRED"})` registers.
    pub fn email_verified() -> Self {
        Self {
            claim: EMAIL_VERIFICATION_CLAIM.into(),
            check: Check::Is(Value::Bool(true)),
            max_age_secs: None,
        }
    }

    /// The validator `MultiFactorAuth.init()` registers.
    pub fn mfa_completed() -> Self {
        Self {
            claim: MFA_CLAIM.into(),
            check: Check::MfaCompleted,
            max_age_secs: None,
        }
    }

    pub fn compile(spec: &ValidatorSpec) -> Result<Self, String> {
        if spec.claim.is_empty() {
            return Err("a claim validator needs a non-empty `claim`".into());
        }
        let mut checks = Vec::new();
        if let Some(v) = &spec.is {
            checks.push(if spec.claim == MFA_CLAIM {
                if v != &Value::Bool(true) {
                    return Err("`st-mfa` only supports `is = true` (MFA requirements completed)".into());
                }
                Check::MfaCompleted
            } else {
                Check::Is(primitive(v, "is")?)
            });
        }
        if let Some(v) = &spec.includes {
            checks.push(Check::Includes(primitive(v, "includes")?));
        }
        if let Some(v) = &spec.excludes {
            checks.push(Check::Excludes(primitive(v, "excludes")?));
        }
        if let Some(v) = &spec.includes_all {
            checks.push(Check::IncludesAll(primitives(v, "includes_all")?));
        }
        if let Some(v) = &spec.includes_any {
            checks.push(Check::IncludesAny(primitives(v, "includes_any")?));
        }
        if let Some(v) = &spec.excludes_all {
            checks.push(Check::ExcludesAll(primitives(v, "excludes_all")?));
        }
        if checks.len() != 1 {
            return Err(format!(
                "claim `{}` needs exactly one of is, includes, excludes, includes_all, includes_any, excludes_all",
                spec.claim
            ));
        }
        let check = checks.remove(0);
        if check == Check::MfaCompleted && spec.max_age_secs.is_some() {
            return Err("`st-mfa` takes no max_age_secs".into());
        }
        Ok(Self {
            claim: spec.claim.clone(),
            check,
            max_age_secs: spec.max_age_secs,
        })
    }

    /// The SDK's `shouldRefetch`: true when the SDK would ask the core for a fresh value first.
    pub fn should_refetch(&self, payload: &Map<String, Value>, now_ms: u64) -> bool {
        if !payload.contains_key(&self.claim) {
            return true;
        }
        if self.check == Check::MfaCompleted {
            // `payload[key] === undefined` only: a present `null` is not refetched.
            return false;
        }
        let value = claim_value(payload, &self.claim);
        if value.is_none() {
            return true;
        }
        let t = claim_time(payload, &self.claim);
        if let (Some(max), Some(t)) = (self.max_age_secs, t)
            && t < now_ms as f64 - max as f64 * 1000.0
        {
            return true;
        }
        if self.claim == EMAIL_VERIFICATION_CLAIM
            && self.check == Check::Is(Value::Bool(true))
            && value == Some(&Value::Bool(false))
            && let Some(t) = t
        {
            return t < now_ms as f64 - (EV_REFETCH_ON_FALSE_SECS * 1000) as f64;
        }
        false
    }

    /// Runs the check; `Ok(None)` when it passes.
    pub fn validate(&self, payload: &Map<String, Value>, now_ms: u64) -> Result<Option<ClaimError>, ClaimEvalError> {
        let fail = |reason: Option<Reason>| {
            Ok(Some(ClaimError {
                id: self.claim.clone(),
                reason,
            }))
        };
        if self.check == Check::MfaCompleted {
            let v = payload.get(&self.claim).and_then(|c| c.as_object()).and_then(|c| c.get("v"));
            return match v {
                Some(v) if js_truthy(v) => Ok(None),
                Some(Value::Bool(false)) => fail(Some(Reason::MfaNotSatisfied)),
                _ => fail(None),
            };
        }
        let expected_key = self.check.expected_key(false);
        let Some(actual) = claim_value(payload, &self.claim) else {
            return fail(Some(Reason::Missing {
                expected_key: self.check.expected_key(true),
                expected: self.check.expected(),
            }));
        };
        if let Some(max) = self.max_age_secs {
            // NaN when `t` is absent: the comparison is false, as in JavaScript.
            let age = claim_time(payload, &self.claim).map_or(f64::NAN, |t| (now_ms as f64 - t) / 1000.0);
            if age > max as f64 {
                return fail(Some(Reason::Expired {
                    age_secs: age,
                    max_age_secs: max,
                }));
            }
        }
        let ok = match &self.check {
            Check::Is(v) => js_strict_eq(actual, v),
            Check::Includes(v) => js_includes(actual, v)?,
            Check::Excludes(v) => !js_includes(actual, v)?,
            Check::IncludesAll(vs) => all_in(actual, vs, |found| found)?,
            Check::IncludesAny(vs) => any_in(actual, vs)?,
            Check::ExcludesAll(vs) => all_in(actual, vs, |found| !found)?,
            Check::MfaCompleted => unreachable_mfa(),
        };
        if ok {
            Ok(None)
        } else {
            fail(Some(Reason::WrongValue {
                expected_key,
                expected: self.check.expected(),
                actual: actual.clone(),
            }))
        }
    }
}

// Handled before the match; kept total without a panic path.
fn unreachable_mfa() -> bool {
    false
}

impl Check {
    /// The reason key naming the expectation (Node's, including its `includesAny` quirk).
    fn expected_key(&self, missing: bool) -> &'static str {
        match self {
            Check::Is(_) => "expectedValue",
            Check::Includes(_) | Check::IncludesAll(_) => "expectedToInclude",
            Check::Excludes(_) | Check::ExcludesAll(_) => "expectedToNotInclude",
            Check::IncludesAny(_) if missing => "expectedToNotInclude",
            Check::IncludesAny(_) => "expectedToIncludeAtLeastOneOf",
            Check::MfaCompleted => "expectedValue",
        }
    }

    fn expected(&self) -> Value {
        match self {
            Check::Is(v) | Check::Includes(v) | Check::Excludes(v) => v.clone(),
            Check::IncludesAll(vs) | Check::IncludesAny(vs) | Check::ExcludesAll(vs) => Value::Array(vs.clone()),
            Check::MfaCompleted => Value::Bool(true),
        }
    }
}

/// A claim evaluation the SDK would crash on (a TypeError in Node): answered as an internal error.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("claim value of unexpected type for `{0}`")]
pub struct ClaimEvalError(pub &'static str);

/// One entry of `claimValidationErrors`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClaimError {
    pub id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    Missing {
        expected_key: &'static str,
        expected: Value,
    },
    Expired {
        age_secs: f64,
        max_age_secs: u64,
    },
    WrongValue {
        expected_key: &'static str,
        expected: Value,
        actual: Value,
    },
    MfaNotSatisfied,
    /// Not an SDK validator: a route's tenant allow-list refused the session's tenant.
    TenantNotAllowed {
        tenant: String,
        allowed: Vec<String>,
    },
}

impl Serialize for Reason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self {
            Reason::Missing { expected_key, expected } => {
                m.serialize_entry("message", "value does not exist")?;
                m.serialize_entry(expected_key, expected)?;
            }
            Reason::Expired { age_secs, max_age_secs } => {
                m.serialize_entry("message", "expired")?;
                m.serialize_entry("ageInSeconds", &js_number(*age_secs))?;
                m.serialize_entry("maxAgeInSeconds", max_age_secs)?;
            }
            Reason::WrongValue {
                expected_key,
                expected,
                actual,
            } => {
                m.serialize_entry("message", "wrong value")?;
                m.serialize_entry(expected_key, expected)?;
                m.serialize_entry("actualValue", actual)?;
            }
            Reason::MfaNotSatisfied => {
                m.serialize_entry("message", "MFA requirement for auth is not satisfied")?;
            }
            Reason::TenantNotAllowed { tenant, allowed } => {
                m.serialize_entry("message", "tenant not allowed on this route")?;
                m.serialize_entry("expectedToIncludeAtLeastOneOf", allowed)?;
                m.serialize_entry("actualValue", tenant)?;
            }
        }
        m.end()
    }
}

/// The body of a 403, exactly as the Node SDK's handler writes it.
pub fn invalid_claim_body(errors: &[ClaimError]) -> String {
    #[derive(Serialize)]
    struct Body<'a> {
        message: &'static str,
        #[serde(rename = "claimValidationErrors")]
        errors: &'a [ClaimError],
    }
    serde_json::to_string(&Body {
        message: "invalid claim",
        errors,
    })
    .unwrap_or_else(|_| r#"{"message":"invalid claim","claimValidationErrors":[]}"#.into())
}

/// `payload[claim]?.v`, with `undefined` as `None` (a JSON `null` value is present).
pub fn claim_value<'p>(payload: &'p Map<String, Value>, claim: &str) -> Option<&'p Value> {
    payload.get(claim)?.as_object()?.get("v")
}

fn claim_time(payload: &Map<String, Value>, claim: &str) -> Option<f64> {
    payload.get(claim)?.as_object()?.get("t")?.as_f64()
}

fn primitive(v: &Value, key: &str) -> Result<Value, String> {
    match v {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Ok(v.clone()),
        _ => Err(format!("`{key}` must be a string, number or boolean")),
    }
}

fn primitives(vs: &[Value], key: &str) -> Result<Vec<Value>, String> {
    vs.iter().map(|v| primitive(v, key)).collect()
}

/// JavaScript `===` on JSON values: objects and arrays are never equal (they are references).
fn js_strict_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Null, Value::Null) => true,
        _ => false,
    }
}

fn js_truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// The members `new Set(value)` would hold: array items, or a string's characters.
fn members(actual: &Value) -> Result<Vec<Value>, ClaimEvalError> {
    match actual {
        Value::Array(items) => Ok(items.clone()),
        Value::String(s) => Ok(s.chars().map(|c| Value::String(c.to_string())).collect()),
        _ => Err(ClaimEvalError("array claim")),
    }
}

/// `actual.includes(v)`: array membership, or substring for a string value.
fn js_includes(actual: &Value, v: &Value) -> Result<bool, ClaimEvalError> {
    match actual {
        Value::Array(items) => Ok(items.iter().any(|i| js_strict_eq(i, v))),
        Value::String(s) => Ok(match v {
            Value::String(needle) => s.contains(needle.as_str()),
            other => s.contains(other.to_string().as_str()),
        }),
        _ => Err(ClaimEvalError("array claim")),
    }
}

fn all_in(actual: &Value, vs: &[Value], want: impl Fn(bool) -> bool) -> Result<bool, ClaimEvalError> {
    let set = members(actual)?;
    Ok(vs.iter().all(|v| want(set.iter().any(|m| js_strict_eq(m, v)))))
}

fn any_in(actual: &Value, vs: &[Value]) -> Result<bool, ClaimEvalError> {
    let set = members(actual)?;
    Ok(vs.iter().any(|v| set.iter().any(|m| js_strict_eq(m, v))))
}

/// A number as JavaScript would print it: integral values without a fraction.
fn js_number(f: f64) -> Value {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
        Value::from(f as i64)
    } else {
        serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payload(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn spec(v: Value) -> Validator {
        let spec: ValidatorSpec = serde_json::from_value(v).expect("spec");
        Validator::compile(&spec).expect("compile")
    }

    #[test]
    fn wrong_value_reason_has_node_field_order() {
        let p = payload(json!({"st-ev": {"v": false, "t": 1000}}));
        let err = Validator::email_verified().validate(&p, 2000).expect("eval").expect("fails");
        assert_eq!(
            serde_json::to_string(&err).expect("json"),
            r#"{"id":"st-ev","reason":{"message":"wrong value","expectedValue":true,"actualValue":false}}"#
        );
    }

    #[test]
    fn missing_value_omits_actual_value() {
        let err = spec(json!({"claim": "st-role", "includes": "admin"}))
            .validate(&payload(json!({})), 0)
            .expect("eval")
            .expect("fails");
        assert_eq!(
            serde_json::to_string(&err).expect("json"),
            r#"{"id":"st-role","reason":{"message":"value does not exist","expectedToInclude":"admin"}}"#
        );
    }

    #[test]
    fn includes_any_missing_uses_nodes_key() {
        let err = spec(json!({"claim": "st-perm", "includes_any": ["a", "b"]}))
            .validate(&payload(json!({})), 0)
            .expect("eval")
            .expect("fails");
        assert_eq!(
            serde_json::to_string(&err).expect("json"),
            r#"{"id":"st-perm","reason":{"message":"value does not exist","expectedToNotInclude":["a","b"]}}"#
        );
    }

    #[test]
    fn array_checks() {
        let p = payload(json!({"st-role": {"v": ["admin", "dev"], "t": 0}}));
        let ok = |v: Value| spec(v).validate(&p, 0).expect("eval").is_none();
        assert!(ok(json!({"claim": "st-role", "includes": "admin"})));
        assert!(!ok(json!({"claim": "st-role", "includes": "ops"})));
        assert!(ok(json!({"claim": "st-role", "excludes": "ops"})));
        assert!(!ok(json!({"claim": "st-role", "excludes": "dev"})));
        assert!(ok(json!({"claim": "st-role", "includes_all": ["admin", "dev"]})));
        assert!(!ok(json!({"claim": "st-role", "includes_all": ["admin", "ops"]})));
        assert!(ok(json!({"claim": "st-role", "includes_any": ["ops", "dev"]})));
        assert!(!ok(json!({"claim": "st-role", "includes_any": ["ops"]})));
        assert!(ok(json!({"claim": "st-role", "excludes_all": ["ops", "qa"]})));
        assert!(!ok(json!({"claim": "st-role", "excludes_all": ["ops", "dev"]})));
    }

    #[test]
    fn expired_reason_prints_age_like_javascript() {
        let p = payload(json!({"plan": {"v": "pro", "t": 1000}}));
        let err = spec(json!({"claim": "plan", "is": "pro", "max_age_secs": 5}))
            .validate(&p, 12_500)
            .expect("eval")
            .expect("fails");
        assert_eq!(
            serde_json::to_string(&err).expect("json"),
            r#"{"id":"plan","reason":{"message":"expired","ageInSeconds":11.5,"maxAgeInSeconds":5}}"#
        );
    }

    #[test]
    fn mfa_reason_only_when_v_is_false() {
        let v = Validator::mfa_completed();
        let f = v.validate(&payload(json!({"st-mfa": {"c": {}, "v": false}})), 0).expect("eval");
        assert_eq!(
            serde_json::to_string(&f).expect("json"),
            r#"{"id":"st-mfa","reason":{"message":"MFA requirement for auth is not satisfied"}}"#
        );
        assert!(
            v.validate(&payload(json!({"st-mfa": {"c": {}, "v": true}})), 0)
                .expect("eval")
                .is_none()
        );
    }

    #[test]
    fn numbers_compare_like_javascript() {
        let p = payload(json!({"level": {"v": 3.0, "t": 0}}));
        assert!(spec(json!({"claim": "level", "is": 3})).validate(&p, 0).expect("eval").is_none());
    }

    #[test]
    fn compile_rejects_two_checks() {
        let spec: ValidatorSpec = serde_json::from_value(json!({"claim": "x", "is": 1, "includes": 2})).expect("spec");
        assert!(Validator::compile(&spec).is_err());
    }

    #[test]
    fn ev_refetch_rule() {
        let v = Validator::email_verified();
        assert!(v.should_refetch(&payload(json!({})), 0));
        assert!(!v.should_refetch(&payload(json!({"st-ev": {"v": false, "t": 1_000}})), 5_000));
        assert!(v.should_refetch(&payload(json!({"st-ev": {"v": false, "t": 1_000}})), 12_000));
        assert!(!v.should_refetch(&payload(json!({"st-ev": {"v": true, "t": 1_000}})), 99_000));
    }
}
