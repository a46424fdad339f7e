//! Positions for validation errors. Serde gives positions only for errors it raises itself;
//! rules checked after deserializing (formats, cross references) find theirs by walking the
//! spanned document tree that `toml::de::DeTable::parse` produced, along a path of keys and
//! array indices that mirrors the field they are checking.

use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// One step of a path into the document: a table key or an array index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(&'static str),
    Index(usize),
}

impl From<&'static str> for Seg {
    fn from(k: &'static str) -> Self {
        Seg::Key(k)
    }
}

impl From<usize> for Seg {
    fn from(i: usize) -> Self {
        Seg::Index(i)
    }
}

/// Build a `Vec<Seg>` from keys and indices: `key_path!["applications", i, "account"]`.
macro_rules! key_path {
    ($($seg:expr),* $(,)?) => {
        vec![$($crate::config::locate::Seg::from($seg)),*]
    };
}
pub(crate) use key_path;

/// The parsed document, kept only to answer "where is this value?".
pub(crate) struct Spans<'i> {
    root: Spanned<DeTable<'i>>,
}

impl<'i> Spans<'i> {
    pub(crate) fn new(root: Spanned<DeTable<'i>>) -> Self {
        Spans { root }
    }

    /// Byte range of the value at `path`. When the path leads to a value that is absent
    /// (a rule about a missing key, or a default), the deepest node that exists is used,
    /// so a missing `url` in `[store]` points at the `[store]` header, and a missing
    /// `[store]` at the top of the file.
    pub(crate) fn span(&self, path: &[Seg]) -> Range<usize> {
        let mut span = self.root.span();
        // Headerless root: point at the start of the file rather than the whole text.
        span.end = span.start;
        let mut table: Option<&DeTable<'i>> = Some(self.root.get_ref());
        let mut array: Option<&[Spanned<DeValue<'i>>]> = None;
        for seg in path {
            let next = match (*seg, table, array) {
                (Seg::Key(k), Some(t), _) => t
                    .iter()
                    .find(|(key, _)| &**key.get_ref() == k)
                    .map(|(_, v)| v),
                (Seg::Index(i), _, Some(a)) => a.get(i),
                _ => None,
            };
            let Some(next) = next else { break };
            span = next.span();
            (table, array) = match next.get_ref() {
                DeValue::Table(t) => (Some(t), None),
                DeValue::Array(a) => (None, Some(&a[..])),
                _ => (None, None),
            };
        }
        span
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_values_and_falls_back_to_parents() {
        let text =
            "[server]\nrealm = \"x\"\n\n[[trunks]]\nname = \"a\"\ninbound_cidrs = [\"1\", \"2\"]\n";
        let root = DeTable::parse(text).expect("valid toml");
        let spans = Spans::new(root);
        let at = |p: Vec<Seg>| &text[spans.span(&p)];
        assert_eq!(at(key_path!["server", "realm"]), "\"x\"");
        assert_eq!(at(key_path!["trunks", 0, "inbound_cidrs", 1]), "\"2\"");
        // Missing key: the enclosing table header.
        assert_eq!(at(key_path!["trunks", 0, "outbound_uri"]), "[[trunks]]");
        assert_eq!(at(key_path!["server", "sip_listen", 0]), "[server]");
        // Missing top-level table: start of file.
        assert_eq!(spans.span(&[Seg::Key("store"), Seg::Key("url")]), 0..0);
    }
}
