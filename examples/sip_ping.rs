//! `cargo run --example sip_ping -- 127.0.0.1:5060 [count]`: sends OPTIONS to a SIP element
//! over UDP and prints each answer's status, Allow header and round-trip time, using the
//! switch's own message parser to read the responses.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use switchboard::sip::HeaderName;
use switchboard::sip::msg::SipMessage;

#[allow(clippy::disallowed_methods)] // a ping measures wall-clock round trips
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let target: SocketAddr = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:5060".into())
        .parse()?;
    let count: u32 = args.next().map_or(Ok(3), |c| c.parse())?;
    let sock = UdpSocket::bind(if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })?;
    sock.set_read_timeout(Some(Duration::from_secs(2)))?;
    let local = sock.local_addr()?;
    let call_id = format!("{:016x}@ping", switchboard::ids::random_u64());
    let mut buf = [0u8; 65_535];
    for seq in 1..=count {
        let request = format!(
            "OPTIONS sip:{target} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch={};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:ping@{local}>;tag={}\r\nTo: <sip:{target}>\r\n\
             Call-ID: {call_id}\r\nCSeq: {seq} OPTIONS\r\nAccept: application/sdp\r\nContent-Length: 0\r\n\r\n",
            switchboard::ids::branch(),
            switchboard::ids::tag(),
        );
        let sent = Instant::now();
        sock.send_to(request.as_bytes(), target)?;
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                let rtt = sent.elapsed();
                match SipMessage::parse(buf[..n].to_vec()) {
                    Ok(m) => println!(
                        "{from}: {} {} in {:.2} ms; Allow: {}",
                        m.status().unwrap_or(0),
                        m.reason().unwrap_or(""),
                        rtt.as_secs_f64() * 1e3,
                        m.first(HeaderName::Allow).unwrap_or("-"),
                    ),
                    Err(e) => println!("{from}: unparseable answer ({})", e.error),
                }
            }
            Err(e) => println!("no answer from {target}: {e}"),
        }
    }
    Ok(())
}
