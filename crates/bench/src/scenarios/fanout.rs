//! `fanout`: S subscribers on one topic; broadcasts at a fixed rate (one
//! run per `--rate` and `--via`, on the same connections) through the
//! server API and/or a client's pushes; deliveries per second and
//! publish-to-receive latency (the publisher stamps each payload with its
//! send time; every subscriber reads it on arrival).
//!
//! With `--nodes N` the subscribers are spread round robin over N nodes
//! sharing Redis, while the API calls and the pushing client go to node 0,
//! so every broadcast crosses Redis to reach nodes 1..N. Deliveries and
//! latency are also given by node, with the CPU time of every process and
//! Redis's counters over the publishing window.

use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};

use super::{drain, latency_json, Env, Metered, Opened, Totals};
use crate::cli::{FanoutArgs, Via};
use crate::fleet::Fleet;
use crate::ipc::{Command, TopicPlan};
use crate::publish::{self, Publish, Published, Topics};
use crate::report::{self, thousands};
use crate::stats::Latency;

/// Connections opened at once per worker when `--concurrency` is not given.
const DEFAULT_CONCURRENCY: usize = 200;

/// Runs the scenario.
pub async fn run(args: FanoutArgs) -> Result<()> {
    let env = Env::start(&args.common).await?;
    let outcome = runs(&env, &args).await;
    env.finish().await;
    outcome
}

async fn runs(env: &Env, args: &FanoutArgs) -> Result<()> {
    let mut spec = env.worker_spec(
        TopicPlan::Fixed {
            topic: args.topic.clone(),
        },
        DEFAULT_CONCURRENCY,
    );
    spec.timed_event = args.event.clone();
    let (mut fleet, opened) = env.open(&spec, args.subscribers).await?;
    let vias = match args.via {
        Via::Both => vec![Via::Api, Via::Push],
        via => vec![via],
    };
    let mut outcome = Ok(());
    'runs: for &rate in &args.rate {
        let plan = Publish {
            topics: Topics::One(args.topic.clone()),
            event: args.event.clone(),
            rate,
            duration: Duration::from_secs(args.duration_secs),
            payload_bytes: args.payload_bytes,
        };
        for &via in &vias {
            if let Err(error) = one(env, &mut fleet, &opened, args, &plan, via).await {
                outcome = Err(error);
                break 'runs;
            }
        }
    }
    fleet.stop().await;
    outcome
}

async fn one(
    env: &Env,
    fleet: &mut Fleet,
    opened: &Opened,
    args: &FanoutArgs,
    plan: &Publish,
    via: Via,
) -> Result<()> {
    fleet.send(&Command::Record).await?;
    let meter = env.meter(Some(fleet)).await;
    let published = match via {
        Via::Push => publish::via_push(&env.target, args.subscribers, plan).await?,
        _ => publish::via_api(&env.api, &env.app, &env.secret, plan).await?,
    };
    let expected = published.accepted * opened.joined as u64;
    let t = drain(fleet, expected).await?;
    let metered = env.metered(&meter, Some(fleet)).await;
    let name = if via == Via::Push { "push" } else { "api" };
    let summary = summarize(
        env, opened, "fanout", name, &published, expected, &t, plan.rate,
    );
    let mut summary = summary;
    summary.insert("subscribers".into(), json!(args.subscribers));
    summary.insert("topic".into(), json!(args.topic));
    insert_costs(&mut summary, &metered, t.received, published.accepted);
    let nodes = env.urls.len();
    if nodes > 1 {
        summary.insert(
            "per_node".into(),
            per_node_json(opened, &t, published.accepted),
        );
    }
    print_run(
        &format!(
            "fanout via {name}: {} subscribers on {nodes} node(s)",
            opened.joined
        ),
        &published,
        expected,
        &t,
    );
    print_costs(opened, &t, &metered, published.accepted);
    report::result(&Value::Object(summary));
    Ok(())
}

/// Deliveries and latency by node: node 0 delivers what it publishes
/// itself, the others what came through Redis.
fn per_node_json(opened: &Opened, t: &Totals, accepted: u64) -> Value {
    let nodes = t.by_node.iter().enumerate().map(|(k, (received, lat))| {
        let subscribers = opened.joined_by_node.get(k).copied().unwrap_or(0);
        json!({
            "node": k,
            "subscribers": subscribers,
            "expected": subscribers as u64 * accepted,
            "delivered": received,
            "latency_p50_ms": lat.p50_ms,
            "latency_p99_ms": lat.p99_ms,
            "latency_max_ms": lat.max_ms,
        })
    });
    Value::Array(nodes.collect())
}

/// CPU and Redis fields: seconds by process, deliveries per server CPU
/// second, Redis's commands, bytes and CPU per broadcast.
pub fn insert_costs(
    summary: &mut serde_json::Map<String, Value>,
    metered: &Metered,
    delivered: u64,
    accepted: u64,
) {
    metered.insert_into(summary);
    let server_cpu = metered.server_cpu();
    if server_cpu > 0.0 {
        summary.insert(
            "deliveries_per_server_cpu_sec".into(),
            json!(report::round(delivered as f64 / server_cpu, 0)),
        );
    }
    if let (Some(deltas), true) = (&metered.redis, accepted > 0) {
        let out: u64 = deltas.iter().map(|d| d.net_out).sum();
        let cpu: f64 = deltas.iter().map(|d| d.cpu_secs).sum();
        summary.insert(
            "redis_per_broadcast".into(),
            json!({
                "net_out_bytes": report::round(out as f64 / accepted as f64, 1),
                "cpu_us": report::round(1e6 * cpu / accepted as f64, 2),
            }),
        );
    }
}

/// The human table of CPU, Redis and per-node figures.
pub fn print_costs(opened: &Opened, t: &Totals, metered: &Metered, accepted: u64) {
    let secs = |x: f64| format!("{x:.2}");
    let mut rows = vec![
        ("window (s)".to_owned(), format!("{:.2}", metered.secs)),
        (
            "server CPU s (by node)".to_owned(),
            metered
                .servers
                .iter()
                .map(|s| secs(*s))
                .collect::<Vec<_>>()
                .join(" / "),
        ),
        (
            "generator workers / bench CPU s".to_owned(),
            format!("{} / {}", secs(metered.workers), secs(metered.bench)),
        ),
        (
            "machine busy / not measured CPU s".to_owned(),
            format!("{} / {}", secs(metered.machine), secs(metered.other_cpu())),
        ),
    ];
    if metered.server_cpu() > 0.0 {
        rows.push((
            "deliveries per server CPU second".to_owned(),
            thousands((t.received as f64 / metered.server_cpu()) as u64),
        ));
    }
    if t.by_node.len() > 1 {
        for (k, (received, lat)) in t.by_node.iter().enumerate() {
            let subscribers = opened.joined_by_node.get(k).copied().unwrap_or(0);
            rows.push((
                format!("node {k}: delivered / expected, p50 / p99 / max ms"),
                format!(
                    "{} / {}, {:.2} / {:.2} / {:.2}",
                    thousands(*received),
                    thousands(subscribers as u64 * accepted),
                    lat.p50_ms,
                    lat.p99_ms,
                    lat.max_ms
                ),
            ));
        }
    }
    for d in metered.redis.iter().flatten() {
        let publishes = d.calls_of("publish") + d.calls_of("spublish");
        rows.push((
            format!("redis {}: CPU %, commands/s, out bytes/s", d.server),
            format!(
                "{:.1} %, {}, {} ({} (S)PUBLISH)",
                100.0 * d.cpu_secs / d.secs.max(1e-9),
                thousands((d.commands as f64 / d.secs.max(1e-9)) as u64),
                thousands((d.net_out as f64 / d.secs.max(1e-9)) as u64),
                thousands(publishes)
            ),
        ));
    }
    let rows: Vec<(&str, String)> = rows.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    report::pairs("costs", &rows);
}

/// The summary fields shared by `fanout` and `many-topics`.
#[allow(clippy::too_many_arguments)]
pub fn summarize(
    env: &Env,
    opened: &Opened,
    scenario: &str,
    via: &str,
    published: &Published,
    expected: u64,
    t: &Totals,
    rate: f64,
) -> serde_json::Map<String, Value> {
    let mut summary = env.summary_base(scenario, opened);
    summary.insert("via".into(), json!(via));
    summary.insert("rate".into(), json!(rate));
    summary.insert(
        "duration_secs".into(),
        json!(report::round(published.elapsed.as_secs_f64(), 2)),
    );
    summary.insert("published".into(), json!(published.sent));
    summary.insert("accepted".into(), json!(published.accepted));
    summary.insert("rejected".into(), json!(published.rejected));
    summary.insert("skipped".into(), json!(published.skipped));
    summary.insert("expected".into(), json!(expected));
    summary.insert("delivered".into(), json!(t.received));
    summary.insert(
        "deliveries_per_sec".into(),
        json!(report::round(deliveries_per_sec(published, t), 1)),
    );
    latency_json(&mut summary, "latency", &t.latency);
    summary.insert("disconnected".into(), json!(t.disconnected));
    if let Some(error) = published.first_error.as_ref().or(t.first_error.as_ref()) {
        summary.insert("first_error".into(), json!(error));
    }
    summary
}

/// Deliveries over the time from the first publish to the last delivery.
fn deliveries_per_sec(published: &Published, t: &Totals) -> f64 {
    let span = t.last_received_ns.saturating_sub(published.start_ns) as f64 / 1e9;
    if span > 0.0 {
        t.received as f64 / span
    } else {
        0.0
    }
}

/// The human table shared by `fanout` and `many-topics`.
pub fn print_run(title: &str, published: &Published, expected: u64, t: &Totals) {
    let lat = |l: &Latency| format!("{:.2} / {:.2} / {:.2}", l.p50_ms, l.p99_ms, l.max_ms);
    report::pairs(
        title,
        &[
            (
                "published (accepted / refused / skipped)",
                format!(
                    "{} ({} / {} / {}) in {:.1} s",
                    thousands(published.sent),
                    thousands(published.accepted),
                    published.rejected,
                    published.skipped,
                    published.elapsed.as_secs_f64()
                ),
            ),
            (
                "delivered / expected",
                format!("{} / {}", thousands(t.received), thousands(expected)),
            ),
            (
                "deliveries per second",
                thousands(deliveries_per_sec(published, t) as u64),
            ),
            ("latency p50 / p99 / max (ms)", lat(&t.latency)),
            ("connections lost", t.disconnected.to_string()),
            (
                "first error",
                published
                    .first_error
                    .clone()
                    .or_else(|| t.first_error.clone())
                    .unwrap_or_else(|| "-".to_owned()),
            ),
        ],
    );
}
