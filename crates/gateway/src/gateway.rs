//! The process-wide context every part of the server shares: settings, the
//! app registry, the hub, the webhook client, metrics, the connection
//! registry and the lifecycle (ready, draining).

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use governor::{DefaultKeyedRateLimiter, Quota};

use crate::apps::{load_local_schema, spawn_schema_refresher, App, Apps, RegistryError};
use crate::cluster::RedisEngine;
use crate::config::{AppConfig, Config, Limits, ServerSettings};
use crate::hub::Hub;
use crate::jwt::spawn_jwks_refresher;
use crate::session::{CloseReason, ConnectionRegistry};
use crate::telemetry::Metrics;
use crate::transport::longpoll::{spawn_reaper, LongPollSessions};
use crate::upstream::Webhooks;

/// Ready / draining flags behind `/health/ready` and connection admission.
#[derive(Default)]
pub struct Lifecycle {
    ready: AtomicBool,
    draining: AtomicBool,
}

impl Lifecycle {
    /// True when accepting connections.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && !self.is_draining()
    }

    /// True once a drain began.
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Marks the server as serving.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }

    /// Starts draining: readiness goes 503, new connections are refused.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }
}

/// Everything the server shares.
pub struct Gateway {
    /// `[server]` settings.
    pub server: ServerSettings,
    /// `[limits]`.
    pub limits: Limits,
    /// The apps.
    pub apps: Apps,
    /// Subscriptions and fan-out.
    pub hub: Hub,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Webhook client.
    pub webhooks: Arc<Webhooks>,
    /// Open connections.
    pub connections: ConnectionRegistry,
    /// Ready / draining.
    pub lifecycle: Lifecycle,
    /// Long-poll sessions.
    pub longpoll: LongPollSessions,
    /// This node's name: `SWITCHBOARD_NODE`, else `<host>-<random>` so that
    /// several processes on one host are distinct nodes.
    pub node: String,
    /// Built-in TLS: the acceptor of every connection; `None` = plain HTTP.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    connect_limiter: DefaultKeyedRateLimiter<IpAddr>,
    next_id: AtomicU64,
}

impl Gateway {
    /// Builds the gateway from a validated config, adding the apps that were
    /// registered through the admin API in earlier runs (state file). Must
    /// run inside a Tokio runtime: it starts each app's schema refresher.
    pub fn start(config: Config) -> Result<Arc<Gateway>, String> {
        let tls = match &config.server.tls {
            Some(files) => Some(crate::tls::load(files).map_err(|e| format!("{}: {e}", e.key()))?),
            None => None,
        };
        let metrics = Arc::new(Metrics::new());
        let webhooks = Arc::new(Webhooks::new(metrics.clone(), config.limits.max_body_bytes));
        let mut apps: Vec<Arc<App>> = config
            .apps
            .into_iter()
            .map(|app| Arc::new(App::new(app, &config.limits, true)))
            .collect();
        let state_file = config.server.state_file.clone();
        // In a cluster, admin-registered apps live in Redis, not the state file.
        let state_apps = match config.cluster {
            Some(_) => Vec::new(),
            None => Apps::read_state_file(&state_file)?,
        };
        for raw in state_apps {
            let app = raw
                .validate(&config.server)
                .map_err(|e| format!("state file {}: {e}", state_file.display()))?;
            if apps.iter().any(|a| a.id() == app.id) {
                tracing::warn!(app = %app.id, "app in the state file is also in the config file; the config file wins");
                continue;
            }
            apps.push(Arc::new(App::new(app, &config.limits, false)));
        }
        for app in &apps {
            load_local_schema(app, &metrics);
            spawn_schema_refresher(webhooks.clone(), app.clone());
            spawn_jwks_refresher(webhooks.clone(), app.clone(), &config.limits);
        }
        let cluster = config.cluster.clone();
        let per_ip = std::num::NonZeroU32::new(config.limits.connects_per_ip_per_second.max(1))
            .unwrap_or(std::num::NonZeroU32::MIN);
        let gateway = Arc::new(Gateway {
            hub: Hub::new(metrics.clone()),
            apps: Apps::new(apps, cluster.is_none().then_some(state_file)),
            connections: ConnectionRegistry::default(),
            lifecycle: Lifecycle::default(),
            longpoll: LongPollSessions::default(),
            node: node_name(),
            tls,
            connect_limiter: DefaultKeyedRateLimiter::keyed(Quota::per_second(per_ip)),
            // Ids start at a random point so that two runs of one node name
            // never share connection ids (cluster hash fields are
            // `<node>:<connection id>`).
            next_id: AtomicU64::new(u64::from(uuid::Uuid::new_v4().as_fields().0) << 24 | 1),
            server: config.server,
            limits: config.limits,
            metrics,
            webhooks,
        });
        spawn_reaper(&gateway);
        if let Some(cluster) = &cluster {
            let engine = RedisEngine::start(&gateway, cluster)?;
            gateway.hub.set_engine(engine);
        }
        Ok(gateway)
    }

    /// A fresh connection id.
    pub fn next_connection_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Counts a connection attempt from `ip`; false when over
    /// `connects_per_ip_per_second`.
    pub fn allow_connect_from(&self, ip: IpAddr) -> bool {
        if self.limits.connects_per_ip_per_second == 0 {
            return true;
        }
        let allowed = self.connect_limiter.check_key(&ip).is_ok();
        if self.connect_limiter.len() > 100_000 {
            self.connect_limiter.retain_recent();
        }
        allowed
    }

    /// Adds or replaces an admin-registered app on this node. Returns true
    /// when it is new. A replaced app's clients are closed (they reconnect
    /// and meet the new config).
    pub fn install_registered_app(&self, config: AppConfig) -> Result<bool, RegistryError> {
        if self.apps.get(&config.id).is_some_and(|a| a.from_config()) {
            return Err(RegistryError::DefinedInConfig);
        }
        let app = Arc::new(App::new(config, &self.limits, false));
        load_local_schema(&app, &self.metrics);
        spawn_schema_refresher(self.webhooks.clone(), app.clone());
        spawn_jwks_refresher(self.webhooks.clone(), app.clone(), &self.limits);
        match self.apps.put(app.clone()) {
            Ok(Some(previous)) => {
                self.retire(&previous);
                Ok(false)
            }
            Ok(None) => Ok(true),
            Err(error) => {
                app.mark_removed();
                Err(error)
            }
        }
    }

    /// Removes an admin-registered app from this node and closes its clients.
    pub fn remove_registered_app(&self, id: &str) -> Result<(), RegistryError> {
        let removed = self.apps.remove(id)?;
        self.retire(&removed);
        Ok(())
    }

    /// Makes this node's admin-registered apps exactly `wanted` (the
    /// cluster's shared registry), touching only apps whose config changed.
    pub fn sync_registered_apps(&self, wanted: Vec<AppConfig>) {
        let wanted_ids: HashSet<String> = wanted.iter().map(|c| c.id.clone()).collect();
        for config in wanted {
            let unchanged = self
                .apps
                .get(&config.id)
                .is_some_and(|app| app.from_config() || app.config() == &config);
            if !unchanged {
                let id = config.id.clone();
                if self.install_registered_app(config).is_ok() {
                    tracing::info!(
                        app = id,
                        "app registered on another node is now served here"
                    );
                }
            }
        }
        for app in self.apps.all() {
            let gone = !app.from_config() && !wanted_ids.contains(app.id());
            if gone && self.remove_registered_app(app.id()).is_ok() {
                tracing::info!(
                    app = app.id(),
                    "app removed on another node is no longer served here"
                );
            }
        }
    }

    /// Stops an app's schema refresher and closes its clients.
    fn retire(&self, app: &Arc<App>) {
        app.mark_removed();
        self.connections
            .close_matching(app.id(), None, CloseReason::AppRemoved);
    }

    /// True when the node takes connections: serving, not draining, and (in
    /// a cluster) Redis reachable.
    pub fn is_ready(&self) -> bool {
        self.lifecycle.is_ready() && self.hub.engine().is_healthy()
    }
}

fn node_name() -> String {
    if let Some(name) = std::env::var("SWITCHBOARD_NODE")
        .ok()
        .filter(|n| !n.is_empty())
    {
        return name;
    }
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_owned());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}-{}", &suffix[..6])
}
