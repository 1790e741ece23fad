//! `idle`: open N connections, each joined to one topic
//! (`<prefix><i % topics>`), wait until the server's RSS settles, and report
//! (RSS after − RSS before) / joined connections. One run per N; with
//! `--server-cmd` each run gets a fresh server, so runs do not inherit each
//! other's allocator state. With `--nodes`, the RSS is that of every node
//! together.
//!
//! With a known Redis (`--nodes` above 1 or `--redis-url`), it also counts
//! the Redis commands per connection of the joins and, after closing every
//! connection, of the leaves (presence and connection-registry writes).

use std::time::Duration;

use anyhow::{bail, Result};
use serde_json::{json, Value};

use super::{latency_json, redis_calls_line, redis_phase_json, totals, Env};
use crate::cli::IdleArgs;
use crate::ipc::TopicPlan;
use crate::report::{self, thousands};
use crate::sys::settled_rss;

/// Connections opened at once per worker when `--concurrency` is not given.
const DEFAULT_CONCURRENCY: usize = 200;

/// Runs the scenario.
pub async fn run(args: IdleArgs) -> Result<()> {
    let mut env = Env::start(&args.common).await?;
    let outcome = runs(&mut env, &args).await;
    env.finish().await;
    let rows = outcome?;
    if rows.len() > 1 {
        report::table(
            "idle: server RSS per connection",
            &[
                "connections",
                "joined",
                "RSS before",
                "RSS after",
                "bytes/conn",
                "anon bytes/conn",
            ],
            &rows,
        );
    }
    Ok(())
}

async fn runs(env: &mut Env, args: &IdleArgs) -> Result<Vec<Vec<String>>> {
    let mut rows = Vec::new();
    for (run, &n) in args.connections.iter().enumerate() {
        if run > 0 {
            if env.spawned() {
                env.restart_server().await?;
            } else {
                eprintln!(
                    "bench: warning: run {} reuses the attached server; memory freed by the \
                     previous run may be reused and lower this result",
                    run + 1
                );
            }
        }
        let summary = one(env, args, n).await?;
        report::result(&summary);
        let field = |k: &str| summary.get(k).and_then(Value::as_u64).unwrap_or(0);
        rows.push(vec![
            thousands(n as u64),
            thousands(field("joined")),
            thousands(field("rss_before_bytes")),
            thousands(field("rss_after_bytes")),
            thousands(field("rss_per_conn_bytes")),
            thousands(field("anon_per_conn_bytes")),
        ]);
    }
    Ok(rows)
}

async fn one(env: &Env, args: &IdleArgs, n: usize) -> Result<Value> {
    let pids = env.server_pids();
    if pids.is_empty() {
        bail!("idle measures the server's memory: give --server-cmd or --server-pid");
    }
    let settle_max = Duration::from_secs(args.settle_max_secs);
    let (before, _) = settled_rss(&pids, settle_max).await?;
    let plan = TopicPlan::Modulo {
        prefix: args.topic_prefix.clone(),
        modulo: args.topics,
    };
    let spec = env.worker_spec(plan, DEFAULT_CONCURRENCY);
    let (mut fleet, opened) = env.open(&spec, n).await?;
    let holding = env.meter(Some(&fleet)).await;
    let (after, settle) = settled_rss(&pids, settle_max).await?;
    let held = env.metered(&holding, Some(&fleet)).await;
    let t = totals(&fleet.report().await?)?;
    let meter = env.meter(None).await;
    fleet.stop().await;
    let redis_leave = match &env.redis {
        Some(_) => {
            // The leaves' writes are queued on the nodes; let them out.
            tokio::time::sleep(Duration::from_secs(1)).await;
            env.metered(&meter, None).await.redis
        }
        None => None,
    };

    let joined = opened.joined as u64;
    let per = |a: u64, b: u64| a.saturating_sub(b) / joined.max(1);
    let mut summary = env.summary_base("idle", &opened);
    summary.insert("connections".into(), json!(n));
    summary.insert("topics".into(), json!(args.topics));
    summary.insert("topic_prefix".into(), json!(args.topic_prefix));
    // Only known for the generated schema.
    let presence = env.spawned().then_some(env.common.presence);
    summary.insert("presence".into(), json!(presence));
    summary.insert("rss_before_bytes".into(), json!(before.total));
    summary.insert("rss_after_bytes".into(), json!(after.total));
    summary.insert(
        "rss_per_conn_bytes".into(),
        json!(per(after.total, before.total)),
    );
    summary.insert(
        "anon_per_conn_bytes".into(),
        json!(per(after.anon, before.anon)),
    );
    summary.insert(
        "open_secs".into(),
        json!(report::round(opened.open_secs(), 2)),
    );
    latency_json(&mut summary, "connect", &opened.connect);
    summary.insert("settle_secs".into(), json!(settle.as_secs()));
    // While the connections only send heartbeats: what holding them costs.
    let idle_cpu_pct = 100.0 * held.server_cpu() / held.secs.max(1e-9);
    let heartbeats_per_sec = match env.common.heartbeat_secs {
        0 => 0.0,
        secs => opened.joined as f64 / secs as f64,
    };
    summary.insert(
        "idle_server_cpu_pct".into(),
        json!(report::round(idle_cpu_pct, 2)),
    );
    summary.insert(
        "heartbeats_per_sec".into(),
        json!(report::round(heartbeats_per_sec, 1)),
    );
    summary.insert("disconnected".into(), json!(t.disconnected));
    if let Some(deltas) = &redis_leave {
        summary.insert(
            "redis_leave".into(),
            redis_phase_json(deltas, opened.joined),
        );
    }

    let mut rows = vec![
        ("joined", format!("{} ({} failed)", joined, opened.failed)),
        ("worker processes", opened.processes.to_string()),
        ("server RSS before", thousands(before.total)),
        ("server RSS after", thousands(after.total)),
        (
            "RSS per connection (bytes)",
            thousands(per(after.total, before.total)),
        ),
        (
            "anon RSS per connection (bytes)",
            thousands(per(after.anon, before.anon)),
        ),
        ("open + join time (s)", format!("{:.2}", opened.open_secs())),
        (
            "connect + join p50 / p99 / max (ms)",
            format!(
                "{:.2} / {:.2} / {:.2}",
                opened.connect.p50_ms, opened.connect.p99_ms, opened.connect.max_ms
            ),
        ),
        ("RSS settle time (s)", settle.as_secs().to_string()),
        (
            "server CPU while idle (%, heartbeats/s)",
            format!("{idle_cpu_pct:.2} % ({heartbeats_per_sec:.0}/s)"),
        ),
        (
            "server CPU per connect + join (µs)",
            format!("{:.1}", 1e6 * opened.open_server_cpu / joined.max(1) as f64),
        ),
        ("lost while idle", t.disconnected.to_string()),
        (
            "generator RSS per connection (bytes)",
            thousands(opened.generator_rss / joined.max(1)),
        ),
    ];
    if let Some(deltas) = &opened.redis_join {
        rows.push((
            "Redis calls per join",
            redis_calls_line(deltas, opened.joined),
        ));
        let memory: i64 = deltas.iter().map(|d| d.memory).sum();
        rows.push((
            "Redis used_memory per connection (bytes)",
            (memory / opened.joined.max(1) as i64).to_string(),
        ));
    }
    if let Some(deltas) = &redis_leave {
        rows.push((
            "Redis calls per leave",
            redis_calls_line(deltas, opened.joined),
        ));
    }
    report::pairs(&format!("idle: {n} connections"), &rows);
    Ok(Value::Object(summary))
}
