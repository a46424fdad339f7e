//! Switchboard: a SIP-native telephony switch.
//!
//! Messages flow up from the sockets: `transport` parses them, a `shard` runs them through
//! its `sip` transaction layer and answers OPTIONS and REGISTER (`registrar`) itself, and
//! hands INVITEs and everything else of a call to that call's task (`call`), which runs the
//! customer's TwiML (`webhook`, `instructions`) and bridges audio through `media`.
//!
//! The layers, top to bottom; each imports only the ones it names, all below it, and the
//! leaf utilities (`sip-tests/arch.rs` checks this):
//!
//! ```text
//!  main.rs       CLI: run, check, token, route                   -> server, registrar, config
//!  server        binds, starts everything, signals, reload       -> every layer below
//!  shard         one task per UDP socket: the clock and a sip
//!                transaction layer; OPTIONS, REGISTER, routing   -> call, registrar, transport,
//!                by Call-ID to call tasks                           metrics, sip
//!  api           HTTP: Clients, Calls, Recordings, /metrics      -> call, registrar, media,
//!                                                                   instructions, metrics,
//!                                                                   config, sip
//!  call          one task per call (B2BUA): TwiML, Dial, Play,   -> webhook, registrar, media,
//!                Gather, Record, CDR, recordings                    transport, instructions,
//!                                                                   config, sip
//!  webhook       signed, SSRF-guarded HTTP: voice fetch,         -> registrar, instructions,
//!                status and presence callbacks                      config
//!  registrar     tokens, Digest, location store, presence        -> metrics, config, sip
//!  transport     UDP (SO_REUSEPORT) and TCP sockets, SipSender   -> metrics, sip
//!  media         RTP relay threads: latching, transcoding,       -> config
//!                play, record, DTMF
//!  metrics       counters, Prometheus text                       -> sip
//!  instructions  TwiML parser                                    -> (leaves only)
//!  config        TOML dial plan, validation, live reload         -> (leaves only)
//!  sip           sans-IO: messages, screening, transactions,     -> (leaves only)
//!                dialogs, SDP
//!  ids, percent, time   leaf utilities: any layer may import them; they import nothing
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
