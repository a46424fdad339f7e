//! Why a webhook fetch failed, with the Twilio error code each failure maps to (reported
//! as `ErrorCode` to a fallback URL, reference/twiml-and-twilio-client.md §1.5). The codes
//! are Twilio's: 11100 invalid URL format, 11200 HTTP retrieval failure (4xx/5xx and the
//! like), 11205 HTTP connection failure (timeouts included), 11206 HTTP protocol violation,
//! 11210 HTTP bad host name (also our SSRF refusals: Twilio files private addresses under
//! the generic 11200, but the host is what is wrong), 11215 too many redirects, 11216
//! invalid redirect (a 3xx not followed), 11750 response body too large (Twilio: over
//! 64 kB), 12300 invalid Content-Type.

use super::ssrf::{DnsFailure, Refused};

/// Marker put in a redirect-policy error when the hop limit is passed.
#[derive(Debug, thiserror::Error)]
#[error("more than {0} redirects")]
pub(crate) struct TooManyRedirects(pub(crate) u32);

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("invalid webhook URL `{url}`: {why}")]
    InvalidUrl { url: String, why: String },
    #[error(transparent)]
    Refused(#[from] Refused),
    #[error("cannot resolve {host}: {why}")]
    Dns { host: String, why: String },
    #[error("connection failed: {0}")]
    Connect(#[source] reqwest::Error),
    #[error("timed out: {0}")]
    Timeout(#[source] reqwest::Error),
    #[error("more than {limit} redirects")]
    TooManyRedirects { limit: u32 },
    #[error("HTTP status {status} is not a redirect that can be followed")]
    InvalidRedirect { status: u16 },
    #[error("HTTP exchange failed: {0}")]
    Protocol(#[source] reqwest::Error),
    #[error("response body larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("HTTP status {status}")]
    Status { status: u16 },
    #[error("unexpected Content-Type {}", content_type.as_deref().unwrap_or("(none)"))]
    ContentType { content_type: Option<String> },
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

impl WebhookError {
    /// A short stable name for logs and metrics.
    pub fn class(&self) -> &'static str {
        match self {
            WebhookError::InvalidUrl { .. } => "invalid_url",
            WebhookError::Refused(_) => "refused",
            WebhookError::Dns { .. } => "dns",
            WebhookError::Connect(_) => "connect",
            WebhookError::Timeout(_) => "timeout",
            WebhookError::TooManyRedirects { .. } => "redirects",
            WebhookError::InvalidRedirect { .. } => "invalid_redirect",
            WebhookError::Protocol(_) => "protocol",
            WebhookError::BodyTooLarge { .. } => "body_too_large",
            WebhookError::Status { .. } => "status",
            WebhookError::ContentType { .. } => "content_type",
            WebhookError::Client(_) => "client",
        }
    }

    /// The Twilio error code for this failure (`ErrorCode` sent to a fallback URL).
    pub fn twilio_code(&self) -> u32 {
        match self {
            WebhookError::InvalidUrl { .. } => 11100,
            WebhookError::Refused(_) | WebhookError::Dns { .. } => 11210,
            WebhookError::Connect(_) | WebhookError::Timeout(_) => 11205,
            WebhookError::TooManyRedirects { .. } => 11215,
            WebhookError::InvalidRedirect { .. } => 11216,
            WebhookError::Protocol(_) => 11206,
            WebhookError::BodyTooLarge { .. } => 11750,
            WebhookError::Status { .. } | WebhookError::Client(_) => 11200,
            WebhookError::ContentType { .. } => 12300,
        }
    }

    /// Classify a reqwest failure. Our own errors (SSRF refusals from the resolver or the
    /// redirect policy, DNS failures, the redirect limit) are found in its source chain.
    pub(crate) fn from_reqwest(e: reqwest::Error) -> WebhookError {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(err) = source {
            if let Some(r) = err.downcast_ref::<Refused>() {
                return WebhookError::Refused(r.clone());
            }
            if let Some(d) = err.downcast_ref::<DnsFailure>() {
                return WebhookError::Dns {
                    host: d.host.clone(),
                    why: d.source.to_string(),
                };
            }
            if let Some(t) = err.downcast_ref::<TooManyRedirects>() {
                return WebhookError::TooManyRedirects { limit: t.0 };
            }
            source = err.source();
        }
        if e.is_timeout() {
            WebhookError::Timeout(e)
        } else if e.is_connect() {
            WebhookError::Connect(e)
        } else if e.is_builder() {
            WebhookError::InvalidUrl {
                url: e.url().map(|u| u.to_string()).unwrap_or_default(),
                why: e.to_string(),
            }
        } else {
            // Malformed responses and connections dropped mid-exchange.
            WebhookError::Protocol(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_classes() {
        let cases: [(WebhookError, &str, u32); 7] = [
            (
                WebhookError::Refused(Refused {
                    target: "127.0.0.1".into(),
                    reason: "loopback".into(),
                }),
                "refused",
                11210,
            ),
            (
                WebhookError::TooManyRedirects { limit: 3 },
                "redirects",
                11215,
            ),
            (
                WebhookError::InvalidRedirect { status: 304 },
                "invalid_redirect",
                11216,
            ),
            (
                WebhookError::BodyTooLarge { limit: 10 },
                "body_too_large",
                11750,
            ),
            (WebhookError::Status { status: 500 }, "status", 11200),
            (
                WebhookError::ContentType { content_type: None },
                "content_type",
                12300,
            ),
            (
                WebhookError::InvalidUrl {
                    url: "x".into(),
                    why: "no scheme".into(),
                },
                "invalid_url",
                11100,
            ),
        ];
        for (e, class, code) in cases {
            assert_eq!((e.class(), e.twilio_code()), (class, code), "{e}");
        }
    }
}
