//! Push rate limits: per connection from the schema's `rateLimits`
//! (CONTRACT §4: `default` caps all of a connection's pushes together,
//! `byEvent` caps one event on top of that), and the app-wide ceiling of
//! `[limits] app_pushes_per_second` / an app's `pushes_per_second`.
//!
//! A `{windowMs, maxRequests}` pair becomes a governor GCRA quota with a
//! burst of `maxRequests` replenished evenly over `windowMs`: a client may
//! spend its whole window at once, then earns requests back at the window's
//! average rate. Limiters are created on the first push, so connections that
//! never push pay nothing.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota};
use switchboard_schema::{Limit, Schema};

/// Which limit refused a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitHit {
    /// The connection's overall push limit.
    Default,
    /// The event's own limit.
    Event,
}

/// The push limiters of one connection.
#[derive(Default)]
pub struct PushLimiter {
    /// The schema the limiters were built from; a schema with other limits
    /// resets them.
    schema: Option<Arc<Schema>>,
    default: Option<DefaultDirectRateLimiter>,
    by_event: HashMap<String, DefaultDirectRateLimiter>,
}

impl PushLimiter {
    /// Counts one push of `event` and says whether it is over a limit. Every
    /// push counts, refused or not (CONTRACT §10).
    pub fn check(&mut self, schema: &Arc<Schema>, event: &str) -> Result<(), RateLimitHit> {
        // Every refresh installs a new `Arc<Schema>`, even when the document
        // did not change; only different limits start the counts afresh.
        let same_limits = self
            .schema
            .as_ref()
            .is_some_and(|s| Arc::ptr_eq(s, schema) || s.rate_limits() == schema.rate_limits());
        if same_limits {
            self.schema = Some(schema.clone());
        } else {
            *self = PushLimiter {
                schema: Some(schema.clone()),
                default: schema.rate_limits().default.as_ref().map(limiter),
                by_event: HashMap::new(),
            };
        }
        let default_ok = self.default.as_ref().is_none_or(|l| l.check().is_ok());
        let event_ok = match schema.rate_limits().by_event.get(event) {
            None => true,
            Some(limit) => self
                .by_event
                .entry(event.to_owned())
                .or_insert_with(|| limiter(limit))
                .check()
                .is_ok(),
        };
        match (default_ok, event_ok) {
            (true, true) => Ok(()),
            (false, _) => Err(RateLimitHit::Default),
            (true, false) => Err(RateLimitHit::Event),
        }
    }
}

fn limiter(limit: &Limit) -> DefaultDirectRateLimiter {
    let burst = NonZeroU32::new(limit.max_requests.max(1)).unwrap_or(NonZeroU32::MIN);
    let window = Duration::from_millis(limit.window_ms.max(1));
    let period = (window / burst.get()).max(Duration::from_nanos(1));
    let quota = Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(burst))
        .allow_burst(burst);
    DefaultDirectRateLimiter::direct(quota)
}

/// The app-wide ceiling on client pushes: one governor limiter shared by
/// every connection of the app. Its state is one atomic, so checking it on
/// every push costs a compare-and-swap, no lock.
pub struct AppPushCeiling(Option<DefaultDirectRateLimiter>);

impl AppPushCeiling {
    /// `per_second` pushes per second with a burst of the same size;
    /// 0 = unlimited.
    pub fn new(per_second: u32) -> Self {
        Self(
            NonZeroU32::new(per_second)
                .map(|n| DefaultDirectRateLimiter::direct(Quota::per_second(n))),
        )
    }

    /// Counts one push; false when the app is over its ceiling.
    pub fn allow(&self) -> bool {
        self.0.as_ref().is_none_or(|l| l.check().is_ok())
    }
}
