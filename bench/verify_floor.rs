//! The practical ceiling for unique tokens: an HTTP server on the same stack as the service
//! (tokio, hyper via axum) that does nothing per request but find the `sAccessToken` cookie and
//! run one RS256 check with the same jsonwebtoken call the service makes. No cache, no parse of
//! the payload, no decision, no metrics: what is left is the HTTP round trip and the RSA.
//!
//! `cargo bench --bench verify_floor -- --core URI --port P` prints `LISTENING` when ready.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey};

type Keys = Arc<HashMap<String, DecodingKey>>;

async fn check(State(keys): State<Keys>, headers: HeaderMap) -> StatusCode {
    let token = headers
        .get(axum::http::header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').find_map(|p| p.trim().strip_prefix("sAccessToken=")));
    let Some(token) = token else {
        return StatusCode::UNAUTHORIZED;
    };
    let Some((signed, signature)) = token.rsplit_once('.') else {
        return StatusCode::UNAUTHORIZED;
    };
    let key = jsonwebtoken::decode_header(token)
        .ok()
        .and_then(|h| h.kid)
        .and_then(|kid| keys.get(&kid));
    match key {
        Some(k) if jsonwebtoken::crypto::verify(signature, signed.as_bytes(), k, Algorithm::RS256).unwrap_or(false) => StatusCode::OK,
        _ => StatusCode::UNAUTHORIZED,
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    // `cargo test --all-targets` runs bench targets without arguments: nothing to serve then.
    let Some(core) = arg(&args, "--core") else {
        eprintln!("usage: cargo bench --bench verify_floor -- --core URI [--port P]");
        return Ok(());
    };
    let port = arg(&args, "--port").unwrap_or_else(|| "0".into());
    let set: JwkSet = reqwest::get(format!("{core}/.well-known/jwks.json")).await?.json().await?;
    let keys: HashMap<String, DecodingKey> = set
        .keys
        .iter()
        .filter_map(|j| Some((j.common.key_id.clone()?, DecodingKey::from_jwk(j).ok()?)))
        .collect();
    let app = Router::new().route("/", get(check)).with_state(Arc::new(keys));
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    println!("LISTENING {}", listener.local_addr()?.port());
    axum::serve(listener, app).await?;
    Ok(())
}
