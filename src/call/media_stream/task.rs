//! One media stream's WebSocket, run as its own task off the relay threads.
//!
//! The call (and the relay's audio taps) talk to it through a [`StreamHandle`]: a bounded
//! queue of [`ToApp`] items, taken with `try_send`, so a slow or stuck app never holds up
//! the caller: when its queue is full, frames are dropped and counted. What the app sends
//! comes back as [`FromApp`] on the channel the caller gives [`spawn`]: its media, marks and
//! clears (bidirectional streams only; a `<Start>` fork's app messages are ignored, as
//! Twilio does), then how the stream ended.

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::messages::{AppMessage, Outgoing, StreamIds, Track, parse_app_message};
use crate::media::stream_tap::{AppQueue, StreamOut, ToApp};
use crate::media::{EndpointId, MediaEngine};
use crate::webhook::ssrf::Guard;
use crate::webhook::stream_socket::{self, ConnectError};

/// Frames (and events) that may wait for one app before more are dropped: a second of
/// audio on both tracks.
pub const TO_APP_QUEUE: usize = 100;

/// Messages written to the app in one go at most (see the send loop).
const MAX_BATCH: usize = 32;

/// What a stream needs to connect and to introduce itself.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    pub url: String,
    /// The account's auth token: it signs the upgrade.
    pub auth_token: String,
    pub guard: Guard,
    pub connect_timeout: Duration,
    pub ids: StreamIds,
    /// The tracks the `start` message announces.
    pub tracks: Vec<Track>,
    pub parameters: Vec<(String, String)>,
    /// `<Connect><Stream>`: the app's media, marks and clears are taken, and DTMF is sent.
    pub bidirectional: bool,
    /// Where a bidirectional stream's app messages go: straight to the relay thread that
    /// plays the leg (the media engine and the leg's endpoint; no hop through the call's
    /// task, 50 times a second), or, without one, back as [`FromApp::Message`].
    pub playout: Option<(Arc<MediaEngine>, EndpointId)>,
}

impl From<AppMessage> for StreamOut {
    fn from(m: AppMessage) -> Self {
        match m {
            AppMessage::Media(audio) => StreamOut::Audio(audio),
            AppMessage::Mark(name) => StreamOut::Mark(name),
            AppMessage::Clear => StreamOut::Clear,
        }
    }
}

/// What comes back from the stream.
#[derive(Debug)]
pub enum FromApp {
    /// The socket is up and `connected` and `start` are sent.
    Started,
    /// A message of a bidirectional stream's app.
    Message(AppMessage),
    /// The stream is over; nothing follows.
    Ended(Ended),
}

/// How a stream ended.
#[derive(Debug)]
pub enum Ended {
    /// Stopped by us (`<Stop>`, REST, the call's end): `stop` was sent and the socket closed.
    Stopped,
    /// The app closed the socket (Twilio's 31921; a `<Connect>` then goes on).
    ClosedByApp,
    /// It never connected.
    ConnectFailed(ConnectError),
    /// The socket broke (31903).
    Broken(String),
}

/// The call's side of a running stream.
#[derive(Debug, Clone)]
pub struct StreamHandle {
    queue: AppQueue,
    stop: mpsc::Sender<()>,
}

impl StreamHandle {
    /// Queues an item for the app; false (and counted) when its queue is full.
    pub fn send(&self, item: ToApp) -> bool {
        self.queue.send(item)
    }

    /// The stream's queue, for the relay's tap on the call's audio.
    pub fn queue(&self) -> &AppQueue {
        &self.queue
    }

    /// Items dropped because the app's queue was full.
    pub fn dropped(&self) -> u64 {
        self.queue.dropped()
    }

    /// Ends the stream: `stop` goes out after what is queued, then the socket closes.
    pub fn stop(&self) {
        let _ = self.stop.try_send(());
    }
}

/// Starts the stream's task; what the app says comes back on `reports`, tagged `key`.
pub fn spawn(spec: StreamSpec, key: u64, reports: mpsc::Sender<(u64, FromApp)>) -> StreamHandle {
    let (queue, rx) = AppQueue::new(TO_APP_QUEUE);
    let (stop, stop_rx) = mpsc::channel(1);
    tokio::spawn(async move {
        let ended = run(spec, rx, stop_rx, key, &reports).await;
        let _ = reports.send((key, FromApp::Ended(ended))).await;
    });
    StreamHandle { queue, stop }
}

async fn run(
    spec: StreamSpec,
    mut rx: mpsc::Receiver<ToApp>,
    mut stop: mpsc::Receiver<()>,
    key: u64,
    reports: &mpsc::Sender<(u64, FromApp)>,
) -> Ended {
    let socket = stream_socket::connect(
        &spec.url,
        &spec.auth_token,
        &spec.guard,
        spec.connect_timeout,
    )
    .await;
    let mut socket = match socket {
        Ok(s) => s,
        Err(e) => return Ended::ConnectFailed(e),
    };
    let mut out = Outgoing::new(spec.ids.clone());
    let hello = [out.connected(), out.start(&spec.tracks, &spec.parameters)];
    for text in hello {
        if let Err(e) = socket.send(Message::text(text)).await {
            return Ended::Broken(e.to_string());
        }
    }
    let _ = reports.send((key, FromApp::Started)).await;
    let stream_sid = spec.ids.stream_sid.clone();
    loop {
        tokio::select! {
            // Stopping goes after what is already queued for the app.
            biased;
            item = rx.recv() => {
                // The handle was dropped: the call is gone.
                let Some(item) = item else {
                    return stop_stream(socket, &mut out).await;
                };
                // What else is already waiting goes in the same write: behind a busy
                // moment, a stream catches up in one system call, not one per frame.
                let mut next = Some(item);
                let mut queued = 0;
                while let Some(item) = next.take() {
                    let text = match item {
                        ToApp::Media { track, at_ms, payload } => Some(out.media(track, at_ms, &payload)),
                        ToApp::Dtmf(d) if spec.bidirectional => Some(out.dtmf(d)),
                        // A fork does not report key presses.
                        ToApp::Dtmf(_) => None,
                        ToApp::Mark(name) => Some(out.mark(&name)),
                    };
                    if let Some(text) = text {
                        if let Err(e) = socket.feed(Message::text(text)).await {
                            return Ended::Broken(e.to_string());
                        }
                        queued += 1;
                    }
                    if queued < MAX_BATCH {
                        next = rx.try_recv().ok();
                    }
                }
                if let Err(e) = socket.flush().await {
                    return Ended::Broken(e.to_string());
                }
            }
            _ = stop.recv() => return stop_stream(socket, &mut out).await,
            frame = socket.next() => match frame {
                Some(Ok(Message::Text(t))) if spec.bidirectional => {
                    match parse_app_message(t.as_str(), &stream_sid) {
                        Ok(m) => match &spec.playout {
                            Some((engine, endpoint)) => engine.stream_out(*endpoint, key, m.into()),
                            None => {
                                if reports.send((key, FromApp::Message(m))).await.is_err() {
                                    return stop_stream(socket, &mut out).await;
                                }
                            }
                        },
                        // Twilio's 31924: logged and skipped, the stream goes on.
                        Err(e) => tracing::info!(stream = %stream_sid, error = %e, "stream message skipped (31924)"),
                    }
                }
                Some(Ok(Message::Text(_))) => {
                    tracing::debug!(stream = %stream_sid, "a fork's app sent a message; ignored");
                }
                Some(Ok(Message::Binary(_))) => {
                    tracing::info!(stream = %stream_sid, "binary frame from the app skipped (31924)");
                }
                Some(Ok(Message::Close(_))) | None => return Ended::ClosedByApp,
                // Pings are answered by tungstenite on the next write or flush.
                Some(Ok(_)) => {}
                Some(Err(e)) => return Ended::Broken(e.to_string()),
            },
        }
    }
}

/// Sends `stop` and closes the socket (best effort: the app may be gone already).
async fn stop_stream(mut socket: stream_socket::StreamSocket, out: &mut Outgoing) -> Ended {
    let _ = socket.send(Message::text(out.stop())).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), socket.close(None)).await;
    Ended::Stopped
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use tokio::net::TcpListener;

    use super::*;
    use crate::config::Cidr;
    use crate::media::stream_playout::FRAME;

    fn spec(url: String, bidirectional: bool) -> StreamSpec {
        StreamSpec {
            url,
            auth_token: "tok".into(),
            guard: Guard::new(&[Cidr::parse("127.0.0.0/8").unwrap()]),
            connect_timeout: Duration::from_secs(5),
            ids: StreamIds {
                stream_sid: "MZ00000000000000000000000000000001".into(),
                account_sid: "AC00000000000000000000000000000001".into(),
                call_sid: "CA00000000000000000000000000000001".into(),
            },
            tracks: vec![Track::Inbound],
            parameters: vec![("agent".into(), "echo".into())],
            bidirectional,
            playout: None,
        }
    }

    /// An echo agent written from the published schema: every `media` it gets goes back
    /// as the app's `media`, and after the 3rd a `mark`; it records what it received.
    async fn echo_agent(listener: TcpListener) -> Vec<Value> {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
        let mut got = Vec::new();
        while let Some(Ok(frame)) = ws.next().await {
            let Message::Text(t) = frame else { continue };
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["event"] == "media" {
                let reply = serde_json::json!({"event": "media", "streamSid": v["streamSid"],
                    "media": {"payload": v["media"]["payload"]}});
                ws.send(Message::text(reply.to_string())).await.unwrap();
                if v["media"]["chunk"] == "3" {
                    let mark = serde_json::json!({"event": "mark", "streamSid": v["streamSid"],
                        "mark": {"name": "after-3"}});
                    ws.send(Message::text(mark.to_string())).await.unwrap();
                }
            }
            let stop = v["event"] == "stop";
            got.push(v);
            if stop {
                break;
            }
        }
        got
    }

    #[tokio::test]
    async fn an_echo_agent_gets_the_schema_and_its_audio_comes_back_in_order() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/agent", listener.local_addr().unwrap());
        let agent = tokio::spawn(echo_agent(listener));
        let (tx, mut rx) = mpsc::channel(64);
        let handle = spawn(spec(url, true), 7, tx);
        assert!(matches!(
            rx.recv().await.map(|(_, r)| r),
            Some(FromApp::Started)
        ));
        for i in 0..5u8 {
            let sent = ToApp::Media {
                track: Track::Inbound,
                at_ms: 20 * u64::from(i),
                payload: [i; FRAME],
            };
            assert!(handle.send(sent));
        }
        let mut back = Vec::new();
        while back.len() < 6 {
            match rx.recv().await.map(|(_, r)| r).unwrap() {
                FromApp::Message(m) => back.push(m),
                other => panic!("{other:?}"),
            }
        }
        let expected: Vec<AppMessage> = (0..3u8)
            .map(|i| AppMessage::Media(vec![i; FRAME]))
            .chain([AppMessage::Mark("after-3".into())])
            .chain((3..5u8).map(|i| AppMessage::Media(vec![i; FRAME])))
            .collect();
        assert_eq!(back, expected);
        handle.stop();
        assert!(matches!(
            rx.recv().await.map(|(_, r)| r),
            Some(FromApp::Ended(Ended::Stopped))
        ));
        let got = agent.await.unwrap();
        let events: Vec<&str> = got.iter().map(|v| v["event"].as_str().unwrap()).collect();
        assert_eq!(
            events,
            [
                "connected",
                "start",
                "media",
                "media",
                "media",
                "media",
                "media",
                "stop"
            ]
        );
        assert_eq!(got[1]["start"]["customParameters"]["agent"], "echo");
        assert_eq!(got[6]["media"]["timestamp"], "80");
        assert_eq!(got[7]["sequenceNumber"], "7");
    }

    #[tokio::test]
    async fn the_app_closing_ends_the_stream_and_a_refused_url_never_starts() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/bye", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            // Reads connected and start, then hangs up.
            let _ = ws.next().await;
            let _ = ws.next().await;
            let _ = ws.close(None).await;
        });
        let (tx, mut rx) = mpsc::channel(8);
        let _handle = spawn(spec(url, true), 7, tx);
        assert!(matches!(
            rx.recv().await.map(|(_, r)| r),
            Some(FromApp::Started)
        ));
        assert!(matches!(
            rx.recv().await.map(|(_, r)| r),
            Some(FromApp::Ended(Ended::ClosedByApp))
        ));

        let (tx, mut rx) = mpsc::channel(8);
        let mut refused = spec("ws://127.0.0.1:9/x".into(), true);
        refused.guard = Guard::default();
        let _handle = spawn(refused, 7, tx);
        match rx.recv().await.map(|(_, r)| r) {
            Some(FromApp::Ended(Ended::ConnectFailed(e))) => assert_eq!(e.code(), 31902),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_stuck_app_costs_dropped_frames_not_a_blocked_sender() {
        // A server that completes the upgrade and then never reads.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}/stuck", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let _ws = tokio_tungstenite::accept_async(tcp).await.unwrap();
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        let (tx, mut rx) = mpsc::channel(8);
        let handle = spawn(spec(url, false), 7, tx);
        assert!(matches!(
            rx.recv().await.map(|(_, r)| r),
            Some(FromApp::Started)
        ));
        // Far more than the socket buffers and the queue hold: `send` never waits.
        let frame = ToApp::Media {
            track: Track::Inbound,
            at_ms: 0,
            payload: [0x55; FRAME],
        };
        let sent = (0..50_000).filter(|_| handle.send(frame.clone())).count();
        assert!(sent < 50_000);
        assert_eq!(handle.dropped(), (50_000 - sent) as u64);
    }
}
