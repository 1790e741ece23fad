//! A connection's own rate discipline beyond the schema's push limits: the
//! join rate (`[limits] joins_per_connection_per_second` with
//! `joins_per_connection_burst`), and the strike count that disconnects a
//! client which keeps going past its limits (`rate_limit_strikes`).
//!
//! A strike is a push or join refused by one of the client's *own* limits
//! (schema `rateLimits`, the join rate). The app-wide push ceiling is not a
//! strike: a well-behaved client must not be disconnected because other
//! clients of its app are busy. Any push or join that passes its own limits
//! ends the streak.
//!
//! The whole of it is boxed and made on the first join or refusal, so it
//! costs an idle connection's task one pointer (see
//! `transport/websocket/socket.rs` on why that task must stay small).

use std::num::NonZeroU32;

use governor::clock::{Clock, MonotonicClock};
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use super::{CloseReason, Session};
use crate::config::Limits;

/// What a refusal did to the client's streak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Strike {
    /// The first refusal after an allowed request: worth one log line.
    First,
    /// Another refusal in the streak.
    Again,
    /// The streak reached `rate_limit_strikes`: the connection must close.
    Out,
}

/// A join limiter on the standard monotonic clock: 40 bytes, against about
/// 90 with governor's default (quanta) clock, which every joined connection
/// would carry.
type JoinLimiter = RateLimiter<
    NotKeyed,
    InMemoryState,
    MonotonicClock,
    NoOpMiddleware<<MonotonicClock as Clock>::Instant>,
>;

/// The join limiter and refusal streak of one connection.
#[derive(Default)]
pub(super) struct Throttle {
    joins: Option<JoinLimiter>,
    strikes: u32,
}

impl Throttle {
    /// Counts one join; false when over the connection's join rate.
    pub(super) fn allow_join(&mut self, limits: &Limits) -> bool {
        let Some(rate) = NonZeroU32::new(limits.joins_per_connection_per_second) else {
            return true;
        };
        let burst = NonZeroU32::new(limits.joins_per_connection_burst).unwrap_or(rate);
        self.joins
            .get_or_insert_with(|| {
                RateLimiter::direct_with_clock(
                    Quota::per_second(rate).allow_burst(burst),
                    MonotonicClock,
                )
            })
            .check()
            .is_ok()
    }

    /// A push or join passed the client's own limits: the streak ends.
    pub(super) fn passed(&mut self) {
        self.strikes = 0;
    }

    /// A push or join was refused by the client's own limits; `max` is
    /// `rate_limit_strikes` (0 = never disconnect).
    pub(super) fn refused(&mut self, max: u32) -> Strike {
        self.strikes = self.strikes.saturating_add(1);
        if max != 0 && self.strikes >= max {
            Strike::Out
        } else if self.strikes == 1 {
            Strike::First
        } else {
            Strike::Again
        }
    }
}

impl Session {
    /// Answers a push or join refused by a rate limit of `kind` (the
    /// `rate_limited_total` label) and counts it. `strike` is false for the
    /// app-wide ceiling, which is not the client's fault. The first refusal
    /// of a streak is logged, not every one; the last closes the connection.
    pub(super) fn refuse_rate_limited(
        &mut self,
        kind: &'static str,
        strike: bool,
        join_ref: Option<&str>,
        msg_ref: Option<&str>,
        topic: &str,
    ) {
        let app = self.conn.app.id();
        self.gateway.metrics.rate_limited(app, kind);
        self.reply_error(join_ref, msg_ref, topic, "rate_limited");
        if !strike {
            return;
        }
        let max = self.gateway.limits.rate_limit_strikes;
        match self.throttle.get_or_insert_with(Box::default).refused(max) {
            Strike::First => tracing::info!(
                app,
                client_id = %self.conn.identity.client_id,
                connection = self.conn.id,
                kind,
                "client rate limited (further refusals in a row are counted, not logged)"
            ),
            Strike::Again => {}
            Strike::Out => {
                if self.conn.close(CloseReason::RateLimited) {
                    self.gateway.metrics.rate_limited(app, "disconnect");
                    tracing::warn!(
                        app,
                        client_id = %self.conn.identity.client_id,
                        connection = self.conn.id,
                        kind,
                        strikes = max,
                        "client disconnected: kept going past its rate limits"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_streak_counts_consecutive_refusals_only() {
        let mut throttle = Throttle::default();
        assert_eq!(throttle.refused(3), Strike::First);
        assert_eq!(throttle.refused(3), Strike::Again);
        throttle.passed();
        assert_eq!(throttle.refused(3), Strike::First);
        assert_eq!(throttle.refused(3), Strike::Again);
        assert_eq!(throttle.refused(3), Strike::Out);
    }

    #[test]
    fn zero_strikes_never_disconnects() {
        let mut throttle = Throttle::default();
        for _ in 0..1000 {
            assert_ne!(throttle.refused(0), Strike::Out);
        }
    }

    #[test]
    fn joins_are_limited_after_the_burst() {
        let limits = Limits {
            joins_per_connection_per_second: 1,
            joins_per_connection_burst: 3,
            ..Limits::default()
        };
        let mut throttle = Throttle::default();
        assert!((0..3).all(|_| throttle.allow_join(&limits)));
        assert!(!throttle.allow_join(&limits));

        let unlimited = Limits {
            joins_per_connection_per_second: 0,
            ..Limits::default()
        };
        let mut throttle = Throttle::default();
        assert!((0..1000).all(|_| throttle.allow_join(&unlimited)));
    }
}
