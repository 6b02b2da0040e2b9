//! One decision core, every front door: each case goes through `/authorize`, `/ext-authz`,
//! `/forward-auth` and gRPC `Check`, and must come out the same. Plus the per-door details:
//! identity headers never spoofable, CORS on denials, preflights, original method and path.

use crate::support;
use session_authorizer::labels::{FrontDoor, Outcome};

use std::collections::HashMap;

use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use serde_json::{Value, json};
use support::{Service, StubCore, rest_event, settings};

const CONFIG: &str = r#"
[headers]
user_id = "x-user-id"
tenant_id = "x-tenant-id"
claims = [{ claim = "st-role", header = "x-user-roles" }]

[[routes]]
path = "/admin/**"
session = "required"
claims = [{ claim = "st-role", includes = "admin" }]

[[routes]]
path = "/private/**"
session = "required"
"#;

/// What every front door must agree on.
#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    Allow { user: String, set_cookie: bool },
    Anonymous,
    Unauthorized,
    Forbidden(Value),
}

/// (name, method, path, headers, expected verdict).
type Case<'a> = (&'a str, &'a str, &'a str, Vec<(&'a str, String)>, Verdict);

struct Doors {
    svc: Service,
    http: reqwest::Client,
}

impl Doors {
    async fn lambda(&self, method: &str, path: &str, headers: &[(&str, String)]) -> Verdict {
        let (status, body) = self.svc.authorize(&rest_event(method, path, headers)).await;
        match status {
            401 => Verdict::Unauthorized,
            200 if body["policyDocument"]["Statement"][0]["Effect"] == "Deny" => {
                Verdict::Forbidden(serde_json::from_str(body["context"]["body"].as_str().expect("body")).expect("json"))
            }
            200 if body["principalId"] == "" => Verdict::Anonymous,
            200 => Verdict::Allow {
                user: body["principalId"].as_str().expect("principal").to_owned(),
                set_cookie: !body["context"]["setCookie"].as_str().unwrap_or_default().is_empty(),
            },
            s => panic!("lambda status {s}"),
        }
    }

    async fn http_door(&self, req: reqwest::RequestBuilder, headers: &[(&str, String)]) -> Verdict {
        let mut req = req;
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let r = req.send().await.expect("send");
        let status = r.status().as_u16();
        let user = r.headers().get("x-user-id").map(|v| v.to_str().expect("ascii").to_owned());
        let set_cookie = r.headers().get("set-cookie").is_some();
        let body = r.text().await.expect("body");
        match status {
            200 => match user {
                Some(user) => Verdict::Allow { user, set_cookie },
                None => Verdict::Anonymous,
            },
            401 => Verdict::Unauthorized,
            403 => Verdict::Forbidden(serde_json::from_str(&body).expect("json")),
            s => panic!("status {s}: {body}"),
        }
    }

    async fn ext_authz(&self, method: &str, path: &str, headers: &[(&str, String)]) -> Verdict {
        let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        self.http_door(self.http.request(m, self.svc.url(&format!("/ext-authz{path}"))), headers)
            .await
    }

    async fn forward_auth(&self, method: &str, path: &str, headers: &[(&str, String)]) -> Verdict {
        let req = self
            .http
            .get(self.svc.url("/forward-auth"))
            .header("x-original-method", method)
            .header("x-original-uri", path);
        self.http_door(req, headers).await
    }

    async fn grpc(&self, method: &str, path: &str, headers: &[(&str, String)]) -> Verdict {
        let r = check(&self.svc, method, path, headers).await;
        match r.http_response {
            Some(HttpResponse::OkResponse(ok)) => {
                let user = ok
                    .headers
                    .iter()
                    .filter_map(|h| h.header.as_ref())
                    .find(|h| h.key == "x-user-id")
                    .map(|h| h.value.clone());
                let set_cookie = ok
                    .response_headers_to_add
                    .iter()
                    .filter_map(|h| h.header.as_ref())
                    .any(|h| h.key == "set-cookie");
                match user {
                    Some(user) => Verdict::Allow { user, set_cookie },
                    None => {
                        assert!(
                            ok.headers_to_remove.contains(&"x-user-id".to_owned()),
                            "anonymous: identity removed"
                        );
                        Verdict::Anonymous
                    }
                }
            }
            Some(HttpResponse::DeniedResponse(d)) => match d.status.map(|s| s.code) {
                Some(401) => Verdict::Unauthorized,
                Some(403) => Verdict::Forbidden(serde_json::from_str(&d.body).expect("json")),
                other => panic!("denied status {other:?}"),
            },
            other => panic!("grpc response {other:?}"),
        }
    }
}

async fn check(
    svc: &Service,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
) -> envoy_types::pb::envoy::service::auth::v3::CheckResponse {
    support::grpc_check(svc.grpc_addr, method, path, headers).await
}

async fn doors() -> (StubCore, Doors) {
    let core = StubCore::start().await;
    let svc = Service::start(settings(&core.uri(), CONFIG)).await;
    (
        core,
        Doors {
            svc,
            http: reqwest::Client::new(),
        },
    )
}

fn token(core: &StubCore, roles: &[&str], ttl: i64, handle: &str, parent: bool) -> String {
    support::role_token(core, roles, ttl, handle, parent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_front_door_decides_the_same() {
    let (core, d) = doors().await;
    let user = token(&core, &["user"], 3600, "s1", false);
    let admin = token(&core, &["admin"], 3600, "s2", false);
    let expired = token(&core, &["user"], -5, "s3", false);
    let cookie = |t: &str| ("cookie", format!("sAccessToken={t}"));
    let bearer = |t: &str| ("authorization", format!("Bearer {t}"));
    let allow = |set_cookie| Verdict::Allow {
        user: "user-1".into(),
        set_cookie,
    };
    let forbidden = Verdict::Forbidden(json!({"message": "invalid claim", "claimValidationErrors": [
        {"id": "st-role", "reason": {"message": "wrong value", "expectedToInclude": "admin", "actualValue": ["user"]}}]}));
    let cases: Vec<Case> = vec![
        ("cookie", "GET", "/items", vec![cookie(&user)], allow(false)),
        ("bearer", "POST", "/items", vec![bearer(&user)], allow(false)),
        ("none", "GET", "/items", vec![], Verdict::Anonymous),
        (
            "spoofed identity",
            "GET",
            "/items",
            vec![("x-user-id", "evil".into())],
            Verdict::Anonymous,
        ),
        ("expired", "GET", "/items", vec![cookie(&expired)], Verdict::Unauthorized),
        ("claim fails", "GET", "/admin/users", vec![cookie(&user)], forbidden),
        ("claim passes", "DELETE", "/admin/users?x=1", vec![cookie(&admin)], allow(false)),
        ("required, none", "GET", "/private/x", vec![], Verdict::Unauthorized),
        ("garbage", "GET", "/items", vec![cookie("x.y.z")], Verdict::Anonymous),
        (
            "duplicate cookies",
            "GET",
            "/items",
            vec![("cookie", format!("sAccessToken={user}; sAccessToken={user}"))],
            Verdict::Unauthorized,
        ),
        // Each refresh case uses its own session: the first use promotes it.
        ("refreshed", "GET", "/items", vec![], allow(true)),
    ];
    for (name, method, path, headers, expected) in &cases {
        let mut verdicts = Vec::new();
        for door in ["lambda", "ext_authz", "forward_auth", "grpc"] {
            let headers = if *name == "refreshed" {
                vec![cookie(&token(&core, &["user"], 3600, &format!("r-{door}"), true))]
            } else {
                headers.clone()
            };
            let v = match door {
                "lambda" => d.lambda(method, path, &headers).await,
                "ext_authz" => d.ext_authz(method, path, &headers).await,
                "forward_auth" => d.forward_auth(method, path, &headers).await,
                _ => d.grpc(method, path, &headers).await,
            };
            verdicts.push((door, v));
        }
        for (door, v) in &verdicts {
            assert_eq!(v, expected, "{name} through {door}");
        }
    }
    let m = &d.svc.state.metrics;
    for door in [
        FrontDoor::LambdaRequest,
        FrontDoor::EnvoyHttp,
        FrontDoor::ForwardAuth,
        FrontDoor::EnvoyGrpc,
    ] {
        assert!(m.decisions(door, Outcome::Allow) >= 3, "{} counted", door.as_str());
    }
}

#[tokio::test]
async fn identity_headers_are_never_spoofable() {
    let (core, d) = doors().await;
    // Anonymous: Envoy HTTP is told to remove every identity header.
    let r = d
        .http
        .get(d.svc.url("/ext-authz/items"))
        .header("x-user-id", "evil")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-user-id").is_none());
    assert_eq!(
        r.headers()["x-envoy-auth-headers-to-remove"],
        "x-user-id, x-tenant-id, x-user-roles"
    );
    // gRPC: the same names in headers_to_remove.
    let resp = check(&d.svc, "GET", "/items", &[("x-user-id", "evil".into())]).await;
    let Some(HttpResponse::OkResponse(ok)) = resp.http_response else {
        panic!("ok")
    };
    assert!(ok.headers.is_empty());
    assert_eq!(ok.headers_to_remove, vec!["x-user-id", "x-tenant-id", "x-user-roles"]);
    // A session: headers set with overwrite, mapped claims as comma lists.
    let t = token(&core, &["user", "editor"], 3600, "s9", false);
    let resp = check(
        &d.svc,
        "GET",
        "/items",
        &[("cookie", format!("sAccessToken={t}")), ("x-user-id", "evil".into())],
    )
    .await;
    let Some(HttpResponse::OkResponse(ok)) = resp.http_response else {
        panic!("ok")
    };
    let set: HashMap<_, _> = ok
        .headers
        .iter()
        .filter_map(|h| h.header.as_ref().map(|x| (x.key.clone(), (x.value.clone(), h.append_action))))
        .collect();
    assert_eq!(set["x-user-id"].0, "user-1");
    assert_eq!(set["x-user-id"].1, 2, "OVERWRITE_IF_EXISTS_OR_ADD");
    assert_eq!(set["x-tenant-id"].0, "public");
    assert_eq!(set["x-user-roles"].0, "user,editor");
    let r = d
        .http
        .get(d.svc.url("/forward-auth"))
        .header("x-original-method", "GET")
        .header("x-original-uri", "/items")
        .header("cookie", format!("sAccessToken={t}"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.headers()["x-user-id"], "user-1");
    assert_eq!(r.headers()["x-user-roles"], "user,editor");
    assert!(r.headers().get("x-envoy-auth-headers-to-remove").is_none());
}

#[tokio::test]
async fn denials_to_the_website_carry_cors_and_preflights_pass() {
    let (core, d) = doors().await;
    let expired = token(&core, &["user"], -5, "c1", false);
    for origin in ["http://localhost:3000", "https://evil.example"] {
        let r = d
            .http
            .get(d.svc.url("/forward-auth"))
            .header("x-original-method", "GET")
            .header("x-original-uri", "/items")
            .header("origin", origin)
            .header("cookie", format!("sAccessToken={expired}"))
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["content-type"], "application/json");
        let cors = r
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().expect("ascii").to_owned());
        if origin == "http://localhost:3000" {
            assert_eq!(cors.as_deref(), Some(origin));
            assert_eq!(r.headers()["access-control-allow-credentials"], "true");
            assert_eq!(
                r.headers()["access-control-expose-headers"],
                "front-token, st-access-token, st-refresh-token, anti-csrf"
            );
        } else {
            assert_eq!(cors, None, "no CORS for other origins");
        }
        assert_eq!(r.headers()["x-session-authorizer-body"], r#"{"message":"try refresh token"}"#);
        assert_eq!(r.text().await.expect("body"), r#"{"message":"try refresh token"}"#);
    }
    // Preflight to a route that requires a session: never blocked.
    for door in ["forward", "envoy"] {
        let req = match door {
            "forward" => d
                .http
                .get(d.svc.url("/forward-auth"))
                .header("x-original-method", "OPTIONS")
                .header("x-original-uri", "/private/x"),
            _ => d.http.request(reqwest::Method::OPTIONS, d.svc.url("/ext-authz/private/x")),
        };
        let r = req
            .header("access-control-request-method", "POST")
            .header("origin", "http://localhost:3000")
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 200, "{door}");
    }
    let resp = check(&d.svc, "OPTIONS", "/private/x", &[("access-control-request-method", "POST".into())]).await;
    assert!(matches!(resp.http_response, Some(HttpResponse::OkResponse(_))));
    // Without Access-Control-Request-Method an OPTIONS is an ordinary request.
    let r = d
        .http
        .get(d.svc.url("/forward-auth"))
        .header("x-original-method", "OPTIONS")
        .header("x-original-uri", "/private/x")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn original_method_and_path_drive_the_route_policy() {
    let (core, d) = doors().await;
    let user = token(&core, &["user"], 3600, "o1", false);
    // NGINX style headers.
    let r = d
        .http
        .get(d.svc.url("/forward-auth"))
        .header("x-original-method", "POST")
        .header("x-original-uri", "/admin/users?page=2")
        .header("cookie", format!("sAccessToken={user}"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["message"], "invalid claim");
    // A full URL in the trusted header (ingress-nginx's `X-Original-URL`, when configured).
    let mut s = settings(&core.uri(), CONFIG);
    s.forward_auth.uri_header = Some(http::HeaderName::from_static("x-original-url"));
    let svc = Service::start(s).await;
    let r = d
        .http
        .get(svc.url("/forward-auth"))
        .header("x-original-method", "GET")
        .header("x-original-url", "https://app.example.com/private/x?y=1")
        .header("x-original-uri", "/items")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    assert_eq!(r.text().await.expect("body"), r#"{"message":"unauthorised"}"#);
    // Envoy: the path after the prefix, with its query.
    let r = d.http.get(d.svc.url("/ext-authz/private/x?y=1")).send().await.expect("send");
    assert_eq!(r.status(), 401);
    let r = d.http.get(d.svc.url("/ext-authz")).send().await.expect("send");
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn revoked_refresh_clears_tokens_on_proxy_doors() {
    let (core, d) = doors().await;
    let t = token(&core, &["user"], 3600, "rv", true);
    core.issuer.revoke("rv");
    let r = d
        .http
        .get(d.svc.url("/ext-authz/items"))
        .header("cookie", format!("sAccessToken={t}"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    let cookies: Vec<_> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .collect();
    assert_eq!(cookies.len(), 2, "{cookies:?}");
    assert!(cookies[0].starts_with("sAccessToken=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT"));
    assert!(cookies[1].starts_with("sRefreshToken=; Path=/auth/session/refresh;"));
    assert_eq!(r.headers()["front-token"], "remove");
    assert_eq!(r.text().await.expect("body"), r#"{"message":"unauthorised"}"#);
}

#[tokio::test]
async fn the_sdks_own_routes_pass_untouched_unless_turned_off() {
    let core = StubCore::start().await;
    let expired = token(&core, &["user"], -5, "sdk", false);
    let http = reqwest::Client::new();
    let ask = |svc: &Service, uri: &'static str, cookie: String| {
        http.get(svc.url("/forward-auth"))
            .header("x-original-method", "POST")
            .header("x-original-uri", uri)
            .header("cookie", cookie)
            .header("x-user-id", "evil")
            .send()
    };
    // By default `{api_base_path}/**` is public: the refresh call with its expired access token
    // is allowed, with no identity, and the SDK's session routes with it.
    let svc = Service::start(settings(&core.uri(), CONFIG)).await;
    for uri in ["/auth/session/refresh", "/auth/signout", "/auth/signin"] {
        let r = ask(&svc, uri, format!("sAccessToken={expired}; sRefreshToken=r"))
            .await
            .expect("send");
        assert_eq!(r.status(), 200, "{uri}");
        assert!(r.headers().get("x-user-id").is_none(), "{uri}: no identity on the SDK's routes");
    }
    // Everywhere else the expired token asks for a refresh, as before.
    let r = ask(&svc, "/items", format!("sAccessToken={expired}")).await.expect("send");
    assert_eq!(r.status(), 401);
    // Another base path.
    let svc = Service::start(settings(
        &core.uri(),
        &format!("[supertokens]\napi_base_path = \"/api/auth\"\n{CONFIG}"),
    ))
    .await;
    let r = ask(&svc, "/api/auth/session/refresh", format!("sAccessToken={expired}"))
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let r = ask(&svc, "/auth/session/refresh", format!("sAccessToken={expired}"))
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    // Turned off (the SDK's API is elsewhere): judged like any other path.
    let svc = Service::start(settings(&core.uri(), &format!("[supertokens]\npass_sdk_routes = false\n{CONFIG}"))).await;
    let r = ask(&svc, "/auth/session/refresh", format!("sAccessToken={expired}"))
        .await
        .expect("send");
    assert_eq!(r.status(), 401);
    // A public route takes no claims, tenants or check_database, and `/` cannot be the base.
    for bad in [
        "[[routes]]\npath = \"/x/**\"\nsession = \"public\"\nclaims = [{ claim = \"st-role\", includes = \"admin\" }]\n",
        "[[routes]]\npath = \"/x/**\"\nsession = \"public\"\ncheck_database = true\n",
        "[supertokens]\napi_base_path = \"/\"\n",
    ] {
        assert!(session_authorizer::settings::Settings::from_toml_str(bad).is_err(), "{bad}");
    }
}
