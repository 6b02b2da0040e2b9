//! The canonical target and the forwarding-header reader. The first line is a request target
//! (any bytes), judged against the routes of the `decision` target; the rest are header lines
//! given to `/forward-auth`'s reader (NGINX's trusted pair, repeated or not, and look-alikes).
//! A target is refused or canonicalised; its canonical path canonicalises to itself, has no
//! control character, and is one of its readings; the reader takes only the trusted headers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_authorizer::front_door::forwarded;
use session_authorizer::settings::ForwardAuthSettings;
use session_authorizer::canonical_target::{MAX_PATH_BYTES, canonicalise};
use session_authorizer_fuzz::fixture;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (target, rest) = text.split_once('\n').unwrap_or((&text, ""));
    if let Ok(t) = canonicalise(target) {
        let canonical = t.canonical();
        assert!(canonical.starts_with('/'), "{canonical:?}");
        assert!(canonical.len() <= MAX_PATH_BYTES * 3, "{canonical:?}");
        assert!(!canonical.bytes().any(|b| b < 0x20 || b == 0x7f), "{canonical:?}");
        assert_eq!(t.readings().next(), Some(canonical));
        let again = canonicalise(canonical).expect("a canonical path canonicalises");
        assert_eq!(again.canonical(), canonical, "not idempotent: {target:?}");
        let live = fixture().state(None).live();
        let policy = &live.authorizer.policy;
        for methods in [&["GET"][..], &["POST", "DELETE"][..]] {
            // A judged target meets the route its canonical path meets alone.
            if let Ok(route) = policy.route_for(methods, &t)
                && again.is_plain()
            {
                let alone = policy.route_for(methods, &again).map(|r| r.pattern.as_str()).ok();
                assert_eq!(alone, Some(route.pattern.as_str()), "{target:?}");
            }
        }
    }
    let mut headers = http::HeaderMap::new();
    for line in rest.lines() {
        if let Some((k, v)) = line.split_once(':')
            && let (Ok(k), Ok(v)) = (
                http::HeaderName::from_bytes(k.trim().as_bytes()),
                http::HeaderValue::from_str(v.trim()),
            )
        {
            headers.append(k, v);
        }
    }
    let trusted = ForwardAuthSettings::default();
    if let Ok((method, uri)) = forwarded::original(&headers, &trusted) {
        assert_eq!(headers.get_all("x-original-method").iter().count(), 1);
        assert_eq!(headers.get_all("x-original-uri").iter().count(), 1);
        assert!(
            !method.is_empty() && method.bytes().all(|b| b.is_ascii_graphic() && b != b','),
            "{method:?}"
        );
        let sent = headers.get("x-original-uri").and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(
            sent.ends_with(uri.as_ref()) || uri == "/" || uri.starts_with("/?") || uri.starts_with("/#"),
            "{sent:?} -> {uri:?}"
        );
    }
});
