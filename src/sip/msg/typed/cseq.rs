//! The CSeq header (RFC 3261 §20.16).

use super::scanner::Scanner;
use crate::sip::method::Method;

/// `CSeq: 1*DIGIT LWS Method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CSeq<'a> {
    /// The sequence number; RFC 3261 §8.1.1.5 requires it to fit 32 bits, and RFC 4475
    /// `scalar02` (2^65) must fail.
    pub seq: u32,
    /// The method.
    pub method: Method,
    /// The method token as written (for [`Method::Other`]).
    pub method_str: &'a str,
}

impl<'a> CSeq<'a> {
    /// Parses a CSeq value.
    pub fn parse(s: &'a str) -> Option<CSeq<'a>> {
        let mut sc = Scanner::new(s);
        let digits = sc.take_while(|b| b.is_ascii_digit())?;
        let seq = digits.parse::<u32>().ok()?;
        let method_str = sc.token()?;
        if !sc.at_end() {
            return None;
        }
        Some(CSeq {
            seq,
            method: Method::from_bytes(method_str.as_bytes()),
            method_str,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cseq() {
        let c = CSeq::parse("0009\r\n  INVITE").unwrap();
        assert_eq!((c.seq, c.method), (9, Method::Invite));
        assert!(CSeq::parse("36893488147419103232 REGISTER").is_none());
        assert!(CSeq::parse("1").is_none());
        assert!(CSeq::parse("1 INVITE x").is_none());
    }
}
