//! The hidden `worker` mode: one process holding a share of the
//! connections, on a single-threaded runtime, one task per connection.
//!
//! It opens and joins its connections when told ([`Command::Open`]), each
//! to its node (connection `i` to the spec's `urls[i % len]`), keeps them
//! alive with heartbeats, times the broadcasts they receive (in total and
//! by node), pushes when told, and reports over stdout (see `ipc`). It decides nothing about the
//! scenario: the parent (`fleet` and the scenarios) does.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use tokio::io::AsyncBufReadExt;
use tokio::sync::{watch, Semaphore};
use tokio::task::LocalSet;
use tokio::time::sleep_until;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::client::{self, Incoming, Target, Ws};
use crate::ipc::{Command, Event, NodeReport, Ready, Report, WorkerSpec};
use crate::stats::{encode, new_histogram, record_ns};
use crate::sys::{now_ns, read_rss};

/// How long one connection may take to connect and join.
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);
/// How long to wait for replies to pushes still in flight after a push run.
const PUSH_DRAIN: Duration = Duration::from_secs(5);
/// Refs of pushes start here, above any join ref.
const FIRST_PUSH_REF: u64 = 1_000_000;

/// Runs a worker from its JSON spec until stdin closes or `stop` arrives.
pub fn main(spec: &str) -> Result<()> {
    let spec: WorkerSpec = serde_json::from_str(spec).context("bad worker spec")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    LocalSet::new().block_on(&runtime, run(spec))
}

/// What a connection's task is asked to do.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    Hold,
    Push {
        until: Instant,
        interval: Option<Duration>,
        in_flight: usize,
    },
    Stop,
}

/// State shared by the worker's tasks (single thread: `Cell`s suffice).
struct Shared {
    spec: WorkerSpec,
    /// One per node; connection `i` uses `targets[i % len]`.
    targets: Vec<Target>,
    opening: Semaphore,
    live: Cell<usize>,
    joined: Cell<usize>,
    joined_by_node: RefCell<Vec<usize>>,
    failed: Cell<usize>,
    open_error: RefCell<Option<String>>,
    last_joined_ns: Cell<u64>,
    connect_latency: RefCell<Histogram<u64>>,
    disconnected: Cell<u64>,
    m: RefCell<Measure>,
}

/// Counters reset by [`Command::Record`].
struct Measure {
    received: u64,
    last_received_ns: u64,
    latency: Histogram<u64>,
    pushes: u64,
    replies_ok: u64,
    replies_error: u64,
    unanswered: u64,
    reply_latency: Histogram<u64>,
    first_error: Option<String>,
    /// Timed broadcasts and their latency, by node.
    by_node: Vec<(u64, Histogram<u64>)>,
}

impl Measure {
    fn new(nodes: usize) -> Measure {
        Measure {
            received: 0,
            last_received_ns: 0,
            latency: new_histogram(),
            pushes: 0,
            replies_ok: 0,
            replies_error: 0,
            unanswered: 0,
            reply_latency: new_histogram(),
            first_error: None,
            by_node: (0..nodes.max(1)).map(|_| (0, new_histogram())).collect(),
        }
    }

    fn error(&mut self, error: impl FnOnce() -> String) {
        if self.first_error.is_none() {
            self.first_error = Some(error());
        }
    }
}

impl Shared {
    fn report(&self) -> Report {
        let m = self.m.borrow();
        Report {
            worker: self.spec.worker,
            received: m.received,
            last_received_ns: m.last_received_ns,
            latency: encode(&m.latency),
            pushes: m.pushes,
            replies_ok: m.replies_ok,
            replies_error: m.replies_error,
            unanswered: m.unanswered,
            reply_latency: encode(&m.reply_latency),
            first_error: m.first_error.clone(),
            disconnected: self.disconnected.get(),
            by_node: m
                .by_node
                .iter()
                .map(|(received, latency)| NodeReport {
                    received: *received,
                    latency: encode(latency),
                })
                .collect(),
        }
    }

    fn node_of(&self, index: usize) -> usize {
        index % self.targets.len()
    }

    fn source_ip(&self, index: usize) -> Option<std::net::IpAddr> {
        let ips = &self.spec.source_ips;
        (!ips.is_empty()).then(|| ips[index % ips.len()])
    }
}

fn emit(event: &Event) {
    use std::io::Write;
    let line = serde_json::to_string(event).expect("events serialize");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

async fn run(spec: WorkerSpec) -> Result<()> {
    let worker = spec.worker;
    let targets = spec
        .urls
        .iter()
        .map(|url| Target::new(url, &spec.app, &spec.token_prefix))
        .collect::<Result<Vec<_>>>()?;
    anyhow::ensure!(!targets.is_empty(), "the worker spec has no URL");
    let nodes = targets.len();
    let shared = Rc::new(Shared {
        opening: Semaphore::new(spec.concurrency.max(1)),
        spec,
        targets,
        live: Cell::new(0),
        joined: Cell::new(0),
        joined_by_node: RefCell::new(vec![0; nodes]),
        failed: Cell::new(0),
        open_error: RefCell::new(None),
        last_joined_ns: Cell::new(0),
        connect_latency: RefCell::new(new_histogram()),
        disconnected: Cell::new(0),
        m: RefCell::new(Measure::new(nodes)),
    });
    let (phase_tx, phase_rx) = watch::channel(Phase::Hold);
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    emit(&Event::Started { worker });
    while let Some(line) = lines.next_line().await? {
        let command: Command = match serde_json::from_str(&line) {
            Ok(command) => command,
            Err(error) => {
                emit(&Event::Error {
                    worker,
                    message: format!("bad command {line:?}: {error}"),
                });
                continue;
            }
        };
        match command {
            Command::Open => open_all(&shared, &phase_rx).await,
            Command::Record => *shared.m.borrow_mut() = Measure::new(nodes),
            Command::Report => emit(&Event::Report(shared.report())),
            Command::Push {
                duration_ms,
                interval_us,
                in_flight,
            } => {
                *shared.m.borrow_mut() = Measure::new(nodes);
                let duration = Duration::from_millis(duration_ms);
                let _ = phase_tx.send(Phase::Push {
                    until: Instant::now() + duration,
                    interval: (interval_us > 0).then(|| Duration::from_micros(interval_us)),
                    in_flight: in_flight.max(1),
                });
                tokio::time::sleep(duration).await;
                let deadline = Instant::now() + PUSH_DRAIN;
                while shared.m.borrow().unanswered > 0 && Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                let report = shared.report();
                let _ = phase_tx.send(Phase::Hold);
                emit(&Event::Report(report));
            }
            Command::Stop => break,
        }
    }
    let _ = phase_tx.send(Phase::Stop);
    let deadline = Instant::now() + Duration::from_secs(3);
    while shared.live.get() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// Opens every connection (at most `concurrency` at once) and waits until
/// each has joined or failed, with a progress line every second.
async fn open_all(shared: &Rc<Shared>, phase: &watch::Receiver<Phase>) {
    let open_ns = now_ns();
    let spec = &shared.spec;
    for index in spec.first..spec.first + spec.count {
        tokio::task::spawn_local(connection(shared.clone(), index, phase.clone()));
    }
    let mut last_progress = Instant::now();
    while shared.joined.get() + shared.failed.get() < spec.count {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            emit(&Event::Progress {
                worker: spec.worker,
                joined: shared.joined.get(),
                failed: shared.failed.get(),
            });
        }
    }
    emit(&Event::Ready(Ready {
        worker: spec.worker,
        joined: shared.joined.get(),
        failed: shared.failed.get(),
        first_error: shared.open_error.borrow().clone(),
        open_ns,
        last_joined_ns: shared.last_joined_ns.get(),
        connect_latency: encode(&shared.connect_latency.borrow()),
        rss_bytes: read_rss(std::process::id()).map_or(0, |r| r.total),
        joined_by_node: shared.joined_by_node.borrow().clone(),
    }));
}

/// A connection's pushes in a push run.
struct Pushing {
    topic: String,
    until: Instant,
    interval: Option<Duration>,
    in_flight: usize,
    next: Instant,
    next_ref: u64,
    outstanding: Vec<(u64, Instant)>,
}

impl Pushing {
    /// When the next push is due, if one may be sent.
    fn due(&self, now: Instant) -> Option<Instant> {
        (now < self.until && self.outstanding.len() < self.in_flight).then_some(self.next)
    }
}

/// One connection, from connect to close.
async fn connection(shared: Rc<Shared>, index: usize, mut phase: watch::Receiver<Phase>) {
    shared.live.set(shared.live.get() + 1);
    if let Some(mut ws) = open(&shared, index).await {
        hold(&shared, index, &mut ws, &mut phase).await;
    }
    shared.live.set(shared.live.get() - 1);
}

async fn open(shared: &Shared, index: usize) -> Option<Ws> {
    let permit = shared.opening.acquire().await.ok()?;
    let started = Instant::now();
    let topics = shared.spec.topics.topics_for(index);
    let opened = async {
        let target = &shared.targets[shared.node_of(index)];
        let mut ws = client::connect(target, index, shared.source_ip(index)).await?;
        client::join(&mut ws, &topics, JOIN_TIMEOUT).await?;
        anyhow::Ok(ws)
    }
    .await;
    drop(permit);
    match opened {
        Ok(ws) => {
            record_ns(
                &mut shared.connect_latency.borrow_mut(),
                started.elapsed().as_nanos() as u64,
            );
            shared.joined.set(shared.joined.get() + 1);
            shared.joined_by_node.borrow_mut()[shared.node_of(index)] += 1;
            shared.last_joined_ns.set(now_ns());
            Some(ws)
        }
        Err(error) => {
            shared.failed.set(shared.failed.get() + 1);
            let mut first = shared.open_error.borrow_mut();
            if first.is_none() {
                *first = Some(format!("connection {index}: {error:#}"));
            }
            None
        }
    }
}

/// Keeps a joined connection: heartbeats, timing, pushing, until told to
/// stop or the server closes it.
async fn hold(shared: &Shared, index: usize, ws: &mut Ws, phase: &mut watch::Receiver<Phase>) {
    let period = Duration::from_secs(shared.spec.heartbeat_secs);
    let heartbeats = !period.is_zero();
    // Spread the first heartbeat over [period/2, period) so they never align.
    let mut next_heartbeat =
        Instant::now() + period / 2 + period.mul_f64((index * 7919 % 1000) as f64 / 2000.0);
    let mut heartbeat_ref = 0u64;
    let mut pushing: Option<Pushing> = None;
    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    loop {
        let push_at = pushing.as_ref().and_then(|p| p.due(Instant::now()));
        tokio::select! {
            incoming = ws.next() => match incoming {
                Some(Ok(WsMessage::Text(text))) => on_text(shared, index, text.as_bytes(), pushing.as_mut()),
                Some(Ok(WsMessage::Close(close))) => {
                    return lost(shared, format!("connection {index} closed by the server: {close:?}"));
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => return lost(shared, format!("connection {index}: {error}")),
                None => return lost(shared, format!("connection {index}: end of stream")),
            },
            changed = phase.changed() => {
                if changed.is_err() {
                    return;
                }
                let now = *phase.borrow_and_update();
                match now {
                    Phase::Stop => {
                        let _ = tokio::time::timeout(Duration::from_secs(1), ws.close(None)).await;
                        return;
                    }
                    Phase::Push { until, interval, in_flight } => {
                        let topic = shared.spec.topics.topics_for(index).swap_remove(0);
                        pushing = Some(Pushing {
                            topic,
                            until,
                            interval,
                            in_flight,
                            next: Instant::now(),
                            next_ref: FIRST_PUSH_REF,
                            outstanding: Vec::new(),
                        });
                    }
                    Phase::Hold => {
                        if let Some(p) = pushing.take() {
                            let mut m = shared.m.borrow_mut();
                            m.unanswered -= p.outstanding.len() as u64;
                        }
                    }
                }
            },
            _ = sleep_until(next_heartbeat.into()), if heartbeats => {
                heartbeat_ref += 1;
                if ws.send(client::heartbeat(&format!("h{heartbeat_ref}"))).await.is_err() {
                    return lost(shared, format!("connection {index}: heartbeat send failed"));
                }
                next_heartbeat += period;
            },
            _ = sleep_until(push_at.unwrap_or(far).into()), if push_at.is_some() => {
                let Some(p) = pushing.as_mut() else { continue };
                let msg_ref = p.next_ref;
                p.next_ref += 1;
                let payload = client::timed_payload(now_ns(), msg_ref, shared.spec.payload_bytes);
                let frame = client::frame(
                    Some("1"),
                    Some(&msg_ref.to_string()),
                    &p.topic,
                    &shared.spec.push_event,
                    payload,
                );
                p.outstanding.push((msg_ref, Instant::now()));
                p.next = match p.interval {
                    Some(interval) => p.next + interval,
                    None => Instant::now(),
                };
                {
                    let mut m = shared.m.borrow_mut();
                    m.pushes += 1;
                    m.unanswered += 1;
                }
                if ws.send(frame).await.is_err() {
                    return lost(shared, format!("connection {index}: push send failed"));
                }
            },
        }
    }
}

fn record_delivery(shared: &Shared, index: usize, t: u64) {
    let now = now_ns();
    let mut m = shared.m.borrow_mut();
    m.received += 1;
    m.last_received_ns = now;
    record_ns(&mut m.latency, now.saturating_sub(t));
    let node = &mut m.by_node[shared.node_of(index)];
    node.0 += 1;
    record_ns(&mut node.1, now.saturating_sub(t));
}

fn lost(shared: &Shared, why: String) {
    shared.disconnected.set(shared.disconnected.get() + 1);
    shared.m.borrow_mut().error(|| why);
}

fn on_text(shared: &Shared, index: usize, text: &[u8], pushing: Option<&mut Pushing>) {
    if let Some((event, t)) = client::timed_broadcast(text) {
        if event == shared.spec.timed_event.as_bytes() {
            record_delivery(shared, index, t);
        }
        return;
    }
    match client::classify(text) {
        Incoming::Event {
            event,
            t_ns: Some(t),
        } if event == shared.spec.timed_event => record_delivery(shared, index, t),
        Incoming::Reply {
            msg_ref: Some(msg_ref),
            ok,
            reason,
        } => {
            let Some(p) = pushing else { return };
            let Ok(msg_ref) = msg_ref.parse::<u64>() else {
                return;
            };
            let Some(at) = p.outstanding.iter().position(|(r, _)| *r == msg_ref) else {
                return;
            };
            let (_, sent) = p.outstanding.swap_remove(at);
            let mut m = shared.m.borrow_mut();
            m.unanswered -= 1;
            if ok {
                m.replies_ok += 1;
                record_ns(&mut m.reply_latency, sent.elapsed().as_nanos() as u64);
            } else {
                m.replies_error += 1;
                m.error(|| format!("push refused: {}", reason.unwrap_or_default()));
            }
        }
        _ => {}
    }
}
