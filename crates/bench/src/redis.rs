//! The Redis that clustered nodes share, seen from the bench: `INFO` of
//! every primary (one for a plain Redis, each shard's for a Redis Cluster)
//! before and after a measurement, turned into per-shard deltas (commands
//! by name, network bytes, CPU seconds, memory), and the deletion of a
//! run's keys.
//!
//! It only reads statistics and deletes keys under the run's own prefix;
//! the gateway's traffic is the gateway's.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use fred::clients::Client;
use fred::interfaces::{ClientLike, KeysInterface};
use fred::types::config::Config;
use fred::types::{Builder, InfoKind, Key};
use futures_util::StreamExt;
use serde_json::{json, Map, Value};

/// Commands whose counts the summaries single out: what the gateway sends
/// per broadcast, per join and leave, and in the background.
pub const NOTED_COMMANDS: &[&str] = &[
    "publish", "spublish", "hset", "hdel", "hgetall", "sadd", "srem", "smembers", "exists", "set",
    "ping",
];

/// A connection to the Redis (plain or Cluster) of a run.
pub struct Redis {
    client: Client,
    clustered: bool,
}

/// `INFO` of one primary at one moment.
#[derive(Clone, Debug)]
pub struct ShardInfo {
    /// `host:port`.
    pub server: String,
    at: Instant,
    fields: HashMap<String, String>,
}

impl ShardInfo {
    fn number(&self, name: &str) -> f64 {
        self.fields
            .get(name)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }

    /// `(calls, usec)` of each command, from the commandstats section.
    fn calls(&self) -> BTreeMap<String, (u64, u64)> {
        let mut calls = BTreeMap::new();
        for (name, value) in &self.fields {
            let Some(command) = name.strip_prefix("cmdstat_") else {
                continue;
            };
            let field = |key: &str| -> u64 {
                value
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            calls.insert(command.to_owned(), (field("calls"), field("usec")));
        }
        calls
    }
}

/// What one primary did between two snapshots.
#[derive(Clone, Debug)]
pub struct ShardDelta {
    /// `host:port`.
    pub server: String,
    /// Seconds between the snapshots.
    pub secs: f64,
    /// Commands processed.
    pub commands: u64,
    /// Bytes received from clients.
    pub net_in: u64,
    /// Bytes sent to clients (pub/sub deliveries included).
    pub net_out: u64,
    /// CPU seconds (user + system, every thread).
    pub cpu_secs: f64,
    /// Change of `used_memory` (bytes; negative when memory was freed).
    pub memory: i64,
    /// Calls and microseconds spent inside each command, by name.
    pub calls: BTreeMap<String, (u64, u64)>,
}

impl ShardDelta {
    /// Calls of one command.
    pub fn calls_of(&self, command: &str) -> u64 {
        self.calls.get(command).map_or(0, |c| c.0)
    }

    /// The summary fields.
    pub fn to_json(&self) -> Value {
        let per_sec = |n: f64| (n / self.secs.max(1e-9)).round();
        let mut calls = Map::new();
        for (command, (n, usec)) in &self.calls {
            if *n > 0 {
                calls.insert(
                    command.clone(),
                    json!({
                        "calls": n,
                        "usec_per_call": crate::report::round(*usec as f64 / *n as f64, 2),
                    }),
                );
            }
        }
        json!({
            "server": self.server,
            "secs": crate::report::round(self.secs, 2),
            "commands": self.commands,
            "commands_per_sec": per_sec(self.commands as f64),
            "net_in_bytes_per_sec": per_sec(self.net_in as f64),
            "net_out_bytes_per_sec": per_sec(self.net_out as f64),
            "cpu_secs": crate::report::round(self.cpu_secs, 3),
            "cpu_pct": crate::report::round(100.0 * self.cpu_secs / self.secs.max(1e-9), 1),
            "used_memory_delta_bytes": self.memory,
            "calls": calls,
        })
    }
}

/// The deltas of every primary, as summary JSON.
pub fn deltas_json(deltas: &[ShardDelta]) -> Value {
    Value::Array(deltas.iter().map(ShardDelta::to_json).collect())
}

/// Calls of `command` over every primary.
pub fn total_calls(deltas: &[ShardDelta], command: &str) -> u64 {
    deltas.iter().map(|d| d.calls_of(command)).sum()
}

/// The per-shard deltas between two snapshots (shards matched by address).
pub fn delta(before: &[ShardInfo], after: &[ShardInfo]) -> Vec<ShardDelta> {
    after
        .iter()
        .filter_map(|a| {
            let b = before.iter().find(|b| b.server == a.server)?;
            let counter = |name: &str| (a.number(name) - b.number(name)).max(0.0) as u64;
            let before_calls = b.calls();
            let calls = a
                .calls()
                .into_iter()
                .map(|(command, (n, usec))| {
                    let (n0, usec0) = before_calls.get(&command).copied().unwrap_or((0, 0));
                    (command, (n.saturating_sub(n0), usec.saturating_sub(usec0)))
                })
                .filter(|(_, (n, _))| *n > 0)
                .collect();
            let cpu = |s: &ShardInfo| s.number("used_cpu_sys") + s.number("used_cpu_user");
            Some(ShardDelta {
                server: a.server.clone(),
                secs: a.at.duration_since(b.at).as_secs_f64(),
                commands: counter("total_commands_processed"),
                net_in: counter("total_net_input_bytes"),
                net_out: counter("total_net_output_bytes"),
                cpu_secs: (cpu(a) - cpu(b)).max(0.0),
                memory: (a.number("used_memory") - b.number("used_memory")) as i64,
                calls,
            })
        })
        .collect()
}

impl Redis {
    /// Connects (a `redis-cluster://` URL reaches every primary).
    pub async fn connect(url: &str) -> Result<Redis> {
        let config = Config::from_url(url).with_context(|| format!("bad Redis URL {url}"))?;
        let clustered = config.server.is_clustered();
        let client = Builder::from_config(config)
            .with_connection_config(|c| c.connection_timeout = Duration::from_secs(3))
            .build()
            .context("Redis client")?;
        client
            .init()
            .await
            .with_context(|| format!("cannot reach Redis at {url}"))?;
        Ok(Redis { client, clustered })
    }

    /// `INFO all` of every primary, in address order.
    pub async fn snapshot(&self) -> Result<Vec<ShardInfo>> {
        let mut servers = self.client.active_connections();
        servers.sort_by_key(|s| s.to_string());
        servers.dedup_by_key(|s| s.to_string());
        let mut shards = Vec::with_capacity(servers.len());
        for server in servers {
            let text: String = if self.clustered {
                self.client
                    .with_cluster_node(&server)
                    .info(Some(InfoKind::All))
                    .await
            } else {
                self.client.info(Some(InfoKind::All)).await
            }
            .with_context(|| format!("INFO from {server}"))?;
            let fields = text
                .lines()
                .filter_map(|line| line.trim_end().split_once(':'))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            shards.push(ShardInfo {
                server: server.to_string(),
                at: Instant::now(),
                fields,
            });
        }
        Ok(shards)
    }

    /// Deletes every key under `prefix` (SCAN on each primary, one DEL per
    /// key); returns how many went.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        let pattern = format!("{prefix}:*");
        let keys: Vec<Key> = if self.clustered {
            self.client
                .scan_cluster_buffered(pattern, Some(1000), None)
                .collect::<Vec<_>>()
                .await
        } else {
            self.client
                .scan_buffered(pattern, Some(1000), None)
                .collect::<Vec<_>>()
                .await
        }
        .into_iter()
        .collect::<Result<_, _>>()
        .context("SCAN")?;
        let mut deleted = 0;
        for key in keys {
            deleted += self.client.del::<u64, _>(key).await.context("DEL")?;
        }
        Ok(deleted)
    }

    /// Closes the connections.
    pub async fn quit(self) {
        let _ = self.client.quit().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(server: &str, secs: u64, text: &str) -> ShardInfo {
        ShardInfo {
            server: server.to_owned(),
            at: Instant::now() + Duration::from_secs(secs),
            fields: text
                .lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }

    #[test]
    fn deltas_of_counters_cpu_and_commands() {
        let before = [info(
            "127.0.0.1:6379",
            0,
            "total_commands_processed:10\ntotal_net_output_bytes:100\nused_cpu_sys:1.5\nused_cpu_user:2.0\n\
             cmdstat_publish:calls=4,usec=40,usec_per_call=10.00,rejected_calls=0,failed_calls=0",
        )];
        let after = [info(
            "127.0.0.1:6379",
            2,
            "total_commands_processed:30\ntotal_net_output_bytes:1100\nused_cpu_sys:1.75\nused_cpu_user:2.25\n\
             cmdstat_publish:calls=14,usec=140,usec_per_call=10.00,rejected_calls=0,failed_calls=0\n\
             cmdstat_hset:calls=3,usec=6,usec_per_call=2.00,rejected_calls=0,failed_calls=0",
        )];
        let d = delta(&before, &after);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].commands, 20);
        assert_eq!(d[0].net_out, 1000);
        assert!((d[0].cpu_secs - 0.5).abs() < 1e-9);
        assert_eq!(d[0].memory, 0);
        assert_eq!(d[0].calls["publish"], (10, 100));
        assert_eq!(total_calls(&d, "hset"), 3);
        let j = d[0].to_json();
        assert_eq!(j["calls"]["publish"]["usec_per_call"], 10.0);
        assert!(j["cpu_pct"].as_f64().unwrap() > 0.0);
    }
}
