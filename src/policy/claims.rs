//! Claim validators evaluated on the access-token payload as supertokens-node evaluates them:
//! `shouldRefetch` and `validate` of the email-verification, MFA, primitive and array claims,
//! with JavaScript's comparisons. What a failure says is data; the front doors write it in the
//! SDK's JSON.

use serde_json::{Map, Value};

pub use crate::settings::routes::{ClaimRule, EMAIL_VERIFICATION_CLAIM, MFA_CLAIM, PERMISSION_CLAIM, ROLE_CLAIM, ValueCheck, ValueRule};
use crate::settings::{EmailVerificationMode, SuperTokensSettings};

/// The SDK's `isVerified` refetches a `false` value once it is older than this.
pub const EV_REFETCH_ON_FALSE_SECS: u64 = 10;

/// The validators the SDK's recipes register for every route, in recipe-init order.
pub fn global_validators(st: &SuperTokensSettings) -> Vec<ClaimRule> {
    let mut v = Vec::new();
    if st.email_verification == EmailVerificationMode::Required {
        v.push(ClaimRule::email_verified());
    }
    if st.mfa {
        v.push(ClaimRule::MfaCompleted);
    }
    v
}

/// The SDK's `shouldRefetch`: true when the SDK would ask the core for a fresh value first.
pub fn should_refetch(rule: &ClaimRule, payload: &Map<String, Value>, now_ms: u64) -> bool {
    let Some(claim) = payload.get(rule.claim()) else {
        return true;
    };
    let ClaimRule::Value(rule) = rule else {
        // `payload[key] === undefined` only: a present `null` is not refetched.
        return false;
    };
    let Some(value) = claim.as_object().and_then(|c| c.get("v")) else {
        return true;
    };
    let t = claim_time(payload, &rule.claim);
    if let (Some(max), Some(t)) = (rule.max_age_secs, t)
        && t < now_ms as f64 - max as f64 * 1000.0
    {
        return true;
    }
    if rule.claim == EMAIL_VERIFICATION_CLAIM
        && rule.check == ValueCheck::Is(Value::Bool(true))
        && value == &Value::Bool(false)
        && let Some(t) = t
    {
        return t < now_ms as f64 - (EV_REFETCH_ON_FALSE_SECS * 1000) as f64;
    }
    false
}

/// Runs the validator; `Ok(None)` when it passes.
pub fn validate(rule: &ClaimRule, payload: &Map<String, Value>, now_ms: u64) -> Result<Option<ClaimError>, ClaimEvalError> {
    let fail = |reason: Option<Reason>| {
        Ok(Some(ClaimError {
            id: rule.claim().to_owned(),
            reason,
        }))
    };
    let rule = match rule {
        ClaimRule::MfaCompleted => {
            let v = payload.get(MFA_CLAIM).and_then(|c| c.as_object()).and_then(|c| c.get("v"));
            return match v {
                Some(v) if js_truthy(v) => Ok(None),
                Some(Value::Bool(false)) => fail(Some(Reason::MfaNotSatisfied)),
                _ => fail(None),
            };
        }
        ClaimRule::Value(rule) => rule,
    };
    let Some(actual) = claim_value(payload, &rule.claim) else {
        return fail(Some(Reason::Missing { check: rule.check.clone() }));
    };
    if let Some(max) = rule.max_age_secs {
        // NaN when `t` is absent: the comparison is false, as in JavaScript.
        let age = claim_time(payload, &rule.claim).map_or(f64::NAN, |t| (now_ms as f64 - t) / 1000.0);
        if age > max as f64 {
            return fail(Some(Reason::Expired {
                age_secs: age,
                max_age_secs: max,
            }));
        }
    }
    let ok = match &rule.check {
        ValueCheck::Is(v) => js_strict_eq(actual, v),
        ValueCheck::Includes(v) => js_includes(actual, v)?,
        ValueCheck::Excludes(v) => !js_includes(actual, v)?,
        ValueCheck::IncludesAll(vs) => all_in(actual, vs, |found| found)?,
        ValueCheck::IncludesAny(vs) => any_in(actual, vs)?,
        ValueCheck::ExcludesAll(vs) => all_in(actual, vs, |found| !found)?,
    };
    if ok {
        Ok(None)
    } else {
        fail(Some(Reason::WrongValue {
            check: rule.check.clone(),
            actual: actual.clone(),
        }))
    }
}

/// A claim evaluation the SDK would crash on (a TypeError in Node): answered as an internal error.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("claim value of unexpected type for `{0}`")]
pub struct ClaimEvalError(pub &'static str);

/// One entry of the SDK's `claimValidationErrors`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimError {
    pub id: String,
    pub reason: Option<Reason>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// The claim has no value; `check` is what was expected of it.
    Missing {
        check: ValueCheck,
    },
    Expired {
        age_secs: f64,
        max_age_secs: u64,
    },
    WrongValue {
        check: ValueCheck,
        actual: Value,
    },
    MfaNotSatisfied,
    /// Not an SDK validator: a route's tenant allow-list refused the session's tenant.
    TenantNotAllowed {
        tenant: String,
        allowed: Vec<String>,
    },
}

/// `payload[claim]?.v`, with `undefined` as `None` (a JSON `null` value is present).
pub fn claim_value<'p>(payload: &'p Map<String, Value>, claim: &str) -> Option<&'p Value> {
    payload.get(claim)?.as_object()?.get("v")
}

fn claim_time(payload: &Map<String, Value>, claim: &str) -> Option<f64> {
    payload.get(claim)?.as_object()?.get("t")?.as_f64()
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn payload(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn rule(v: Value) -> ClaimRule {
        serde_json::from_value(v).expect("rule")
    }

    fn reason(rule: &ClaimRule, p: Value, now_ms: u64) -> Option<Reason> {
        validate(rule, &payload(p), now_ms).expect("eval").expect("fails").reason
    }

    #[test]
    fn failures_say_what_was_expected() {
        let ev = ClaimRule::email_verified();
        assert_eq!(
            reason(&ev, json!({"st-ev": {"v": false, "t": 1000}}), 2000),
            Some(Reason::WrongValue {
                check: ValueCheck::Is(json!(true)),
                actual: json!(false)
            })
        );
        let role = rule(json!({"claim": "st-role", "includes": "admin"}));
        assert_eq!(
            reason(&role, json!({}), 0),
            Some(Reason::Missing {
                check: ValueCheck::Includes(json!("admin"))
            })
        );
        let plan = rule(json!({"claim": "plan", "is": "pro", "max_age_secs": 5}));
        assert_eq!(
            reason(&plan, json!({"plan": {"v": "pro", "t": 1000}}), 12_500),
            Some(Reason::Expired {
                age_secs: 11.5,
                max_age_secs: 5
            })
        );
    }

    #[test]
    fn array_checks() {
        let p = payload(json!({"st-role": {"v": ["admin", "dev"], "t": 0}}));
        let ok = |v: Value| validate(&rule(v), &p, 0).expect("eval").is_none();
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
        // A string value is searched as a string, as `includes` does in JavaScript.
        let s = payload(json!({"plan": {"v": "enterprise"}}));
        assert!(
            validate(&rule(json!({"claim": "plan", "includes": "erp"})), &s, 0)
                .expect("eval")
                .is_none()
        );
        let n = payload(json!({"plan": {"v": 3}}));
        assert_eq!(
            validate(&rule(json!({"claim": "plan", "includes": "3"})), &n, 0),
            Err(ClaimEvalError("array claim"))
        );
    }

    #[test]
    fn mfa_reason_only_when_v_is_false() {
        let mfa = ClaimRule::MfaCompleted;
        assert_eq!(
            reason(&mfa, json!({"st-mfa": {"c": {}, "v": false}}), 0),
            Some(Reason::MfaNotSatisfied)
        );
        assert_eq!(reason(&mfa, json!({"st-mfa": {"c": {}}}), 0), None);
        assert!(
            validate(&mfa, &payload(json!({"st-mfa": {"c": {}, "v": true}})), 0)
                .expect("eval")
                .is_none()
        );
        assert!(should_refetch(&mfa, &payload(json!({})), 0));
        assert!(!should_refetch(&mfa, &payload(json!({"st-mfa": null})), 0));
    }

    #[test]
    fn numbers_compare_like_javascript() {
        let p = payload(json!({"level": {"v": 3.0, "t": 0}}));
        assert!(validate(&rule(json!({"claim": "level", "is": 3})), &p, 0).expect("eval").is_none());
    }

    #[test]
    fn ev_refetch_rule() {
        let v = ClaimRule::email_verified();
        assert!(should_refetch(&v, &payload(json!({})), 0));
        assert!(!should_refetch(&v, &payload(json!({"st-ev": {"v": false, "t": 1_000}})), 5_000));
        assert!(should_refetch(&v, &payload(json!({"st-ev": {"v": false, "t": 1_000}})), 12_000));
        assert!(!should_refetch(&v, &payload(json!({"st-ev": {"v": true, "t": 1_000}})), 99_000));
        let aged = rule(json!({"claim": "st-role", "includes": "a", "max_age_secs": 5}));
        assert!(should_refetch(&aged, &payload(json!({"st-role": {"v": ["a"], "t": 1_000}})), 7_000));
        assert!(!should_refetch(
            &aged,
            &payload(json!({"st-role": {"v": ["a"], "t": 1_000}})),
            5_000
        ));
    }
}
