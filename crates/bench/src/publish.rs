//! Publishers at a fixed rate (open loop: a slow answer never lowers the
//! rate): through the server API (`POST /api/v1/apps/{app}/broadcast`,
//! many requests in flight) or as one client pushing a `delivery:
//! broadcast` event. Each payload carries its send time `t` for the
//! receivers to time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::sleep_until;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::client::{self, Incoming, Target};
use crate::stats::Pacer;
use crate::sys::now_ns;

/// Requests to the server API in flight at once; a send due while all are
/// busy is skipped and counted.
const API_IN_FLIGHT: usize = 256;

/// What a publisher did.
#[derive(Debug, Default)]
pub struct Published {
    /// Messages sent.
    pub sent: u64,
    /// Accepted (API 202, push answered ok).
    pub accepted: u64,
    /// Refused or failed.
    pub rejected: u64,
    /// Sends skipped because too many were in flight.
    pub skipped: u64,
    /// The first refusal.
    pub first_error: Option<String>,
    /// When publishing started (ns since the Unix epoch).
    pub start_ns: u64,
    /// How long publishing lasted.
    pub elapsed: Duration,
}

impl Published {
    fn error(&mut self, error: String) {
        self.rejected += 1;
        if self.first_error.is_none() {
            self.first_error = Some(error);
        }
    }
}

/// Which topic each message goes to.
#[derive(Clone, Debug)]
pub enum Topics {
    /// Always this one.
    One(String),
    /// `<prefix><k>` for a pseudo-random `k` below `count`.
    Random {
        /// Topic prefix.
        prefix: String,
        /// Number of topics.
        count: usize,
    },
}

impl Topics {
    fn pick(&self, seq: u64) -> String {
        match self {
            Topics::One(topic) => topic.clone(),
            Topics::Random { prefix, count } => {
                // SplitMix64 of the sequence number: spread, repeatable.
                let mut z = seq.wrapping_add(0x9E37_79B9_7F4A_7C15);
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                z ^= z >> 31;
                format!("{prefix}{}", z % (*count).max(1) as u64)
            }
        }
    }
}

/// The message shape of one publish.
#[derive(Clone, Debug)]
pub struct Publish {
    /// Where.
    pub topics: Topics,
    /// Event name.
    pub event: String,
    /// Messages per second.
    pub rate: f64,
    /// For how long.
    pub duration: Duration,
    /// Bytes of padding in `body`.
    pub payload_bytes: usize,
}

/// Publishes through the server API.
pub async fn via_api(api_base: &str, app: &str, secret: &str, plan: &Publish) -> Result<Published> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(API_IN_FLIGHT)
        .build()?;
    let url = format!("{api_base}/api/v1/apps/{app}/broadcast");
    // Open the keep-alive connection before the clock starts.
    http.get(format!("{api_base}/health"))
        .send()
        .await
        .with_context(|| format!("server API at {api_base} unreachable"))?;
    let in_flight = Arc::new(Semaphore::new(API_IN_FLIGHT));
    let mut tasks: JoinSet<Result<(), String>> = JoinSet::new();
    let mut out = Published {
        start_ns: now_ns(),
        ..Published::default()
    };
    let started = Instant::now();
    let end = started + plan.duration;
    let mut pacer = Pacer::new(plan.rate);
    let mut seq = 0u64;
    let settle = |result: Result<Result<(), String>, tokio::task::JoinError>,
                  out: &mut Published| match result {
        Ok(Ok(())) => out.accepted += 1,
        Ok(Err(error)) => out.error(error),
        Err(error) => out.error(error.to_string()),
    };
    while Instant::now() < end {
        for _ in 0..pacer.due() {
            let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                out.skipped += 1;
                continue;
            };
            seq += 1;
            out.sent += 1;
            let body = serde_json::json!({
                "topic": plan.topics.pick(seq),
                "event": plan.event,
                "payload": client::timed_payload(now_ns(), seq, plan.payload_bytes),
            });
            let request = http.post(&url).bearer_auth(secret).json(&body);
            tasks.spawn(async move {
                let response = request.send().await.map_err(|e| e.to_string())?;
                drop(permit);
                match response.status().as_u16() {
                    202 | 200 => Ok(()),
                    status => Err(format!(
                        "HTTP {status} {}",
                        response.text().await.unwrap_or_default()
                    )),
                }
            });
        }
        while let Some(result) = tasks.try_join_next() {
            settle(result, &mut out);
        }
        sleep_until(pacer.next_at().min(end).into()).await;
    }
    out.elapsed = started.elapsed();
    while let Some(result) = tasks.join_next().await {
        settle(result, &mut out);
    }
    Ok(out)
}

/// Publishes as one client (token `<prefix><index>`) joined to the single
/// topic of `plan`, pushing `plan.event`; the gateway must broadcast it
/// directly (`delivery: broadcast`). The publisher's own copies are ignored.
pub async fn via_push(target: &Target, index: usize, plan: &Publish) -> Result<Published> {
    let topic = match &plan.topics {
        Topics::One(topic) => topic.clone(),
        Topics::Random { .. } => anyhow::bail!("a pushing client publishes to one topic"),
    };
    let mut ws = client::connect(target, index, None)
        .await
        .context("publisher connect")?;
    client::join(
        &mut ws,
        std::slice::from_ref(&topic),
        Duration::from_secs(30),
    )
    .await
    .context("publisher join")?;
    let mut out = Published {
        start_ns: now_ns(),
        ..Published::default()
    };
    let started = Instant::now();
    let end = started + plan.duration;
    let mut pacer = Pacer::new(plan.rate);
    let mut seq = 0u64;
    let mut unanswered = 0u64;
    let on_frame = |message: WsMessage, out: &mut Published, unanswered: &mut u64| {
        if let WsMessage::Text(text) = message {
            if let Incoming::Reply {
                msg_ref: Some(_),
                ok,
                reason,
            } = client::classify(text.as_bytes())
            {
                *unanswered = unanswered.saturating_sub(1);
                if ok {
                    out.accepted += 1;
                } else {
                    out.error(format!("push refused: {}", reason.unwrap_or_default()));
                }
            }
        }
    };
    while Instant::now() < end {
        tokio::select! {
            _ = sleep_until(pacer.next_at().min(end).into()) => {
                let due = pacer.due();
                for _ in 0..due {
                    seq += 1;
                    let payload = client::timed_payload(now_ns(), seq, plan.payload_bytes);
                    let frame = client::frame(Some("1"), Some(&seq.to_string()), &topic, &plan.event, payload);
                    ws.feed(frame).await.context("publisher send")?;
                }
                ws.flush().await.context("publisher send")?;
                out.sent += due;
                unanswered += due;
            }
            message = ws.next() => {
                let message = message.context("publisher closed")?.context("publisher read")?;
                on_frame(message, &mut out, &mut unanswered);
            }
        }
    }
    out.elapsed = started.elapsed();
    let drain = tokio::time::Instant::now() + Duration::from_secs(10);
    while unanswered > 0 {
        match tokio::time::timeout_at(drain, ws.next()).await {
            Ok(Some(Ok(message))) => on_frame(message, &mut out, &mut unanswered),
            _ => break,
        }
    }
    let _ = ws.close(None).await;
    Ok(out)
}
