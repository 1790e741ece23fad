//! The `switchboard` binary: `serve` and `check-config`. Parses arguments,
//! loads the config, binds the listener and hands over to
//! [`switchboard_gateway::run`]; errors become one readable line and a
//! non-zero exit.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use switchboard_gateway::config::Config;
use switchboard_gateway::telemetry::init_logging;
use switchboard_gateway::Gateway;

/// jemalloc instead of glibc's allocator: measured here, it holds about a
/// third less memory per idle connection (glibc's per-thread arenas keep
/// freed handshake memory fragmented). Its options (a background thread
/// returning freed pages after about a second) are compiled in from
/// `.cargo/config.toml`. See BENCHMARKS.md.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "A real-time gateway speaking the Phoenix Channels protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the embedded demo app when no config is given).
    Serve {
        /// TOML config file.
        #[arg(long, env = "SWITCHBOARD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Validate a config file and exit.
    CheckConfig {
        /// TOML config file.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => match Config::load(&file) {
            Ok(config) => {
                println!("{}: ok ({} app(s))", file.display(), config.apps.len());
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("switchboard: {error}");
                ExitCode::FAILURE
            }
        },
        Command::Serve { config } => {
            let config = match config {
                Some(path) => match Config::load(&path) {
                    Ok(config) => config,
                    Err(error) => {
                        eprintln!("switchboard: {error}");
                        return ExitCode::FAILURE;
                    }
                },
                None => Config::demo(),
            };
            let demo = config_is_demo(&config);
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(runtime) => runtime,
                Err(error) => {
                    eprintln!("switchboard: cannot start the runtime: {error}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(serve(config, demo)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("switchboard: {error}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// True for the embedded default (no config file), whose banner tells a new
/// user how to connect.
fn config_is_demo(config: &Config) -> bool {
    *config == Config::demo()
}

async fn serve(config: Config, demo: bool) -> anyhow::Result<()> {
    init_logging();
    let listen = config.server.listen.clone();
    let listener = bind(&listen).map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    let (http, ws) = match config.server.tls {
        Some(_) => ("https", "wss"),
        None => ("http", "ws"),
    };
    let gateway = Gateway::start(config).map_err(anyhow::Error::msg)?;
    println!("switchboard listening on {http}://{addr}");
    if demo {
        println!(
            "demo app: connect phoenix.js to {ws}://{addr}/socket with params {{app: \"demo\", token: \"alice\"}} and join \"room:lobby\""
        );
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    switchboard_gateway::run(listener, gateway, shutdown_signal()).await?;
    Ok(())
}

/// Binds with a listen queue of 4096 (the kernel caps it at somaxconn):
/// tokio's default of 128 overflows under a connect storm, and the kernel
/// then drops connection attempts that clients retry a second later.
fn bind(listen: &str) -> std::io::Result<tokio::net::TcpListener> {
    let addr: std::net::SocketAddr = listen
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{e}")))?;
    let socket = match addr {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutdown signal received");
}
