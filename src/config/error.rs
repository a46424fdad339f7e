//! Config errors. Every error that concerns the file's content carries a 1-based line and
//! column so `switchboard check` can print `file:line:col: why`, the shape editors and CI
//! annotators understand.

use std::ops::Range;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all; there is no position to point at.
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// Something in the file is wrong: bad TOML, a field serde rejects, or a rule
    /// (format, cross reference, range) that validation rejects.
    #[error("{file}:{line}:{col}: {why}")]
    At {
        file: String,
        line: usize,
        col: usize,
        kind: ErrorKind,
        why: String,
    },
}

/// Which stage rejected the file; a short stable class for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Not valid TOML.
    Syntax,
    /// Valid TOML, but not the shape of a config (unknown key, wrong type, missing field).
    Schema,
    /// Right shape, but a value breaks a rule (bad SID, unknown reference, bad range).
    Invalid,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Syntax => "syntax",
            ErrorKind::Schema => "schema",
            ErrorKind::Invalid => "invalid",
        }
    }
}

impl ConfigError {
    /// Build a positioned error from a byte range into `text`.
    pub(crate) fn at(
        file: &str,
        text: &str,
        span: Option<Range<usize>>,
        kind: ErrorKind,
        why: impl Into<String>,
    ) -> Self {
        // Serde errors without a span (rare: whole-document problems) point at the start.
        let (line, col) = line_col(text, span.map_or(0, |s| s.start));
        ConfigError::At {
            file: file.to_owned(),
            line,
            col,
            kind,
            why: why.into(),
        }
    }

    /// Short stable class for logs and metrics: `read`, `syntax`, `schema`, `invalid`.
    pub fn class(&self) -> &'static str {
        match self {
            ConfigError::Read { .. } => "read",
            ConfigError::At { kind, .. } => kind.as_str(),
        }
    }

    /// 1-based (line, column) of the problem, when it concerns a place in the file.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            ConfigError::Read { .. } => None,
            ConfigError::At { line, col, .. } => Some((*line, *col)),
        }
    }
}

/// 1-based line and column (in characters, not bytes, so non-ASCII text before the error
/// does not shift the column an editor shows) of byte `offset` in `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    // Clamp and step back to a char boundary: spans at end of input or inside a multi-byte
    // character must not panic.
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before[line_start..].chars().count() + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let t = "ab\ncdé\nx";
        assert_eq!(line_col(t, 0), (1, 1));
        assert_eq!(line_col(t, 1), (1, 2));
        assert_eq!(line_col(t, 3), (2, 1));
        // 'é' is two bytes; the column counts it once.
        assert_eq!(line_col(t, 8), (3, 1));
        assert_eq!(line_col(t, 7), (2, 4));
        // Inside a multi-byte char and past the end do not panic.
        assert_eq!(line_col(t, 6), (2, 3));
        assert_eq!(line_col(t, 999), (3, 2));
    }
}
