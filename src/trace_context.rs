//! The caller's trace context, as the decision log carries it: W3C `traceparent`, or the B3
//! headers Envoy sends (`x-b3-traceid` and `x-b3-spanid`, or the single `b3` header). Ids are
//! kept only when well formed: lower-case hex of the right length, not all zeros.

/// Trace and span ids, borrowed from the request's headers, and whether the caller sampled
/// the trace (W3C flag `01`, B3 `1` or `d`; B3 without a decision leaves it to us: sampled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext<'a> {
    pub trace_id: &'a str,
    pub span_id: &'a str,
    pub sampled: bool,
}

fn is_id(s: &str, lens: &[usize]) -> bool {
    lens.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) && s.bytes().any(|b| b != b'0')
}

impl<'a> TraceContext<'a> {
    /// `version-traceid-parentid-flags` (version `ff` is invalid; later versions may append
    /// fields, which are ignored).
    pub fn from_traceparent(value: &'a str) -> Option<Self> {
        let mut parts = value.trim().split('-');
        let (version, trace_id, span_id, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let version_ok = version.len() == 2 && version.bytes().all(|b| b.is_ascii_hexdigit()) && version != "ff";
        if !version_ok || (version == "00" && parts.next().is_some()) || flags.len() != 2 {
            return None;
        }
        let flags = u8::from_str_radix(flags, 16).ok()?;
        (is_id(trace_id, &[32]) && is_id(span_id, &[16])).then_some(Self {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// B3 multi-header form: a 64- or 128-bit trace id and a 64-bit span id.
    pub fn from_b3_pair(trace_id: &'a str, span_id: &'a str) -> Option<Self> {
        (is_id(trace_id, &[16, 32]) && is_id(span_id, &[16])).then_some(Self {
            trace_id,
            span_id,
            sampled: true,
        })
    }

    /// B3 single header: `traceid-spanid[-sampled[-parentspanid]]`.
    pub fn from_b3(value: &'a str) -> Option<Self> {
        let mut parts = value.trim().split('-');
        let pair = Self::from_b3_pair(parts.next()?, parts.next()?)?;
        Some(Self {
            sampled: parts.next() != Some("0"),
            ..pair
        })
    }

    /// The context of a request's headers: `traceparent`, else `b3`, else `x-b3-traceid` with
    /// `x-b3-spanid`; a malformed one falls through to the next.
    pub fn from_headers(
        traceparent: Option<&'a str>,
        b3: Option<&'a str>,
        b3_trace_id: Option<&'a str>,
        b3_span_id: Option<&'a str>,
    ) -> Option<Self> {
        traceparent
            .and_then(Self::from_traceparent)
            .or_else(|| b3.and_then(Self::from_b3))
            .or_else(|| Self::from_b3_pair(b3_trace_id?, b3_span_id?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN: &str = "00f067aa0ba902b7";

    #[test]
    fn traceparent_is_read_as_the_w3c_spec_says() {
        let ok = TraceContext::from_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        assert_eq!(
            ok,
            Some(TraceContext {
                trace_id: TRACE,
                span_id: SPAN,
                sampled: true,
            })
        );
        // A later version may carry more fields.
        assert!(TraceContext::from_traceparent(&format!("01-{TRACE}-{SPAN}-01-extra")).is_some());
        for bad in [
            format!("ff-{TRACE}-{SPAN}-01"),
            format!("00-{TRACE}-{SPAN}-01-extra"),
            format!("00-{}-{SPAN}-01", "0".repeat(32)),
            format!("00-{TRACE}-{}-01", "0".repeat(16)),
            format!("00-{}-{SPAN}-01", TRACE.to_uppercase()),
            format!("00-{TRACE}-{SPAN}"),
            format!("00-{}-{SPAN}-01", &TRACE[1..]),
            String::new(),
        ] {
            assert_eq!(TraceContext::from_traceparent(&bad), None, "{bad}");
        }
    }

    #[test]
    fn b3_in_both_forms() {
        assert_eq!(
            TraceContext::from_b3_pair(TRACE, SPAN),
            Some(TraceContext {
                trace_id: TRACE,
                span_id: SPAN,
                sampled: true,
            })
        );
        assert!(TraceContext::from_b3_pair(&TRACE[16..], SPAN).is_some(), "64-bit trace ids");
        assert_eq!(TraceContext::from_b3_pair("xyz", SPAN), None);
        assert_eq!(
            TraceContext::from_b3(&format!("{TRACE}-{SPAN}-1")),
            Some(TraceContext {
                trace_id: TRACE,
                span_id: SPAN,
                sampled: true,
            })
        );
        assert_eq!(TraceContext::from_b3("0"), None, "a sampling decision alone");
        let sampled = |v: &str| TraceContext::from_b3(v).map(|c| c.sampled);
        assert_eq!(sampled(&format!("{TRACE}-{SPAN}-0")), Some(false));
        assert_eq!(sampled(&format!("{TRACE}-{SPAN}-d")), Some(true), "debug is sampled");
        assert_eq!(sampled(&format!("{TRACE}-{SPAN}")), Some(true), "no decision: ours");
    }

    #[test]
    fn the_w3c_sampled_flag_is_bit_zero() {
        let sampled = |flags: &str| TraceContext::from_traceparent(&format!("00-{TRACE}-{SPAN}-{flags}")).map(|c| c.sampled);
        assert_eq!(sampled("01"), Some(true));
        assert_eq!(sampled("00"), Some(false));
        assert_eq!(sampled("03"), Some(true));
        assert_eq!(sampled("zz"), None);
    }

    #[test]
    fn traceparent_first_then_b3_and_a_bad_one_falls_through() {
        let w3c = format!("00-{TRACE}-{SPAN}-01");
        let other = "1111111111111111";
        let b3 = format!("{TRACE}-{other}");
        let ctx = |tp, b3, t, s| TraceContext::from_headers(tp, b3, t, s).map(|c| c.span_id);
        assert_eq!(ctx(Some(&w3c), Some(&b3), None, None), Some(SPAN));
        assert_eq!(ctx(Some("garbage"), Some(&b3), None, None), Some(other));
        assert_eq!(ctx(None, Some("0"), Some(TRACE), Some(other)), Some(other));
        assert_eq!(ctx(None, None, Some(TRACE), None), None);
    }
}
