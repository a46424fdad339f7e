//! The registrar: REGISTER with a bearer token (RFC 8898) or Digest (RFC 3261 §22, RFC 8760)
//! makes a client reachable, and that registration is its presence.

pub mod bans;
pub mod digest;
pub mod location;
pub mod presence;
pub mod register;
pub mod token;
