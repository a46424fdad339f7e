//! PLACEHOLDER written by the config/CLI helper so `main.rs` compiles; the lead replaces
//! this file with the real server.

use std::net::SocketAddr;
use std::path::PathBuf;

/// What `switchboard run` passes to the server.
#[derive(Debug, Clone)]
pub struct RunArgs {
    pub config_path: PathBuf,
    /// `--sip`: overrides `server.sip_listen` (UDP and TCP on this one address).
    pub sip: Option<SocketAddr>,
    /// `--http`: overrides `server.http_listen`.
    pub http: Option<SocketAddr>,
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let _ = args;
    todo!("server::run is written by the lead")
}
