//! Media direction attributes (RFC 8866 §6.7) and how an answer mirrors them
//! (RFC 3264 §6.1), the mechanism of hold.
//!
//! A direction is two facts about one side: does it send, does it receive. Seen from the
//! other side the facts swap, which is all an answer does.

/// `a=sendrecv`, `a=sendonly`, `a=recvonly` or `a=inactive`, from the point of view of
/// the side that wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Sends and receives (the default when no attribute is present).
    SendRecv,
    /// Sends only: the usual way to put the other side on hold (RFC 3264 §8.4).
    SendOnly,
    /// Receives only.
    RecvOnly,
    /// Neither.
    Inactive,
}

impl Direction {
    /// The direction from its two facts.
    pub const fn from_flags(sends: bool, receives: bool) -> Self {
        match (sends, receives) {
            (true, true) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (false, false) => Direction::Inactive,
        }
    }

    /// Whether this side sends media.
    pub const fn sends(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::SendOnly)
    }

    /// Whether this side receives media.
    pub const fn receives(self) -> bool {
        matches!(self, Direction::SendRecv | Direction::RecvOnly)
    }

    /// The same stream seen from the other end: what one side sends the other receives.
    /// RFC 3264 §6.1 answers sendonly with recvonly, recvonly with sendonly and inactive
    /// with inactive, which is exactly this.
    pub const fn reversed(self) -> Self {
        Direction::from_flags(self.receives(), self.sends())
    }

    /// What both allow: a side can only do what it offered and what the other accepted.
    pub const fn and(self, other: Direction) -> Self {
        Direction::from_flags(
            self.sends() && other.sends(),
            self.receives() && other.receives(),
        )
    }

    /// The attribute name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// The direction an attribute name stands for, if it is one.
    pub fn from_attribute(name: &str) -> Option<Self> {
        [
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
            Direction::Inactive,
        ]
        .into_iter()
        .find(|d| name.eq_ignore_ascii_case(d.as_str()))
    }
}
