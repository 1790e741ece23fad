//! `redis-pubsub`: Redis alone, without the gateway. N connections
//! SUBSCRIBE (or SSUBSCRIBE) one channel — they stand for N gateway nodes
//! with subscribers on one topic — and P connections PUBLISH (SPUBLISH)
//! fixed-size messages to it, pipelined, at a fixed rate or as fast as
//! Redis answers. Reports messages/s, deliveries/s and, from Redis's INFO,
//! its CPU per message: the pub/sub capacity of one Redis (one shard) and
//! what each extra subscribed node costs it.
//!
//! It speaks RESP over plain TCP (no AUTH, no TLS): publishers count
//! replies, subscribers only count bytes, since every delivery of a
//! fixed-size message has the same length. So the bench's own work stays
//! small beside Redis's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use reqwest::Url;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::cli::RedisPubsubArgs;
use crate::redis::{self as redis_stats, Redis};
use crate::report::{self, thousands};
use crate::stats::Pacer;
use crate::sys::cpu_secs;

/// Runs the scenario: one run per subscriber count.
pub async fn run(args: RedisPubsubArgs) -> Result<()> {
    let url = Url::parse(&args.redis_url)
        .with_context(|| format!("bad --redis-url {}", args.redis_url))?;
    if url.scheme() != "redis" {
        bail!("--redis-url must be redis://host:port (for a Redis Cluster, the primary owning the channel)");
    }
    let addr = format!(
        "{}:{}",
        url.host_str().context("--redis-url has no host")?,
        url.port().unwrap_or(6379)
    );
    if args.publishers == 0 || args.pipeline == 0 {
        bail!("--publishers and --pipeline must be at least 1");
    }
    let redis = Redis::connect(&args.redis_url).await?;
    let mut rows = Vec::new();
    let mut outcome = Ok(());
    for &n in &args.subscribers {
        match one(&redis, &addr, &args, n).await {
            Ok(row) => rows.push(row),
            Err(error) => {
                outcome = Err(error);
                break;
            }
        }
    }
    redis.quit().await;
    if rows.len() > 1 {
        report::table(
            "redis-pubsub",
            &[
                "subscribers",
                "messages/s",
                "deliveries/s",
                "Redis CPU %",
                "Redis CPU µs/message",
                "bench CPU %",
            ],
            &rows,
        );
    }
    outcome
}

/// The RESP of one command.
fn command(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", parts.len()).into_bytes();
    for part in parts {
        out.extend_from_slice(format!("${}\r\n", part.len()).as_bytes());
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Length of one delivery (`message` or `smessage` push) of a payload.
fn delivery_len(kind: &str, channel: &str, payload: usize) -> usize {
    let bulk = |n: usize| format!("${n}\r\n").len() + n + 2;
    "*3\r\n".len() + bulk(kind.len()) + bulk(channel.len()) + bulk(payload)
}

/// A subscriber: subscribes, waits for the confirmation, then counts bytes.
async fn subscriber(
    addr: &str,
    channel: &str,
    sharded: bool,
    bytes: Arc<AtomicU64>,
    ready: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) -> Result<()> {
    let mut stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect {addr}"))?;
    let verb: &[u8] = if sharded { b"SSUBSCRIBE" } else { b"SUBSCRIBE" };
    stream
        .write_all(&command(&[verb, channel.as_bytes()]))
        .await?;
    // The confirmation: `*3`, the verb, the channel, `:1` — four lines more
    // than its bulk bodies; read until its last line.
    let kind = if sharded { "ssubscribe" } else { "subscribe" };
    let confirmation = delivery_len(kind, channel, 0) - "$0\r\n\r\n".len() + ":1\r\n".len();
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    while got < confirmation {
        let n = stream.read(&mut buf[got..]).await?;
        if n == 0 {
            bail!("Redis closed the subscriber");
        }
        got += n;
        if buf[0] == b'-' {
            bail!(
                "subscribe refused: {}",
                String::from_utf8_lossy(&buf[..got]).trim()
            );
        }
    }
    bytes.fetch_add((got - confirmation) as u64, Ordering::Relaxed);
    ready.add_permits(1);
    loop {
        tokio::select! {
            read = stream.read(&mut buf) => match read? {
                0 => return Ok(()),
                n => { bytes.fetch_add(n as u64, Ordering::Relaxed); }
            },
            _ = stop.changed() => return Ok(()),
        }
    }
}

/// A publisher: keeps at most `pipeline` commands unanswered, sending at
/// `rate` (0: as fast as replies free room) until `until`; returns replies.
async fn publisher(
    addr: String,
    frame: Arc<Vec<u8>>,
    rate: f64,
    pipeline: usize,
    until: Instant,
) -> Result<u64> {
    let stream = TcpStream::connect(&addr)
        .await
        .with_context(|| format!("connect {addr}"))?;
    stream.set_nodelay(true)?;
    let (mut rx, mut tx) = stream.into_split();
    let room = Arc::new(Semaphore::new(pipeline));
    let replies = Arc::new(AtomicU64::new(0));
    // The reader only ever ends with what went wrong.
    let mut reader = {
        let (room, replies) = (room.clone(), replies.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            let mut at_line_start = true;
            loop {
                let n = match rx.read(&mut buf).await {
                    Ok(0) => return anyhow!("Redis closed the publisher"),
                    Ok(n) => n,
                    Err(error) => return error.into(),
                };
                for &byte in &buf[..n] {
                    if at_line_start && byte == b'-' {
                        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                        return anyhow!("publish refused: {}", text.trim());
                    }
                    // Every reply (an integer) is one line.
                    at_line_start = byte == b'\n';
                    if at_line_start {
                        replies.fetch_add(1, Ordering::Relaxed);
                        room.add_permits(1);
                    }
                }
            }
        })
    };
    let mut pacer = (rate > 0.0).then(|| Pacer::new(rate));
    let mut batch = Vec::with_capacity(frame.len() * pipeline);
    let mut sent = 0u64;
    // Messages owed by the pacer and not sent yet (a late loop catches up).
    let mut owed = 0usize;
    while Instant::now() < until {
        match pacer.as_mut() {
            Some(p) => {
                if owed == 0 {
                    tokio::time::sleep_until(p.next_at().min(until).into()).await;
                }
                owed += p.due() as usize;
            }
            None => owed = pipeline,
        }
        if owed == 0 {
            continue;
        }
        // One free slot (waiting for it), then whatever else is free.
        tokio::select! {
            permit = room.acquire() => permit?.forget(),
            _ = tokio::time::sleep_until(until.into()) => break,
            failed = &mut reader => return Err(failed?),
        }
        let mut n = 1;
        while n < owed {
            match room.try_acquire() {
                Ok(permit) => {
                    permit.forget();
                    n += 1;
                }
                Err(_) => break,
            }
        }
        owed -= n;
        batch.clear();
        for _ in 0..n {
            batch.extend_from_slice(&frame);
        }
        sent += n as u64;
        tx.write_all(&batch).await?;
    }
    // Let the last replies come back.
    let deadline = Instant::now() + Duration::from_secs(10);
    while replies.load(Ordering::Relaxed) < sent && Instant::now() < deadline {
        if reader.is_finished() {
            return Err((&mut reader).await?);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    reader.abort();
    Ok(replies.load(Ordering::Relaxed))
}

async fn one(
    redis: &Redis,
    addr: &str,
    args: &RedisPubsubArgs,
    subscribers: usize,
) -> Result<Vec<String>> {
    let payload = vec![b'x'; args.payload_bytes];
    let verb: &[u8] = if args.sharded {
        b"SPUBLISH"
    } else {
        b"PUBLISH"
    };
    let frame = Arc::new(command(&[verb, args.channel.as_bytes(), &payload]));
    let kind = if args.sharded { "smessage" } else { "message" };
    let per_delivery = delivery_len(kind, &args.channel, args.payload_bytes) as u64;

    let bytes = Arc::new(AtomicU64::new(0));
    let ready = Arc::new(Semaphore::new(0));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut subs = JoinSet::new();
    for _ in 0..subscribers {
        let (addr, channel) = (addr.to_owned(), args.channel.clone());
        let (bytes, ready, stop) = (bytes.clone(), ready.clone(), stop_rx.clone());
        let sharded = args.sharded;
        subs.spawn(async move { subscriber(&addr, &channel, sharded, bytes, ready, stop).await });
    }
    let all_ready = ready.acquire_many(subscribers as u32);
    tokio::select! {
        ok = all_ready => { ok?.forget(); }
        Some(Ok(Err(error))) = subs.join_next() => return Err(error),
        _ = tokio::time::sleep(Duration::from_secs(10)) => bail!("subscribers not ready within 10 s"),
    }

    let before = redis.snapshot().await?;
    let bench_cpu = cpu_secs(std::process::id());
    let delivered_before = bytes.load(Ordering::Relaxed);
    let started = Instant::now();
    let until = started + Duration::from_secs(args.duration_secs);
    let mut pubs = JoinSet::new();
    for _ in 0..args.publishers {
        pubs.spawn(publisher(
            addr.to_owned(),
            frame.clone(),
            args.rate / args.publishers as f64,
            args.pipeline,
            until,
        ));
    }
    let mut published = 0;
    while let Some(result) = pubs.join_next().await {
        published += result??;
    }
    let publish_secs = started.elapsed().as_secs_f64();
    // Wait until the subscribers stop receiving.
    let expected = published * subscribers as u64 * per_delivery;
    let drain_until = Instant::now() + Duration::from_secs(10);
    while bytes.load(Ordering::Relaxed) - delivered_before < expected
        && Instant::now() < drain_until
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = redis.snapshot().await?;
    let bench_cpu = cpu_secs(std::process::id()) - bench_cpu;
    let _ = stop_tx.send(true);
    while subs.join_next().await.is_some() {}

    let deliveries = (bytes.load(Ordering::Relaxed) - delivered_before) / per_delivery;
    let deltas = redis_stats::delta(&before, &after);
    let redis_cpu: f64 = deltas.iter().map(|d| d.cpu_secs).sum();
    let msgs_per_sec = published as f64 / publish_secs;
    let redis_us_per_msg = 1e6 * redis_cpu / published.max(1) as f64;
    let summary = json!({
        "scenario": "redis-pubsub",
        "sharded": args.sharded,
        "subscribers": subscribers,
        "publishers": args.publishers,
        "pipeline": args.pipeline,
        "rate": args.rate,
        "payload_bytes": args.payload_bytes,
        "duration_secs": report::round(publish_secs, 2),
        "published": published,
        "messages_per_sec": report::round(msgs_per_sec, 0),
        "deliveries": deliveries,
        "expected_deliveries": published * subscribers as u64,
        "deliveries_per_sec": report::round(deliveries as f64 / elapsed, 0),
        "redis_cpu_pct": report::round(100.0 * redis_cpu / elapsed, 1),
        "redis_cpu_us_per_message": report::round(redis_us_per_msg, 3),
        "bench_cpu_pct": report::round(100.0 * bench_cpu / elapsed, 1),
        "redis": redis_stats::deltas_json(&deltas),
    });
    report::pairs(
        &format!(
            "redis-pubsub: {} to {subscribers} subscriber(s)",
            if args.sharded { "SPUBLISH" } else { "PUBLISH" }
        ),
        &[
            (
                "published (replies) in s",
                format!("{} in {publish_secs:.2}", thousands(published)),
            ),
            ("messages per second", thousands(msgs_per_sec as u64)),
            (
                "deliveries / expected",
                format!(
                    "{} / {}",
                    thousands(deliveries),
                    thousands(published * subscribers as u64)
                ),
            ),
            (
                "Redis CPU % (µs per message)",
                format!(
                    "{:.1} % ({redis_us_per_msg:.2} µs)",
                    100.0 * redis_cpu / elapsed
                ),
            ),
            (
                "bench CPU % (publishers and subscribers)",
                format!("{:.1} %", 100.0 * bench_cpu / elapsed),
            ),
        ],
    );
    report::result(&summary);
    Ok(vec![
        subscribers.to_string(),
        thousands(msgs_per_sec as u64),
        thousands((deliveries as f64 / elapsed) as u64),
        format!("{:.1}", 100.0 * redis_cpu / elapsed),
        format!("{redis_us_per_msg:.2}"),
        format!("{:.1}", 100.0 * bench_cpu / elapsed),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resp_lengths() {
        assert_eq!(
            command(&[b"PUBLISH", b"c", b"xy"]),
            b"*3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$2\r\nxy\r\n"
        );
        // *3 $7 message $1 c $2 xy
        assert_eq!(
            delivery_len("message", "c", 2),
            b"*3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$2\r\nxy\r\n".len()
        );
    }
}
