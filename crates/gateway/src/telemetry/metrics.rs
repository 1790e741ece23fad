//! The Prometheus metric families of CONTRACT §8, registered at startup so
//! every family is exposed (at least its `# TYPE` line) before any traffic.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Which transport a connection uses.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum TransportKind {
    /// `/socket/websocket`
    Websocket,
    /// `/socket/longpoll`
    Longpoll,
}

impl TransportKind {
    /// The metric label and API name.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Websocket => "websocket",
            TransportKind::Longpoll => "longpoll",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppLabel {
    app: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppTransport {
    app: String,
    transport: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppKind {
    app: String,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppLimit {
    app: String,
    limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppKindReason {
    app: String,
    kind: &'static str,
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppReason {
    app: String,
    reason: &'static str,
}

fn webhook_histogram() -> Histogram {
    // 1 ms .. ~16 s: webhook latencies span fast local backends to timeouts.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.001, 2.0, 15,
    ))
}

/// Every metric the gateway records. Cheap to share behind an `Arc`.
pub struct Metrics {
    registry: Registry,
    connections: Family<AppTransport, Gauge>,
    joins: Family<AppLabel, Counter>,
    messages_in: Family<AppLabel, Counter>,
    messages_out: Family<AppLabel, Counter>,
    webhook_duration: Family<AppKind, Histogram, fn() -> Histogram>,
    webhook_failures: Family<AppKindReason, Counter>,
    auth_failures: Family<AppReason, Counter>,
    rate_limited: Family<AppKind, Counter>,
    schema_fetch_failures: Family<AppLabel, Counter>,
    dropped_messages: Family<AppReason, Counter>,
    limit_exceeded: Family<AppLimit, Counter>,
    resident_memory: Gauge,
    tls_handshake_failures: Family<ReasonLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every family under the `switchboard_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("switchboard");
        let connections = Family::default();
        let joins = Family::default();
        let messages_in = Family::default();
        let messages_out = Family::default();
        let webhook_duration =
            Family::<AppKind, Histogram, fn() -> Histogram>::new_with_constructor(
                webhook_histogram,
            );
        let webhook_failures = Family::default();
        let auth_failures = Family::default();
        let rate_limited = Family::default();
        let schema_fetch_failures = Family::default();
        let dropped_messages = Family::default();
        let limit_exceeded = Family::default();
        let resident_memory = Gauge::default();
        let tls_handshake_failures = Family::default();
        registry.register(
            "connections",
            "Open client connections",
            connections.clone(),
        );
        registry.register("joins", "Successful channel joins", joins.clone());
        registry.register(
            "messages_in",
            "Messages received from clients",
            messages_in.clone(),
        );
        registry.register(
            "messages_out",
            "Messages queued to clients",
            messages_out.clone(),
        );
        registry.register(
            "webhook_duration_seconds",
            "Duration of webhook calls to app backends",
            webhook_duration.clone(),
        );
        registry.register(
            "webhook_failures",
            "Failed webhook calls",
            webhook_failures.clone(),
        );
        registry.register(
            "auth_failures",
            "Refused connection attempts",
            auth_failures.clone(),
        );
        registry.register(
            "rate_limited",
            "Requests refused by a rate limit",
            rate_limited.clone(),
        );
        registry.register(
            "schema_fetch_failures",
            "Failed schema fetches (the last good schema stays in use)",
            schema_fetch_failures.clone(),
        );
        registry.register(
            "dropped_messages",
            "Messages dropped instead of delivered",
            dropped_messages.clone(),
        );
        registry.register(
            "limit_exceeded",
            "Requests refused by a size or count limit",
            limit_exceeded.clone(),
        );
        registry.register(
            "process_resident_memory_bytes",
            "Resident memory of the gateway process",
            resident_memory.clone(),
        );
        registry.register(
            "tls_handshake_failures",
            "TLS handshakes that failed or timed out (built-in TLS)",
            tls_handshake_failures.clone(),
        );
        Self {
            registry,
            connections,
            joins,
            messages_in,
            messages_out,
            webhook_duration,
            webhook_failures,
            auth_failures,
            rate_limited,
            schema_fetch_failures,
            dropped_messages,
            limit_exceeded,
            resident_memory,
            tls_handshake_failures,
        }
    }

    /// Renders the Prometheus text exposition.
    pub fn render(&self) -> String {
        self.resident_memory.set(resident_memory_bytes() as i64);
        let mut out = String::with_capacity(8 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        with_every_family_described(out)
    }

    /// A connection opened (+1) or closed (-1).
    pub fn connection_delta(&self, app: &str, transport: TransportKind, delta: i64) {
        self.connections
            .get_or_create(&AppTransport {
                app: app.to_owned(),
                transport: transport.as_str(),
            })
            .inc_by(delta);
    }

    /// A channel join succeeded.
    pub fn join(&self, app: &str) {
        self.joins.get_or_create(&app_label(app)).inc();
    }

    /// A message arrived from a client.
    pub fn message_in(&self, app: &str) {
        self.messages_in.get_or_create(&app_label(app)).inc();
    }

    /// `count` messages were queued to clients.
    pub fn messages_out(&self, app: &str, count: u64) {
        if count > 0 {
            self.messages_out
                .get_or_create(&app_label(app))
                .inc_by(count);
        }
    }

    /// A webhook call of `kind` (auth, message, join, events, schema) took `seconds`.
    pub fn webhook_duration(&self, app: &str, kind: &'static str, seconds: f64) {
        self.webhook_duration
            .get_or_create(&AppKind {
                app: app.to_owned(),
                kind,
            })
            .observe(seconds);
    }

    /// A webhook call of `kind` failed for `reason`.
    pub fn webhook_failure(&self, app: &str, kind: &'static str, reason: &'static str) {
        self.webhook_failures
            .get_or_create(&AppKindReason {
                app: app.to_owned(),
                kind,
                reason,
            })
            .inc();
    }

    /// A connection attempt was refused for `reason` (the 403 reason).
    pub fn auth_failure(&self, app: &str, reason: &'static str) {
        self.auth_failures
            .get_or_create(&AppReason {
                app: app.to_owned(),
                reason,
            })
            .inc();
    }

    /// A rate limit of `kind` refused something.
    pub fn rate_limited(&self, app: &str, kind: &'static str) {
        self.rate_limited
            .get_or_create(&AppKind {
                app: app.to_owned(),
                kind,
            })
            .inc();
    }

    /// A schema fetch failed.
    pub fn schema_fetch_failure(&self, app: &str) {
        self.schema_fetch_failures
            .get_or_create(&app_label(app))
            .inc();
    }

    /// A size or count limit (named by its `[limits]` key) refused something.
    pub fn limit_exceeded(&self, app: &str, limit: &'static str) {
        self.limit_exceeded
            .get_or_create(&AppLimit {
                app: app.to_owned(),
                limit,
            })
            .inc();
    }

    /// `count` messages were dropped for `reason`.
    pub fn dropped(&self, app: &str, reason: &'static str, count: u64) {
        self.dropped_messages
            .get_or_create(&AppReason {
                app: app.to_owned(),
                reason,
            })
            .inc_by(count);
    }

    /// A TLS handshake failed (`error`) or timed out (`timeout`).
    pub fn tls_handshake_failure(&self, reason: &'static str) {
        self.tls_handshake_failures
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }
}

/// Every family, for the descriptor lines of families without samples yet:
/// the encoder skips a labelled family until its first sample, but CONTRACT
/// §10 wants every family visible from startup.
const FAMILIES: [(&str, &str, &str); 12] = [
    (
        "switchboard_connections",
        "gauge",
        "Open client connections.",
    ),
    ("switchboard_joins", "counter", "Successful channel joins."),
    (
        "switchboard_messages_in",
        "counter",
        "Messages received from clients.",
    ),
    (
        "switchboard_messages_out",
        "counter",
        "Messages queued to clients.",
    ),
    (
        "switchboard_webhook_duration_seconds",
        "histogram",
        "Duration of webhook calls to app backends.",
    ),
    (
        "switchboard_webhook_failures",
        "counter",
        "Failed webhook calls.",
    ),
    (
        "switchboard_auth_failures",
        "counter",
        "Refused connection attempts.",
    ),
    (
        "switchboard_rate_limited",
        "counter",
        "Requests refused by a rate limit.",
    ),
    (
        "switchboard_schema_fetch_failures",
        "counter",
        "Failed schema fetches (the last good schema stays in use).",
    ),
    (
        "switchboard_dropped_messages",
        "counter",
        "Messages dropped instead of delivered.",
    ),
    (
        "switchboard_tls_handshake_failures",
        "counter",
        "TLS handshakes that failed or timed out (built-in TLS).",
    ),
    (
        "switchboard_limit_exceeded",
        "counter",
        "Requests refused by a size or count limit.",
    ),
];

fn with_every_family_described(mut text: String) -> String {
    let eof = text.rfind("# EOF").unwrap_or(text.len());
    let mut missing = String::new();
    for (name, kind, help) in FAMILIES {
        if !text.contains(&format!("# TYPE {name} ")) {
            missing.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        }
    }
    text.insert_str(eof, &missing);
    text
}

fn app_label(app: &str) -> AppLabel {
    AppLabel {
        app: app.to_owned(),
    }
}

/// Resident set size from `/proc/self/statm` (0 where unavailable).
pub fn resident_memory_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_exposed_before_traffic() {
        let text = Metrics::new().render();
        for family in [
            "switchboard_connections",
            "switchboard_joins_total",
            "switchboard_messages_in_total",
            "switchboard_messages_out_total",
            "switchboard_webhook_duration_seconds",
            "switchboard_webhook_failures_total",
            "switchboard_auth_failures_total",
            "switchboard_rate_limited_total",
            "switchboard_schema_fetch_failures_total",
            "switchboard_dropped_messages_total",
            "switchboard_limit_exceeded_total",
            "switchboard_process_resident_memory_bytes",
            "switchboard_tls_handshake_failures_total",
        ] {
            let base = family.trim_end_matches("_total");
            assert!(
                text.contains(&format!("# TYPE {base} ")),
                "{family} missing from:\n{text}"
            );
        }
    }
}
