//! Observability: structured logs and Prometheus metrics.
//!
//! Owns the metric families the contract promises (CONTRACT §8) and the log
//! subscriber setup. Everything else records into [`Metrics`]; nothing here
//! decides anything about traffic.

mod logging;
mod metrics;

pub use logging::init_logging;
pub use metrics::{Metrics, TransportKind};
