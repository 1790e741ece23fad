//! Serializer negotiation: the `vsn` query parameter ([`Vsn`]) and the
//! encoding a connection receives ([`WireFormat`]).
//!
//! It does not parse query strings; the caller hands over the raw value.

use crate::error::UnsupportedVsn;

/// Serializer negotiated from the `vsn` query parameter.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Vsn {
    /// `~> 1.0.0`: JSON objects, text frames only.
    V1,
    /// `~> 2.0.0`: JSON arrays plus binary frames.
    V2,
}

impl Vsn {
    /// Picks the serializer for a `vsn` value.
    ///
    /// A missing value means V1. Otherwise the value must be a semantic
    /// version matching `~> 1.0.0` (V1) or `~> 2.0.0` (V2): major 1 or 2,
    /// minor 0, any patch. As with Elixir's `Version.match?`, build metadata
    /// is ignored and a pre-release matches only when it sorts after `x.0.0`
    /// (so `2.0.1-rc.1` matches, `2.0.0-rc.1` does not).
    pub fn negotiate(vsn: Option<&str>) -> Result<Vsn, UnsupportedVsn> {
        let Some(raw) = vsn else {
            return Ok(Vsn::V1);
        };
        match_tilde_x00(raw).ok_or_else(|| UnsupportedVsn(raw.to_owned()))
    }

    /// The wire format for this serializer on a transport that can
    /// (`binary_frames`, WebSocket) or cannot (long-poll) carry binary frames.
    pub fn wire_format(self, binary_frames: bool) -> WireFormat {
        match (self, binary_frames) {
            (Vsn::V1, _) => WireFormat::V1,
            (Vsn::V2, true) => WireFormat::V2,
            (Vsn::V2, false) => WireFormat::V2Text,
        }
    }
}

/// Matches `raw` against `~> 1.0.0` and `~> 2.0.0`.
fn match_tilde_x00(raw: &str) -> Option<Vsn> {
    let (rest, build) = match raw.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (raw, None),
    };
    if let Some(build) = build {
        if !build.split('.').all(is_alnum_identifier) {
            return None;
        }
    }
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    if let Some(pre) = pre {
        let valid = pre
            .split('.')
            .all(|id| is_alnum_identifier(id) && (!is_digits(id) || is_numeric_identifier(id)));
        if !valid {
            return None;
        }
    }
    let mut parts = core.split('.');
    let (major, minor, patch) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || minor != "0" || !is_numeric_identifier(patch) {
        return None;
    }
    // `x.0.0-pre` sorts before `x.0.0`, outside `~> x.0.0`.
    if pre.is_some() && patch == "0" {
        return None;
    }
    match major {
        "1" => Some(Vsn::V1),
        "2" => Some(Vsn::V2),
        _ => None,
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// A semver numeric identifier: digits, no leading zero.
fn is_numeric_identifier(s: &str) -> bool {
    is_digits(s) && (s == "0" || !s.starts_with('0'))
}

fn is_alnum_identifier(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// How a connection receives frames: which encoding the server must produce.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum WireFormat {
    /// V1 JSON objects; binary payloads become the JSON payload
    /// `{"payload_base64": "<standard base64>"}`.
    V1,
    /// V2 JSON arrays, binary payloads as V2 binary frames (WebSocket).
    V2,
    /// V2 JSON arrays but text only (long-poll): binary payloads become
    /// `{"payload_base64": "..."}`.
    V2Text,
}

impl WireFormat {
    /// Every format, in [`WireFormat::index`] order.
    pub const ALL: [WireFormat; 3] = [WireFormat::V1, WireFormat::V2, WireFormat::V2Text];

    /// A dense index in `0..3`, for caching one encoding per format.
    pub fn index(self) -> usize {
        match self {
            WireFormat::V1 => 0,
            WireFormat::V2 => 1,
            WireFormat::V2Text => 2,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn neg(v: &str) -> Result<Vsn, UnsupportedVsn> {
        Vsn::negotiate(Some(v))
    }

    #[test]
    fn missing_vsn_is_v1() {
        assert_eq!(Vsn::negotiate(None), Ok(Vsn::V1));
    }

    #[test]
    fn tilde_matches() {
        assert_eq!(neg("1.0.0"), Ok(Vsn::V1));
        assert_eq!(neg("1.0.7"), Ok(Vsn::V1));
        assert_eq!(neg("2.0.0"), Ok(Vsn::V2));
        assert_eq!(neg("2.0.12"), Ok(Vsn::V2));
        assert_eq!(neg("2.0.0+build.5"), Ok(Vsn::V2));
        assert_eq!(neg("2.0.1-rc.1"), Ok(Vsn::V2));
    }

    #[test]
    fn everything_else_is_refused() {
        for bad in [
            "",
            "2",
            "2.0",
            "2.1.0",
            "1.1.0",
            "3.0.0",
            "0.0.1",
            "123.1.1",
            "02.0.0",
            "2.00.0",
            "2.0.01",
            "2.0.0-rc.1",
            "2.0.0.0",
            " 2.0.0",
            "2.0.0 ",
            "2.0.x",
            "v2.0.0",
            "2.0.1-",
            "2.0.1-01",
            "2.0.0+",
            "2.0.1-a..b",
            "abc",
        ] {
            assert_eq!(neg(bad), Err(UnsupportedVsn(bad.to_owned())), "{bad:?}");
        }
    }

    #[test]
    fn wire_format_for_transport() {
        assert_eq!(Vsn::V1.wire_format(true), WireFormat::V1);
        assert_eq!(Vsn::V1.wire_format(false), WireFormat::V1);
        assert_eq!(Vsn::V2.wire_format(true), WireFormat::V2);
        assert_eq!(Vsn::V2.wire_format(false), WireFormat::V2Text);
    }

    #[test]
    fn index_matches_all() {
        for (i, f) in WireFormat::ALL.iter().enumerate() {
            assert_eq!(f.index(), i);
        }
    }
}
