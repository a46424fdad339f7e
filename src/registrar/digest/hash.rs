//! The digest algorithms we accept (RFC 7616 §3.4.1 with qop=auth) and lowercase hex
//! without heap allocation.

use md5::Md5;
use sha2::{Digest as _, Sha256};

/// A digest algorithm offered in our challenges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    /// The `algorithm` parameter value; absent means MD5 (RFC 7616 §3.3).
    pub(super) fn parse(value: Option<&str>) -> Option<Algorithm> {
        match value {
            None => Some(Algorithm::Md5),
            Some(v) if v.eq_ignore_ascii_case("MD5") => Some(Algorithm::Md5),
            Some(v) if v.eq_ignore_ascii_case("SHA-256") => Some(Algorithm::Sha256),
            // MD5-sess, SHA-256-sess, SHA-512-256 and anything else: never offered.
            Some(_) => None,
        }
    }

    /// The token written in challenges.
    pub(super) const fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Length of the raw digest in bytes.
    pub(super) const fn len(self) -> usize {
        match self {
            Algorithm::Md5 => 16,
            Algorithm::Sha256 => 32,
        }
    }

    /// `H(parts[0] ":" parts[1] ":" ...)`.
    pub(super) fn hash(self, parts: &[&[u8]]) -> Raw {
        fn run<D: sha2::Digest>(mut d: D, parts: &[&[u8]], out: &mut [u8]) {
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    d.update(b":");
                }
                d.update(p);
            }
            out.copy_from_slice(&d.finalize());
        }
        let mut raw = Raw {
            bytes: [0; 32],
            len: self.len(),
        };
        match self {
            Algorithm::Md5 => run(Md5::new(), parts, &mut raw.bytes[..16]),
            Algorithm::Sha256 => run(Sha256::new(), parts, &mut raw.bytes),
        }
        raw
    }

    /// `H(username:realm:password)` as hex.
    pub(super) fn ha1(self, username: &str, realm: &str, password: &str) -> Hex {
        self.hash(&[username.as_bytes(), realm.as_bytes(), password.as_bytes()])
            .hex()
    }

    /// The expected `response` for qop=auth (RFC 7616 §3.4.1):
    /// `H(HA1:nonce:nc:cnonce:qop:H(method:uri))`.
    pub(super) fn response(self, ha1: &Hex, r: &ResponseInputs<'_>) -> Raw {
        let ha2 = self.hash(&[r.method.as_bytes(), r.uri.as_bytes()]).hex();
        self.hash(&[
            ha1.as_bytes(),
            r.nonce.as_bytes(),
            r.nc.as_bytes(),
            r.cnonce.as_bytes(),
            r.qop.as_bytes(),
            ha2.as_bytes(),
        ])
    }
}

/// What goes into a qop=auth response besides HA1, as the client sent it.
pub(super) struct ResponseInputs<'a> {
    pub method: &'a str,
    pub uri: &'a str,
    pub nonce: &'a str,
    pub nc: &'a str,
    pub cnonce: &'a str,
    pub qop: &'a str,
}

/// A raw digest of up to 32 bytes.
#[derive(Clone, Copy)]
pub(super) struct Raw {
    bytes: [u8; 32],
    len: usize,
}

impl Raw {
    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    pub(super) fn hex(&self) -> Hex {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = Hex {
            bytes: [0; 64],
            len: self.len * 2,
        };
        for (i, b) in self.as_bytes().iter().enumerate() {
            hex.bytes[2 * i] = DIGITS[usize::from(b >> 4)];
            hex.bytes[2 * i + 1] = DIGITS[usize::from(b & 0x0f)];
        }
        hex
    }

    /// Decodes `len` bytes of hex (either case); `None` if the length or a digit is wrong.
    pub(super) fn from_hex(s: &str, len: usize) -> Option<Raw> {
        let s = s.as_bytes();
        if len > 32 || s.len() != len * 2 {
            return None;
        }
        let mut raw = Raw {
            bytes: [0; 32],
            len,
        };
        for (i, pair) in s.chunks_exact(2).enumerate() {
            raw.bytes[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        }
        Some(raw)
    }
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Lowercase hex of a digest (at most 64 characters).
#[derive(Clone, Copy)]
pub(super) struct Hex {
    bytes: [u8; 64],
    len: usize,
}

impl Hex {
    pub(super) fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// A configured `ha1`: 32 hex digits, normalised to lowercase.
    pub(super) fn md5_from_config(s: &str) -> Option<Hex> {
        Raw::from_hex(s.trim(), 16).map(|r| r.hex())
    }
}

#[cfg(test)]
impl Hex {
    pub(super) fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}
