//! Configuration errors as an operator reads them: the dotted key, what is wrong with its value
//! (the allowed values, the key meant), and where it was set (the file and line, or the
//! environment variable).

use std::path::Path;

use figment::error::Kind;

/// Prefix of every environment override; `__` separates the section from the key.
pub const ENV_PREFIX: &str = "SESSION_AUTHORIZER__";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file is not TOML, or cannot be read.
    #[error("cannot read configuration: {0}")]
    Load(String),
    /// A key's value is refused; `origin` is ` (FILE, line N)` or ` (from VARIABLE)` when known.
    #[error("invalid configuration: `{key}`{origin}: {message}")]
    Invalid { key: String, message: String, origin: String },
    #[error("configuration file `{0}` does not exist")]
    Missing(String),
}

impl ConfigError {
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
            origin: String::new(),
        }
    }

    /// Says where a refused key was set: its environment variable when there is one, else its
    /// line in `file`.
    pub fn located(self, file: Option<&Path>) -> Self {
        match self {
            Self::Invalid { key, message, origin } if origin.is_empty() => {
                let names: Vec<&str> = key
                    .split(['.', '['])
                    .filter(|s| !s.ends_with(']') && !s.is_empty())
                    .take(2)
                    .collect();
                let var = format!("{ENV_PREFIX}{}", names.join("__").to_ascii_uppercase());
                let origin = if std::env::var_os(&var).is_some() {
                    format!(" (from {var})")
                } else {
                    file.map(|f| origin_in_file(f, &key)).unwrap_or_default()
                };
                Self::Invalid { key, message, origin }
            }
            other => other,
        }
    }
}

/// A figment error (the first of them), named by key and place.
pub fn from_figment(err: figment::Error) -> ConfigError {
    let Some(err) = err.into_iter().next() else {
        return ConfigError::Load("unknown error".into());
    };
    let mut path: Vec<String> = err.path.clone();
    if path.first().is_some_and(|p| p == "default") {
        path.remove(0);
    }
    if path.is_empty() {
        // Not about one key: the file itself (TOML syntax) or the whole document.
        return ConfigError::Load(err.to_string());
    }
    let from_env = err.metadata.as_ref().is_some_and(|m| m.name.contains(ENV_PREFIX));
    let path: Vec<String> = if from_env {
        path.iter().map(|p| p.to_ascii_lowercase()).collect()
    } else {
        path
    };
    let key = dotted(&path);
    let message = match &err.kind {
        Kind::UnknownField(found, expected) => unknown_key(found, expected, &path),
        Kind::UnknownVariant(found, expected) => format!("`{found}` is not one of {}", expected.join(", ")),
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            format!("expected {expected}, found {actual}")
        }
        Kind::MissingField(field) => format!("`{field}` is missing"),
        Kind::DuplicateField(field) => format!("`{field}` is given twice"),
        other => other.to_string(),
    };
    // A key from the file is placed by the caller, which knows the file's name as given.
    let origin = if from_env {
        format!(" (from {})", env_var(&path))
    } else {
        String::new()
    };
    ConfigError::Invalid { key, message, origin }
}

/// `routes[0].session` from `["routes", "0", "session"]`.
fn dotted(path: &[String]) -> String {
    let mut out = String::new();
    for p in path {
        if p.parse::<usize>().is_ok() {
            out.push_str(&format!("[{p}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(p);
        }
    }
    out
}

fn env_var(path: &[String]) -> String {
    let keys: Vec<String> = path
        .iter()
        .filter(|p| p.parse::<usize>().is_err())
        .map(|p| p.to_ascii_uppercase())
        .collect();
    format!("{ENV_PREFIX}{}", keys.join("__"))
}

/// An unknown key: the nearest accepted one when it is a likely typo, and the accepted ones.
fn unknown_key(found: &str, expected: &[&str], path: &[String]) -> String {
    let table = path
        .iter()
        .rev()
        .skip(1)
        .find(|p| p.parse::<usize>().is_err())
        .map_or_else(|| "the top level".to_owned(), |t| format!("[{t}]"));
    let nearest = expected
        .iter()
        .map(|e| (strsim::levenshtein(found, e), e))
        .filter(|(d, e)| *d <= 2.max(e.len() / 4))
        .min_by_key(|(d, _)| *d);
    let hint = nearest.map(|(_, e)| format!("; did you mean `{e}`?")).unwrap_or_default();
    format!("unknown key `{found}`{hint} {table} takes: {}", expected.join(", "))
}

/// ` (FILE, line N)` for a key set in `file`, or ` (FILE)` when the line cannot be found.
fn origin_in_file(file: &Path, key: &str) -> String {
    let name = file.display();
    match std::fs::read_to_string(file).ok().and_then(|text| line_of(&text, key)) {
        Some(line) => format!(" ({name}, line {line})"),
        None => format!(" ({name})"),
    }
}

/// The line (from 1) where `key` (`a.b`, `routes[2].c`) is set in a TOML text, or where its
/// nearest enclosing table starts.
pub fn line_of(text: &str, key: &str) -> Option<usize> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    let mut start: Option<usize> = None;
    let mut item: Option<&toml_edit::Item> = None;
    let mut table: Option<&dyn toml_edit::TableLike> = Some(doc.as_table());
    for part in segments(key) {
        match part {
            Segment::Key(k) => {
                let (found_key, found_item) = table?.get_key_value(k)?;
                start = found_key.span().map(|s| s.start).or(start);
                item = Some(found_item);
                table = found_item.as_table_like();
            }
            Segment::Index(i) => {
                let current = item?;
                if let Some(t) = current.as_array_of_tables().and_then(|aot| aot.get(i)) {
                    start = t.span().map(|s| s.start).or(start);
                    table = Some(t);
                } else if let Some(t) = current.as_array().and_then(|a| a.get(i)).and_then(|v| v.as_inline_table()) {
                    start = t.span().map(|s| s.start).or(start);
                    table = Some(t);
                } else {
                    table = None;
                }
            }
        }
    }
    Some(text.get(..start?)?.matches('\n').count() + 1)
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn segments(key: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in key.split('.') {
        let (name, indexes) = part.split_once('[').map_or((part, ""), |(n, rest)| (n, rest));
        if !name.is_empty() {
            out.push(Segment::Key(name));
        }
        for index in indexes.split('[') {
            if let Ok(i) = index.trim_end_matches(']').parse() {
                out.push(Segment::Index(i));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "[server]\nlog_format = \"json\"\n\n[supertokens]\nanti_csrf = \"NONE\"\n\n[[routes]]\npath = \"/a\"\n\n[[routes]]\npath = \"/b\"\nclaims = [{ claim = \"st-role\", includes = \"admin\" }]\n";

    #[test]
    fn keys_are_found_on_their_line() {
        assert_eq!(line_of(FILE, "server.log_format"), Some(2));
        assert_eq!(line_of(FILE, "supertokens.anti_csrf"), Some(5));
        assert_eq!(line_of(FILE, "routes[1].path"), Some(11));
        assert_eq!(line_of(FILE, "routes[1].claims[0].includes"), Some(12));
        assert_eq!(line_of(FILE, "routes[0]"), Some(7));
        assert_eq!(line_of(FILE, "supertokens.api_key"), None);
        assert_eq!(line_of("not = [toml", "a"), None);
    }

    #[test]
    fn typos_get_the_key_meant() {
        let path = ["supertokens".to_owned(), "anti_csfr".to_owned()];
        let m = unknown_key("anti_csfr", &["connection_uri", "anti_csrf", "api_key"], &path);
        assert!(
            m.starts_with("unknown key `anti_csfr`; did you mean `anti_csrf`? [supertokens] takes: "),
            "{m}"
        );
        let m = unknown_key("zzz", &["connection_uri", "anti_csrf"], &path);
        assert!(!m.contains("did you mean"), "{m}");
        assert_eq!(dotted(&["routes".into(), "0".into(), "session".into()]), "routes[0].session");
        assert_eq!(
            env_var(&["supertokens".into(), "anti_csrf".into()]),
            "SESSION_AUTHORIZER__SUPERTOKENS__ANTI_CSRF"
        );
    }
}
