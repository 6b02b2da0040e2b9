//! Picks the access token from a request the way the Node SDK does: `Authorization: Bearer`
//! beats the `sAccessToken` cookie, candidates that do not parse count as absent, and the legacy
//! `sIdRefreshToken` cookie or duplicate `sAccessToken` cookies ask the client to refresh.

use std::borrow::Cow;

use cookie::Cookie;

pub const ACCESS_TOKEN_COOKIE: &str = "sAccessToken";
pub const LEGACY_ID_REFRESH_COOKIE: &str = "sIdRefreshToken";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("using legacy session, please call the refresh API")]
    LegacySession,
    #[error("Multiple access tokens present in the request cookies.")]
    DuplicateCookies,
}

/// The raw token candidates of a request, before parsing (the cache may know them already).
#[derive(Debug, Default)]
pub struct Candidates<'a> {
    /// The `Authorization: Bearer` value, trimmed.
    pub header: Option<&'a str>,
    /// The first `sAccessToken` cookie.
    pub cookie: Option<Cow<'a, str>>,
    /// More than one `sAccessToken` cookie: fatal only if the cookie ends up chosen.
    pub duplicate_cookies: bool,
}

/// Finds the candidates; the legacy `sIdRefreshToken` cookie always asks for a refresh.
pub fn candidates<'a>(authorization: Option<&'a str>, cookie_header: Option<&'a str>) -> Result<Candidates<'a>, CredentialError> {
    let mut c = Candidates {
        header: authorization.and_then(|v| v.strip_prefix("Bearer ")).map(str::trim),
        ..Default::default()
    };
    if let Some(cookies) = cookie_header {
        if cookie_value(cookies, LEGACY_ID_REFRESH_COOKIE).is_some() {
            return Err(CredentialError::LegacySession);
        }
        c.cookie = cookie_value(cookies, ACCESS_TOKEN_COOKIE);
        c.duplicate_cookies = c.cookie.is_some() && count_cookie_names(cookies, ACCESS_TOKEN_COOKIE) > 1;
    }
    Ok(c)
}

/// The first cookie called `name` (later duplicates are ignored, as with Node's `cookie.parse`),
/// without surrounding quotes, percent-decoded when it holds a `%`.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<Cow<'a, str>> {
    let c = Cookie::split_parse(header).filter_map(Result::ok).find(|c| c.name() == name)?;
    let value = match c.value_raw() {
        Some(raw) => strip_quotes(raw),
        None => return None,
    };
    let value: Cow<'a, str> = if value.contains('%') {
        match percent_encoding::percent_decode_str(value).decode_utf8() {
            Ok(decoded) => Cow::Owned(decoded.into_owned()),
            Err(_) => Cow::Borrowed(value),
        }
    } else {
        Cow::Borrowed(value)
    };
    // Express-style JSON cookies (`j:"..."`) are unwrapped by the SDK's framework layer.
    if let Some(json) = value.strip_prefix("j:") {
        return match serde_json::from_str::<serde_json::Value>(json) {
            Ok(serde_json::Value::String(s)) => Some(Cow::Owned(s)),
            Ok(_) => None,
            Err(_) => Some(value),
        };
    }
    Some(value)
}

fn strip_quotes(v: &str) -> &str {
    v.strip_prefix('"').and_then(|s| s.strip_suffix('"')).unwrap_or(v)
}

/// The SDK's duplicate count: split on `;`, take the part before the first `=`, URL-decode it.
fn count_cookie_names(header: &str, name: &str) -> usize {
    header
        .split(';')
        .filter(|pair| {
            let n = pair.trim().split('=').next().unwrap_or_default();
            match percent_encoding::percent_decode_str(n).decode_utf8() {
                Ok(decoded) => decoded == name,
                Err(_) => n == name,
            }
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_cookie_wins_and_quotes_and_encoding() {
        assert_eq!(
            cookie_value("a=1; sAccessToken=x; sAccessToken=y", "sAccessToken").as_deref(),
            Some("x")
        );
        assert_eq!(cookie_value("sAccessToken=\"q\"", "sAccessToken").as_deref(), Some("q"));
        assert_eq!(cookie_value("sAccessToken=a%2Eb", "sAccessToken").as_deref(), Some("a.b"));
        assert_eq!(cookie_value("sAccessToken=j:\"tok\"", "sAccessToken").as_deref(), Some("tok"));
        assert_eq!(cookie_value("other=1", "sAccessToken"), None);
    }

    #[test]
    fn counts_duplicates_like_the_sdk() {
        assert_eq!(count_cookie_names("sAccessToken=a; x=1;sAccessToken=b", "sAccessToken"), 2);
        assert_eq!(count_cookie_names("sAccessToken =a; sAccessToken=b", "sAccessToken"), 1);
    }

    #[test]
    fn legacy_cookie_always_asks_for_refresh() {
        assert_eq!(
            candidates(None, Some("sIdRefreshToken=")).err(),
            Some(CredentialError::LegacySession)
        );
        let c = candidates(Some("Basic abc"), Some("other=1")).expect("ok");
        assert!(c.header.is_none() && c.cookie.is_none());
        let c = candidates(Some("Bearer  t "), Some("sAccessToken=a; sAccessToken=b")).expect("ok");
        assert_eq!((c.header, c.cookie.as_deref(), c.duplicate_cookies), (Some("t"), Some("a"), true));
    }
}
