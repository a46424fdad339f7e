//! Carrier calls answered by the switch, each with an RTP phone: placed, talked through
//! (every phone sending its own tone on a 20 ms clock while collecting what it hears),
//! hung up. For the conference and queue tests.

// Talking is paced by the real clock; durations are never asserted.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::customer_app::CustomerApp;
use super::rtp::{Codec, RtpPhone, SdpAudio, ulaw_to_linear};
use super::tones::tone;
use super::ua::{call_id_of, carrier_invite, in_dialog};
use super::{Msg, Switch, Udp};

/// The sample config's number (its application's `voice_url` is the test's).
pub const NUMBER: &str = "+15550100001";

/// A carrier call into the switch, answered: its SIP socket, RTP phone, the relay address
/// to send to, the INVITE and the 200.
pub struct Caller {
    pub sip: Udp,
    pub phone: RtpPhone,
    pub relay: SocketAddr,
    pub invite: String,
    pub ok: Msg,
}

/// Calls [`NUMBER`] from a new phone and ACKs the 200.
pub fn caller(sw: &Switch) -> Caller {
    let sip: Udp = sw.udp();
    let phone = RtpPhone::new();
    let invite = carrier_invite(sw, &sip, NUMBER, &phone.offer(&[Codec::Pcmu]));
    sip.send(&invite);
    let (ok, _) = sip
        .recv_final(&call_id_of(&invite), Duration::from_secs(5))
        .expect("an answer");
    assert_eq!(ok.status(), Some(200));
    sip.send(in_dialog("ACK", &invite, &ok, &sip, 1));
    let relay = SdpAudio::parse(&ok.body).rtp;
    Caller {
        sip,
        phone,
        relay,
        invite,
        ok,
    }
}

impl Caller {
    pub fn hang_up(&self) {
        self.sip
            .send(in_dialog("BYE", &self.invite, &self.ok, &self.sip, 2));
    }
}

/// Every caller sends its tone (none for 0 Hz) for `secs`; what each heard after the first
/// second.
pub fn talk(callers: &mut [Caller], tones: &[f64], secs: u64) -> Vec<Vec<i16>> {
    talk_for(
        callers,
        tones,
        Duration::from_secs(secs),
        Duration::from_secs(1),
    )
}

/// Every caller sends its tone (none for 0 Hz) for `time`; what each heard after `skip`.
pub fn talk_for(
    callers: &mut [Caller],
    tones: &[f64],
    time: Duration,
    skip: Duration,
) -> Vec<Vec<i16>> {
    let mut heard = vec![Vec::new(); callers.len()];
    let start = Instant::now();
    let mut next = start;
    let mut i = 0;
    while start.elapsed() < time {
        if Instant::now() >= next {
            for (k, c) in callers.iter_mut().enumerate() {
                if tones[k] > 0.0 {
                    c.phone.send(c.relay, 0, &tone(tones[k], i));
                }
            }
            i += 1;
            next += Duration::from_millis(20);
        }
        for (k, c) in callers.iter().enumerate() {
            while let Some((rtp, _)) = c.phone.try_recv() {
                if start.elapsed() > skip {
                    heard[k].extend(rtp.payload.iter().map(|&b| ulaw_to_linear(b)));
                }
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    heard
}

/// Talks in half-second chunks until `done` says yes of the latest chunk (what each
/// caller heard in it), for at most `within`: `true` if it did. For waiting on a state
/// the audio shows (a hold taking effect, an announcement starting) without a timing
/// assumption; the state is then measured with a fresh [`talk`].
pub fn talk_until(
    callers: &mut [Caller],
    tones: &[f64],
    within: Duration,
    done: impl Fn(&[Vec<i16>]) -> bool,
) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let chunk = talk_for(callers, tones, Duration::from_millis(500), Duration::ZERO);
        if done(&chunk) {
            return true;
        }
    }
    false
}

/// Talks in half-second chunks, keeping everything heard, until `started` says yes of all
/// of it and then `ended` of a later chunk alone (or of the same one), for at most
/// `within`: what each caller heard, or `None` on timeout. For something heard for a while
/// (an announcement: it started, then it is over and the mix is back), without a timing
/// assumption.
pub fn talk_through(
    callers: &mut [Caller],
    tones: &[f64],
    within: Duration,
    started: impl Fn(&[Vec<i16>]) -> bool,
    ended: impl Fn(&[Vec<i16>]) -> bool,
) -> Option<Vec<Vec<i16>>> {
    let deadline = Instant::now() + within;
    let mut all = vec![Vec::new(); callers.len()];
    let mut began = false;
    while Instant::now() < deadline {
        let chunk = talk_for(callers, tones, Duration::from_millis(500), Duration::ZERO);
        for (k, heard) in chunk.iter().enumerate() {
            all[k].extend_from_slice(heard);
        }
        began = began || started(&all);
        if began && ended(&chunk) {
            return Some(all);
        }
    }
    None
}

/// The CallSids of the `/voice` requests, in arrival order, once there are `n` of them
/// (fewer after 5 s: assert on the length).
pub fn call_sids(app: &CustomerApp, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let sids: Vec<String> = app
            .requests()
            .iter()
            .filter(|r| r["path"] == "/voice")
            .map(|r| r["params"]["CallSid"].as_str().unwrap_or("").to_string())
            .collect();
        if sids.len() >= n || Instant::now() > deadline {
            return sids;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
