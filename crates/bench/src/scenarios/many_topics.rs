//! `many-topics`: T topics with k subscribers each (each connection joins
//! `--topics-per-connection` of them, so T·k/m connections), and broadcasts
//! through the server API at a fixed total rate, each to a pseudo-random
//! topic. Reports deliveries per second and publish-to-receive latency.

use std::time::Duration;

use anyhow::{bail, Result};
use serde_json::{json, Value};

use super::fanout::{insert_costs, print_costs, print_run, summarize};
use super::{drain, Env};
use crate::cli::ManyTopicsArgs;
use crate::ipc::{Command, TopicPlan};
use crate::publish::{self, Publish, Topics};
use crate::report;

/// Connections opened at once per worker when `--concurrency` is not given.
const DEFAULT_CONCURRENCY: usize = 200;

/// Runs the scenario.
pub async fn run(args: ManyTopicsArgs) -> Result<()> {
    if args.topics_per_connection == 0 || args.topics_per_connection > args.topics {
        bail!("--topics-per-connection must be between 1 and --topics");
    }
    let env = Env::start(&args.common).await?;
    let outcome = one(&env, &args).await;
    env.finish().await;
    outcome
}

async fn one(env: &Env, args: &ManyTopicsArgs) -> Result<()> {
    let subscriptions = args.topics * args.subscribers_per_topic;
    let connections = subscriptions.div_ceil(args.topics_per_connection);
    let mut spec = env.worker_spec(
        TopicPlan::Spread {
            prefix: args.topic_prefix.clone(),
            topics: args.topics,
            per_connection: args.topics_per_connection,
        },
        DEFAULT_CONCURRENCY,
    );
    spec.timed_event = args.event.clone();
    let (mut fleet, opened) = env.open(&spec, connections).await?;
    let outcome = async {
        fleet.send(&Command::Record).await?;
        let plan = Publish {
            topics: Topics::Random {
                prefix: args.topic_prefix.clone(),
                count: args.topics,
            },
            event: args.event.clone(),
            rate: args.rate,
            duration: Duration::from_secs(args.duration_secs),
            payload_bytes: args.payload_bytes,
        };
        let meter = env.meter(Some(&fleet)).await;
        let published = publish::via_api(&env.api, &env.app, &env.secret, &plan).await?;
        // Exact when every connection joined and T·k divides evenly by m.
        let expected = published.accepted * args.subscribers_per_topic as u64;
        let t = drain(&mut fleet, expected).await?;
        let metered = env.metered(&meter, Some(&fleet)).await;
        let mut summary = summarize(
            env,
            &opened,
            "many-topics",
            "api",
            &published,
            expected,
            &t,
            args.rate,
        );
        summary.insert("topics".into(), json!(args.topics));
        summary.insert(
            "subscribers_per_topic".into(),
            json!(args.subscribers_per_topic),
        );
        summary.insert("connections".into(), json!(connections));
        summary.insert(
            "topics_per_connection".into(),
            json!(args.topics_per_connection),
        );
        insert_costs(&mut summary, &metered, t.received, published.accepted);
        print_run(
            &format!(
                "many-topics: {} topics × {} subscribers over {} connections",
                args.topics, args.subscribers_per_topic, opened.joined
            ),
            &published,
            expected,
            &t,
        );
        print_costs(&opened, &t, &metered, published.accepted);
        report::result(&Value::Object(summary));
        anyhow::Ok(())
    }
    .await;
    fleet.stop().await;
    outcome
}
