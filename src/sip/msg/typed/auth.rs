//! Authorization / WWW-Authenticate values: Digest (RFC 3261 §22.4, RFC 7616/8760) and
//! Bearer (RFC 8898, RFC 6750).

use std::borrow::Cow;

use super::scanner::{Scanner, trim};

/// A comma-separated `name=value` list (values may be quoted), looked up on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthParams<'a>(pub &'a str);

impl<'a> AuthParams<'a> {
    /// Every `(name, value)`; quoted values are returned without quotes (escapes kept).
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        super::split_list(self.0).filter_map(|item| {
            let eq = item.find('=')?;
            let name = trim(&item[..eq]);
            let raw = trim(&item[eq + 1..]);
            let value = match raw.strip_prefix('"') {
                Some(q) => Scanner::new(raw).quoted().or(q.strip_suffix('"'))?,
                None => raw,
            };
            Some((name, value))
        })
    }

    /// The value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The values of several `names` in one pass over the list (the first of each, as
    /// [`get`] finds it): Digest credentials have nine parameters, and a `get` for each
    /// scanned the header nine times.
    ///
    /// [`get`]: AuthParams::get
    pub fn get_all<const N: usize>(&self, names: [&str; N]) -> [Option<&'a str>; N] {
        let mut found = [None; N];
        for (name, value) in self.iter() {
            if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(name)) {
                found[i].get_or_insert(value);
            }
        }
        found
    }
}

/// Credentials in Authorization / Proxy-Authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credentials<'a> {
    /// `Digest username="..", realm="..", ...`
    Digest(AuthParams<'a>),
    /// `Bearer <token>` (RFC 8898 §4.2).
    Bearer(&'a str),
    /// Another scheme (RFC 4475 `regaut01`): well formed, but we cannot check it.
    Other(&'a str, AuthParams<'a>),
}

impl<'a> Credentials<'a> {
    /// Parses a credentials value.
    pub fn parse(s: &'a str) -> Option<Credentials<'a>> {
        let (scheme, rest) = split_scheme(s)?;
        Some(if scheme.eq_ignore_ascii_case("Digest") {
            Credentials::Digest(AuthParams(rest))
        } else if scheme.eq_ignore_ascii_case("Bearer") {
            // token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
            let ok = !rest.is_empty()
                && rest.bytes().all(|b| {
                    b.is_ascii_alphanumeric()
                        || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
                });
            if !ok {
                return None;
            }
            Credentials::Bearer(rest)
        } else {
            Credentials::Other(scheme, AuthParams(rest))
        })
    }
}

/// A challenge in WWW-Authenticate / Proxy-Authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Challenge<'a> {
    /// `Digest`, `Bearer`, ...
    pub scheme: &'a str,
    /// Its parameters.
    pub params: AuthParams<'a>,
}

impl<'a> Challenge<'a> {
    /// Parses a challenge value.
    pub fn parse(s: &'a str) -> Option<Challenge<'a>> {
        let (scheme, rest) = split_scheme(s)?;
        Some(Challenge {
            scheme,
            params: AuthParams(rest),
        })
    }
}

fn split_scheme(s: &str) -> Option<(&str, &str)> {
    let mut sc = Scanner::new(s);
    let scheme = sc.token()?;
    Some((scheme, trim(sc.rest())))
}

/// Undoes quoted-pair escapes (`\"`, `\\`) in a value [`AuthParams`] returned unquoted.
pub fn unquote(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Escapes `"` and `\` for a quoted-string.
pub fn quote(s: &str) -> Cow<'_, str> {
    if !s.contains(['"', '\\']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_all_finds_what_get_finds_in_one_pass() {
        let p = AuthParams(
            "Username=\"alice\", realm=\"a,b\", nc=00000001, realm=\"second\", qop=auth",
        );
        let names = ["username", "realm", "nc", "cnonce", "QOP"];
        let all = p.get_all(names);
        assert_eq!(all, names.map(|n| p.get(n)));
        assert_eq!(
            all,
            [
                Some("alice"),
                Some("a,b"),
                Some("00000001"),
                None,
                Some("auth")
            ]
        );
    }

    #[test]
    fn digest_and_bearer() {
        let c = Credentials::parse(
            "Digest username=\"alice\", realm=\"sw\",\r\n nonce=\"a,b\", uri=\"sip:sw\", response=\"0f\", qop=auth, nc=00000001",
        )
        .unwrap();
        let Credentials::Digest(p) = c else {
            panic!("digest expected")
        };
        assert_eq!(p.get("USERNAME"), Some("alice"));
        assert_eq!(p.get("nonce"), Some("a,b"));
        assert_eq!(p.get("qop"), Some("auth"));
        assert_eq!(
            Credentials::parse("Bearer eyJ.a-b_c.d"),
            Some(Credentials::Bearer("eyJ.a-b_c.d"))
        );
        assert_eq!(Credentials::parse("Bearer a b"), None);
        assert!(matches!(
            Credentials::parse("NoOneKnowsThisScheme opaque-data=here"),
            Some(Credentials::Other(..))
        ));
        let ch = Challenge::parse("Bearer realm=\"sw\", error=\"invalid_token\"").unwrap();
        assert_eq!(
            (ch.scheme, ch.params.get("error")),
            ("Bearer", Some("invalid_token"))
        );
    }
}
