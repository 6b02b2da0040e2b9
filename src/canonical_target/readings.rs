//! The readings of a request path: every path a backend may route it as, and the decoding,
//! dot-segment and slash rules they are made of.

use super::{TargetError, is_control, is_dot_segment};

/// Every path a backend may route `path` as, worked out in the stages backends go through, each
/// stage's results deduplicated before the next (so a choice that changes nothing costs
/// nothing):
/// 1. before decoding: `;` parameters dropped or not (Tomcat, Jetty, Spring), dot segments
///    removed or not (a decoder that normalises first);
/// 2. decoding: not at all (Express routes the raw path), once, or twice (a backend decoding
///    what its framework already decoded); an escaped `/` or `\` may become a separator (Go,
///    Tomcat when allowed) or stay an escape inside its segment (ASP.NET Core, Envoy); an
///    escaped `?` or `#` may end the path (a backend decoding the whole target before splitting
///    it) or stay inside its segment; parameters dropped again after decoding;
/// 3. `\` taken for `/` or not (IIS, some Windows-hosted and Java servers);
/// 4. after decoding: repeated slashes merged, dot segments removed, in either order, or both
///    as Go's `path.Clean` does, or neither.
pub(super) fn readings(path: &str) -> Result<Vec<String>, TargetError> {
    let holds = Holds::of(path)?;
    let before = before_decoding(path, &holds);
    let decoded = decoded(&before, &holds)?;
    Ok(after_decoding(decoded))
}

/// What a path holds that a reading may act on, here or once decoded (once or twice).
struct Holds {
    parameters: bool,
    /// Decoding passes that can change it: 0, 1, or 2 when decoding leaves escapes.
    passes: u8,
    escaped_slashes: bool,
    escaped_marks: bool,
    backslashes: bool,
}

impl Holds {
    fn of(path: &str) -> Result<Self, TargetError> {
        let once = decode(path, Decoding::ALL)?;
        let twice = if once.contains('%') {
            Some(decode(&once, Decoding::ALL.lenient())?)
        } else {
            None
        };
        let seen = |pred: &dyn Fn(&str) -> bool| pred(path) || pred(&once) || twice.as_deref().is_some_and(pred);
        Ok(Self {
            parameters: seen(&|s| s.contains(';')),
            passes: match (path.contains('%'), twice.is_some()) {
                (false, _) => 0,
                (true, false) => 1,
                (true, true) => 2,
            },
            escaped_slashes: seen(&|s| has_escape_of(s, b"/\\")),
            escaped_marks: seen(&|s| has_escape_of(s, b"?#")),
            backslashes: seen(&|s| s.contains('\\')),
        })
    }
}

/// Stage 1: the path, without its `;` parameters, with its dot segments removed (plainly, or
/// as a WHATWG URL parser does: Node's `URL`, Deno and Bun take `\` for `/` and remove dot
/// segments in any escaped spelling, decoding nothing else).
fn before_decoding(path: &str, holds: &Holds) -> Vec<String> {
    let mut before = vec![path.to_owned()];
    if holds.parameters {
        before.push(strip_parameters(path));
    }
    let mut dotted: Vec<String> = before
        .iter()
        .filter(|s| has_dot_segment(s))
        .map(|s| remove_dot_segments(s))
        .collect();
    if has_escape_of(path, b".") || path.contains('\\') {
        dotted.extend(before.iter().map(|s| whatwg_path(s)));
    }
    before.extend(dotted);
    dedup(&mut before);
    before
}

/// Stages 2 and 3: each of `before` decoded every way (and `\` taken for `/` or not).
fn decoded(before: &[String], holds: &Holds) -> Result<Vec<String>, TargetError> {
    let mut keeps = Vec::new();
    for &separator in choices(holds.escaped_slashes) {
        for &cut in choices(holds.escaped_marks) {
            keeps.push(match (separator, cut) {
                (true, true) => Keep::Nothing,
                (true, false) => Keep::Marks,
                (false, true) => Keep::Slashes,
                (false, false) => Keep::SlashesAndMarks,
            });
        }
    }
    let mut out = before.to_vec();
    for start in before {
        // Normalising proxies (Envoy's `normalize_path`, Traefik) decode only the escapes of
        // unreserved characters.
        if holds.passes > 0 {
            out.push(decode(start, Decoding::UNRESERVED)?);
        }
        for &keep in &keeps {
            for &strip in choices(holds.parameters) {
                let mut s = start.clone();
                for pass in 0..holds.passes {
                    s = decode(&s, Decoding { strict: pass == 0, keep })?;
                    if !keep.keeps(b'?')
                        && let Some(cut) = memchr::memchr2(b'?', b'#', s.as_bytes())
                    {
                        s.truncate(cut);
                    }
                    if strip {
                        s = strip_parameters(&s);
                    }
                    out.push(s.clone());
                }
            }
        }
    }
    if holds.backslashes {
        let turned: Vec<String> = out.iter().filter(|s| s.contains('\\')).map(|s| s.replace('\\', "/")).collect();
        out.extend(turned);
    }
    dedup(&mut out);
    Ok(out)
}

/// Stage 4: repeated slashes merged, dot segments removed, in either order, or both as Go's
/// `path.Clean` does, or neither.
fn after_decoding(decoded: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(decoded.len());
    for s in decoded {
        if s.contains("//") || has_dot_segment(&s) {
            let merged = merge_slashes(&s);
            let resolved = remove_dot_segments(&s);
            out.push(merge_slashes(&resolved));
            out.push(remove_dot_segments(&merged));
            out.push(clean(&s));
            out.push(merged);
            out.push(resolved);
        }
        out.push(s);
    }
    for s in &mut out {
        if s.is_empty() {
            s.push('/');
        }
    }
    dedup(&mut out);
    out
}

/// `[false]`, or `[false, true]` when the choice can change the path.
fn choices(matters: bool) -> &'static [bool] {
    if matters { &[false, true] } else { &[false] }
}

fn dedup(v: &mut Vec<String>) {
    v.sort_unstable();
    v.dedup();
}

fn has_dot_segment(path: &str) -> bool {
    path.split('/').any(|s| is_dot_segment(s.as_bytes()))
}

/// Whether `s` holds an escape (any case) of one of `bytes`.
fn has_escape_of(s: &str, bytes: &[u8]) -> bool {
    s.as_bytes().windows(3).any(|w| match w {
        [b'%', h, l] => matches!((hex(*h), hex(*l)), (Some(h), Some(l)) if bytes.contains(&(h << 4 | l))),
        _ => false,
    })
}

/// The canonical path (see `Target::canonical`).
pub(super) fn canonical(path: &str) -> Result<String, TargetError> {
    let decoded = decode(path, Decoding::CANONICAL)?;
    Ok(remove_dot_segments(&merge_slashes(&decoded)))
}

/// What a decoding pass does: whether a `%` without two hex digits is an error or stays as it
/// is, and which escapes it leaves as they are (rewritten with upper-case hex).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decoding {
    strict: bool,
    keep: Keep,
}

/// The escapes a decoding pass leaves alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    Nothing,
    /// `?` and `#`: they stay inside their segment.
    Marks,
    /// `/` and `\`: they stay inside their segment.
    Slashes,
    SlashesAndMarks,
    /// What means something to a router, and `%` so that the result decodes to itself.
    Reserved,
    /// All but unreserved characters (RFC 3986 section 6.2.2.2's normalisation).
    AllButUnreserved,
}

impl Keep {
    fn keeps(self, v: u8) -> bool {
        match self {
            Keep::Nothing => false,
            Keep::Marks => matches!(v, b'?' | b'#'),
            Keep::Slashes => matches!(v, b'/' | b'\\'),
            Keep::SlashesAndMarks => matches!(v, b'/' | b'\\' | b'?' | b'#'),
            Keep::Reserved => matches!(v, b'/' | b'\\' | b'?' | b'#' | b'%'),
            Keep::AllButUnreserved => !(v.is_ascii_alphanumeric() || matches!(v, b'-' | b'.' | b'_' | b'~')),
        }
    }
}

impl Decoding {
    const ALL: Decoding = Decoding {
        strict: true,
        keep: Keep::Nothing,
    };
    const CANONICAL: Decoding = Decoding {
        strict: true,
        keep: Keep::Reserved,
    };
    const UNRESERVED: Decoding = Decoding {
        strict: true,
        keep: Keep::AllButUnreserved,
    };

    fn lenient(self) -> Self {
        Decoding { strict: false, ..self }
    }
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

fn decode(s: &str, how: Decoding) -> Result<String, TargetError> {
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
            if how.strict {
                return Err(TargetError::BadPercentEncoding);
            }
            out.push(b'%');
            i += 1;
            continue;
        };
        let v = h << 4 | l;
        if how.keep.keeps(v) {
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

/// Go's `path.Clean` as `http.ServeMux` applies it: slashes merged, dot segments removed, and a
/// trailing slash kept only when the path ended with one.
fn clean(path: &str) -> String {
    let mut out = remove_dot_segments(&merge_slashes(path));
    if !path.ends_with('/') && out.len() > 1 && out.ends_with('/') {
        out.pop();
    }
    out
}

/// RFC 3986 section 5.2.4 on an absolute path: `.` segments go, `..` removes the segment before
/// it (never past the root), and a path ending in a dot segment keeps its trailing slash.
fn remove_dot_segments(path: &str) -> String {
    remove_dots_spelled(path, |s| is_dot_segment(s.as_bytes()).then_some(s.len() == 2))
}

/// A WHATWG URL's path: `\` taken for `/`, and dot segments removed in any escaped spelling
/// (`%2e`, `.%2E`), nothing else decoded.
fn whatwg_path(path: &str) -> String {
    let path = path.replace('\\', "/");
    remove_dots_spelled(&path, |s| match s.to_ascii_lowercase().as_str() {
        "." | "%2e" => Some(false),
        ".." | ".%2e" | "%2e." | "%2e%2e" => Some(true),
        _ => None,
    })
}

/// Dot-segment removal with `dot` telling a segment's kind: `Some(false)` for `.`,
/// `Some(true)` for `..`, `None` for any other.
fn remove_dots_spelled(path: &str, dot: impl Fn(&str) -> Option<bool>) -> String {
    let mut kept: Vec<&str> = Vec::new();
    let mut segments = path.split('/').skip(1).peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        match dot(segment) {
            Some(false) => {}
            Some(true) => {
                kept.pop();
            }
            None => {
                kept.push(segment);
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
