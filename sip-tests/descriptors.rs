//! File-descriptor exhaustion (issue 16), black-box: a switch with no descriptor left for a
//! call's RTP sockets refuses the INVITE with a 503 that says so (not "no RTP ports", which
//! would send an operator to the port range), stays up, and takes calls again once
//! descriptors are free.
//!
//! The switch's soft `nofile` limit is lowered from outside, while it runs, to the number
//! of descriptors it holds (`prlimit --pid`, util-linux), and set back afterwards (a soft
//! limit may go back up to the hard one without privilege).
#![allow(clippy::disallowed_methods)]

mod harness;

use std::process::Command;
use std::time::{Duration, Instant};

use harness::Switch;
use harness::rtp::{Codec, RtpPhone};
use harness::ua::{call_id_of, carrier_invite, expect_request, in_dialog, register, reply};

/// The sample config's number: it dials the client `alice`.
const NUMBER: &str = "+15550100001";
const WAIT: Duration = Duration::from_secs(5);

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc/PID/fd")
        .count()
}

/// The switch's (soft, hard) `nofile` limits from /proc/PID/limits.
fn nofile(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files");
    let mut v = line["Max open files".len()..].split_whitespace();
    (v.next().unwrap().to_owned(), v.next().unwrap().to_owned())
}

fn set_soft_nofile(pid: u32, soft: &str, hard: &str) {
    let status = Command::new("prlimit")
        .arg(format!("--pid={pid}"))
        .arg(format!("--nofile={soft}:{hard}"))
        .status()
        .expect("prlimit (util-linux)");
    assert!(status.success(), "prlimit --nofile={soft}:{hard} failed");
    assert_eq!(nofile(pid).0, soft, "the soft limit did not change");
}

#[test]
fn out_of_descriptors_an_invite_gets_503_saying_so_and_calls_resume_once_they_are_free() {
    let mut sw = Switch::start();
    let pid = sw.pid();
    let alice = sw.udp();
    register(&alice, "alice");
    let carrier = sw.udp();
    let phone = RtpPhone::new();
    let sdp = phone.offer(&[Codec::Pcmu]);

    // Not one descriptor to spare: the caller's RTP socket cannot be opened. (The switch
    // opens none between this count and the INVITE: nothing else talks to it.)
    let (soft, hard) = nofile(pid);
    let held = open_descriptors(pid);
    set_soft_nofile(pid, &held.to_string(), &hard);
    let invite = carrier_invite(&sw, &carrier, NUMBER, &sdp);
    carrier.send(&invite);
    let (refused, _) = carrier
        .recv_final(&call_id_of(&invite), WAIT)
        .expect("an answer to the INVITE");
    set_soft_nofile(pid, &soft, &hard);
    assert_eq!(refused.status(), Some(503), "{}", refused.text());
    assert!(
        refused.start_line.contains("Out Of File Descriptors"),
        "the 503 should say what ran out: {}",
        refused.start_line
    );
    carrier.send(harness::ack_for(&invite, &refused));
    assert!(
        sw.stderr().contains("out of file descriptors"),
        "the log should name the cause"
    );
    sw.assert_alive("after running out of descriptors");

    // Descriptors free again: the same call goes through to alice.
    let invite = carrier_invite(&sw, &carrier, NUMBER, &sdp);
    carrier.send(&invite);
    let ring = expect_request(&alice, "INVITE", WAIT);
    let tag = harness::unique("alice");
    let answer_sdp = RtpPhone::new().offer(&[Codec::Pcmu]);
    alice.send(reply(
        &ring,
        200,
        "OK",
        &tag,
        alice.local_addr(),
        Some(&answer_sdp),
    ));
    let deadline = Instant::now() + WAIT;
    let ok = loop {
        assert!(Instant::now() < deadline, "no 200 for the carrier");
        if let Some((fin, _)) = carrier.recv_final(&call_id_of(&invite), Duration::from_millis(100))
        {
            break fin;
        }
    };
    assert_eq!(ok.status(), Some(200), "{}", ok.text());
    carrier.send(in_dialog("ACK", &invite, &ok, &carrier, 1));
    carrier.send(in_dialog("BYE", &invite, &ok, &carrier, 2));
    let bye = expect_request(&alice, "BYE", WAIT);
    alice.send(reply(&bye, 200, "OK", &tag, alice.local_addr(), None));
}
