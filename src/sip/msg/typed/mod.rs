//! Typed views of header values, parsed on demand and borrowing from the message buffer.
//!
//! Every parser here treats folded line breaks (CRLF followed by SP/HTAB) as ordinary linear
//! white space, so `Via: SIP / 2.0\r\n /UDP host` (RFC 4475 `wsinv`) reads like
//! `Via: SIP/2.0/UDP host`. None of them allocates.

mod auth;
mod cseq;
mod host;
mod name_addr;
mod params;
mod scalar;
mod scanner;
mod uri;
mod via;

pub use auth::{AuthParams, Challenge, Credentials, quote, unquote};
pub use cseq::CSeq;
pub use host::Host;
pub use name_addr::{NameAddr, Uri};
pub use params::Params;
pub use scalar::{parse_call_id, parse_delta_seconds, parse_max_forwards, tokens};
pub use scanner::Scanner;
pub use uri::{Scheme, SipUri};
pub use via::Via;

/// Splits a list header value at top-level commas (outside quoted strings and `<...>`),
/// trimming linear white space and skipping empty elements.
pub fn split_list(value: &str) -> impl Iterator<Item = &str> {
    let bytes = value.as_bytes();
    let mut pos = 0;
    std::iter::from_fn(move || {
        while pos < bytes.len() {
            let start = pos;
            let (mut quoted, mut angle) = (false, false);
            while pos < bytes.len() {
                match bytes[pos] {
                    b'\\' if quoted => pos += 1,
                    b'"' => quoted = !quoted,
                    b'<' if !quoted => angle = true,
                    b'>' if !quoted => angle = false,
                    b',' if !quoted && !angle => break,
                    _ => {}
                }
                pos += 1;
            }
            let item = scanner::trim(&value[start..pos.min(bytes.len())]);
            pos += 1;
            if !item.is_empty() {
                return Some(item);
            }
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::split_list;

    #[test]
    fn splits_outside_quotes_and_brackets() {
        let v: Vec<_> = split_list("\"a, b\" <sip:x;p=1,2>, <sip:y> ,, z").collect();
        assert_eq!(v, ["\"a, b\" <sip:x;p=1,2>", "<sip:y>", "z"]);
    }
}
