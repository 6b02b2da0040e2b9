//! The Lambda authorizer contract of `POST /authorize`: REST REQUEST and TOKEN events, HTTP API
//! payload 2.0 (simple and IAM), AppSync, malformed bodies, and the shapes AWS's own types accept.

use crate::support;

use aws_lambda_events::event::apigw::{
    ApiGatewayCustomAuthorizerRequestTypeRequest, ApiGatewayCustomAuthorizerResponse, ApiGatewayV2CustomAuthorizerSimpleResponse,
};
use aws_lambda_events::event::appsync::AppSyncLambdaAuthorizerResponse;
use serde_json::{Value, json};
use support::{Service, StubCore, rest_event, settings};

const ROUTES: &str = r#"
[[routes]]
path = "/admin/**"
session = "required"
claims = [{ claim = "st-role", includes = "admin" }]
"#;

async fn setup(extra: &str) -> (StubCore, Service) {
    let core = StubCore::start().await;
    let service = Service::start(settings(&core.uri(), &format!("{extra}\n{ROUTES}"))).await;
    (core, service)
}

fn roles(core: &StubCore, roles: &[&str], ttl: i64) -> String {
    support::role_token(core, roles, ttl, "session-1", false)
}

#[tokio::test]
async fn rest_request_event_all_outcomes() {
    let (core, svc) = setup("").await;
    let token = roles(&core, &["user"], 3600);
    let (status, body) = svc
        .authorize(&rest_event("GET", "/items", &[("Cookie", format!("sAccessToken={token}"))]))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({
            "principalId": "user-1",
            "policyDocument": {"Version": "2012-10-17", "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": format!("{}/GET/items", support::METHOD_ARN_PREFIX)}]},
            "context": {"setCookie": "", "userId": "user-1", "tenantId": "public", "sessionHandle": "session-1"}
        })
    );
    // AWS's own type accepts it.
    serde_json::from_value::<ApiGatewayCustomAuthorizerResponse>(body).expect("aws_lambda_events accepts the response");

    let (status, body) = svc.authorize(&rest_event("GET", "/items", &[])).await;
    assert_eq!(status, 200);
    assert_eq!(body["principalId"], "");
    assert_eq!(body["policyDocument"]["Statement"][0]["Effect"], "Allow");
    assert_eq!(body["context"], json!({"setCookie": ""}));

    let expired = roles(&core, &["user"], -10);
    let (status, body) = svc
        .authorize(&rest_event("GET", "/items", &[("cookie", format!("sAccessToken={expired}"))]))
        .await;
    assert_eq!((status, body), (401, json!({"message": "Unauthorized"})));

    // Route requires a session: none -> 401.
    let (status, body) = svc.authorize(&rest_event("GET", "/admin/users", &[])).await;
    assert_eq!((status, body), (401, json!({"message": "Unauthorized"})));

    // Failing claim -> Deny with the SDK's body as a JSON string.
    let (status, body) = svc
        .authorize(&rest_event("GET", "/admin/users", &[("cookie", format!("sAccessToken={token}"))]))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["principalId"], "");
    assert_eq!(body["policyDocument"]["Statement"][0]["Effect"], "Deny");
    assert_eq!(body["context"]["setCookie"], "");
    assert_eq!(
        body["context"]["body"],
        r#"{"message":"invalid claim","claimValidationErrors":[{"id":"st-role","reason":{"message":"wrong value","expectedToInclude":"admin","actualValue":["user"]}}]}"#
    );
    for v in body["context"].as_object().expect("context").values() {
        assert!(
            v.is_string() || v.is_number() || v.is_boolean(),
            "context values are primitives: {v}"
        );
    }
    let admin = roles(&core, &["admin"], 3600);
    let (status, body) = svc
        .authorize(&rest_event("GET", "/admin/users", &[("cookie", format!("sAccessToken={admin}"))]))
        .await;
    assert_eq!((status, body["principalId"].clone()), (200, json!("user-1")));
}

#[tokio::test]
async fn aws_sample_request_event_is_understood() {
    let (core, svc) = setup("").await;
    let token = roles(&core, &["user"], 3600);
    // Shaped like AWS's documented sample, with nulls where API Gateway sends them.
    let event = json!({
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abcdef123/test/GET/request",
        "resource": "/request", "path": "/request", "httpMethod": "GET",
        "headers": {"X-AMZ-Date": "20170718T062915Z", "Accept": "*/*", "HeaderAuth1": "headerValue1", "CloudFront-Viewer-Country": "US",
                    "Authorization": format!("Bearer {token}"), "Via": null},
        "multiValueHeaders": {"HeaderAuth1": ["headerValue1"]},
        "queryStringParameters": {"QueryString1": "queryValue1"},
        "multiValueQueryStringParameters": {"QueryString1": ["queryValue1"]},
        "pathParameters": {}, "stageVariables": {"StageVar1": "stageValue1"},
        "requestContext": {"path": "/request", "accountId": "123456789012", "resourceId": "05c7jb", "stage": "test", "requestId": "...",
            "identity": {"apiKey": "...", "sourceIp": "..."}, "resourcePath": "/request", "httpMethod": "GET", "apiId": "abcdef123"}
    });
    let mut typed = event.clone();
    typed["headers"].as_object_mut().expect("headers").remove("Via");
    serde_json::from_value::<ApiGatewayCustomAuthorizerRequestTypeRequest>(typed).expect("aws_lambda_events parses the sample");
    let (status, body) = svc.authorize(&event).await;
    assert_eq!((status, body["principalId"].clone()), (200, json!("user-1")));
}

#[tokio::test]
async fn token_event() {
    let (core, svc) = setup("").await;
    let token = roles(&core, &["user"], 3600);
    for value in [token.clone(), format!("Bearer {token}")] {
        let event = json!({"type": "TOKEN", "authorizationToken": value, "methodArn": format!("{}/GET/items", support::METHOD_ARN_PREFIX)});
        let (status, body) = svc.authorize(&event).await;
        assert_eq!(status, 200);
        assert_eq!(body["principalId"], "user-1");
        assert_eq!(
            body["policyDocument"]["Statement"][0]["Resource"],
            format!("{}/GET/items", support::METHOD_ARN_PREFIX)
        );
    }
    let expired = roles(&core, &["user"], -10);
    let event = json!({"type": "TOKEN", "authorizationToken": expired, "methodArn": format!("{}/GET/items", support::METHOD_ARN_PREFIX)});
    assert_eq!(svc.authorize(&event).await, (401, json!({"message": "Unauthorized"})));
    // The route comes from methodArn: /admin needs the admin role.
    let event =
        json!({"type": "TOKEN", "authorizationToken": token, "methodArn": format!("{}/DELETE/admin/x", support::METHOD_ARN_PREFIX)});
    let (status, body) = svc.authorize(&event).await;
    assert_eq!(
        (status, body["policyDocument"]["Statement"][0]["Effect"].clone()),
        (200, json!("Deny"))
    );
}

fn v2_event(cookies: &[String], headers: Value, path: &str) -> Value {
    json!({
        "version": "2.0", "type": "REQUEST",
        "routeArn": "arn:aws:execute-api:us-east-1:123456789012:abcdef123/test/GET/request",
        "identitySource": ["x"], "routeKey": "$default", "rawPath": path, "rawQueryString": "a=1",
        "cookies": cookies, "headers": headers,
        "requestContext": {"accountId": "123456789012", "apiId": "abcdef123", "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "1.2.3.4", "userAgent": "t"},
                           "requestId": "id", "routeKey": "$default", "stage": "$default", "time": "12/Mar/2020:19:03:58 +0000", "timeEpoch": 1_583_348_638_390_u64}
    })
}

#[tokio::test]
async fn http_api_v2_simple_responses() {
    let (core, svc) = setup("").await;
    let token = roles(&core, &["user"], 3600);
    let (status, body) = svc
        .authorize(&v2_event(
            &["theme=dark".into(), format!("sAccessToken={token}")],
            json!({"user-agent": "t"}),
            "/items",
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"isAuthorized": true, "context": {"setCookie": "", "userId": "user-1", "tenantId": "public", "sessionHandle": "session-1"}})
    );
    serde_json::from_value::<ApiGatewayV2CustomAuthorizerSimpleResponse>(body).expect("aws type");
    let (status, body) = svc
        .authorize(&v2_event(&[], json!({"authorization": format!("Bearer {token}")}), "/items"))
        .await;
    assert_eq!((status, body["isAuthorized"].clone()), (200, json!(true)));
    let (status, body) = svc.authorize(&v2_event(&[], json!({}), "/items")).await;
    assert_eq!(status, 200);
    assert_eq!(body, json!({"isAuthorized": true, "context": {"setCookie": ""}}));
    let (status, body) = svc
        .authorize(&v2_event(&[format!("sAccessToken={token}")], json!({}), "/admin/x"))
        .await;
    assert_eq!((status, body["isAuthorized"].clone()), (200, json!(false)));
    assert!(
        body["context"]["body"]
            .as_str()
            .expect("body")
            .starts_with(r#"{"message":"invalid claim""#)
    );
    let expired = roles(&core, &["user"], -1);
    assert_eq!(
        svc.authorize(&v2_event(&[format!("sAccessToken={expired}")], json!({}), "/items"))
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn http_api_v2_iam_responses() {
    let (core, svc) = setup("[lambda]\nhttp_api_response = \"iam\"\n").await;
    let token = roles(&core, &["user"], 3600);
    let (status, body) = svc
        .authorize(&v2_event(&[format!("sAccessToken={token}")], json!({}), "/items"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["principalId"], "user-1");
    assert_eq!(
        body["policyDocument"]["Statement"][0]["Resource"],
        "arn:aws:execute-api:us-east-1:123456789012:abcdef123/test/GET/request"
    );
}

#[tokio::test]
async fn appsync_responses() {
    let (core, svc) = setup("[lambda]\nappsync_ttl_secs = 300\n").await;
    let token = roles(&core, &["user"], 3600);
    let event = json!({"authorizationToken": token, "requestContext": {"apiId": "graphql-api", "accountId": "123456789012", "requestId": "r",
                       "queryString": "query { me { id } }", "operationName": "Me", "variables": {}}});
    let (status, body) = svc.authorize(&event).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"isAuthorized": true, "resolverContext": {"userId": "user-1", "tenantId": "public", "sessionHandle": "session-1"}, "ttlOverride": 300})
    );
    serde_json::from_value::<AppSyncLambdaAuthorizerResponse>(body).expect("aws type");
    let short = roles(&core, &["user"], 60);
    let event = json!({"authorizationToken": format!("Bearer {short}"), "requestContext": {"apiId": "graphql-api"}});
    let (_, body) = svc.authorize(&event).await;
    assert!(
        body["ttlOverride"].as_u64().expect("ttl") <= 60,
        "a cached allow never outlives the token"
    );
    let expired = roles(&core, &["user"], -1);
    let event = json!({"authorizationToken": expired, "requestContext": {"apiId": "graphql-api"}});
    assert_eq!(svc.authorize(&event).await, (401, json!({"message": "Unauthorized"})));
}

#[tokio::test]
async fn malformed_bodies_get_400_naming_the_problem() {
    let (_core, svc) = setup("").await;
    let client = reqwest::Client::new();
    let cases: Vec<(&str, &str)> = vec![
        ("{", "not valid JSON"),
        ("[]", "not a Lambda authorizer event"),
        ("{}", "not a Lambda authorizer event"),
        (r#"{"type":"REQUEST"}"#, "missing `methodArn`"),
        (r#"{"type":"TOKEN","methodArn":"arn:x/a/GET/p"}"#, "missing `authorizationToken`"),
        (r#"{"version":"2.0","type":"REQUEST"}"#, "missing `routeArn`"),
        (r#"{"type":"REQUEST","methodArn":"a","headers":{"x":1}}"#, "not valid JSON"),
        (r#"{"type":"WEBSOCKET","methodArn":"a"}"#, "not a Lambda authorizer event"),
    ];
    for (body, needle) in cases {
        let r = client
            .post(svc.url("/authorize"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status().as_u16(), 400, "{body}");
        assert_eq!(r.headers()["content-type"], "application/json");
        let msg = r.json::<Value>().await.expect("json")["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(msg.contains(needle), "{body}: {msg}");
    }
    let deep = "[".repeat(200) + &"]".repeat(200);
    let r = client.post(svc.url("/authorize")).body(deep).send().await.expect("send");
    assert_eq!(r.status().as_u16(), 400);
    // Over the default limit, Lambda's own 6 MiB payload limit.
    let big = format!(r#"{{"type":"REQUEST","methodArn":"a","path":"{}"}}"#, "a".repeat(6 * 1024 * 1024));
    let r = client.post(svc.url("/authorize")).body(big).send().await.expect("send");
    assert_eq!(r.status().as_u16(), 413);
    let r = client.get(svc.url("/authorize")).send().await.expect("send");
    assert_eq!(r.status().as_u16(), 405);
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let (core, svc) = setup("").await;
    let client = reqwest::Client::new();
    assert_eq!(
        client.get(svc.url("/healthz")).send().await.expect("healthz").status().as_u16(),
        200
    );
    let mut ready = false;
    for _ in 0..50 {
        if client.get(svc.url("/readyz")).send().await.expect("readyz").status().as_u16() == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(ready, "ready once the JWKS is loaded");
    let token = roles(&core, &["user"], 3600);
    svc.authorize(&rest_event("GET", "/items", &[("cookie", format!("sAccessToken={token}"))]))
        .await;
    let text = support::metrics_text(svc.addr).await;
    assert!(
        text.contains(r#"session_authorizer_decisions_total{front_door="lambda_request",outcome="allow"} 1"#),
        "{text}"
    );
    assert!(text.contains("session_authorizer_jwks_keys 2"), "{text}");
}

#[tokio::test]
async fn not_ready_while_the_core_is_unreachable() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let uri = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let svc = Service::start(settings(&uri, "")).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let r = reqwest::get(svc.url("/readyz")).await.expect("readyz");
    assert_eq!(r.status().as_u16(), 503);
    // No token: decided without the core, as the SDK does. A token: fails closed (401).
    assert_eq!(svc.authorize(&rest_event("GET", "/items", &[])).await.0, 200);
    let core = StubCore::start().await;
    let token = roles(&core, &["user"], 3600);
    assert_eq!(
        svc.authorize(&rest_event("GET", "/items", &[("cookie", format!("sAccessToken={token}"))]))
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn stage_policy_resource_covers_every_method_and_path() {
    // For API Gateway's result cache: one cached policy must cover every route it is reused on.
    let core = StubCore::start().await;
    let svc = Service::start(settings(
        &core.uri(),
        "[supertokens]\npass_sdk_routes = false\n[lambda]\npolicy_resource = \"stage\"\nhttp_api_response = \"iam\"\n",
    ))
    .await;
    let token = roles(&core, &["user"], 3600);
    let stage = format!("{}/*/*", support::METHOD_ARN_PREFIX);
    let events = [
        rest_event("GET", "/items/1", &[("cookie", format!("sAccessToken={token}"))]),
        rest_event("POST", "/", &[]),
        json!({"type": "TOKEN", "authorizationToken": token, "methodArn": format!("{}/DELETE/a/b/c", support::METHOD_ARN_PREFIX)}),
    ];
    for event in &events {
        let (status, body) = svc.authorize(event).await;
        assert_eq!(status, 200, "{event}");
        assert_eq!(body["policyDocument"]["Statement"][0]["Resource"], stage, "{event}");
    }
    let (_, body) = svc
        .authorize(&v2_event(&[format!("sAccessToken={token}")], json!({}), "/items"))
        .await;
    assert_eq!(
        body["policyDocument"]["Statement"][0]["Resource"],
        "arn:aws:execute-api:us-east-1:123456789012:abcdef123/test/*/*"
    );
}
