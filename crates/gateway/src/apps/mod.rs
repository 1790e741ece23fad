//! Tenants: the registry of apps, each app's current compiled schema, the
//! per-connection push rate limits derived from it, and each app's ceiling
//! on client pushes.
//!
//! An app is its validated config plus runtime state (the last good schema,
//! its cap on webhook calls in flight). Apps never hold connections.

mod app;
mod rate_limit;
mod registry;
mod schema_loader;

pub use app::App;
pub use rate_limit::{AppPushCeiling, PushLimiter, RateLimitHit};
pub use registry::{Apps, RegistryError};
pub use schema_loader::{load_local_schema, load_schema, spawn_schema_refresher};
