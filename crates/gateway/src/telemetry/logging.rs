//! Log subscriber setup: one line per event, JSON when
//! `SWITCHBOARD_LOG_FORMAT=json`, filtered by `RUST_LOG` (default `info`).
//!
//! Logs go to stderr so that stdout carries only the startup banner that
//! tells a user (or a test) where the gateway listens.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber. Safe to call more than once (later calls
/// are ignored), which keeps in-process tests simple.
pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json =
        std::env::var("SWITCHBOARD_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}
