//! Webhooks: every call the gateway makes to an app backend (auth, message,
//! join, events, schema), and the unsigned fetch of an app's JWKS.
//!
//! [`Webhooks`] owns the HTTP client (keep-alive pooling), signing, timeouts,
//! the per-app cap on calls in flight, and the mapping of failures to the
//! reasons clients and metrics see. The modules beside it build each call's
//! body and interpret its answer. Nothing here retries a non-idempotent call.

mod actions;
mod auth;
mod client;
mod events;
mod join;
mod message;
mod signing;

pub use actions::{parse_actions, Action, ActionData};
pub use auth::{authenticate, AuthRefusal, AuthRequest};
pub use client::{
    new_request_id, PublicResponse, WebhookError, WebhookKind, WebhookResponse, Webhooks,
};
pub use events::{emit_event, LifecycleEvent};
pub use join::{ask_join, JoinDecision};
pub use message::{forward_message, ForwardFailure, MessageRequest};
pub use signing::{sign, SIGNATURE_HEADER, TIMESTAMP_HEADER};
