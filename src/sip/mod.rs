//! The sans-IO SIP core: no tokio, no sockets, no system clock.
//!
//! Everything here is driven by its caller with explicit inputs and times
//! (`handle(now, input)`, `poll_output()`, `poll_timeout()`), so it is tested on a virtual
//! clock with injected loss (see `transaction`).
#![warn(missing_docs)]

pub mod dialog;
pub mod digest_client;
pub mod method;
pub mod msg;
pub mod peer;
pub mod rate_limit;
pub mod screen;
pub mod sdp;
pub mod transaction;

pub use method::Method;

/// Methods the switch accepts, for Allow (RFC 3261 §20.5). INFO and UPDATE are passed
/// between bridged legs.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, INFO, UPDATE";
pub use msg::{HeaderName, SipMessage};
pub use peer::{ConnectionId, Peer, Transport};
