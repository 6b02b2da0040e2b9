//! What goes back to the client with a decision: the new access token (as the `sAccessToken`
//! cookie or the `st-access-token` header), `front-token`, and cleared tokens, byte for byte as
//! supertokens-node writes them.

use std::time::{Duration, UNIX_EPOCH};

use base64::Engine;
use serde::Serialize;
use serde_json::{Map, Value};

pub use crate::request::TransferMethod;
use crate::session::NewAccessToken;
use crate::settings::{SameSite, SuperTokensSettings};

/// Cookie lifetime the SDK gives the access-token cookie (the JWT's own `exp` still rules).
const ONE_YEAR_MS: u64 = 31_536_000_000;
const EPOCH: &str = "Thu, 01 Jan 1970 00:00:00 GMT";

/// Cookie attributes shared by every cookie we set.
#[derive(Debug, Clone)]
pub struct CookieAttributes {
    pub domain: Option<String>,
    pub secure: bool,
    pub same_site: SameSite,
    /// `{api_base_path}/session/refresh`.
    pub refresh_path: String,
}

impl CookieAttributes {
    pub fn from_settings(st: &SuperTokensSettings) -> Self {
        Self {
            domain: st.cookie_domain.as_ref().map(|d| d.as_str().to_owned()),
            secure: st.cookie_secure(),
            same_site: st.same_site(),
            refresh_path: st.refresh_path(),
        }
    }
}

/// Response headers and cookies a decision carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenEffects {
    pub set_cookies: Vec<String>,
    /// Non-cookie headers in the order the SDK sets them (`Access-Control-Expose-Headers` is
    /// given once, its names joined with `, `).
    pub headers: Vec<(&'static str, String)>,
}

impl TokenEffects {
    pub fn is_empty(&self) -> bool {
        self.set_cookies.is_empty() && self.headers.is_empty()
    }

    fn expose(&mut self, name: &str) {
        if let Some((_, v)) = self.headers.iter_mut().find(|(k, _)| *k == "access-control-expose-headers") {
            v.push_str(", ");
            v.push_str(name);
        } else {
            self.headers.push(("access-control-expose-headers", name.to_owned()));
        }
    }
}

/// `front-token`: padded base64 of `{"uid","ate","up"}`.
pub fn front_token(user_id: &str, expiry_ms: u64, payload: &Map<String, Value>) -> String {
    #[derive(Serialize)]
    struct Front<'a> {
        uid: &'a str,
        ate: u64,
        up: &'a Map<String, Value>,
    }
    let json = serde_json::to_vec(&Front {
        uid: user_id,
        ate: expiry_ms,
        up: payload,
    })
    .unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(json)
}

/// Node's cookie serialisation: `name=value; Domain; Path; Expires; HttpOnly; Secure; SameSite`.
fn cookie(name: &str, value: &str, path: &str, expires: &str, attrs: &CookieAttributes) -> String {
    let mut c = format!("{name}={value}");
    if let Some(d) = &attrs.domain {
        c.push_str("; Domain=");
        c.push_str(d);
    }
    c.push_str("; Path=");
    c.push_str(path);
    c.push_str("; Expires=");
    c.push_str(expires);
    c.push_str("; HttpOnly");
    if attrs.secure {
        c.push_str("; Secure");
    }
    c.push_str("; SameSite=");
    c.push_str(attrs.same_site.as_cookie_attr());
    c
}

fn http_date(ms: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(ms))
}

/// What getSession attaches when the core minted a new token.
pub fn new_token_effects(
    new: &NewAccessToken,
    transfer: TransferMethod,
    request_anti_csrf: Option<&str>,
    attrs: &CookieAttributes,
    now_ms: u64,
) -> TokenEffects {
    let mut fx = TokenEffects::default();
    fx.headers
        .push(("front-token", front_token(&new.user_id, new.expiry_ms, &new.payload)));
    fx.expose("front-token");
    match transfer {
        TransferMethod::Cookie => fx.set_cookies.push(cookie(
            "sAccessToken",
            &new.token,
            "/",
            &http_date(now_ms.saturating_add(ONE_YEAR_MS)),
            attrs,
        )),
        TransferMethod::Header => {
            fx.headers.push(("st-access-token", new.token.clone()));
            fx.expose("st-access-token");
        }
    }
    if let Some(anti_csrf) = request_anti_csrf {
        fx.headers.push(("anti-csrf", anti_csrf.to_owned()));
        fx.expose("anti-csrf");
    }
    fx
}

/// What the SDK's error handler sends for UNAUTHORISED with `clearTokens`: both transports cleared.
pub fn clear_token_effects(attrs: &CookieAttributes) -> TokenEffects {
    let mut fx = TokenEffects::default();
    fx.set_cookies.push(cookie("sAccessToken", "", "/", EPOCH, attrs));
    fx.set_cookies.push(cookie("sRefreshToken", "", &attrs.refresh_path, EPOCH, attrs));
    fx.headers.push(("st-access-token", String::new()));
    fx.headers.push(("st-refresh-token", String::new()));
    fx.headers.push(("front-token", "remove".to_owned()));
    fx.expose("front-token");
    fx.expose("st-access-token");
    fx.expose("st-refresh-token");
    fx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(secure: bool) -> CookieAttributes {
        CookieAttributes {
            domain: None,
            secure,
            same_site: SameSite::Lax,
            refresh_path: "/auth/session/refresh".into(),
        }
    }

    #[test]
    fn access_cookie_matches_node() {
        let new = NewAccessToken {
            token: "a.b.c".into(),
            expiry_ms: 5,
            user_id: "u".into(),
            payload: Map::new(),
        };
        let fx = new_token_effects(&new, TransferMethod::Cookie, None, &attrs(false), 0);
        assert_eq!(
            fx.set_cookies,
            vec!["sAccessToken=a.b.c; Path=/; Expires=Fri, 01 Jan 1971 00:00:00 GMT; HttpOnly; SameSite=Lax"]
        );
        assert_eq!(fx.headers[0].0, "front-token");
        assert_eq!(fx.headers[1], ("access-control-expose-headers", "front-token".to_owned()));
    }

    #[test]
    fn clearing_matches_node() {
        let fx = clear_token_effects(&attrs(true));
        assert_eq!(
            fx.set_cookies,
            vec![
                "sAccessToken=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax",
                "sRefreshToken=; Path=/auth/session/refresh; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure; SameSite=Lax",
            ]
        );
    }

    #[test]
    fn front_token_decodes_to_uid_ate_up() {
        let mut p = Map::new();
        p.insert("sub".into(), Value::String("u".into()));
        let ft = front_token("u", 7, &p);
        let json = base64::engine::general_purpose::STANDARD.decode(ft).expect("b64");
        assert_eq!(json, br#"{"uid":"u","ate":7,"up":{"sub":"u"}}"#);
    }
}
