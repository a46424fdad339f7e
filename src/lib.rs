//! Switchboard: a SIP-native telephony switch.
//!
//! ```text
//!  transport/ --bytes--> sip/ (sans-IO: msg, screen, transaction) --events--> shard (TU)
//!      ^                    |
//!      +----Output::Send----+
//!  config/ (TOML, validate, reload)   api/ (HTTP)   server (wiring)   main.rs (CLI)
//! ```
// No unsafe code anywhere but `media::mmsg`, the relay's batched socket calls (libc's
// recvmmsg/sendmmsg have no safe wrapper in std), which allows it for that one file.
#![deny(unsafe_code)]

pub mod api;
pub mod call;
pub mod config;
pub mod ids;
pub mod instructions;
pub mod media;
pub mod metrics;
pub mod percent;
pub mod registrar;
pub mod server;
pub mod shard;
pub mod sip;
pub mod time;
pub mod transport;
pub mod webhook;
