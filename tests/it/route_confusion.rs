//! Route confusion: the request the authorizer judges is the request the backend serves.
//!
//! A corpus of confusable spellings of protected paths (escapes, double escapes, dot segments,
//! repeated slashes, `;` parameters, backslashes, case, control bytes, broken or overlong
//! escapes, alone and combined) goes through every front door directly and through the five real
//! proxies started from `examples/`, with a session that lacks the route's claim and with none.
//! Models of how common backends read a path (written here, apart from `src/request_target/`) say which
//! route each target reaches; no target a backend would route to a protected path may be allowed
//! or reach the backend unless the session satisfies that route. Spoofed forwarding headers,
//! identity-header look-alikes and split `Cookie` lines go through the same doors. A property
//! test holds the canonicaliser to the same models.

use crate::support;

use std::collections::HashMap;

use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use proptest::prelude::*;
use serde_json::{Value, json};
use session_authorizer::canonical_target::canonicalise;
use session_authorizer::policy::Policy;
use session_authorizer::settings::Settings;
use support::proxies::{self, Proxy, RecordingBackend, raw_request};
use support::{Service, StubCore, free_port, rest_event, settings};

/// The gateway suites' routes, and a method-specific one for method overrides to meet.
fn config() -> String {
    format!(
        "{}{}",
        proxies::GATEWAY_CONFIG,
        "\n[[routes]]\nmethods = [\"DELETE\"]\npath = \"/items/*\"\nsession = \"required\"\nclaims = [{ claim = \"st-role\", includes = \"admin\" }]\n"
    )
}

/// What a request must carry to be served on a path, by `config()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Need {
    Nothing,
    Session,
    Admin,
}

/// The sessions the corpus is sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    User,
    Admin,
}

impl Who {
    fn has(self, need: Need) -> bool {
        match need {
            Need::Nothing => true,
            Need::Session => self != Who::Anonymous,
            Need::Admin => self == Who::Admin,
        }
    }
}

/// How common backends read a request target, written apart from the authorizer's own code.
mod backends {
    /// A path as one backend routes it.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Reading {
        pub backend: &'static str,
        pub path: String,
        pub case_insensitive: bool,
    }

    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }

    /// Percent-decodes `s`; `None` when an escape is broken (such backends answer 400).
    /// `keep` lists decoded bytes left escaped (ASP.NET Core keeps `%2F`).
    fn decode(s: &str, keep: &[u8]) -> Option<String> {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                let v = hex(*b.get(i + 1)?)? * 16 + hex(*b.get(i + 2)?)?;
                if keep.contains(&v) {
                    out.extend_from_slice(&b[i..i + 3]);
                } else {
                    out.push(v);
                }
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        String::from_utf8(out).ok()
    }

    /// RFC 3986 percent-decoding of unreserved characters only (Envoy's `normalize_path`,
    /// Traefik's sanitising).
    fn decode_unreserved(s: &str) -> Option<String> {
        let b = s.as_bytes();
        let mut out = String::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                let v = hex(*b.get(i + 1)?)? * 16 + hex(*b.get(i + 2)?)?;
                if v.is_ascii_alphanumeric() || b"-._~".contains(&v) {
                    out.push(v as char);
                } else {
                    out.push_str(&s[i..i + 3]);
                }
                i += 3;
            } else {
                let c = s[i..].chars().next()?;
                out.push(c);
                i += c.len_utf8();
            }
        }
        Some(out)
    }

    fn merge_slashes(s: &str) -> String {
        let mut out = String::new();
        let mut last_slash = false;
        for c in s.chars() {
            if c == '/' && last_slash {
                continue;
            }
            last_slash = c == '/';
            out.push(c);
        }
        out
    }

    /// Dot segments resolved over a stack of segments (a trailing dot segment leaves a `/`).
    fn resolve_dots(s: &str) -> String {
        let mut stack: Vec<&str> = Vec::new();
        let segs: Vec<&str> = s.split('/').collect();
        let n = segs.len();
        for (i, seg) in segs.iter().enumerate().skip(1) {
            let last = i + 1 == n;
            match *seg {
                "." | ".." => {
                    if *seg == ".." {
                        stack.pop();
                    }
                    if last {
                        stack.push("");
                    }
                }
                other => stack.push(other),
            }
        }
        format!("/{}", stack.join("/"))
    }

    /// Go's `path.Clean` as `http.ServeMux` applies it (a trailing slash kept only when the
    /// path had one).
    fn go_clean(s: &str) -> String {
        let mut parts: Vec<&str> = Vec::new();
        for seg in s.split('/') {
            match seg {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                other => parts.push(other),
            }
        }
        let mut out = format!("/{}", parts.join("/"));
        if s.ends_with('/') && out != "/" {
            out.push('/');
        }
        out
    }

    /// Tomcat's path parameters: `;` to the end of each segment goes.
    fn strip_parameters(s: &str) -> String {
        s.split('/')
            .map(|seg| seg.split(';').next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("/")
    }

    /// The WHATWG URL parser's path (Node's `new URL`, Deno, Bun, Hono, undici): `\\` is `/`,
    /// `.` and `..` segments are removed in any escaped spelling (`%2e`, `.%2E`), no other escape
    /// is decoded, repeated slashes stay.
    fn whatwg(s: &str) -> String {
        let single = |seg: &str| seg == "." || seg.eq_ignore_ascii_case("%2e");
        let double = |seg: &str| {
            let l = seg.to_ascii_lowercase();
            ["..", ".%2e", "%2e.", "%2e%2e"].contains(&l.as_str())
        };
        let s = s.replace('\\', "/");
        let segs: Vec<&str> = s.split('/').skip(1).collect();
        let mut out: Vec<&str> = Vec::new();
        for (i, seg) in segs.iter().enumerate() {
            let last = i + 1 == segs.len();
            if double(seg) {
                out.pop();
                if last {
                    out.push("");
                }
            } else if single(seg) {
                if last {
                    out.push("");
                }
            } else {
                out.push(seg);
            }
        }
        format!("/{}", out.join("/"))
    }

    fn path_of(target: &str) -> &str {
        target.split(['?', '#']).next().unwrap_or("")
    }

    /// Every way these backends read `target`.
    pub fn readings(target: &str) -> Vec<Reading> {
        let raw = path_of(target);
        let mut out = Vec::new();
        let mut add = |backend: &'static str, path: Option<String>, case_insensitive: bool| {
            if let Some(path) = path {
                out.push(Reading {
                    backend,
                    path: if path.is_empty() { "/".into() } else { path },
                    case_insensitive,
                });
            }
        };
        // Express (and Koa): routes the raw path, case-insensitively by default.
        add("express", Some(raw.to_owned()), true);
        // Fastify and Rails: the raw path, case-sensitively.
        add("fastify", Some(raw.to_owned()), false);
        // Routers that take the path from a WHATWG URL (Hono, Bun, Deno).
        add("whatwg-url", Some(whatwg(raw)), false);
        // Spring MVC on Tomcat: `;` parameters dropped, decoded, slashes merged, dots resolved.
        add(
            "tomcat",
            decode(&strip_parameters(raw), &[]).map(|d| resolve_dots(&merge_slashes(&strip_parameters(&d)))),
            false,
        );
        // Go: URL.Path is decoded (`%2F` too); chi and gorilla route it as it is, ServeMux cleans it.
        add("go-chi", decode(raw, &[]).map(|d| path_of(&d).to_owned()), false);
        add("go-servemux", decode(raw, &[]).map(|d| go_clean(&d)), false);
        // ASP.NET Core (Kestrel): decoded but for `%2F`, dots resolved, routes case-insensitively.
        add("aspnet-core", decode(raw, b"/").map(|d| resolve_dots(&d)), true);
        // Flask/Werkzeug and Django: the decoded path as it is.
        add("werkzeug", decode(raw, &[]), false);
        // Python's http.server: leading slashes merged (its open-redirect fix), decoded.
        add(
            "http.server",
            decode(raw, &[]).map(|d| format!("/{}", d.trim_start_matches('/'))),
            false,
        );
        // IIS and apps that decode what their framework already decoded: twice, `\` for `/`,
        // dots resolved, case-insensitive.
        add(
            "double-decoding",
            decode(raw, &[])
                .and_then(|d| decode(&d, &[]))
                .map(|d| resolve_dots(&d.replace('\\', "/"))),
            true,
        );
        // NGINX serving files ($uri): decoded, slashes merged, dots resolved.
        add("nginx", decode(raw, &[]).map(|d| resolve_dots(&merge_slashes(&d))), false);
        // Behind a normalising proxy (Envoy normalize_path, Traefik): unreserved escapes
        // decoded, `\` for `/`, slashes merged, dots resolved.
        add(
            "rfc3986",
            decode_unreserved(&raw.replace('\\', "/")).map(|d| resolve_dots(&merge_slashes(&d))),
            false,
        );
        out
    }

    /// Case folding as a case-insensitive router compares: lower case, and the letters that
    /// Java and .NET take for ASCII ones.
    pub fn fold(s: &str) -> String {
        s.chars()
            .flat_map(|c| match c {
                '\u{131}' | '\u{130}' => vec!['i'],
                '\u{17f}' => vec!['s'],
                '\u{212a}' => vec!['k'],
                c => c.to_lowercase().collect(),
            })
            .collect()
    }
}

/// Which `config()` route a backend's reading reaches (`*` one segment, `**` any).
fn model_route(path: &str, case_insensitive: bool, method: &str) -> &'static str {
    let p = if case_insensitive { backends::fold(path) } else { path.to_owned() };
    if p.starts_with("/admin/") {
        "/admin/**"
    } else if p.starts_with("/private/") {
        "/private/**"
    } else if method == "DELETE" && p.starts_with("/items/") && p.len() > "/items/".len() && !p["/items/".len()..].contains('/') {
        "/items/*"
    } else {
        "/**"
    }
}

fn need_of(route: &str) -> Need {
    match route {
        "/admin/**" | "/items/*" => Need::Admin,
        "/private/**" => Need::Session,
        _ => Need::Nothing,
    }
}

/// The most any backend needs to serve `target`.
fn most_needed(target: &str) -> Need {
    backends::readings(target)
        .iter()
        .map(|r| need_of(model_route(&r.path, r.case_insensitive, "GET")))
        .max()
        .unwrap_or(Need::Nothing)
}

/// Confusable spellings of `/admin/users` and `/private/x`, every class alone and combined.
fn corpus() -> Vec<String> {
    let admin = [
        "//admin/users",
        "/admin//users",
        "///admin/users",
        "/./admin/users",
        "/admin/./users",
        "/x/../admin/users",
        "/admin/x/../users",
        "/../admin/users",
        "/%61dmin/users",
        "/%41dmin/users",
        "/adm%69n/users",
        "/admin/%75sers",
        "/admin/%55sers",
        "/admin%2Fusers",
        "/admin%2fusers",
        "/%2Fadmin/users",
        "/admin%5Cusers",
        "/admin%5cusers",
        "/admin\\users",
        "/admin;x/users",
        "/admin;/users",
        "/admin/users;jsessionid=1",
        "/x/..;/admin/users",
        "/admin%3Bx/users",
        "/%2e%2e/admin/users",
        "/x/%2e%2e/admin/users",
        "/x/%2E%2E/admin/users",
        "/x/.%2e/admin/users",
        "/x/%2e./admin/users",
        "/admin/%2e/users",
        "/x/..%2Fadmin/users",
        "/x/..%2fadmin/users",
        "/x/..%5Cadmin/users",
        "/x/..\\admin/users",
        "/admin%252Fusers",
        "/admin%252fusers",
        "/%2561dmin/users",
        "/x/%252e%252e/admin/users",
        "/x/%25%32%65%25%32%65/admin/users",
        "/ADMIN/users",
        "/Admin/Users",
        "/aDmIn/users",
        "/adm%C4%B1n/users",
        "/adm\u{131}n/users",
        "/admin/users%00",
        "/admin%00/users",
        "/admin/users%0a",
        "/admin/users%0D%0A",
        "/admin%zz/users",
        "/admin%/users",
        "/admin/users%2",
        "/%c0%ae%c0%ae/admin/users",
        "/x/%c0%af../admin/users",
        "/admin/users%3F.css",
        "/admin/users%23x",
        "/admin%3Fx/users",
        "//x/../admin/users",
        "/X/../%41DMIN;a/./users",
        "/./x/.././%61dmin//users",
        "/%2e%2e%2fadmin/users",
        "/admin;a/x%2F..%2Fusers",
        "/items/../%2561dmin%252Fusers",
        // Under the SDK's own routes, which pass without a session check.
        "/auth/../admin/users",
        "/auth/%2e%2e/admin/users",
        "/auth/..%2Fadmin/users",
        "/auth%2F..%2Fadmin/users",
        "/auth/session/..;/..;/admin/users",
        "/AUTH/../ADMIN/users",
    ];
    let private = [
        "//private/x",
        "/x/../private/x",
        "/%70rivate/x",
        "/PRIVATE/x",
        "/private;a/x",
        "/private%2Fx",
        "/private%5Cx",
        "/x/%2e%2e/private/x",
        "/%2570rivate/x",
        "/pr%C4%B1vate/x",
    ];
    admin.iter().chain(private.iter()).map(|s| s.to_string()).collect()
}

/// Ordinary paths: allowed for a signed-in user and reaching the backend as they were sent.
const ORDINARY: [&str; 6] = [
    "/items",
    "/items/1?sort=a,b&next=%2Fadmin%2Fusers",
    "/items/a.b-c_d~e",
    "/items/caf%C3%A9",
    "/items/with%20space",
    "/docs/v1.2/",
];

struct Sessions {
    user: String,
    admin: String,
}

impl Sessions {
    fn mint(core: &StubCore) -> Self {
        Self {
            user: support::role_token(core, &["user"], 3600, "rc-user", false),
            admin: support::role_token(core, &["admin"], 3600, "rc-admin", false),
        }
    }

    fn cookie(&self, who: Who) -> Option<String> {
        match who {
            Who::Anonymous => None,
            Who::User => Some(format!("sAccessToken={}", self.user)),
            Who::Admin => Some(format!("sAccessToken={}", self.admin)),
        }
    }
}

fn the_corpus_is_worth_sending(corpus: &[String]) {
    let confusable = corpus.iter().filter(|t| most_needed(t) > Need::Nothing).count();
    assert!(
        corpus.len() >= 40 && confusable >= 40,
        "{confusable} of {} spellings reach a protected route",
        corpus.len()
    );
}

// ------------------------------------------------------------------------------------------
// Straight at each front door

/// Whether a front door allowed `method target` with `who`'s session and `extra` headers.
struct Doors {
    svc: Service,
    sessions: Sessions,
    http: reqwest::Client,
}

impl Doors {
    async fn start() -> (StubCore, Self) {
        let core = StubCore::start().await;
        let svc = Service::start(settings(&core.uri(), &config())).await;
        let sessions = Sessions::mint(&core);
        (
            core,
            Self {
                svc,
                sessions,
                http: reqwest::Client::new(),
            },
        )
    }

    fn headers(&self, who: Who, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut h: Vec<(String, String)> = extra.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        if let Some(c) = self.sessions.cookie(who) {
            h.push(("cookie".into(), c));
        }
        h
    }

    /// (door, allowed) for every front door.
    async fn allowed(&self, method: &str, target: &str, who: Who, extra: &[(&str, &str)]) -> Vec<(&'static str, bool)> {
        let headers = self.headers(who, extra);
        let mut out = Vec::new();
        // Envoy HTTP service: the target after the prefix, byte for byte.
        let mut req = format!("{method} /ext-authz{target} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n");
        for (k, v) in &headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let a = raw_request(self.svc.addr.port(), req.as_bytes()).await;
        out.push(("ext-authz", a.status == 200));
        // forward-auth: the target in the trusted header (any bytes a header may carry).
        let mut req = format!(
            "GET /forward-auth HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\nx-original-method: {method}\r\nx-original-uri: {target}\r\n"
        );
        for (k, v) in &headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let a = raw_request(self.svc.addr.port(), req.as_bytes()).await;
        out.push(("forward-auth", a.status == 200));
        // gRPC Check.
        let pairs: Vec<(&str, String)> = headers.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let check = support::grpc_check(self.svc.grpc_addr, method, target, &pairs).await;
        out.push(("grpc", matches!(check.http_response, Some(HttpResponse::OkResponse(_)))));
        // Lambda REST REQUEST event, the target as its path.
        let (status, body) = self.svc.authorize(&rest_event(method, target, &pairs)).await;
        out.push((
            "lambda-rest",
            status == 200 && body["policyDocument"]["Statement"][0]["Effect"] == "Allow",
        ));
        // HTTP API 2.0, the target as rawPath and rawQueryString.
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut h = serde_json::Map::new();
        for (k, v) in &pairs {
            h.insert(k.to_string(), json!(v));
        }
        let event = json!({
            "version": "2.0",
            "type": "REQUEST",
            "routeArn": format!("arn:aws:execute-api:us-east-1:123456789012:api/$default/{method}{path}"),
            "rawPath": path,
            "rawQueryString": query,
            "headers": h,
            "requestContext": { "http": { "method": method, "path": path } },
        });
        let (status, body) = self.svc.authorize(&event).await;
        out.push(("lambda-http-api", status == 200 && body["isAuthorized"] == true));
        out
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_front_door_allows_a_confusable_spelling_of_a_protected_path() {
    let (_core, doors) = Doors::start().await;
    let corpus = corpus();
    the_corpus_is_worth_sending(&corpus);
    let mut failures = Vec::new();
    for target in &corpus {
        let need = most_needed(target);
        for who in [Who::User, Who::Anonymous] {
            for (door, allowed) in doors.allowed("GET", target, who, &[]).await {
                if allowed && !who.has(need) {
                    failures.push(format!(
                        "{door}: {target:?} allowed for {who:?} (a backend routes it as needing {need:?})"
                    ));
                }
            }
        }
    }
    // The plain spellings are judged as ever: refused without the claim, allowed with it.
    for (target, who, want) in [
        ("/admin/users", Who::User, false),
        ("/admin/users", Who::Admin, true),
        ("/private/x", Who::Anonymous, false),
        ("/private/x", Who::User, true),
    ] {
        for (door, allowed) in doors.allowed("GET", target, who, &[]).await {
            if allowed != want {
                failures.push(format!("{door}: {target} for {who:?}: allowed {allowed}, want {want}"));
            }
        }
    }
    for target in ORDINARY {
        for (door, allowed) in doors.allowed("GET", target, Who::User, &[]).await {
            if !allowed {
                failures.push(format!("{door}: ordinary {target} refused"));
            }
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

/// Forwarding headers a client may send to make the authorizer judge another request.
const SPOOFED: [(&str, &str); 10] = [
    ("x-forwarded-uri", "/items"),
    ("x-forwarded-method", "OPTIONS"),
    ("x-forwarded-prefix", "/items"),
    ("x-original-url", "http://localhost/items"),
    ("x-original-uri", "/items"),
    ("x-original-method", "OPTIONS"),
    ("x-envoy-original-path", "/items"),
    ("x-rewrite-url", "/items"),
    ("x-http-method-override", "OPTIONS"),
    ("x-http-method-override", "GET"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spoofed_forwarding_headers_never_change_a_decision_at_any_door() {
    let (_core, doors) = Doors::start().await;
    let mut failures = Vec::new();
    for (name, value) in SPOOFED {
        // `/forward-auth` takes the method and URI only from its trusted pair; a spoofed copy
        // of that pair would be a second value of it, refused there.
        let extra = [(name, value), ("access-control-request-method", "GET")];
        for (target, who) in [("/admin/users", Who::User), ("/private/x", Who::Anonymous)] {
            for (door, allowed) in doors.allowed("GET", target, who, &extra).await {
                if allowed {
                    failures.push(format!("{door}: {name}: {value} let {who:?} through to {target}"));
                }
            }
        }
        // And an allowed request stays allowed (a method override may only make it stricter).
        let toward_admin = if name.contains("method") { value } else { "/admin/users" };
        for (door, allowed) in doors.allowed("GET", "/items", Who::User, &[(name, toward_admin)]).await {
            let trusted_pair_repeated = door == "forward-auth" && name.starts_with("x-original-");
            if !allowed && !trusted_pair_repeated {
                failures.push(format!("{door}: {name}: {toward_admin} turned an allowed request away"));
            }
        }
    }
    // A method override that a backend would serve under a stricter route is not judged by
    // the weaker one.
    for (door, allowed) in doors
        .allowed("POST", "/items/1", Who::User, &[("x-http-method-override", "DELETE")])
        .await
    {
        if allowed {
            failures.push(format!("{door}: POST with X-HTTP-Method-Override: DELETE judged as POST"));
        }
    }
    // A preflight is only a real OPTIONS.
    for (door, allowed) in doors
        .allowed(
            "OPTIONS",
            "/private/x",
            Who::Anonymous,
            &[("access-control-request-method", "POST"), ("origin", "http://localhost:3000")],
        )
        .await
    {
        if !allowed && door != "lambda-rest" && door != "lambda-http-api" {
            failures.push(format!("{door}: a real preflight was refused"));
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_400_with_a_json_reason() {
    let (_core, doors) = Doors::start().await;
    let cookie = doors.sessions.cookie(Who::User).expect("cookie");
    for (target, reason) in [
        ("/admin%2Fusers", "ambiguous request target"),
        ("/a%zz", "not followed by two hex digits"),
        ("/a%00", "control character"),
        ("/%c0%ae", "not UTF-8"),
    ] {
        let r = doors
            .http
            .get(doors.svc.url("/forward-auth"))
            .header("x-original-method", "GET")
            .header("x-original-uri", target)
            .header("cookie", &cookie)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 400, "{target}");
        assert_eq!(r.headers()["content-type"], "application/json");
        let body: Value = r.json().await.expect("json");
        assert!(body["message"].as_str().is_some_and(|m| m.contains(reason)), "{target}: {body}");
        let check = support::grpc_check(doors.svc.grpc_addr, "GET", target, &[("cookie", cookie.clone())]).await;
        match check.http_response {
            Some(HttpResponse::DeniedResponse(d)) => {
                assert_eq!(d.status.map(|s| s.code), Some(400), "{target}");
                assert!(d.body.contains(reason), "{target}: {}", d.body);
            }
            other => panic!("{target}: {other:?}"),
        }
        // A Lambda authorizer cannot answer 400: a Deny, the reason in context.body.
        let (status, body) = doors.svc.authorize(&rest_event("GET", target, &[("cookie", cookie.clone())])).await;
        assert_eq!(status, 200);
        assert_eq!(body["policyDocument"]["Statement"][0]["Effect"], "Deny");
        assert!(body["context"]["body"].as_str().is_some_and(|b| b.contains(reason)), "{body}");
    }
    // Missing, repeated or garbled trusted headers.
    for (headers, reason) in [
        (vec![("x-original-uri", "/items")], "`x-original-method` is missing"),
        (vec![("x-original-method", "GET")], "`x-original-uri` is missing"),
        (
            vec![
                ("x-original-method", "GET"),
                ("x-original-uri", "/items"),
                ("x-original-uri", "/admin/users"),
            ],
            "more than once",
        ),
        (
            vec![("x-original-method", "GET, POST"), ("x-original-uri", "/items")],
            "not an HTTP method",
        ),
        (vec![("x-forwarded-method", "GET"), ("x-forwarded-uri", "/items")], "is missing"),
    ] {
        let mut req = doors.http.get(doors.svc.url("/forward-auth")).header("cookie", &cookie);
        for (k, v) in &headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.expect("send");
        assert_eq!(r.status(), 400, "{headers:?}");
        let body: Value = r.json().await.expect("json");
        assert!(body["message"].as_str().is_some_and(|m| m.contains(reason)), "{headers:?}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_cookie_lines_are_read_as_the_backend_reads_them() {
    let (_core, doors) = Doors::start().await;
    let session = doors.sessions.cookie(Who::User).expect("cookie");
    // Two `Cookie` lines, straight at /ext-authz and /forward-auth.
    for door in ["/ext-authz/items", "/forward-auth"] {
        let req = format!(
            "GET {door} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\nx-original-method: GET\r\nx-original-uri: /items\r\ncookie: theme=dark\r\ncookie: {session}\r\n\r\n"
        );
        let a = raw_request(doors.svc.addr.port(), req.as_bytes()).await;
        assert_eq!((a.status, a.header("x-user-id")), (200, Some("user-1")), "{door}: {a:?}");
    }
    // As Envoy passes them on: joined with `,` (HTTP service, and gRPC without raw headers).
    let joined = format!("theme=dark,{session}");
    let a = raw_request(
        doors.svc.addr.port(),
        format!("GET /ext-authz/items HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\ncookie: {joined}\r\n\r\n").as_bytes(),
    )
    .await;
    assert_eq!(a.header("x-user-id"), Some("user-1"), "{a:?}");
    let check = support::grpc_check(doors.svc.grpc_addr, "GET", "/items", &[("cookie", joined)]).await;
    match check.http_response {
        Some(HttpResponse::OkResponse(ok)) => {
            let user = ok.headers.iter().filter_map(|h| h.header.as_ref()).find(|h| h.key == "x-user-id");
            assert_eq!(user.map(|h| h.value.as_str()), Some("user-1"));
        }
        other => panic!("{other:?}"),
    }
}

// ------------------------------------------------------------------------------------------
// Through the real proxies

struct Gateway {
    core: StubCore,
    _svc: Service,
    _proxy: proxies::Proc,
    backend: RecordingBackend,
    sessions: Sessions,
    port: u16,
}

impl Gateway {
    async fn start(kind: Proxy) -> Self {
        let core = StubCore::start().await;
        let mut s: Settings = settings(&core.uri(), &config());
        s.forward_auth.proxy = kind.forward_auth_proxy();
        let svc = Service::start(s).await;
        let (backend, backend_addr) = RecordingBackend::start().await;
        let port = free_port();
        let proxy = kind.start(port, &svc, backend_addr);
        proxies::wait_until_serving(kind, port, "/ready-probe").await;
        backend.take();
        let sessions = Sessions::mint(&core);
        Self {
            core,
            _svc: svc,
            _proxy: proxy,
            backend,
            sessions,
            port,
        }
    }

    /// Sends one request byte for byte; returns what the backend received for it.
    async fn send(&self, method: &str, target: &str, who: Who, extra: &[(&str, &str)]) -> (u16, Vec<proxies::Received>) {
        let mut req = format!("{method} {target} HTTP/1.1\r\nhost: localhost\r\n");
        for (k, v) in extra {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(c) = self.sessions.cookie(who) {
            req.push_str(&format!("cookie: {c}\r\n"));
        }
        if !extra.iter().any(|(k, _)| k.eq_ignore_ascii_case("connection")) {
            req.push_str("connection: close\r\n");
        }
        req.push_str("\r\n");
        let answer = raw_request(self.port, req.as_bytes()).await;
        // Give a proxy that answered before its upstream request finished a moment.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        (answer.status, self.backend.take())
    }
}

async fn through(kind: Proxy) {
    let g = Gateway::start(kind).await;
    let name = kind.name();
    let corpus = corpus();
    the_corpus_is_worth_sending(&corpus);
    let mut failures = Vec::new();
    let mut reached = HashMap::new();
    for target in &corpus {
        for who in [Who::User, Who::Anonymous] {
            let (status, received) = g.send("GET", target, who, &[]).await;
            for r in &received {
                let need = most_needed(&r.target);
                if !who.has(need) {
                    failures.push(format!(
                        "{target:?} ({who:?}) reached the backend as {:?}, which a backend routes as needing {need:?}",
                        r.target
                    ));
                }
            }
            *reached.entry(received.is_empty()).or_insert(0) += 1;
            if !received.is_empty() && status != 200 {
                failures.push(format!("{target:?}: the backend was asked, yet the client got {status}"));
            }
        }
    }
    // The protected path itself: refused without the claim, served with it.
    let (_, got) = g.send("GET", "/admin/users", Who::User, &[]).await;
    if !got.is_empty() {
        failures.push("/admin/users reached the backend without the admin role".into());
    }
    let (status, got) = g.send("GET", "/admin/users", Who::Admin, &[]).await;
    if status != 200 || got.len() != 1 || got[0].target != "/admin/users" {
        failures.push(format!("/admin/users with the admin role: {status}, {got:?}"));
    }
    // Ordinary paths reach the backend unchanged.
    for target in ORDINARY {
        let (status, got) = g.send("GET", target, Who::User, &[]).await;
        let seen: Vec<&str> = got.iter().map(|r| r.target.as_str()).collect();
        if status != 200 || seen != [target] {
            failures.push(format!("ordinary {target}: {status}, backend saw {seen:?}"));
        }
        if let Some(r) = got.first()
            && r.aliases("x-user-id") != ["user-1"]
        {
            failures.push(format!("ordinary {target}: identity {:?}", r.aliases("x-user-id")));
        }
    }
    // Spoofed forwarding headers: never let a request through, never reach the backend.
    for (header, value) in SPOOFED {
        let extra = [(header, value), ("access-control-request-method", "GET")];
        for (target, who) in [("/admin/users", Who::User), ("/private/x", Who::Anonymous)] {
            let (status, got) = g.send("GET", target, who, &extra).await;
            if !got.is_empty() {
                failures.push(format!("{header}: {value} let {who:?} through to {target} ({status})"));
            }
        }
        let (status, got) = g.send("GET", "/items", Who::User, &[(header, "/admin/users")]).await;
        if status != 200 || got.len() != 1 {
            failures.push(format!("{header}: an allowed request became {status}"));
        }
        for r in &got {
            if header != "x-http-method-override" && !r.aliases(header).is_empty() {
                failures.push(format!("the client's {header} reached the backend: {:?}", r.aliases(header)));
            }
        }
    }
    let (status, got) = g
        .send(
            "POST",
            "/items/1",
            Who::User,
            &[("x-http-method-override", "DELETE"), ("content-length", "0")],
        )
        .await;
    if !got.is_empty() {
        failures.push(format!("POST + X-HTTP-Method-Override: DELETE judged as POST ({status})"));
    }
    // Identity headers in any spelling, and hop-by-hop tricks, never set or strip one.
    let lookalikes = [
        ("x_user_id", "evil"),
        ("X_User_Id", "evil"),
        ("x-user_id", "evil"),
        ("x_user-id", "evil"),
        ("X-USER-ID", "evil"),
        ("x_tenant_id", "evil"),
        ("x-session_handle", "evil"),
    ];
    for (who, want_user) in [(Who::User, vec!["user-1"]), (Who::Anonymous, vec![])] {
        for (header, value) in lookalikes {
            let (_, got) = g.send("GET", "/items", who, &[(header, value)]).await;
            match got.as_slice() {
                [r] => {
                    if r.aliases("x-user-id") != want_user
                        || r.aliases("x-tenant-id").contains(&"evil")
                        || r.aliases("x-session-handle").contains(&"evil")
                    {
                        failures.push(format!("{header} ({who:?}): backend got {:?}", r.headers));
                    }
                }
                other => failures.push(format!("{header} ({who:?}): {other:?}")),
            }
        }
    }
    for connection in ["close, x-user-id", "x-user-id, close", "close, X-User-Id, x-tenant-id"] {
        let (_, got) = g.send("GET", "/items", Who::User, &[("connection", connection)]).await;
        match got.as_slice() {
            [r] if r.aliases("x-user-id") == ["user-1"] && r.aliases("x-tenant-id") == ["public"] => {}
            other => failures.push(format!("Connection: {connection}: {other:?}")),
        }
    }
    // The SDK's own routes reach the backend SDK whatever credentials they carry: the refresh
    // call with an expired access token and the refresh token (cookie mode), or the refresh
    // token as a Bearer (header mode); no identity goes with them.
    let expired = support::role_token(&g.core, &["user"], -5, "rc-expired", false);
    let refresh_cookie = format!("sAccessToken={expired}; sRefreshToken=opaque-refresh-token");
    for extra in [
        vec![("cookie", refresh_cookie.as_str()), ("x-user-id", "evil"), ("content-length", "0")],
        vec![
            ("authorization", "Bearer opaque-refresh-token"),
            ("st-auth-mode", "header"),
            ("content-length", "0"),
        ],
    ] {
        let (status, got) = g.send("POST", "/auth/session/refresh", Who::Anonymous, &extra).await;
        match got.as_slice() {
            [r] if r.target == "/auth/session/refresh" && r.aliases("x-user-id").is_empty() => {}
            other => failures.push(format!("the SDK's refresh with {extra:?}: {status}, backend got {other:?}")),
        }
    }
    // Two Cookie lines: the session the backend sees is the one judged.
    let cookie = g.sessions.cookie(Who::User).expect("cookie");
    let (status, got) = g
        .send("GET", "/items", Who::Anonymous, &[("cookie", "theme=dark"), ("cookie", &cookie)])
        .await;
    match got.as_slice() {
        [r] if r.aliases("x-user-id") == ["user-1"] => {}
        other => failures.push(format!("two Cookie lines: {status}, {other:?}")),
    }
    assert!(failures.is_empty(), "{name}: {} failures:\n{}", failures.len(), failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_envoy_http() {
    through(Proxy::EnvoyHttp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_envoy_grpc() {
    through(Proxy::EnvoyGrpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_nginx() {
    through(Proxy::Nginx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_traefik() {
    through(Proxy::Traefik).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_caddy() {
    through(Proxy::Caddy).await;
}

// ------------------------------------------------------------------------------------------
// The canonicaliser against the backend models

/// `config()`'s routes, for backends that may ignore case and for backends that do not (built once:
/// compiling globs is most of a case's time).
fn policy(case_insensitive_backends: bool) -> &'static Policy {
    static POLICIES: std::sync::OnceLock<[Policy; 2]> = std::sync::OnceLock::new();
    let build = |case_insensitive_backends| {
        let mut settings = Settings::from_toml_str(&config()).expect("config");
        settings.supertokens.pass_sdk_routes = false;
        settings.paths.case_insensitive_backends = case_insensitive_backends;
        Policy::compile(&settings).expect("policy")
    };
    &POLICIES.get_or_init(|| [build(false), build(true)])[usize::from(case_insensitive_backends)]
}

/// Segments of request paths: names (some spelled with escapes, case or look-alike letters),
/// dot segments in every spelling, `;` parameters, stray and broken escapes.
fn segment() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "admin",
        "ADMIN",
        "Admin",
        "adm%69n",
        "%61dmin",
        "%2561dmin",
        "adm\u{131}n",
        "private",
        "PRIVATE",
        "%70rivate",
        "items",
        "1",
        "x",
        "users",
        "",
        ".",
        "..",
        "%2e",
        "%2E%2e",
        ".%2e",
        "%252e",
        "..;",
        "admin;x",
        ";",
        "%3B",
        "users%3F",
        "%23",
        "a%20b",
        "%",
        "%zz",
        "%00",
        "caf%c3%a9",
        "users?q=/admin",
        "x#f",
    ])
}

/// What may stand between two segments: a slash, or something a backend may take for one.
fn separator() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["/", "/", "/", "//", "%2F", "%2f", "%5C", "\\", "%252F", "/./", "/../"])
}

fn target() -> impl Strategy<Value = String> {
    prop::collection::vec((separator(), segment()), 1..6).prop_map(|parts| {
        let mut s = String::new();
        for (i, (sep, seg)) in parts.into_iter().enumerate() {
            s.push_str(if i == 0 { "/" } else { sep });
            s.push_str(seg);
        }
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_backend_reading_meets_the_route_the_canonical_path_meets(t in target()) {
        for case_insensitive in [true, false] {
            let policy = policy(case_insensitive);
            let Ok(target) = canonicalise(&t) else { continue };
            let Ok(route) = policy.route_for(&["GET"], &target) else { continue };
            for r in backends::readings(&t) {
                if r.case_insensitive && !case_insensitive {
                    continue;
                }
                let theirs = model_route(&r.path, r.case_insensitive, "GET");
                prop_assert_eq!(
                    theirs, route.pattern.as_str(),
                    "{:?} (case-insensitive backends: {}): {} reads {:?}", t, case_insensitive, r.backend, r.path
                );
            }
        }
    }

    #[test]
    fn canonicalisation_is_idempotent(t in target()) {
        if let Ok(once) = canonicalise(&t) {
            let twice = canonicalise(once.canonical()).expect("a canonical path canonicalises");
            prop_assert_eq!(twice.canonical(), once.canonical(), "{:?}", t);
        }
    }
}

#[test]
fn the_models_agree_with_the_routes_on_plain_paths() {
    let policy = policy(true);
    for path in [
        "/admin/users",
        "/admin/x/y",
        "/private/x",
        "/items",
        "/",
        "/admin",
        "/adminx/y",
        "/privatex",
    ] {
        let route = policy.route_for(&["GET"], &canonicalise(path).expect("path")).expect("route");
        assert_eq!(model_route(path, false, "GET"), route.pattern, "{path}");
    }
    let route = policy
        .route_for(&["DELETE"], &canonicalise("/items/1").expect("path"))
        .expect("route");
    assert_eq!(model_route("/items/1", false, "DELETE"), route.pattern);
}
