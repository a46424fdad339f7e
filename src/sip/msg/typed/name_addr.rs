//! name-addr / addr-spec values: From, To, Contact, Route, Record-Route, Path
//! (RFC 3261 §20.10, §25.1).

use super::params::Params;
use super::scanner::{Scanner, trim};
use super::uri::{Scheme, SipUri};

/// A URI as found in a header: a SIP URI we understand, or any other absolute URI kept as
/// text (RFC 4475 `unksm2` has `isbn:` and `name:` URIs, which are legal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Uri<'a> {
    /// sip: or sips:
    Sip(SipUri<'a>),
    /// tel:, urn:, or anything else, as written.
    Other(&'a str),
}

impl<'a> Uri<'a> {
    /// Parses any absolute URI; sip/sips ones must be well formed.
    pub fn parse(s: &'a str) -> Option<Uri<'a>> {
        match Scheme::of(s)? {
            Scheme::Sip | Scheme::Sips => SipUri::parse(s).map(Uri::Sip),
            _ if s.bytes().any(|b| b <= b' ' || b == b'<' || b == b'>') => None,
            _ => Some(Uri::Other(s)),
        }
    }

    /// The SIP URI, if this is one.
    pub fn sip(&self) -> Option<&SipUri<'a>> {
        match self {
            Uri::Sip(u) => Some(u),
            Uri::Other(_) => None,
        }
    }
}

/// `[display-name] <uri> *(;param)` or `uri *(;param)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// The display name (quotes removed, escapes kept), if any.
    pub display: Option<&'a str>,
    /// The URI text as written.
    pub uri_text: &'a str,
    /// The parsed URI.
    pub uri: Uri<'a>,
    /// Header parameters (after `>`, or after the addr-spec).
    pub params: Params<'a>,
}

impl<'a> NameAddr<'a> {
    /// Parses one element. Errors on an unterminated quote (RFC 4475 `quotbal`), an
    /// unquoted display name that is not tokens (`baddn`), whitespace inside an addr-spec
    /// (`badaspec`), and an addr-spec holding `?` or `,` that needed `<>` (`regbadct`).
    pub fn parse(s: &'a str) -> Option<NameAddr<'a>> {
        let mut sc = Scanner::new(s);
        sc.skip_lws();
        let (display, uri_text) = if sc.peek() == Some(b'"') {
            let d = sc.quoted()?;
            if !sc.eat(b'<') {
                return None;
            }
            (Some(d), Self::bracketed(&mut sc)?)
        } else if let Some(lt) = find_unquoted(sc.rest(), b'<') {
            let d = trim(&sc.rest()[..lt]);
            if !d
                .split(|c: char| c.is_ascii() && super::scanner::is_lws(c as u8))
                .all(|w| w.is_empty() || w.bytes().all(crate::sip::msg::parse::is_token_char))
            {
                return None;
            }
            sc.until_any(b"<");
            sc.eat(b'<');
            ((!d.is_empty()).then_some(d), Self::bracketed(&mut sc)?)
        } else {
            let spec = sc.until_any(b";");
            if spec
                .bytes()
                .any(|b| matches!(b, b'?' | b',') || super::scanner::is_lws(b))
            {
                return None;
            }
            (None, spec)
        };
        let uri = Uri::parse(uri_text)?;
        let params = Params(sc.rest());
        if !params.validate() {
            return None;
        }
        Some(NameAddr {
            display,
            uri_text,
            uri,
            params,
        })
    }

    fn bracketed(sc: &mut Scanner<'a>) -> Option<&'a str> {
        let rest = sc.rest();
        let gt = rest.find('>')?;
        let uri = &rest[..gt];
        // No LWS is allowed inside the brackets around the URI either.
        if uri.bytes().any(super::scanner::is_lws) {
            return None;
        }
        *sc = Scanner::new(&rest[gt + 1..]);
        Some(uri)
    }

    /// The `tag` parameter (From/To).
    pub fn tag(&self) -> Option<&'a str> {
        self.params.get("tag").flatten()
    }
}

fn find_unquoted(s: &str, c: u8) -> Option<usize> {
    let mut quoted = false;
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            x if x == c && !quoted => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let n = NameAddr::parse(
            "\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>\r\n  ;\r\n  tag = 98asjd8",
        )
        .unwrap();
        assert_eq!(n.display, Some("J Rosenberg \\\\\\\""));
        assert_eq!(n.tag(), Some("98asjd8"));
        let n =
            NameAddr::parse("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert_eq!(n.tag(), Some("1918181833n"));
        let n = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(n.display, Some("caller"));
        assert!(NameAddr::parse("<isbn:2983792873>").is_some());
        assert!(NameAddr::parse("\"Mr. J. User <sip:j.user@example.com>").is_none());
        assert!(NameAddr::parse("Bell, Alexander <sip:a.g.bell@example.com>;tag=43").is_none());
        assert!(NameAddr::parse("sip:user@example.com?Route=%3Csip:sip.example.com%3E").is_none());
        assert!(NameAddr::parse("\"Watson, Thomas\" < sip:t.watson@example.org >").is_none());
    }
}
