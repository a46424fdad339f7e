//! The handful of string shapes the config checks, written out by hand: each is a fixed
//! anchored pattern, too simple to justify a regex engine in the binary.

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `^{prefix}[0-9a-f]{32}$`: Twilio-shaped ids (`AC…`, `SK…`, `AP…`).
pub fn is_sid(prefix: &str, s: &str) -> bool {
    s.len() == prefix.len() + 32 && s.starts_with(prefix) && is_lower_hex(&s[prefix.len()..])
}

/// `^\+[1-9][0-9]{1,14}$`: an E.164 number with its leading `+`.
pub fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (2..=15).contains(&digits.len())
        && !digits.starts_with('0')
        && digits.bytes().all(|b| b.is_ascii_digit())
}

/// A route pattern: `*` (anything) or a number prefix `^\+?[0-9]*$` that is not empty
/// (`+` alone matches every E.164 number, `+1` North America, `0044` a dialled prefix).
pub fn is_route_pattern(s: &str) -> bool {
    if s == "*" {
        return true;
    }
    let digits = s.strip_prefix('+').unwrap_or(s);
    !s.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `^https?://[^/?#\s]+…`: an absolute HTTP(S) URL with a host. Deliberately loose beyond
/// that; the webhook client does the real parsing and the SSRF checks at fetch time.
pub fn is_http_url(s: &str) -> bool {
    let rest = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"));
    match rest {
        Some(rest) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty()
                && !s
                    .bytes()
                    .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
        }
        None => false,
    }
}

/// `^sips?:\S+$`: a SIP or SIPS URI with something after the scheme.
pub fn is_sip_uri(s: &str) -> bool {
    let rest = s.strip_prefix("sip:").or_else(|| s.strip_prefix("sips:"));
    matches!(rest, Some(r) if !r.is_empty() && !r.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()))
}

/// `^redis(s)?://…`: what the Redis client accepts (`redis+unix://` for a socket too).
pub fn is_redis_url(s: &str) -> bool {
    ["redis://", "rediss://", "redis+unix://", "unix://"]
        .iter()
        .any(|p| s.len() > p.len() && s.starts_with(p))
}

/// `^[0-9a-f]{32}$`: a digest HA1, MD5(username:realm:password) in lowercase hex.
pub fn is_ha1(s: &str) -> bool {
    s.len() == 32 && is_lower_hex(s)
}

/// A SIP user part or client identity we can put in `sip:<identity>@<realm>` without
/// escaping: RFC 3261 `unreserved` plus a few safe `user-unreserved` marks.
pub fn is_sip_user(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')' | b'+'
                )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sids() {
        let hex = "0123456789abcdef0123456789abcdef";
        assert!(is_sid("AC", &format!("AC{hex}")));
        assert!(!is_sid("AC", &format!("SK{hex}")));
        assert!(!is_sid("AC", &format!("AC{}", hex.to_uppercase())));
        assert!(!is_sid("AC", &format!("AC{hex}0")));
        assert!(!is_sid("AC", &format!("AC{}", &hex[1..])));
        // Multi-byte text of the right byte length must not panic or pass.
        assert!(!is_sid("AC", &format!("AC{}é", &hex[2..])));
        assert!(!is_sid("AC", &format!("é{hex}")));
    }

    #[test]
    fn e164() {
        assert!(is_e164("+15551234567"));
        assert!(is_e164("+12"));
        assert!(is_e164("+123456789012345"));
        for bad in [
            "15551234567",
            "+0555",
            "+1",
            "+1234567890123456",
            "+1 555",
            "+",
            "",
        ] {
            assert!(!is_e164(bad), "{bad}");
        }
    }

    #[test]
    fn route_patterns() {
        for good in ["*", "+", "+1", "0044", "1"] {
            assert!(is_route_pattern(good), "{good}");
        }
        for bad in ["", "+*", "1*", "+1a", "**"] {
            assert!(!is_route_pattern(bad), "{bad}");
        }
    }

    #[test]
    fn urls() {
        assert!(is_http_url("https://example.com/voice"));
        assert!(is_http_url("http://127.0.0.1:3000"));
        for bad in [
            "ftp://x",
            "https://",
            "https:///path",
            "example.com",
            "http://a b",
        ] {
            assert!(!is_http_url(bad), "{bad}");
        }
        assert!(is_sip_uri("sip:127.0.0.1:5080"));
        assert!(is_sip_uri("sips:carrier.example.com;transport=tls"));
        assert!(!is_sip_uri("sip:"));
        assert!(!is_sip_uri("tel:+1555"));
        assert!(is_redis_url("redis://127.0.0.1:6379"));
        assert!(!is_redis_url("redis://"));
        assert!(!is_redis_url("http://x"));
    }

    #[test]
    fn ha1_and_users() {
        assert!(is_ha1("0123456789abcdef0123456789abcdef"));
        assert!(!is_ha1("0123456789ABCDEF0123456789abcdef"));
        assert!(is_sip_user("alice"));
        assert!(is_sip_user("alice.smith-2"));
        assert!(!is_sip_user("alice@x"));
        assert!(!is_sip_user("a b"));
        assert!(!is_sip_user(""));
    }
}
