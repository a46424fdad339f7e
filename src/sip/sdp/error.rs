//! Why a session description was refused: small values with a stable class for logs and
//! metrics and the SIP status to answer with.
//!
//! As in the message layer, no rejected bytes are kept: a parse error names the line and
//! what was wrong with it, never its text, so a hostile body cannot make our logs grow.

use std::fmt;

/// Why bytes could not be read as a session description (RFC 8866 §5), and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("SDP line {line}: {reason}")]
pub struct ParseError {
    /// 1-based line number of the offending line; 0 when the description as a whole is at
    /// fault (too large, empty, a required line absent).
    pub line: usize,
    /// What was wrong.
    pub reason: ParseReason,
}

impl ParseError {
    pub(crate) const fn at(line: usize, reason: ParseReason) -> Self {
        ParseError { line, reason }
    }

    /// Stable low-cardinality name for logs and metric labels.
    pub const fn class(self) -> &'static str {
        self.reason.class()
    }
}

/// What made a session description unreadable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseReason {
    /// No lines at all.
    Empty,
    /// The body is larger than [`super::MAX_SDP_BYTES`].
    TooLarge,
    /// More lines than [`super::MAX_SDP_LINES`].
    TooManyLines,
    /// One line is longer than [`super::MAX_SDP_LINE_BYTES`].
    LineTooLong,
    /// More `m=` lines than [`super::MAX_SDP_MEDIA`].
    TooManyMedia,
    /// Not `<letter>=<value>` (RFC 8866 §5).
    LineSyntax,
    /// A value we must read is not UTF-8 text.
    NotText,
    /// The first line is not `v=0` (RFC 8866 §5.1).
    Version,
    /// No `o=` line (RFC 8866 §5.2 makes it mandatory).
    MissingOrigin,
    /// A malformed `o=` line.
    Origin,
    /// A malformed `t=` line.
    Timing,
    /// A malformed `c=` line, or an address that is not an IP literal of the stated family.
    Connection,
    /// A malformed `m=` line.
    Media,
    /// An RTP format that is not a payload type 0..=127 (RFC 3551 §3).
    PayloadType,
    /// A malformed `a=rtpmap`, or a second one for the same payload type.
    Rtpmap,
    /// A malformed `a=fmtp`.
    Fmtp,
    /// A malformed `a=ptime` or `a=maxptime` (whole milliseconds, above zero).
    Ptime,
    /// A malformed `a=rtcp` (RFC 3605 §2.1).
    Rtcp,
    /// Two different direction attributes at the same level.
    ConflictingDirection,
    /// A line that may appear once appears again (`v=`, `o=`, `s=`).
    Repeated,
    /// A media stream in use (port not 0) with no `c=` at either level (RFC 8866 §5.7).
    MissingConnection,
}

impl ParseReason {
    /// Stable low-cardinality name for logs and metric labels.
    pub const fn class(self) -> &'static str {
        match self {
            ParseReason::Empty => "empty",
            ParseReason::TooLarge => "too_large",
            ParseReason::TooManyLines => "too_many_lines",
            ParseReason::LineTooLong => "line_too_long",
            ParseReason::TooManyMedia => "too_many_media",
            ParseReason::LineSyntax => "line_syntax",
            ParseReason::NotText => "not_text",
            ParseReason::Version => "version",
            ParseReason::MissingOrigin => "missing_origin",
            ParseReason::Origin => "origin",
            ParseReason::Timing => "timing",
            ParseReason::Connection => "connection",
            ParseReason::Media => "media",
            ParseReason::PayloadType => "payload_type",
            ParseReason::Rtpmap => "rtpmap",
            ParseReason::Fmtp => "fmtp",
            ParseReason::Ptime => "ptime",
            ParseReason::Rtcp => "rtcp",
            ParseReason::ConflictingDirection => "conflicting_direction",
            ParseReason::Repeated => "repeated",
            ParseReason::MissingConnection => "missing_connection",
        }
    }
}

impl fmt::Display for ParseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseReason::Empty => "empty session description",
            ParseReason::TooLarge => "session description too large",
            ParseReason::TooManyLines => "too many lines",
            ParseReason::LineTooLong => "line too long",
            ParseReason::TooManyMedia => "too many m= lines",
            ParseReason::LineSyntax => "not a <type>=<value> line",
            ParseReason::NotText => "value is not UTF-8 text",
            ParseReason::Version => "first line is not v=0",
            ParseReason::MissingOrigin => "no o= line",
            ParseReason::Origin => "malformed o= line",
            ParseReason::Timing => "malformed t= line",
            ParseReason::Connection => "malformed c= line",
            ParseReason::Media => "malformed m= line",
            ParseReason::PayloadType => "RTP format is not a payload type 0-127",
            ParseReason::Rtpmap => "malformed or repeated a=rtpmap",
            ParseReason::Fmtp => "malformed a=fmtp",
            ParseReason::Ptime => "malformed a=ptime or a=maxptime",
            ParseReason::Rtcp => "malformed a=rtcp",
            ParseReason::ConflictingDirection => "conflicting direction attributes",
            ParseReason::Repeated => "line repeated",
            ParseReason::MissingConnection => "media in use without a c= line",
        })
    }
}

/// Why an offer could not be answered, or an answer could not be used: every case the
/// B2BUA turns into a refusal of the session (RFC 3261 §21.4.26 488 Not Acceptable Here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SdpError {
    /// The body is not a readable session description.
    #[error(transparent)]
    Malformed(#[from] ParseError),
    /// The offer has no audio stream we can take: no RTP/AVP audio with PCMU or PCMA at
    /// 8000 Hz, or only streams the offerer disabled (port 0).
    #[error("no acceptable audio stream in the offer")]
    NotAcceptable,
    /// The answer does not have one m-line per offered m-line (RFC 3264 §6).
    #[error("the answer has {answered} m-lines for {offered} offered")]
    AnswerMediaCount {
        /// m-lines in our offer.
        offered: usize,
        /// m-lines in the answer.
        answered: usize,
    },
    /// An answer m-line has another media type or transport than the offered one at the
    /// same position (RFC 3264 §6).
    #[error("answer m-line {index} does not match the offered media or transport")]
    AnswerMediaMismatch {
        /// 0-based m-line index.
        index: usize,
    },
    /// An accepted answer m-line lists no codec we offered (RFC 3264 §6.1: at least one
    /// format in the answer must come from the offer).
    #[error("answer m-line {index} lists no codec we offered")]
    AnswerCodecNotOffered {
        /// 0-based m-line index.
        index: usize,
        /// The first payload type the answer lists, if any (for the log line).
        payload_type: Option<u8>,
    },
    /// The answer rejected (port 0) every audio stream we offered.
    #[error("the answer rejected every audio stream")]
    AnswerRejected,
}

impl SdpError {
    /// Stable low-cardinality name for logs and metric labels.
    pub const fn class(&self) -> &'static str {
        match self {
            SdpError::Malformed(ParseError {
                reason:
                    ParseReason::TooLarge
                    | ParseReason::TooManyLines
                    | ParseReason::LineTooLong
                    | ParseReason::TooManyMedia,
                ..
            }) => "sdp_too_large",
            SdpError::Malformed(_) => "sdp_malformed",
            SdpError::NotAcceptable => "sdp_not_acceptable",
            SdpError::AnswerMediaCount { .. } | SdpError::AnswerMediaMismatch { .. } => {
                "sdp_answer_mismatch"
            }
            SdpError::AnswerCodecNotOffered { .. } => "sdp_answer_codec",
            SdpError::AnswerRejected => "sdp_answer_rejected",
        }
    }

    /// The SIP status that refuses the session: 488 Not Acceptable Here (RFC 3261
    /// §21.4.26; RFC 3264 §6 for an offer we cannot answer). For a bad answer in a 2xx there
    /// is nothing left to refuse: the caller ACKs and ends the dialog, and may quote this
    /// status in a Reason header.
    pub const fn sip_status(&self) -> u16 {
        488
    }
}
