//! The HTTP side: `/health` now; the Twilio-shaped REST API and `/metrics` later. Plain
//! hyper 1 over HTTP/1.1, one task per connection.

mod health;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::config::Live;

type Body = Full<Bytes>;

/// Serve HTTP on `listener` until the task is dropped (the server aborts it on shutdown).
///
/// Accept errors do not end it: a connection reset before we took it is skipped, and
/// anything else (typically EMFILE, out of file descriptors) is logged and retried after a
/// short pause, because it passes once other connections close and a dead API would be
/// worse. The `Result` leaves room for startup work that can fail.
pub async fn serve(listener: TcpListener, live: Arc<Live>) -> std::io::Result<()> {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "http accept failed; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let live = Arc::clone(&live);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let live = Arc::clone(&live);
                async move { Ok::<_, Infallible>(route(req, &live)) }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "http connection ended with error");
            }
        });
    }
}

/// Errors about the one connection being accepted, not the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset, Interrupted};
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted
    )
}

fn route(req: Request<Incoming>, _live: &Live) -> Response<Body> {
    match req.uri().path() {
        "/health" => health::handle(req.method()),
        _ => json_bytes(StatusCode::NOT_FOUND, health::NOT_FOUND),
    }
}

fn json(status: StatusCode, body: &'static str) -> Response<Body> {
    json_bytes(status, Bytes::from_static(body.as_bytes()))
}

fn json_bytes(status: StatusCode, body: Bytes) -> Response<Body> {
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: std::net::SocketAddr, req: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(req.as_bytes()).await.expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        out
    }

    #[tokio::test]
    async fn health_and_404() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let live = Arc::new(Live::new("unused.toml", crate::config::Config::default()));
        let server = tokio::spawn(serve(listener, live));

        let ok = get(
            addr,
            "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("content-type: application/json"), "{ok}");
        assert!(ok.ends_with(r#"{"status":"ok"}"#), "{ok}");

        let nf = get(
            addr,
            "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(nf.starts_with("HTTP/1.1 404 Not Found\r\n"), "{nf}");
        assert!(nf.contains(r#""status":404"#), "{nf}");

        let m = get(
            addr,
            "POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(m.starts_with("HTTP/1.1 405 "), "{m}");
        server.abort();
    }
}
