//! The load generators' side of their driver's handshake (`benches/*/run.py`), shared by
//! `stream_load` and `conference_load` through `#[path]` (a folder without `main.rs` is not
//! an example of its own).

use std::io::BufRead as _;
use std::net::SocketAddr;

use serde_json::Value;

/// Reads the driver's lines from stdin up to `{"go": …}` (or its end): each
/// `{"i": N, "relay": PORT}` gives the switch's relay port on 127.0.0.1 for participant N.
/// Entry N of the result is that address; participants the driver named no port for (an
/// unanswered call) stay `None`, and so do indices of `n` or more.
pub fn relay_addrs(n: usize) -> Vec<Option<SocketAddr>> {
    let mut addrs = vec![None; n];
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if v.get("go").is_some() {
            break;
        }
        if let (Some(i), Some(port)) = (v["i"].as_u64(), v["relay"].as_u64())
            && let Some(slot) = addrs.get_mut(i as usize)
        {
            *slot = Some(SocketAddr::from(([127, 0, 0, 1], port as u16)));
        }
    }
    addrs
}
