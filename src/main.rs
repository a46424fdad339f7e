//! `switchboard` command line: `run` starts the switch, `check` validates a config.

use std::ffi::OsStr;
use std::io::IsTerminal as _;
use std::net::{IpAddr, SocketAddr};
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
        /// This node's name in a cluster, replacing cluster.node_id (so three nodes can
        /// share one config file).
        #[arg(long, value_name = "ID", value_parser = node_id)]
        node: Option<String>,
        /// SIP over TLS address, replacing server.sip_tls_listen.
        #[arg(long, value_name = "ADDR")]
        sips: Option<SocketAddr>,
        /// SIP over WebSocket address, replacing server.ws_listen.
        #[arg(long, value_name = "ADDR")]
        ws: Option<SocketAddr>,
        /// SIP over secure WebSocket address, replacing server.wss_listen.
        #[arg(long, value_name = "ADDR")]
        wss: Option<SocketAddr>,
    },
    /// Write a self-signed certificate and key for development TLS and WSS:
    /// DIR/cert.pem and DIR/key.pem (the key readable by its owner only).
    Cert {
        /// Host name the certificate is for (localhost and 127.0.0.1 are added).
        #[arg(long, value_name = "NAME")]
        host: String,
        /// Directory to write them to (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Validate a config file: prints `FILE: ok`, or `file:line:col: why` and exits 1.
    Check {
        /// Config file.
        #[arg(short, long, value_name = "FILE", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
    },
    /// Print a signed Access Token (Twilio's shape) for a client of an account, signed with
    /// that account's first API key.
    Token {
        /// Config file.
        #[arg(short, long, value_name = "FILE", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Client identity (the registration AOR is sip:<identity>@<realm>).
        #[arg(long, value_name = "NAME")]
        identity: String,
        /// Account sid; default: the first configured account.
        #[arg(long, value_name = "SID")]
        account: Option<String>,
        /// Lifetime in seconds.
        #[arg(long, value_name = "SECS", default_value_t = 3600)]
        ttl: u64,
        /// Allow the client to register for incoming calls.
        #[arg(long)]
        incoming: bool,
        /// Allow outgoing calls through this application of the account.
        #[arg(long, value_name = "APP_SID")]
        outgoing: Option<String>,
    },
    /// Dry-run the dial plan for an INVITE from IP to NUMBER: prints the decision and why;
    /// exits 0 when the call would be accepted, 1 when refused (403/404).
    Route {
        /// Config file.
        #[arg(short, long, value_name = "FILE", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Source address of the INVITE (IPv4 or IPv6).
        #[arg(long, value_name = "IP")]
        from: IpAddr,
        /// Called number, matched exactly (E.164 numbers are written with their leading +).
        #[arg(long, value_name = "NUMBER")]
        to: String,
        /// For a number that is not ours: show the trunk this account's outbound call to
        /// it would take (routes belong to accounts). Default: the account of the trunk
        /// `--from` belongs to.
        #[arg(long, value_name = "SID")]
        account: Option<String>,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Check { config } => check(config),
        Command::Token {
            config,
            identity,
            account,
            ttl,
            incoming,
            outgoing,
        } => token(
            config,
            &identity,
            account.as_deref(),
            ttl,
            incoming,
            outgoing.as_deref(),
        ),
        Command::Run {
            config,
            sip,
            http,
            node,
            sips,
            ws,
            wss,
        } => run(RunArgs {
            config_path: config,
            sip,
            http,
            node,
            sips,
            ws,
            wss,
        }),
        Command::Cert { host, out } => cert(&host, &out),
        Command::Route {
            config,
            from,
            to,
            account,
        } => route(config, from, &to, account.as_deref()),
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

/// `switchboard route`: the dial plan's decision for one call, on stdout; config errors
/// go to stderr as `file:line:col: why` with exit status 1, as for `check`.
fn route(path: PathBuf, from: IpAddr, to: &str, account: Option<&str>) -> ExitCode {
    let cfg = match config::load(&path) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let plan = config::dialplan::DialPlan::new(&cfg);
    let (code, text) = config::dialplan::explain(&plan, from, to, account);
    print!("{text}");
    ExitCode::from(code)
}

/// `--node`: the same characters as `[cluster] node_id`.
fn node_id(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(s.to_string())
    } else {
        Err("letters, digits, `-`, `_` or `.`".into())
    }
}

fn run(args: RunArgs) -> ExitCode {
    let config_path = args.config_path.clone();
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
    let ansi = colour_logs(
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();

    // Every call leg holds two RTP sockets and every TCP/TLS/WS client or HTTP connection
    // one descriptor: the usual soft limit of 1,024 ran out long before the hard one (then
    // REST, SIP over TCP and new calls all stopped). Raise the soft limit to the hard one.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => tracing::info!(nofile = n, "open file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open file limit"),
    }

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

    match runtime.block_on(server::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole anyhow context chain on one line.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether logs carry ANSI colour: only for a person at a terminal, never in a file or a
/// pipe, and not when `NO_COLOR` is set to anything but the empty string (no-color.org).
fn colour_logs(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// `switchboard token`: mints an Access Token with the account's first API key and prints it
/// on one line; problems go to stderr with exit status 1.
fn token(
    config_path: PathBuf,
    identity: &str,
    account: Option<&str>,
    ttl: u64,
    incoming: bool,
    outgoing: Option<&str>,
) -> ExitCode {
    use switchboard::registrar::token::{TokenError, mint_access_token};

    let fail = |why: String| {
        eprintln!("error: {why}");
        ExitCode::FAILURE
    };
    let cfg = match config::load(&config_path) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let file = config_path.display();
    let chosen = match account {
        Some(sid) => cfg.accounts.iter().find(|a| a.sid == sid),
        None => cfg.accounts.first(),
    };
    let Some(acct) = chosen else {
        return fail(match account {
            Some(sid) => format!("{file}: no account `{sid}` is configured"),
            None => format!("{file}: no [[accounts]] are configured"),
        });
    };
    let Some(key) = acct.api_keys.first() else {
        return fail(format!(
            "{file}: account {} has no [[accounts.api_keys]] to sign with",
            acct.sid
        ));
    };
    if let Some(app) = outgoing
        && !cfg
            .applications
            .iter()
            .any(|a| a.sid == app && a.account == acct.sid)
    {
        return fail(format!(
            "{file}: `{app}` is not an application of account {}",
            acct.sid
        ));
    }
    if ttl == 0 {
        return fail("--ttl must be at least 1 second".to_owned());
    }
    let max = cfg.registrar.max_token_lifetime_secs;
    if ttl > max {
        return fail(format!(
            "--ttl {ttl} is longer than [registrar] max_token_lifetime_secs ({max}): the switch would refuse the token"
        ));
    }
    match mint_access_token(
        acct,
        key,
        identity,
        ttl,
        incoming,
        outgoing,
        switchboard::time::unix_now(),
    ) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(TokenError::NoIdentity) => fail(format!(
            "`{identity}` cannot be a client identity: use 1 to 256 visible ASCII characters, \
             none of \" < > \\"
        )),
        Err(e) => fail(e.to_string()),
    }
}

/// `switchboard cert`: a development certificate and key.
fn cert(host: &str, out: &std::path::Path) -> ExitCode {
    match server::write_dev_cert(host, out) {
        Ok((cert, key)) => {
            println!("{}", cert.display());
            println!("{}", key.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cert: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_at_a_terminal_without_no_color() {
        assert!(colour_logs(true, None));
        assert!(colour_logs(true, Some(OsStr::new(""))));
        assert!(!colour_logs(true, Some(OsStr::new("1"))));
        assert!(!colour_logs(false, None));
        assert!(!colour_logs(false, Some(OsStr::new("1"))));
    }
}
