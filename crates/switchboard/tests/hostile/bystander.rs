//! The well-behaved client connected before every attack, and the check
//! run after it: the server is up, the bystander still receives broadcasts
//! and its pushes are answered, and the server's memory came back down.
//!
//! The bystander's socket lives in its own task that heartbeats every
//! 500 ms, so it stays active while an attack waits out an idle timeout.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use crate::server::{within, Server, WAIT};

/// Resident memory may exceed the baseline by this much once an attack is
/// over (allocator caches, metric series, log buffers).
pub const SETTLE_KB: u64 = 32 * 1024;
/// Resident memory may never exceed the baseline by more than this while
/// an attack runs.
pub const PEAK_KB: u64 = 64 * 1024;

pub struct Bystander {
    send: mpsc::UnboundedSender<String>,
    received: mpsc::UnboundedReceiver<Value>,
    /// Received but not yet expected (a broadcast may overtake a reply).
    pending: Vec<Value>,
    next_ref: u64,
    baseline_kb: u64,
    /// Samples the server's memory from the join to the first check.
    peak: Option<PeakMemory>,
}

impl Bystander {
    /// Connects, joins `room:watch`, and records the server's memory.
    pub async fn connect(server: &Server) -> Bystander {
        let (ws, _) = within(
            "the bystander's connection",
            tokio_tungstenite::connect_async(server.ws_url("bystander")),
        )
        .await
        .expect("the bystander connects");
        let (send, mut outgoing) = mpsc::unbounded_channel::<String>();
        let (deliver, received) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let (mut sink, mut stream) = ws.split();
            let mut heartbeat = tokio::time::interval(Duration::from_millis(500));
            let mut heartbeat_ref = 0u64;
            loop {
                tokio::select! {
                    text = outgoing.recv() => {
                        let Some(text) = text else { break };
                        if sink.send(Message::Text(text.into())).await.is_err() { break }
                    }
                    _ = heartbeat.tick() => {
                        heartbeat_ref += 1;
                        let beat = format!(r#"[null,"hb{heartbeat_ref}","phoenix","heartbeat",{{}}]"#);
                        if sink.send(Message::Text(beat.into())).await.is_err() { break }
                    }
                    incoming = stream.next() => match incoming {
                        Some(Ok(Message::Text(text))) => {
                            let value: Value = serde_json::from_str(&text).expect("the server sends JSON");
                            if value[3] != "phx_reply" || value[2] != "phoenix" {
                                let _ = deliver.send(value);
                            }
                        }
                        Some(Ok(_)) => {}
                        _ => break,
                    }
                }
            }
        });
        let mut bystander = Bystander {
            send,
            received,
            pending: Vec::new(),
            next_ref: 0,
            baseline_kb: 0,
            peak: None,
        };
        bystander.send(r#"["w","join","room:watch","phx_join",{}]"#.to_owned());
        let reply = bystander
            .expect("the bystander's join reply", |m| m[1] == "join")
            .await;
        assert_eq!(reply[4]["status"], "ok", "{reply}");
        bystander.baseline_kb = server.rss_kb();
        bystander.peak = Some(PeakMemory::watch(server.pid()));
        bystander
    }

    fn send(&self, text: String) {
        self.send
            .send(text)
            .expect("the bystander's connection is still open");
    }

    /// The first message matching `wanted`; others are kept for later.
    async fn expect(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.pending.iter().position(&wanted) {
            return self.pending.remove(i);
        }
        let (received, pending) = (&mut self.received, &mut self.pending);
        let found = tokio::time::timeout(WAIT, async {
            while let Some(message) = received.recv().await {
                if wanted(&message) {
                    return Some(message);
                }
                pending.push(message);
            }
            None
        })
        .await;
        match found {
            Ok(Some(message)) => message,
            Ok(None) => panic!("the bystander was disconnected while waiting for {what}"),
            Err(_) => panic!("the bystander timed out waiting for {what}"),
        }
    }

    /// After an attack: resident memory never rose more than [`PEAK_KB`]
    /// over the baseline, the process is up, `/health` answers 200, the
    /// bystander's push is answered and broadcast back to it, a server API
    /// broadcast reaches it, and resident memory settles back to within
    /// [`SETTLE_KB`] of the baseline.
    pub async fn assert_unharmed(&mut self, server: &mut Server, attack: &str) {
        if let Some(peak) = self.peak.take() {
            peak.assert_bounded(self.baseline_kb, attack).await;
        }
        server.assert_running(attack);
        assert_eq!(server.health().await, 200, "/health after {attack}");
        self.next_ref += 1;
        let msg_ref = format!("p{}", self.next_ref);
        let body = format!("still here after {attack} ({msg_ref})");
        self.send(json!(["w", msg_ref, "room:watch", "message", {"body": body}]).to_string());
        let reply = self
            .expect(&format!("the reply to a push after {attack}"), |m| {
                m[1] == msg_ref.as_str()
            })
            .await;
        assert_eq!(reply[4]["status"], "ok", "push after {attack}: {reply}");
        self.expect(&format!("its own broadcast after {attack}"), |m| {
            m[3] == "message" && m[4]["body"] == body.as_str()
        })
        .await;
        let api_body = format!("from the server API after {attack} ({msg_ref})");
        server
            .broadcast("room:watch", json!({"body": api_body}))
            .await;
        self.expect(&format!("a server API broadcast after {attack}"), |m| {
            m[3] == "message" && m[4]["body"] == api_body.as_str()
        })
        .await;
        self.assert_memory_settles(server, attack).await;
    }

    async fn assert_memory_settles(&self, server: &Server, attack: &str) {
        let bound = self.baseline_kb + SETTLE_KB;
        let settled = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                if server.rss_kb() <= bound {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        assert!(
            settled.is_ok(),
            "VmRSS stayed at {} KiB after {attack} (baseline {} KiB, bound {bound} KiB)",
            server.rss_kb(),
            self.baseline_kb
        );
    }
}

/// The highest resident memory seen while it runs, sampled every 5 ms.
pub struct PeakMemory {
    stop: tokio::sync::oneshot::Sender<()>,
    peak: tokio::task::JoinHandle<u64>,
}

impl PeakMemory {
    pub fn watch(pid: u32) -> PeakMemory {
        let (stop, mut stopped) = tokio::sync::oneshot::channel();
        let peak = tokio::spawn(async move {
            let mut peak = 0;
            loop {
                peak = peak.max(crate::server::rss_kb(pid));
                tokio::select! {
                    _ = &mut stopped => return peak,
                    _ = tokio::time::sleep(Duration::from_millis(5)) => {}
                }
            }
        });
        PeakMemory { stop, peak }
    }

    /// Stops sampling; panics if the peak passed `baseline + PEAK_KB`.
    pub async fn assert_bounded(self, baseline_kb: u64, attack: &str) -> u64 {
        let _ = self.stop.send(());
        let peak = self.peak.await.unwrap();
        assert!(
            peak <= baseline_kb + PEAK_KB,
            "VmRSS peaked at {peak} KiB during {attack} (baseline {baseline_kb} KiB)"
        );
        eprintln!("{attack}: VmRSS baseline {baseline_kb} KiB, peak {peak} KiB");
        peak
    }
}
