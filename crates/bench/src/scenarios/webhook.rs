//! `webhook`: C clients push an event the gateway forwards to the app's
//! message webhook (the bench's backend, which answers a reply at once);
//! reports pushes per second and the push-to-reply round trip, which is the
//! latency the gateway adds with a zero-work backend (two WebSocket hops,
//! the webhook call, and the gateway in between). With the in-process
//! backend it also reports the inbound leg (client send → webhook arrival).

use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};

use super::{latency_json, totals, Env};
use crate::cli::WebhookArgs;
use crate::ipc::{Command, TopicPlan};
use crate::report::{self, thousands};
use crate::stats::Latency;

/// Connections opened at once per worker when `--concurrency` is not given.
const DEFAULT_CONCURRENCY: usize = 200;

/// Runs the scenario.
pub async fn run(args: WebhookArgs) -> Result<()> {
    let env = Env::start(&args.common).await?;
    if env.backend.is_none() {
        eprintln!(
            "bench: no in-process backend (--backend-listen): the server's message_endpoint \
             must point at a running `switchboard-bench backend`; the inbound leg is not timed"
        );
    }
    let outcome = one(&env, &args).await;
    env.finish().await;
    outcome
}

async fn one(env: &Env, args: &WebhookArgs) -> Result<()> {
    let mut spec = env.worker_spec(
        TopicPlan::Modulo {
            prefix: args.topic_prefix.clone(),
            modulo: args.clients,
        },
        DEFAULT_CONCURRENCY,
    );
    spec.push_event = args.event.clone();
    spec.payload_bytes = args.payload_bytes;
    let (mut fleet, opened) = env.open(&spec, args.clients).await?;
    let outcome = async {
        if let Some(backend) = &env.backend {
            backend.stats.reset();
        }
        let interval_us = if args.rate > 0.0 {
            (1e6 * opened.joined as f64 / args.rate) as u64
        } else {
            0
        };
        let duration = Duration::from_secs(args.duration_secs);
        let reports = fleet
            .push(Command::Push {
                duration_ms: duration.as_millis() as u64,
                interval_us,
                in_flight: args.in_flight,
            })
            .await?;
        let t = totals(&reports)?;
        let (inbound, backend_calls) = match &env.backend {
            Some(backend) => {
                let hist = backend
                    .stats
                    .inbound
                    .lock()
                    .map(|h| Latency::of(&h))
                    .unwrap_or_default();
                (
                    Some(hist),
                    Some(backend.stats.messages.load(Ordering::Relaxed)),
                )
            }
            None => (None, None),
        };
        let secs = duration.as_secs_f64();
        let per_sec = t.replies_ok as f64 / secs;

        let mut summary = env.summary_base("webhook", &opened);
        summary.insert("clients".into(), json!(args.clients));
        summary.insert("in_flight".into(), json!(args.in_flight));
        summary.insert("rate".into(), json!(args.rate));
        summary.insert("duration_secs".into(), json!(args.duration_secs));
        summary.insert("pushes".into(), json!(t.pushes));
        summary.insert("replies_ok".into(), json!(t.replies_ok));
        summary.insert("replies_error".into(), json!(t.replies_error));
        summary.insert("unanswered".into(), json!(t.unanswered));
        summary.insert("backend_calls".into(), json!(backend_calls));
        summary.insert("pushes_per_sec".into(), json!(report::round(per_sec, 1)));
        latency_json(&mut summary, "rtt", &t.reply_latency);
        if let Some(inbound) = &inbound {
            latency_json(&mut summary, "inbound", inbound);
        }
        summary.insert("disconnected".into(), json!(t.disconnected));
        if let Some(error) = &t.first_error {
            summary.insert("first_error".into(), json!(error));
        }

        let lat = |l: &Latency| format!("{:.2} / {:.2} / {:.2}", l.p50_ms, l.p99_ms, l.max_ms);
        report::pairs(
            &format!(
                "webhook: {} clients, {} in flight each, {}",
                opened.joined,
                args.in_flight,
                if args.rate > 0.0 {
                    format!("{} pushes/s", args.rate)
                } else {
                    "closed loop".to_owned()
                }
            ),
            &[
                (
                    "pushes (ok / error / unanswered)",
                    format!(
                        "{} ({} / {} / {})",
                        thousands(t.pushes),
                        thousands(t.replies_ok),
                        t.replies_error,
                        t.unanswered
                    ),
                ),
                (
                    "backend message calls",
                    backend_calls.map_or_else(|| "-".to_owned(), thousands),
                ),
                ("pushes per second (ok)", thousands(per_sec as u64)),
                ("push → reply p50 / p99 / max (ms)", lat(&t.reply_latency)),
                (
                    "push → webhook p50 / p99 / max (ms)",
                    inbound.as_ref().map(lat).unwrap_or_else(|| "-".to_owned()),
                ),
                ("connections lost", t.disconnected.to_string()),
                (
                    "first error",
                    t.first_error.clone().unwrap_or_else(|| "-".to_owned()),
                ),
            ],
        );
        report::result(&Value::Object(summary));
        anyhow::Ok(())
    }
    .await;
    fleet.stop().await;
    outcome
}
