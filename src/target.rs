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

/// Longest path (the target before `?`) whose readings are worked out. Proxies forward no longer
/// request line (NGINX's default buffer is 8 KiB), and every reading is a copy of the path.
pub const MAX_PATH_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("the request target must be a path starting with `/`")]
    NotAPath,
    #[error("the request path is longer than {MAX_PATH_BYTES} bytes")]
    TooLong,
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
    let canonical = canonical(path)?;
    let mut others = Vec::new();
    for reading in Reading::all_for(path)? {
        let r = read(path, reading)?;
        if r != canonical {
            others.push(r);
        }
    }
    others.sort_unstable();
    others.dedup();
    Ok(Target {
        canonical: Cow::Owned(canonical),
        others,
    })
}

fn is_control(b: u8) -> bool {
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

fn is_dot_segment(segment: &[u8]) -> bool {
    segment == b"." || segment == b".."
}

/// When repeated slashes are merged, relative to dot-segment removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Merge {
    Never,
    BeforeDots,
    AfterDots,
}

/// When dot segments are removed, relative to decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dots {
    Kept,
    BeforeDecoding,
    AfterDecoding,
}

/// One way a backend may turn a request path into the path it routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reading {
    /// `;` and what follows it in each segment dropped (Tomcat, Jetty, Spring), before and
    /// after decoding.
    strip_parameters: bool,
    /// Decoding passes: 0 (Express routes the raw path), 1, 2 (a backend that decodes what its
    /// framework already decoded).
    decodes: u8,
    /// Whether an escaped `/` or `\` decodes into a separator (and an escaped `?` or `#` cuts the
    /// path there), or stays an escape inside its segment.
    separators: bool,
    /// `\` taken for `/` (IIS, some Windows-hosted and Java servers).
    backslash: bool,
    merge: Merge,
    dots: Dots,
}

impl Reading {
    /// Every reading worth working out for `path`: a choice only matters when the path holds
    /// what it acts on.
    fn all_for(path: &str) -> Result<Vec<Reading>, TargetError> {
        let once = decode(path, Escapes::Decode)?;
        let twice = if once.contains('%') {
            Some(decode(&once, Escapes::Lenient)?)
        } else {
            None
        };
        let seen = |pred: &dyn Fn(&str) -> bool| pred(path) || pred(&once) || twice.as_deref().is_some_and(pred);
        let escaped = |s: &str| has_reserved_escape(s);
        let strip = if seen(&|s| s.contains(';')) {
            &[false, true][..]
        } else {
            &[false][..]
        };
        let backslash = if seen(&|s| s.contains('\\')) {
            &[false, true][..]
        } else {
            &[false][..]
        };
        let separators = if seen(&escaped) { &[false, true][..] } else { &[false][..] };
        let decodes: &[u8] = match (path.contains('%'), twice.is_some()) {
            (false, _) => &[0],
            (true, false) => &[0, 1],
            (true, true) => &[0, 1, 2],
        };
        let mut out = Vec::new();
        for &strip_parameters in strip {
            for &d in decodes {
                // Without decoding, escapes stay escapes whatever a decoder would do with them.
                let seps: &[bool] = if d == 0 { &[false] } else { separators };
                for &separators in seps {
                    for &backslash in backslash {
                        for merge in [Merge::Never, Merge::BeforeDots, Merge::AfterDots] {
                            for dots in [Dots::Kept, Dots::BeforeDecoding, Dots::AfterDecoding] {
                                out.push(Reading {
                                    strip_parameters,
                                    decodes: d,
                                    separators,
                                    backslash,
                                    merge,
                                    dots,
                                });
                            }
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}

/// `%2F`, `%5C`, `%3F` or `%23` in any case: escapes a router may take for structure.
fn has_reserved_escape(s: &str) -> bool {
    s.as_bytes()
        .windows(3)
        .any(|w| matches!(w, [b'%', h, l] if reserved_escape(hex(*h), hex(*l)).is_some()))
}

fn reserved_escape(h: Option<u8>, l: Option<u8>) -> Option<u8> {
    let v = h? << 4 | l?;
    matches!(v, b'/' | b'\\' | b'?' | b'#').then_some(v)
}

/// The canonical path (see `Target::canonical`).
fn canonical(path: &str) -> Result<String, TargetError> {
    let decoded = decode(path, Escapes::KeepReserved)?;
    Ok(remove_dot_segments(&merge_slashes(&decoded)))
}

fn read(path: &str, r: Reading) -> Result<String, TargetError> {
    let mut s = if r.strip_parameters {
        strip_parameters(path)
    } else {
        path.to_owned()
    };
    if r.dots == Dots::BeforeDecoding {
        s = remove_dot_segments(&s);
    }
    for pass in 0..r.decodes {
        let escapes = match (r.separators, pass) {
            (true, 0) => Escapes::Decode,
            (true, _) => Escapes::Lenient,
            (false, 0) => Escapes::KeepSeparators,
            (false, _) => Escapes::LenientKeepSeparators,
        };
        s = decode(&s, escapes)?;
        if r.separators
            && let Some(cut) = memchr::memchr2(b'?', b'#', s.as_bytes())
        {
            s.truncate(cut);
        }
        if r.strip_parameters {
            s = strip_parameters(&s);
        }
    }
    if r.backslash {
        s = s.replace('\\', "/");
    }
    if r.merge == Merge::BeforeDots {
        s = merge_slashes(&s);
    }
    if r.dots == Dots::AfterDecoding {
        s = remove_dot_segments(&s);
    }
    if r.merge == Merge::AfterDots {
        s = merge_slashes(&s);
    }
    if s.is_empty() {
        s.push('/');
    }
    Ok(s)
}

/// What a decoding pass does with escapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escapes {
    /// Every escape decoded; a `%` without two hex digits is an error.
    Decode,
    /// Every valid escape decoded; a stray `%` stays (the second pass of a double decoder).
    Lenient,
    /// As `Decode`, but escapes of `/`, `\`, `?` and `#` stay as they are.
    KeepSeparators,
    LenientKeepSeparators,
    /// As `KeepSeparators`, and `%` too, all with upper-case hex: the canonical form, which
    /// decodes to itself.
    KeepReserved,
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn upper_hex(n: u8) -> u8 {
    if n < 10 { b'0' + n } else { b'A' + n - 10 }
}

fn decode(s: &str, escapes: Escapes) -> Result<String, TargetError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b != b'%' {
            out.push(b);
            i += 1;
            continue;
        }
        let (h, l) = (bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex));
        let (Some(h), Some(l)) = (h, l) else {
            match escapes {
                Escapes::Decode | Escapes::KeepSeparators | Escapes::KeepReserved => return Err(TargetError::BadPercentEncoding),
                Escapes::Lenient | Escapes::LenientKeepSeparators => {
                    out.push(b'%');
                    i += 1;
                    continue;
                }
            }
        };
        let v = h << 4 | l;
        let keep = match escapes {
            Escapes::Decode | Escapes::Lenient => false,
            Escapes::KeepSeparators | Escapes::LenientKeepSeparators => matches!(v, b'/' | b'\\' | b'?' | b'#'),
            Escapes::KeepReserved => matches!(v, b'/' | b'\\' | b'?' | b'#' | b'%'),
        };
        if keep {
            out.extend_from_slice(&[b'%', upper_hex(h), upper_hex(l)]);
        } else {
            if is_control(v) {
                return Err(TargetError::ControlCharacter);
            }
            out.push(v);
        }
        i += 3;
    }
    String::from_utf8(out).map_err(|_| TargetError::NotUtf8)
}

/// Drops `;` and what follows it in every segment (`/a;x/b;y=1` is `/a/b`; `..;` is `..`).
fn strip_parameters(path: &str) -> String {
    if !path.contains(';') {
        return path.to_owned();
    }
    let mut out = String::with_capacity(path.len());
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(segment.split(';').next().unwrap_or_default());
    }
    out
}

fn merge_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    out
}

/// RFC 3986 section 5.2.4 on an absolute path: `.` segments go, `..` removes the segment before
/// it (never past the root), and a path ending in a dot segment keeps its trailing slash.
fn remove_dot_segments(path: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    let mut segments = path.split('/').skip(1).peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        match segment {
            "." => {}
            ".." => {
                kept.pop();
            }
            s => {
                kept.push(s);
                continue;
            }
        }
        if last {
            kept.push("");
        }
    }
    let mut out = String::with_capacity(path.len());
    for s in kept {
        out.push('/');
        out.push_str(s);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// A path as a case-insensitive router compares it: lower-cased, and the letters outside ASCII
/// whose upper or lower case is an ASCII letter (dotless `ı`, long `ſ`, the Kelvin sign) taken
/// for that letter, as Java's `equalsIgnoreCase` and .NET's invariant culture do.
pub fn fold_case(path: &str) -> Cow<'_, str> {
    if is_folded(path) {
        return Cow::Borrowed(path);
    }
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        match ascii_fold(c) {
            Some(a) => out.push(a),
            None => out.extend(c.to_lowercase()),
        }
    }
    Cow::Owned(out)
}

/// Whether `s` is its own fold and no case-insensitive comparison can find more in it: ASCII
/// without capitals.
pub fn is_folded(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase())
}

/// The ASCII letter `c` is taken for by a case-insensitive comparison, if any.
fn ascii_fold(c: char) -> Option<char> {
    if c.is_ascii() {
        return Some(c.to_ascii_lowercase());
    }
    // Capital I with dot above: its simple lower case is `i` (the full one adds a combining dot).
    if c == '\u{130}' {
        return Some('i');
    }
    let single = |it: &mut dyn Iterator<Item = char>| match (it.next(), it.next()) {
        (Some(x), None) if x.is_ascii_alphabetic() => Some(x.to_ascii_lowercase()),
        _ => None,
    };
    single(&mut c.to_uppercase()).or_else(|| single(&mut c.to_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readings(t: &str) -> Vec<String> {
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
        let r = readings("/admin%2Fusers");
        assert!(r.contains(&"/admin/users".to_owned()), "{r:?}");
        assert!(r.contains(&"/admin%2Fusers".to_owned()), "{r:?}");
        let r = readings("/admin;x/users");
        assert!(r.contains(&"/admin/users".to_owned()), "{r:?}");
        let r = readings("/x/..;/admin");
        assert!(r.contains(&"/admin".to_owned()), "{r:?}");
        let r = readings("/admin%252Fusers");
        assert!(r.contains(&"/admin/users".to_owned()), "{r:?}");
        let r = readings("/admin\\users");
        assert!(r.contains(&"/admin/users".to_owned()), "{r:?}");
        let r = readings("/admin%5cusers");
        assert!(r.contains(&"/admin/users".to_owned()), "{r:?}");
        // Raw (Express), decoded without dot removal, decoded with it.
        let r = readings("/x/%2e%2e/admin");
        for want in ["/x/%2e%2e/admin", "/x/../admin", "/admin"] {
            assert!(r.contains(&want.to_owned()), "{want}: {r:?}");
        }
        // An escaped `?` may end the path for a backend that decodes before splitting.
        let r = readings("/admin%3F/x");
        assert!(r.contains(&"/admin".to_owned()), "{r:?}");
        // Merging before or after dot removal differs.
        let r = readings("/a//../b");
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
        let long_query = format!("/a?{}", "a".repeat(MAX_PATH_BYTES * 2));
        assert!(canonicalise(&long_query).is_ok());
    }

    #[test]
    fn dot_segments_follow_rfc_3986() {
        for (input, want) in [
            ("/a/b/c/./../../g", "/a/g"),
            ("/mid/content=5/../6", "/mid/6"),
            ("/a/./", "/a/"),
            ("/a/.", "/a/"),
            ("/a/b/..", "/a/"),
            ("/../../x", "/x"),
            ("/", "/"),
        ] {
            assert_eq!(remove_dot_segments(input), want, "{input}");
        }
    }

    #[test]
    fn case_folding_maps_letters_that_fold_to_ascii() {
        assert_eq!(fold_case("/admin"), "/admin");
        assert!(matches!(fold_case("/admin"), Cow::Borrowed(_)));
        assert_eq!(fold_case("/ADMIN/Users"), "/admin/users");
        assert_eq!(fold_case("/adm\u{131}n"), "/admin");
        assert_eq!(fold_case("/\u{17f}ecret"), "/secret");
        assert_eq!(fold_case("/\u{212a}ey"), "/key");
        assert_eq!(fold_case("/caf\u{c9}"), "/caf\u{e9}");
        assert_eq!(fold_case("/\u{130}d"), "/id");
    }
}
