//! Errors of TwiML parsing, with positions and Twilio error codes.

use std::fmt;

/// A 1-based line and column (column counted in characters) in the source document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub line: u32,
    pub col: u32,
}

impl Position {
    /// Computes the position of byte `offset` in `src` (clamped to its length).
    pub fn at(src: &[u8], offset: u64) -> Self {
        let end = usize::try_from(offset).unwrap_or(usize::MAX).min(src.len());
        let before = &src[..end];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        // Count characters, not bytes: skip UTF-8 continuation bytes.
        let col = before[line_start..]
            .iter()
            .filter(|&&b| (b & 0xC0) != 0x80)
            .count()
            + 1;
        Self {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            col: u32::try_from(col).unwrap_or(u32::MAX),
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// Coarse class of an [`InstructionError`], for metrics and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The bytes are not a well-formed XML document.
    Syntax,
    /// Forbidden XML constructs (DOCTYPE, entity declarations).
    Security,
    /// A size, depth or element-count cap was hit.
    Limit,
    /// Well-formed XML that is not valid TwiML.
    Schema,
}

/// Why a TwiML document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstructionError {
    #[error("document is {size} bytes, limit {max}")]
    TooLarge { size: usize, max: usize },
    #[error("{pos}: element nesting deeper than {max}")]
    TooDeep { max: usize, pos: Position },
    #[error("{pos}: more than {max} elements in document")]
    TooManyVerbs { max: usize, pos: Position },
    #[error("document is not valid UTF-8 at byte {offset}")]
    NotUtf8 { offset: usize },
    #[error("{pos}: not well-formed XML: {message}")]
    Malformed { message: String, pos: Position },
    #[error("{pos}: DOCTYPE / entity declarations are not allowed")]
    DocType { pos: Position },
    #[error("{pos}: unknown entity &{name};")]
    UnknownEntity { name: String, pos: Position },
    #[error("document has no root element")]
    Empty,
    #[error("{pos}: root element is <{found}>, expected <Response>")]
    RootNotResponse { found: String, pos: Position },
    #[error("{pos}: <{element}> attribute {attribute}=\"{value}\": {reason}")]
    InvalidAttribute {
        element: String,
        attribute: String,
        value: String,
        reason: &'static str,
        pos: Position,
    },
}

impl InstructionError {
    /// Coarse class of the error.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::TooLarge { .. } | Self::TooDeep { .. } | Self::TooManyVerbs { .. } => {
                ErrorClass::Limit
            }
            Self::NotUtf8 { .. }
            | Self::Malformed { .. }
            | Self::UnknownEntity { .. }
            | Self::Empty => ErrorClass::Syntax,
            Self::DocType { .. } => ErrorClass::Security,
            Self::RootNotResponse { .. } | Self::InvalidAttribute { .. } => ErrorClass::Schema,
        }
    }

    /// Twilio error code: 12100 document parse failure, 12102 root not `<Response>`,
    /// 12200 schema validation.
    pub fn twilio_code(&self) -> u16 {
        match self {
            Self::RootNotResponse { .. } => 12102,
            Self::InvalidAttribute { .. } => 12200,
            _ => 12100,
        }
    }

    /// Source position, when the error has one.
    pub fn position(&self) -> Option<Position> {
        match self {
            Self::TooDeep { pos, .. }
            | Self::TooManyVerbs { pos, .. }
            | Self::Malformed { pos, .. }
            | Self::DocType { pos }
            | Self::UnknownEntity { pos, .. }
            | Self::RootNotResponse { pos, .. }
            | Self::InvalidAttribute { pos, .. } => Some(*pos),
            Self::TooLarge { .. } | Self::NotUtf8 { .. } | Self::Empty => None,
        }
    }
}
