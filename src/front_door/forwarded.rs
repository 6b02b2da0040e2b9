//! The original request a proxy reports in forwarding headers: read only from the two headers
//! `[forward_auth]` names (the ones the proxy in front overwrites), exactly one value each.

use std::borrow::Cow;

use http::{HeaderMap, HeaderName};

use crate::settings::ForwardAuthSettings;

/// Why the original request cannot be read from the proxy's headers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardingError {
    #[error("`{0}` is missing: the proxy in front must set it to the original request (forward_auth.proxy names the proxy)")]
    Missing(HeaderName),
    #[error("`{0}` was sent more than once; the proxy must overwrite it, not add to it")]
    Repeated(HeaderName),
    #[error("`{0}` is not visible ASCII")]
    NotText(HeaderName),
    #[error("`{0}` is not an HTTP method")]
    NotAMethod(HeaderName),
}

/// The original method and request target, from exactly one value of each trusted header. The
/// target is a path (`/a?b`) or, as ingress-nginx's `X-Original-URL` carries it, an absolute
/// URL, of which the path and query are kept as they were sent.
pub fn original<'h>(headers: &'h HeaderMap, trusted: &ForwardAuthSettings) -> Result<(&'h str, Cow<'h, str>), ForwardingError> {
    let one = |name: &HeaderName| {
        let mut values = headers.get_all(name).iter();
        let value = values.next().ok_or_else(|| ForwardingError::Missing(name.clone()))?;
        if values.next().is_some() {
            return Err(ForwardingError::Repeated(name.clone()));
        }
        value.to_str().map_err(|_| ForwardingError::NotText(name.clone()))
    };
    let method_header = trusted.method_header();
    let method = one(&method_header)?;
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(ForwardingError::NotAMethod(method_header));
    }
    let uri = one(&trusted.uri_header())?;
    Ok((method, path_of(uri)))
}

/// RFC 9110's `tchar`: what a method may be made of (so a comma-joined list is not one).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A target as sent: a path stays as it is; an absolute URL gives its path and query, raw (a URL
/// parser would already resolve the dot segments and escapes the target is judged on).
fn path_of(uri: &str) -> Cow<'_, str> {
    let Some((scheme, rest)) = uri.split_once("://") else {
        return Cow::Borrowed(uri);
    };
    if scheme.is_empty() || !scheme.bytes().all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) {
        return Cow::Borrowed(uri);
    }
    match rest.find(['/', '?', '#']).and_then(|i| rest.get(i..)) {
        Some(tail) if tail.starts_with('/') => Cow::Borrowed(tail),
        Some(tail) => Cow::Owned(format!("/{tail}")),
        None => Cow::Borrowed("/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nginx() -> ForwardAuthSettings {
        ForwardAuthSettings::default()
    }

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                http::HeaderValue::from_bytes(v).expect("value"),
            );
        }
        h
    }

    #[test]
    fn only_the_trusted_headers_are_read() {
        let h = headers(&[
            ("x-forwarded-uri", b"/items"),
            ("x-forwarded-method", b"GET"),
            ("x-original-url", b"http://h/items"),
            ("x-original-uri", b"/admin/users?x=1"),
            ("x-original-method", b"DELETE"),
        ]);
        let (method, target) = original(&h, &nginx()).expect("read");
        assert_eq!((method, target.as_ref()), ("DELETE", "/admin/users?x=1"));
        let traefik = ForwardAuthSettings {
            proxy: crate::settings::ForwardAuthProxy::Traefik,
            ..Default::default()
        };
        let (method, target) = original(&h, &traefik).expect("read");
        assert_eq!((method, target.as_ref()), ("GET", "/items"));
    }

    #[test]
    fn missing_repeated_or_garbled_headers_are_refused() {
        let t = nginx();
        let uri = HeaderName::from_static("x-original-uri");
        let method = HeaderName::from_static("x-original-method");
        assert_eq!(
            original(&headers(&[("x-original-method", b"GET"), ("x-forwarded-uri", b"/a")]), &t),
            Err(ForwardingError::Missing(uri.clone()))
        );
        assert_eq!(
            original(&headers(&[("x-original-uri", b"/a")]), &t),
            Err(ForwardingError::Missing(method.clone()))
        );
        assert_eq!(
            original(
                &headers(&[
                    ("x-original-method", b"GET"),
                    ("x-original-uri", b"/items"),
                    ("x-original-uri", b"/admin")
                ]),
                &t
            ),
            Err(ForwardingError::Repeated(uri.clone()))
        );
        for bad in [&b"GET, POST"[..], b"", b"G T", b"GET\t"] {
            assert_eq!(
                original(&headers(&[("x-original-method", bad), ("x-original-uri", b"/a")]), &t),
                Err(ForwardingError::NotAMethod(method.clone())),
                "{bad:?}"
            );
        }
        assert_eq!(
            original(&headers(&[("x-original-method", b"GET"), ("x-original-uri", b"/caf\xc3\xa9")]), &t),
            Err(ForwardingError::NotText(uri))
        );
    }

    #[test]
    fn absolute_urls_keep_their_raw_path_and_query() {
        assert_eq!(path_of("https://h.example/x/../admin?q=1"), "/x/../admin?q=1");
        assert_eq!(path_of("http://h:8080"), "/");
        assert_eq!(path_of("http://h?q"), "/?q");
        assert_eq!(path_of("/a://b"), "/a://b");
        assert_eq!(path_of("relative"), "relative");
    }
}
