//! Generic `;name[=value]` parameter lists (RFC 3261 §25.1 generic-param).

use super::scanner::{Scanner, trim};

/// A parameter list kept as its raw text (starting at the first `;`), looked up on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Params<'a>(pub &'a str);

impl<'a> Params<'a> {
    /// Every parameter as `(name, value)`; a value-less parameter has `None`. Quoted values
    /// are returned with their quotes.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> + 'a {
        let mut sc = Scanner::new(self.0);
        std::iter::from_fn(move || {
            loop {
                if !sc.eat(b';') {
                    return None;
                }
                let item = sc.until_any(b";");
                if item.is_empty() {
                    continue;
                }
                return Some(match item.find('=') {
                    Some(i) => (trim(&item[..i]), Some(trim(&item[i + 1..]))),
                    None => (item, None),
                });
            }
        })
    }

    /// The parameter named `name` (case-insensitive): `Some(None)` if present without value.
    pub fn get(&self, name: &str) -> Option<Option<&'a str>> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Whether a parameter is present.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Checks the grammar strictly: every element is `token [= (token | host | quoted)]`.
    /// RFC 4475 `badinv01` (`;;,;,,`) fails here.
    pub fn validate(&self) -> bool {
        let mut sc = Scanner::new(self.0);
        while !sc.at_end() {
            if !sc.eat(b';') || sc.token().is_none() {
                return false;
            }
            if sc.eat(b'=') {
                sc.skip_lws();
                let ok = if sc.peek() == Some(b'"') {
                    sc.quoted().is_some()
                } else {
                    sc.take_while(|b| {
                        crate::sip::msg::parse::is_token_char(b) || matches!(b, b':' | b'[' | b']')
                    })
                    .is_some()
                };
                if !ok {
                    return false;
                }
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::Params;

    #[test]
    fn lookup_with_lws_and_flags() {
        let p = Params(";   tag    = 1918181833n ; lr ;q=0.33");
        assert_eq!(p.get("TAG"), Some(Some("1918181833n")));
        assert_eq!(p.get("lr"), Some(None));
        assert_eq!(p.get("q"), Some(Some("0.33")));
        assert_eq!(p.get("x"), None);
        assert!(p.validate());
        assert!(!Params(";;,;,,").validate());
    }
}
