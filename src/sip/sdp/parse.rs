//! Bytes to [`SessionDescription`] (RFC 8866 §5, RFC 3605 for `a=rtcp`).
//!
//! An SDP body arrives from anybody who can send an INVITE, so the parser is bounded
//! (total size, line count, line length, m-line count, each checked before any work) and
//! never panics: every way a body can be wrong is a [`ParseError`] with the line number.
//!
//! It is strict about what the relay acts on (addresses, ports, payload types, rtpmap,
//! ptime, direction, rtcp), since guessing there sends audio to the wrong place, and
//! lenient about the rest, as deployed stacks need: bare LF line ends and trailing blanks
//! are accepted (RFC 8866 §5 asks parsers to be tolerant of LF), unknown line types and
//! attributes are skipped or kept verbatim, and `s=`/`t=` may be absent.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use super::direction::Direction;
use super::error::{ParseError, ParseReason};
use super::session::{
    AddressType, Attribute, Fmtp, MediaDescription, MediaKind, Origin, Protocol, Rtcp, RtpMap,
    SessionDescription, Timing,
};

/// Most bytes one session description may have. A SIP message is at most 64 KiB; an audio
/// offer is a few hundred bytes and a WebRTC offer with candidates a few KiB.
pub const MAX_SDP_BYTES: usize = 32 * 1024;
/// Most non-empty lines.
pub const MAX_SDP_LINES: usize = 512;
/// Most bytes in one line (long `a=fmtp` lines for video stay well under this).
pub const MAX_SDP_LINE_BYTES: usize = 2048;
/// Most `m=` lines.
pub const MAX_SDP_MEDIA: usize = 32;

impl SessionDescription {
    /// Reads a session description; see the module documentation for what is accepted.
    pub fn parse(body: &[u8]) -> Result<SessionDescription, ParseError> {
        parse(body)
    }
}

/// Reads a session description (the same as [`SessionDescription::parse`]).
pub fn parse(body: &[u8]) -> Result<SessionDescription, ParseError> {
    if body.len() > MAX_SDP_BYTES {
        return Err(ParseError::at(0, ParseReason::TooLarge));
    }
    let mut parser = Parser::default();
    let mut lines = 0;
    for (index, raw) in body.split(|b| *b == b'\n').enumerate() {
        let n = index + 1;
        // CRLF or bare LF; trailing blanks are a common slip and carry nothing.
        let line = raw.trim_ascii_end();
        if line.is_empty() {
            continue;
        }
        if line.len() > MAX_SDP_LINE_BYTES {
            return Err(ParseError::at(n, ParseReason::LineTooLong));
        }
        lines += 1;
        if lines > MAX_SDP_LINES {
            return Err(ParseError::at(n, ParseReason::TooManyLines));
        }
        parser
            .line(n, line)
            .map_err(|reason| ParseError::at(n, reason))?;
    }
    parser.finish()
}

/// The session being built and where we are in it.
#[derive(Default)]
struct Parser {
    seen_version: bool,
    origin: Option<Origin>,
    session_name: Option<String>,
    connection: Option<IpAddr>,
    timing: Option<Timing>,
    direction: Option<Direction>,
    attributes: Vec<Attribute>,
    media: Vec<MediaDescription>,
    /// The line number of each m= line, for errors found once the section is complete.
    media_lines: Vec<usize>,
    line_number: usize,
}

type Step = Result<(), ParseReason>;

impl Parser {
    fn line(&mut self, n: usize, line: &[u8]) -> Step {
        self.line_number = n;
        let [kind, b'=', value @ ..] = line else {
            return Err(ParseReason::LineSyntax);
        };
        if !kind.is_ascii_alphabetic() {
            return Err(ParseReason::LineSyntax);
        }
        // RFC 8866 §5: the description starts with v=0, and there is only one version.
        if !self.seen_version {
            if *kind != b'v' || value != b"0" {
                return Err(ParseReason::Version);
            }
            self.seen_version = true;
            return Ok(());
        }
        match kind {
            b'v' => Err(ParseReason::Repeated),
            b'o' => self.origin(text(value)?),
            b's' => self.session_name(value),
            b't' => self.timing(text(value)?),
            b'c' => self.connection(text(value)?),
            b'm' => self.media(text(value)?),
            b'a' => self.attribute(value),
            // i= u= e= p= b= r= z= k= and unknown types say nothing the relay uses.
            _ => Ok(()),
        }
    }

    fn finish(self) -> Result<SessionDescription, ParseError> {
        if !self.seen_version {
            return Err(ParseError::at(0, ParseReason::Empty));
        }
        let origin = self
            .origin
            .ok_or(ParseError::at(0, ParseReason::MissingOrigin))?;
        for (m, line) in self.media.iter().zip(&self.media_lines) {
            if m.port != 0 && m.connection.is_none() && self.connection.is_none() {
                return Err(ParseError::at(*line, ParseReason::MissingConnection));
            }
        }
        Ok(SessionDescription {
            origin,
            session_name: self.session_name.unwrap_or_else(|| "-".to_string()),
            connection: self.connection,
            timing: self.timing.unwrap_or_default(),
            direction: self.direction,
            attributes: self.attributes,
            media: self.media,
        })
    }

    /// `o=<username> <sess-id> <sess-version> IN <IP4|IP6> <address>` (RFC 8866 §5.2).
    fn origin(&mut self, value: &str) -> Step {
        if self.origin.is_some() {
            return Err(ParseReason::Repeated);
        }
        let bad = ParseReason::Origin;
        let mut fields = value.split_ascii_whitespace();
        let mut next = || fields.next().ok_or(bad);
        let username = next()?.to_string();
        let session_id = number(next()?).ok_or(bad)?;
        let session_version = number(next()?).ok_or(bad)?;
        let address_type = network(next()?, next()?).ok_or(bad)?;
        let address = next()?.to_string();
        if fields.next().is_some() {
            return Err(bad);
        }
        self.origin = Some(Origin {
            username,
            session_id,
            session_version,
            address_type,
            address,
        });
        Ok(())
    }

    /// `s=<text>`: free text in any charset (RFC 8866 §5.3), so it is never refused.
    fn session_name(&mut self, value: &[u8]) -> Step {
        if self.session_name.is_some() {
            return Err(ParseReason::Repeated);
        }
        self.session_name = Some(String::from_utf8_lossy(value).into_owned());
        Ok(())
    }

    /// `t=<start> <stop>`; later `t=` lines (repeat schedules) are of no use to a call.
    fn timing(&mut self, value: &str) -> Step {
        let mut fields = value.split_ascii_whitespace();
        let (Some(start), Some(stop), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(ParseReason::Timing);
        };
        let (Some(start), Some(stop)) = (number(start), number(stop)) else {
            return Err(ParseReason::Timing);
        };
        self.timing.get_or_insert(Timing { start, stop });
        Ok(())
    }

    /// `c=IN <IP4|IP6> <address>[/<ttl>][/<count>]` at the current level. A media level may
    /// carry several (layered multicast, RFC 8866 §5.7); the first is the one we use.
    fn connection(&mut self, value: &str) -> Step {
        let bad = ParseReason::Connection;
        let mut fields = value.split_ascii_whitespace();
        let (Some(net), Some(family), Some(address), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(bad);
        };
        let family = network(net, family).ok_or(bad)?;
        let address = address.split('/').next().unwrap_or(address);
        let ip = ip_of(family, address).ok_or(bad)?;
        let slot = match self.media.last_mut() {
            Some(m) => &mut m.connection,
            None => &mut self.connection,
        };
        slot.get_or_insert(ip);
        Ok(())
    }

    /// `m=<media> <port>[/<count>] <proto> <fmt> ...` (RFC 8866 §5.14).
    fn media(&mut self, value: &str) -> Step {
        if self.media.len() == MAX_SDP_MEDIA {
            return Err(ParseReason::TooManyMedia);
        }
        let bad = ParseReason::Media;
        let mut fields = value.split_ascii_whitespace();
        let (Some(kind), Some(port), Some(protocol)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err(bad);
        };
        let (port, count) = match port.split_once('/') {
            Some((port, count)) => (port, Some(count)),
            None => (port, None),
        };
        let port: u16 = number(port).ok_or(bad)?;
        if count.is_some_and(|c| number::<u16>(c).is_none()) {
            return Err(bad);
        }
        let protocol = Protocol::parse(protocol);
        let formats = if protocol.is_rtp() {
            // Normalised to plain numbers ("08" is 8) so formats compare as payload types.
            fields
                .map(|f| payload_type(f).map(|pt| pt.to_string()))
                .collect::<Option<Vec<_>>>()
                .ok_or(ParseReason::PayloadType)?
        } else {
            fields.map(str::to_string).collect()
        };
        self.media.push(MediaDescription::new(
            MediaKind::parse(kind),
            port,
            protocol,
            formats,
        ));
        self.media_lines.push(self.line_number);
        Ok(())
    }

    /// `a=<name>[:<value>]` at the current level.
    fn attribute(&mut self, value: &[u8]) -> Step {
        let (name, rest) = match value.iter().position(|b| *b == b':') {
            Some(i) => (&value[..i], Some(&value[i + 1..])),
            None => (value, None),
        };
        let name = text(name)?;
        if name.is_empty() {
            return Err(ParseReason::LineSyntax);
        }
        let direction = if rest.is_none() {
            Direction::from_attribute(name)
        } else {
            None
        };
        match self.media.last_mut() {
            Some(m) => {
                if let Some(d) = direction {
                    return set_direction(&mut m.direction, d);
                }
                if let Some(v) = rest
                    && let Some(step) = media_attribute(m, name, v)
                {
                    return step;
                }
                push_other(&mut m.attributes, name, rest);
            }
            None => {
                if let Some(d) = direction {
                    return set_direction(&mut self.direction, d);
                }
                push_other(&mut self.attributes, name, rest);
            }
        }
        Ok(())
    }
}

/// The attributes we type at media level; `None` for one we keep verbatim.
fn media_attribute(m: &mut MediaDescription, name: &str, value: &[u8]) -> Option<Step> {
    let lower = |n: &str| name.eq_ignore_ascii_case(n);
    let rtp = m.protocol.is_rtp();
    let step = if rtp && lower("rtpmap") {
        text(value).and_then(|v| rtpmap(m, v))
    } else if rtp && lower("fmtp") {
        text(value).and_then(|v| fmtp(m, v))
    } else if lower("ptime") {
        text(value).and_then(|v| milliseconds(&mut m.ptime, v))
    } else if lower("maxptime") {
        text(value).and_then(|v| milliseconds(&mut m.maxptime, v))
    } else if lower("rtcp") {
        text(value).and_then(|v| rtcp(m, v))
    } else {
        return None;
    };
    Some(step)
}

/// `a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>]` (RFC 8866 §6.6).
fn rtpmap(m: &mut MediaDescription, value: &str) -> Step {
    let bad = ParseReason::Rtpmap;
    let (pt, encoding) = value.trim().split_once(' ').ok_or(bad)?;
    let payload_type = payload_type(pt).ok_or(bad)?;
    let mut parts = encoding.trim().split('/');
    let (Some(name), Some(clock), channels, None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad);
    };
    let clock_rate = number(clock).filter(|c| *c > 0).ok_or(bad)?;
    let channels = match channels {
        Some(c) => Some(number(c).ok_or(bad)?),
        None => None,
    };
    if name.is_empty() || name.contains(char::is_whitespace) {
        return Err(bad);
    }
    let map = RtpMap {
        payload_type,
        encoding: name.to_string(),
        clock_rate,
        channels,
    };
    // One payload type, one meaning: a second, different rtpmap makes the number ambiguous.
    match m.rtpmaps.iter().find(|r| r.payload_type == payload_type) {
        Some(existing) if *existing == map => {}
        Some(_) => return Err(bad),
        None => m.rtpmaps.push(map),
    }
    Ok(())
}

/// `a=fmtp:<pt> <parameters>` (RFC 8866 §6.15).
fn fmtp(m: &mut MediaDescription, value: &str) -> Step {
    let value = value.trim();
    let (pt, parameters) = value.split_once(' ').unwrap_or((value, ""));
    let payload_type = payload_type(pt).ok_or(ParseReason::Fmtp)?;
    m.fmtps.push(Fmtp {
        payload_type,
        parameters: parameters.trim().to_string(),
    });
    Ok(())
}

/// `a=ptime:<ms>` or `a=maxptime:<ms>`: the first one counts.
fn milliseconds(slot: &mut Option<u32>, value: &str) -> Step {
    let ms = number(value.trim())
        .filter(|ms| *ms > 0)
        .ok_or(ParseReason::Ptime)?;
    slot.get_or_insert(ms);
    Ok(())
}

/// `a=rtcp:<port> [IN <IP4|IP6> <address>]` (RFC 3605 §2.1).
fn rtcp(m: &mut MediaDescription, value: &str) -> Step {
    let bad = ParseReason::Rtcp;
    let mut fields = value.split_ascii_whitespace();
    let port = fields.next().and_then(number).ok_or(bad)?;
    let address = match (fields.next(), fields.next(), fields.next(), fields.next()) {
        (None, ..) => None,
        (Some(net), Some(family), Some(address), None) => {
            let family = network(net, family).ok_or(bad)?;
            Some(ip_of(family, address).ok_or(bad)?)
        }
        _ => return Err(bad),
    };
    m.rtcp.get_or_insert(Rtcp { port, address });
    Ok(())
}

/// A direction at one level: repeating it is harmless, contradicting it is not.
fn set_direction(slot: &mut Option<Direction>, d: Direction) -> Step {
    match slot {
        Some(existing) if *existing != d => Err(ParseReason::ConflictingDirection),
        _ => {
            *slot = Some(d);
            Ok(())
        }
    }
}

fn push_other(list: &mut Vec<Attribute>, name: &str, value: Option<&[u8]>) {
    list.push(Attribute {
        name: name.to_string(),
        // Values we do not interpret may be in any charset; keep them, never refuse them.
        value: value.map(|v| String::from_utf8_lossy(v).into_owned()),
    });
}

/// A value we must read as text.
fn text(value: &[u8]) -> Result<&str, ParseReason> {
    std::str::from_utf8(value).map_err(|_| ParseReason::NotText)
}

/// A decimal number of ASCII digits only (`FromStr` alone would also take a `+`).
fn number<T: FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// An RTP payload type: 0..=127, the 7 bits of the RTP header field (RFC 3550 §5.1).
fn payload_type(s: &str) -> Option<u8> {
    number::<u8>(s).filter(|pt| *pt <= 127)
}

/// `IN IP4` / `IN IP6`, the only network we know (RFC 8866 §5.7).
fn network(net: &str, family: &str) -> Option<AddressType> {
    if !net.eq_ignore_ascii_case("IN") {
        return None;
    }
    if family.eq_ignore_ascii_case("IP4") {
        Some(AddressType::Ip4)
    } else if family.eq_ignore_ascii_case("IP6") {
        Some(AddressType::Ip6)
    } else {
        None
    }
}

/// An IP literal of the stated family. Host names are refused: resolving them is I/O, and
/// SIP stacks send literals in practice.
fn ip_of(family: AddressType, address: &str) -> Option<IpAddr> {
    match family {
        AddressType::Ip4 => Ipv4Addr::from_str(address).ok().map(IpAddr::V4),
        AddressType::Ip6 => Ipv6Addr::from_str(address).ok().map(IpAddr::V6),
    }
}
