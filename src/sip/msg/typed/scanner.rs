//! A cursor over a header value that understands SIP's linear white space and quoting.

/// Linear white space (RFC 3261 §25.1 LWS), folds included.
pub fn is_lws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// `s` without leading or trailing LWS.
pub fn trim(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_ascii() && is_lws(c as u8))
}

/// A forward-only scanner over a `&str`.
#[derive(Debug, Clone)]
pub struct Scanner<'a> {
    s: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    /// A scanner at the start of `s`.
    pub fn new(s: &'a str) -> Self {
        Scanner { s, pos: 0 }
    }

    /// What is left.
    pub fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    /// True when nothing but LWS is left.
    pub fn at_end(&mut self) -> bool {
        self.skip_lws();
        self.pos == self.s.len()
    }

    /// The next byte, if any, without consuming it.
    pub fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.pos).copied()
    }

    /// Skips linear white space.
    pub fn skip_lws(&mut self) {
        while self.peek().is_some_and(is_lws) {
            self.pos += 1;
        }
    }

    /// Consumes `c` (after LWS) if it is next.
    pub fn eat(&mut self, c: u8) -> bool {
        self.skip_lws();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Consumes a run of bytes matching `f` (after LWS); `None` if the run is empty.
    pub fn take_while(&mut self, f: impl Fn(u8) -> bool) -> Option<&'a str> {
        self.skip_lws();
        let start = self.pos;
        while self.peek().is_some_and(&f) {
            self.pos += 1;
        }
        (self.pos > start).then(|| &self.s[start..self.pos])
    }

    /// Consumes an RFC 3261 `token`.
    pub fn token(&mut self) -> Option<&'a str> {
        self.take_while(crate::sip::msg::parse::is_token_char)
    }

    /// Consumes a `quoted-string`, returning the text between the quotes (escapes kept).
    /// `None` if unterminated (RFC 4475 `quotbal`).
    pub fn quoted(&mut self) -> Option<&'a str> {
        self.skip_lws();
        if self.peek() != Some(b'"') {
            return None;
        }
        let bytes = self.s.as_bytes();
        let start = self.pos + 1;
        let mut i = start;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'"' => {
                    self.pos = i + 1;
                    return Some(&self.s[start..i]);
                }
                _ => i += 1,
            }
        }
        None
    }

    /// Consumes everything up to (not including) the first byte in `stops` outside quotes;
    /// returns it trimmed.
    pub fn until_any(&mut self, stops: &[u8]) -> &'a str {
        let bytes = self.s.as_bytes();
        let start = self.pos;
        let mut quoted = false;
        while self.pos < bytes.len() {
            let b = bytes[self.pos];
            if b == b'\\' && quoted {
                self.pos += 2;
                continue;
            }
            if b == b'"' {
                quoted = !quoted;
            } else if !quoted && stops.contains(&b) {
                break;
            }
            self.pos += 1;
        }
        self.pos = self.pos.min(bytes.len());
        trim(&self.s[start..self.pos])
    }
}
