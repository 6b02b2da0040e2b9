//! The identity headers sent upstream with an allowed request: the user id, and the tenant,
//! session handle and claims when configured. Every name is always either set from the session
//! or removed, so a client cannot forge one.

use std::borrow::Cow;

use http::HeaderName;
use serde_json::Value;

use crate::decision::Decision;
use crate::session::SessionInfo;
use crate::settings::HeaderSettings;

/// The identity headers of one allowed request.
pub struct Upstream<'s> {
    pub set: Vec<(&'s HeaderName, Cow<'s, str>)>,
    pub remove: Vec<&'s str>,
}

/// What an allowed request carries upstream: the identity headers of its session (none for an
/// anonymous one), and every other identity header name, which a client may have forged and
/// the proxy must remove.
/// The identity assertion's header (`[assertion]`) is one of them when assertions are on.
pub fn upstream<'s>(headers: &'s HeaderSettings, assertion: Option<&'s HeaderName>, decision: &'s Decision) -> Upstream<'s> {
    let mut set = match decision {
        Decision::Allow { session, .. } => values(headers, session),
        _ => Vec::new(),
    };
    if let (Some(name), Decision::Allow { assertion: Some(jwt), .. }) = (assertion, decision) {
        set.push((name, Cow::Borrowed(&**jwt)));
    }
    let remove = all_names(headers)
        .chain(assertion.map(HeaderName::as_str))
        .filter(|n| !set.iter().any(|(s, _)| s.as_str() == *n))
        .collect();
    Upstream { set, remove }
}

/// Every identity header name we manage (set on a session, removed otherwise).
fn all_names(h: &HeaderSettings) -> impl Iterator<Item = &str> {
    h.names().map(HeaderName::as_str)
}

/// The identity headers of a session: (name, value) for each one that has a value.
fn values<'s>(h: &'s HeaderSettings, session: &'s SessionInfo) -> Vec<(&'s HeaderName, Cow<'s, str>)> {
    let mut out = vec![(&h.user_id, Cow::Borrowed(session.user_id()))];
    if let (Some(name), Some(t)) = (&h.tenant_id, session.tenant_id()) {
        out.push((name, Cow::Borrowed(t)));
    }
    if let Some(name) = &h.session_handle {
        out.push((name, Cow::Borrowed(session.session_handle())));
    }
    if !h.claims.is_empty() {
        let claims = session.claims();
        for c in &h.claims {
            if let Some(v) = claim_header_value(claims.get(&c.claim)) {
                out.push((&c.header, Cow::Owned(v)));
            }
        }
    }
    out
}

/// A claim as a header value: `{v: ...}` claims by their value, arrays as comma lists.
fn claim_header_value(claim: Option<&Value>) -> Option<String> {
    let value = match claim? {
        Value::Object(o) if o.contains_key("v") => o.get("v")?,
        other => other,
    };
    let text = match value {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    };
    // A header value cannot carry control characters; drop the mapping rather than fail.
    if text.chars().any(|c| c.is_control()) { None } else { Some(text) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn claim_values_become_header_values() {
        assert_eq!(claim_header_value(Some(&json!({"v": ["a", "b"], "t": 1}))), Some("a,b".into()));
        assert_eq!(claim_header_value(Some(&json!("plain"))), Some("plain".into()));
        assert_eq!(claim_header_value(Some(&json!({"v": 3}))), Some("3".into()));
        assert_eq!(claim_header_value(Some(&json!({"v": "a\nb"}))), None);
        assert_eq!(claim_header_value(None), None);
    }
}
