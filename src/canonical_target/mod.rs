//! Canonical target: the path every front door matches routes on, worked out once from the
//! original request target, with every other path a backend could read the same target as.
//!
//! Backends differ in what they do to a path before routing it: decode percent-escapes (once or
//! twice), take an encoded `/` or `\` for a separator, take `\` for `/`, drop `;` parameters,
//! merge repeated slashes, remove dot segments (before or after decoding), ignore case. Each
//! combination gives a reading; the policy refuses a target whose readings fall under different
//! routes, so no backend serves a request under a rule other than the one it was judged by. A
//! target that no backend reads sanely (control characters, broken percent-encoding, escapes that
//! decode to something other than UTF-8) is refused here.

use std::borrow::Cow;

mod case;
mod readings;

pub use case::{fold_case, is_folded};
use readings::{canonical, readings};

/// Longest path (the target before `?`) judged at all. NGINX's default request-line buffer is
/// 8 KiB; Envoy allows more.
pub const MAX_PATH_BYTES: usize = 16 * 1024;

/// Longest path whose readings are worked out (one that holds an escape, `;`, `\`, an empty or a
/// dot segment). Each reading is a copy of the path: at this length the worst path costs about
/// 0.75 ms (`bench/RESULTS.md`), at 16 KiB it would be 2.4 ms.
pub const MAX_READ_PATH_BYTES: usize = 4 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("the request target must be a path starting with `/`")]
    NotAPath,
    #[error("the request path is longer than {MAX_PATH_BYTES} bytes")]
    TooLong,
    #[error("the request path holds escapes, `;`, `\\`, empty or dot segments and is longer than {MAX_READ_PATH_BYTES} bytes")]
    TooLongToRead,
    #[error("the request target holds a control character")]
    ControlCharacter,
    #[error("the request target holds a `%` that is not followed by two hex digits")]
    BadPercentEncoding,
    #[error("the request path decodes to bytes that are not UTF-8")]
    NotUtf8,
}

/// A request target, read every way a backend may read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target<'a> {
    canonical: Cow<'a, str>,
    /// The readings that differ from `canonical`; empty for an ordinary path.
    others: Vec<String>,
}

impl<'a> Target<'a> {
    /// The path routes are matched on: percent-escapes decoded (but for those of `/`, `\`, `?`,
    /// `#` and `%`, kept with upper-case hex), repeated slashes merged, dot segments removed,
    /// query and fragment cut. Canonicalising it again gives it back unchanged.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// The canonical path, then every other reading.
    pub fn readings(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.canonical.as_ref()).chain(self.others.iter().map(String::as_str))
    }

    /// Whether every backend reads the target as the canonical path (case aside).
    pub fn is_plain(&self) -> bool {
        self.others.is_empty()
    }

    pub fn into_canonical(self) -> Cow<'a, str> {
        self.canonical
    }
}

/// Reads a request target (origin form: path, then `?query` and `#fragment`, which are cut).
/// An empty target is `/`.
pub fn canonicalise(target: &str) -> Result<Target<'_>, TargetError> {
    if target.bytes().any(is_control) {
        return Err(TargetError::ControlCharacter);
    }
    let path = match memchr::memchr2(b'?', b'#', target.as_bytes()) {
        Some(end) => target.get(..end).unwrap_or_default(),
        None => target,
    };
    if path.is_empty() {
        return Ok(Target {
            canonical: Cow::Borrowed("/"),
            others: Vec::new(),
        });
    }
    if !path.starts_with('/') {
        return Err(TargetError::NotAPath);
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(TargetError::TooLong);
    }
    if is_plain(path.as_bytes()) {
        return Ok(Target {
            canonical: Cow::Borrowed(path),
            others: Vec::new(),
        });
    }
    if path.len() > MAX_READ_PATH_BYTES {
        return Err(TargetError::TooLongToRead);
    }
    let canonical = canonical(path)?;
    let mut others = readings(path)?;
    others.retain(|r| *r != canonical);
    Ok(Target {
        canonical: Cow::Owned(canonical),
        others,
    })
}

pub(crate) fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// A path every backend reads as it is: no escape, `;` or `\`, no empty or dot segment.
fn is_plain(path: &[u8]) -> bool {
    let mut segment_start = 0;
    for (i, &b) in path.iter().enumerate() {
        match b {
            b'%' | b';' | b'\\' => return false,
            b'/' if i > 0 => {
                let segment = path.get(segment_start..i).unwrap_or_default();
                if segment.is_empty() || is_dot_segment(segment) {
                    return false;
                }
                segment_start = i + 1;
            }
            b'/' => segment_start = 1,
            _ => {}
        }
    }
    !is_dot_segment(path.get(segment_start..).unwrap_or_default())
}

pub(crate) fn is_dot_segment(segment: &[u8]) -> bool {
    segment == b"." || segment == b".."
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readings_of(t: &str) -> Vec<String> {
        let target = canonicalise(t).expect("target");
        target.readings().map(str::to_owned).collect()
    }

    #[test]
    fn ordinary_paths_are_borrowed_and_have_one_reading() {
        for t in [
            "/",
            "/items",
            "/items/1?x=1#f",
            "/a-b_c.d~e/f(1)",
            "/caf\u{e9}",
            "/a/.b/..c/...",
            "/a,b=c:d@e",
        ] {
            let target = canonicalise(t).expect("target");
            assert!(matches!(target.canonical, Cow::Borrowed(_)), "{t}");
            assert!(target.is_plain(), "{t}: {:?}", target.others);
            assert_eq!(target.canonical(), t.split(['?', '#']).next().expect("path"));
        }
        assert_eq!(canonicalise("").expect("empty").canonical(), "/");
        assert_eq!(canonicalise("?a=1").expect("query only").canonical(), "/");
    }

    #[test]
    fn the_canonical_path_is_decoded_merged_and_free_of_dot_segments() {
        for (raw, canonical) in [
            ("//admin/users", "/admin/users"),
            ("/x/../admin/users", "/admin/users"),
            ("/%61dmin/users", "/admin/users"),
            ("/%2e%2e/admin", "/admin"),
            ("/x/%2E%2E/admin", "/admin"),
            ("/admin/./users/", "/admin/users/"),
            ("/admin%2fusers", "/admin%2Fusers"),
            ("/a%5cb", "/a%5Cb"),
            ("/a%3fb", "/a%3Fb"),
            ("/a%2525", "/a%2525"),
            ("/a%20b", "/a b"),
            ("/caf%C3%A9", "/caf\u{e9}"),
            ("/admin;x/users", "/admin;x/users"),
            ("/a/..", "/"),
            ("/..", "/"),
            ("/a//../b", "/b"),
        ] {
            assert_eq!(canonicalise(raw).expect(raw).canonical(), canonical, "{raw}");
        }
    }

    #[test]
    fn readings_cover_what_backends_do() {
        let r = readings_of("/admin%2Fusers");
        assert!(r.contains(&"/admin/users".to_owned()), "{r:?}");
        assert!(r.contains(&"/admin%2Fusers".to_owned()), "{r:?}");
        let r = readings_of("/admin;x/users");
        assert!(r.contains(&"/admin/users".to_owned()), "{r:?}");
        let r = readings_of("/x/..;/admin");
        assert!(r.contains(&"/admin".to_owned()), "{r:?}");
        let r = readings_of("/admin%252Fusers");
        assert!(r.contains(&"/admin/users".to_owned()), "{r:?}");
        let r = readings_of("/admin\\users");
        assert!(r.contains(&"/admin/users".to_owned()), "{r:?}");
        let r = readings_of("/admin%5cusers");
        assert!(r.contains(&"/admin/users".to_owned()), "{r:?}");
        // Raw (Express), decoded without dot removal, decoded with it.
        let r = readings_of("/x/%2e%2e/admin");
        for want in ["/x/%2e%2e/admin", "/x/../admin", "/admin"] {
            assert!(r.contains(&want.to_owned()), "{want}: {r:?}");
        }
        // An escaped `?` may end the path for a backend that decodes before splitting.
        let r = readings_of("/admin%3F/x");
        assert!(r.contains(&"/admin".to_owned()), "{r:?}");
        // Merging before or after dot removal differs.
        let r = readings_of("/a//../b");
        assert!(r.contains(&"/a/b".to_owned()) && r.contains(&"/b".to_owned()), "{r:?}");
    }

    #[test]
    fn unreadable_targets_are_refused() {
        for (t, e) in [
            ("/a%zz", TargetError::BadPercentEncoding),
            ("/a%2", TargetError::BadPercentEncoding),
            ("/a%", TargetError::BadPercentEncoding),
            ("/a%00", TargetError::ControlCharacter),
            ("/a%0a", TargetError::ControlCharacter),
            ("/a%7F", TargetError::ControlCharacter),
            ("/a\u{0}b", TargetError::ControlCharacter),
            ("/a\tb", TargetError::ControlCharacter),
            ("/q?a=\u{1}", TargetError::ControlCharacter),
            ("/%c0%ae%c0%ae/admin", TargetError::NotUtf8),
            ("/%ff", TargetError::NotUtf8),
            ("/a%2500", TargetError::ControlCharacter),
            ("/a%25c0%25ae", TargetError::NotUtf8),
            ("admin", TargetError::NotAPath),
            ("*", TargetError::NotAPath),
            ("http://h/admin", TargetError::NotAPath),
        ] {
            assert_eq!(canonicalise(t), Err(e), "{t:?}");
        }
        let long = format!("/{}", "a".repeat(MAX_PATH_BYTES));
        assert_eq!(canonicalise(&long), Err(TargetError::TooLong));
        let plain = format!("/{}", "a/".repeat(MAX_PATH_BYTES / 2 - 1));
        assert!(
            canonicalise(&plain).is_ok(),
            "an ordinary path is read up to {MAX_PATH_BYTES} bytes"
        );
        let escaped = format!("/{}", "a%20".repeat(MAX_READ_PATH_BYTES / 4));
        assert_eq!(canonicalise(&escaped), Err(TargetError::TooLongToRead));
        let within = format!("/{}", "a%20".repeat((MAX_READ_PATH_BYTES - 1) / 4));
        assert!(canonicalise(&within).is_ok());
        let long_query = format!("/a?{}", "a".repeat(MAX_PATH_BYTES * 2));
        assert!(canonicalise(&long_query).is_ok());
    }
}
