//! The identity headers sent upstream with an allowed request: the user id, and the tenant,
//! session handle and claims when configured. Every name is always either set from the session
//! or removed, so a client cannot forge one.

use std::borrow::Cow;

use http::HeaderName;
use serde_json::Value;

use crate::decision::Decision;
use crate::session::SessionInfo;
use crate::settings::Settings;

/// The identity headers of one allowed request.
pub struct Upstream<'s> {
    pub set: Vec<(&'s HeaderName, Cow<'s, str>)>,
    pub remove: Vec<&'s str>,
}

/// Identity header names, resolved once from `[headers]`.
#[derive(Debug, Clone)]
pub struct IdentityHeaders {
    pub user_id: HeaderName,
    pub tenant_id: Option<HeaderName>,
    pub session_handle: Option<HeaderName>,
    pub claims: Vec<(String, HeaderName)>,
    /// The website's origin (`scheme://host[:port]`), for CORS on denials.
    pub website_origin: String,
}

impl IdentityHeaders {
    pub fn from_settings(s: &Settings) -> Self {
        let h = &s.headers;
        Self {
            user_id: h.user_id.clone(),
            tenant_id: h.tenant_id.clone(),
            session_handle: h.session_handle.clone(),
            claims: h.claims.iter().map(|c| (c.claim.clone(), c.header.clone())).collect(),
            website_origin: s.supertokens.website_domain.origin().to_owned(),
        }
    }

    /// Every identity header name we manage (set on a session, removed otherwise).
    fn all_names(&self) -> Vec<&str> {
        let mut names = vec![self.user_id.as_str()];
        names.extend(self.tenant_id.as_ref().map(HeaderName::as_str));
        names.extend(self.session_handle.as_ref().map(HeaderName::as_str));
        names.extend(self.claims.iter().map(|(_, h)| h.as_str()));
        names
    }

    /// The identity headers of a session: (name, value) for each one that has a value.
    fn values<'s>(&'s self, session: &'s SessionInfo) -> Vec<(&'s HeaderName, Cow<'s, str>)> {
        let mut out = vec![(&self.user_id, Cow::Borrowed(session.user_id()))];
        if let (Some(name), Some(t)) = (&self.tenant_id, session.tenant_id()) {
            out.push((name, Cow::Borrowed(t)));
        }
        if let Some(name) = &self.session_handle {
            out.push((name, Cow::Borrowed(session.session_handle())));
        }
        if !self.claims.is_empty() {
            let claims = session.claims();
            for (claim, header) in &self.claims {
                if let Some(v) = claim_header_value(claims.get(claim)) {
                    out.push((header, Cow::Owned(v)));
                }
            }
        }
        out
    }

    /// What an allowed request carries upstream: the identity headers of its session (none
    /// for an anonymous one), and every other identity header name, which a client may have
    /// forged and the proxy must remove.
    pub fn upstream<'s>(&'s self, decision: &'s Decision) -> Upstream<'s> {
        let set = match decision {
            Decision::Allow { session, .. } => self.values(session),
            _ => Vec::new(),
        };
        let remove = self.unset(&set);
        Upstream { set, remove }
    }

    /// Identity header names a session leaves unset (to be removed upstream).
    fn unset<'a>(&'a self, set: &[(&HeaderName, Cow<'_, str>)]) -> Vec<&'a str> {
        self.all_names()
            .into_iter()
            .filter(|n| !set.iter().any(|(s, _)| s.as_str() == *n))
            .collect()
    }
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
