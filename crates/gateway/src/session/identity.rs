//! Who a client is, as the app's auth said: client id, type, metadata and
//! the permission grants that schema permission templates are checked
//! against.

use std::num::NonZeroU64;

use serde_json::{Map, Value};

/// A client's identity for the life of its connection. Every connection
/// holds one, so its fields are the compact forms (boxed strings, a
/// niche-packed expiry).
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// The app's id for the client (presence key, disconnect API key).
    pub client_id: String,
    /// Free-form client kind ("web", "cli", ...), if given.
    pub client_type: Option<Box<str>>,
    /// Metadata the app vouched for; forwarded with every webhook.
    pub metadata: Map<String, Value>,
    /// Permission grants (see the schema's permission templates).
    pub permissions: Vec<String>,
    /// Unix seconds after which the connection must close because the JWT
    /// it was admitted with has expired (4001 `token_expired`); `None` for
    /// webhook auth and apps with `close_on_token_expiry = false`.
    pub token_expires_at: Option<NonZeroU64>,
}
