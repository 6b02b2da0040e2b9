//! Anti-CSRF: the per-request checks of the configured mode (AUTO is resolved while the settings
//! are read), which apply to cookie transport and non-GET methods only.

use subtle::ConstantTimeEq;

pub use crate::settings::AntiCsrfMode;

/// Why a request failed the anti-CSRF check (all answered "try refresh token", as the SDK does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CsrfFailure {
    #[error("anti-csrf check failed: no rid header")]
    MissingRid,
    #[error("access token does not contain the anti-csrf token")]
    TokenLacksAntiCsrf,
    #[error("anti-csrf header missing")]
    HeaderMissing,
    #[error("anti-csrf token mismatch")]
    Mismatch,
}

/// The SDK's `doAntiCsrfCheck`: cookie transport and any method but GET (HEAD and OPTIONS are
/// checked too). Via custom header the check is the `rid` header's presence, made here; the
/// answer says whether a check is still due (via token: the core's or ours).
pub fn check_due(mode: AntiCsrfMode, cookie: bool, method: &str, has_rid: bool) -> Result<bool, CsrfFailure> {
    let due = cookie && !method.eq_ignore_ascii_case("get");
    match mode {
        AntiCsrfMode::ViaCustomHeader if due && !has_rid => Err(CsrfFailure::MissingRid),
        AntiCsrfMode::ViaCustomHeader => Ok(false),
        AntiCsrfMode::None | AntiCsrfMode::ViaToken => Ok(due),
    }
}

/// The VIA_TOKEN comparison, in constant time.
pub fn check_via_token(token_value: Option<&str>, header: Option<&str>) -> Result<(), CsrfFailure> {
    let expected = token_value.ok_or(CsrfFailure::TokenLacksAntiCsrf)?;
    let given = header.ok_or(CsrfFailure::HeaderMissing)?;
    if bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
        Ok(())
    } else {
        Err(CsrfFailure::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Median time of `f` over several runs.
    fn median_time(mut f: impl FnMut() -> bool) -> std::time::Duration {
        let mut times: Vec<_> = (0..15)
            .map(|_| {
                let started = std::time::Instant::now();
                std::hint::black_box(f());
                started.elapsed()
            })
            .collect();
        times.sort();
        times[times.len() / 2]
    }

    /// How much faster a mismatch in the first byte is found than one in the last byte, for
    /// `eq` on two 1 MiB values (the length magnifies any early exit).
    fn early_exit_ratio(eq: impl Fn(&str, &str) -> bool) -> f64 {
        let expected = "a".repeat(1 << 20);
        let first = format!("b{}", &expected[1..]);
        let last = format!("{}b", &expected[1..]);
        let t_first = median_time(|| eq(std::hint::black_box(&expected), std::hint::black_box(&first)));
        let t_last = median_time(|| eq(std::hint::black_box(&expected), std::hint::black_box(&last)));
        t_first.as_secs_f64() / t_last.as_secs_f64().max(1e-9)
    }

    #[test]
    fn via_token_compare_is_constant_time() {
        // The harness can see an early exit: a plain `==` (memcmp) stops at the first difference.
        let plain = early_exit_ratio(|a, b| a == b);
        assert!(plain < 0.2, "control: `==` should exit early, ratio {plain:.4}");
        // check_via_token reads every byte whatever the first difference (subtle's ct_eq).
        let ours = early_exit_ratio(|a, b| check_via_token(Some(a), Some(b)).is_ok());
        assert!(
            (0.5..2.0).contains(&ours),
            "anti-CSRF comparison time depends on where the values differ: ratio {ours:.4}"
        );
    }

    #[test]
    fn the_check_is_due_for_cookies_on_methods_but_get() {
        use AntiCsrfMode::*;
        for mode in [None, ViaToken] {
            assert_eq!(check_due(mode, true, "POST", false), Ok(true));
            assert_eq!(check_due(mode, true, "OPTIONS", false), Ok(true));
            assert_eq!(check_due(mode, true, "get", false), Ok(false));
            assert_eq!(check_due(mode, false, "POST", false), Ok(false));
        }
        assert_eq!(check_due(ViaCustomHeader, true, "POST", false), Err(CsrfFailure::MissingRid));
        assert_eq!(check_due(ViaCustomHeader, true, "POST", true), Ok(false));
        assert_eq!(check_due(ViaCustomHeader, true, "GET", false), Ok(false));
        assert_eq!(check_due(ViaCustomHeader, false, "DELETE", false), Ok(false));
    }

    #[test]
    fn via_token_checks() {
        assert_eq!(check_via_token(Some("x"), Some("x")), Ok(()));
        assert_eq!(check_via_token(Some("x"), Some("y")), Err(CsrfFailure::Mismatch));
        assert_eq!(check_via_token(Some("x"), None), Err(CsrfFailure::HeaderMissing));
        assert_eq!(check_via_token(None, Some("x")), Err(CsrfFailure::TokenLacksAntiCsrf));
    }
}
