//! The scenarios of issue 5, one module each, and the [`Env`] they share:
//! the server under test (started or attached; with `--nodes`, several
//! nodes sharing a Redis), the in-process backend, the targets, the Redis
//! statistics and the worker template.
//!
//! A scenario decides what to open, what to publish and what to report;
//! opening is `fleet`'s job, publishing `publish`'s. A [`Meter`] reads the
//! CPU time of every process involved, and Redis's `INFO`, around a
//! measured window.

pub mod connect_storm;
pub mod fanout;
pub mod idle;
pub mod many_topics;
pub mod redis_pubsub;
pub mod webhook;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use reqwest::Url;
use serde_json::{json, Value};

use crate::backend::{self, Backend};
use crate::cli::Common;
use crate::client::Target;
use crate::fleet::Fleet;
use crate::ipc::{Report, TopicPlan, WorkerSpec};
use crate::redis::{self as redis_stats, Redis, ShardDelta, ShardInfo, NOTED_COMMANDS};
use crate::server::{self, Cluster, Launch, Server, BENCH_APP, BENCH_SECRET};
use crate::stats::{merge, Latency};
use crate::sys::{cpu_secs, machine_busy_secs};

/// Connections per worker process when `--processes` is 0 (well under the
/// 20,000 open files one process may hold).
const AUTO_PER_PROCESS: usize = 10_000;

/// The Redis of spawned nodes when `--nodes` is above 1 and `--redis-url`
/// is not given.
const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// How long to let the nodes' queued Redis writes go out before reading
/// Redis's counters after a phase.
const REDIS_WRITES_SETTLE: Duration = Duration::from_millis(500);

/// The server under test and everything the bench runs beside it.
pub struct Env {
    /// The flags.
    pub common: Common,
    /// Where clients of node 0 connect (the pushing client too).
    pub target: Target,
    /// Every node's WebSocket URL; connection `i` goes to `urls[i % len]`.
    pub urls: Vec<String>,
    /// App id.
    pub app: String,
    /// App secret (server API).
    pub secret: String,
    /// Server API base URL.
    pub api: String,
    /// The servers whose memory can be read: every spawned node, or the
    /// attached process.
    pub servers: Vec<Server>,
    /// The in-process backend, when one runs.
    pub backend: Option<Backend>,
    /// The `[cluster]` of spawned nodes.
    pub cluster: Option<Cluster>,
    /// The shared Redis, when known (statistics, and cleanup of spawned
    /// nodes' keys).
    pub redis: Option<Redis>,
    work_dir: PathBuf,
}

impl Env {
    /// Starts the backend (with `--server-cmd`, or when `--backend-listen`
    /// is given) and the server (with `--server-cmd`), or attaches to
    /// `--server-pid`.
    pub async fn start(common: &Common) -> Result<Env> {
        let spawn = common.server_cmd.is_some();
        if common.nodes == 0 {
            bail!("--nodes must be at least 1");
        }
        if common.nodes > 1 && !spawn {
            bail!("--nodes above 1 needs --server-cmd (the bench starts the nodes)");
        }
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
        let urls = (0..common.nodes)
            .map(|k| node_url(&common.url, k))
            .collect::<Result<Vec<_>>>()?;
        let redis_url = common
            .redis_url
            .clone()
            .or_else(|| (common.nodes > 1).then(|| DEFAULT_REDIS_URL.to_owned()));
        let cluster = match (&redis_url, spawn) {
            (Some(url), true) => Some(Cluster {
                redis_url: url.clone(),
                key_prefix: common.key_prefix.clone().unwrap_or_else(|| {
                    format!(
                        "sbbench-{}-{}",
                        std::process::id(),
                        crate::sys::now_ns() / 1_000_000_000
                    )
                }),
            }),
            _ => None,
        };
        let redis = match &redis_url {
            Some(url) => Some(Redis::connect(url).await?),
            None => None,
        };
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
            urls,
            app,
            secret,
            api,
            servers: Vec::new(),
            backend,
            cluster,
            redis,
            work_dir,
        };
        if let Some(pid) = common.server_pid {
            env.servers.push(Server::attach(pid)?);
        } else if spawn {
            if let Err(error) = env.start_servers().await {
                env.finish().await;
                return Err(error);
            }
        }
        Ok(env)
    }

    async fn start_servers(&mut self) -> Result<()> {
        let cmd = self
            .common
            .server_cmd
            .clone()
            .context("no --server-cmd to start")?;
        let backend_url = self.backend.as_ref().context("no backend")?.url();
        let nodes = self.urls.len();
        for (k, url) in self.urls.iter().enumerate() {
            let dir = if nodes == 1 {
                self.work_dir.clone()
            } else {
                self.work_dir.join(format!("node{k}"))
            };
            let listen = Target::new(url, &self.app, "")?.addr().to_string();
            let node = self.cluster.as_ref().map(|_| format!("bench-node{k}"));
            let server = Server::spawn(&Launch {
                cmd: &cmd,
                dir: &dir,
                listen: &listen,
                backend_url: &backend_url,
                presence: self.common.presence,
                log_level: &self.common.server_log,
                node: node.as_deref(),
                cluster: self.cluster.as_ref(),
            })
            .await?;
            eprintln!(
                "bench: started {} (pid {}) on {listen}, config and log in {}",
                cmd.display(),
                server.pid,
                dir.display()
            );
            self.servers.push(server);
        }
        if let Some(cluster) = &self.cluster {
            eprintln!(
                "bench: {nodes} node(s) share Redis {} under key prefix {}",
                redacted(&cluster.redis_url),
                cluster.key_prefix
            );
        }
        Ok(())
    }

    async fn stop_servers(&mut self) {
        for server in self.servers.drain(..) {
            server.stop().await;
        }
        if let (Some(cluster), Some(redis)) = (&self.cluster, &self.redis) {
            match redis.delete_prefix(&cluster.key_prefix).await {
                Ok(n) => eprintln!(
                    "bench: deleted {n} Redis key(s) under {}",
                    cluster.key_prefix
                ),
                Err(error) => eprintln!(
                    "bench: could not delete the Redis keys under {}: {error:#}",
                    cluster.key_prefix
                ),
            }
        }
    }

    /// Restarts the servers the bench started, so the next run begins fresh.
    pub async fn restart_server(&mut self) -> Result<()> {
        self.stop_servers().await;
        self.start_servers().await
    }

    /// Whether the bench started the server(s).
    pub fn spawned(&self) -> bool {
        self.servers.first().is_some_and(Server::spawned)
    }

    /// Process ids of the servers whose memory can be read.
    pub fn server_pids(&self) -> Vec<u32> {
        self.servers.iter().map(|s| s.pid).collect()
    }

    /// How the server was found, for summaries.
    pub fn server_kind(&self) -> &'static str {
        match self.servers.first() {
            Some(s) if s.spawned() => "spawned",
            Some(_) => "attached",
            None => "external",
        }
    }

    /// Starts measuring a window: CPU times and Redis's counters now.
    pub async fn meter(&self, fleet: Option<&Fleet>) -> Meter {
        let redis = match &self.redis {
            Some(redis) => match redis.snapshot().await {
                Ok(shards) => Some(shards),
                Err(error) => {
                    eprintln!("bench: cannot read Redis INFO: {error:#}");
                    None
                }
            },
            None => None,
        };
        Meter {
            at: Instant::now(),
            machine: machine_busy_secs(),
            servers: self.server_pids().into_iter().map(cpu_secs).collect(),
            workers: fleet.map_or(0.0, |f| f.pids().into_iter().map(cpu_secs).sum()),
            bench: cpu_secs(std::process::id()),
            redis,
        }
    }

    /// Ends a window begun by [`Env::meter`].
    pub async fn metered(&self, start: &Meter, fleet: Option<&Fleet>) -> Metered {
        let end = self.meter(fleet).await;
        Metered {
            secs: end.at.duration_since(start.at).as_secs_f64(),
            machine: end.machine - start.machine,
            servers: end
                .servers
                .iter()
                .zip(&start.servers)
                .map(|(b, a)| b - a)
                .collect(),
            workers: end.workers - start.workers,
            bench: end.bench - start.bench,
            redis: match (&start.redis, &end.redis) {
                (Some(a), Some(b)) => Some(redis_stats::delta(a, b)),
                _ => None,
            },
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
            urls: self.urls.clone(),
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
    /// With a known Redis, also counts the commands the joins caused.
    pub async fn open(&self, spec: &WorkerSpec, total: usize) -> Result<(Fleet, Opened)> {
        let processes = self.processes_for(total);
        let mut fleet = Fleet::start(spec, total, processes).await?;
        let meter = self.meter(None).await;
        let go_ns = crate::sys::now_ns();
        let ready = fleet.open(Duration::from_secs(900)).await?;
        if self.redis.is_some() {
            tokio::time::sleep(REDIS_WRITES_SETTLE).await;
        }
        let joins = self.metered(&meter, None).await;
        let mut joined_by_node = vec![0; self.urls.len()];
        for r in &ready {
            for (k, n) in r.joined_by_node.iter().enumerate() {
                if let Some(slot) = joined_by_node.get_mut(k) {
                    *slot += n;
                }
            }
        }
        let opened = Opened {
            joined: ready.iter().map(|r| r.joined).sum(),
            failed: ready.iter().map(|r| r.failed).sum(),
            first_error: ready.iter().find_map(|r| r.first_error.clone()),
            go_ns,
            last_joined_ns: ready.iter().map(|r| r.last_joined_ns).max().unwrap_or(0),
            connect: Latency::of(&merge(ready.iter().map(|r| r.connect_latency.as_str()))?),
            processes: fleet.processes(),
            generator_rss: ready.iter().map(|r| r.rss_bytes).sum(),
            joined_by_node,
            open_server_cpu: joins.server_cpu(),
            redis_join: joins.redis,
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

    /// Stops the servers the bench started and deletes their Redis keys.
    pub async fn finish(mut self) {
        self.stop_servers().await;
        if let Some(redis) = self.redis.take() {
            redis.quit().await;
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
        map.insert("nodes".into(), json!(self.urls.len()));
        if !self.servers.is_empty() {
            map.insert(
                "open_server_cpu_us_per_connection".into(),
                json!(crate::report::round(
                    1e6 * opened.open_server_cpu / opened.joined.max(1) as f64,
                    1
                )),
            );
        }
        if let Some(cluster) = &self.cluster {
            map.insert("redis_url".into(), json!(redacted(&cluster.redis_url)));
            map.insert("key_prefix".into(), json!(cluster.key_prefix));
        }
        if self.urls.len() > 1 {
            map.insert("joined_by_node".into(), json!(opened.joined_by_node));
        }
        if let Some(deltas) = &opened.redis_join {
            map.insert("redis_join".into(), redis_phase_json(deltas, opened.joined));
        }
        map
    }
}

/// Redis's side of a phase in which `connections` connections did the same
/// thing (joined, or left): commands of each kind per connection, and the
/// shards' deltas.
pub fn redis_phase_json(deltas: &[ShardDelta], connections: usize) -> Value {
    let mut per_connection = serde_json::Map::new();
    for command in NOTED_COMMANDS {
        let calls = redis_stats::total_calls(deltas, command);
        if calls > 0 {
            per_connection.insert(
                (*command).to_owned(),
                json!(crate::report::round(
                    calls as f64 / connections.max(1) as f64,
                    3
                )),
            );
        }
    }
    let memory: i64 = deltas.iter().map(|d| d.memory).sum();
    json!({
        "connections": connections,
        "calls_per_connection": per_connection,
        "used_memory_delta_per_connection_bytes": memory / connections.max(1) as i64,
        "shards": redis_stats::deltas_json(deltas),
    })
}

/// The noted commands per connection, for tables: `hset 2, sadd 2, …`.
pub fn redis_calls_line(deltas: &[ShardDelta], connections: usize) -> String {
    let parts: Vec<String> = NOTED_COMMANDS
        .iter()
        .filter_map(|command| {
            let calls = redis_stats::total_calls(deltas, command);
            (calls > 0)
                .then(|| format!("{command} {:.2}", calls as f64 / connections.max(1) as f64))
        })
        .collect();
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(", ")
    }
}

/// The WebSocket URL of node `k`: `url` with its port raised by `k`.
fn node_url(url: &str, k: usize) -> Result<String> {
    if k == 0 {
        return Ok(url.to_owned());
    }
    let mut parsed = Url::parse(url).with_context(|| format!("bad --url {url}"))?;
    let port = parsed.port_or_known_default().unwrap_or(80) as usize + k;
    let port = u16::try_from(port).context("node port above 65535")?;
    parsed
        .set_port(Some(port))
        .map_err(|()| anyhow::anyhow!("cannot set a port on {url}"))?;
    Ok(parsed.into())
}

/// A Redis URL without its password, for summaries.
pub fn redacted(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.into()
        }
        _ => url.to_owned(),
    }
}

/// CPU times and Redis's counters at the start of a window.
pub struct Meter {
    at: Instant,
    machine: f64,
    servers: Vec<f64>,
    workers: f64,
    bench: f64,
    redis: Option<Vec<ShardInfo>>,
}

/// What a window cost: CPU seconds of each process, Redis's deltas.
pub struct Metered {
    /// Wall-clock seconds.
    pub secs: f64,
    /// CPU seconds the whole machine was busy, every process included.
    pub machine: f64,
    /// CPU seconds of each server (node) process.
    pub servers: Vec<f64>,
    /// CPU seconds of the generator's worker processes, together.
    pub workers: f64,
    /// CPU seconds of the bench's main process (publisher, backend).
    pub bench: f64,
    /// Each Redis primary's deltas.
    pub redis: Option<Vec<ShardDelta>>,
}

impl Metered {
    /// CPU seconds of every server together.
    pub fn server_cpu(&self) -> f64 {
        self.servers.iter().sum()
    }

    /// CPU seconds of every Redis primary together.
    pub fn redis_cpu(&self) -> Option<f64> {
        Some(self.redis.as_ref()?.iter().map(|d| d.cpu_secs).sum())
    }

    /// CPU seconds of the machine not spent by the processes measured
    /// (servers, generator, bench, Redis): other work on the machine (the
    /// kernel's share of loopback traffic included) — a contention check.
    pub fn other_cpu(&self) -> f64 {
        (self.machine
            - self.server_cpu()
            - self.workers
            - self.bench
            - self.redis_cpu().unwrap_or(0.0))
        .max(0.0)
    }

    /// The summary fields: `cpu` (seconds by process) and `redis` (shards).
    pub fn insert_into(&self, map: &mut serde_json::Map<String, Value>) {
        let r = |x: f64| crate::report::round(x, 3);
        map.insert(
            "cpu".into(),
            json!({
                "window_secs": r(self.secs),
                "servers_secs": self.servers.iter().map(|s| r(*s)).collect::<Vec<_>>(),
                "generator_workers_secs": r(self.workers),
                "bench_secs": r(self.bench),
                "redis_secs": self.redis_cpu().map(r),
                "machine_busy_secs": r(self.machine),
                "other_secs": r(self.other_cpu()),
            }),
        );
        if let Some(deltas) = &self.redis {
            map.insert("redis".into(), redis_stats::deltas_json(deltas));
        }
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
    /// Connections joined, by node.
    pub joined_by_node: Vec<usize>,
    /// CPU seconds of the servers from `open` until every connection
    /// joined (and, with Redis, its writes settled).
    pub open_server_cpu: f64,
    /// Redis's side of the joins, when Redis is known.
    pub redis_join: Option<Vec<ShardDelta>>,
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
    /// Timed broadcasts and latency by node.
    pub by_node: Vec<(u64, Latency)>,
}

/// Adds the workers' reports up.
pub fn totals(reports: &[Report]) -> Result<Totals> {
    let nodes = reports.iter().map(|r| r.by_node.len()).max().unwrap_or(0);
    let mut by_node = Vec::with_capacity(nodes);
    for k in 0..nodes {
        let of_node = || reports.iter().filter_map(|r| r.by_node.get(k));
        by_node.push((
            of_node().map(|n| n.received).sum(),
            Latency::of(&merge(of_node().map(|n| n.latency.as_str()))?),
        ));
    }
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
        by_node,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_urls_count_ports_up_from_node_0() {
        let url = "ws://127.0.0.1:4000/socket/websocket";
        assert_eq!(node_url(url, 0).unwrap(), url);
        assert_eq!(
            node_url(url, 2).unwrap(),
            "ws://127.0.0.1:4002/socket/websocket"
        );
        assert!(node_url("ws://127.0.0.1:65535/s", 1).is_err());
    }

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redacted("redis://:secret@10.0.0.1:6379"),
            "redis://:***@10.0.0.1:6379"
        );
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
