//! Black-box test harness: starts the real `switchboard` binary on loopback ports and talks
//! SIP to it with small synchronous `std::net` clients. No tokio, no SIP library: the test
//! side builds and reads messages by hand so that it never shares a bug with the switch.
//!
//! Set `SWITCHBOARD_BIN=/path/to/switchboard` to test another build than cargo's.
//! Set `SWITCHBOARD_TEST_LOG=1` to echo the switch's stderr (its logs) live to the test's
//! stderr; otherwise they are collected and shown when start-up fails.
#![allow(dead_code)]

pub mod cluster;
pub mod customer_app;
pub mod phones;
pub mod redis;
pub mod rest;
pub mod rtp;
pub mod tones;
pub mod ua;
pub mod ws;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long the switch may take from spawn to printing `ready`.
pub const START_DEADLINE: Duration = Duration::from_secs(20);

/// Path of a file in this repository.
pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The example configuration shipped in `conf/`.
pub fn default_config() -> PathBuf {
    repo_path("conf/switchboard.toml")
}

/// The sample config's text with its application fetching from `voice_url` instead of its
/// inline TwiML (the number +15550100001 then runs the customer app's instructions).
pub fn sample_with_voice_url(voice_url: &str) -> String {
    let sample = std::fs::read_to_string(default_config()).unwrap();
    let text = sample
        .lines()
        .map(|l| match l.starts_with("twiml = ") {
            true => format!("voice_url = \"{voice_url}\""),
            false => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(text, sample, "the sample config changed shape");
    text
}

/// [`sample_with_voice_url`] written to a temporary file.
pub fn config_with_voice_url(voice_url: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{}.toml", unique("app")));
    std::fs::write(&path, sample_with_voice_url(voice_url)).unwrap();
    path
}

/// The binary under test: cargo's build of `switchboard` for these tests, or the path in
/// `SWITCHBOARD_BIN` if set (to run the same tests against another build).
pub fn switchboard_bin() -> PathBuf {
    std::env::var_os("SWITCHBOARD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_switchboard")))
}

/// `switchboard cert --host HOST --out DIR`: a development certificate (`DIR/cert.pem`,
/// `DIR/key.pem`) written by the binary under test.
pub fn dev_cert(host: &str, dir: &Path) {
    let out = switchboard()
        .args(["cert", "--host", host, "--out"])
        .arg(dir)
        .output()
        .expect("switchboard cert");
    assert!(
        out.status.success(),
        "switchboard cert: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A `Command` for the binary under test.
pub fn switchboard() -> Command {
    Command::new(switchboard_bin())
}

// ---------------------------------------------------------------------------------------
// The switch process
// ---------------------------------------------------------------------------------------

/// A running `switchboard run` on loopback with OS-chosen ports. Killed (and reaped) on drop.
pub struct Switch {
    child: Child,
    udp: SocketAddr,
    tcp: SocketAddr,
    http: SocketAddr,
    /// `listening sip/tls|sip/ws|sip/wss ADDR` lines: (kind, address).
    streams: Vec<(String, SocketAddr)>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl Switch {
    /// Starts the switch with `conf/switchboard.toml`.
    pub fn start() -> Switch {
        Switch::start_with_config(default_config())
    }

    /// Starts the switch with the given config file, `--sip 127.0.0.1:0 --http 127.0.0.1:0`,
    /// and waits (up to [`START_DEADLINE`]) for its `ready` line. Panics with the collected
    /// stderr if it exits or stays silent.
    /// The switch runs in a fresh temporary working directory, so that relative paths in
    /// the config (`recordings_dir`, `sounds_dir`) land there and not in the repository.
    pub fn start_with_config(path: impl AsRef<Path>) -> Switch {
        Switch::start_with_args(path, &[])
    }

    /// [`Switch::start_with_config`] with more `run` arguments (`--node b`).
    pub fn start_with_args(path: impl AsRef<Path>, extra: &[&str]) -> Switch {
        let path = std::path::absolute(path.as_ref()).expect("an absolute config path");
        let cwd = std::env::temp_dir().join(unique("switch-cwd"));
        std::fs::create_dir_all(&cwd).expect("a working directory for the switch");
        let mut child = switchboard()
            .current_dir(&cwd)
            .arg("run")
            .arg("-c")
            .arg(&path)
            .args(["--http", "127.0.0.1:0"])
            // `--sip` in `extra` (a wildcard bind, say) replaces the default.
            .args(if extra.contains(&"--sip") {
                &[][..]
            } else {
                &["--sip", "127.0.0.1:0"][..]
            })
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", switchboard_bin().display()));

        let stderr = Arc::new(Mutex::new(String::new()));
        let echo = std::env::var_os("SWITCHBOARD_TEST_LOG").is_some_and(|v| v != "0");
        let err_pipe = child.stderr.take().expect("stderr piped");
        let err_buf = Arc::clone(&stderr);
        let err_reader = std::thread::spawn(move || {
            let mut r = BufReader::new(err_pipe);
            let mut line = Vec::new();
            loop {
                line.clear();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let s = String::from_utf8_lossy(&line);
                        if echo {
                            eprint!("[switchboard] {s}");
                        }
                        let mut buf = err_buf.lock().unwrap();
                        // Keep memory bounded on chatty runs: keep the last ~1 MiB.
                        if buf.len() > 2 << 20 {
                            let cut = buf.len() - (1 << 20);
                            let cut = (cut..buf.len())
                                .find(|&i| buf.is_char_boundary(i))
                                .unwrap_or(0);
                            buf.drain(..cut);
                        }
                        buf.push_str(&s);
                    }
                }
            }
        });

        // stdout is read on a thread so that the deadline holds even if the child hangs
        // without writing; after `ready` the thread keeps draining so the pipe never fills.
        let out_pipe = child.stdout.take().expect("stdout piped");
        let (tx, rx) = mpsc::channel::<String>();
        let out_reader = std::thread::spawn(move || {
            for line in BufReader::new(out_pipe).lines() {
                let Ok(line) = line else { break };
                if echo {
                    eprintln!("[switchboard stdout] {line}");
                }
                let _ = tx.send(line);
            }
        });

        let deadline = Instant::now() + START_DEADLINE;
        let (mut udp, mut tcp, mut http) = (None, None, None);
        let mut streams = Vec::new();
        let mut seen = Vec::new();
        let failure = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    let words: Vec<&str> = line.split_whitespace().collect();
                    match words.as_slice() {
                        ["listening", "sip/udp", a] => udp = a.parse().ok(),
                        ["listening", "sip/tcp", a] => tcp = a.parse().ok(),
                        ["listening", "http", a] => http = a.parse().ok(),
                        ["listening", kind, a] => {
                            if let Ok(a) = a.parse() {
                                streams.push((kind.to_string(), a));
                            }
                        }
                        ["ready"] => break None,
                        _ => {}
                    }
                    seen.push(line);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    break Some(format!("no `ready` line within {START_DEADLINE:?}"));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    break Some("stdout closed before `ready`".to_string());
                }
            }
        };
        let missing = match (udp, tcp, http) {
            (Some(_), Some(_), Some(_)) => None,
            _ => Some(format!(
                "`ready` printed but not all of `listening sip/udp|sip/tcp|http ADDR` were \
                 (udp={udp:?} tcp={tcp:?} http={http:?})"
            )),
        };
        if let Some(why) = failure.or(missing) {
            let _ = child.kill();
            let status = child
                .wait()
                .map(|s| s.to_string())
                .unwrap_or_else(|e| e.to_string());
            let _ = err_reader.join();
            let _ = out_reader.join();
            let err = stderr.lock().unwrap().clone();
            panic!(
                "switchboard failed to start with {}: {why}\nexit: {status}\n--- stdout ---\n{}\n--- stderr ---\n{err}",
                path.display(),
                seen.join("\n")
            );
        }
        // Keep draining stdout after `ready` (the channel's receiver is dropped here, so
        // the reader's sends fail silently while it goes on reading).
        drop(rx);
        Switch {
            child,
            udp: udp.unwrap(),
            tcp: tcp.unwrap(),
            http: http.unwrap(),
            streams,
            stderr,
            readers: vec![err_reader, out_reader],
        }
    }

    pub fn udp_addr(&self) -> SocketAddr {
        self.udp
    }

    /// The address printed as `listening KIND ADDR` (`sip/tls`, `sip/ws`, `sip/wss`).
    pub fn listening(&self, kind: &str) -> SocketAddr {
        self.streams
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, a)| *a)
            .unwrap_or_else(|| panic!("no `listening {kind}` line: {:?}", self.streams))
    }

    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `GET /metrics`: the value of an unlabelled sample.
    pub fn metric(&self, name: &str) -> u64 {
        let mut s = TcpStream::connect(self.http).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.http
        )
        .unwrap();
        let mut raw = String::new();
        s.read_to_string(&mut raw).unwrap();
        let (_, body) = raw.split_once("\r\n\r\n").expect("HTTP response");
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /metrics:\n{body}"))
    }

    /// Polls `/metrics` until `name` reads `want`; panics with the last value after
    /// `within` (the counters move after the messages a test sees, not before).
    pub fn wait_metric(&self, name: &str, want: u64, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let v = self.metric(name);
            if v == want {
                return;
            }
            assert!(Instant::now() < deadline, "{name} stays {v}, never {want}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A UDP client aimed at the switch's SIP port.
    pub fn udp(&self) -> Udp {
        Udp::new(self.udp)
    }

    /// A TCP connection to the switch's SIP port.
    pub fn tcp(&self) -> Tcp {
        Tcp::connect(self.tcp)
    }

    /// Everything the switch wrote to stderr so far (the last MiB or so).
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// SIGKILL: the process ends at once, nothing flushed.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM: the switch drains and exits on its own.
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// Waits up to `timeout` for the process to exit; its status, if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.exited() {
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `Some(status)` if the switch has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Panics (with the logs) if the switch has exited.
    pub fn assert_alive(&mut self, context: &str) {
        if let Some(st) = self.exited() {
            // Give the stderr reader a moment to collect the last words.
            std::thread::sleep(Duration::from_millis(100));
            panic!(
                "switchboard exited ({st}) {context}\n--- stderr ---\n{}",
                self.stderr()
            );
        }
    }
}

impl Drop for Switch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Test user agents
// ---------------------------------------------------------------------------------------

/// A UDP socket on 127.0.0.1 with an OS-chosen port, sending to one peer.
pub struct Udp {
    sock: UdpSocket,
    peer: SocketAddr,
}

impl Udp {
    pub fn new(peer: SocketAddr) -> Udp {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind udp 127.0.0.1:0");
        Udp { sock, peer }
    }

    /// A socket on another loopback address (`127.0.0.2`, say): a second carrier that the
    /// switch tells apart from the first by its source address.
    pub fn bind_on(ip: &str, peer: SocketAddr) -> Udp {
        let sock = UdpSocket::bind((ip, 0)).unwrap_or_else(|e| panic!("bind udp {ip}:0: {e}"));
        Udp { sock, peer }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    /// Sends to `peer` from now on (a socket whose address had to be known before the
    /// switch started, such as a trunk's).
    pub fn set_peer(&mut self, peer: SocketAddr) {
        self.peer = peer;
    }

    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    pub fn send(&self, bytes: impl AsRef<[u8]>) {
        self.sock
            .send_to(bytes.as_ref(), self.peer)
            .expect("udp send");
    }

    /// The next datagram from anyone, or `None` after `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<Vec<u8>> {
        self.recv_from(timeout).map(|(d, _)| d)
    }

    /// The next datagram and its source, or `None` after `timeout`.
    pub fn recv_from(&self, timeout: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65536];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.sock.set_read_timeout(Some(left)).unwrap();
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) => return Some((buf[..n].to_vec(), from)),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return None;
                }
                // ICMP port unreachable from an earlier send shows up as ECONNREFUSED on Linux.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => continue,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => panic!("udp recv: {e}"),
            }
        }
    }

    /// The next datagram parsed as a SIP message, or `None` after `timeout`.
    pub fn recv_msg(&self, timeout: Duration) -> Option<Msg> {
        self.recv(timeout).map(|d| Msg::parse(&d))
    }

    /// Waits for the response to the request whose `Call-ID` is `call_id`, skipping anything
    /// else (provisionals are returned too: use [`Udp::recv_final`] to skip them).
    pub fn recv_response_to(&self, call_id: &str, timeout: Duration) -> Option<Msg> {
        let deadline = Instant::now() + timeout;
        loop {
            let m = self.recv_msg(deadline.saturating_duration_since(Instant::now()))?;
            if m.is_response() && m.header("Call-ID") == Some(call_id) {
                return Some(m);
            }
        }
    }

    /// Waits for a final (>= 200) response with this `Call-ID`, returning it and the
    /// provisional responses seen before it.
    pub fn recv_final(&self, call_id: &str, timeout: Duration) -> Option<(Msg, Vec<Msg>)> {
        let deadline = Instant::now() + timeout;
        let mut provisional = Vec::new();
        loop {
            let m =
                self.recv_response_to(call_id, deadline.saturating_duration_since(Instant::now()))?;
            if m.status().unwrap_or(0) >= 200 {
                return Some((m, provisional));
            }
            provisional.push(m);
        }
    }
}

/// A byte stream under a `Tcp`: plain TCP, or TLS over it.
pub trait Wire: Read + Write + Send {
    fn tcp(&self) -> &TcpStream;
}

impl Wire for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Wire for rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    fn tcp(&self) -> &TcpStream {
        &self.sock
    }
}

/// A rustls client trusting only the certificate in `cert_pem` (ring provider).
pub fn tls_client(cert_pem: &Path) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert_pem).expect("a PEM file") {
        roots.add(c.expect("a certificate")).expect("a usable root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// TLS over `stream` to 127.0.0.1, trusting `config`'s roots; the handshake completes
/// here (an error if the server's certificate is not trusted).
pub fn tls_over(
    mut stream: TcpStream,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    let name =
        rustls::pki_types::ServerName::IpAddress(std::net::IpAddr::from([127, 0, 0, 1]).into());
    let mut conn = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    while conn.is_handshaking() {
        conn.complete_io(&mut stream)?;
    }
    Ok(rustls::StreamOwned::new(conn, stream))
}

/// A TCP (or TLS) connection that frames SIP messages by Content-Length.
pub struct Tcp {
    stream: Box<dyn Wire>,
    buf: Vec<u8>,
}

/// Largest head the test reader accepts before deciding the peer is talking nonsense.
const MAX_HEAD: usize = 1 << 20;

impl Tcp {
    pub fn connect(addr: SocketAddr) -> Tcp {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("tcp connect {addr}: {e}"));
        stream.set_nodelay(true).unwrap();
        Tcp {
            stream: Box::new(stream),
            buf: Vec::new(),
        }
    }

    /// A TLS connection to `addr` trusting the certificate in `cert_pem`.
    pub fn connect_tls(addr: SocketAddr, cert_pem: &Path) -> Tcp {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("tcp connect {addr}: {e}"));
        stream.set_nodelay(true).unwrap();
        let tls = tls_over(stream, tls_client(cert_pem))
            .unwrap_or_else(|e| panic!("tls handshake with {addr}: {e}"));
        Tcp {
            stream: Box::new(tls),
            buf: Vec::new(),
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.stream.tcp().local_addr().unwrap()
    }

    /// Writes all bytes (one `write_all`, so one or few segments).
    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream.write_all(bytes.as_ref()).expect("tcp send");
        self.stream.flush().unwrap();
    }

    /// Like `send`, but returns the error (the peer may have closed).
    pub fn try_send(&mut self, bytes: impl AsRef<[u8]>) -> std::io::Result<()> {
        self.stream.write_all(bytes.as_ref())
    }

    /// Reads more bytes into the buffer. `Ok(0)` = EOF, `Err(TimedOut)` = nothing in time.
    fn fill(&mut self, deadline: Instant) -> std::io::Result<usize> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        self.stream.tcp().set_read_timeout(Some(left))?;
        let mut chunk = [0u8; 16384];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    return Err(ErrorKind::TimedOut.into());
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The next complete SIP message (head up to CRLFCRLF, then Content-Length bytes of body;
    /// a missing Content-Length counts as 0). Leading CRLFs (keep-alive pongs) are skipped.
    /// `None` on timeout, EOF or a connection error.
    pub fn recv_message(&mut self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        loop {
            let skip = self
                .buf
                .iter()
                .take_while(|&&b| b == b'\r' || b == b'\n')
                .count();
            self.buf.drain(..skip);
            if let Some(head_end) = find(&self.buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
                let len = content_length(&head).unwrap_or(0);
                let total = head_end + 4 + len;
                if self.buf.len() >= total {
                    return Some(self.buf.drain(..total).collect());
                }
            } else if self.buf.len() > MAX_HEAD {
                panic!("peer sent {} bytes without a CRLFCRLF", self.buf.len());
            }
            match self.fill(deadline) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// The next complete message, parsed.
    pub fn recv_msg(&mut self, timeout: Duration) -> Option<Msg> {
        self.recv_message(timeout).map(|m| Msg::parse(&m))
    }

    /// True if the peer closes (EOF or reset) within `timeout`; anything it sends first is
    /// kept in the buffer for `recv_message`.
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            match self.fill(deadline) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) if e.kind() == ErrorKind::TimedOut => return false,
                Err(_) => return true, // reset / aborted
            }
        }
    }

    /// Bytes received but not yet returned as a message.
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Content-Length from a message head (long or compact form); `None` if absent or unparsable.
fn content_length(head: &str) -> Option<usize> {
    head.split("\r\n").skip(1).find_map(|line| {
        let (name, value) = line.split_once(':')?;
        let name = name.trim();
        if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("l") {
            value.trim().parse().ok()
        } else {
            None
        }
    })
}

// ---------------------------------------------------------------------------------------
// Building requests
// ---------------------------------------------------------------------------------------

static COUNTER: AtomicU64 = AtomicU64::new(1);

/// A fresh token, unique within this test process and very likely across processes.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}{:x}{:x}{n:x}", std::process::id(), nanos)
}

/// A new RFC 3261 branch (`z9hG4bK` + unique token).
pub fn branch() -> String {
    unique("z9hG4bK")
}

/// Builds a well-formed request:
///
/// ```text
/// METHOD ruri SIP/2.0
/// Via: SIP/2.0/<TRANSPORT> <local>;branch=z9hG4bK…;rport
/// Max-Forwards: 70
/// From: <sip:tester@127.0.0.1>;tag=…
/// To: <ruri>
/// Call-ID: …@127.0.0.1
/// CSeq: 1 METHOD
/// Contact: <sip:tester@<local>;transport=<transport>>
/// (extra headers)
/// [Content-Type: application/sdp]   (only when body is non-empty and extra has none)
/// Content-Length: <len(body)>
///
/// body
/// ```
///
/// An extra header whose name (case-insensitively) matches a default one replaces it in
/// place, so `("Max-Forwards", "0")`, `("Via", "...")` or `("Content-Length", "-999")` work;
/// other extras are appended in order. Use [`without_header`] to drop one.
pub fn request(
    method: &str,
    ruri: &str,
    local: SocketAddr,
    transport: &str,
    extra: &[(&str, &str)],
    body: &str,
) -> String {
    let tp = transport.to_ascii_uppercase();
    let mut headers: Vec<(String, String)> = vec![
        (
            "Via".into(),
            format!("SIP/2.0/{tp} {local};branch={};rport", branch()),
        ),
        ("Max-Forwards".into(), "70".into()),
        (
            "From".into(),
            format!("<sip:tester@{}>;tag={}", local.ip(), unique("t")),
        ),
        ("To".into(), format!("<{ruri}>")),
        ("Call-ID".into(), format!("{}@{}", unique("c"), local.ip())),
        ("CSeq".into(), format!("1 {method}")),
        (
            "Contact".into(),
            format!("<sip:tester@{local};transport={}>", tp.to_ascii_lowercase()),
        ),
    ];
    let has = |name: &str| extra.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    if !body.is_empty() && !has("Content-Type") {
        headers.push(("Content-Type".into(), "application/sdp".into()));
    }
    headers.push(("Content-Length".into(), body.len().to_string()));
    for (name, value) in extra {
        match headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = value.to_string(),
            None => {
                // Keep Content-Length last for readability.
                let at = headers.len() - 1;
                headers.insert(at, (name.to_string(), value.to_string()));
            }
        }
    }
    let mut out = format!("{method} {ruri} SIP/2.0\r\n");
    for (n, v) in &headers {
        let _ = write!(out, "{n}: {v}\r\n");
    }
    out.push_str("\r\n");
    out.push_str(body);
    out
}

/// The message with every header line named `name` (case-insensitive) removed.
pub fn without_header(msg: &str, name: &str) -> String {
    let (head, body) = msg.split_once("\r\n\r\n").unwrap_or((msg, ""));
    let kept: Vec<&str> = head
        .split("\r\n")
        .enumerate()
        .filter(|(i, line)| {
            *i == 0
                || !line
                    .split_once(':')
                    .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        })
        .map(|(_, l)| l)
        .collect();
    format!("{}\r\n\r\n{body}", kept.join("\r\n"))
}

/// The ACK for a non-2xx final response to `invite` (RFC 3261 §17.1.1.3): same Request-URI,
/// top Via (so same branch), From, Call-ID and CSeq number; To from the response.
pub fn ack_for(invite: &str, response: &Msg) -> String {
    let req = Msg::parse(invite.as_bytes());
    let ruri = req
        .start_line
        .split_whitespace()
        .nth(1)
        .expect("request-uri");
    let cseq_num = req
        .header("CSeq")
        .and_then(|c| c.split_whitespace().next())
        .expect("CSeq");
    format!(
        "ACK {ruri} SIP/2.0\r\nVia: {}\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq_num} ACK\r\nContent-Length: 0\r\n\r\n",
        req.header("Via").expect("Via"),
        req.header("From").expect("From"),
        response.header("To").expect("To in response"),
        req.header("Call-ID").expect("Call-ID"),
    )
}

/// A minimal SDP offer for INVITEs.
pub fn sdp_offer(ip: std::net::IpAddr) -> String {
    format!(
        "v=0\r\no=tester 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0 8 101\r\n\
         a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    )
}

// ---------------------------------------------------------------------------------------
// Reading messages
// ---------------------------------------------------------------------------------------

/// A SIP message as the test sees it: start line, header lines (folded lines joined), body.
#[derive(Clone, Debug)]
pub struct Msg {
    pub start_line: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub raw: Vec<u8>,
}

impl Msg {
    pub fn parse(bytes: &[u8]) -> Msg {
        let (head, body) = match find(bytes, b"\r\n\r\n") {
            Some(i) => (&bytes[..i], &bytes[i + 4..]),
            None => (bytes, &[][..]),
        };
        let head = String::from_utf8_lossy(head);
        let mut lines = head.split("\r\n");
        let start_line = lines.next().unwrap_or("").to_string();
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                if let Some(last) = headers.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
                continue;
            }
            if let Some((n, v)) = line.split_once(':') {
                headers.push((n.trim().to_string(), v.trim().to_string()));
            }
        }
        Msg {
            start_line,
            headers,
            body: body.to_vec(),
            raw: bytes.to_vec(),
        }
    }

    pub fn is_response(&self) -> bool {
        self.start_line.starts_with("SIP/2.0 ")
    }

    /// Status code of a response.
    pub fn status(&self) -> Option<u16> {
        if !self.is_response() {
            return None;
        }
        self.start_line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Method of a request.
    pub fn method(&self) -> Option<&str> {
        if self.is_response() {
            None
        } else {
            self.start_line.split_whitespace().next()
        }
    }

    /// The first header with this name (case-insensitive; compact forms not mapped).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of this header, one per header line.
    pub fn headers(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Every comma-separated element of every line of this header, trimmed (for list
    /// headers such as Allow, Supported, Unsupported, Accept, Via).
    pub fn list(&self, name: &str) -> Vec<String> {
        self.headers(name)
            .iter()
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// Whether a list header contains `token` (case-insensitive).
    pub fn list_contains(&self, name: &str, token: &str) -> bool {
        self.list(name)
            .iter()
            .any(|t| t.eq_ignore_ascii_case(token))
    }

    /// The `tag` parameter of the To header.
    pub fn to_tag(&self) -> Option<String> {
        param(self.header("To")?, "tag").flatten()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }
}

/// A `;name[=value]` parameter of a header value (Via, To, From…): `None` if absent,
/// `Some(None)` if present without value. Parameters inside `<…>` are ignored.
pub fn param(value: &str, name: &str) -> Option<Option<String>> {
    let params = match value.rfind('>') {
        Some(i) => &value[i + 1..],
        None => value,
    };
    params.split(';').skip(1).find_map(|p| {
        let (n, v) = match p.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim().to_string())),
            None => (p.trim(), None),
        };
        n.eq_ignore_ascii_case(name).then_some(v)
    })
}
