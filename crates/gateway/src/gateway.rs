//! The process-wide context every part of the server shares: settings, the
//! app registry, the hub, the webhook client, metrics, the connection
//! registry and the lifecycle (ready, draining).

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use governor::{DefaultKeyedRateLimiter, Quota};

use crate::apps::{load_local_schema, spawn_schema_refresher, App, Apps};
use crate::config::{AppConfig, Config, Limits, ServerSettings};
use crate::hub::Hub;
use crate::session::ConnectionRegistry;
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
    connect_limiter: DefaultKeyedRateLimiter<IpAddr>,
    next_id: AtomicU64,
}

impl Gateway {
    /// Builds the gateway from a validated config, adding the apps that were
    /// registered through the admin API in earlier runs (state file). Must
    /// run inside a Tokio runtime: it starts each app's schema refresher.
    pub fn start(config: Config) -> Result<Arc<Gateway>, String> {
        let metrics = Arc::new(Metrics::new());
        let webhooks = Arc::new(Webhooks::new(metrics.clone(), config.limits.max_body_bytes));
        let in_flight = config.limits.webhooks_in_flight_per_app;
        let mut apps: Vec<Arc<App>> = config
            .apps
            .into_iter()
            .map(|app| Arc::new(App::new(app, in_flight, true)))
            .collect();
        let state_file = config.server.state_file.clone();
        for raw in Apps::read_state_file(&state_file)? {
            let app = raw
                .validate(&config.server)
                .map_err(|e| format!("state file {}: {e}", state_file.display()))?;
            if apps.iter().any(|a| a.id() == app.id) {
                tracing::warn!(app = %app.id, "app in the state file is also in the config file; the config file wins");
                continue;
            }
            apps.push(Arc::new(App::new(app, in_flight, false)));
        }
        for app in &apps {
            load_local_schema(app, &metrics);
            spawn_schema_refresher(webhooks.clone(), app.clone());
        }
        let per_ip = std::num::NonZeroU32::new(config.limits.connects_per_ip_per_second.max(1))
            .unwrap_or(std::num::NonZeroU32::MIN);
        let gateway = Arc::new(Gateway {
            hub: Hub::new(metrics.clone()),
            apps: Apps::new(apps, Some(state_file)),
            connections: ConnectionRegistry::default(),
            lifecycle: Lifecycle::default(),
            longpoll: LongPollSessions::default(),
            connect_limiter: DefaultKeyedRateLimiter::keyed(Quota::per_second(per_ip)),
            next_id: AtomicU64::new(1),
            server: config.server,
            limits: config.limits,
            metrics,
            webhooks,
        });
        spawn_reaper(&gateway);
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

    /// Wraps an admin-registered app and starts its schema refresher.
    pub fn new_registered_app(self: &Arc<Self>, config: AppConfig) -> Arc<App> {
        let app = Arc::new(App::new(
            config,
            self.limits.webhooks_in_flight_per_app,
            false,
        ));
        spawn_schema_refresher(self.webhooks.clone(), app.clone());
        app
    }
}
