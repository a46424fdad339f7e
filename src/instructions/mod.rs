//! TwiML call-instruction documents: a bounded, DTD-free XML reader and our own verb AST.
//!
//! ```text
//!  bytes --tree::read (limits, no DOCTYPE, 5 entities + char refs)--> Element tree
//!        --parse::build (names case-sensitive, defaults, validation)--> Document { verbs, warnings }
//! ```
//!
//! Failure policy (reference/twiml-and-twilio-client.md section 1.1 and 1.5):
//! * not well-formed XML, DOCTYPE, unknown entity, non-UTF-8, limits: fatal, code 12100;
//! * root element other than `<Response>`: fatal, code 12102;
//! * unknown verb, unknown noun, unknown attribute, misplaced child or text: a [`Warning`]
//!   (code 12200, "schema warning, call continues"); the item is skipped;
//! * a *recognised* attribute with an invalid value (`timeout="abc"`, `method="PUT"`): fatal,
//!   [`InstructionError::InvalidAttribute`] with code 12200. Twilio reports these as schema
//!   validation failures; silently substituting a default would run a different call flow than
//!   the author wrote (for example a 30 s ring instead of the intended one), so we refuse.

mod ast;
mod error;
mod parse;
mod ssml;
mod tree;

#[cfg(test)]
mod tests;

pub use ast::{
    Beep, ClientNoun, ConferenceNoun, Connect, Dial, DialNoun, DialRecord, DialTarget, Document,
    Enqueue, Gather, GatherInput, GatherNested, MAX_SPEECH_BREAK, Method, NounCallbacks,
    NumberNoun, QueueNoun, Record, RecordTrim, RejectReason, SipNoun, SpeechPart, SpeechRate,
    SpeechTimeout, Stream, StreamTrack, Verb, Warning, WarningKind,
};
pub use error::{ErrorClass, InstructionError, Position};
pub use parse::parse;

/// Resource caps applied before (size) and during (depth, element count) parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Maximum document size in bytes, checked before any parsing (Twilio: 64 KB).
    pub max_bytes: usize,
    /// Maximum element nesting depth; `<Response>` is depth 1.
    pub max_depth: usize,
    /// Maximum number of elements below `<Response>` (verbs, nouns and nested elements all count).
    pub max_verbs: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 64 * 1024,
            max_depth: 8,
            max_verbs: 200,
        }
    }
}
