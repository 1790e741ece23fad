//! `fanout`: S subscribers on one topic; broadcasts at a fixed rate through
//! the server API and/or a client's pushes; deliveries per second and
//! publish-to-receive latency (the publisher stamps each payload with its
//! send time; every subscriber reads it on arrival).

use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};

use super::{drain, latency_json, Env, Opened, Totals};
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
    let plan = Publish {
        topics: Topics::One(args.topic.clone()),
        event: args.event.clone(),
        rate: args.rate,
        duration: Duration::from_secs(args.duration_secs),
        payload_bytes: args.payload_bytes,
    };
    let mut outcome = Ok(());
    for via in vias {
        if let Err(error) = one(env, &mut fleet, &opened, args, &plan, via).await {
            outcome = Err(error);
            break;
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
    let published = match via {
        Via::Push => publish::via_push(&env.target, args.subscribers, plan).await?,
        _ => publish::via_api(&env.api, &env.app, &env.secret, plan).await?,
    };
    let expected = published.accepted * opened.joined as u64;
    let t = drain(fleet, expected).await?;
    let name = if via == Via::Push { "push" } else { "api" };
    let summary = summarize(
        env, opened, "fanout", name, &published, expected, &t, plan.rate,
    );
    let mut summary = summary;
    summary.insert("subscribers".into(), json!(args.subscribers));
    summary.insert("topic".into(), json!(args.topic));
    print_run(
        &format!("fanout via {name}: {} subscribers", opened.joined),
        &published,
        expected,
        &t,
    );
    report::result(&Value::Object(summary));
    Ok(())
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
