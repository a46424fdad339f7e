//! The customer web app (`examples/customer_app.rs`) as a test fixture: starts the built
//! example on 127.0.0.1 with a script, and collects the JSON line it prints for every
//! request so a test can assert what the switch sent (parameters, signature).
//!
//! ```ignore
//! let app = CustomerApp::start(AUTH_TOKEN, r#"
//!     [[route]]
//!     path = "/voice"
//!     body = "<Response><Dial><Client>bob</Client></Dial></Response>"
//! "#);
//! // config: voice_url = app.url("/voice")
//! let seen = app.wait_requests(1, Duration::from_secs(10));
//! assert_eq!(seen[0]["params"]["To"], "+15550100001");
//! assert_eq!(seen[0]["signature_ok"], true);
//! ```
//!
//! The binary is `target/debug/examples/customer_app` beside the test executable
//! (`target/debug/deps/…`), put there by `cargo build --examples` (the README's test command
//! runs it first: `cargo test --all-targets` builds examples only as test harnesses, under
//! hashed names). Set `CUSTOMER_APP_BIN` to use another build.

// The request lines are awaited with real deadlines (never asserted as durations).
#![allow(clippy::disallowed_methods)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long the app may take from spawn to printing `listening`.
pub const APP_START_DEADLINE: Duration = Duration::from_secs(10);

/// The example binary: `CUSTOMER_APP_BIN`, else [`example_bin`]`("customer_app")`.
pub fn customer_app_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("CUSTOMER_APP_BIN") {
        return PathBuf::from(p);
    }
    example_bin("customer_app")
}

/// `<target>/<profile>/examples/<name>`, found from this test executable's path
/// (`<target>/<profile>/deps/<test>-<hash>`), where `cargo build --examples` puts it.
pub fn example_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executable lives in <target>/<profile>/deps");
    profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// A form (or query) parameter of a request record, "" when absent.
pub fn param<'a>(req: &'a Value, name: &str) -> &'a str {
    req["params"][name].as_str().unwrap_or("")
}

/// Requests seen so far, and a signal for each new one.
type Seen = Arc<(Mutex<Vec<Value>>, Condvar)>;

/// A running customer app. Killed (and its script file removed) on drop.
pub struct CustomerApp {
    child: Child,
    addr: SocketAddr,
    script: PathBuf,
    seen: Seen,
    /// Lines on stdout that were not JSON (should be none after `listening`).
    other: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
}

impl CustomerApp {
    /// Starts the app on `127.0.0.1:0`, checking signatures with `auth_token` and answering
    /// from `script_toml` (the `[[route]]` format in `examples/customer_app.rs`; an empty
    /// string means no route: every signed request gets 404). Panics with the app's output
    /// if it does not print `listening http://ADDR` within [`APP_START_DEADLINE`].
    pub fn start(auth_token: &str, script_toml: &str) -> CustomerApp {
        let script = std::env::temp_dir().join(format!(
            "{}.toml",
            super::unique("switchboard-customer-app")
        ));
        std::fs::write(&script, script_toml)
            .unwrap_or_else(|e| panic!("write {}: {e}", script.display()));
        CustomerApp::spawn(auth_token, Some(script))
    }

    /// Starts the app with its built-in demo script (`/voice` dials client `alice` with
    /// `action="/dial-status"`; `/dial-status` hangs up).
    pub fn start_demo(auth_token: &str) -> CustomerApp {
        CustomerApp::spawn(auth_token, None)
    }

    fn spawn(auth_token: &str, script: Option<PathBuf>) -> CustomerApp {
        let bin = customer_app_bin();
        let mut cmd = Command::new(&bin);
        cmd.args(["--listen", "127.0.0.1:0", "--auth-token", auth_token]);
        if let Some(s) = &script {
            cmd.arg("--script").arg(s);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot spawn {}: {e} (build it first: cargo build --examples)",
                    bin.display()
                )
            });

        let stderr = Arc::new(Mutex::new(String::new()));
        let err_pipe = child.stderr.take().expect("stderr piped");
        let err_buf = Arc::clone(&stderr);
        let err_reader = std::thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines() {
                let Ok(line) = line else { break };
                let mut buf = err_buf.lock().unwrap();
                if buf.len() < 1 << 20 {
                    buf.push_str(&line);
                    buf.push('\n');
                }
            }
        });

        // The first line (`listening …`) goes through the channel; every later line is
        // parsed as a request record on the same thread, so none is lost or reordered.
        let seen: Seen = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let other = Arc::new(Mutex::new(Vec::new()));
        let out_pipe = child.stdout.take().expect("stdout piped");
        let (tx, rx) = mpsc::channel::<String>();
        let (seen2, other2) = (Arc::clone(&seen), Arc::clone(&other));
        let out_reader = std::thread::spawn(move || {
            let mut lines = BufReader::new(out_pipe).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            drop(tx);
            for line in lines {
                let Ok(line) = line else { break };
                match serde_json::from_str::<Value>(&line) {
                    Ok(v) => {
                        let (list, cv) = &*seen2;
                        list.lock().unwrap().push(v);
                        cv.notify_all();
                    }
                    Err(_) => other2.lock().unwrap().push(line),
                }
            }
        });

        let addr = match rx.recv_timeout(APP_START_DEADLINE) {
            Ok(line) => line
                .strip_prefix("listening http://")
                .and_then(|a| a.trim().parse::<SocketAddr>().ok())
                .ok_or_else(|| format!("first line is not `listening http://ADDR`: {line:?}")),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                Err(format!("no `listening` line within {APP_START_DEADLINE:?}"))
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err("stdout closed before `listening`".to_owned())
            }
        };
        match addr {
            Ok(addr) => CustomerApp {
                child,
                addr,
                script: script.unwrap_or_default(),
                seen,
                other,
                readers: vec![err_reader, out_reader],
            },
            Err(why) => {
                let _ = child.kill();
                let status = child
                    .wait()
                    .map(|s| s.to_string())
                    .unwrap_or_else(|e| e.to_string());
                let _ = err_reader.join();
                let _ = out_reader.join();
                if let Some(s) = &script {
                    let _ = std::fs::remove_file(s);
                }
                panic!(
                    "customer_app ({}) failed to start: {why}\nexit: {status}\n--- stderr ---\n{}",
                    bin.display(),
                    stderr.lock().unwrap()
                );
            }
        }
    }

    /// Where the app listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT{path}`: the URL to configure (`voice_url`, `action`, …).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Every request record seen so far, in arrival order.
    pub fn requests(&self) -> Vec<Value> {
        self.seen.0.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests have been seen or `timeout` passes, and returns all
    /// seen so far (fewer than `n` on timeout: assert on the length).
    pub fn wait_requests(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        let (list, cv) = &*self.seen;
        let mut guard = list.lock().unwrap();
        while guard.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            guard = cv.wait_timeout(guard, left).unwrap().0;
        }
        guard.clone()
    }

    /// The first request for which `pred` holds, waiting up to 5 s for it; panics naming
    /// `what` and listing what came instead.
    pub fn wait_request(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(r) = self.requests().into_iter().find(|r| pred(r)) {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "no {what} among {:?}",
                self.requests()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Lines the app printed after `listening` that were not JSON records (expect none).
    pub fn stray_output(&self) -> Vec<String> {
        self.other.lock().unwrap().clone()
    }
}

impl Drop for CustomerApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        if !self.script.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.script);
        }
    }
}
