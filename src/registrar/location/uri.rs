//! Contact URI equality for binding matches (RFC 3261 §10.3 step 8 points at §19.1.4).
//!
//! Simplified on purpose: the scheme and the host[:port] compare case-insensitively, the
//! user info and everything after the host (parameters, headers) compare byte for byte.
//! Unlike full §19.1.4 comparison we do not unescape `%XX`, and parameters must appear in
//! the same order with the same case. A client re-registering sends its Contact the same
//! way each time, so the only cost is that two spellings of one URI make two bindings,
//! which expire on their own. Like §19.1.4, an omitted port differs from an explicit 5060.

/// Whether two Contact URIs name the same binding.
pub fn same_contact(a: &str, b: &str) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (pa, pb) = (Parts::of(a), Parts::of(b));
    pa.scheme.eq_ignore_ascii_case(pb.scheme)
        && pa.user == pb.user
        && pa.host.eq_ignore_ascii_case(pb.host)
        && pa.rest == pb.rest
}

struct Parts<'a> {
    scheme: &'a str,
    /// Up to and including the `@`, or empty.
    user: &'a str,
    /// host[:port]
    host: &'a str,
    /// `;params?headers`
    rest: &'a str,
}

impl<'a> Parts<'a> {
    fn of(uri: &'a str) -> Self {
        let (scheme, after) = match uri.find(':') {
            Some(i) => (&uri[..i], &uri[i..]),
            None => ("", uri),
        };
        // '@' cannot appear unescaped in a host, parameter or header, so the first one
        // ends the user info (which may itself hold ';' and ':').
        let (user, after) = match after.find('@') {
            Some(i) => after.split_at(i + 1),
            None => ("", after),
        };
        let host_end = after.find([';', '?']).unwrap_or(after.len());
        let (host, rest) = after.split_at(host_end);
        Parts {
            scheme,
            user,
            host,
            rest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::same_contact;

    #[test]
    fn scheme_and_host_ignore_case_the_rest_does_not() {
        assert!(same_contact(
            "sip:alice@192.0.2.4:5060;transport=tcp",
            "SIP:alice@192.0.2.4:5060;transport=tcp"
        ));
        assert!(same_contact(
            "sip:alice@Host.Example.COM;ob",
            "sip:alice@host.example.com;ob"
        ));
        assert!(!same_contact(
            "sip:Alice@host.example.com",
            "sip:alice@host.example.com"
        ));
        assert!(!same_contact(
            "sip:alice@host;transport=TCP",
            "sip:alice@host;transport=tcp"
        ));
        assert!(!same_contact("sip:alice@host", "sip:alice@host:5060"));
        assert!(same_contact(
            "sip:[2001:DB8::1]:5070",
            "sip:[2001:db8::1]:5070"
        ));
        // A user part holding ';' and ':' is still the user part.
        assert!(!same_contact("sip:a;b:c@HOST", "sip:a;B:c@host"));
        assert!(same_contact("sip:a;b:c@HOST", "sip:a;b:c@host"));
    }
}
