//! Token parsing and the structure check (v2 to v5+), the facts cached from a token and its time
//! checks, and the two base64 readers (Node's lenient one, the strict signature one).
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_authorizer::credentials::token::{MAX_TOKEN_BYTES, ParsedToken, node_base64_decode, strict_b64url};
use session_authorizer::verification::cache::SessionToken;
use session_authorizer_fuzz::FUZZ_NOW_MS;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let lenient = node_base64_decode(&text);
    // What strict base64url accepts, Node's reader decodes to the same bytes.
    if let Some(strict) = strict_b64url(&text) {
        assert_eq!(strict, lenient, "strict and lenient base64 disagree");
    }
    let Ok(t) = ParsedToken::parse(&text) else {
        return;
    };
    assert!(text.len() <= MAX_TOKEN_BYTES);
    assert!(t.version >= 2);
    // The signed input and the signature are the raw text, split at the second dot.
    let rejoined = format!("{}.{}", String::from_utf8_lossy(t.signing_input()), t.signature());
    assert_eq!(rejoined, *text);
    let _ = (t.user_id(), t.recipe_user_id(), t.session_handle(), t.tenant_id());
    let _ = (t.anti_csrf_token(), t.parent_refresh_token_hash1(), t.expiry_ms(), t.created_ms());
    let _ = t.claims_payload();
    let facts = SessionToken::from_parsed(&t);
    for now in [0, FUZZ_NOW_MS, u64::MAX] {
        for skew in [0, 60_000, u64::MAX] {
            let _ = facts.check_times(now, skew);
        }
    }
    // The packed facts give back exactly what the parsed token says.
    assert_eq!(facts.user_id(), t.user_id());
    assert_eq!(facts.recipe_user_id(), t.recipe_user_id());
    assert_eq!(facts.session_handle(), t.session_handle());
    assert_eq!(facts.tenant_id(), t.tenant_id().as_deref());
    assert_eq!(facts.anti_csrf_token(), t.anti_csrf_token());
    let mut want = (*t.claims_payload()).clone();
    if t.version >= 3 {
        for k in ["refreshTokenHash1", "parentRefreshTokenHash1", "antiCsrfToken"] {
            want.shift_remove(k);
        }
    }
    let got = facts.claims();
    assert_eq!(got.len(), want.len(), "claims differ in size");
    for (k, v) in &want {
        assert_eq!(got.get(k), Some(v), "claim {k} differs");
    }
});
