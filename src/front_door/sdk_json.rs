//! The JSON bodies supertokens-node's error handler writes, byte for byte: the 401s, the 403 of
//! failed claim validators (`claimValidationErrors`, in Node's field order and with its key
//! quirks), and the 500.

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::policy::claims::{ClaimError, Reason, ValueCheck};

pub const TRY_REFRESH_BODY: &str = r#"{"message":"try refresh token"}"#;
pub const UNAUTHORISED_BODY: &str = r#"{"message":"unauthorised"}"#;
pub const INTERNAL_ERROR_BODY: &str = r#"{"message":"internal error"}"#;

/// `{"message": ...}`.
pub fn message_body(message: &str) -> String {
    serde_json::json!({ "message": message }).to_string()
}

/// The body of a 403, exactly as the Node SDK's handler writes it.
pub fn invalid_claim_body(errors: &[ClaimError]) -> String {
    #[derive(Serialize)]
    struct Body<'a> {
        message: &'static str,
        #[serde(rename = "claimValidationErrors")]
        errors: Errors<'a>,
    }
    serde_json::to_string(&Body {
        message: "invalid claim",
        errors: Errors(errors),
    })
    .unwrap_or_else(|_| r#"{"message":"invalid claim","claimValidationErrors":[]}"#.into())
}

struct Errors<'a>(&'a [ClaimError]);

impl Serialize for Errors<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for e in self.0 {
            seq.serialize_element(&Entry(e))?;
        }
        seq.end()
    }
}

struct Entry<'a>(&'a ClaimError);

impl Serialize for Entry<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &self.0.id)?;
        if let Some(reason) = &self.0.reason {
            m.serialize_entry("reason", &ReasonJson(reason))?;
        }
        m.end()
    }
}

struct ReasonJson<'a>(&'a Reason);

impl Serialize for ReasonJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self.0 {
            Reason::Missing { check } => {
                m.serialize_entry("message", "value does not exist")?;
                m.serialize_entry(expected_key(check, true), &expected(check))?;
            }
            Reason::Expired { age_secs, max_age_secs } => {
                m.serialize_entry("message", "expired")?;
                m.serialize_entry("ageInSeconds", &js_number(*age_secs))?;
                m.serialize_entry("maxAgeInSeconds", max_age_secs)?;
            }
            Reason::WrongValue { check, actual } => {
                m.serialize_entry("message", "wrong value")?;
                m.serialize_entry(expected_key(check, false), &expected(check))?;
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

/// The reason key naming the expectation (Node's, including its `includesAny` quirk).
fn expected_key(check: &ValueCheck, missing: bool) -> &'static str {
    match check {
        ValueCheck::Is(_) => "expectedValue",
        ValueCheck::Includes(_) | ValueCheck::IncludesAll(_) => "expectedToInclude",
        ValueCheck::Excludes(_) | ValueCheck::ExcludesAll(_) => "expectedToNotInclude",
        ValueCheck::IncludesAny(_) if missing => "expectedToNotInclude",
        ValueCheck::IncludesAny(_) => "expectedToIncludeAtLeastOneOf",
    }
}

fn expected(check: &ValueCheck) -> Value {
    match check {
        ValueCheck::Is(v) | ValueCheck::Includes(v) | ValueCheck::Excludes(v) => v.clone(),
        ValueCheck::IncludesAll(vs) | ValueCheck::IncludesAny(vs) | ValueCheck::ExcludesAll(vs) => Value::Array(vs.clone()),
    }
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

    fn body(id: &str, reason: Option<Reason>) -> String {
        invalid_claim_body(&[ClaimError { id: id.into(), reason }])
    }

    fn entry(json: &str) -> String {
        format!(r#"{{"message":"invalid claim","claimValidationErrors":[{json}]}}"#)
    }

    #[test]
    fn reasons_have_nodes_field_order() {
        let wrong = Reason::WrongValue {
            check: ValueCheck::Is(json!(true)),
            actual: json!(false),
        };
        assert_eq!(
            body("st-ev", Some(wrong)),
            entry(r#"{"id":"st-ev","reason":{"message":"wrong value","expectedValue":true,"actualValue":false}}"#)
        );
        let missing = Reason::Missing {
            check: ValueCheck::Includes(json!("admin")),
        };
        assert_eq!(
            body("st-role", Some(missing)),
            entry(r#"{"id":"st-role","reason":{"message":"value does not exist","expectedToInclude":"admin"}}"#)
        );
        let expired = Reason::Expired {
            age_secs: 11.5,
            max_age_secs: 5,
        };
        assert_eq!(
            body("plan", Some(expired)),
            entry(r#"{"id":"plan","reason":{"message":"expired","ageInSeconds":11.5,"maxAgeInSeconds":5}}"#)
        );
        assert_eq!(
            body("st-mfa", Some(Reason::MfaNotSatisfied)),
            entry(r#"{"id":"st-mfa","reason":{"message":"MFA requirement for auth is not satisfied"}}"#)
        );
        assert_eq!(body("st-mfa", None), entry(r#"{"id":"st-mfa"}"#));
    }

    #[test]
    fn includes_any_keys_follow_node() {
        let check = ValueCheck::IncludesAny(vec![json!("a"), json!("b")]);
        assert_eq!(
            body("st-perm", Some(Reason::Missing { check: check.clone() })),
            entry(r#"{"id":"st-perm","reason":{"message":"value does not exist","expectedToNotInclude":["a","b"]}}"#)
        );
        assert_eq!(
            body("st-perm", Some(Reason::WrongValue { check, actual: json!([]) })),
            entry(r#"{"id":"st-perm","reason":{"message":"wrong value","expectedToIncludeAtLeastOneOf":["a","b"],"actualValue":[]}}"#)
        );
    }

    #[test]
    fn ages_print_like_javascript_numbers() {
        assert_eq!(js_number(12.0), json!(12));
        assert_eq!(js_number(0.25), json!(0.25));
        assert_eq!(js_number(f64::NAN), Value::Null);
    }
}
