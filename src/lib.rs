//! Switchboard: a SIP-native telephony switch.
pub mod sip;
pub mod config;
pub mod api;
pub mod server;
