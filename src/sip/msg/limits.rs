//! Caps on what one message may cost us, in one place.
//!
//! A SIP element is reachable by anybody, so every parser bound is a defence (see
//! `reference/sip-robustness-and-security.md` §7.1: "1 MiB message, 10k headers, 64 KiB value
//! → 400/513/drop within fixed CPU/RAM").

/// Most bytes one message (head and body) may have. UDP datagrams cannot exceed this anyway;
/// on streams it bounds what a peer can make us buffer.
pub const MAX_MESSAGE_BYTES: usize = 65_535;
/// Most bytes of the start line and header section together.
pub const MAX_HEAD_BYTES: usize = 32 * 1024;
/// Most bytes of one header line (after unfolding counts each folded piece).
pub const MAX_LINE_BYTES: usize = 8 * 1024;
/// Most header fields in one message.
pub const MAX_HEADER_COUNT: usize = 128;

/// Per-listener limits, defaulting to the constants above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// See [`MAX_MESSAGE_BYTES`].
    pub max_message_bytes: usize,
    /// See [`MAX_HEAD_BYTES`].
    pub max_head_bytes: usize,
    /// See [`MAX_LINE_BYTES`].
    pub max_line_bytes: usize,
    /// See [`MAX_HEADER_COUNT`].
    pub max_header_count: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: MAX_MESSAGE_BYTES,
            max_head_bytes: MAX_HEAD_BYTES,
            max_line_bytes: MAX_LINE_BYTES,
            max_header_count: MAX_HEADER_COUNT,
        }
    }
}
