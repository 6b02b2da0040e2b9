//! The documentation tells the truth about the binary: every setting the binary accepts is in
//! `docs/configuration.md`, in `config.toml` (set or in a comment) and in the Helm chart's values
//! schema; and the documented snippets run (`check-config` on every TOML block of the docs, the
//! `dev` command's printed lines against `dev` itself).

use crate::support;

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;
use session_authorizer::settings::{RouteSettings, Settings};
use support::repo_path;

/// Every key the binary accepts, as `section.key` (routes as `routes.key`), from the settings type
/// itself: serialised to JSON, where an unset optional key is still present (as `null`).
fn accepted_keys() -> BTreeSet<String> {
    let mut settings = Settings::default();
    settings.routes.push(RouteSettings {
        methods: vec!["*".into()],
        path: "/**".into(),
        session: session_authorizer::settings::SessionRequirement::Optional,
        check_database: None,
        claims: Vec::new(),
        global_claims: true,
        tenants: Vec::new(),
    });
    let json = serde_json::to_value(&settings).expect("settings as JSON");
    let mut keys = BTreeSet::new();
    for (section, table) in json.as_object().expect("object") {
        let fields = match table {
            Value::Object(o) => o.clone(),
            Value::Array(routes) => routes[0].as_object().expect("route").clone(),
            _ => continue,
        };
        for (key, value) in &fields {
            // A table inside a section (`[server.tls]`): each of its keys.
            match value {
                Value::Object(inner) => keys.extend(inner.keys().map(|leaf| format!("{section}.{key}.{leaf}"))),
                _ => {
                    keys.insert(format!("{section}.{key}"));
                }
            }
        }
    }
    keys
}

/// The text of `doc` under the heading that names `section` (up to the next `## `).
fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let start = doc.find(heading).unwrap_or_else(|| panic!("no heading {heading}"));
    let rest = &doc[start + heading.len()..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

#[test]
fn every_setting_is_documented_in_the_guide_the_default_file_and_the_chart() {
    let keys = accepted_keys();
    assert!(keys.len() > 40, "{keys:?}");
    let guide = std::fs::read_to_string(repo_path("docs/configuration.md")).expect("guide");
    let default_file = std::fs::read_to_string(repo_path("config.toml")).expect("config.toml");
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(repo_path("helm/session-authorizer/values.schema.json")).expect("schema"))
            .expect("schema JSON");
    let chart = &schema["properties"]["config"]["properties"];
    let mut missing = Vec::new();
    for key in &keys {
        let (section_name, rest) = key.split_once('.').expect("dotted");
        // `server.tls.cert_file`: the row `tls.cert_file` under `[server]`, the key `cert_file`
        // in the file's `[server.tls]`.
        let (table_name, leaf) = match rest.split_once('.') {
            Some((sub, leaf)) => (format!("{section_name}.{sub}"), leaf),
            None => (section_name.to_owned(), rest),
        };
        let heading = if section_name == "routes" {
            "## `[[routes]]`".to_owned()
        } else {
            format!("## `[{section_name}]`")
        };
        if !section(&guide, &heading).contains(&format!("| `{rest}` |")) {
            missing.push(format!("docs/configuration.md, {heading}: `{rest}`"));
        }
        // In the default file: set, or shown in a comment, inside its table.
        let table = if section_name == "routes" {
            "[[routes]]".to_owned()
        } else {
            format!("[{table_name}]")
        };
        let start = default_file.find(&format!("\n{table}")).map(|i| i + 1);
        let body = start.map(|s| {
            let rest = &default_file[s + table.len()..];
            let end = rest
                .lines()
                .scan(0, |at, l| {
                    let here = *at;
                    *at += l.len() + 1;
                    Some((here, l))
                })
                .find(|(_, l)| l.starts_with('['))
                .map_or(rest.len(), |(i, _)| i);
            &rest[..end]
        });
        let in_file = body.is_some_and(|b| {
            b.lines().any(|l| {
                let l = l.trim_start_matches(['#', ' ']);
                l.starts_with(&format!("{leaf} =")) || l.starts_with(&format!("{leaf}="))
            })
        });
        if !in_file {
            missing.push(format!("config.toml, {table}: `{leaf}`"));
        }
        // In the chart's values schema, but for what the chart sets itself.
        // The listeners come from `ports`, the api key from a Secret, TLS from `tls.secretName`.
        let from_chart_itself = matches!(
            key.as_str(),
            "server.http_listen" | "server.grpc_listen" | "supertokens.api_key" | "assertion.key_file"
        ) || key.starts_with("server.tls.");
        let in_schema = if section_name == "routes" {
            !chart["routes"]["items"]["properties"][leaf].is_null()
        } else if let Some((sub, leaf)) = rest.split_once('.') {
            !chart[section_name]["properties"][sub]["properties"][leaf].is_null()
        } else {
            !chart[section_name]["properties"][leaf].is_null()
        };
        if !from_chart_itself && !in_schema {
            missing.push(format!("helm values.schema.json, config.{section_name}: `{leaf}`"));
        }
    }
    assert!(
        missing.is_empty(),
        "{} settings undocumented:\n{}",
        missing.len(),
        missing.join("\n")
    );
}

/// Every TOML block of the docs that is a configuration (it names a known section) passes
/// `check-config`, so no documented snippet is refused by the binary.
#[test]
fn every_documented_configuration_snippet_passes_check_config() {
    let dir = std::env::temp_dir().join(format!("session-authorizer-docs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut checked = 0;
    let mut refused = Vec::new();
    let docs = [
        "README.md",
        "docs/configuration.md",
        "docs/core.md",
        "docs/proxies.md",
        "docs/lambda.md",
        "docs/security.md",
    ];
    for doc in docs {
        let text = std::fs::read_to_string(repo_path(doc)).expect("doc");
        for (i, block) in text.split("```toml\n").skip(1).enumerate() {
            let block = &block[..block.find("```").expect("closed block")];
            let file = dir.join(format!("{}-{i}.toml", doc.replace('/', "-")));
            std::fs::write(&file, block).expect("write");
            let out = Command::new(env!("CARGO_BIN_EXE_session-authorizer"))
                .args(["check-config", "--config"])
                .arg(&file)
                .env_clear()
                .output()
                .expect("check-config");
            checked += 1;
            if !out.status.success() {
                refused.push(format!(
                    "{doc}, TOML block {}: {}\n{block}",
                    i + 1,
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(checked >= 3, "only {checked} TOML blocks found");
    assert!(refused.is_empty(), "{}", refused.join("\n"));
}

/// A bad setting is reported with its dotted key, what is wrong (the allowed values, the key
/// meant) and where it was set.
#[test]
fn config_errors_name_the_key_the_value_and_the_place() {
    let dir = std::env::temp_dir().join(format!("session-authorizer-config-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let check = |name: &str, text: &str, env: &[(&str, &str)]| {
        let file = dir.join(name);
        std::fs::write(&file, text).expect("write");
        let out = Command::new(env!("CARGO_BIN_EXE_session-authorizer"))
            .current_dir(&dir)
            .args(["check-config", "--config", name])
            .env_clear()
            .envs(env.iter().copied())
            .output()
            .expect("check-config");
        assert_eq!(out.status.code(), Some(1), "{name}");
        String::from_utf8_lossy(&out.stderr).trim().to_owned()
    };
    let typo = check(
        "typo-key.toml",
        "[server]\nlog_format = \"json\"\n\n[supertokens]\nanti_csfr = \"NONE\"\n",
        &[],
    );
    assert!(
        typo.starts_with("error: invalid configuration: `supertokens.anti_csfr` (typo-key.toml, line 5): unknown key `anti_csfr`; did you mean `anti_csrf`? [supertokens] takes: connection_uri,"),
        "{typo}"
    );
    let variant = check("bad-value.toml", "[supertokens]\nanti_csrf = \"SOMETIMES\"\n", &[]);
    assert_eq!(
        variant,
        "error: invalid configuration: `supertokens.anti_csrf` (bad-value.toml, line 2): `SOMETIMES` is not one of AUTO, NONE, VIA_TOKEN, VIA_CUSTOM_HEADER"
    );
    let route = check(
        "bad-route.toml",
        "[[routes]]\npath = \"/a\"\n\n[[routes]]\npath = \"/b\"\nsession = \"maybe\"\n",
        &[],
    );
    assert_eq!(
        route,
        "error: invalid configuration: `routes[1].session` (bad-route.toml, line 6): `maybe` is not one of optional, required, public"
    );
    let rule = check("bad-rule.toml", "[supertokens]\n\ncore_timeout_ms = 0\n", &[]);
    assert_eq!(
        rule,
        "error: invalid configuration: `supertokens.core_timeout_ms` (bad-rule.toml, line 3): must be above 0"
    );
    let env = check(
        "fine.toml",
        "[server]\nlog_format = \"json\"\n",
        &[("SESSION_AUTHORIZER__SERVER__LOG_FORMAT", "xml")],
    );
    assert_eq!(
        env,
        "error: invalid configuration: `server.log_format` (from SESSION_AUTHORIZER__SERVER__LOG_FORMAT): `xml` is not one of json, text"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The `check-config` commands the docs show run as shown, from the repository's root.
#[test]
fn documented_check_config_commands_run() {
    let mut ran = 0;
    for doc in ["README.md", "docs/configuration.md", "docs/core.md", "docs/deploy.md"] {
        let text = std::fs::read_to_string(repo_path(doc)).expect("doc");
        for block in text.split("```sh\n").skip(1) {
            let block = &block[..block.find("```").expect("closed block")];
            for line in block.lines() {
                let command = line.split('#').next().unwrap_or_default().trim();
                let Some(args) = command
                    .strip_prefix("./target/release/session-authorizer ")
                    .or_else(|| command.strip_prefix("session-authorizer "))
                else {
                    continue;
                };
                if !args.contains("check-config") || !args.contains("config.toml") {
                    continue;
                }
                let out = Command::new(env!("CARGO_BIN_EXE_session-authorizer"))
                    .current_dir(repo_path(""))
                    .args(args.split_whitespace())
                    .env_clear()
                    .output()
                    .expect("check-config");
                ran += 1;
                assert!(out.status.success(), "{doc}: `{command}`: {}", String::from_utf8_lossy(&out.stderr));
                assert!(String::from_utf8_lossy(&out.stdout).contains("[supertokens]"), "{doc}: `{command}`");
            }
        }
    }
    assert!(ran >= 2, "only {ran} documented check-config commands found");
}

/// Performance figures (µs, req/s, decimal milliseconds, cold starts) are measured in one place,
/// `bench/RESULTS.md`: a doc that quotes one says where it comes from in the same paragraph.
#[test]
fn performance_figures_in_the_docs_point_at_the_results() {
    let figure = |line: &str| {
        let words: Vec<&str> = line.split_whitespace().collect();
        words.windows(2).any(|w| {
            let number = w[0].trim_start_matches(['(', '*', '~']);
            let is_number = number.chars().next().is_some_and(|c| c.is_ascii_digit())
                && number.chars().all(|c| c.is_ascii_digit() || matches!(c, '.' | ','));
            let unit = w[1].trim_end_matches([',', '.', ';', ')', '*', ':']);
            is_number && (unit == "µs" || unit == "req/s" || (unit == "ms" && number.contains('.')))
        }) || (line.contains("cold start of") && line.contains(" ms"))
    };
    let mut unsourced = Vec::new();
    let docs = std::fs::read_dir(repo_path("docs"))
        .expect("docs")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"));
    for path in docs {
        let text = std::fs::read_to_string(&path).expect("doc");
        for paragraph in text.split("\n\n") {
            if paragraph.lines().any(figure) && !paragraph.contains("bench/RESULTS.md") {
                unsourced.push(format!("{}: {}", path.display(), paragraph.trim()));
            }
        }
    }
    assert!(unsourced.is_empty(), "figures without their source:\n{}", unsourced.join("\n---\n"));
}
