//! The parent ⇄ worker protocol. The parent starts each worker as
//! `switchboard-bench worker --spec <WorkerSpec as JSON>`, sends it
//! [`Command`]s as JSON lines on stdin, and reads [`Event`]s as JSON lines
//! from its stdout. Worker logs go to stderr.
//!
//! Only the message shapes live here; `worker` acts on them and `fleet`
//! drives them.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// Everything a worker needs to open and hold its share of connections.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WorkerSpec {
    /// The worker's number, echoed in its events.
    pub worker: usize,
    /// WebSocket URL of each node, without query, e.g.
    /// `ws://127.0.0.1:4000/socket/websocket`; connection `i` goes to
    /// `urls[i % len]`.
    pub urls: Vec<String>,
    /// App id (`app` query parameter).
    pub app: String,
    /// Connection `i` authenticates with token `{token_prefix}{i}`.
    pub token_prefix: String,
    /// Connection `i` binds to `source_ips[i % len]` (none: the kernel picks).
    pub source_ips: Vec<IpAddr>,
    /// Global index of this worker's first connection.
    pub first: usize,
    /// How many connections this worker holds.
    pub count: usize,
    /// Which topics each connection joins.
    pub topics: TopicPlan,
    /// Connections being opened at once.
    pub concurrency: usize,
    /// Seconds between heartbeats (0: none).
    pub heartbeat_secs: u64,
    /// The broadcast event whose publish-to-receive latency is timed.
    pub timed_event: String,
    /// The event pushed by [`Command::Push`].
    pub push_event: String,
    /// Padding added to each pushed payload, in bytes.
    pub payload_bytes: usize,
}

/// Which topics connection `i` joins.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TopicPlan {
    /// Every connection joins the same topic.
    Fixed {
        /// The topic.
        topic: String,
    },
    /// Connection `i` joins `{prefix}{i % modulo}`.
    Modulo {
        /// Topic prefix, e.g. `room:`.
        prefix: String,
        /// Number of distinct topics.
        modulo: usize,
    },
    /// Connection `i` joins `per_connection` consecutive topics out of
    /// `topics`, starting at `i * per_connection`, so every topic gets the
    /// same number of subscribers when the counts divide evenly.
    Spread {
        /// Topic prefix.
        prefix: String,
        /// Number of distinct topics.
        topics: usize,
        /// Topics joined by each connection.
        per_connection: usize,
    },
}

impl TopicPlan {
    /// The topics connection `index` joins.
    pub fn topics_for(&self, index: usize) -> Vec<String> {
        match self {
            TopicPlan::Fixed { topic } => vec![topic.clone()],
            TopicPlan::Modulo { prefix, modulo } => {
                vec![format!("{prefix}{}", index % (*modulo).max(1))]
            }
            TopicPlan::Spread {
                prefix,
                topics,
                per_connection,
            } => (0..*per_connection)
                .map(|j| {
                    format!(
                        "{prefix}{}",
                        (index * per_connection + j) % (*topics).max(1)
                    )
                })
                .collect(),
        }
    }
}

/// Parent → worker, one JSON object per line.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub enum Command {
    /// Open and join every connection (the start of a connect storm).
    Open,
    /// Reset the counters and latency histograms.
    Record,
    /// Answer with an [`Event::Report`] (counters are not reset).
    Report,
    /// Every connection pushes `push_event` for `duration_ms`, at most
    /// `in_flight` unanswered at a time, one every `interval_us` (0: as fast
    /// as replies come back). Answer with [`Event::Report`] afterwards.
    Push {
        /// How long to push.
        duration_ms: u64,
        /// Gap between one connection's pushes; 0 = closed loop.
        interval_us: u64,
        /// Unanswered pushes allowed per connection.
        in_flight: usize,
    },
    /// Close every connection and exit.
    Stop,
}

/// Worker → parent, one JSON object per line on stdout.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The worker runs and waits for [`Command::Open`].
    Started {
        /// Worker number.
        worker: usize,
    },
    /// Once a second while opening.
    Progress {
        /// Worker number.
        worker: usize,
        /// Connections joined so far.
        joined: usize,
        /// Connections that failed so far.
        failed: usize,
    },
    /// Every connection has joined or failed.
    Ready(Ready),
    /// Counters since the last [`Command::Record`].
    Report(Report),
    /// A command could not be read; the worker goes on.
    Error {
        /// Worker number.
        worker: usize,
        /// What went wrong.
        message: String,
    },
}

/// Body of [`Event::Ready`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ready {
    /// Worker number.
    pub worker: usize,
    /// Connections joined to all their topics.
    pub joined: usize,
    /// Connections that could not connect or join.
    pub failed: usize,
    /// The first failure, for the report.
    pub first_error: Option<String>,
    /// When [`Command::Open`] arrived (ns since the Unix epoch).
    pub open_ns: u64,
    /// When the last connection joined (ns since the Unix epoch).
    pub last_joined_ns: u64,
    /// Connect + join latency of each connection (encoded histogram, µs).
    pub connect_latency: String,
    /// The worker's own resident memory once every connection was open.
    pub rss_bytes: u64,
    /// Connections joined, by node (index into the spec's `urls`).
    #[serde(default)]
    pub joined_by_node: Vec<usize>,
}

/// Body of [`Event::Report`].
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Report {
    /// Worker number.
    pub worker: usize,
    /// Timed broadcasts received.
    pub received: u64,
    /// When the last one arrived (ns since the Unix epoch; 0: none).
    pub last_received_ns: u64,
    /// Publish-to-receive latency of timed broadcasts (encoded, µs).
    pub latency: String,
    /// Pushes sent.
    pub pushes: u64,
    /// Pushes answered `ok`.
    pub replies_ok: u64,
    /// Pushes answered otherwise.
    pub replies_error: u64,
    /// Pushes still unanswered when the report was made.
    pub unanswered: u64,
    /// Push-to-reply round trip of `ok` replies (encoded, µs).
    pub reply_latency: String,
    /// The first error reply or close seen.
    pub first_error: Option<String>,
    /// Connections the server closed (or that broke) since they joined.
    pub disconnected: u64,
    /// Timed broadcasts by the node their receiver is connected to.
    #[serde(default)]
    pub by_node: Vec<NodeReport>,
}

/// Timed broadcasts received through one node.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NodeReport {
    /// Received.
    pub received: u64,
    /// Publish-to-receive latency (encoded, µs).
    pub latency: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_gives_each_topic_equal_subscribers() {
        let plan = TopicPlan::Spread {
            prefix: "t:".into(),
            topics: 100,
            per_connection: 10,
        };
        let mut counts = vec![0; 100];
        for i in 0..30 {
            let topics = plan.topics_for(i);
            assert_eq!(topics.len(), 10);
            for t in topics {
                counts[t[2..].parse::<usize>().unwrap()] += 1;
            }
        }
        assert!(counts.iter().all(|&c| c == 3), "{counts:?}");
    }

    #[test]
    fn commands_are_tagged_json() {
        let line = serde_json::to_string(&Command::Push {
            duration_ms: 1,
            interval_us: 0,
            in_flight: 1,
        })
        .unwrap();
        assert!(line.starts_with(r#"{"cmd":"push""#), "{line}");
        let back: Command = serde_json::from_str(r#"{"cmd":"stop"}"#).unwrap();
        assert!(matches!(back, Command::Stop));
    }
}
