//! `switchboard` command line: `run` starts the switch, `check` validates a config.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use switchboard::config;
use switchboard::server::{self, RunArgs};

const DEFAULT_CONFIG: &str = "conf/switchboard.toml";

#[derive(Parser)]
#[command(name = "switchboard", version, about = "A SIP-native telephony switch")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the switch.
    Run {
        /// Config file.
        #[arg(short, long, value_name = "FILE", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// SIP address (UDP and TCP), replacing server.sip_listen; port 0 picks a free port.
        #[arg(long, value_name = "ADDR")]
        sip: Option<SocketAddr>,
        /// HTTP (REST) address, replacing server.http_listen; port 0 picks a free port.
        #[arg(long, value_name = "ADDR")]
        http: Option<SocketAddr>,
    },
    /// Validate a config file: prints `FILE: ok`, or `file:line:col: why` and exits 1.
    Check {
        /// Config file.
        #[arg(short, long, value_name = "FILE", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check { config } => check(config),
        Command::Run { config, sip, http } => run(config, sip, http),
    }
}

fn check(path: PathBuf) -> ExitCode {
    match config::load(&path) {
        Ok(_) => {
            println!("{}: ok", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn run(config_path: PathBuf, sip: Option<SocketAddr>, http: Option<SocketAddr>) -> ExitCode {
    // Load once here, before anything starts, so a bad file fails fast with its position
    // and so the runtime can be sized from it; the server loads its own live copy.
    let cfg = match config::load(&config_path) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };

    // Logs go to stderr so stdout stays free for what scripts read (bound addresses).
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let workers = match cfg.server.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("switchboard")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    drop(cfg);

    let args = RunArgs {
        config_path,
        sip,
        http,
    };
    match runtime.block_on(server::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole anyhow context chain on one line.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
