//! `switchboard run`: binds the listeners, prints the bound addresses, starts the SIP
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

use crate::call::core::leg::Local;
use crate::call::router::CallRouter;
use crate::call::service::{CallDeps, CallService, ServiceOriginator};
use crate::config::StoreKind;
use crate::config::{Config, Live};
use crate::metrics::Metrics;
use crate::registrar::location::{Edge, LocationStore, MemoryStore, RedisStore};
use crate::registrar::presence::Presence;
use crate::registrar::register::Registrar;
use crate::shard::{Shard, ShardConfig};
use crate::sip::msg::Limits;
use crate::sip::transaction::Timers;
use crate::transport::sender::SipSender;
use crate::transport::tcp::TcpSettings;
use crate::transport::udp::UdpReceiver;
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
    /// `--node`: overrides `cluster.node_id`.
    pub node: Option<String>,
    /// `--sips`, `--ws`, `--wss`: override `server.sip_tls_listen`, `ws_listen`,
    /// `wss_listen` (one address each).
    pub sips: Option<SocketAddr>,
    pub ws: Option<SocketAddr>,
    pub wss: Option<SocketAddr>,
}

/// How often expired bindings are swept out (presence turns offline within this).
const SWEEP_EVERY: Duration = Duration::from_secs(1);

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
    // One store, presence table, metrics set and registrar for the whole process: the
    // shards write them, the REST API and the sweeper read them.
    let node_id = args
        .node
        .clone()
        .unwrap_or_else(|| cfg.cluster.node_id.clone());
    let shared = Shared::new(&cfg, &node_id)?;
    let shard_config = shard_config(&cfg, &shared, shards_per_addr);
    let limits = Limits {
        max_message_bytes: cfg.server.limits.max_message_bytes,
        ..Limits::default()
    };
    let tcp_settings = TcpSettings {
        idle_timeout: Duration::from_secs(cfg.server.tcp.idle_timeout_secs),
        max_connections: cfg.server.tcp.max_connections,
        max_connections_per_ip: cfg.server.tcp.max_connections_per_ip,
        limits,
    };
    // A binding registered over a stream connection ends when the connection closes (RFC
    // 5626 §5.3): the transport names each closed connection, the registrar removes what
    // was registered over it. The probe covers a REGISTER stored after its connection
    // closed.
    let (closed_tx, mut closed_rx) = mpsc::unbounded_channel();
    let conns = Arc::new(Connections::new(shared.metrics.clone()).notifying(closed_tx));
    let probe = conns.clone();
    shared
        .registrar
        .set_flow_probe(move |conn| probe.is_open(conn));
    // Tasks the switch cannot work without. None of them ends on its own; if one does (a
    // panic, a listener failure), the process exits non-zero so a supervisor restarts it,
    // rather than running on with a dead shard that TCP connections are still handed to.
    let mut essential = tokio::task::JoinSet::new();
    let mut out = std::io::stdout().lock();

    // Bind everything first: the call service sends from the first UDP socket, and every
    // shard hands it new INVITEs and the messages of its calls.
    let mut bound_sets = Vec::new();
    for want in sip_addrs {
        let (first_udp, listener) = bind_pair(want)?;
        let bound = first_udp.local_addr()?;
        writeln!(out, "listening sip/udp {bound}")?;
        writeln!(out, "listening sip/tcp {}", listener.local_addr()?)?;
        let mut sockets = vec![Arc::new(first_udp)];
        for _ in 1..shards_per_addr {
            let s = udp::bind(bound)
                .with_context(|| format!("binding another UDP socket on {bound}"))?;
            sockets.push(Arc::new(s));
        }
        bound_sets.push((bound, sockets, listener));
    }
    let webhooks = Arc::new(
        crate::webhook::WebhookClient::new(&cfg.webhooks).context("building the webhook client")?,
    );
    let call_registry = Arc::new(
        crate::call::registry::CallRegistry::from_config(&cfg).context("opening the CDR file")?,
    );
    let conferences = Arc::new(crate::call::conferences::Conferences::default());
    let queues = Arc::new(crate::call::queues::Queues::default());
    // Finished recordings, reloaded from their sidecars; `Record` adds to them.
    let recordings = crate::call::recordings::Recordings::open(&cfg.media.recordings_dir)
        .with_context(|| {
            format!(
                "opening the recordings directory {}",
                cfg.media.recordings_dir.display()
            )
        })?;
    let (first_bound, first_socket) = (bound_sets[0].0, bound_sets[0].1[0].clone());
    if let Some(redis) = &shared.redis {
        // Other nodes reach this node's clients through its advertised address.
        let addr = match &cfg.cluster.advertise {
            Some(a) => tokio::net::lookup_host(a.as_str())
                .await
                .with_context(|| format!("resolving [cluster] advertise {a}"))?
                .next()
                .with_context(|| format!("[cluster] advertise {a} resolves to nothing"))?,
            None => first_bound,
        };
        shared.registrar.set_edge(Edge {
            node: node_id.as_str().into(),
            addr,
        });
        writeln!(out, "cluster node {node_id} at {addr}")?;
        essential.spawn(redis.clone().run_feed(shared.presence.clone()));
    }
    // The media plane binds RTP where SIP listens (the first address) and advertises the
    // public address when one is configured.
    let media = crate::media::MediaEngine::start(
        cfg.media.threads,
        cfg.server.rtp_range,
        first_bound.ip(),
        std::time::Duration::from_secs(cfg.media.timeout_secs),
    )
    .context("starting the media relay")?;
    let media_ip = crate::call::core::sdp::advertised_address(
        cfg.server.public_address.as_deref(),
        first_bound.ip(),
    );
    let call_service = Arc::new(CallService::new(CallDeps {
        live: live.clone(),
        registry: call_registry.clone(),
        router: Arc::new(CallRouter::new()),
        webhooks: webhooks.clone(),
        store: shared.store.clone(),
        presence: shared.presence.clone(),
        registrar: shared.registrar.clone(),
        timers: shard_config.timers,
        server_name: shard_config.server_name.clone(),
        local: Local::new(cfg.server.public_address.as_deref(), first_bound),
        sender: SipSender {
            udp: first_socket,
            conns: conns.clone(),
        },
        media: crate::call::service::MediaParts {
            engine: media.clone(),
            ip: media_ip,
            recordings: recordings.clone(),
            conferences: conferences.clone(),
            queues: queues.clone(),
            audio: crate::call::audio::AudioCache::new(
                cfg.media.play_cache_bytes,
                cfg.media.max_play_bytes,
                cfg.media.sounds_dir.clone(),
            ),
        },
    }));
    let originator: Arc<dyn crate::call::Originator> =
        Arc::new(ServiceOriginator(call_service.clone()));
    let shard_config = ShardConfig {
        calls: Some(call_service),
        ..shard_config
    };
    // Stream listeners beyond TCP hand their connections to the first address's shards.
    let mut stream_shards: Vec<mpsc::Sender<crate::transport::Inbound>> = Vec::new();
    for (_, sockets, listener) in bound_sets {
        // Every shard of the set can reach every other: datagrams go on to the shard
        // their Call-ID hashes to.
        let (senders, receivers): (Vec<_>, Vec<_>) =
            sockets.iter().map(|_| mpsc::channel(SHARD_QUEUE)).unzip();
        let siblings: Arc<[_]> = senders.clone().into();
        for (index, (socket, rx)) in sockets.into_iter().zip(receivers).enumerate() {
            let receiver = UdpReceiver::new(socket.clone(), limits);
            let sender = SipSender {
                udp: socket,
                conns: conns.clone(),
            };
            let shard = Shard::new(
                (index, siblings.clone()),
                receiver,
                sender,
                rx,
                shard_config.clone(),
            );
            essential.spawn(shard.run());
        }
        if stream_shards.is_empty() {
            stream_shards = senders.clone();
        }
        essential.spawn(tcp::accept_loop(
            listener,
            senders,
            conns.clone(),
            tcp_settings,
            None,
        ));
    }
    let pick = |flag: Option<SocketAddr>, listed: &[SocketAddr]| match flag {
        Some(a) => vec![a],
        None => listed.to_vec(),
    };
    let tls_addrs = pick(args.sips, &cfg.server.sip_tls_listen);
    let ws_addrs = pick(args.ws, &cfg.server.ws_listen);
    let wss_addrs = pick(args.wss, &cfg.server.wss_listen);
    let certs = match (&cfg.server.tls_cert, &cfg.server.tls_key) {
        (Some(cert), Some(key)) => Some(
            crate::transport::tls::TlsCerts::open(cert, key)
                .map_err(|e| anyhow::anyhow!("{e}"))
                .context("loading [server] tls_cert and tls_key")?,
        ),
        _ if tls_addrs.is_empty() && wss_addrs.is_empty() => None,
        _ => anyhow::bail!("TLS and WSS listeners need [server] tls_cert and tls_key"),
    };
    let acceptor = match &certs {
        Some(c) => Some(c.acceptor().map_err(|e| anyhow::anyhow!("{e}"))?),
        None => None,
    };
    let policy = crate::transport::ws::WsPolicy {
        origins: cfg.server.ws_origins.clone().into(),
    };
    for (addrs, kind) in [
        (&tls_addrs, "sip/tls"),
        (&ws_addrs, "sip/ws"),
        (&wss_addrs, "sip/wss"),
    ] {
        for &want in addrs {
            let listener = tcp::bind(want).with_context(|| format!("binding {kind} on {want}"))?;
            writeln!(out, "listening {kind} {}", listener.local_addr()?)?;
            let (shards, conns) = (stream_shards.clone(), conns.clone());
            match kind {
                "sip/tls" => essential.spawn(tcp::accept_loop(
                    listener,
                    shards,
                    conns,
                    tcp_settings,
                    acceptor.clone(),
                )),
                _ => essential.spawn(crate::transport::ws::accept_loop(
                    listener,
                    shards,
                    conns,
                    tcp_settings,
                    if kind == "sip/wss" {
                        acceptor.clone()
                    } else {
                        None
                    },
                    policy.clone(),
                )),
            };
        }
    }

    let http_addr = args.http.unwrap_or(cfg.server.http_listen);
    let http = tokio::net::TcpListener::bind(http_addr)
        .await
        .with_context(|| format!("binding HTTP on {http_addr}"))?;
    writeln!(out, "listening http {}", http.local_addr()?)?;
    // `RecordingUrl`s point at this API.
    recordings.set_base_url(crate::call::recordings::api_base_url(
        http.local_addr()?,
        cfg.server.public_address.as_deref(),
    ));
    let api_state = Arc::new(crate::api::ApiState {
        live: live.clone(),
        store: shared.store.clone(),
        presence: shared.presence.clone(),
        metrics: shared.metrics.clone(),
        calls: call_registry.clone(),
        recordings,
        conferences,
        queues,
        media: Some(media),
        originator: Some(originator),
        guard: shared.registrar.guard().clone(),
        cluster: shared
            .redis
            .clone()
            .map(crate::api::cluster::ApiCluster::new),
    });
    if let Some(redis) = &shared.redis {
        // Other nodes' REST reach this node's calls here: the bound address, or the
        // advertised host where it is bound to every interface.
        let mut at = http.local_addr()?;
        if at.ip().is_unspecified()
            && let Some(edge) = shared.registrar.edge()
        {
            at.set_ip(edge.addr.ip());
        }
        tokio::spawn(redis.clone().run_announce(at));
    }
    essential.spawn(async move {
        if let Err(e) = crate::api::serve(http, api_state).await {
            tracing::error!(error = %e, "HTTP API stopped");
        }
    });
    // Accounts with a presence_callback URL learn when their clients come and go.
    crate::webhook::presence_callback::spawn(&shared.presence, live.clone(), webhooks);
    // Bindings lapse on their own (a token's expiry ends its registration): sweep them out
    // and let presence go offline.
    essential.spawn(crate::registrar::presence::run_sweeper(
        shared.presence.clone(),
        shared.store.clone(),
        SWEEP_EVERY,
        crate::time::unix_now,
    ));
    // Each close in its own task: one waiting on the shared store holds up no other.
    let registrar = shared.registrar.clone();
    essential.spawn(async move {
        while let Some(conn) = closed_rx.recv().await {
            let registrar = registrar.clone();
            tokio::spawn(async move {
                registrar
                    .connection_closed(conn, crate::time::unix_now())
                    .await
            });
        }
    });
    // Handlers go in before `ready`: a SIGHUP that arrives earlier would otherwise take the
    // default action and end the process.
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    writeln!(out, "ready")?;
    out.flush()?;
    drop(out);
    tracing::info!(shards_per_address = shards_per_addr, "switchboard ready");
    loop {
        tokio::select! {
            _ = hup.recv() => match live.reload_with(|cfg| {
                shared.registrar.reload(cfg)?;
                // A renewed certificate takes effect for the next handshake.
                match (&certs, &cfg.server.tls_cert, &cfg.server.tls_key) {
                    (Some(c), Some(cert), Some(key)) => c.reload(cert, key),
                    _ => Ok(()),
                }
            }) {
                // Listen addresses, workers and timers are read at start; accounts, keys
                // and SIP users are rebuilt here; the rest is read per request.
                Ok(_) => tracing::info!(path = %live.path().display(), "config reloaded"),
                Err(e) => tracing::warn!(error = %e, "config reload failed; keeping the old config"),
            },
            ended = essential.join_next() => {
                let why = match ended {
                    Some(Err(e)) if e.is_panic() => "panicked",
                    _ => "stopped",
                };
                tracing::error!(why, "an essential task ended; stopping the switch");
                anyhow::bail!("an essential task {why}");
            }
            _ = term.recv() => {
                let grace = live.current().cluster.drain_grace_secs;
                tokio::select! {
                    () = drain(&call_registry, grace) => {}
                    // SIGINT still stops at once, even in the middle of a drain.
                    _ = int.recv() => tracing::info!("SIGINT while draining: stopping now"),
                }
                break;
            }
            _ = int.recv() => break,
        }
    }
    tracing::info!("switchboard stopping");
    // Every finished call's record on disk before the process goes.
    call_registry.flush_cdr();
    Ok(())
}

/// SIGTERM: refuse new calls (INVITE and OPTIONS get 503 with Retry-After, `/health`
/// says draining), let the calls in progress finish for `grace_secs`, then hang up the
/// rest and give their BYEs a moment. Calls, not REGISTERs: clients keep refreshing here
/// until the process is gone, then register elsewhere.
async fn drain(calls: &crate::call::registry::CallRegistry, grace_secs: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(grace_secs);
    calls.start_drain(crate::time::unix_now() + grace_secs);
    tracing::info!(
        calls = calls.live_count(),
        grace_secs,
        "draining: new calls get 503"
    );
    while calls.live_count() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if calls.live_count() > 0 {
        let told = calls.hang_up_all();
        tracing::info!(told, "drain grace over: hanging up the calls left");
        let bye_deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while calls.live_count() > 0 && tokio::time::Instant::now() < bye_deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// State shared by every shard and the API.
struct Shared {
    store: Arc<dyn LocationStore>,
    /// The same store when it is shared (`[store] kind = "redis"`).
    redis: Option<Arc<RedisStore>>,
    presence: Arc<Presence>,
    metrics: Arc<Metrics>,
    registrar: Arc<Registrar>,
}

impl Shared {
    fn new(cfg: &Config, node_id: &str) -> anyhow::Result<Shared> {
        let presence = Arc::new(Presence::new());
        let (store, redis): (Arc<dyn LocationStore>, _) = match cfg.store.kind {
            StoreKind::Memory => (Arc::new(MemoryStore::new()), None),
            StoreKind::Redis => {
                let url = cfg.store.url.as_deref().unwrap_or_default();
                let redis = Arc::new(
                    RedisStore::open(url, &cfg.store.key_prefix, node_id)
                        .with_context(|| format!("opening the redis store {url}"))?,
                );
                presence.set_link(redis.clone());
                (redis.clone(), Some(redis))
            }
        };
        let registrar = Registrar::new(cfg, store.clone(), presence.clone())
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("setting up token and Digest verification")?;
        Ok(Shared {
            store,
            redis,
            presence,
            metrics: Arc::new(Metrics::new()),
            registrar: Arc::new(registrar),
        })
    }
}

fn shard_config(cfg: &Config, shared: &Shared, shards: usize) -> ShardConfig {
    let t = &cfg.server.timers;
    let l = &cfg.server.limits;
    let rate = |per_second, burst| crate::sip::rate_limit::Rate { per_second, burst };
    #[allow(clippy::disallowed_methods)] // the limiter's epoch; the shards pass it the time
    let started = std::time::Instant::now();
    ShardConfig {
        timers: Timers {
            t1: Duration::from_millis(t.t1_ms),
            t2: Duration::from_millis(t.t2_ms),
            t4: Duration::from_millis(t.t4_ms),
        },
        server_name: cfg.server.user_agent.as_str().into(),
        registrar: shared.registrar.clone(),
        metrics: shared.metrics.clone(),
        calls: None,
        limiter: Arc::new(crate::sip::rate_limit::SourceLimiter::new(started)),
        source_rate: rate(l.requests_per_second_per_source, l.request_burst_per_source),
        trunk_rate: rate(l.trunk_requests_per_second, l.trunk_request_burst),
        max_server_transactions: l.max_server_transactions.div_ceil(shards.max(1)),
        spread: foldhash::fast::RandomState::default(),
    }
}

/// Binds UDP and TCP on the same address. With port 0 the kernel picks the UDP port and
/// TCP takes the same one; if that TCP port is busy we try again with another.
fn bind_pair(want: SocketAddr) -> anyhow::Result<(udp::SipSocket, tokio::net::TcpListener)> {
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

/// `switchboard cert`: writes a self-signed certificate for `host` (plus localhost and
/// 127.0.0.1) and its key to `out/cert.pem` and `out/key.pem` (the key readable by its
/// owner only), for development TLS and WSS. Returns both paths.
pub fn write_dev_cert(host: &str, out: &std::path::Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let (cert, key) =
        crate::transport::tls::self_signed(host).map_err(|e| anyhow::anyhow!("{e}"))?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let (cert_path, key_path) = (out.join("cert.pem"), out.join("key.pem"));
    std::fs::write(&cert_path, cert.as_bytes())
        .with_context(|| format!("writing {}", cert_path.display()))?;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&key_path)
        .and_then(|mut f| f.write_all(key.as_bytes()))
        .with_context(|| format!("writing {}", key_path.display()))?;
    Ok((cert_path, key_path))
}
