//! Picks the access token from a request the way the Node SDK does: `Authorization: Bearer`
//! beats the `sAccessToken` cookie, candidates that do not parse count as absent, and the legacy
//! `sIdRefreshToken` cookie or duplicate `sAccessToken` cookies ask the client to refresh.

pub mod anti_csrf;
pub mod token;

use std::borrow::Cow;

pub const ACCESS_TOKEN_COOKIE: &str = "sAccessToken";
pub const LEGACY_ID_REFRESH_COOKIE: &str = "sIdRefreshToken";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("using legacy session, please call the refresh API")]
    LegacySession,
    #[error("Multiple access tokens present in the request cookies.")]
    DuplicateCookies,
}

/// The raw tokens a request carries, before parsing (the cache may know them already).
#[derive(Debug, Default)]
pub struct CarriedTokens<'a> {
    /// The `Authorization: Bearer` value, trimmed.
    pub header: Option<&'a str>,
    /// The first `sAccessToken` cookie.
    pub cookie: Option<Cow<'a, str>>,
    /// More than one `sAccessToken` cookie: fatal only if the cookie ends up chosen.
    pub duplicate_cookies: bool,
}

/// Finds the tokens; the legacy `sIdRefreshToken` cookie always asks for a refresh.
pub fn carried_tokens<'a>(authorization: Option<&'a str>, cookie_header: Option<&'a str>) -> Result<CarriedTokens<'a>, CredentialError> {
    let mut c = CarriedTokens {
        header: authorization.and_then(|v| v.strip_prefix("Bearer ")).map(str::trim),
        ..Default::default()
    };
    if let Some(cookies) = cookie_header {
        let scan = scan(cookies);
        if scan.legacy {
            return Err(CredentialError::LegacySession);
        }
        c.cookie = scan.access.and_then(cookie_text);
        c.duplicate_cookies = c.cookie.is_some() && scan.access_names > 1;
    }
    Ok(c)
}

/// What one pass over a `Cookie` header finds.
#[derive(Debug, Default, PartialEq, Eq)]
struct Scan<'a> {
    /// The first `sAccessToken` value as npm `cookie.parse` (0.7) cuts it, not yet decoded.
    access: Option<&'a str>,
    /// An `sIdRefreshToken` cookie is present.
    legacy: bool,
    /// `sAccessToken` names as the SDK counts them for its duplicate check.
    access_names: usize,
}

/// Reads a `Cookie` header once, with two readers the SDK applies to it: npm `cookie.parse`
/// (pairs without `=` skipped, name and value trimmed of spaces and tabs, the first value of a
/// name kept, one pair of surrounding quotes removed) and the duplicate count of
/// `getCookieNamesFromRequestHeaderAllowingDuplicates` (`pair.trim().split("=")[0]`, URL-decoded).
fn scan(header: &str) -> Scan<'_> {
    let mut out = Scan::default();
    for pair in pairs(header) {
        if let Some((name, value)) = pair.split_once('=') {
            let name = trim_space_tab(name);
            if name == ACCESS_TOKEN_COOKIE && out.access.is_none() {
                out.access = Some(unquote(trim_space_tab(value)));
            } else if name == LEGACY_ID_REFRESH_COOKIE {
                out.legacy = true;
            }
        }
        let counted = pair.trim().split('=').next().unwrap_or_default();
        let is_access = if has_percent(counted) {
            match percent_encoding::percent_decode_str(counted).decode_utf8() {
                Ok(decoded) => decoded == ACCESS_TOKEN_COOKIE,
                Err(_) => counted == ACCESS_TOKEN_COOKIE,
            }
        } else {
            counted == ACCESS_TOKEN_COOKIE
        };
        out.access_names += usize::from(is_access);
    }
    out
}

/// `header.split(';')`, with a vectorised search: a session cookie alone is near a kilobyte.
fn pairs(header: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(header);
    std::iter::from_fn(move || {
        let s = rest?;
        match memchr::memchr(b';', s.as_bytes()) {
            Some(i) => {
                rest = s.get(i + 1..);
                s.get(..i)
            }
            None => {
                rest = None;
                Some(s)
            }
        }
    })
}

fn has_percent(s: &str) -> bool {
    memchr::memchr(b'%', s.as_bytes()).is_some()
}

fn trim_space_tab(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// npm `cookie`'s quote rule: a value that starts and ends with `"` loses both (a lone `"`
/// becomes empty).
fn unquote(v: &str) -> &str {
    if v.starts_with('"') && v.ends_with('"') {
        v.get(1..v.len().saturating_sub(1).max(1)).unwrap_or_default()
    } else {
        v
    }
}

/// A cookie value as the SDK reads it: percent-decoded when it holds a `%`, and Express-style
/// JSON cookies (`j:"..."`) unwrapped by the SDK's framework layer.
fn cookie_text(value: &str) -> Option<Cow<'_, str>> {
    let value: Cow<'_, str> = if has_percent(value) {
        match percent_encoding::percent_decode_str(value).decode_utf8() {
            Ok(decoded) => Cow::Owned(decoded.into_owned()),
            Err(_) => Cow::Borrowed(value),
        }
    } else {
        Cow::Borrowed(value)
    };
    if let Some(json) = value.strip_prefix("j:") {
        return match serde_json::from_str::<serde_json::Value>(json) {
            Ok(serde_json::Value::String(s)) => Some(Cow::Owned(s)),
            Ok(_) => None,
            Err(_) => Some(value),
        };
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(header: &str) -> Option<String> {
        carried_tokens(None, Some(header)).ok()?.cookie.map(Cow::into_owned)
    }

    #[test]
    fn first_cookie_wins_and_quotes_and_encoding() {
        assert_eq!(access("a=1; sAccessToken=x; sAccessToken=y").as_deref(), Some("x"));
        assert_eq!(access("sAccessToken=\"q\"").as_deref(), Some("q"));
        assert_eq!(access("sAccessToken=a%2Eb").as_deref(), Some("a.b"));
        assert_eq!(access("sAccessToken=j:\"tok\"").as_deref(), Some("tok"));
        assert_eq!(access("other=1"), None);
    }

    #[test]
    fn pairs_split_like_str_split() {
        for h in ["", ";", "a", "a;", ";a", "a;b", "a;;b; c=d;", "sAccessToken=x;\u{e9};y"] {
            assert_eq!(pairs(h).collect::<Vec<_>>(), h.split(';').collect::<Vec<_>>(), "{h:?}");
        }
    }

    #[test]
    fn counts_duplicates_like_the_sdk() {
        assert_eq!(scan("sAccessToken=a; x=1;sAccessToken=b").access_names, 2);
        assert_eq!(scan("sAccessToken =a; sAccessToken=b").access_names, 1);
        assert_eq!(scan("s%41ccessToken=a; sAccessToken=b").access_names, 2);
    }

    #[test]
    fn reads_pairs_like_npm_cookie() {
        let s = scan("junk; sAccessToken = \t\"v\" ;sIdRefreshToken=");
        assert_eq!((s.access, s.legacy), (Some("v"), true));
        // No `=` in a pair: skipped, as npm backtracks past it.
        assert_eq!(scan("sAccessToken; sAccessToken=x").access, Some("x"));
        assert_eq!(scan("sAccessToken=\"").access, Some(""));
        assert_eq!(scan("sAccessToken=a=b").access, Some("a=b"));
        assert_eq!(scan("").access, None);
    }

    #[test]
    fn legacy_cookie_always_asks_for_refresh() {
        assert_eq!(
            carried_tokens(None, Some("sIdRefreshToken=")).err(),
            Some(CredentialError::LegacySession)
        );
        let c = carried_tokens(Some("Basic abc"), Some("other=1")).expect("ok");
        assert!(c.header.is_none() && c.cookie.is_none());
        let c = carried_tokens(Some("Bearer  t "), Some("sAccessToken=a; sAccessToken=b")).expect("ok");
        assert_eq!((c.header, c.cookie.as_deref(), c.duplicate_cookies), (Some("t"), Some("a"), true));
    }
}
