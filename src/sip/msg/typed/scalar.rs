//! Single-value scalar headers: Call-ID, Max-Forwards, Expires, and token lists.

use super::scanner::{Scanner, trim};

/// `Call-ID: word ["@" word]` with no whitespace.
pub fn parse_call_id(s: &str) -> Option<&str> {
    let s = trim(s);
    let ok = !s.is_empty()
        && s.bytes().all(|b| b > b' ' && b < 0x7f)
        && s.bytes().filter(|&b| b == b'@').count() <= 1;
    ok.then_some(s)
}

/// `Max-Forwards: 1*DIGIT`, 0..=255 (RFC 4475 `scalar02` has 300 and must fail).
pub fn parse_max_forwards(s: &str) -> Option<u8> {
    let s = trim(s);
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok().and_then(|n| u8::try_from(n).ok())
}

/// `delta-seconds` (Expires, expires params). RFC 3261 §20.19: a value above 2^32-1 is
/// treated as 2^32-1, so this saturates instead of failing.
pub fn parse_delta_seconds(s: &str) -> Option<u32> {
    let s = trim(s);
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(s.parse::<u32>().unwrap_or(u32::MAX))
}

/// The tokens of an option-tag list such as Require or Supported (`100rel, timer`).
pub fn tokens(s: &str) -> impl Iterator<Item = &str> {
    super::split_list(s).filter_map(|t| {
        let mut sc = Scanner::new(t);
        let tok = sc.token()?;
        sc.at_end().then_some(tok)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars() {
        assert_eq!(parse_max_forwards("0068"), Some(68));
        assert_eq!(parse_max_forwards("300"), None);
        assert_eq!(
            parse_delta_seconds("10000000000000000000000"),
            Some(u32::MAX)
        );
        assert_eq!(parse_call_id("a@b"), Some("a@b"));
        assert_eq!(parse_call_id("a b"), None);
        assert_eq!(
            tokens("100rel ,timer").collect::<Vec<_>>(),
            ["100rel", "timer"]
        );
    }
}
