//! `X-Twilio-Signature` (reference/twiml-and-twilio-client.md §1.4), so validators written
//! for Twilio accept our requests unchanged:
//!
//! 1. start from the full URL (scheme, host, port if any, path, query);
//! 2. for a form POST, append every parameter as `name` + `value`, no delimiters, sorted by
//!    name then value (a GET appends nothing: its parameters are already in the query);
//! 3. Base64(HMAC-SHA1(key = the account's auth token, that string)).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// The request header carrying the signature.
pub const HEADER: &str = "X-Twilio-Signature";

fn mac(auth_token: &str, url: &str, params: &[(String, String)]) -> Hmac<Sha1> {
    // HMAC takes a key of any length; this cannot fail.
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(auth_token.as_bytes())
        .expect("HMAC accepts any key length");
    mac.update(url.as_bytes());
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort_unstable();
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
}

/// The `X-Twilio-Signature` value for a request to `url` carrying the form `params` (pass
/// no params for a GET, whose parameters are part of `url`).
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    STANDARD.encode(mac(auth_token, url, params).finalize().into_bytes())
}

/// Whether `signature` (the header value) is right for this request. The comparison is
/// constant-time; a value that is not Base64 is simply wrong.
pub fn verify_twilio_signature(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    signature: &str,
) -> bool {
    match STANDARD.decode(signature.trim()) {
        Ok(raw) => mac(auth_token, url, params).verify_slice(&raw).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    /// The published vector (reference §1.4), params given out of order on purpose.
    fn vector() -> Vec<(String, String)> {
        p(&[
            ("To", "+18005551212"),
            ("CallSid", "CA1234567890ABCDE"),
            ("From", "+12349013030"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
        ])
    }

    #[test]
    fn published_vector() {
        assert_eq!(
            twilio_signature("12345", URL, &vector()),
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        );
    }

    #[test]
    fn verify_accepts_only_the_right_signature() {
        let params = vector();
        assert!(verify_twilio_signature(
            "12345",
            URL,
            &params,
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
        // Wrong token, URL, parameter value; a truncated and a non-Base64 header.
        assert!(!verify_twilio_signature(
            "12346",
            URL,
            &params,
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
        assert!(!verify_twilio_signature(
            "12345",
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            &params,
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
        let mut other = params.clone();
        other[0].1.push('3');
        assert!(!verify_twilio_signature(
            "12345",
            URL,
            &other,
            "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
        ));
        assert!(!verify_twilio_signature(
            "12345",
            URL,
            &params,
            "0/KCTR6DLpKmkAf8muzZqo1nDg"
        ));
        assert!(!verify_twilio_signature(
            "12345",
            URL,
            &params,
            "not base64!"
        ));
        assert!(!verify_twilio_signature("12345", URL, &params, ""));
    }

    #[test]
    fn repeated_names_sort_by_value() {
        let a = p(&[("A", "2"), ("A", "1"), ("B", "x")]);
        let b = p(&[("B", "x"), ("A", "1"), ("A", "2")]);
        assert_eq!(
            twilio_signature("k", "https://e.example/", &a),
            twilio_signature("k", "https://e.example/", &b)
        );
        // Name+value concatenation: "A1A2Bx".
        let direct = twilio_signature("k", "https://e.example/A1A2Bx", &[]);
        assert_eq!(twilio_signature("k", "https://e.example/", &a), direct);
    }
}
