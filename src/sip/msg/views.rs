//! Typed accessors on [`SipMessage`]: each parses its header on demand.

use super::error::HeaderError;
use super::header_name::HeaderName;
use super::message::SipMessage;
use super::typed::{self, CSeq, NameAddr, Via};

impl SipMessage {
    /// The single value of a header that must appear exactly once.
    fn single(&self, name: HeaderName) -> Result<&str, HeaderError> {
        let err = HeaderError::new(name.canonical());
        let mut it = self.values(name);
        let v = it.next().ok_or(err)?;
        if it.next().is_some() { Err(err) } else { Ok(v) }
    }

    /// Every Via element, top first.
    pub fn vias(&self) -> impl Iterator<Item = Result<Via<'_>, HeaderError>> {
        self.list(HeaderName::Via)
            .map(|v| Via::parse(v).ok_or(HeaderError::new("Via")))
    }

    /// The topmost Via.
    pub fn top_via(&self) -> Result<Via<'_>, HeaderError> {
        self.vias().next().unwrap_or(Err(HeaderError::new("Via")))
    }

    /// From (exactly one).
    pub fn from_header(&self) -> Result<NameAddr<'_>, HeaderError> {
        NameAddr::parse(self.single(HeaderName::From)?).ok_or(HeaderError::new("From"))
    }

    /// To (exactly one).
    pub fn to_header(&self) -> Result<NameAddr<'_>, HeaderError> {
        NameAddr::parse(self.single(HeaderName::To)?).ok_or(HeaderError::new("To"))
    }

    /// CSeq (exactly one).
    pub fn cseq(&self) -> Result<CSeq<'_>, HeaderError> {
        CSeq::parse(self.single(HeaderName::CSeq)?).ok_or(HeaderError::new("CSeq"))
    }

    /// Call-ID (exactly one).
    pub fn call_id(&self) -> Result<&str, HeaderError> {
        typed::parse_call_id(self.single(HeaderName::CallId)?).ok_or(HeaderError::new("Call-ID"))
    }

    /// Max-Forwards, if present (RFC 2543 messages may omit it).
    pub fn max_forwards(&self) -> Result<Option<u8>, HeaderError> {
        self.optional(HeaderName::MaxForwards, typed::parse_max_forwards)
    }

    /// Expires, if present.
    pub fn expires(&self) -> Result<Option<u32>, HeaderError> {
        self.optional(HeaderName::Expires, typed::parse_delta_seconds)
    }

    fn optional<'a, T>(
        &'a self,
        name: HeaderName,
        parse: impl Fn(&'a str) -> Option<T>,
    ) -> Result<Option<T>, HeaderError> {
        match self.count(name) {
            0 => Ok(None),
            1 => self
                .first(name)
                .and_then(parse)
                .map(Some)
                .ok_or(HeaderError::new(name.canonical())),
            _ => Err(HeaderError::new(name.canonical())),
        }
    }

    /// Contact elements; `*` (RFC 3261 §10.2.2) is reported by [`SipMessage::is_contact_star`]
    /// and not yielded here.
    pub fn contacts(&self) -> impl Iterator<Item = Result<NameAddr<'_>, HeaderError>> {
        self.name_addrs(HeaderName::Contact)
            .filter(|r| r != &Err(HeaderError::new("*")))
    }

    /// Whether the Contact is the wildcard `*`.
    pub fn is_contact_star(&self) -> bool {
        self.list(HeaderName::Contact).any(|c| c == "*")
    }

    /// Route elements, in order.
    pub fn routes(&self) -> impl Iterator<Item = Result<NameAddr<'_>, HeaderError>> {
        self.name_addrs(HeaderName::Route)
    }

    /// Record-Route elements, in order.
    pub fn record_routes(&self) -> impl Iterator<Item = Result<NameAddr<'_>, HeaderError>> {
        self.name_addrs(HeaderName::RecordRoute)
    }

    fn name_addrs(
        &self,
        name: HeaderName,
    ) -> impl Iterator<Item = Result<NameAddr<'_>, HeaderError>> {
        self.list(name).map(move |v| {
            if v == "*" {
                return Err(HeaderError::new("*"));
            }
            NameAddr::parse(v).ok_or(HeaderError::new(name.canonical()))
        })
    }

    /// Option tags of a Require-like header (Require, Proxy-Require, Supported).
    pub fn option_tags(&self, name: HeaderName) -> impl Iterator<Item = &str> {
        self.values(name).flat_map(typed::tokens)
    }
}
