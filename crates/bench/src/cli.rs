//! Command-line arguments: one subcommand per scenario, the `backend` mode,
//! and the hidden `worker` mode. Only parsing and defaults live here.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Load generator for switchboard, speaking the Phoenix Channels protocol.
///
/// Every scenario prints a human table and one line per run starting with
/// `RESULT ` followed by a JSON summary.
#[derive(Parser)]
#[command(name = "switchboard-bench", version)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The scenarios and modes.
#[derive(Subcommand)]
pub enum Command {
    /// Open N connections joined to one topic each; report the server's
    /// resident memory per connection.
    Idle(IdleArgs),
    /// S subscribers on one topic; broadcasts at a fixed rate through the
    /// server API and through client pushes; deliveries/s and latency.
    Fanout(FanoutArgs),
    /// Many topics with a few subscribers each; broadcasts spread over them.
    ManyTopics(ManyTopicsArgs),
    /// Clients push events forwarded to the bench's backend; pushes/s and
    /// push-to-reply latency.
    Webhook(WebhookArgs),
    /// N connections authenticated through the backend, all at once; time
    /// until all have joined.
    ConnectStorm(ConnectStormArgs),
    /// Redis alone: publishers PUBLISH (or SPUBLISH) to one channel with N
    /// subscribed connections; messages/s and Redis CPU per message.
    RedisPubsub(RedisPubsubArgs),
    /// Run only the fast mock app backend.
    Backend(BackendArgs),
    /// Internal: hold a share of the connections for a parent bench process.
    #[command(hide = true)]
    Worker {
        /// The worker's spec as JSON.
        #[arg(long)]
        spec: String,
    },
}

/// Flags every scenario shares.
#[derive(Args, Clone, Debug)]
pub struct Common {
    /// The gateway's WebSocket endpoint (no query string).
    #[arg(long, default_value = "ws://127.0.0.1:4000/socket/websocket")]
    pub url: String,
    /// Base URL of the server API (default: http:// on the --url host and port).
    #[arg(long)]
    pub api_url: Option<String>,
    /// App id (default: `bench` with --server-cmd, else `demo`).
    #[arg(long)]
    pub app: Option<String>,
    /// App secret for the server API (default: the generated app's with
    /// --server-cmd, else the demo app's `demo-secret`).
    #[arg(long)]
    pub secret: Option<String>,
    /// Connection i authenticates with token `<prefix><i>`.
    #[arg(long, default_value = "bench-")]
    pub token_prefix: String,
    /// Measure this already running gateway process.
    #[arg(long, conflicts_with = "server_cmd")]
    pub server_pid: Option<u32>,
    /// Start this switchboard binary (`<cmd> serve --config <generated>`),
    /// listening on the --url host:port, with the bench's backend as app
    /// `bench`; stop it at the end.
    #[arg(long)]
    pub server_cmd: Option<PathBuf>,
    /// Gateway nodes to start with --server-cmd, sharing Redis: node k
    /// listens on the --url port + k, connection i goes to node i % N, and
    /// the server API and pushing clients use node 0.
    #[arg(long, default_value_t = 1)]
    pub nodes: usize,
    /// Redis of the spawned nodes' `[cluster]`: `redis://host:port`, or
    /// `redis-cluster://host:port?node=host:port` for a Redis Cluster
    /// (sharded pub/sub). Default with --nodes above 1:
    /// `redis://127.0.0.1:6379`. Its INFO is read before and after each
    /// measurement (also for an attached server when given).
    #[arg(long)]
    pub redis_url: Option<String>,
    /// Redis key prefix of the spawned nodes (default:
    /// `sbbench-<pid>-<unix time>`); every key under it is deleted at the end.
    #[arg(long)]
    pub key_prefix: Option<String>,
    /// `RUST_LOG` of a server started with --server-cmd.
    #[arg(long, default_value = "warn")]
    pub server_log: String,
    /// Where the generated config and the server log go (default: a fresh
    /// directory under the system temp dir).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Where the in-process backend listens (default with --server-cmd: any
    /// free loopback port; without it the backend runs only when this is set).
    #[arg(long)]
    pub backend_listen: Option<String>,
    /// Turn presence on for `room:{name}` in the generated schema.
    #[arg(long)]
    pub presence: bool,
    /// Worker processes sharing the connections (0: one per 10,000).
    #[arg(long, default_value_t = 0)]
    pub processes: usize,
    /// Source addresses to bind client sockets to, round robin, e.g.
    /// `127.0.0.1,127.0.0.2` (each has its own ephemeral ports).
    #[arg(long, value_delimiter = ',')]
    pub source_ips: Vec<IpAddr>,
    /// Connections being opened at once, per worker process (default
    /// depends on the scenario).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Seconds between each connection's heartbeats (0: none).
    #[arg(long, default_value_t = 30)]
    pub heartbeat_secs: u64,
}

/// `idle` flags.
#[derive(Args, Debug)]
pub struct IdleArgs {
    #[command(flatten)]
    pub common: Common,
    /// Connection counts to measure, one run each (a fresh server per run
    /// with --server-cmd).
    #[arg(long, value_delimiter = ',', default_value = "1000")]
    pub connections: Vec<usize>,
    /// Connection i joins `<prefix><i % topics>`.
    #[arg(long, default_value = "room:")]
    pub topic_prefix: String,
    /// Distinct topics.
    #[arg(long, default_value_t = 100)]
    pub topics: usize,
    /// Longest wait for the server's RSS to settle (two reads 1 s apart
    /// within 1%).
    #[arg(long, default_value_t = 30)]
    pub settle_max_secs: u64,
}

/// How fan-out broadcasts are published.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Via {
    /// `POST /api/v1/apps/{app}/broadcast`.
    Api,
    /// A client pushing a `delivery: broadcast` event.
    Push,
    /// One run with each.
    Both,
}

/// `fanout` flags.
#[derive(Args, Debug)]
pub struct FanoutArgs {
    #[command(flatten)]
    pub common: Common,
    /// Subscribers on the topic.
    #[arg(long, default_value_t = 1000)]
    pub subscribers: usize,
    /// The topic (no presence on `demo:*`, in the demo app and the generated schema).
    #[arg(long, default_value = "demo:fanout")]
    pub topic: String,
    /// Broadcasts per second; several (`10,30,100`) make one run each, on
    /// the same connections.
    #[arg(long, value_delimiter = ',', default_value = "10")]
    pub rate: Vec<f64>,
    /// Seconds of publishing per run.
    #[arg(long, default_value_t = 5)]
    pub duration_secs: u64,
    /// Publish through the server API, a client's pushes, or both.
    #[arg(long, value_enum, default_value_t = Via::Both)]
    pub via: Via,
    /// The broadcast event (must be `delivery: broadcast` for --via push).
    #[arg(long, default_value = "message")]
    pub event: String,
    /// Bytes of padding in each payload's `body`.
    #[arg(long, default_value_t = 64)]
    pub payload_bytes: usize,
}

/// `many-topics` flags.
#[derive(Args, Debug)]
pub struct ManyTopicsArgs {
    #[command(flatten)]
    pub common: Common,
    /// Distinct topics.
    #[arg(long, default_value_t = 10_000)]
    pub topics: usize,
    /// Subscribers per topic.
    #[arg(long, default_value_t = 3)]
    pub subscribers_per_topic: usize,
    /// Topics joined by each connection (at most the server's
    /// max_channels_per_connection, 100 by default).
    #[arg(long, default_value_t = 10)]
    pub topics_per_connection: usize,
    /// Topic i is `<prefix><i>`.
    #[arg(long, default_value = "demo:t")]
    pub topic_prefix: String,
    /// Broadcasts per second over all topics (each to a random topic).
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 5)]
    pub duration_secs: u64,
    /// The broadcast event.
    #[arg(long, default_value = "message")]
    pub event: String,
    /// Bytes of padding in each payload's `body`.
    #[arg(long, default_value_t = 64)]
    pub payload_bytes: usize,
}

/// `webhook` flags.
#[derive(Args, Debug)]
pub struct WebhookArgs {
    #[command(flatten)]
    pub common: Common,
    /// Pushing clients.
    #[arg(long, default_value_t = 50)]
    pub clients: usize,
    /// Seconds of pushing.
    #[arg(long, default_value_t = 5)]
    pub duration_secs: u64,
    /// Pushes per second over all clients (0: closed loop, each client
    /// pushing again as soon as a reply comes back).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Unanswered pushes allowed per client.
    #[arg(long, default_value_t = 1)]
    pub in_flight: usize,
    /// The forwarded event (`delivery: forward`).
    #[arg(long, default_value = "forward")]
    pub event: String,
    /// Client i pushes on `<prefix><i>`.
    #[arg(long, default_value = "demo:wh")]
    pub topic_prefix: String,
    /// Bytes of padding in each payload's `body`.
    #[arg(long, default_value_t = 64)]
    pub payload_bytes: usize,
}

/// `connect-storm` flags.
#[derive(Args, Debug)]
pub struct ConnectStormArgs {
    #[command(flatten)]
    pub common: Common,
    /// Connections.
    #[arg(long, default_value_t = 2000)]
    pub connections: usize,
    /// Connection i joins `<prefix><i % topics>`.
    #[arg(long, default_value = "demo:storm")]
    pub topic_prefix: String,
    /// Distinct topics.
    #[arg(long, default_value_t = 100)]
    pub topics: usize,
}

/// `redis-pubsub` flags.
#[derive(Args, Debug)]
pub struct RedisPubsubArgs {
    /// The Redis (plain `redis://host:port`; for a Redis Cluster, the
    /// primary that owns --channel's slot, with --sharded).
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Subscribed connections, one run each (they stand for subscribed
    /// gateway nodes).
    #[arg(long, value_delimiter = ',', default_value = "1,3")]
    pub subscribers: Vec<usize>,
    /// The channel.
    #[arg(long, default_value = "sbbench:pubsub")]
    pub channel: String,
    /// SSUBSCRIBE / SPUBLISH (sharded pub/sub) instead of SUBSCRIBE / PUBLISH.
    #[arg(long)]
    pub sharded: bool,
    /// Publishing connections.
    #[arg(long, default_value_t = 2)]
    pub publishers: usize,
    /// Commands each publisher keeps in flight (pipelined).
    #[arg(long, default_value_t = 32)]
    pub pipeline: usize,
    /// Messages per second over all publishers (0: as fast as Redis answers).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Bytes per message (the gateway's envelope of a 64-byte fan-out
    /// payload is about 150).
    #[arg(long, default_value_t = 150)]
    pub payload_bytes: usize,
    /// Seconds per run.
    #[arg(long, default_value_t = 5)]
    pub duration_secs: u64,
}

/// `backend` flags.
#[derive(Args, Debug)]
pub struct BackendArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:4100")]
    pub listen: String,
    /// Turn presence on for `room:{name}` in the served schema.
    #[arg(long)]
    pub presence: bool,
}
