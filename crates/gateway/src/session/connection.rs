//! The shared handle of one connected client: who it is, how it wants its
//! frames encoded, and its bounded outbound queue.
//!
//! The hub, the APIs and webhook tasks hold `Arc<Connection>` to deliver to a
//! client without touching its session state, which lives in the transport's
//! task. The queue is an unbounded channel bounded by a counter: a sender
//! never waits, and a consumer that lets `outbound_queue` frames pile up is
//! disconnected as a slow consumer instead of growing memory.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use futures_channel::mpsc::{UnboundedReceiver, UnboundedSender};
use switchboard_protocol::{Frame, WireFormat};

use super::close::CloseReason;
use super::identity::Identity;
use crate::apps::App;
use crate::telemetry::TransportKind;

/// What the transport's writer receives.
#[derive(Debug)]
pub enum Outbound {
    /// An encoded frame for the client.
    Frame(Frame),
    /// Close the connection with this code and reason; nothing follows.
    Close(CloseReason),
}

/// What happened to a frame offered to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    /// Queued for the client.
    Queued,
    /// The queue was full: the connection is now being closed as a slow
    /// consumer and this frame was dropped.
    SlowConsumer,
    /// The connection is already closing; the frame was dropped.
    Closed,
}

/// One connected client, shared between its transport task and everyone who
/// delivers to it.
pub struct Connection {
    /// Unique within this process.
    pub id: u64,
    /// The app the client connected to.
    pub app: Arc<App>,
    /// Who the app said the client is.
    pub identity: Identity,
    /// How frames for this client are encoded.
    pub format: WireFormat,
    /// WebSocket or long-poll.
    pub transport: TransportKind,
    /// Unix seconds when the connection was accepted.
    pub connected_at: u64,
    topics: Mutex<Vec<Box<str>>>,
    tx: UnboundedSender<Outbound>,
    queued: AtomicU32,
    queue_limit: u32,
    closing: AtomicBool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id)
            .field("app", &self.app.id())
            .field("client_id", &self.identity.client_id)
            .finish_non_exhaustive()
    }
}

/// The receiving half of a connection's queue, owned by its transport.
pub struct OutboundReceiver {
    rx: UnboundedReceiver<Outbound>,
    conn: Arc<Connection>,
}

impl OutboundReceiver {
    /// The next item, waiting for one. `None` once every sender is gone.
    pub async fn recv(&mut self) -> Option<Outbound> {
        use futures_util::StreamExt;
        let item = self.rx.next().await?;
        self.conn.mark_taken(&item);
        Some(item)
    }

    /// The next item if one is already queued.
    pub fn try_recv(&mut self) -> Option<Outbound> {
        let item = self.rx.try_recv().ok()?;
        self.conn.mark_taken(&item);
        Some(item)
    }
}

/// Everything a transport knows about a client when it is accepted.
pub struct NewConnection {
    /// Unique id (see [`crate::gateway::Gateway::next_connection_id`]).
    pub id: u64,
    /// The app.
    pub app: Arc<App>,
    /// The identity from auth.
    pub identity: Identity,
    /// Wire format.
    pub format: WireFormat,
    /// Transport.
    pub transport: TransportKind,
    /// Queue length before the client counts as slow.
    pub queue_limit: usize,
}

impl Connection {
    /// Creates the connection and the receiving half of its queue.
    pub fn open(new: NewConnection) -> (Arc<Connection>, OutboundReceiver) {
        let (tx, rx) = futures_channel::mpsc::unbounded();
        let conn = Arc::new(Connection {
            id: new.id,
            app: new.app,
            identity: new.identity,
            format: new.format,
            transport: new.transport,
            connected_at: unix_now(),
            topics: Mutex::new(Vec::new()),
            tx,
            queued: AtomicU32::new(0),
            queue_limit: u32::try_from(new.queue_limit.max(1)).unwrap_or(u32::MAX),
            closing: AtomicBool::new(false),
        });
        let receiver = OutboundReceiver {
            rx,
            conn: conn.clone(),
        };
        (conn, receiver)
    }

    /// Offers a frame. Never waits.
    pub fn send(&self, frame: Frame) -> SendOutcome {
        if self.closing.load(Ordering::Relaxed) {
            return SendOutcome::Closed;
        }
        if self.queued.fetch_add(1, Ordering::AcqRel) >= self.queue_limit {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            if self.close(CloseReason::SlowConsumer) {
                tracing::warn!(
                    app = self.app.id(),
                    client_id = %self.identity.client_id,
                    connection = self.id,
                    queued = self.queue_limit,
                    "slow consumer disconnected: outbound queue full"
                );
                return SendOutcome::SlowConsumer;
            }
            return SendOutcome::Closed;
        }
        if self.tx.unbounded_send(Outbound::Frame(frame)).is_err() {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            return SendOutcome::Closed;
        }
        SendOutcome::Queued
    }

    /// Asks the transport to close the connection. Returns true for the
    /// call that started the close, false if it was already closing.
    pub fn close(&self, reason: CloseReason) -> bool {
        if self.closing.swap(true, Ordering::AcqRel) {
            return false;
        }
        let _ = self.tx.unbounded_send(Outbound::Close(reason));
        true
    }

    /// True once a close was requested.
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    /// Topics the client has joined, for the connections API.
    pub fn topics(&self) -> Vec<String> {
        lock(&self.topics).iter().map(|t| t.to_string()).collect()
    }

    /// True when the client has joined `topic`.
    pub fn has_topic(&self, topic: &str) -> bool {
        lock(&self.topics).iter().any(|t| &**t == topic)
    }

    pub(crate) fn add_topic(&self, topic: &str) {
        let mut topics = lock(&self.topics);
        if !topics.iter().any(|t| &**t == topic) {
            topics.push(topic.into());
        }
    }

    pub(crate) fn remove_topic(&self, topic: &str) {
        lock(&self.topics).retain(|t| &**t != topic);
    }

    /// The connection as the connections API lists it.
    pub fn listing(&self, node: &str) -> serde_json::Value {
        serde_json::json!({
            "id": self.id.to_string(),
            "client_id": self.identity.client_id,
            "client_type": self.identity.client_type,
            "metadata": self.identity.metadata,
            "topics": self.topics(),
            "connected_at": self.connected_at,
            "node": node,
            "transport": self.transport.as_str(),
        })
    }

    fn mark_taken(&self, item: &Outbound) {
        if matches!(item, Outbound::Frame(_)) {
            self.queued.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this lock cannot leave the list inconsistent.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every connection holds one `Arc<Connection>`: with the `Arc`'s two
    /// counts it must fit the allocator's 192-byte class, not the next one.
    #[test]
    fn a_connection_fits_a_192_byte_allocation() {
        let size = std::mem::size_of::<Connection>();
        eprintln!(
            "Connection: {size} bytes, Identity: {}",
            std::mem::size_of::<Identity>()
        );
        assert!(size + 16 <= 192, "Connection is {size} bytes");
    }
}
