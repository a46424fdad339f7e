//! The media plane's handle: starts the relay threads and routes commands to them.
//!
//! Each call's endpoints live on one thread (chosen from the call's group key), so a
//! bridge never crosses threads and the hot path takes no lock. Commands travel on a
//! channel per thread and a `mio::Waker` interrupts its poll; events come back on the
//! call's own channel. An [`Endpoint`] handle closes its endpoint when dropped, so a call
//! that ends by any path (even a panic) gives its ports back.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::time::Duration;

use mio::{Poll, Waker};
use socket2::{Domain, Protocol, Socket, Type};

use super::command::{
    Command, ConferenceId, EndpointId, EventSink, HeardBy, Opened, PlayItem, RecordSpec,
    StreamParams,
};
use super::lateness::LatenessSnapshot;
use super::ports::{PortLease, PortPool, PortsExhausted};
use super::relay::{RelayStats, RelayThread, ThreadLink};
use super::webrtc::{DtlsIdentity, SecureParams};
use crate::config::PortRange;

/// Bigger socket buffers absorb a burst while the thread is busy with other sockets.
const SOCKET_BUFFER: usize = 256 << 10;

/// How many leased pairs to try when a port is taken by some other program.
const BIND_ATTEMPTS: usize = 8;

struct ThreadHandle {
    commands: Sender<Command>,
    waker: Arc<Waker>,
    /// Set by the sender that wakes the thread, cleared by the thread before it drains its
    /// commands: a burst of commands (a call sets up two endpoints with several each) costs
    /// one eventfd write and one wake-up, not one per command.
    wake_pending: Arc<AtomicBool>,
    stats: Arc<RelayStats>,
    join: Option<std::thread::JoinHandle<()>>,
}

/// The running media plane.
pub struct MediaEngine {
    threads: Vec<ThreadHandle>,
    pool: Arc<PortPool>,
    bind_ip: IpAddr,
    serial: AtomicU64,
    /// Conferences created: they take the relay threads in turn. (Not `serial`: a call
    /// opening one endpoint per conference would then put every conference on one thread.)
    conferences: AtomicU64,
    identity: DtlsIdentity,
}

/// Why an endpoint could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(transparent)]
    Exhausted(#[from] PortsExhausted),
    #[error("cannot bind an RTP port: {0}")]
    Bind(io::Error),
    /// The process (EMFILE) or the system (ENFILE) has no file descriptor left for the
    /// pair's sockets: free ports do not help, so no other pair is tried.
    #[error("out of file descriptors for RTP sockets: {0}")]
    Descriptors(io::Error),
}

impl OpenError {
    /// What the INVITE that needed the ports gets: 503 (an overload, not a bad offer).
    pub const fn status(&self) -> u16 {
        503
    }

    /// The reason phrase for that 503: what ran out, so an operator reading a trace does
    /// not look at the port range when the descriptor limit is the cause.
    pub const fn reason(&self) -> &'static str {
        match self {
            OpenError::Exhausted(_) => "No RTP Ports",
            OpenError::Bind(_) => "Cannot Bind RTP Port",
            OpenError::Descriptors(_) => "Out Of File Descriptors",
        }
    }
}

/// Whether `e` says the process or the system is out of file descriptors.
fn out_of_descriptors(e: &io::Error) -> bool {
    e.raw_os_error()
        .is_some_and(|code| code == libc::EMFILE || code == libc::ENFILE)
}

impl MediaEngine {
    /// Starts `threads` relay threads (0: one per core) on ports from `range`, bound to
    /// `bind_ip`. A call with no media for `timeout` is reported.
    pub fn start(
        threads: usize,
        range: PortRange,
        bind_ip: IpAddr,
        timeout: Duration,
    ) -> io::Result<Arc<MediaEngine>> {
        let n = match threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
        .min(255);
        // One certificate for the process (RFC 5763 §5); its fingerprint goes in every
        // browser leg's SDP.
        let identity = DtlsIdentity::generate().map_err(io::Error::other)?;
        // Each thread may hand an endpoint to another (conferences): they all get every
        // thread's channel, set once all exist.
        let links = Arc::new(std::sync::OnceLock::new());
        let mut link_list = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let poll = Poll::new()?;
            let waker = Arc::new(RelayThread::waker(&poll)?);
            let (tx, rx) = channel();
            let stats = Arc::new(RelayStats::default());
            let wake_pending = Arc::new(AtomicBool::new(false));
            let relay = RelayThread::new(
                poll,
                rx,
                Arc::clone(&wake_pending),
                timeout,
                Arc::clone(&stats),
                identity.clone(),
                Arc::clone(&links),
            );
            link_list.push(ThreadLink {
                commands: tx.clone(),
                waker: Arc::clone(&waker),
                wake_pending: Arc::clone(&wake_pending),
            });
            let join = std::thread::Builder::new()
                .name(format!("media-{i}"))
                .spawn(move || relay.run())?;
            handles.push(ThreadHandle {
                commands: tx,
                waker,
                wake_pending,
                stats,
                join: Some(join),
            });
        }
        let _ = links.set(link_list);
        Ok(Arc::new(MediaEngine {
            threads: handles,
            pool: PortPool::new(range),
            bind_ip,
            serial: AtomicU64::new(1),
            conferences: AtomicU64::new(0),
            identity,
        }))
    }

    /// The address the relay receives on (what SDP advertises unless a public address is
    /// configured).
    pub fn bind_ip(&self) -> IpAddr {
        self.bind_ip
    }

    pub fn free_port_pairs(&self) -> usize {
        self.pool.free_pairs()
    }

    pub fn total_port_pairs(&self) -> usize {
        self.pool.total_pairs()
    }

    /// Packets relayed, dropped from third parties, sent by players, endpoints open.
    pub fn stats(&self) -> MediaStats {
        let mut s = MediaStats::default();
        for t in &self.threads {
            s.relayed += t.stats.relayed.load(Ordering::Relaxed);
            s.foreign += t.stats.foreign.load(Ordering::Relaxed);
            s.malformed += t.stats.malformed.load(Ordering::Relaxed);
            s.unroutable += t.stats.unroutable.load(Ordering::Relaxed);
            s.played += t.stats.played.load(Ordering::Relaxed);
            s.rtcp_relayed += t.stats.rtcp_relayed.load(Ordering::Relaxed);
            s.endpoints += t.stats.endpoints.load(Ordering::Relaxed);
            s.mix_ticks += t.stats.mix_ticks.load(Ordering::Relaxed);
            s.mix_ticks_skipped += t.stats.mix_ticks_skipped.load(Ordering::Relaxed);
            s.mix_frames += t.stats.mix_frames.load(Ordering::Relaxed);
            s.mix_lateness.add(&t.stats.mix_lateness.snapshot());
            s.mix_duration.add(&t.stats.mix_duration.snapshot());
        }
        s
    }

    /// Opens an endpoint for the call `group` (all of a call's endpoints must share it);
    /// its events go to `sink`.
    pub fn open(self: &Arc<Self>, group: u64, sink: EventSink) -> Result<Endpoint, OpenError> {
        let (lease, rtp, rtcp) = self.bind_pair()?;
        let port = lease.rtp();
        let thread = (group % self.threads.len() as u64) as usize;
        let id = EndpointId::new(thread, self.serial.fetch_add(1, Ordering::Relaxed));
        let r = crate::ids::random_u64();
        self.send(
            id,
            Command::Open(Box::new(Opened {
                id,
                rtp,
                rtcp,
                lease,
                sink,
                group,
                ssrc: r as u32,
                seq: (r >> 32) as u16,
                ts: crate::ids::random_u64() as u32,
            })),
        );
        Ok(Endpoint {
            id,
            port,
            engine: Arc::clone(self),
        })
    }

    fn bind_pair(&self) -> Result<(PortLease, UdpSocket, UdpSocket), OpenError> {
        let mut last = None;
        for _ in 0..BIND_ATTEMPTS {
            let lease = self.pool.allocate()?;
            match (
                bind_udp(SocketAddr::new(self.bind_ip, lease.rtp())),
                bind_udp(SocketAddr::new(self.bind_ip, lease.rtcp())),
            ) {
                (Ok(a), Ok(b)) => return Ok((lease, a, b)),
                (Err(e), _) | (_, Err(e)) if out_of_descriptors(&e) => {
                    return Err(OpenError::Descriptors(e));
                }
                (Err(e), _) | (_, Err(e)) => {
                    tracing::warn!(port = lease.rtp(), error = %e, "RTP port pair taken; trying another");
                    last = Some(e);
                }
            }
        }
        Err(OpenError::Bind(
            last.unwrap_or_else(|| io::Error::other("no port")),
        ))
    }

    fn send(&self, id: EndpointId, cmd: Command) {
        let t = &self.threads[id.thread() % self.threads.len()];
        // The command is queued before the flag is read: a thread that cleared the flag
        // before this send either drains the command now or is woken for it here.
        if t.commands.send(cmd).is_ok() && !t.wake_pending.swap(true, Ordering::SeqCst) {
            let _ = t.waker.wake();
        }
    }

    pub fn configure(&self, id: EndpointId, params: StreamParams) {
        self.send(id, Command::Configure(id, params));
    }

    /// Makes the endpoint a browser's (ICE-lite, DTLS-SRTP); send before its `configure`.
    pub fn secure(&self, id: EndpointId, params: SecureParams) {
        self.send(id, Command::Secure(id, Box::new(params)));
    }

    /// The `a=fingerprint` of the certificate every browser leg presents.
    pub fn dtls_fingerprint(&self) -> &str {
        self.identity.fingerprint()
    }

    /// Relays `a`'s media to `b` and back (both of the same group).
    pub fn bridge(&self, a: EndpointId, b: EndpointId) {
        self.send(a, Command::Bridge(a, b));
    }

    pub fn unbridge(&self, a: EndpointId) {
        self.send(a, Command::Unbridge(a));
    }

    /// Plays `items` to the leg `loops` times (0: until stopped); a `PlayDone` event
    /// follows unless stopped. Replaces what was playing.
    pub fn play(&self, id: EndpointId, items: Vec<PlayItem>, loops: u32) {
        self.send(id, Command::Play { id, items, loops });
    }

    pub fn stop_play(&self, id: EndpointId) {
        self.send(id, Command::StopPlay(id));
    }

    pub fn record(&self, id: EndpointId, spec: RecordSpec) {
        self.send(id, Command::Record(id, Box::new(spec)));
    }

    pub fn stop_record(&self, id: EndpointId) {
        self.send(id, Command::StopRecord(id));
    }

    /// A media stream starts tapping `id`'s audio (see [`super::stream_tap`]).
    pub fn tap(&self, id: EndpointId, spec: super::stream_tap::TapSpec) {
        self.send(id, Command::Tap(id, Box::new(spec)));
    }

    /// The stream `key` stops tapping `id`.
    pub fn untap(&self, id: EndpointId, key: u64) {
        self.send(id, Command::Untap(id, key));
    }

    /// What the app of the bidirectional stream `key` sent, for `id`'s leg. The relay
    /// thread is not woken for it: the leg's playout ticks every 20 ms and the thread takes
    /// its commands before each tick, so the audio plays no later, and a thousand streams
    /// do not cost 50,000 wake-ups a second (at 500 streams, 90–94 % of a core against
    /// 97–116 % with the wake-up, `benches/streams/run.py`).
    pub fn stream_out(&self, id: EndpointId, key: u64, out: super::stream_tap::StreamOut) {
        let t = &self.threads[id.thread() % self.threads.len()];
        let _ = t.commands.send(Command::StreamOut(id, key, out));
    }

    fn close(&self, id: EndpointId) {
        self.send(id, Command::Close(id));
    }

    /// A new conference, mixed on a relay thread of its own choosing.
    pub fn new_conference(&self) -> ConferenceId {
        let serial = self.serial.fetch_add(1, Ordering::Relaxed);
        let turn = self.conferences.fetch_add(1, Ordering::Relaxed);
        ConferenceId::new((turn % self.threads.len() as u64) as usize, serial)
    }

    /// Mixes the endpoint into `conference` (it moves to the conference's thread; its
    /// bridge, if any, ends). Again with another `muted`: only that changes.
    pub fn join(&self, id: EndpointId, conference: ConferenceId, muted: bool) {
        self.send(id, Command::Handoff(id, conference.thread()));
        self.send(
            id,
            Command::Join {
                id,
                conference,
                muted,
            },
        );
    }

    /// Takes the endpoint out of its conference and back to its own thread (so it can be
    /// bridged with the call's other endpoints again).
    pub fn leave(&self, id: EndpointId) {
        self.send(id, Command::Leave(id));
        self.send(id, Command::Handoff(id, id.thread()));
    }

    pub fn mute(&self, id: EndpointId, muted: bool) {
        self.send(id, Command::Mute(id, muted));
    }

    /// Whom the endpoint's voice reaches in its conference (send after `join`).
    pub fn coach(&self, id: EndpointId, heard_by: HeardBy) {
        self.send(id, Command::Coach(id, heard_by));
    }

    /// Everyone in `conference` hears `pcm` once.
    pub fn announce(&self, conference: ConferenceId, pcm: Arc<[i16]>) {
        self.send_conference(conference, Command::Announce(conference, pcm));
    }

    /// Records the conference's whole mix until its last participant leaves; the
    /// `RecordDone` event goes to `sink` (with no endpoint of its own: id 0).
    pub fn record_conference(&self, conference: ConferenceId, spec: RecordSpec, sink: EventSink) {
        self.send_conference(
            conference,
            Command::RecordConference {
                conference,
                spec: Box::new(spec),
                sink,
            },
        );
    }

    fn send_conference(&self, conference: ConferenceId, cmd: Command) {
        let t = &self.threads[conference.thread() % self.threads.len()];
        if t.commands.send(cmd).is_ok() && !t.wake_pending.swap(true, Ordering::SeqCst) {
            let _ = t.waker.wake();
        }
    }

    /// Stops the threads (tests; the process exit does it otherwise).
    pub fn shutdown(&mut self) {
        for t in &mut self.threads {
            let _ = t.commands.send(Command::Shutdown);
            let _ = t.waker.wake();
            if let Some(j) = t.join.take() {
                let _ = j.join();
            }
        }
    }
}

impl Drop for MediaEngine {
    fn drop(&mut self) {
        for t in &self.threads {
            let _ = t.commands.send(Command::Shutdown);
            let _ = t.waker.wake();
        }
    }
}

/// Totals over all relay threads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaStats {
    pub relayed: u64,
    pub foreign: u64,
    pub malformed: u64,
    pub unroutable: u64,
    pub played: u64,
    pub rtcp_relayed: u64,
    pub endpoints: u64,
    pub mix_ticks: u64,
    pub mix_ticks_skipped: u64,
    pub mix_frames: u64,
    pub mix_lateness: LatenessSnapshot,
    pub mix_duration: LatenessSnapshot,
}

/// An open endpoint; closing it (drop) frees its ports.
#[derive(Debug)]
pub struct Endpoint {
    id: EndpointId,
    port: u16,
    engine: Arc<MediaEngine>,
}

impl std::fmt::Debug for MediaEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaEngine")
            .field("threads", &self.threads.len())
            .field("bind_ip", &self.bind_ip)
            .finish()
    }
}

impl Endpoint {
    pub fn id(&self) -> EndpointId {
        self.id
    }

    /// The RTP port (RTCP is the next one).
    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn engine(&self) -> &Arc<MediaEngine> {
        &self.engine
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.engine.close(self.id);
    }
}

fn bind_udp(addr: SocketAddr) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    s.set_nonblocking(true)?;
    // Best effort: a kernel cap on buffer sizes is not a reason to refuse a call.
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
    s.bind(&addr.into())?;
    Ok(s.into())
}
