//! A tiny real HTTP/1.1 server for the webhook tests: it records each request and answers
//! with hand-written bytes chosen per request, one request per connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A request as received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(&self.body).into_owned().collect()
    }

    pub fn query(&self) -> Vec<(String, String)> {
        let q = self.target.split_once('?').map_or("", |(_, q)| q);
        form_urlencoded::parse(q.as_bytes()).into_owned().collect()
    }
}

/// What to answer: raw response bytes, after an optional delay.
pub struct Reply {
    pub delay: Option<Duration>,
    pub raw: Vec<u8>,
}

impl Reply {
    pub fn ok(content_type: &str, body: &[u8]) -> Reply {
        let mut raw = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        raw.extend_from_slice(body);
        Reply { delay: None, raw }
    }

    pub fn status(code: u16) -> Reply {
        Reply::raw(format!(
            "HTTP/1.1 {code} Whatever\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ))
    }

    pub fn redirect(location: &str) -> Reply {
        Reply::raw(format!(
            "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ))
    }

    pub fn raw(raw: impl Into<Vec<u8>>) -> Reply {
        Reply {
            delay: None,
            raw: raw.into(),
        }
    }

    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = Some(delay);
        self
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    seen: mpsc::UnboundedReceiver<Seen>,
    count: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl TestServer {
    /// Listen on 127.0.0.1:0; `respond` gets each request and its 0-based index.
    pub async fn start<F>(respond: F) -> TestServer
    where
        F: Fn(&Seen, usize) -> Reply + Send + Sync + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, seen) = mpsc::unbounded_channel();
        let count = Arc::new(AtomicUsize::new(0));
        let respond = Arc::new(respond);
        let counter = Arc::clone(&count);
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let tx = tx.clone();
                let respond = Arc::clone(&respond);
                let counter = Arc::clone(&counter);
                tokio::spawn(async move {
                    let Some(req) = read_request(&mut sock).await else {
                        return;
                    };
                    let index = counter.fetch_add(1, Ordering::SeqCst);
                    let reply = respond(&req, index);
                    let _ = tx.send(req);
                    if let Some(d) = reply.delay {
                        tokio::time::sleep(d).await;
                    }
                    let _ = sock.write_all(&reply.raw).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        TestServer {
            addr,
            seen,
            count,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next request received (waits up to 10 s).
    pub async fn next(&mut self) -> Seen {
        tokio::time::timeout(Duration::from_secs(10), self.seen.recv())
            .await
            .expect("a request in time")
            .expect("server running")
    }

    /// Requests received so far.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).ok()?;
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Seen {
        method,
        target,
        headers,
        body,
    })
}
