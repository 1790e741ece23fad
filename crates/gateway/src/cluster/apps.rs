//! Apps registered through the admin API, shared through Redis: a hash of
//! app id → the app as JSON (secrets included — protect Redis accordingly).
//! The node that handles the admin call writes the hash and announces the
//! change on the control channel; every node also re-reads the hash every
//! two seconds, so a missed announcement costs at most that.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use fred::interfaces::{HashesInterface, PubsubInterface};

use super::RedisEngine;
use crate::config::RawApp;

const SYNC_INTERVAL: Duration = Duration::from_secs(2);

impl RedisEngine {
    pub(super) fn spawn_app_sync(self: Arc<Self>) {
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(SYNC_INTERVAL) => {}
                    _ = self.app_sync_wake.notified() => {}
                }
                if self.gateway.strong_count() == 0 {
                    return;
                }
                if self.is_healthy_now() {
                    self.sync_apps().await;
                }
            }
        });
    }

    pub(super) fn wake_app_sync(&self) {
        self.app_sync_wake.notify_one();
    }

    /// Stores (or with `None` removes) an admin-registered app in Redis and
    /// tells the other nodes.
    pub(super) async fn store_app(&self, id: &str, raw: Option<&RawApp>) -> Result<(), String> {
        let key = self.keys.apps();
        let written = match raw {
            Some(raw) => {
                let json = serde_json::to_string(raw).map_err(|e| e.to_string())?;
                self.client.hset::<i64, _, _>(key, vec![(id, json)]).await
            }
            None => self.client.hdel::<i64, _, _>(key, id).await,
        };
        written.map_err(|e| format!("Redis: {e}"))?;
        let notice = serde_json::json!({ "t": "apps", "n": self.node }).to_string();
        let _ = self
            .client
            .publish::<i64, _, _>(self.keys.control_channel(), notice)
            .await;
        Ok(())
    }

    async fn sync_apps(&self) {
        let Some(gateway) = self.gateway.upgrade() else {
            return;
        };
        let stored: HashMap<String, String> = match self.client.hgetall(self.keys.apps()).await {
            Ok(stored) => stored,
            Err(_) => return,
        };
        let mut wanted = Vec::new();
        for (id, json) in &stored {
            let parsed = serde_json::from_str::<RawApp>(json)
                .map_err(|e| e.to_string())
                .and_then(|raw| raw.validate(&gateway.server).map_err(|e| e.to_string()));
            match parsed {
                Ok(config) => wanted.push(config),
                Err(error) => {
                    tracing::warn!(app = %id, %error, "app stored in Redis is invalid; ignored")
                }
            }
        }
        gateway.sync_registered_apps(wanted);
    }
}
