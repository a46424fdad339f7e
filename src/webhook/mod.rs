//! Webhooks: HTTP requests to customer URLs (DESIGN.md "Webhooks").
//!
//! - `sign`: `X-Twilio-Signature`, so Twilio validators accept our requests;
//! - `ssrf`: which targets may be fetched (http/https, no private addresses unless
//!   allow-listed), checked on URLs, redirect hops and every DNS answer;
//! - `client`: `WebhookClient`, the one HTTP client (timeouts, redirect and body caps,
//!   signing) and its `Response`;
//! - `error`: `WebhookError`, each failure with its class and Twilio error code;
//! - `presence_callback`: POSTs presence changes to accounts' `presence_callback` URLs.
//!
//! Who calls what: the server builds one `WebhookClient` from `[webhooks]` and shares it;
//! it calls `presence_callback::spawn` once at start-up; call handling fetches TwiML with
//! `post_form`/`get_query` and sends `ErrorCode = err.twilio_code()` to a fallback URL.

pub mod client;
pub mod error;
pub mod presence_callback;
pub mod sign;
pub mod ssrf;
pub mod status_callback;
pub mod stream_socket;
pub mod voice;

#[cfg(test)]
mod testserver;

pub use client::{Response, USER_AGENT, WebhookClient, install_crypto_provider};
pub use error::WebhookError;
pub use sign::{twilio_signature, verify_twilio_signature};
