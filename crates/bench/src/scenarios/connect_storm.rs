//! `connect-storm`: N connections opened all at once (at most
//! `--concurrency` in progress per worker), each authenticated by the app's
//! auth webhook (the bench's backend with `--server-cmd`) and joined to one
//! topic; reports the time from the start signal until every connection has
//! joined, and each connection's connect + join latency.

use std::sync::atomic::Ordering;

use anyhow::Result;
use serde_json::{json, Value};

use super::{latency_json, Env};
use crate::cli::ConnectStormArgs;
use crate::ipc::TopicPlan;
use crate::report::{self, thousands};

/// Connections in progress at once per worker when `--concurrency` is not
/// given: high enough to storm, low enough not to overflow the listen
/// backlog (which would turn into 1 s SYN retransmits).
const DEFAULT_CONCURRENCY: usize = 500;

/// Runs the scenario.
pub async fn run(args: ConnectStormArgs) -> Result<()> {
    let env = Env::start(&args.common).await?;
    let outcome = one(&env, &args).await;
    env.finish().await;
    outcome
}

async fn one(env: &Env, args: &ConnectStormArgs) -> Result<()> {
    if let Some(backend) = &env.backend {
        backend.stats.reset();
    }
    let spec = env.worker_spec(
        TopicPlan::Modulo {
            prefix: args.topic_prefix.clone(),
            modulo: args.topics,
        },
        DEFAULT_CONCURRENCY,
    );
    let (fleet, opened) = env.open(&spec, args.connections).await?;
    fleet.stop().await;
    let auth_calls = env
        .backend
        .as_ref()
        .map(|b| b.stats.auth.load(Ordering::Relaxed));
    let secs = opened.open_secs();
    let per_sec = if secs > 0.0 {
        opened.joined as f64 / secs
    } else {
        0.0
    };

    let mut summary = env.summary_base("connect-storm", &opened);
    summary.insert("connections".into(), json!(args.connections));
    summary.insert("concurrency".into(), json!(spec.concurrency));
    summary.insert(
        "time_to_all_joined_ms".into(),
        json!(report::round(secs * 1000.0, 1)),
    );
    summary.insert("connects_per_sec".into(), json!(report::round(per_sec, 1)));
    latency_json(&mut summary, "connect", &opened.connect);
    summary.insert("auth_calls".into(), json!(auth_calls));
    if let Some(error) = &opened.first_error {
        summary.insert("first_error".into(), json!(error));
    }

    report::pairs(
        &format!("connect-storm: {} connections", args.connections),
        &[
            (
                "joined / failed",
                format!("{} / {}", thousands(opened.joined as u64), opened.failed),
            ),
            (
                "worker processes × concurrency",
                format!("{} × {}", opened.processes, spec.concurrency),
            ),
            ("time to all joined (ms)", format!("{:.1}", secs * 1000.0)),
            ("connections per second", thousands(per_sec as u64)),
            (
                "connect + join p50 / p99 / max (ms)",
                format!(
                    "{:.2} / {:.2} / {:.2}",
                    opened.connect.p50_ms, opened.connect.p99_ms, opened.connect.max_ms
                ),
            ),
            (
                "auth webhook calls",
                auth_calls.map_or_else(|| "-".to_owned(), thousands),
            ),
            (
                "first error",
                opened.first_error.clone().unwrap_or_else(|| "-".to_owned()),
            ),
        ],
    );
    report::result(&Value::Object(summary));
    Ok(())
}
