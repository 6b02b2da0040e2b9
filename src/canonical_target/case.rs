//! Case folding as case-insensitive routers compare paths.

use std::borrow::Cow;

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
