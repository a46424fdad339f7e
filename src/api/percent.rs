//! Percent-encoding for path segments (RFC 3986 §2.1). `+` is a plus here: form decoding
//! (where it means a space) applies to query strings, not paths.

/// Decode `%XX` escapes; `None` for a malformed escape or bytes that are not UTF-8.
pub(super) fn decode(segment: &str) -> Option<String> {
    if !segment.contains('%') {
        return Some(segment.to_owned());
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hi = (hex[0] as char).to_digit(16)?;
            let lo = (hex[1] as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Encode everything but RFC 3986 unreserved characters, for building URIs.
pub(super) fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for &b in segment.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_rejects() {
        assert_eq!(decode("alice").as_deref(), Some("alice"));
        assert_eq!(decode("a%20b+c").as_deref(), Some("a b+c"));
        assert_eq!(decode("%E2%9C%93").as_deref(), Some("✓"));
        assert_eq!(decode("a%2Fb").as_deref(), Some("a/b"));
        assert_eq!(decode("%"), None);
        assert_eq!(decode("%4"), None);
        assert_eq!(decode("%zz"), None);
        assert_eq!(decode("%FF"), None, "not UTF-8");
    }

    #[test]
    fn encode_round_trips() {
        for s in ["alice", "a b/c?d", "✓ü", "x%y+z"] {
            assert_eq!(decode(&encode(s)).as_deref(), Some(s));
        }
        assert_eq!(encode("a b"), "a%20b");
    }
}
