//! The WebSocket to a customer's media-stream server (`<Stream url>`): opened by the
//! switch, signed and confined like every webhook.
//!
//! - `wss://` (TLS checked against the system roots, as the webhook client checks https);
//!   `ws://` too, for servers on a private network the operator allows;
//! - the host must resolve to an address the SSRF rules permit (`[webhooks]
//!   allow_private_networks`), checked on the address actually connected to;
//! - the query string is dropped before connecting, as Twilio does (parameters travel as
//!   `customParameters` in the `start` message);
//! - the upgrade carries `X-Twilio-Signature`: the webhook signature over the URL, with no
//!   parameters (what Twilio sends on a stream's upgrade);
//! - connecting, the TLS handshake and the upgrade together are bounded by one timeout.
//!
//! What flows over the socket is `call::media_stream`'s business, not this module's.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use url::Url;

use super::client::{USER_AGENT, install_crypto_provider};
use super::sign::twilio_signature;
use super::ssrf::Guard;

/// A connected stream socket, over TLS or not.
pub type StreamSocket = WebSocketStream<Box<dyn Io>>;

/// A byte stream a WebSocket runs over.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Why a stream could not be connected, with the Twilio error code it maps to.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// 31923: not a `ws`/`wss` URL with a host.
    #[error("malformed stream URL: {0}")]
    MalformedUrl(String),
    /// 31902: the SSRF rules refuse every address of the host.
    #[error("{0}")]
    Refused(String),
    /// 31902: nothing accepted the connection (or the name did not resolve).
    #[error("connection refused: {0}")]
    Unreachable(String),
    /// 31901: no answer within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// 31910: the TLS handshake failed (a bad certificate, say).
    #[error("TLS: {0}")]
    Tls(String),
    /// 31920: the server answered the upgrade with something other than 101.
    #[error("handshake: {0}")]
    Handshake(String),
}

impl ConnectError {
    /// Twilio's error code for this failure.
    pub fn code(&self) -> u32 {
        match self {
            ConnectError::MalformedUrl(_) => 31923,
            ConnectError::Refused(_) | ConnectError::Unreachable(_) => 31902,
            ConnectError::Timeout(_) => 31901,
            ConnectError::Tls(_) => 31910,
            ConnectError::Handshake(_) => 31920,
        }
    }
}

/// The URL as connected to and signed: `url` without its query and fragment.
pub fn stream_url(url: &str) -> Result<Url, ConnectError> {
    let mut u = Url::parse(url.trim()).map_err(|e| ConnectError::MalformedUrl(e.to_string()))?;
    if !matches!(u.scheme(), "ws" | "wss") || u.host_str().is_none() {
        return Err(ConnectError::MalformedUrl(format!(
            "{}: only ws:// and wss:// URLs with a host",
            super::ssrf::redacted(&u)
        )));
    }
    u.set_query(None);
    u.set_fragment(None);
    Ok(u)
}

/// Connects to the stream server at `url` for an account whose auth token signs the
/// upgrade, under `guard`, within `timeout`.
pub async fn connect(
    url: &str,
    auth_token: &str,
    guard: &Guard,
    timeout: Duration,
) -> Result<StreamSocket, ConnectError> {
    let url = stream_url(url)?;
    tokio::time::timeout(timeout, connect_inner(&url, auth_token, guard))
        .await
        .map_err(|_| ConnectError::Timeout(timeout))?
}

async fn connect_inner(
    url: &Url,
    auth_token: &str,
    guard: &Guard,
) -> Result<StreamSocket, ConnectError> {
    let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
    let port = url.port_or_known_default().unwrap_or(443);
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| ConnectError::Unreachable(format!("{host}: {e}")))?
        .collect();
    let mut refused = None;
    let mut tcp = None;
    let mut last_error = None;
    for addr in found {
        if let Err(r) = guard.check_ip(addr.ip()) {
            refused.get_or_insert(r);
            continue;
        }
        match TcpStream::connect(addr).await {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last_error = Some(format!("{addr}: {e}")),
        }
    }
    let tcp = match (tcp, last_error, refused) {
        (Some(s), _, _) => s,
        (None, Some(e), _) => return Err(ConnectError::Unreachable(e)),
        (None, None, Some(r)) => return Err(ConnectError::Refused(r.to_string())),
        (None, None, None) => {
            return Err(ConnectError::Unreachable(format!("{host}: no address")));
        }
    };
    let _ = tcp.set_nodelay(true);
    let io: Box<dyn Io> = if url.scheme() == "wss" {
        let name = rustls_pki_types::ServerName::try_from(host.to_owned())
            .map_err(|e| ConnectError::MalformedUrl(e.to_string()))?;
        let tls = tokio_rustls::TlsConnector::from(tls_config()?)
            .connect(name, tcp)
            .await
            .map_err(|e| ConnectError::Tls(e.to_string()))?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| ConnectError::MalformedUrl(e.to_string()))?;
    let signature = twilio_signature(auth_token, url.as_str(), &[]);
    let headers = request.headers_mut();
    for (name, value) in [
        ("X-Twilio-Signature", signature.as_str()),
        ("User-Agent", USER_AGENT),
    ] {
        let value =
            HeaderValue::from_str(value).map_err(|e| ConnectError::Handshake(e.to_string()))?;
        headers.insert(name, value);
    }
    let (socket, _) = tokio_tungstenite::client_async_with_config(request, io, Some(ws_config()))
        .await
        .map_err(|e| ConnectError::Handshake(e.to_string()))?;
    Ok(socket)
}

/// The socket's buffers and limits. tungstenite's default read buffer is 128 KiB, and it
/// zeroes that much before each read: with a 20 ms media message on each of a thousand
/// streams, that memset was the switch's largest cost (18 % of its CPU at 300 streams) and
/// 128 MB of memory. App messages are small (a frame of audio is ~300 bytes of JSON) and a
/// large one is simply read in several chunks. A message may carry at most 4 MiB: more than
/// the 60 s the playout queue holds, in base64.
fn ws_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(4096)
        .max_message_size(Some(4 << 20))
        .max_frame_size(Some(4 << 20))
}

/// The client TLS configuration: the system's roots, built once.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, ConnectError> {
    use rustls_platform_verifier::ConfigVerifierExt as _;
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            install_crypto_provider();
            rustls::ClientConfig::with_platform_verifier()
                .map(Arc::new)
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(ConnectError::Tls)
}

#[cfg(test)]
mod tests {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

    use super::*;
    use crate::config::Cidr;
    use crate::webhook::sign::verify_twilio_signature;

    fn loopback_allowed() -> Guard {
        Guard::new(&[Cidr::parse("127.0.0.0/8").unwrap()])
    }

    #[test]
    fn urls_are_checked_and_lose_their_query() {
        assert_eq!(
            stream_url("wss://agent.example/media?token=x#f")
                .unwrap()
                .as_str(),
            "wss://agent.example/media"
        );
        for bad in [
            "https://agent.example/",
            "mailto:agent@example.com",
            "not a url",
        ] {
            assert_eq!(stream_url(bad).unwrap_err().code(), 31923, "{bad}");
        }
    }

    /// A stream server on loopback: the upgrade is signed over the URL without its query,
    /// and text frames go both ways.
    #[tokio::test]
    #[allow(
        clippy::result_large_err,
        reason = "tungstenite's upgrade callback returns its own ErrorResponse"
    )]
    async fn connects_signed_and_carries_frames_both_ways() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut seen = None;
            let mut ws =
                tokio_tungstenite::accept_hdr_async(tcp, |req: &Request, resp: Response| {
                    let sig = req
                        .headers()
                        .get("x-twilio-signature")
                        .map(|v| v.to_str().unwrap().to_owned());
                    seen = Some((req.uri().to_string(), sig));
                    Ok(resp)
                })
                .await
                .unwrap();
            let hello = ws.next().await.unwrap().unwrap();
            ws.send(Message::text(format!("echo {}", hello.to_text().unwrap())))
                .await
                .unwrap();
            seen
        });
        let url = format!("ws://{addr}/media?ignored=1");
        let mut socket = connect(&url, "tok", &loopback_allowed(), Duration::from_secs(5))
            .await
            .unwrap();
        socket.send(Message::text("hi")).await.unwrap();
        let back = socket.next().await.unwrap().unwrap();
        assert_eq!(back.to_text().unwrap(), "echo hi");
        let (path, signature) = server.await.unwrap().unwrap();
        assert_eq!(path, "/media");
        let signed = format!("ws://{addr}/media");
        assert!(verify_twilio_signature(
            "tok",
            &signed,
            &[],
            &signature.unwrap()
        ));
    }

    /// How connecting to `url` fails.
    async fn failure(url: &str, guard: &Guard, timeout: Duration) -> ConnectError {
        match connect(url, "t", guard, timeout).await {
            Ok(_) => panic!("{url} connected"),
            Err(e) => e,
        }
    }

    #[tokio::test]
    async fn refusals_and_failures_map_to_twilio_codes() {
        // Loopback is private: refused unless allowed.
        let err = failure(
            "ws://127.0.0.1:9/x",
            &Guard::default(),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(err.code(), 31902, "{err}");
        assert!(matches!(err, ConnectError::Refused(_)), "{err}");
        // Allowed, but nothing listens.
        let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        let err = failure(
            &format!("ws://127.0.0.1:{port}/x"),
            &loopback_allowed(),
            Duration::from_secs(5),
        )
        .await;
        assert!(matches!(err, ConnectError::Unreachable(_)), "{err}");
        // A server that answers the upgrade with 404.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
            let (mut tcp, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = tcp.read(&mut buf).await;
            let _ = tcp
                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                .await;
        });
        let err = failure(
            &format!("ws://{addr}/x"),
            &loopback_allowed(),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(err.code(), 31920, "{err}");
        // A server that accepts and never answers: the timeout.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _held = tokio::spawn(async move {
            let conn = listener.accept().await;
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(conn);
        });
        let err = failure(
            &format!("ws://{addr}/x"),
            &loopback_allowed(),
            Duration::from_millis(300),
        )
        .await;
        assert_eq!(err.code(), 31901, "{err}");
    }
}
