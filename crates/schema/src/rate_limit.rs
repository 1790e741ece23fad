//! The document's `rateLimits`, validated into typed limits.
//!
//! This module only describes the limits; counting pushes against them is the
//! server's job (CONTRACT §4, §10: every push of a channel event counts,
//! refused or not; joins and heartbeats do not).

use std::collections::HashMap;

use crate::document::{RawLimit, RawRateLimits};
use crate::error::SchemaError;

/// At most `max_requests` pushes per `window_ms` milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limit {
    /// The window's length in milliseconds; always > 0.
    pub window_ms: u64,
    /// Pushes allowed per window; always > 0.
    pub max_requests: u32,
}

/// A connection's push limits.
///
/// `default` caps all of a connection's pushes together; `by_event` caps one
/// event's pushes on top of that. Both may be absent (no limit). A `by_event`
/// key need not name an event of the document (the example's `heartbeat`
/// does not).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimits {
    /// The cap on all of a connection's pushes together.
    pub default: Option<Limit>,
    /// Extra caps per event name.
    pub by_event: HashMap<String, Limit>,
}

impl RateLimits {
    pub(crate) fn compile(raw: &RawRateLimits) -> Result<RateLimits, SchemaError> {
        Ok(RateLimits {
            default: raw.default.as_ref().map(Limit::compile).transpose()?,
            by_event: raw
                .by_event
                .iter()
                .map(|(name, limit)| Ok((name.clone(), Limit::compile(limit)?)))
                .collect::<Result<_, SchemaError>>()?,
        })
    }

    /// The extra cap on event `name`, if any.
    pub fn for_event(&self, name: &str) -> Option<&Limit> {
        self.by_event.get(name)
    }
}

impl Limit {
    fn compile(raw: &RawLimit) -> Result<Limit, SchemaError> {
        if raw.window_ms == 0 {
            return Err(SchemaError::new(
                format!("{}.windowMs", raw.path),
                "must be greater than 0",
            ));
        }
        let max_requests = match u32::try_from(raw.max_requests) {
            Ok(0) => {
                return Err(SchemaError::new(
                    format!("{}.maxRequests", raw.path),
                    "must be greater than 0",
                ))
            }
            Ok(n) => n,
            Err(_) => {
                return Err(SchemaError::new(
                    format!("{}.maxRequests", raw.path),
                    format!("must be at most {}", u32::MAX),
                ))
            }
        };
        Ok(Limit {
            window_ms: raw.window_ms,
            max_requests,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(path: &str, window_ms: u64, max_requests: u64) -> RawLimit {
        RawLimit {
            path: path.to_owned(),
            window_ms,
            max_requests,
        }
    }

    #[test]
    fn compiles_limits() {
        let limits = RateLimits::compile(&RawRateLimits {
            default: Some(raw("rateLimits.default", 60000, 100)),
            by_event: vec![("ping".into(), raw("rateLimits.byEvent.ping", 1000, 1))],
        })
        .unwrap();
        assert_eq!(
            limits.default,
            Some(Limit {
                window_ms: 60000,
                max_requests: 100
            })
        );
        assert_eq!(limits.for_event("ping").unwrap().max_requests, 1);
        assert!(limits.for_event("pong").is_none());
    }

    #[test]
    fn zero_and_huge_values_are_refused() {
        let err = |limit| {
            RateLimits::compile(&RawRateLimits {
                default: Some(limit),
                by_event: vec![],
            })
            .unwrap_err()
            .to_string()
        };
        assert_eq!(
            err(raw("rateLimits.default", 0, 1)),
            "rateLimits.default.windowMs: must be greater than 0"
        );
        assert_eq!(
            err(raw("rateLimits.default", 1, 0)),
            "rateLimits.default.maxRequests: must be greater than 0"
        );
        assert!(err(raw("rateLimits.default", 1, u64::from(u32::MAX) + 1)).contains("at most"));
    }
}
