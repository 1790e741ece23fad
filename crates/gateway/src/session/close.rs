//! Why connections end, and the WebSocket close code each reason carries.
//!
//! phoenix.js up to 1.8.12 reconnects after any server close except code
//! 1000 (later 1.8.x clients reconnect after 1000 too), so the code says
//! whether a client should come back: "go away and come back" reasons use
//! 1001/1012, the idle timeout 1000 as the contract asks. Reasons fit in the
//! 123 bytes a close frame allows.

/// A reason the gateway closes a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Nothing received for `idle_timeout_secs` (CONTRACT §10: code 1000).
    IdleTimeout,
    /// The disconnect API closed this client (1001, so it reconnects and the
    /// app's auth decides again).
    Disconnected,
    /// The outbound queue overflowed (1001: the client may reconnect).
    SlowConsumer,
    /// The server is draining (1012 service restart: reconnect elsewhere).
    Draining,
    /// A frame exceeded the hard size cap (1009).
    MessageTooBig,
    /// A text frame was not UTF-8 (1007, RFC 6455 §7.4.1).
    InvalidUtf8,
    /// The client broke the WebSocket framing rules, e.g. reserved bits,
    /// an unmasked or unknown frame (1002).
    ProtocolError,
    /// The JWT behind this connection expired (4001 `token_expired`).
    TokenExpired,
    /// The app was removed through the admin API (1001).
    AppRemoved,
    /// The client kept going past its rate limits for `rate_limit_strikes`
    /// refusals in a row (1008 policy violation; phoenix.js reconnects).
    RateLimited,
}

impl CloseReason {
    /// The WebSocket close code.
    pub fn code(self) -> u16 {
        match self {
            CloseReason::IdleTimeout => 1000,
            CloseReason::Disconnected | CloseReason::SlowConsumer | CloseReason::AppRemoved => 1001,
            CloseReason::RateLimited => 1008,
            CloseReason::MessageTooBig => 1009,
            CloseReason::InvalidUtf8 => 1007,
            CloseReason::ProtocolError => 1002,
            CloseReason::Draining => 1012,
            CloseReason::TokenExpired => 4001,
        }
    }

    /// The close reason text, also used as a log and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::Disconnected => "disconnected",
            CloseReason::SlowConsumer => "slow_consumer",
            CloseReason::Draining => "server_draining",
            CloseReason::MessageTooBig => "message_too_large",
            CloseReason::InvalidUtf8 => "invalid_utf8",
            CloseReason::ProtocolError => "protocol_error",
            CloseReason::TokenExpired => "token_expired",
            CloseReason::AppRemoved => "app_removed",
            CloseReason::RateLimited => "rate_limited",
        }
    }
}
