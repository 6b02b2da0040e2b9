//! Conformance against the real supertokens-node: every case is sent to the docs' Node Lambda
//! authorizer (the oracle) and to our `/authorize`, both pointed at the same stub core, and the
//! decision, principal, context body and Set-Cookie must match. Deliberate differences are
//! declared per case and asserted on both sides.

use crate::support;

use std::collections::HashMap;

use crate::support::VerifyMode;
use base64::Engine;
use serde_json::{Map, Value, json};
use session_authorizer::dev::{Issuer, KeyChoice, MintOptions, StubUser};
use support::{Oracle, Service, StubCore, rest_event, settings};

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Profile {
    /// AUTO anti-CSRF on a same-site setup (resolves to NONE).
    SameSite,
    ViaToken,
    ViaHeader,
    /// AUTO on a cross-site setup (resolves to VIA_CUSTOM_HEADER).
    CrossSite,
    StaticKeys,
    EvRequired,
    /// `MultiFactorAuth.init()` / `mfa = true`: the st-mfa validator on every route.
    Mfa,
}

impl Profile {
    fn oracle_config(self, core: &str) -> Value {
        let (api, web) = self.domains();
        json!({
            "connectionURI": core,
            "apiDomain": api,
            "websiteDomain": web,
            "apiBasePath": "/auth",
            "antiCsrf": match self { Profile::ViaToken => json!("VIA_TOKEN"), Profile::ViaHeader => json!("VIA_CUSTOM_HEADER"), _ => Value::Null },
            "useDynamicAccessTokenSigningKey": self != Profile::StaticKeys,
            "emailVerification": if self == Profile::EvRequired { json!("REQUIRED") } else { Value::Null },
            "mfa": self == Profile::Mfa,
        })
    }

    fn domains(self) -> (&'static str, &'static str) {
        match self {
            Profile::CrossSite => ("https://api.example.com", "https://example.org"),
            _ => ("http://localhost:3001", "http://localhost:3000"),
        }
    }

    fn our_toml(self, validators: &[Value], check_database: bool) -> String {
        let (api, web) = self.domains();
        let anti_csrf = match self {
            Profile::ViaToken => "VIA_TOKEN",
            Profile::ViaHeader => "VIA_CUSTOM_HEADER",
            _ => "AUTO",
        };
        let claims: Vec<String> = validators.iter().map(toml_inline).collect();
        format!(
            "[supertokens]\napi_domain = \"{api}\"\nwebsite_domain = \"{web}\"\nanti_csrf = \"{anti_csrf}\"\nuse_dynamic_access_token_signing_key = {}\nemail_verification = \"{}\"\nmfa = {}\n\n[[routes]]\npath = \"/**\"\ncheck_database = {check_database}\nclaims = [{}]\n",
            self != Profile::StaticKeys,
            if self == Profile::EvRequired { "REQUIRED" } else { "OFF" },
            self == Profile::Mfa,
            claims.join(", ")
        )
    }
}

fn toml_inline(v: &Value) -> String {
    let obj = v.as_object().expect("validator object");
    let parts: Vec<String> = obj.iter().map(|(k, v)| format!("{k} = {}", v)).collect();
    format!("{{ {} }}", parts.join(", "))
}

/// Our validator syntax -> the oracle's.
fn oracle_validator(v: &Value) -> Value {
    let claim = v["claim"].as_str().expect("claim");
    let max_age = v.get("max_age_secs").cloned().unwrap_or(Value::Null);
    let (kind, value) = if let Some(x) = v.get("is") {
        match claim {
            "st-ev" if x == &json!(true) => ("isVerified", Value::Null),
            "st-mfa" => ("mfaCompleted", Value::Null),
            _ => ("hasValue", x.clone()),
        }
    } else if let Some(x) = v.get("includes") {
        ("includes", x.clone())
    } else if let Some(x) = v.get("excludes") {
        ("excludes", x.clone())
    } else if let Some(x) = v.get("includes_all") {
        ("includesAll", x.clone())
    } else if let Some(x) = v.get("includes_any") {
        ("includesAny", x.clone())
    } else if let Some(x) = v.get("excludes_all") {
        ("excludesAll", x.clone())
    } else {
        panic!("unknown validator {v}")
    };
    let mut o = json!({"claim": claim, "kind": kind, "value": value});
    if !max_age.is_null() {
        o["maxAgeInSeconds"] = max_age;
    }
    o
}

/// A decision reduced to what both sides must agree on.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Allow { principal: String, set_cookie: String },
    Deny { body: Value, set_cookie: String },
    Unauthorized,
    Error,
}

fn from_oracle(v: &Value) -> Outcome {
    match v["outcome"].as_str() {
        Some("error") if v["message"] == "Unauthorized" => Outcome::Unauthorized,
        Some("error") => Outcome::Error,
        Some("response") => policy_outcome(&v["response"]),
        _ => panic!("oracle failed: {v}"),
    }
}

fn from_ours(status: u16, body: &Value) -> Outcome {
    match status {
        200 => policy_outcome(body),
        401 => {
            assert_eq!(body, &json!({"message": "Unauthorized"}));
            Outcome::Unauthorized
        }
        500 => Outcome::Error,
        other => panic!("unexpected status {other}: {body}"),
    }
}

fn policy_outcome(r: &Value) -> Outcome {
    let stmt = &r["policyDocument"]["Statement"][0];
    assert_eq!(r["policyDocument"]["Version"], "2012-10-17");
    assert_eq!(stmt["Action"], "execute-api:Invoke");
    assert!(
        stmt["Resource"].as_str().is_some_and(|s| s.starts_with(support::METHOD_ARN_PREFIX)),
        "resource: {r}"
    );
    let set_cookie = normalise_set_cookie(r["context"]["setCookie"].as_str().expect("setCookie is always a string"));
    let principal = r["principalId"].as_str().unwrap_or_default().to_owned();
    match stmt["Effect"].as_str() {
        Some("Allow") => Outcome::Allow { principal, set_cookie },
        Some("Deny") => {
            assert_eq!(principal, "");
            let body: Value = serde_json::from_str(r["context"]["body"].as_str().expect("body is a JSON string")).expect("body json");
            Outcome::Deny {
                body: normalise_body(body),
                set_cookie,
            }
        }
        other => panic!("effect {other:?}"),
    }
}

/// Expires dates and freshly minted tokens differ between two calls: check their form, then mask.
fn normalise_set_cookie(s: &str) -> String {
    if s.is_empty() {
        return String::new();
    }
    s.split(", sAccessToken")
        .map(|c| {
            let mut out = Vec::new();
            for attr in c.split("; ") {
                if let Some(date) = attr.strip_prefix("Expires=") {
                    let when = httpdate::parse_http_date(date).expect("Expires is an HTTP date");
                    let year_ahead = std::time::SystemTime::now() + std::time::Duration::from_secs(365 * 86_400);
                    let diff = year_ahead
                        .duration_since(when)
                        .or_else(|e| Ok::<_, ()>(e.duration()))
                        .expect("diff");
                    assert!(diff.as_secs() < 30, "cookie should expire a year from now: {date}");
                    out.push("Expires=<date>".to_owned());
                } else if let Some(jwt) = attr.strip_prefix("sAccessToken=") {
                    let payload = jwt.split('.').nth(1).expect("jwt");
                    let p: Value = serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("b64"))
                        .expect("json");
                    assert!(p["parentRefreshTokenHash1"].is_null(), "the new token has no parent hash");
                    out.push(format!("sAccessToken=<jwt {}>", normalise_payload(p)));
                } else {
                    out.push(attr.to_owned());
                }
            }
            out.join("; ")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A new token's payload with what depends on the moment of the call masked, after checking it:
/// `iat` is now, `exp` is ahead, and every claim's refetch time `t` is recent.
fn normalise_payload(mut p: Value) -> Value {
    let now_s = now_ms() / 1000;
    let obj = p.as_object_mut().expect("payload object");
    let iat = obj["iat"].as_u64().expect("iat");
    assert!(iat + 60 >= now_s && iat <= now_s + 1, "iat {iat} is not now ({now_s})");
    obj.insert("iat".into(), json!("<now>"));
    assert!(obj["exp"].as_u64().expect("exp") > now_s, "exp is ahead");
    obj.insert("exp".into(), json!("<exp>"));
    for (_, v) in obj.iter_mut() {
        if let Some(t) = v.get("t").and_then(Value::as_u64)
            && t + 60_000 >= now_ms()
        {
            v["t"] = json!("<recent>");
        }
    }
    p
}

/// `front-token` decoded, with the same masking as the token itself.
fn normalise_front_token(ft: &str) -> Value {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(ft)
        .expect("front-token is padded base64");
    let mut v: Value = serde_json::from_slice(&bytes).expect("front-token JSON");
    let keys: Vec<&String> = v.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["uid", "ate", "up"], "Node's key order");
    assert_eq!(
        v["ate"].as_u64().expect("ate") / 1000,
        v["up"]["exp"].as_u64().expect("exp"),
        "ate is exp in ms"
    );
    v["ate"] = json!("<exp ms>");
    let up = v["up"].take();
    v["up"] = normalise_payload(up);
    v
}

/// `ageInSeconds` depends on the moment of the call: round it.
fn normalise_body(mut body: Value) -> Value {
    if let Some(errors) = body["claimValidationErrors"].as_array_mut() {
        for e in errors {
            if let Some(age) = e["reason"]["ageInSeconds"].as_f64() {
                e["reason"]["ageInSeconds"] = json!((age / 10.0).round() as i64 * 10);
            }
        }
    }
    body
}

type OutcomeCheck = fn(&Outcome) -> bool;
type CoreHook = Box<dyn Fn(&StubCore)>;

struct Case {
    name: &'static str,
    profile: Profile,
    method: &'static str,
    headers: Vec<(&'static str, String)>,
    multi: Vec<(&'static str, Vec<String>)>,
    validators: Vec<Value>,
    check_database: bool,
    /// Deliberate difference: (what Node answers, what we answer).
    diverges: Option<(OutcomeCheck, OutcomeCheck)>,
    /// Run before the case (e.g. revoke a session in the stub core).
    setup: Option<CoreHook>,
    teardown: Option<CoreHook>,
    /// Also compare `front-token` (decoded): Node's from the SDK's response headers, ours from
    /// `/forward-auth` with the same request.
    front_token: bool,
}

fn case(name: &'static str, profile: Profile, method: &'static str, headers: Vec<(&'static str, String)>) -> Case {
    Case {
        name,
        profile,
        method,
        headers,
        multi: vec![],
        validators: vec![],
        check_database: false,
        diverges: None,
        setup: None,
        teardown: None,
        front_token: false,
    }
}

impl Case {
    fn validators(mut self, v: Vec<Value>) -> Self {
        self.validators = v;
        self
    }
    fn check_database(mut self) -> Self {
        self.check_database = true;
        self
    }
    fn multi(mut self, m: Vec<(&'static str, Vec<String>)>) -> Self {
        self.multi = m;
        self
    }
    fn diverges(mut self, node: OutcomeCheck, ours: OutcomeCheck) -> Self {
        self.diverges = Some((node, ours));
        self
    }
    fn setup(mut self, f: impl Fn(&StubCore) + 'static) -> Self {
        self.setup = Some(Box::new(f));
        self
    }
    fn teardown(mut self, f: impl Fn(&StubCore) + 'static) -> Self {
        self.teardown = Some(Box::new(f));
        self
    }
    fn front_token(mut self) -> Self {
        self.front_token = true;
        self
    }
}

fn verified_user(verified: bool) -> StubUser {
    StubUser {
        email: Some("someone@example.com".into()),
        email_verified: verified,
    }
}

fn claims(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"))
}

fn is_allow(o: &Outcome) -> bool {
    matches!(o, Outcome::Allow { principal, .. } if !principal.is_empty())
}
fn is_anonymous(o: &Outcome) -> bool {
    matches!(o, Outcome::Allow { principal, .. } if principal.is_empty())
}

fn cases(issuer: &Issuer) -> Vec<Case> {
    let mint = |o: MintOptions| issuer.mint(&o).expect("mint");
    let handle = |n: &str| format!("sh-{n}");
    let valid = |h: &str| {
        mint(MintOptions {
            session_handle: handle(h),
            ..Default::default()
        })
    };
    let cookie = |t: &str| format!("sAccessToken={t}");
    let bearer = |t: &str| format!("Bearer {t}");
    let expired = mint(MintOptions {
        ttl_secs: -5,
        ..Default::default()
    });
    let t = valid("main");
    let v5_payload = issuer.payload_for(&MintOptions::default());
    let header5 = issuer.header_for(KeyChoice::Dynamic, 5);
    let sig_of = |tok: &str| tok.rsplit('.').next().unwrap_or_default().to_owned();

    // Tampered: a payload for another user grafted onto a genuine signature.
    let mut other = v5_payload.clone();
    other["sub"] = json!("attacker");
    let tampered = format!("{}.{}.{}", b64(&header5), b64(&other), sig_of(&t));
    let unknown_kid = issuer
        .sign_raw(
            &json!({"alg":"RS256","typ":"JWT","kid":"d-1","version":"5"}),
            &v5_payload,
            KeyChoice::Rogue,
        )
        .expect("sign");
    let rogue_same_kid = mint(MintOptions {
        key: KeyChoice::Rogue,
        ..Default::default()
    });
    let static_signed = mint(MintOptions {
        key: KeyChoice::Static,
        ..Default::default()
    });
    let alg_none = format!(
        "{}.{}.",
        b64(&json!({"alg":"none","typ":"JWT","kid":issuer.dynamic_kid(),"version":"5"})),
        b64(&v5_payload)
    );
    let hs256 = {
        // HS256 keyed with the RSA public key (the classic key-confusion attack).
        use aws_lc_rs::hmac;
        let h = b64(&json!({"alg":"HS256","typ":"JWT","kid":issuer.dynamic_kid(),"version":"5"}));
        let input = format!("{h}.{}", b64(&v5_payload));
        let key = hmac::Key::new(hmac::HMAC_SHA256, issuer.public_jwk().to_string().as_bytes());
        let tag = hmac::sign(&key, input.as_bytes());
        format!("{input}.{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref()))
    };
    let rs512_header = issuer
        .sign_raw(
            &json!({"alg":"RS512","typ":"JWT","kid":issuer.dynamic_kid(),"version":"5"}),
            &v5_payload,
            KeyChoice::Dynamic,
        )
        .expect("sign");
    let garbage = "not.a.token".to_owned();
    let v4_no_tid = mint(MintOptions {
        version: 4,
        tenant_id: None,
        ..Default::default()
    });
    let v3 = mint(MintOptions {
        version: 3,
        ..Default::default()
    });
    let v9 = issuer
        .sign_raw(&issuer.header_for(KeyChoice::Dynamic, 9), &v5_payload, KeyChoice::Dynamic)
        .expect("sign");
    let mut stt = v5_payload.clone();
    stt["stt"] = json!(1);
    let stt1 = issuer.sign_raw(&header5, &stt, KeyChoice::Dynamic).expect("sign");
    let mut no_rsub = v5_payload.clone();
    no_rsub.as_object_mut().expect("obj").remove("rsub");
    let no_rsub = issuer.sign_raw(&header5, &no_rsub, KeyChoice::Dynamic).expect("sign");
    let mut future_nbf = v5_payload.clone();
    future_nbf["nbf"] = json!(now_ms() / 1000 + 600);
    let future_nbf = issuer.sign_raw(&header5, &future_nbf, KeyChoice::Dynamic).expect("sign");
    let mut future_iat = v5_payload.clone();
    future_iat["iat"] = json!(now_ms() / 1000 + 600);
    let future_iat = issuer.sign_raw(&header5, &future_iat, KeyChoice::Dynamic).expect("sign");
    let mut with_aud = v5_payload.clone();
    with_aud["aud"] = json!("my-api");
    let with_aud = issuer.sign_raw(&header5, &with_aud, KeyChoice::Dynamic).expect("sign");
    let refreshed = |h: &str| {
        mint(MintOptions {
            session_handle: handle(h),
            parent_refresh_token_hash1: Some("parent-hash".into()),
            ..Default::default()
        })
    };
    let csrf_token = mint(MintOptions {
        anti_csrf_token: Some("csrf-1".into()),
        ..Default::default()
    });
    let claim_token = |c: Map<String, Value>| {
        mint(MintOptions {
            claims: c,
            ..Default::default()
        })
    };
    let fresh = now_ms();
    let roles = claim_token(claims(&[
        ("st-role", json!({"v": ["user", "editor"], "t": fresh})),
        ("st-perm", json!({"v": ["read"], "t": fresh})),
    ]));
    let ev_true = claim_token(claims(&[("st-ev", json!({"v": true, "t": fresh}))]));
    // A `false` st-ev older than 10 s is refetched from the core (issue: core-backed sessions);
    // stamping it ahead keeps these cases on the token-only path however long the suite runs.
    let ev_false = claim_token(claims(&[("st-ev", json!({"v": false, "t": fresh + 600_000}))]));
    let mfa_ok = claim_token(claims(&[("st-mfa", json!({"c": {"emailpassword": fresh}, "v": true}))]));
    let mfa_no = claim_token(claims(&[("st-mfa", json!({"c": {}, "v": false}))]));
    let mfa_no_v = claim_token(claims(&[("st-mfa", json!({"c": {}}))]));
    let plan = claim_token(claims(&[
        ("plan", json!({"v": "pro", "t": fresh})),
        ("level", json!({"v": 3, "t": fresh})),
    ]));
    let stale_plan = claim_token(claims(&[("plan", json!({"v": "pro", "t": fresh - 120_000}))]));
    let user_token = |user: &str, h: &str, c: Map<String, Value>| {
        mint(MintOptions {
            user_id: user.into(),
            session_handle: handle(h),
            claims: c,
            ..Default::default()
        })
    };
    let ev_stale = claims(&[("st-ev", json!({"v": false, "t": fresh - 60_000}))]);
    let stale_roles = claims(&[("st-role", json!({"v": ["user"], "t": fresh - 120_000}))]);
    let stale_admin = claims(&[("st-role", json!({"v": ["user", "admin"], "t": fresh - 120_000}))]);
    use Profile::*;
    let d = SameSite;
    vec![
        // Token sources and precedence.
        case("valid cookie", d, "GET", vec![("cookie", cookie(&t))]),
        case("valid bearer", d, "GET", vec![("authorization", bearer(&t))]),
        case("no token", d, "GET", vec![]),
        case("unrelated cookies only", d, "GET", vec![("cookie", "a=1; b=2".into())]),
        case("expired cookie", d, "GET", vec![("cookie", cookie(&expired))]),
        case("expired bearer", d, "GET", vec![("authorization", bearer(&expired))]),
        case("tampered payload", d, "GET", vec![("cookie", cookie(&tampered))]),
        case("unknown kid", d, "GET", vec![("cookie", cookie(&unknown_kid))]),
        case("wrong key, known kid", d, "GET", vec![("cookie", cookie(&rogue_same_kid))]),
        case("static kid with dynamic keys", d, "GET", vec![("cookie", cookie(&static_signed))]),
        case("alg none", d, "GET", vec![("cookie", cookie(&alg_none))]),
        case("HS256 with the public key", d, "GET", vec![("authorization", bearer(&hs256))]),
        case("RS512 header", d, "GET", vec![("cookie", cookie(&rs512_header))]),
        case(
            "garbage bearer, valid cookie",
            d,
            "GET",
            vec![("authorization", bearer(&garbage)), ("cookie", cookie(&t))],
        ),
        case("garbage cookie only", d, "GET", vec![("cookie", cookie(&garbage))]),
        case(
            "bad-signature bearer beats valid cookie",
            d,
            "GET",
            vec![("authorization", bearer(&rogue_same_kid)), ("cookie", cookie(&t))],
        ),
        case(
            "valid bearer beats expired cookie",
            d,
            "GET",
            vec![("authorization", bearer(&t)), ("cookie", cookie(&expired))],
        ),
        case(
            "lower-case bearer scheme is not a bearer",
            d,
            "GET",
            vec![("authorization", format!("bearer {t}"))],
        ),
        case("basic auth header", d, "GET", vec![("authorization", "Basic dXNlcjpwYXNz".into())]),
        // Events as large as a gateway may send: the event carries a 64 KiB header twice
        // (`headers` and `multiValueHeaders`), more than the old 64 KiB body limit.
        case(
            "a 64 KiB header beside a valid cookie",
            d,
            "GET",
            vec![("cookie", cookie(&t)), ("x-big", "b".repeat(64 * 1024))],
        ),
        case(
            "a 64 KiB header beside an expired cookie",
            d,
            "GET",
            vec![("x-big", "b".repeat(64 * 1024)), ("cookie", cookie(&expired))],
        ),
        case(
            "duplicate sAccessToken cookies",
            d,
            "GET",
            vec![("cookie", format!("{}; {}", cookie(&t), cookie(&t)))],
        ),
        case(
            "duplicate cookies, garbage first",
            d,
            "GET",
            vec![("cookie", format!("{}; {}", cookie(&garbage), cookie(&t)))],
        ),
        case(
            "legacy sIdRefreshToken cookie",
            d,
            "GET",
            vec![("cookie", format!("sIdRefreshToken=x; {}", cookie(&t)))],
        ),
        case(
            "legacy cookie beats valid bearer",
            d,
            "GET",
            vec![("authorization", bearer(&t)), ("cookie", "sIdRefreshToken=x".into())],
        ),
        case("Cookie header capitalised", d, "GET", vec![("Cookie", cookie(&t))]),
        case("AUTHORIZATION header upper-case", d, "GET", vec![("AUTHORIZATION", bearer(&t))]),
        case("COOKIE header upper-case", d, "GET", vec![("COOKIE", cookie(&t))]).diverges(is_anonymous, is_allow),
        case("cookie only in multiValueHeaders", d, "GET", vec![])
            .multi(vec![("cookie", vec![cookie(&t)])])
            .diverges(is_anonymous, is_allow),
        case("quoted cookie value", d, "GET", vec![("cookie", format!("sAccessToken=\"{t}\""))]),
        case("JSON cookie value", d, "GET", vec![("cookie", format!("sAccessToken=j:\"{t}\""))]),
        // Token versions and structure.
        case("v4 token without tId", d, "GET", vec![("cookie", cookie(&v4_no_tid))]),
        case("v3 token", d, "GET", vec![("cookie", cookie(&v3))]),
        case("version 9 header", d, "GET", vec![("cookie", cookie(&v9))]),
        case("stt 1 is not a session token", d, "GET", vec![("cookie", cookie(&stt1))]),
        case("v5 without rsub", d, "GET", vec![("cookie", cookie(&no_rsub))]),
        case("nbf in the future", d, "GET", vec![("cookie", cookie(&future_nbf))]),
        case("iat in the future", d, "GET", vec![("cookie", cookie(&future_iat))]),
        case("aud present", d, "GET", vec![("cookie", cookie(&with_aud))]),
        // Core-backed paths.
        case(
            "first use after refresh, cookie",
            d,
            "GET",
            vec![("cookie", cookie(&refreshed("r1")))],
        ),
        case(
            "first use after refresh, bearer",
            d,
            "GET",
            vec![("authorization", bearer(&refreshed("r2")))],
        ),
        case(
            "first use after refresh, revoked",
            d,
            "GET",
            vec![("cookie", cookie(&refreshed("r3")))],
        )
        .setup(|i| i.issuer.revoke("sh-r3")),
        case("checkDatabase, live session", d, "GET", vec![("cookie", cookie(&valid("db1")))]).check_database(),
        case("checkDatabase, revoked session", d, "GET", vec![("cookie", cookie(&valid("db2")))])
            .check_database()
            .setup(|i| i.issuer.revoke("sh-db2")),
        case("core says try refresh", d, "GET", vec![("cookie", cookie(&refreshed("r4")))])
            .setup(|i| i.set_verify_mode(VerifyMode::TryRefresh))
            .teardown(|i| i.set_verify_mode(VerifyMode::Normal)),
        case("core answers 500", d, "GET", vec![("cookie", cookie(&refreshed("r5")))])
            .setup(|i| i.set_verify_mode(VerifyMode::Http500))
            .teardown(|i| i.set_verify_mode(VerifyMode::Normal)),
        // Anti-CSRF, every mode and method.
        case("NONE: POST with cookie", d, "POST", vec![("cookie", cookie(&t))]),
        case("NONE: OPTIONS with cookie", d, "OPTIONS", vec![("cookie", cookie(&t))]),
        case(
            "VIA_TOKEN: GET without header",
            ViaToken,
            "GET",
            vec![("cookie", cookie(&csrf_token))],
        ),
        case(
            "VIA_TOKEN: POST with matching header",
            ViaToken,
            "POST",
            vec![("cookie", cookie(&csrf_token)), ("anti-csrf", "csrf-1".into())],
        ),
        case(
            "VIA_TOKEN: POST without header",
            ViaToken,
            "POST",
            vec![("cookie", cookie(&csrf_token))],
        ),
        case(
            "VIA_TOKEN: POST with wrong header",
            ViaToken,
            "POST",
            vec![("cookie", cookie(&csrf_token)), ("anti-csrf", "nope".into())],
        ),
        case(
            "VIA_TOKEN: POST bearer without header",
            ViaToken,
            "POST",
            vec![("authorization", bearer(&csrf_token))],
        ),
        case(
            "VIA_TOKEN: token lacks anti-csrf",
            ViaToken,
            "PUT",
            vec![("cookie", cookie(&t)), ("anti-csrf", "csrf-1".into())],
        ),
        case(
            "VIA_TOKEN: HEAD is checked",
            ViaToken,
            "HEAD",
            vec![("cookie", cookie(&csrf_token))],
        ),
        case(
            "VIA_TOKEN: refreshed token on POST",
            ViaToken,
            "POST",
            vec![
                (
                    "cookie",
                    cookie(&mint(MintOptions {
                        session_handle: handle("r6"),
                        anti_csrf_token: Some("c6".into()),
                        parent_refresh_token_hash1: Some("p".into()),
                        ..Default::default()
                    })),
                ),
                ("anti-csrf", "c6".into()),
            ],
        ),
        case(
            "VIA_CUSTOM_HEADER: POST without rid",
            ViaHeader,
            "POST",
            vec![("cookie", cookie(&t))],
        ),
        case(
            "VIA_CUSTOM_HEADER: POST with rid",
            ViaHeader,
            "POST",
            vec![("cookie", cookie(&t)), ("rid", "anti-csrf".into())],
        ),
        case(
            "VIA_CUSTOM_HEADER: DELETE with RID upper-case",
            ViaHeader,
            "DELETE",
            vec![("cookie", cookie(&t)), ("RID", "session".into())],
        ),
        case("VIA_CUSTOM_HEADER: GET without rid", ViaHeader, "GET", vec![("cookie", cookie(&t))]),
        case(
            "VIA_CUSTOM_HEADER: POST bearer without rid",
            ViaHeader,
            "POST",
            vec![("authorization", bearer(&t))],
        ),
        case("VIA_CUSTOM_HEADER: POST without token", ViaHeader, "POST", vec![]),
        case("AUTO cross-site: POST without rid", CrossSite, "POST", vec![("cookie", cookie(&t))]),
        case(
            "AUTO cross-site: POST with rid",
            CrossSite,
            "POST",
            vec![("cookie", cookie(&t)), ("rid", "session".into())],
        ),
        case(
            "AUTO cross-site: refreshed cookie",
            CrossSite,
            "GET",
            vec![("cookie", cookie(&refreshed("r7")))],
        ),
        // Static keys.
        case(
            "static keys: static token",
            StaticKeys,
            "GET",
            vec![("cookie", cookie(&static_signed))],
        ),
        case("static keys: dynamic token", StaticKeys, "GET", vec![("cookie", cookie(&t))]),
        // Claim validators.
        case("EV REQUIRED: verified", EvRequired, "GET", vec![("cookie", cookie(&ev_true))]),
        case("EV REQUIRED: unverified", EvRequired, "GET", vec![("cookie", cookie(&ev_false))]),
        case("EV REQUIRED: no session", EvRequired, "GET", vec![]),
        case("role includes: pass", d, "GET", vec![("cookie", cookie(&roles))])
            .validators(vec![json!({"claim": "st-role", "includes": "editor"})]),
        case("role includes: fail", d, "GET", vec![("cookie", cookie(&roles))])
            .validators(vec![json!({"claim": "st-role", "includes": "admin"})]),
        case("role excludes: fail", d, "GET", vec![("cookie", cookie(&roles))])
            .validators(vec![json!({"claim": "st-role", "excludes": "user"})]),
        case("role excludes: pass", d, "GET", vec![("cookie", cookie(&roles))])
            .validators(vec![json!({"claim": "st-role", "excludes": "admin"})]),
        case("role includesAll: fail", d, "GET", vec![("cookie", cookie(&roles))])
            .validators(vec![json!({"claim": "st-role", "includes_all": ["user", "admin"]})]),
        case("role includesAll: pass", d, "GET", vec![("cookie", cookie(&roles))])
            .validators(vec![json!({"claim": "st-role", "includes_all": ["user", "editor"]})]),
        case("role includesAny: pass", d, "GET", vec![("cookie", cookie(&roles))])
            .validators(vec![json!({"claim": "st-role", "includes_any": ["admin", "editor"]})]),
        case("role includesAny: fail", d, "GET", vec![("cookie", cookie(&roles))])
            .validators(vec![json!({"claim": "st-role", "includes_any": ["admin", "ops"]})]),
        case("role excludesAll: fail", d, "GET", vec![("cookie", cookie(&roles))])
            .validators(vec![json!({"claim": "st-role", "excludes_all": ["ops", "editor"]})]),
        case("role excludesAll: pass", d, "GET", vec![("cookie", cookie(&roles))])
            .validators(vec![json!({"claim": "st-role", "excludes_all": ["ops", "admin"]})]),
        case("permission includes: pass", d, "GET", vec![("cookie", cookie(&roles))])
            .validators(vec![json!({"claim": "st-perm", "includes": "read"})]),
        case("permission includes: fail", d, "GET", vec![("cookie", cookie(&roles))])
            .validators(vec![json!({"claim": "st-perm", "includes": "write"})]),
        case("mfa: complete", d, "GET", vec![("cookie", cookie(&mfa_ok))]).validators(vec![json!({"claim": "st-mfa", "is": true})]),
        case("mfa: incomplete", d, "GET", vec![("cookie", cookie(&mfa_no))]).validators(vec![json!({"claim": "st-mfa", "is": true})]),
        case("mfa: no v", d, "GET", vec![("cookie", cookie(&mfa_no_v))]).validators(vec![json!({"claim": "st-mfa", "is": true})]),
        case("primitive claim: pass", d, "GET", vec![("cookie", cookie(&plan))])
            .validators(vec![json!({"claim": "plan", "is": "pro"}), json!({"claim": "level", "is": 3})]),
        case("primitive claim: wrong value", d, "GET", vec![("cookie", cookie(&plan))])
            .validators(vec![json!({"claim": "plan", "is": "enterprise"})]),
        case("primitive claim: too old", d, "GET", vec![("cookie", cookie(&stale_plan))])
            .validators(vec![json!({"claim": "plan", "is": "pro", "max_age_secs": 60})]),
        case("two failing validators keep their order", d, "GET", vec![("cookie", cookie(&plan))])
            .validators(vec![json!({"claim": "level", "is": 4}), json!({"claim": "plan", "is": "free"})]),
        case(
            "EV REQUIRED plus a route validator",
            EvRequired,
            "GET",
            vec![("cookie", cookie(&ev_false))],
        )
        .validators(vec![json!({"claim": "plan", "is": "pro"})]),
        case(
            "claims on a first use after refresh",
            d,
            "GET",
            vec![(
                "cookie",
                cookie(&mint(MintOptions {
                    session_handle: handle("r8"),
                    parent_refresh_token_hash1: Some("p".into()),
                    claims: claims(&[("plan", json!({"v": "free", "t": fresh}))]),
                    ..Default::default()
                })),
            )],
        )
        .validators(vec![json!({"claim": "plan", "is": "pro"})]),
        // Core-backed claims: refetch from the stub core, regenerate, new token.
        case(
            "EV refetch: verified after a stale false",
            EvRequired,
            "GET",
            vec![("cookie", cookie(&user_token("ev-1", "rf1", ev_stale.clone())))],
        )
        .setup(|i| i.issuer.upsert_user("ev-1", verified_user(true)))
        .front_token(),
        case(
            "EV refetch: still unverified",
            EvRequired,
            "GET",
            vec![("cookie", cookie(&user_token("ev-2", "rf2", ev_stale.clone())))],
        )
        .setup(|i| i.issuer.upsert_user("ev-2", verified_user(false))),
        case(
            "EV refetch: unknown user",
            EvRequired,
            "GET",
            vec![("cookie", cookie(&user_token("ev-unknown", "rf3", ev_stale.clone())))],
        ),
        case(
            "EV refetch: user without email",
            EvRequired,
            "GET",
            vec![("cookie", cookie(&user_token("ev-4", "rf4", ev_stale.clone())))],
        )
        .setup(|i| i.issuer.upsert_user("ev-4", StubUser::default()))
        .front_token(),
        case(
            "EV refetch: claim missing, bearer",
            EvRequired,
            "GET",
            vec![("authorization", bearer(&user_token("ev-5", "rf5", Map::new())))],
        )
        .setup(|i| i.issuer.upsert_user("ev-5", verified_user(true)))
        .front_token(),
        case(
            "EV refetch: anti-csrf header echoed",
            EvRequired,
            "GET",
            vec![
                ("cookie", cookie(&user_token("ev-6", "rf6", Map::new()))),
                ("anti-csrf", "x".into()),
            ],
        )
        .setup(|i| i.issuer.upsert_user("ev-6", verified_user(true)))
        .front_token(),
        case(
            "EV refetch: first use after refresh",
            EvRequired,
            "GET",
            vec![(
                "cookie",
                cookie(&mint(MintOptions {
                    user_id: "ev-7".into(),
                    session_handle: handle("rf7"),
                    parent_refresh_token_hash1: Some("p".into()),
                    ..Default::default()
                })),
            )],
        )
        .setup(|i| i.issuer.upsert_user("ev-7", verified_user(true)))
        .front_token(),
        case(
            "role refetch: granted since the token",
            d,
            "GET",
            vec![("cookie", cookie(&user_token("role-1", "rf8", stale_roles.clone())))],
        )
        .validators(vec![json!({"claim": "st-role", "includes": "admin", "max_age_secs": 60})])
        .setup(|i| i.issuer.set_roles("public", "role-1", &["user", "admin"]))
        .front_token(),
        case(
            "role refetch: revoked since the token",
            d,
            "GET",
            vec![("cookie", cookie(&user_token("role-2", "rf9", stale_admin.clone())))],
        )
        .validators(vec![json!({"claim": "st-role", "includes": "admin", "max_age_secs": 60})])
        .setup(|i| i.issuer.set_roles("public", "role-2", &["user"])),
        case(
            "role refetch: claim missing, tenant roles",
            d,
            "GET",
            vec![(
                "cookie",
                cookie(&mint(MintOptions {
                    user_id: "role-3".into(),
                    tenant_id: Some("acme".into()),
                    session_handle: handle("rf10"),
                    ..Default::default()
                })),
            )],
        )
        .validators(vec![json!({"claim": "st-role", "includes": "admin"})])
        .setup(|i| {
            i.issuer.set_roles("public", "role-3", &["user"]);
            i.issuer.set_roles("acme", "role-3", &["admin"]);
        })
        .front_token(),
        case(
            "permission refetch: from roles",
            d,
            "GET",
            vec![("cookie", cookie(&user_token("perm-1", "rf11", Map::new())))],
        )
        .validators(vec![json!({"claim": "st-perm", "includes_all": ["read", "write"]})])
        .setup(|i| {
            i.issuer.set_roles("public", "perm-1", &["editor", "viewer", "ghost"]);
            i.issuer.set_permissions("editor", &["write", "read"]);
            i.issuer.set_permissions("viewer", &["read", "list"]);
        })
        .front_token(),
        case(
            "permission refetch: missing permission",
            d,
            "GET",
            vec![("cookie", cookie(&user_token("perm-2", "rf12", Map::new())))],
        )
        .validators(vec![json!({"claim": "st-perm", "includes": "delete"})])
        .setup(|i| {
            i.issuer.set_roles("public", "perm-2", &["viewer"]);
            i.issuer.set_permissions("viewer", &["read", "list"]);
        }),
        case(
            "mfa refetch: claim missing, unknown user",
            Mfa,
            "GET",
            vec![("cookie", cookie(&user_token("mfa-unknown", "rf13", Map::new())))],
        ),
        case("MFA on: complete", Mfa, "GET", vec![("cookie", cookie(&mfa_ok))]),
        case("MFA on: incomplete", Mfa, "GET", vec![("cookie", cookie(&mfa_no))]),
        case("MFA on: no session", Mfa, "GET", vec![]),
        case(
            "refetch, then regenerate UNAUTHORISED",
            EvRequired,
            "GET",
            vec![("cookie", cookie(&user_token("ev-8", "rf14", ev_stale.clone())))],
        )
        .setup(|i| {
            i.issuer.upsert_user("ev-8", verified_user(true));
            i.issuer.revoke("sh-rf14");
        }),
        case(
            "core down during a refetch",
            EvRequired,
            "GET",
            vec![("cookie", cookie(&user_token("ev-9", "rf15", ev_stale.clone())))],
        )
        .setup(|i| {
            i.issuer.upsert_user("ev-9", verified_user(true));
            i.set_lookups_down(true);
        })
        .teardown(|i| i.set_lookups_down(false)),
        case(
            "custom claim missing: nothing to fetch",
            d,
            "GET",
            vec![("cookie", cookie(&user_token("cc-1", "rf16", Map::new())))],
        )
        .validators(vec![json!({"claim": "plan", "is": "pro"})]),
        case(
            "checkDatabase, then refetch",
            EvRequired,
            "GET",
            vec![("cookie", cookie(&user_token("ev-10", "rf17", ev_stale.clone())))],
        )
        .check_database()
        .setup(|i| i.issuer.upsert_user("ev-10", verified_user(true)))
        .front_token(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_match_supertokens_node() {
    let core = StubCore::start().await;
    let cases = cases(&core.issuer);
    assert!(cases.len() >= 60, "the suite covers at least 60 cases");
    let mut oracles: HashMap<Profile, Oracle> = HashMap::new();
    let mut services: HashMap<String, Service> = HashMap::new();
    let mut failures = Vec::new();
    for c in &cases {
        let oracle = oracles
            .entry(c.profile)
            .or_insert_with(|| Oracle::start(&c.profile.oracle_config(&core.uri())));
        let toml = c.profile.our_toml(&c.validators, c.check_database);
        if !services.contains_key(&toml) {
            services.insert(toml.clone(), Service::start(settings(&core.uri(), &toml)).await);
        }
        let service = &services[&toml];
        let mut event = rest_event(c.method, "/items/1", &c.headers);
        for (k, vs) in &c.multi {
            event["multiValueHeaders"][*k] = json!(vs);
        }
        if let Some(f) = &c.setup {
            f(&core);
        }
        let options = json!({
            "checkDatabase": c.check_database,
            "validators": c.validators.iter().map(oracle_validator).collect::<Vec<_>>(),
        });
        let node_raw = oracle.authorize(&event, &options).await;
        let node = from_oracle(&node_raw);
        let (status, body) = service.authorize(&event).await;
        let ours = from_ours(status, &body);
        let front_tokens = if c.front_token {
            let node_ft = node_raw["responseHeaders"]
                .as_array()
                .and_then(|hs| hs.iter().find(|h| h["key"] == "front-token"))
                .and_then(|h| h["value"].as_str())
                .map(normalise_front_token);
            let mut fa = reqwest::Client::new()
                .get(service.url("/forward-auth"))
                .header("x-original-method", c.method)
                .header("x-original-uri", "/items/1");
            for (k, v) in &c.headers {
                fa = fa.header(*k, v);
            }
            let reply = fa.send().await.expect("forward-auth");
            let ours_ft = reply
                .headers()
                .get("front-token")
                .and_then(|v| v.to_str().ok())
                .map(normalise_front_token);
            assert!(node_ft.is_some(), "{}: Node sent no front-token: {node_raw}", c.name);
            Some((node_ft, ours_ft))
        } else {
            None
        };
        if let Some(f) = &c.teardown {
            f(&core);
        }
        if let Some((node_ft, ours_ft)) = &front_tokens
            && node_ft != ours_ft
        {
            failures.push(format!("{}: front-token node {node_ft:?} vs ours {ours_ft:?}", c.name));
        }
        if let Outcome::Allow { principal, .. } = &ours
            && !principal.is_empty()
        {
            assert_eq!(body["context"]["userId"], json!(principal), "{}: context.userId", c.name);
        }
        let agrees = match &c.diverges {
            None => node == ours,
            Some((n, o)) => n(&node) && o(&ours),
        };
        println!("{:<50} node={:?} ours={:?}", c.name, node, ours);
        if !agrees {
            failures.push(format!(
                "{}: node {:?} ({}) vs ours {:?} ({status} {body})",
                c.name, node, node_raw, ours
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
