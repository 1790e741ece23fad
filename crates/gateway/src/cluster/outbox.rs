//! Writes to Redis that must never delay a client: publishes, presence and
//! connection updates. Callers enqueue without waiting into a bounded queue;
//! one writer task sends them, many at a time, in order. A full queue or a
//! failed write drops the write, counted in
//! `switchboard_dropped_messages_total{reason="cluster_unavailable"}` for
//! broadcasts (state writes are rewritten when Redis comes back).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fred::interfaces::{HashesInterface, PubsubInterface, SetsInterface};
use futures_util::future::join_all;
use tokio::sync::mpsc;

use super::RedisEngine;

/// One write.
#[derive(Debug)]
pub enum Write {
    /// PUBLISH a broadcast or control message.
    Publish {
        app: String,
        channel: String,
        body: String,
    },
    /// HSET one field.
    HashSet {
        key: String,
        field: String,
        value: String,
    },
    /// HDEL one field.
    HashDelete { key: String, field: String },
    /// SADD one member.
    SetAdd { key: String, member: String },
}

/// The sending side of the write queue.
pub struct Outbox {
    tx: mpsc::Sender<Write>,
    dropped: AtomicU64,
}

/// Writes sent per round trip batch.
const BATCH: usize = 256;

impl Outbox {
    pub fn new(capacity: usize) -> (Outbox, mpsc::Receiver<Write>) {
        let (tx, rx) = mpsc::channel(capacity);
        (
            Outbox {
                tx,
                dropped: AtomicU64::new(0),
            },
            rx,
        )
    }

    /// Enqueues a write; drops it (counted, logged) when the queue is full.
    pub fn send(&self, engine: &RedisEngine, write: Write) {
        if let Err(
            mpsc::error::TrySendError::Full(write) | mpsc::error::TrySendError::Closed(write),
        ) = self.tx.try_send(write)
        {
            self.count_drop(engine, &write, "cluster write queue full");
        }
    }

    fn count_drop(&self, engine: &RedisEngine, write: &Write, why: &'static str) {
        let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
        if let Write::Publish { app, .. } = write {
            engine.metrics.dropped(app, "cluster_unavailable", 1);
        }
        // Logged on the 1st, 2nd, 4th, 8th... drop so an outage cannot flood the log.
        if n.is_power_of_two() {
            tracing::warn!(dropped_total = n, reason = why, "cross-node write dropped");
        }
    }

    /// Starts the writer task.
    pub fn spawn_writer(&self, engine: Arc<RedisEngine>, mut rx: mpsc::Receiver<Write>) {
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while rx.recv_many(&mut batch, BATCH).await > 0 {
                let results = join_all(batch.iter().map(|w| execute(&engine, w))).await;
                for (write, result) in batch.iter().zip(results) {
                    if result.is_err() {
                        engine
                            .outbox
                            .count_drop(&engine, write, "Redis write failed");
                    }
                }
                batch.clear();
            }
        });
    }
}

async fn execute(engine: &RedisEngine, write: &Write) -> Result<(), fred::error::Error> {
    let client = &engine.client;
    match write {
        Write::Publish { channel, body, .. }
            if engine.sharded && *channel != engine.keys.control_channel() =>
        {
            client
                .spublish::<i64, _, _>(channel.as_str(), body.as_str())
                .await
                .map(drop)
        }
        Write::Publish { channel, body, .. } => client
            .publish::<i64, _, _>(channel.as_str(), body.as_str())
            .await
            .map(drop),
        Write::HashSet { key, field, value } => client
            .hset::<i64, _, _>(key.as_str(), vec![(field.as_str(), value.as_str())])
            .await
            .map(drop),
        Write::HashDelete { key, field } => client
            .hdel::<i64, _, _>(key.as_str(), field.as_str())
            .await
            .map(drop),
        Write::SetAdd { key, member } => client
            .sadd::<i64, _, _>(key.as_str(), member.as_str())
            .await
            .map(drop),
    }
}
