//! `switchboard-bench`: the load generator of issue 5. It speaks the Phoenix
//! Channels protocol itself (through `switchboard-protocol`'s codecs) and
//! runs the scenarios `idle`, `fanout`, `many-topics`, `webhook` and
//! `connect-storm` against one gateway node or several sharing Redis
//! (`--nodes`), plus `redis-pubsub` (Redis's pub/sub alone) and `backend`
//! (the fast mock app backend alone).
//!
//! Layout: `cli` parses; `scenarios` decide what to run and report;
//! `fleet` spreads connections over worker processes (the hidden `worker`
//! mode, `worker`), which talk to the parent through `ipc`; `client` is one
//! Phoenix connection; `publish` sends broadcasts at a fixed rate;
//! `server` starts or attaches to the gateway nodes; `redis` reads the
//! shared Redis's counters and deletes a run's keys; `backend` is the mock
//! app; `stats`, `report` and `sys` are the plumbing. See BENCHMARKS.md and
//! SCALING.md.

mod backend;
mod cli;
mod client;
mod fleet;
mod ipc;
mod publish;
mod redis;
mod report;
mod scenarios;
mod server;
mod stats;
mod sys;
mod worker;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    sys::raise_nofile_limit();
    let outcome = match cli.command {
        Command::Worker { spec } => worker::main(&spec),
        command => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|runtime| runtime.block_on(run(command))),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("switchboard-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Idle(args) => scenarios::idle::run(args).await,
        Command::Fanout(args) => scenarios::fanout::run(args).await,
        Command::ManyTopics(args) => scenarios::many_topics::run(args).await,
        Command::Webhook(args) => scenarios::webhook::run(args).await,
        Command::ConnectStorm(args) => scenarios::connect_storm::run(args).await,
        Command::RedisPubsub(args) => scenarios::redis_pubsub::run(args).await,
        Command::Backend(args) => run_backend(args).await,
        Command::Worker { .. } => unreachable!("handled before the runtime starts"),
    }
}

/// `backend`: serve the mock app until interrupted, printing how to point a
/// gateway at it.
async fn run_backend(args: cli::BackendArgs) -> anyhow::Result<()> {
    let backend = backend::start(&args.listen, server::schema(args.presence)).await?;
    let url = backend.url();
    println!("switchboard-bench backend listening on {url}");
    println!("app entry for a switchboard config:\n");
    println!("[[apps]]");
    println!("id = \"{}\"", server::BENCH_APP);
    println!("secret = \"{}\"", server::BENCH_SECRET);
    println!("auth_endpoint = \"{url}/auth\"");
    println!("schema_endpoint = \"{url}/schema\"");
    println!("message_endpoint = \"{url}/messages\"");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    tokio::signal::ctrl_c().await?;
    Ok(())
}
