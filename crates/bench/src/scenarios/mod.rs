//! The scenarios of issue 5, one module each, and the [`Env`] they share:
//! the server under test (started or attached), the in-process backend, the
//! target and the worker template.
//!
//! A scenario decides what to open, what to publish and what to report;
//! opening is `fleet`'s job, publishing `publish`'s.

pub mod connect_storm;
pub mod fanout;
pub mod idle;
pub mod many_topics;
pub mod webhook;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::backend::{self, Backend};
use crate::cli::Common;
use crate::client::Target;
use crate::fleet::Fleet;
use crate::ipc::{Report, TopicPlan, WorkerSpec};
use crate::server::{self, Server, BENCH_APP, BENCH_SECRET};
use crate::stats::{merge, Latency};

/// Connections per worker process when `--processes` is 0 (well under the
/// 20,000 open files one process may hold).
const AUTO_PER_PROCESS: usize = 10_000;

/// The server under test and everything the bench runs beside it.
pub struct Env {
    /// The flags.
    pub common: Common,
    /// Where clients connect.
    pub target: Target,
    /// App id.
    pub app: String,
    /// App secret (server API).
    pub secret: String,
    /// Server API base URL.
    pub api: String,
    /// The server, when its memory can be read.
    pub server: Option<Server>,
    /// The in-process backend, when one runs.
    pub backend: Option<Backend>,
    work_dir: PathBuf,
}

impl Env {
    /// Starts the backend (with `--server-cmd`, or when `--backend-listen`
    /// is given) and the server (with `--server-cmd`), or attaches to
    /// `--server-pid`.
    pub async fn start(common: &Common) -> Result<Env> {
        let spawn = common.server_cmd.is_some();
        let (default_app, default_secret) = if spawn {
            (BENCH_APP, BENCH_SECRET)
        } else {
            ("demo", "demo-secret")
        };
        let app = common.app.clone().unwrap_or_else(|| default_app.to_owned());
        let secret = common
            .secret
            .clone()
            .unwrap_or_else(|| default_secret.to_owned());
        let target = Target::new(&common.url, &app, &common.token_prefix)?;
        let api = common
            .api_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", target.addr()))
            .trim_end_matches('/')
            .to_owned();
        let work_dir = common.work_dir.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("switchboard-bench-{}", std::process::id()))
        });
        let backend = match (&common.backend_listen, spawn) {
            (Some(listen), _) => {
                Some(backend::start(listen, server::schema(common.presence)).await?)
            }
            (None, true) => {
                Some(backend::start("127.0.0.1:0", server::schema(common.presence)).await?)
            }
            (None, false) => None,
        };
        let mut env = Env {
            common: common.clone(),
            target,
            app,
            secret,
            api,
            server: None,
            backend,
            work_dir,
        };
        if let Some(pid) = common.server_pid {
            env.server = Some(Server::attach(pid)?);
        } else if spawn {
            env.start_server().await?;
        }
        Ok(env)
    }

    async fn start_server(&mut self) -> Result<()> {
        let cmd = self
            .common
            .server_cmd
            .clone()
            .context("no --server-cmd to start")?;
        let backend = self.backend.as_ref().context("no backend")?;
        let server = Server::spawn(
            &cmd,
            &self.work_dir,
            &self.target.addr().to_string(),
            &backend.url(),
            self.common.presence,
            &self.common.server_log,
        )
        .await?;
        eprintln!(
            "bench: started {} (pid {}), config and log in {}",
            cmd.display(),
            server.pid,
            self.work_dir.display()
        );
        self.server = Some(server);
        Ok(())
    }

    /// Restarts a server the bench started, so the next run begins fresh.
    pub async fn restart_server(&mut self) -> Result<()> {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
        self.start_server().await
    }

    /// Whether the bench started the server.
    pub fn spawned(&self) -> bool {
        self.server.as_ref().is_some_and(Server::spawned)
    }

    /// How the server was found, for summaries.
    pub fn server_kind(&self) -> &'static str {
        match &self.server {
            Some(s) if s.spawned() => "spawned",
            Some(_) => "attached",
            None => "external",
        }
    }

    /// Worker processes for `connections`.
    pub fn processes_for(&self, connections: usize) -> usize {
        match self.common.processes {
            0 => connections.div_ceil(AUTO_PER_PROCESS).max(1),
            n => n,
        }
    }

    /// A worker spec with the shared flags filled in.
    pub fn worker_spec(&self, topics: TopicPlan, default_concurrency: usize) -> WorkerSpec {
        WorkerSpec {
            worker: 0,
            url: self.common.url.clone(),
            app: self.app.clone(),
            token_prefix: self.common.token_prefix.clone(),
            source_ips: self.common.source_ips.clone(),
            first: 0,
            count: 0,
            topics,
            concurrency: self.common.concurrency.unwrap_or(default_concurrency),
            heartbeat_secs: self.common.heartbeat_secs,
            timed_event: "message".to_owned(),
            push_event: "forward".to_owned(),
            payload_bytes: 64,
        }
    }

    /// Starts the workers and opens every connection; fails if none joined.
    pub async fn open(&self, spec: &WorkerSpec, total: usize) -> Result<(Fleet, Opened)> {
        let processes = self.processes_for(total);
        let mut fleet = Fleet::start(spec, total, processes).await?;
        let go_ns = crate::sys::now_ns();
        let ready = fleet.open(Duration::from_secs(900)).await?;
        let opened = Opened {
            joined: ready.iter().map(|r| r.joined).sum(),
            failed: ready.iter().map(|r| r.failed).sum(),
            first_error: ready.iter().find_map(|r| r.first_error.clone()),
            go_ns,
            last_joined_ns: ready.iter().map(|r| r.last_joined_ns).max().unwrap_or(0),
            connect: Latency::of(&merge(ready.iter().map(|r| r.connect_latency.as_str()))?),
            processes: fleet.processes(),
            generator_rss: ready.iter().map(|r| r.rss_bytes).sum(),
        };
        if let Some(error) = &opened.first_error {
            eprintln!(
                "bench: {} connection(s) failed; first: {error}",
                opened.failed
            );
        }
        if opened.joined == 0 {
            fleet.stop().await;
            bail!("no connection joined");
        }
        Ok((fleet, opened))
    }

    /// Stops a server the bench started.
    pub async fn finish(self) {
        if let Some(server) = self.server {
            server.stop().await;
        }
    }

    /// Fields every summary carries.
    pub fn summary_base(&self, scenario: &str, opened: &Opened) -> serde_json::Map<String, Value> {
        let mut map = serde_json::Map::new();
        map.insert("scenario".into(), json!(scenario));
        map.insert("server".into(), json!(self.server_kind()));
        map.insert("app".into(), json!(self.app));
        map.insert("processes".into(), json!(opened.processes));
        map.insert(
            "source_ips".into(),
            json!(self.common.source_ips.len().max(1)),
        );
        map.insert("joined".into(), json!(opened.joined));
        map.insert("failed".into(), json!(opened.failed));
        map.insert(
            "generator_rss_per_conn_bytes".into(),
            json!(opened.generator_rss / (opened.joined.max(1) as u64)),
        );
        map
    }
}

/// What opening the connections gave.
pub struct Opened {
    /// Connections joined.
    pub joined: usize,
    /// Connections that failed.
    pub failed: usize,
    /// The first failure.
    pub first_error: Option<String>,
    /// When `open` was sent (ns since the Unix epoch).
    pub go_ns: u64,
    /// When the last connection joined.
    pub last_joined_ns: u64,
    /// Connect + join latency per connection.
    pub connect: Latency,
    /// Worker processes.
    pub processes: usize,
    /// The workers' resident memory, added up, once all were open.
    pub generator_rss: u64,
}

impl Opened {
    /// Seconds from `open` to the last join.
    pub fn open_secs(&self) -> f64 {
        self.last_joined_ns.saturating_sub(self.go_ns) as f64 / 1e9
    }
}

/// Totals of the workers' reports.
pub struct Totals {
    /// Timed broadcasts received.
    pub received: u64,
    /// Last receive (ns since the Unix epoch).
    pub last_received_ns: u64,
    /// Publish-to-receive latency.
    pub latency: Latency,
    /// Pushes sent.
    pub pushes: u64,
    /// Pushes answered ok.
    pub replies_ok: u64,
    /// Pushes answered otherwise.
    pub replies_error: u64,
    /// Pushes never answered.
    pub unanswered: u64,
    /// Push round trip.
    pub reply_latency: Latency,
    /// Connections lost.
    pub disconnected: u64,
    /// First error seen by any worker.
    pub first_error: Option<String>,
}

/// Adds the workers' reports up.
pub fn totals(reports: &[Report]) -> Result<Totals> {
    Ok(Totals {
        received: reports.iter().map(|r| r.received).sum(),
        last_received_ns: reports
            .iter()
            .map(|r| r.last_received_ns)
            .max()
            .unwrap_or(0),
        latency: Latency::of(&merge(reports.iter().map(|r| r.latency.as_str()))?),
        pushes: reports.iter().map(|r| r.pushes).sum(),
        replies_ok: reports.iter().map(|r| r.replies_ok).sum(),
        replies_error: reports.iter().map(|r| r.replies_error).sum(),
        unanswered: reports.iter().map(|r| r.unanswered).sum(),
        reply_latency: Latency::of(&merge(reports.iter().map(|r| r.reply_latency.as_str()))?),
        disconnected: reports.iter().map(|r| r.disconnected).sum(),
        first_error: reports.iter().find_map(|r| r.first_error.clone()),
    })
}

/// After publishing: polls the workers until `expected` deliveries arrived
/// or the count has not moved for 2 s (at most 30 s), then returns the
/// totals.
pub async fn drain(fleet: &mut Fleet, expected: u64) -> Result<Totals> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut last = u64::MAX;
    let mut still_since = std::time::Instant::now();
    loop {
        let t = totals(&fleet.report().await?)?;
        if t.received >= expected || std::time::Instant::now() > deadline {
            return Ok(t);
        }
        if t.received != last {
            last = t.received;
            still_since = std::time::Instant::now();
        } else if still_since.elapsed() >= Duration::from_secs(2) {
            return Ok(t);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Latency fields for a summary, prefixed.
pub fn latency_json(map: &mut serde_json::Map<String, Value>, prefix: &str, lat: &Latency) {
    map.insert(format!("{prefix}_p50_ms"), json!(lat.p50_ms));
    map.insert(format!("{prefix}_p99_ms"), json!(lat.p99_ms));
    map.insert(format!("{prefix}_max_ms"), json!(lat.max_ms));
}
