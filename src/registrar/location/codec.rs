//! How one AOR's bindings are written to the shared store: `<version> <json>`.
//!
//! The version is 16 hex digits, random per write: a writer that planned against version
//! V stores only if the AOR still holds V (compare-and-set, see `redis`). Random, not a
//! counter: a key that expired and was created again restarts no sequence, so a stale
//! replica can never match it by accident.
//!
//! The JSON is an array of objects with one-letter keys and absent options left out: a
//! binding costs about 200 bytes in Redis, not the 400 field names would add.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use super::binding::{Binding, Edge};
use crate::sip::peer::Transport;

/// Digits of the version prefix.
pub(super) const VERSION_LEN: usize = 16;

#[derive(Serialize, Deserialize)]
struct Wire {
    /// contact
    c: Box<str>,
    /// expires_at
    x: u64,
    /// call_id
    i: Box<str>,
    /// cseq
    s: u32,
    /// +sip.instance
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<Box<str>>,
    /// reg-id
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<u32>,
    /// Path
    #[serde(default, skip_serializing_if = "<[_]>::is_empty")]
    p: Box<[Box<str>]>,
    /// source
    a: SocketAddr,
    /// transport: its index in `Transport::ALL` (0 UDP, 1 TCP, 2 TLS, 3 WS, 4 WSS)
    t: u8,
    /// connection id (meaningful on the edge node only)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    k: Option<u64>,
    /// User-Agent
    #[serde(default, skip_serializing_if = "Option::is_none")]
    u: Option<Box<str>>,
    /// q
    #[serde(default, skip_serializing_if = "Option::is_none")]
    q: Option<f32>,
    /// registered_at
    g: u64,
    /// edge node id and address
    #[serde(default, skip_serializing_if = "Option::is_none")]
    e: Option<(Box<str>, SocketAddr)>,
}

impl From<&Binding> for Wire {
    fn from(b: &Binding) -> Wire {
        Wire {
            c: b.contact.clone(),
            x: b.expires_at,
            i: b.call_id.clone(),
            s: b.cseq,
            n: b.instance.clone(),
            r: b.reg_id,
            p: b.path.clone(),
            a: b.source,
            t: Transport::ALL
                .iter()
                .position(|t| *t == b.transport)
                .unwrap_or(0) as u8,
            k: b.conn,
            u: b.user_agent.clone(),
            q: b.q,
            g: b.registered_at,
            e: b.edge.as_ref().map(|e| (e.node.clone(), e.addr)),
        }
    }
}

impl From<Wire> for Binding {
    fn from(w: Wire) -> Binding {
        Binding {
            contact: w.c,
            expires_at: w.x,
            call_id: w.i,
            cseq: w.s,
            instance: w.n,
            reg_id: w.r,
            path: w.p,
            source: w.a,
            transport: Transport::ALL
                .get(usize::from(w.t))
                .copied()
                .unwrap_or(Transport::Udp),
            conn: w.k,
            user_agent: w.u,
            q: w.q,
            registered_at: w.g,
            edge: w.e.map(|(node, addr)| Box::new(Edge { node, addr })),
        }
    }
}

/// `bindings` under `version`.
pub(super) fn encode(version: u64, bindings: &[Binding]) -> String {
    let wire: Vec<Wire> = bindings.iter().map(Wire::from).collect();
    let json = serde_json::to_string(&wire).unwrap_or_else(|_| "[]".into());
    format!("{version:016x} {json}")
}

/// The version and bindings of a stored value; `None` for a value this code did not write.
pub(super) fn decode(value: &[u8]) -> Option<(u64, Vec<Binding>)> {
    let text = std::str::from_utf8(value).ok()?;
    let (version, json) = text.split_at_checked(VERSION_LEN)?;
    let version = u64::from_str_radix(version, 16).ok()?;
    let json = json.strip_prefix(' ')?;
    let wire: Vec<Wire> = serde_json::from_str(json).ok()?;
    Some((version, wire.into_iter().map(Binding::from).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_every_field() {
        let full = Binding {
            contact: "sip:alice@192.0.2.1:5060;transport=tcp;ob".into(),
            expires_at: 1_700_000_600,
            call_id: "a84b4c76e66710".into(),
            cseq: 314_159,
            instance: Some("<urn:uuid:00000000-0000-1000-8000-000A95A0E128>".into()),
            reg_id: Some(1),
            path: vec!["<sip:edge.example.com;lr>".into()].into(),
            source: "[2001:db8::1]:5070".parse().unwrap(),
            transport: Transport::Tcp,
            conn: Some(0xdead_beef_0000_0001),
            user_agent: Some("baresip v3.10.1 (x86_64/linux)".into()),
            q: Some(0.7),
            registered_at: 1_700_000_000,
            edge: Some(Box::new(Edge {
                node: "b".into(),
                addr: "127.0.0.1:5072".parse().unwrap(),
            })),
        };
        let bare = Binding {
            instance: None,
            reg_id: None,
            path: Box::default(),
            transport: Transport::Udp,
            conn: None,
            user_agent: None,
            q: None,
            edge: None,
            ..full.clone()
        };
        let v = encode(0x0123_4567_89ab_cdef, &[full.clone(), bare.clone()]);
        assert!(v.starts_with("0123456789abcdef ["));
        let (version, back) = decode(v.as_bytes()).expect("decodes");
        assert_eq!(version, 0x0123_4567_89ab_cdef);
        assert_eq!(back, vec![full, bare]);
    }

    #[test]
    fn foreign_values_are_refused() {
        assert!(decode(b"").is_none());
        assert!(decode(b"hello").is_none());
        assert!(decode(b"zzzzzzzzzzzzzzzz []").is_none());
        assert!(decode(b"0000000000000001[]").is_none());
        assert_eq!(
            decode(b"0000000000000001 []").map(|(v, b)| (v, b.len())),
            Some((1, 0))
        );
    }
}
