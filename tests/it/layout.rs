//! The layout holds: the modules of `src/` (its folders and top-level files) use each other in
//! one direction only, no file grows past about 400 lines of code, the modules most used are the
//! settings and the clock, and every `src/` path the docs name exists.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::support::repo_path;

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The module of `src/` a file belongs to: its folder, or the file itself at the top.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("a component").as_os_str().to_string_lossy();
    first.trim_end_matches(".rs").to_owned()
}

/// The modules a source text names as `crate::name`.
fn crate_uses(text: &str) -> BTreeSet<String> {
    text.match_indices("crate::")
        .filter(|(i, _)| !text[..*i].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
        .map(|(i, m)| {
            text[i + m.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

/// Who uses whom among the library's modules (`main.rs` and `lib.rs` are the roots, not modules),
/// unit tests included: a test that reaches up is a tie too.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = repo_path("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in rust_files(&src) {
        let name = file.file_name().expect("name").to_string_lossy().into_owned();
        if file.parent() == Some(src.as_path()) && (name == "main.rs" || name == "lib.rs") {
            continue;
        }
        let module = module_of(&src, &file);
        let text = std::fs::read_to_string(&file).expect("read");
        let used = graph.entry(module.clone()).or_default();
        used.extend(crate_uses(&text).into_iter().filter(|m| *m != module));
    }
    graph
}

/// A path `from -> ... -> from`, if `from` is on a circle.
fn circle_through(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    let mut stack = vec![(from.to_owned(), vec![from.to_owned()])];
    let mut seen = BTreeSet::new();
    while let Some((at, path)) = stack.pop() {
        for next in graph.get(&at).into_iter().flatten() {
            if next == from {
                let mut circle = path.clone();
                circle.push(from.to_owned());
                return Some(circle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push((next.clone(), longer));
            }
        }
    }
    None
}

#[test]
fn the_reader_finds_uses_and_circles() {
    let uses = crate_uses("use crate::settings::X;\nlet a = crate::clock::now(); // not_crate::fake\n");
    assert_eq!(uses, BTreeSet::from(["settings".to_owned(), "clock".to_owned()]));
    let graph: BTreeMap<String, BTreeSet<String>> = [("a", &["b"][..]), ("b", &["c"][..]), ("c", &["a"][..]), ("d", &["a"][..])]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.iter().map(|s| (*s).to_owned()).collect()))
        .collect();
    assert_eq!(
        circle_through(&graph, "a"),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(circle_through(&graph, "d"), None);
}

#[test]
fn no_module_uses_one_that_uses_it_back() {
    let graph = module_graph();
    assert!(graph.len() > 10, "the reader found the modules: {:?}", graph.keys());
    for module in graph.keys() {
        if let Some(circle) = circle_through(&graph, module) {
            panic!("a circle among the modules of src/: {}", circle.join(" -> "));
        }
    }
}

#[test]
fn the_most_used_modules_are_the_settings_and_the_clock() {
    let graph = module_graph();
    let mut users: BTreeMap<&str, usize> = BTreeMap::new();
    for used in graph.values() {
        for m in used {
            *users.entry(m.as_str()).or_default() += 1;
        }
    }
    let mut ranked: Vec<(&str, usize)> = users.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let top: BTreeSet<&str> = ranked.iter().take(2).map(|(m, _)| *m).collect();
    assert_eq!(top, BTreeSet::from(["settings", "clock"]), "users per module: {ranked:?}");
    let (settings, clock) = (ranked[0].1, ranked[1].1);
    assert!(
        ranked[2].1 < clock && clock <= settings,
        "settings and clock lead alone: {ranked:?}"
    );
}

/// Lines of code before a file's unit tests: not blank, not only a comment.
fn lines_of_code(text: &str) -> usize {
    text.lines()
        .take_while(|l| l.trim() != "#[cfg(test)]")
        .filter(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with("//")
        })
        .count()
}

#[test]
fn no_source_file_is_over_about_400_lines_of_code() {
    assert_eq!(lines_of_code("//! doc\n\nfn a() {}\n// note\n#[cfg(test)]\nmod tests {}\n"), 1);
    let src = repo_path("src");
    let long: Vec<String> = rust_files(&src)
        .into_iter()
        .filter_map(|f| {
            let n = lines_of_code(&std::fs::read_to_string(&f).expect("read"));
            (n > 400).then(|| format!("{} ({n})", f.strip_prefix(&src).expect("under src").display()))
        })
        .collect();
    assert!(long.is_empty(), "files over 400 lines of code: {long:?}");
}

#[test]
fn every_source_path_the_docs_name_exists() {
    let mut docs = vec![repo_path("README.md"), repo_path("ARCHITECTURE.md")];
    for entry in std::fs::read_dir(repo_path("docs")).expect("docs") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "md") {
            docs.push(path);
        }
    }
    let mut named = 0;
    let mut missing = Vec::new();
    for doc in &docs {
        let text = std::fs::read_to_string(doc).expect("read doc");
        for (i, _) in text.match_indices("`src/") {
            let Some(end) = text[i + 1..].find('`') else { continue };
            let path = &text[i + 1..i + 1 + end];
            named += 1;
            if !repo_path(path).exists() {
                missing.push(format!("{}: {path}", doc.file_name().expect("name").to_string_lossy()));
            }
        }
        // ARCHITECTURE.md names files relative to src/.
        if doc.ends_with("ARCHITECTURE.md") {
            for piece in text.split('`').skip(1).step_by(2) {
                let looks_like_source = piece.ends_with(".rs") || piece.ends_with('/');
                if looks_like_source && !piece.contains(' ') && !piece.starts_with("tests/") {
                    named += 1;
                    let in_src = if piece.starts_with("src/") {
                        repo_path(piece)
                    } else {
                        repo_path("src").join(piece)
                    };
                    let anywhere = rust_files(&repo_path("src")).iter().any(|f| f.ends_with(piece));
                    if !in_src.exists() && !anywhere {
                        missing.push(format!("ARCHITECTURE.md: {piece}"));
                    }
                }
            }
        }
    }
    assert!(named > 30, "the docs name source paths ({named} found)");
    assert!(missing.is_empty(), "paths the docs name that do not exist: {missing:?}");
}
