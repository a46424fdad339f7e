//! `switchboard run`: binds the listeners, prints the bound addresses, starts the engine
//! shards, the TCP acceptors and the HTTP API, and handles signals (SIGHUP reloads the
//! config; SIGTERM and SIGINT stop).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::config::{Config, Live};
use crate::engine::{Shard, ShardConfig};
use crate::sip::msg::Limits;
use crate::sip::transaction::Timers;
use crate::transport::tcp::TcpSettings;
use crate::transport::{Connections, tcp, udp};

/// What `switchboard run` passes to the server.
#[derive(Debug, Clone)]
pub struct RunArgs {
    /// The config file.
    pub config_path: PathBuf,
    /// `--sip`: overrides `server.sip_listen` (UDP and TCP on this one address).
    pub sip: Option<SocketAddr>,
    /// `--http`: overrides `server.http_listen`.
    pub http: Option<SocketAddr>,
}

/// Stream messages a shard may have queued before a TCP reader waits.
const SHARD_QUEUE: usize = 4096;

/// Runs the switch until SIGTERM or SIGINT.
pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let live = Arc::new(Live::load(&args.config_path)?);
    let cfg = live.current();
    let sip_addrs = match args.sip {
        Some(a) => vec![a],
        None => cfg.server.sip_listen.clone(),
    };
    let shards_per_addr = match cfg.server.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let shard_config = shard_config(&cfg);
    let tcp_settings = TcpSettings {
        idle_timeout: Duration::from_secs(cfg.server.tcp.idle_timeout_secs),
        max_connections: cfg.server.tcp.max_connections,
        max_connections_per_ip: cfg.server.tcp.max_connections_per_ip,
        limits: shard_config.limits,
    };
    let conns = Arc::new(Connections::default());
    let mut out = std::io::stdout().lock();

    for want in sip_addrs {
        let (first_udp, listener) = bind_pair(want)?;
        let bound = first_udp.local_addr()?;
        writeln!(out, "listening sip/udp {bound}")?;
        writeln!(out, "listening sip/tcp {}", listener.local_addr()?)?;
        let mut senders = Vec::with_capacity(shards_per_addr);
        let mut udp_socket = Some(first_udp);
        for _ in 0..shards_per_addr {
            let socket = match udp_socket.take() {
                Some(s) => s,
                None => udp::bind(bound)
                    .with_context(|| format!("binding another UDP socket on {bound}"))?,
            };
            let (tx, rx) = mpsc::channel(SHARD_QUEUE);
            senders.push(tx);
            tokio::spawn(Shard::new(socket, conns.clone(), rx, shard_config.clone()).run());
        }
        tokio::spawn(tcp::accept_loop(
            listener,
            senders,
            conns.clone(),
            tcp_settings,
        ));
    }

    let http_addr = args.http.unwrap_or(cfg.server.http_listen);
    let http = tokio::net::TcpListener::bind(http_addr)
        .await
        .with_context(|| format!("binding HTTP on {http_addr}"))?;
    writeln!(out, "listening http {}", http.local_addr()?)?;
    tokio::spawn(crate::api::serve(http, live.clone()));
    writeln!(out, "ready")?;
    out.flush()?;
    drop(out);
    tracing::info!(shards_per_address = shards_per_addr, "switchboard ready");

    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = hup.recv() => match live.reload() {
                // Listen addresses, workers and timers are read at start; the dial plan
                // and accounts are read per request from the live config.
                Ok(_) => tracing::info!(path = %live.path().display(), "config reloaded"),
                Err(e) => tracing::warn!(error = %e, "config reload failed; keeping the old config"),
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    tracing::info!("switchboard stopping");
    Ok(())
}

fn shard_config(cfg: &Config) -> ShardConfig {
    let t = &cfg.server.timers;
    ShardConfig {
        timers: Timers {
            t1: Duration::from_millis(t.t1_ms),
            t2: Duration::from_millis(t.t2_ms),
            t4: Duration::from_millis(t.t4_ms),
        },
        limits: Limits {
            max_message_bytes: cfg.server.limits.max_message_bytes,
            ..Limits::default()
        },
        server_name: cfg.server.user_agent.as_str().into(),
    }
}

/// Binds UDP and TCP on the same address. With port 0 the kernel picks the UDP port and
/// TCP takes the same one; if that TCP port is busy we try again with another.
fn bind_pair(want: SocketAddr) -> anyhow::Result<(tokio::net::UdpSocket, tokio::net::TcpListener)> {
    let attempts = if want.port() == 0 { 16 } else { 1 };
    let mut last_err = None;
    for _ in 0..attempts {
        let udp = udp::bind(want).with_context(|| format!("binding UDP on {want}"))?;
        let addr = udp.local_addr()?;
        match tcp::bind(addr) {
            Ok(l) => return Ok((udp, l)),
            Err(e) => last_err = Some(e),
        }
    }
    let e = last_err.map_or_else(|| anyhow::anyhow!("no attempt made"), anyhow::Error::from);
    Err(e.context(format!("binding TCP on {want}")))
}
