//! What offer/answer settled for one leg's audio stream, in the form the relay needs.
//!
//! The two legs of a bridged call negotiate independently, so the same codec may travel
//! under different payload type numbers on each (telephone-event is 101 on one leg and 96
//! on the other), or the legs may settle on different codecs (PCMU one side, PCMA the
//! other). [`PayloadMap`] is the per-leg table that lets the relay rewrite the payload type
//! of each packet it forwards, and tells it when to transcode. It is `Copy` and
//! allocation-free, so the relay can consult it per packet.
//!
//! RFC 3264 §5.1: the payload type numbers in an SDP are the ones its *writer* expects to
//! receive. So on each leg we receive with the numbers of our own SDP and send with the
//! numbers of the remote's; the map keeps both.

use std::net::SocketAddr;

use super::codec::Codec;
use super::direction::Direction;
use super::security::RemoteSecurity;

/// Payload type numbers for what we can carry, as one side declared them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PayloadTypes {
    /// PCMU's payload type, if negotiated.
    pub pcmu: Option<u8>,
    /// PCMA's payload type, if negotiated.
    pub pcma: Option<u8>,
    /// telephone-event/8000's payload type (RFC 4733), if negotiated.
    pub telephone_event: Option<u8>,
}

impl PayloadTypes {
    /// The payload type of `codec`.
    pub const fn of(&self, codec: Codec) -> Option<u8> {
        match codec {
            Codec::Pcmu => self.pcmu,
            Codec::Pcma => self.pcma,
        }
    }

    /// What payload type `pt` carries.
    pub fn classify(&self, pt: u8) -> Option<Payload> {
        if self.pcmu == Some(pt) {
            Some(Payload::Audio(Codec::Pcmu))
        } else if self.pcma == Some(pt) {
            Some(Payload::Audio(Codec::Pcma))
        } else if self.telephone_event == Some(pt) {
            Some(Payload::TelephoneEvent)
        } else {
            None
        }
    }

    pub(crate) fn set(&mut self, codec: Codec, pt: u8) {
        let slot = match codec {
            Codec::Pcmu => &mut self.pcmu,
            Codec::Pcma => &mut self.pcma,
        };
        // The first mapping wins, as the first listed format is the preferred one.
        slot.get_or_insert(pt);
    }
}

/// What an RTP packet carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload {
    /// Audio in a codec we support.
    Audio(Codec),
    /// An RFC 4733 event (DTMF).
    TelephoneEvent,
}

/// How to forward a packet onto another leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forward {
    /// The payload type to write into the packet.
    pub payload_type: u8,
    /// Set when the payload must be transcoded on the way.
    pub transcode: Option<Transcode>,
}

/// A G.711 law change (PCMU to PCMA or back), which the relay does with a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transcode {
    /// The codec the packet arrived in.
    pub from: Codec,
    /// The codec to send.
    pub to: Codec,
}

/// One leg's payload type table (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadMap {
    codec: Codec,
    send: PayloadTypes,
    receive: PayloadTypes,
}

impl PayloadMap {
    /// A map that sends `codec`; `None` unless `send` has a payload type for it.
    pub fn new(codec: Codec, send: PayloadTypes, receive: PayloadTypes) -> Option<Self> {
        send.of(codec)?;
        Some(PayloadMap {
            codec,
            send,
            receive,
        })
    }

    /// For negotiation, which puts `codec` in `send` by construction.
    pub(super) const fn from_parts(
        codec: Codec,
        send: PayloadTypes,
        receive: PayloadTypes,
    ) -> Self {
        PayloadMap {
            codec,
            send,
            receive,
        }
    }

    /// The codec we send on this leg: the first common one, in the offerer's order.
    pub const fn codec(&self) -> Codec {
        self.codec
    }

    /// The payload type we send [`Self::codec`] with.
    pub fn payload_type(&self) -> u8 {
        // Constructors put the codec in the send table; the static number is only a
        // fallback that keeps this total.
        self.send
            .of(self.codec)
            .unwrap_or(self.codec.static_payload_type())
    }

    /// The payload type we send telephone-events with, if the leg negotiated them.
    pub const fn telephone_event(&self) -> Option<u8> {
        self.send.telephone_event
    }

    /// The numbers the remote declared: what we write into packets we send it.
    pub const fn send(&self) -> &PayloadTypes {
        &self.send
    }

    /// The numbers we declared: what the remote writes into packets it sends us.
    pub const fn receive(&self) -> &PayloadTypes {
        &self.receive
    }

    /// What a packet received on this leg with payload type `pt` carries.
    pub fn classify(&self, pt: u8) -> Option<Payload> {
        self.receive.classify(pt)
    }

    /// How to forward a packet received on this leg with payload type `pt` onto the leg
    /// `out`: the same codec when `out` negotiated it (no transcoding), else `out`'s codec
    /// with a transcode. `None` drops the packet: an unknown payload type (comfort noise,
    /// a codec never negotiated), or an event for a leg without telephone-event.
    pub fn forward(&self, pt: u8, out: &PayloadMap) -> Option<Forward> {
        match self.classify(pt)? {
            Payload::TelephoneEvent => Some(Forward {
                payload_type: out.send.telephone_event?,
                transcode: None,
            }),
            Payload::Audio(codec) => Some(match out.send.of(codec) {
                Some(payload_type) => Forward {
                    payload_type,
                    transcode: None,
                },
                None => Forward {
                    payload_type: out.payload_type(),
                    transcode: Some(Transcode {
                        from: codec,
                        to: out.codec,
                    }),
                },
            }),
        }
    }
}

/// One leg's audio stream after offer/answer: what the relay needs to open it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedMedia {
    /// The m-line's index in the session (RFC 3264 §6: answers keep the offer's order).
    pub index: usize,
    /// Our RTP port for this stream (RTCP on the next one).
    pub local_rtp_port: u16,
    /// Where the remote receives RTP. Unspecified (0.0.0.0) for an RFC 2543 hold, in which
    /// case [`Self::direction`] does not send.
    pub remote_rtp: SocketAddr,
    /// Where the remote receives RTCP (`a=rtcp`, else RTP port + 1).
    pub remote_rtcp: SocketAddr,
    /// Payload types and codec on this leg.
    pub payloads: PayloadMap,
    /// Our direction on this leg: whether the relay may send to the remote and whether it
    /// should expect media from it.
    pub direction: Direction,
    /// The packet duration the remote asked to receive (`a=ptime`), in milliseconds.
    pub ptime: Option<u32>,
    /// A browser's ICE and DTLS parameters, when the stream is `UDP/TLS/RTP/SAVPF`.
    pub security: Option<RemoteSecurity>,
}

impl NegotiatedMedia {
    /// The codec we send on this leg.
    pub const fn codec(&self) -> Codec {
        self.payloads.codec()
    }

    /// The payload type we send the codec with.
    pub fn payload_type(&self) -> u8 {
        self.payloads.payload_type()
    }

    /// The payload type we send telephone-events with, if negotiated.
    pub const fn telephone_event(&self) -> Option<u8> {
        self.payloads.telephone_event()
    }
}
