//! A SIP-over-WebSocket client (RFC 7118) for the black-box tests, on tungstenite's
//! synchronous client, plain or over TLS: what a browser's JsSIP does on the wire.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::{self, Message, WebSocket};

use super::{Msg, Wire};

pub struct Ws {
    ws: WebSocket<Box<dyn Wire>>,
}

/// What the upgrade asks for.
#[derive(Debug, Clone, Copy)]
pub struct Upgrade<'a> {
    /// `Sec-WebSocket-Protocol`, if any.
    pub protocol: Option<&'a str>,
    /// `Origin`, if any.
    pub origin: Option<&'a str>,
}

impl Upgrade<'_> {
    /// What a browser page on `https://app.example` sends.
    pub const BROWSER: Upgrade<'static> = Upgrade {
        protocol: Some("sip"),
        origin: Some("https://app.example"),
    };
}

impl Ws {
    /// Upgrades a connection to `addr` (over TLS trusting `tls_cert` when given); `Err`
    /// with the HTTP status when the upgrade is refused.
    pub fn connect(addr: SocketAddr, tls_cert: Option<&Path>, up: Upgrade<'_>) -> Result<Ws, u16> {
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        tcp.set_nodelay(true).unwrap();
        let (scheme, wire): (&str, Box<dyn Wire>) = match tls_cert {
            None => ("ws", Box::new(tcp)),
            Some(cert) => (
                "wss",
                Box::new(super::tls_over(tcp, super::tls_client(cert)).expect("tls handshake")),
            ),
        };
        wire.tcp()
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut req = format!("{scheme}://{addr}/").into_client_request().unwrap();
        if let Some(p) = up.protocol {
            req.headers_mut()
                .insert("Sec-WebSocket-Protocol", p.parse().unwrap());
        }
        if let Some(o) = up.origin {
            req.headers_mut().insert("Origin", o.parse().unwrap());
        }
        match tungstenite::client(req, wire) {
            Ok((ws, resp)) => {
                assert_eq!(
                    resp.headers()
                        .get("sec-websocket-protocol")
                        .and_then(|v| v.to_str().ok()),
                    Some("sip"),
                    "the answer names the sip subprotocol"
                );
                Ok(Ws { ws })
            }
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
                Err(resp.status().as_u16())
            }
            Err(e) => panic!("websocket upgrade to {addr}: {e}"),
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.ws.get_ref().tcp().local_addr().unwrap()
    }

    /// One SIP message as one text frame.
    pub fn send(&mut self, text: impl Into<String>) {
        self.ws
            .send(Message::text(text.into()))
            .expect("websocket send");
    }

    /// The next frame that carries a message (text or binary), until `timeout`.
    fn next(&mut self, timeout: Duration) -> Option<Result<Vec<u8>, Option<String>>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.ws.get_ref().tcp().set_read_timeout(Some(left)).ok()?;
            match self.ws.read() {
                Ok(Message::Text(t)) => return Some(Ok(t.as_bytes().to_vec())),
                Ok(Message::Binary(b)) => return Some(Ok(b.to_vec())),
                Ok(Message::Close(frame)) => {
                    return Some(Err(
                        frame.map(|f| format!("{} {}", u16::from(f.code), f.reason))
                    ));
                }
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    continue;
                }
                Err(_) => return Some(Err(None)),
            }
        }
    }

    /// The next SIP message.
    pub fn recv_msg(&mut self, timeout: Duration) -> Option<Msg> {
        match self.next(timeout)? {
            Ok(bytes) => Some(Msg::parse(&bytes)),
            Err(_) => None,
        }
    }

    /// The next request with `method`, skipping others.
    pub fn expect_request(&mut self, method: &str, timeout: Duration) -> Msg {
        let deadline = Instant::now() + timeout;
        loop {
            let m = self
                .recv_msg(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|| panic!("no {method} over the websocket"));
            if m.method() == Some(method) {
                return m;
            }
        }
    }

    /// The Close the server sent (`"code reason"`), if it closes within `timeout`.
    pub fn closed_with(&mut self, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.next(deadline.saturating_duration_since(Instant::now()))? {
                Ok(_) => continue,
                Err(reason) => return Some(reason.unwrap_or_default()),
            }
        }
    }
}
