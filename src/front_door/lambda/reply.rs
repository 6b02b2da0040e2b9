//! Writing the answer: the IAM policy, HTTP API simple response or AppSync response for a
//! decision, in the exact shape of the SuperTokens docs' Node handler.

use super::Refusal;
use super::event::Reply;
use crate::decision::Decision;
use crate::front_door::sdk_json::{invalid_claim_body, message_body};
use crate::session::SessionInfo;
use crate::settings::LambdaSettings;

/// The authorizer context, written straight from the decision. Values are strings only, as
/// API Gateway requires; absent ones are left out.
#[derive(Default)]
struct Context<'a> {
    body: Option<String>,
    set_cookie: Option<String>,
    user_id: Option<&'a str>,
    tenant_id: Option<&'a str>,
    session_handle: Option<&'a str>,
    /// The signed identity assertion (`[assertion]`), for integrations to pass to the backend.
    assertion: Option<&'a str>,
}

impl Context<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        let fields = [
            ("body", self.body.as_deref()),
            ("setCookie", self.set_cookie.as_deref()),
            ("userId", self.user_id),
            ("tenantId", self.tenant_id),
            ("sessionHandle", self.session_handle),
            ("assertion", self.assertion),
        ];
        out.push(b'{');
        for (i, (key, value)) in fields.iter().filter_map(|(k, v)| Some((k, (*v)?))).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_str(out, key);
            out.push(b':');
            push_str(out, value);
        }
        out.push(b'}');
    }
}

/// Appends `s` as a JSON string. Identifiers and ARNs almost never hold a byte JSON escapes
/// (control characters, `"` and `\`), so they are copied as they are; any other string goes
/// through serde_json's escaping.
fn push_str(out: &mut Vec<u8>, s: &str) {
    let plain = s.bytes().fold(true, |ok, b| ok & (b >= 0x20) & (b != b'"') & (b != b'\\'));
    if plain {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        let start = out.len();
        if serde_json::to_writer(&mut *out, s).is_err() {
            // Writing into a Vec cannot fail; were it to, an empty string keeps the JSON whole.
            out.truncate(start);
            out.extend_from_slice(b"\"\"");
        }
    }
}

/// The body `POST /authorize` sends with its 401, as API Gateway does.
pub const UNAUTHORIZED_BODY: &str = r#"{"message":"Unauthorized"}"#;
pub const INTERNAL_BODY: &str = r#"{"message":"Internal server error"}"#;

/// Maps a decision onto the contract of the event it answers.
pub fn render(decision: &Decision, reply: &Reply, settings: &LambdaSettings, now_ms: u64) -> Result<String, Refusal> {
    let (allow, principal, mut context) = match decision {
        Decision::Allow {
            session,
            effects,
            assertion,
        } => (
            true,
            session.user_id(),
            allow_context(session, &effects.set_cookies, assertion.as_deref()),
        ),
        Decision::Anonymous => (
            true,
            "",
            Context {
                set_cookie: Some(String::new()),
                ..Default::default()
            },
        ),
        Decision::InvalidClaims { errors } => (
            false,
            "",
            Context {
                body: Some(invalid_claim_body(errors)),
                set_cookie: Some(String::new()),
                ..Default::default()
            },
        ),
        // A Lambda authorizer cannot answer 400: a request it cannot judge is denied (API
        // Gateway's 403), with the reason where `$context.authorizer.body` finds it.
        Decision::BadRequest { message, .. } => (
            false,
            "",
            Context {
                body: Some(message_body(message)),
                set_cookie: Some(String::new()),
                ..Default::default()
            },
        ),
        Decision::TryRefresh { .. } | Decision::Unauthorised { .. } => return Err(Refusal::Unauthorized),
        Decision::Error { .. } => return Err(Refusal::Internal),
    };
    // Sized once for a typical answer (a policy is about 300 bytes before cookies). The fixed
    // parts are written as they are: the fields and their order are the Node handler's.
    let mut out = Vec::with_capacity(512);
    let verdict: &[u8] = if allow { b"true" } else { b"false" };
    match reply {
        Reply::Policy { resource } => {
            out.extend_from_slice(b"{\"principalId\":");
            push_str(&mut out, principal);
            out.extend_from_slice(br#","policyDocument":{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"#);
            out.extend_from_slice(if allow { b"\"Allow\"" } else { b"\"Deny\"" });
            out.extend_from_slice(br#","Resource":"#);
            push_str(&mut out, resource);
            out.extend_from_slice(br#"}]},"context":"#);
            context.write(&mut out);
        }
        Reply::Simple => {
            out.extend_from_slice(br#"{"isAuthorized":"#);
            out.extend_from_slice(verdict);
            out.extend_from_slice(br#","context":"#);
            context.write(&mut out);
        }
        Reply::AppSync => {
            let ttl = match decision {
                Decision::Allow { session, .. } => settings.appsync_ttl_secs.min(session.expiry_ms.saturating_sub(now_ms) / 1000),
                _ => 0,
            };
            context.set_cookie = None;
            out.extend_from_slice(br#"{"isAuthorized":"#);
            out.extend_from_slice(verdict);
            out.extend_from_slice(br#","resolverContext":"#);
            context.write(&mut out);
            out.extend_from_slice(br#","ttlOverride":"#);
            out.extend_from_slice(ttl.to_string().as_bytes());
        }
    }
    out.push(b'}');
    String::from_utf8(out).map_err(|_| Refusal::Internal)
}

fn allow_context<'a>(session: &'a SessionInfo, set_cookies: &[String], assertion: Option<&'a str>) -> Context<'a> {
    Context {
        body: None,
        set_cookie: Some(set_cookies.join(", ")),
        user_id: Some(session.user_id()),
        tenant_id: session.tenant_id(),
        session_handle: Some(session.session_handle()),
        assertion,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> LambdaSettings {
        LambdaSettings::default()
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        for s in [
            "",
            "plain-id_1",
            "caf\u{e9} \u{1f600}",
            "q\"uote",
            "back\\slash",
            "nl\nand\ttab",
            "\u{0}\u{1f}\u{7f}",
            "</script>",
        ] {
            let mut out = Vec::new();
            push_str(&mut out, s);
            assert_eq!(String::from_utf8(out).ok(), serde_json::to_string(s).ok(), "{s:?}");
        }
    }

    #[test]
    fn answers_have_the_node_handlers_shape() {
        let arn = "arn:aws:execute-api:r:a:api/prod/GET/x";
        let policy = Reply::Policy { resource: arn.into() };
        let text = render(&Decision::Anonymous, &policy, &settings(), 0).expect("rendered");
        assert_eq!(
            text,
            r#"{"principalId":"","policyDocument":{"Version":"2012-10-17","Statement":[{"Action":"execute-api:Invoke","Effect":"Allow","Resource":"arn:aws:execute-api:r:a:api/prod/GET/x"}]},"context":{"setCookie":""}}"#
        );
        let denied = Decision::InvalidClaims { errors: Vec::new() };
        let value = |reply: &Reply| -> serde_json::Value {
            serde_json::from_str(&render(&denied, reply, &settings(), 0).expect("rendered")).expect("valid JSON")
        };
        let body = r#"{"message":"invalid claim","claimValidationErrors":[]}"#;
        assert_eq!(
            value(&policy),
            serde_json::json!({"principalId": "", "policyDocument": {"Version": "2012-10-17", "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": arn}]},
                "context": {"body": body, "setCookie": ""}})
        );
        assert_eq!(
            value(&Reply::Simple),
            serde_json::json!({"isAuthorized": false, "context": {"body": body, "setCookie": ""}})
        );
        assert_eq!(
            value(&Reply::AppSync),
            serde_json::json!({"isAuthorized": false, "resolverContext": {"body": body}, "ttlOverride": 0})
        );
        let mut out = Vec::new();
        Context {
            user_id: Some("u\"1"),
            tenant_id: Some("public"),
            session_handle: Some("h"),
            ..Default::default()
        }
        .write(&mut out);
        assert_eq!(out, br#"{"userId":"u\"1","tenantId":"public","sessionHandle":"h"}"#);
    }

    #[test]
    fn refusals_carry_the_exact_messages() {
        let r = render(&Decision::TryRefresh { reason: String::new() }, &Reply::Simple, &settings(), 0);
        assert_eq!(r.err().map(|e| e.to_string()).as_deref(), Some("Unauthorized"));
        let r = render(&Decision::Error { reason: String::new() }, &Reply::AppSync, &settings(), 0);
        assert!(matches!(r, Err(Refusal::Internal)));
    }
}
