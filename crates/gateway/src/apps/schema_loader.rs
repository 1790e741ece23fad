//! Loading an app's schema (CONTRACT §4): from its endpoint (a signed GET),
//! a file, or the embedded demo document; at startup, every
//! `schema_refresh_secs`, and on demand. A failed fetch keeps the last good
//! schema, logs and counts the failure, and retries with backoff.

use std::sync::Arc;
use std::time::Duration;

use switchboard_schema::Schema;

use super::App;
use crate::config::SchemaSource;
use crate::upstream::{new_request_id, WebhookKind, Webhooks};

/// Fetches and compiles the app's schema, installing it on success.
/// Returns the new version, or why it failed (the old schema stays).
pub async fn load_schema(webhooks: &Webhooks, app: &App) -> Result<String, String> {
    let result = fetch_and_compile(webhooks, app).await;
    match &result {
        Ok(schema) => {
            let version = schema.version().to_owned();
            let changed = app.schema().is_none_or(|old| old.version() != version);
            app.set_schema(schema.clone());
            if changed {
                tracing::info!(app = app.id(), version, "schema loaded");
            }
            Ok(version)
        }
        Err(error) => {
            webhooks.metrics().schema_fetch_failure(app.id());
            let kept = app.schema().map(|s| s.version().to_owned());
            tracing::warn!(
                app = app.id(),
                %error,
                kept_version = kept.as_deref().unwrap_or("none"),
                "schema fetch failed; keeping the last good schema"
            );
            Err(error.clone())
        }
    }
}

async fn fetch_and_compile(webhooks: &Webhooks, app: &App) -> Result<Arc<Schema>, String> {
    let bytes: Vec<u8> = match &app.config().schema {
        SchemaSource::Inline(text) => text.as_bytes().to_vec(),
        SchemaSource::File(path) => tokio::fs::read(path)
            .await
            .map_err(|e| format!("schema_file {}: {e}", path.display()))?,
        SchemaSource::Endpoint(url) => {
            let request_id = new_request_id();
            let response = webhooks
                .call(app, WebhookKind::Schema, url, Vec::new(), &request_id, true)
                .await
                .map_err(|e| format!("schema_endpoint: {e}"))?;
            if response.status != 200 {
                return Err(format!("schema_endpoint answered HTTP {}", response.status));
            }
            response.body.to_vec()
        }
    };
    Schema::from_json(&bytes)
        .map(Arc::new)
        .map_err(|e| format!("invalid schema: {e}"))
}

/// Loads an inline or file schema right away, so that an app whose schema
/// needs no network is ready before the server listens. Endpoint schemas
/// are left to the refresher. A failure is logged and counted like any
/// failed fetch; the refresher retries.
pub fn load_local_schema(app: &App, metrics: &crate::telemetry::Metrics) {
    let bytes = match &app.config().schema {
        SchemaSource::Endpoint(_) => return,
        SchemaSource::Inline(text) => Ok(text.as_bytes().to_vec()),
        SchemaSource::File(path) => {
            std::fs::read(path).map_err(|e| format!("schema_file {}: {e}", path.display()))
        }
    };
    match bytes.and_then(|b| Schema::from_json(&b).map_err(|e| format!("invalid schema: {e}"))) {
        Ok(schema) => app.set_schema(Arc::new(schema)),
        Err(error) => {
            metrics.schema_fetch_failure(app.id());
            tracing::warn!(app = app.id(), %error, "schema could not be loaded at startup");
        }
    }
}

/// Keeps the app's schema fresh until the app is removed: loads now, then
/// every refresh interval; after a failure retries sooner (1 s doubling up
/// to the interval). `App::wake_refresher` cuts a wait short.
pub fn spawn_schema_refresher(webhooks: Arc<Webhooks>, app: Arc<App>) {
    tokio::spawn(async move {
        let mut backoff = Duration::from_secs(1);
        while !app.is_removed() {
            let interval = app.config().schema_refresh;
            let wait = match load_schema(&webhooks, &app).await {
                Ok(_) => {
                    backoff = Duration::from_secs(1);
                    interval
                }
                Err(_) => {
                    let wait = backoff.min(interval);
                    backoff = (backoff * 2).min(interval);
                    wait
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = app.refresh_wake.notified() => {}
            }
        }
    });
}
