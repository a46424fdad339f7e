//! Calls between the nodes of a cluster. A client's flow (its TCP connection, its NAT
//! binding) ends at the node it registered through; a call for it arriving at another node
//! is sent to that node first (a *hop*), and the edge node rings the client's contacts it
//! holds, bridging the media through its own relay. Every node carries the leg it can
//! reach: the edge node's call sets the client busy.
//!
//! A hop INVITE goes to the edge node's `[cluster] advertise` address, its Request-URI
//! `sip:<identity>@<edge>`, with
//! `X-Switchboard-Hop: account=<AC…>;node=<from>;ts=<unix>;sig=<hex>`. The edge node
//! takes it only from a source in `[cluster] peers_cidrs` or, with `[cluster] secret`, with
//! a valid signature: HMAC-SHA256 over `account|identity|call-id|ts`, at most
//! `MAX_SKEW_SECS` old. So no outsider can make a node ring its clients (a relay for toll
//! fraud or spam), and a signature cannot be replayed onto another call.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::ClusterConfig;

/// The header a hop INVITE carries.
pub const HEADER: &str = "X-Switchboard-Hop";

/// The trunk a hop call's record names (CDR rows say so). REST lists leave these out:
/// the call is listed, once, by the node it arrived at.
pub const TRUNK: &str = "cluster";

/// How old a signed hop may be (clock skew between nodes plus retransmissions).
const MAX_SKEW_SECS: u64 = 60;

/// What a node needs to hop a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HopSpec {
    pub account: String,
}

fn signature(secret: &str, account: &str, identity: &str, call_id: &str, ts: u64) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(format!("{account}|{identity}|{call_id}|{ts}").as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The header value for a hop of `call_id` to `identity` of `account`.
pub fn header_value(
    cluster: &ClusterConfig,
    node: &str,
    account: &str,
    identity: &str,
    call_id: &str,
    now: u64,
) -> String {
    let mut v = format!("account={account};node={node};ts={now}");
    if let Some(secret) = &cluster.secret {
        v.push_str(";sig=");
        v.push_str(&signature(secret, account, identity, call_id, now));
    }
    v
}

/// Why a hop INVITE is refused (answered 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HopRefused {
    /// Neither a peer address nor a valid signature.
    NotAPeer,
    /// The header is malformed.
    Malformed,
}

/// The account a hop INVITE is for, if its sender is a cluster peer: its source is in
/// `peers_cidrs`, or it carries a fresh valid signature.
pub fn verify(
    cluster: &ClusterConfig,
    value: &str,
    identity: &str,
    call_id: &str,
    source: std::net::IpAddr,
    now: u64,
) -> Result<String, HopRefused> {
    let param = |name: &str| {
        value.split(';').find_map(|p| {
            let (k, v) = p.trim().split_once('=')?;
            (k == name).then_some(v)
        })
    };
    let account = param("account").ok_or(HopRefused::Malformed)?;
    if cluster.peer_nets.iter().any(|n| n.contains(source)) {
        return Ok(account.to_string());
    }
    let Some(secret) = &cluster.secret else {
        return Err(HopRefused::NotAPeer);
    };
    let ts: u64 = param("ts")
        .and_then(|t| t.parse().ok())
        .ok_or(HopRefused::Malformed)?;
    let sig = param("sig").ok_or(HopRefused::NotAPeer)?;
    let fresh = now.abs_diff(ts) <= MAX_SKEW_SECS;
    let expected = signature(secret, account, identity, call_id, ts);
    let matches: bool = subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), sig.as_bytes()).into();
    if fresh && matches {
        Ok(account.to_string())
    } else {
        Err(HopRefused::NotAPeer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Cidr;

    fn cluster(peers: &[&str], secret: Option<&str>) -> ClusterConfig {
        ClusterConfig {
            peer_nets: peers.iter().map(|p| Cidr::parse(p).unwrap()).collect(),
            secret: secret.map(str::to_string),
            ..ClusterConfig::default()
        }
    }

    const AC: &str = "AC00000000000000000000000000000001";

    #[test]
    fn a_peer_address_needs_no_signature() {
        let c = cluster(&["10.0.0.0/24"], None);
        let v = header_value(&c, "a", AC, "alice", "cid", 1000);
        assert_eq!(v, format!("account={AC};node=a;ts=1000"));
        let from = |ip: &str| ip.parse().unwrap();
        assert_eq!(
            verify(&c, &v, "alice", "cid", from("10.0.0.7"), 1000),
            Ok(AC.into())
        );
        assert_eq!(
            verify(&c, &v, "alice", "cid", from("192.0.2.1"), 1000),
            Err(HopRefused::NotAPeer)
        );
    }

    #[test]
    fn a_signature_binds_account_identity_call_and_time() {
        let c = cluster(&[], Some("0123456789abcdef0123"));
        let v = header_value(&c, "a", AC, "alice", "cid", 1000);
        let ip = "192.0.2.1".parse().unwrap();
        assert_eq!(verify(&c, &v, "alice", "cid", ip, 1030), Ok(AC.into()));
        // Another identity, another call, too late, another secret: refused.
        assert!(verify(&c, &v, "bob", "cid", ip, 1000).is_err());
        assert!(verify(&c, &v, "alice", "other", ip, 1000).is_err());
        assert!(verify(&c, &v, "alice", "cid", ip, 1000 + MAX_SKEW_SECS + 1).is_err());
        let other = cluster(&[], Some("another secret of 20"));
        assert!(verify(&other, &v, "alice", "cid", ip, 1000).is_err());
        // Another account under the same signature: refused.
        let forged = v.replace(AC, "AC00000000000000000000000000000002");
        assert!(verify(&c, &forged, "alice", "cid", ip, 1000).is_err());
        assert_eq!(
            verify(&c, "node=a", "alice", "cid", ip, 1000),
            Err(HopRefused::Malformed)
        );
    }
}
