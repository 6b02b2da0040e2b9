//! The usual JWT attacks (RFC 8725 and friends), each a named case sent through real front doors
//! (`POST /authorize`, `/forward-auth`, gRPC `Check`), by Bearer and by cookie, on an optional and
//! a required route, against the stub core. None may produce a session; each must get exactly
//! the answer an ordinary invalid token gets:
//! - a token that parses but cannot be verified gets what an **expired** token gets (the SDK's
//!   TRY_REFRESH_TOKEN: 401 `Unauthorized` / `{"message":"try refresh token"}`);
//! - a candidate that does not parse as a SuperTokens token counts as absent, as in the SDK, and
//!   gets what **`not.a.token`** gets (anonymous on an optional route, 401 `unauthorised` on a
//!   required one).
//!
//! The core is reached only through a recorder that checks it is never asked for anything but
//! its JWKS, and a second listener (the `jku`/`x5u` target) must never be contacted at all.

use crate::support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use serde_json::{Value, json};
use session_authorizer::dev::{Issuer, KeyChoice, MintOptions};
use support::{Service, StubCore, rest_event, settings};

const CONFIG: &str = r#"
[[routes]]
path = "/private/**"
session = "required"
"#;

/// Which ordinary invalid token an attack must be answered like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Like {
    /// Parses, fails verification: answered like an expired token (TRY_REFRESH_TOKEN).
    Expired,
    /// Does not parse as a SuperTokens token: answered like `not.a.token` (no session).
    Garbage,
}

struct Attack {
    name: String,
    token: String,
    like: Like,
}

fn attack(name: impl Into<String>, token: impl Into<String>, like: Like) -> Attack {
    Attack {
        name: name.into(),
        token: token.into(),
        like,
    }
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"))
}

fn segments(token: &str) -> (String, String, String) {
    let mut p = token.splitn(3, '.');
    let mut next = || p.next().expect("segment").to_owned();
    (next(), next(), next())
}

fn decode_segment(s: &str) -> String {
    String::from_utf8(URL_SAFE_NO_PAD.decode(s).expect("b64")).expect("utf8")
}

/// The answer a front door gives, compared byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    status: i32,
    body: String,
    user: Option<String>,
}

struct Doors {
    svc: Service,
    http: reqwest::Client,
}

#[derive(Debug, Clone, Copy)]
enum Transport {
    Bearer,
    Cookie,
}

impl Transport {
    fn header(self, token: &str) -> (&'static str, String) {
        match self {
            Transport::Bearer => ("authorization", format!("Bearer {token}")),
            Transport::Cookie => ("cookie", format!("sAccessToken={token}")),
        }
    }
}

const DOORS: [&str; 3] = ["authorize", "forward-auth", "grpc"];
const ROUTES: [&str; 2] = ["/items", "/private/x"];
const TRANSPORTS: [Transport; 2] = [Transport::Bearer, Transport::Cookie];

impl Doors {
    async fn answer(&self, door: &str, path: &str, transport: Transport, token: &str) -> Answer {
        let (name, value) = transport.header(token);
        match door {
            "authorize" => {
                let (status, body) = self.svc.authorize(&rest_event("GET", path, &[(name, value)])).await;
                let user = body["principalId"].as_str().filter(|p| !p.is_empty()).map(str::to_owned);
                Answer {
                    status: i32::from(status),
                    body: body.to_string(),
                    user,
                }
            }
            "forward-auth" => {
                let r = self
                    .http
                    .get(self.svc.url("/forward-auth"))
                    .header("x-original-method", "GET")
                    .header("x-original-uri", path)
                    .header(name, value)
                    .send()
                    .await
                    .expect("forward-auth");
                let status = i32::from(r.status().as_u16());
                let user = r.headers().get("x-user-id").map(|v| v.to_str().expect("ascii").to_owned());
                Answer {
                    status,
                    body: r.text().await.expect("body"),
                    user,
                }
            }
            _ => {
                let mut client = AuthorizationClient::connect(format!("http://{}", self.svc.grpc_addr))
                    .await
                    .expect("grpc connect");
                let req = support::check_request("GET", path, HashMap::from([(name.to_owned(), value)]));
                let r = client.check(req).await.expect("check").into_inner();
                match r.http_response {
                    Some(HttpResponse::OkResponse(ok)) => Answer {
                        status: 200,
                        body: String::new(),
                        user: ok
                            .headers
                            .iter()
                            .filter_map(|h| h.header.as_ref())
                            .find(|h| h.key == "x-user-id")
                            .map(|h| h.value.clone()),
                    },
                    Some(HttpResponse::DeniedResponse(d)) => Answer {
                        status: d.status.map_or(0, |s| s.code),
                        body: d.body,
                        user: None,
                    },
                    other => panic!("unexpected gRPC answer {other:?}"),
                }
            }
        }
    }

    /// Every door, route and transport: (door, route, transport, answer).
    async fn answers(&self, token: &str) -> Vec<(String, Answer)> {
        let mut out = Vec::new();
        for door in DOORS {
            for route in ROUTES {
                for transport in TRANSPORTS {
                    let a = self.answer(door, route, transport, token).await;
                    out.push((format!("{door} {route} {transport:?}"), a));
                }
            }
        }
        out
    }
}

/// A stand-in for the core's address that records every request and passes it to the stub core.
struct Recorder {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

async fn recorder(core: &StubCore) -> Recorder {
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let (log, upstream) = (seen.clone(), core.uri());
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (log, upstream) = (log.clone(), upstream.clone());
        async move {
            let (parts, body) = req.into_parts();
            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
            log.lock().expect("log").push(format!("{} {path}", parts.method));
            let body = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
            let r = reqwest::Client::new()
                .request(parts.method, format!("{upstream}{path}"))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("stub core");
            let status = r.status();
            (status, r.bytes().await.expect("stub body"))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    Recorder { addr, seen }
}

/// A listener an attacker's `jku`/`x5u` points at; counts connections (it must see none).
async fn attacker_listener() -> (SocketAddr, Arc<Mutex<usize>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let hits = Arc::new(Mutex::new(0usize));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((_s, _)) = listener.accept().await {
            *counter.lock().expect("count") += 1;
        }
    });
    (addr, hits)
}

/// An RSA key of the attacker's own, with its public JWK.
struct AttackerKey {
    pair: KeyPair,
}

impl AttackerKey {
    fn new() -> Self {
        Self {
            pair: KeyPair::generate(KeySize::Rsa2048).expect("keygen"),
        }
    }
    fn jwk(&self, kid: &str) -> Value {
        let pk = self.pair.public_key();
        json!({"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
               "n": URL_SAFE_NO_PAD.encode(pk.modulus().big_endian_without_leading_zero()),
               "e": URL_SAFE_NO_PAD.encode(pk.exponent().big_endian_without_leading_zero())})
    }
    fn sign(&self, header: &Value, payload: &Value) -> String {
        let input = format!("{}.{}", b64(header), b64(payload));
        let mut sig = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut sig)
            .expect("sign");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }
}

/// DER encoding, enough for RSA public keys.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

fn der_uint(big_endian: &[u8]) -> Vec<u8> {
    let mut v = big_endian.to_vec();
    if v.first().is_some_and(|b| b & 0x80 != 0) {
        v.insert(0, 0);
    }
    der(0x02, &v)
}

fn pem(label: &str, der: &[u8]) -> String {
    let b = STANDARD.encode(der);
    let lines: Vec<&str> = b.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("ascii")).collect();
    format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"))
}

/// The core's public key in every form an HMAC key-confusion attack might use as the secret.
fn public_key_forms(issuer: &Issuer) -> Vec<(&'static str, Vec<u8>)> {
    let jwk = issuer.public_jwk();
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().expect("n")).expect("n");
    let e = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().expect("e")).expect("e");
    let pkcs1 = der(0x30, &[der_uint(&n), der_uint(&e)].concat());
    let rsa_oid = [0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    let algorithm = der(0x30, &[&rsa_oid[..], &[0x05, 0x00]].concat());
    let spki = der(0x30, &[algorithm, der(0x03, &[&[0u8][..], &pkcs1].concat())].concat());
    // The encodings are right if a JWT library verifies the core's signatures with them.
    let genuine = issuer.mint(&MintOptions::default()).expect("mint");
    let (gh, gp, gs) = segments(&genuine);
    let message = format!("{gh}.{gp}");
    let key = jsonwebtoken::DecodingKey::from_rsa_der(&pkcs1);
    let ok = jsonwebtoken::crypto::verify(&gs, message.as_bytes(), &key, jsonwebtoken::Algorithm::RS256);
    assert!(ok.expect("verify"), "the hand-made PKCS#1 encoding is not the core's key");
    let spki_pem = pem("PUBLIC KEY", &spki);
    let body: String = spki_pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert_eq!(STANDARD.decode(body).expect("pem"), spki, "PEM wraps the DER");
    vec![
        ("JWK JSON", jwk.to_string().into_bytes()),
        ("PKCS#1 DER", pkcs1.clone()),
        ("SPKI DER", spki),
        ("PKCS#1 PEM", pem("RSA PUBLIC KEY", &pkcs1).into_bytes()),
        ("SPKI PEM", spki_pem.clone().into_bytes()),
        ("SPKI PEM without final newline", spki_pem.trim_end().as_bytes().to_vec()),
        ("modulus bytes", n),
    ]
}

fn hmac_token(alg: &str, kid: &str, payload: &Value, secret: &[u8]) -> String {
    use aws_lc_rs::hmac;
    let algorithm = match alg {
        "HS256" => hmac::HMAC_SHA256,
        "HS384" => hmac::HMAC_SHA384,
        _ => hmac::HMAC_SHA512,
    };
    let input = format!(
        "{}.{}",
        b64(&json!({"alg": alg, "typ": "JWT", "kid": kid, "version": "5"})),
        b64(payload)
    );
    let tag = hmac::sign(&hmac::Key::new(algorithm, secret), input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// A genuine token whose signature holds both `-` and `_` (so alphabet swaps change it).
fn genuine_with_url_safe_chars(issuer: &Issuer) -> String {
    for i in 0..64 {
        let t = issuer
            .mint(&MintOptions {
                session_handle: format!("alphabet-{i}"),
                ..Default::default()
            })
            .expect("mint");
        let (_, _, s) = segments(&t);
        if s.contains('-') && s.contains('_') {
            return t;
        }
    }
    panic!("no signature with both - and _ in 64 tries");
}

/// Re-encodes a segment's JSON text after a textual edit (for duplicate keys).
fn edit_segment(segment: &str, edit: impl Fn(&str) -> String) -> String {
    URL_SAFE_NO_PAD.encode(edit(&decode_segment(segment)))
}

fn attacks(issuer: &Issuer, attacker: &AttackerKey, jku: SocketAddr) -> Vec<Attack> {
    use Like::{Expired, Garbage};
    let kid = issuer.dynamic_kid().to_owned();
    let payload = issuer.payload_for(&MintOptions::default());
    let header = issuer.header_for(KeyChoice::Dynamic, 5);
    let genuine = issuer.mint(&MintOptions::default()).expect("mint");
    let (h, p, s) = segments(&genuine);
    let signed = |header: Value| issuer.sign_raw(&header, &payload, KeyChoice::Dynamic).expect("sign");
    let with_header = |extra: Value| {
        let mut hd = header.clone();
        for (k, v) in extra.as_object().expect("object") {
            hd[k] = v.clone();
        }
        signed(hd)
    };
    let mut out = Vec::new();

    // alg: none, in its spellings, with the signature dropped or kept.
    for alg in ["none", "None", "NONE", "nOnE"] {
        let hd = json!({"alg": alg, "typ": "JWT", "kid": kid, "version": "5"});
        out.push(attack(format!("alg {alg}, empty signature"), format!("{}.{p}.", b64(&hd)), Expired));
        out.push(attack(
            format!("alg {alg}, genuine signature kept"),
            format!("{}.{p}.{s}", b64(&hd)),
            Expired,
        ));
    }
    // HMAC keyed with the core's public key, in each encoding a library might hand over.
    for (form, secret) in public_key_forms(issuer) {
        for alg in ["HS256", "HS384", "HS512"] {
            out.push(attack(
                format!("{alg} keyed with the public key as {form}"),
                hmac_token(alg, &kid, &payload, &secret),
                Expired,
            ));
        }
    }
    // Another algorithm named in the header over a genuine RS256 signature of the core's key:
    // a verifier that trusts the header's alg, or ignores it, would accept these.
    for alg in [
        json!("RS384"),
        json!("RS512"),
        json!("PS256"),
        json!("PS512"),
        json!("ES256"),
        json!("EdDSA"),
        json!("rs256"),
        json!("RS256 "),
        json!(["RS256"]),
        json!(256),
        Value::Null,
    ] {
        out.push(attack(
            format!("alg {alg} over a genuine RS256 signature"),
            with_header(json!({ "alg": alg })),
            Expired,
        ));
    }
    let mut no_alg = header.clone();
    no_alg.as_object_mut().expect("object").remove("alg");
    out.push(attack("alg missing", signed(no_alg), Expired));
    // kid with path, URL, SQL or header-injection content; the JWKS is the only key source.
    for bad_kid in [
        json!("../../../../etc/passwd"),
        json!(format!("{kid}/../../.well-known/jwks.json")),
        json!("%2e%2e%2f%2e%2e%2fetc%2fpasswd"),
        json!("' OR '1'='1' --"),
        json!(format!("{kid}' OR 1=1; DROP TABLE keys; --")),
        json!(format!("http://{jku}/jwks.json")),
        json!(format!("{kid}\r\nx-injected: 1")),
        json!(format!("{kid}\u{0}")),
        json!("k".repeat(8 * 1024)),
        json!(""),
        json!(7),
        json!({"kid": kid}),
        Value::Null,
    ] {
        let shown: String = bad_kid.to_string().chars().take(60).collect();
        out.push(attack(format!("kid {shown}"), with_header(json!({ "kid": bad_kid })), Expired));
    }
    let mut no_kid = header.clone();
    no_kid.as_object_mut().expect("object").remove("kid");
    out.push(attack("kid missing", signed(no_kid), Garbage));
    // jku / x5u / jwk: an attacker's key, offered by URL or inline, is never fetched nor used.
    let attacker_kid = "d-attacker";
    let jwks_url = format!("http://{jku}/.well-known/jwks.json");
    for (kid_used, extra) in [
        (attacker_kid, json!({ "jku": jwks_url })),
        (kid.as_str(), json!({ "jku": jwks_url })),
        (attacker_kid, json!({ "x5u": format!("http://{jku}/cert.pem") })),
        (attacker_kid, json!({ "jwk": attacker.jwk(attacker_kid) })),
        (kid.as_str(), json!({ "jwk": attacker.jwk(&kid) })),
        (
            attacker_kid,
            json!({ "jku": jwks_url, "x5u": format!("http://{jku}/c"), "jwk": attacker.jwk(attacker_kid), "x5c": ["MIIB"] }),
        ),
    ] {
        let mut hd = json!({"alg": "RS256", "typ": "JWT", "kid": kid_used, "version": "5"});
        for (k, v) in extra.as_object().expect("object") {
            hd[k] = v.clone();
        }
        let names: Vec<&String> = extra.as_object().expect("object").keys().collect();
        out.push(attack(
            format!("{names:?} header with an attacker's key, kid {kid_used}"),
            attacker.sign(&hd, &payload),
            Expired,
        ));
    }
    // crit is refused outright, genuine signature or not: no extension is understood.
    for crit in [json!(["exp"]), json!([]), json!(["b64"]), json!("b64")] {
        out.push(attack(
            format!("crit {crit} with b64 false"),
            with_header(json!({ "crit": crit, "b64": false })),
            Expired,
        ));
        out.push(attack(format!("crit {crit}"), with_header(json!({ "crit": crit })), Expired));
    }
    out.push(attack(
        "b64: false (unencoded payload)",
        with_header(json!({ "b64": false })),
        Expired,
    ));
    // Duplicate JSON keys added to a genuine token (the signature no longer covers the bytes).
    let dup_header = [
        r#","alg":"none"}"#,
        r#","alg":"HS256"}"#,
        r#","kid":"d-attacker"}"#,
        r#","alg":"RS256","alg":"none"}"#,
    ];
    for tail in dup_header {
        let h2 = edit_segment(&h, |t| format!("{}{tail}", t.trim_end_matches('}')));
        out.push(attack(
            format!("duplicate keys in the header: {tail}"),
            format!("{h2}.{p}.{s}"),
            Expired,
        ));
    }
    for tail in [
        r#","sub":"admin"}"#,
        r#","exp":99999999999}"#,
        r#","st-role":{"v":["admin"],"t":0}}"#,
    ] {
        let p2 = edit_segment(&p, |t| format!("{}{tail}", t.trim_end_matches('}')));
        out.push(attack(
            format!("duplicate keys in the payload: {tail}"),
            format!("{h}.{p2}.{s}"),
            Expired,
        ));
    }
    let p2 = edit_segment(&p, |t| format!(r#"{{"sub":"admin",{}"#, t.trim_start_matches('{')));
    out.push(attack(
        "duplicate keys in the payload (first occurrence)",
        format!("{h}.{p2}.{s}"),
        Expired,
    ));
    // Oversized: a forged token with a huge claim, and a genuine one padded past the bound.
    let mut big = payload.clone();
    big["pad"] = json!("x".repeat(20 * 1024));
    out.push(attack(
        "oversized forged token",
        format!("{}.{}.{s}", b64(&header), b64(&big)),
        Garbage,
    ));
    out.push(attack(
        "oversized genuine token (padded signature)",
        format!("{genuine}{}", "A".repeat(17 * 1024)),
        Garbage,
    ));
    // Base64 tricks: padding, the standard alphabet, whitespace, non-canonical trailing bits.
    let url_safe = genuine_with_url_safe_chars(issuer);
    let (uh, up, us) = segments(&url_safe);
    let std_alphabet = |x: &str| x.replace('-', "+").replace('_', "/");
    for (name, token) in [
        ("= padding on the signature", format!("{uh}.{up}.{us}==")),
        ("= padding on the header", format!("{uh}==.{up}.{us}")),
        ("= padding on the payload", format!("{uh}.{up}=.{us}")),
        ("+/ alphabet in the signature", format!("{uh}.{up}.{}", std_alphabet(&us))),
        ("+/ alphabet in the signature, padded", format!("{uh}.{up}.{}==", std_alphabet(&us))),
        ("tab inside the signature", format!("{uh}.{up}.{}\t{}", &us[..100], &us[100..])),
        ("tab inside the header", format!("{}\t{}.{up}.{us}", &uh[..10], &uh[10..])),
    ] {
        assert_ne!(token, url_safe, "{name}");
        out.push(attack(name, token, Expired));
    }
    // The signature's last character carries 4 unused bits: flipping one gives the same bytes.
    let last = us.chars().last().expect("last");
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let idx = alphabet.find(last).expect("in alphabet");
    let twin = alphabet.chars().nth(idx ^ 1).expect("twin");
    out.push(attack(
        "non-canonical base64 (same signature bytes)",
        format!("{uh}.{up}.{}{twin}", &us[..us.len() - 1]),
        Expired,
    ));
    // Static key where dynamic keys are required; a kid relabelled between the two.
    out.push(attack(
        "signed by the static key while dynamic keys are required",
        issuer
            .mint(&MintOptions {
                key: KeyChoice::Static,
                ..Default::default()
            })
            .expect("mint"),
        Expired,
    ));
    let static_kid = issuer.header_for(KeyChoice::Static, 5)["kid"].clone();
    out.push(attack(
        "dynamic signature under the static kid",
        with_header(json!({ "kid": static_kid })),
        Expired,
    ));
    out.push(attack(
        "a key outside the JWKS under the dynamic kid",
        issuer
            .mint(&MintOptions {
                key: KeyChoice::Rogue,
                ..Default::default()
            })
            .expect("mint"),
        Expired,
    ));
    // Time: expired by one second, expiring this very second, not yet valid.
    out.push(attack(
        "expired by 1 s",
        issuer
            .mint(&MintOptions {
                ttl_secs: -1,
                ..Default::default()
            })
            .expect("mint"),
        Expired,
    ));
    let now_s = payload["iat"].as_i64().expect("iat");
    let mut at_now = payload.clone();
    at_now["exp"] = json!(now_s);
    out.push(attack(
        "exp equal to the current second",
        issuer.sign_raw(&header, &at_now, KeyChoice::Dynamic).expect("sign"),
        Expired,
    ));
    let mut later = payload.clone();
    later["nbf"] = json!(now_s + 3600);
    out.push(attack(
        "nbf an hour ahead",
        issuer.sign_raw(&header, &later, KeyChoice::Dynamic).expect("sign"),
        Expired,
    ));
    let mut exp_str = payload.clone();
    exp_str["exp"] = json!((now_s + 3600).to_string());
    out.push(attack(
        "exp as a string",
        issuer.sign_raw(&header, &exp_str, KeyChoice::Dynamic).expect("sign"),
        Garbage,
    ));
    let mut nbf_str = payload.clone();
    nbf_str["nbf"] = json!("0");
    out.push(attack(
        "nbf as a string",
        issuer.sign_raw(&header, &nbf_str, KeyChoice::Dynamic).expect("sign"),
        Expired,
    ));
    // Tampered after signing.
    for (k, v) in [
        ("sub", json!("admin")),
        ("exp", json!(now_s + 86_400 * 365)),
        ("st-role", json!({"v": ["admin"], "t": 0})),
        ("sessionHandle", json!("other")),
    ] {
        let mut t = payload.clone();
        t[k] = v;
        out.push(attack(
            format!("payload `{k}` tampered after signing"),
            format!("{h}.{}.{s}", b64(&t)),
            Expired,
        ));
    }
    let flipped: String = {
        let mut c: Vec<char> = s.chars().collect();
        c[10] = if c[10] == 'A' { 'B' } else { 'A' };
        c.into_iter().collect()
    };
    out.push(attack("one signature character changed", format!("{h}.{p}.{flipped}"), Expired));
    // Nested JWTs: a genuine token wrapped in an unsigned or re-labelled outer one.
    let outer_none = json!({"alg": "none", "typ": "JWT", "cty": "JWT", "kid": kid, "version": "5"});
    let outer_rs = json!({"alg": "RS256", "typ": "JWT", "cty": "JWT", "kid": kid, "version": "5"});
    out.push(attack(
        "nested JWT: genuine token as the payload of alg none",
        format!("{}.{}.", b64(&outer_none), URL_SAFE_NO_PAD.encode(&genuine)),
        Garbage,
    ));
    out.push(attack(
        "nested JWT: genuine token as the payload, its signature outside",
        format!("{}.{}.{s}", b64(&outer_rs), URL_SAFE_NO_PAD.encode(&genuine)),
        Garbage,
    ));
    out.push(attack(
        "nested JWT: cty JWT over the genuine payload",
        format!("{}.{p}.{s}", b64(&outer_rs)),
        Expired,
    ));
    out.push(attack(
        "nested JWT: genuine token as the signature",
        format!("{h}.{p}.{genuine}"),
        Garbage,
    ));
    // Signature stripped.
    out.push(attack("signature stripped (trailing dot kept)", format!("{h}.{p}."), Expired));
    out.push(attack("signature stripped (two segments)", format!("{h}.{p}"), Garbage));
    out.push(attack("signature doubled", format!("{h}.{p}.{s}.{s}"), Garbage));
    // Not an access token: another token type, another typ.
    let mut stt = payload.clone();
    stt["stt"] = json!(1);
    out.push(attack(
        "stt 1 (another SuperTokens token type)",
        issuer.sign_raw(&header, &stt, KeyChoice::Dynamic).expect("sign"),
        Garbage,
    ));
    out.push(attack("typ other than JWT", with_header(json!({"typ": "at+jwt"})), Garbage));
    // A forged legacy (v2) token: the SDK asks the core, which refuses it.
    let legacy_header = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCIsInZlcnNpb24iOiIyIn0=";
    let now_ms = now_s * 1000;
    let legacy = json!({"userId": "admin", "expiryTime": now_ms + 3_600_000, "timeCreated": now_ms, "sessionHandle": "h",
                        "refreshTokenHash1": "r", "userData": {}});
    out.push(attack(
        "forged legacy v2 token",
        format!("{legacy_header}.{}.{s}", b64(&legacy)),
        Expired,
    ));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_attack_yields_a_session_and_each_gets_the_invalid_token_answer() {
    let core = StubCore::start().await;
    let rec = recorder(&core).await;
    let (jku, jku_hits) = attacker_listener().await;
    let doors = Doors {
        svc: Service::start(settings(&format!("http://{}", rec.addr), CONFIG)).await,
        http: reqwest::Client::new(),
    };
    let issuer = &core.issuer;
    let attacker = AttackerKey::new();

    // The answers every attack is held to, and a control that a genuine token is allowed.
    let expired = issuer
        .mint(&MintOptions {
            ttl_secs: -60,
            ..Default::default()
        })
        .expect("mint");
    let reference_expired = doors.answers(&expired).await;
    let reference_garbage = doors.answers("not.a.token").await;
    for (at, a) in &reference_expired {
        assert_eq!(a.status, 401, "expired token via {at}");
        assert!(a.user.is_none());
    }
    for (at, a) in &reference_garbage {
        let optional = at.contains("/items");
        assert_eq!(a.status, if optional { 200 } else { 401 }, "garbage via {at}");
        assert!(a.user.is_none());
    }
    let genuine = issuer.mint(&MintOptions::default()).expect("mint");
    for (at, a) in doors.answers(&genuine).await {
        assert_eq!(
            (a.status, a.user.as_deref()),
            (200, Some("user-1")),
            "control: genuine token via {at}"
        );
    }

    let started = Instant::now();
    let cases = attacks(issuer, &attacker, jku);
    let mut failures = Vec::new();
    for case in &cases {
        let reference = match case.like {
            Like::Expired => &reference_expired,
            Like::Garbage => &reference_garbage,
        };
        for ((at, got), (_, want)) in doors.answers(&case.token).await.iter().zip(reference) {
            if got.user.is_some() {
                failures.push(format!("`{}` via {at}: SESSION GRANTED to {:?}", case.name, got.user));
            } else if got != want {
                failures.push(format!(
                    "`{}` via {at}: expected the answer to {} ({want:?}), got {got:?}",
                    case.name,
                    match case.like {
                        Like::Expired => "an expired token",
                        Like::Garbage => "a token that does not parse",
                    },
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} answers wrong across {} attacks:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(cases.len() >= 100, "the table shrank: {} cases", cases.len());

    // Nothing was fetched from where a token pointed; the core was only asked for its JWKS
    // (and once per forged legacy token, to verify it, as the SDK does), and attacker-chosen
    // kids refetched it at most once per 500 ms cooldown.
    assert_eq!(*jku_hits.lock().expect("hits"), 0, "a jku/x5u URL was contacted");
    let seen = rec.seen.lock().expect("seen").clone();
    let jwks_fetches = seen.iter().filter(|r| *r == "GET /.well-known/jwks.json").count();
    let verifies = seen.iter().filter(|r| *r == "POST /recipe/session/verify").count();
    assert_eq!(jwks_fetches + verifies, seen.len(), "the core got other requests: {seen:?}");
    assert_eq!(
        verifies,
        DOORS.len() * ROUTES.len() * TRANSPORTS.len(),
        "one verify per forged legacy request"
    );
    let budget = 2 + started.elapsed().as_millis() as usize / 500;
    assert!(jwks_fetches <= budget, "{jwks_fetches} JWKS fetches in {:?}", started.elapsed());
}

#[tokio::test]
async fn a_dynamic_key_token_is_refused_when_static_keys_are_required() {
    let core = StubCore::start().await;
    let config = format!("{CONFIG}\n[supertokens]\nuse_dynamic_access_token_signing_key = false\n");
    let doors = Doors {
        svc: Service::start(settings(&core.uri(), &config)).await,
        http: reqwest::Client::new(),
    };
    let mint = |key| core.issuer.mint(&MintOptions { key, ..Default::default() }).expect("mint");
    let expired = core
        .issuer
        .mint(&MintOptions {
            key: KeyChoice::Static,
            ttl_secs: -60,
            ..Default::default()
        })
        .expect("mint");
    let reference = doors.answers(&expired).await;
    for ((at, got), (_, want)) in doors.answers(&mint(KeyChoice::Dynamic)).await.iter().zip(&reference) {
        assert_eq!(got, want, "dynamic-key token with static keys required, via {at}");
        assert!(got.user.is_none());
    }
    for (at, a) in doors.answers(&mint(KeyChoice::Static)).await {
        assert_eq!(
            (a.status, a.user.as_deref()),
            (200, Some("user-1")),
            "control: static token via {at}"
        );
    }
}

/// What supertokens-node 24.0.3 (the docs' Lambda handler, session optional) does with a token.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sdk {
    TryRefresh,
    NoSession,
    Allow(String),
    Other(String),
}

fn sdk_answer(v: &Value) -> Sdk {
    match (v["outcome"].as_str(), v["sdkType"].as_str()) {
        (Some("error"), Some("TRY_REFRESH_TOKEN")) => Sdk::TryRefresh,
        (Some("response"), _) if v["response"]["principalId"] == "" => Sdk::NoSession,
        (Some("response"), _) => Sdk::Allow(v["response"]["principalId"].as_str().unwrap_or_default().to_owned()),
        _ => Sdk::Other(v.to_string()),
    }
}

/// Attacks on which we deliberately answer otherwise than the SDK, and why. Each is still refused
/// by us; the test checks the SDK really does differ, so the list stays true.
const SDK_DIFFERS: &[(&str, &str)] = &[
    (
        "b64: false",
        "jose ignores `b64` outside `crit` and allows the (genuinely signed) token; we refuse a header no core writes",
    ),
    (
        "oversized",
        "the SDK parses any size (then try-refresh or allow); over 16 KiB we count the candidate as absent",
    ),
    (
        "= padding on the signature",
        "Node's base64 accepts padding, so the genuine signature bytes verify; we read the signature as strict base64url",
    ),
    (
        "+/ alphabet in the signature",
        "Node's base64 accepts either alphabet (same bytes, allowed); strict base64url refuses it",
    ),
    (
        "tab inside the signature",
        "Node's base64 skips whitespace (same bytes, allowed); strict base64url refuses it",
    ),
    (
        "non-canonical base64",
        "Node ignores the unused trailing bits (same bytes, allowed); strict base64url refuses the malleated text",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_answers_each_attack_the_same_except_where_declared() {
    let core = StubCore::start().await;
    let oracle = support::Oracle::start(&json!({"connectionURI": core.uri()}));
    let (jku, _) = attacker_listener().await;
    let attacker = AttackerKey::new();
    let cases = attacks(&core.issuer, &attacker, jku);
    let mut report = Vec::new();
    for case in &cases {
        for transport in TRANSPORTS {
            let event = rest_event("GET", "/items", &[transport.header(&case.token)]);
            let sdk = sdk_answer(&oracle.authorize(&event, &json!({})).await);
            let ours = match case.like {
                Like::Expired => Sdk::TryRefresh,
                Like::Garbage => Sdk::NoSession,
            };
            let declared = SDK_DIFFERS.iter().find(|(name, _)| case.name.starts_with(name));
            if (sdk != ours) != declared.is_some() {
                report.push(format!(
                    "`{}` by {transport:?}: ours {ours:?}, SDK {sdk:?}, declared {declared:?}",
                    case.name
                ));
            }
        }
    }
    assert!(report.is_empty(), "{} mismatches:\n{}", report.len(), report.join("\n"));
}
