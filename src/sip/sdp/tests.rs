//! SDP tests: real-world bodies from SIPp, Linphone, baresip and Asterisk; RFC 3264
//! answers, hold in both forms, IPv6, video declined, the 488 cases; reading answers to
//! our offers; payload type mapping between legs; and properties that junk never panics.

use std::net::{IpAddr, SocketAddr};

use super::*;

/// Test bodies are written with LF for legibility and sent with CRLF, as on the wire.
fn crlf(text: &str) -> Vec<u8> {
    text.replace('\n', "\r\n").into_bytes()
}

fn parsed(text: &str) -> SessionDescription {
    match SessionDescription::parse(&crlf(text)) {
        Ok(d) => d,
        Err(e) => panic!("{e} in:\n{text}"),
    }
}

fn parse_error(text: &str) -> ParseError {
    SessionDescription::parse(text.as_bytes()).expect_err(text)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

const OUR_IP: &str = "192.0.2.10";

fn local() -> LocalSession {
    LocalSession::new(42, ip(OUR_IP))
}

/// Answers `offer` with one RTP port, 30000.
fn answer(text: &str) -> Result<Answer, SdpError> {
    local().answer(&parsed(text), &[30000])
}

fn only_stream(a: &Answer) -> &NegotiatedMedia {
    assert_eq!(a.media.len(), 1, "{:?}", a.media);
    &a.media[0]
}

/// The answer body's m-line at `index` as text, with its attributes, for compact asserts.
fn answer_section(a: &Answer, index: usize) -> String {
    let text = a.description.to_string();
    let mut sections = Vec::new();
    for line in text.split_inclusive("\r\n") {
        if line.starts_with("m=") {
            sections.push(String::new());
        }
        if let Some(current) = sections.last_mut() {
            current.push_str(line);
        }
    }
    sections.swap_remove(index)
}

// SIPp's built-in uac scenario body (`sipp -sn uac`), as it goes out on loopback.
const SIPP_UAC: &str = "v=0
o=user1 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
";

// Linphone desktop: Opus and Speex first, G.711 further down, one telephone-event per
// clock rate, RTCP feedback and XR attributes.
const LINPHONE: &str = "v=0
o=alice 2345 678 IN IP4 192.168.1.10
s=Talk
c=IN IP4 192.168.1.10
t=0 0
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:97 speex/16000
a=fmtp:97 vbr=on
a=rtpmap:98 speex/8000
a=fmtp:98 vbr=on
a=fmtp:18 annexb=yes
a=rtpmap:101 telephone-event/48000
a=rtpmap:99 telephone-event/16000
a=rtpmap:100 telephone-event/8000
a=rtcp-fb:* trr-int 1000
a=rtcp-fb:* ccm tmmbr
";

// baresip: media-level c=, b=AS, ptime, telephone-event with the RFC 4733 default range.
const BARESIP: &str = "v=0
o=- 1193478457 2009447829 IN IP4 10.0.0.5
s=-
c=IN IP4 10.0.0.5
t=0 0
m=audio 10206 RTP/AVP 96 9 0 8 101
c=IN IP4 10.0.0.6
b=AS:128
a=rtpmap:96 opus/48000/2
a=fmtp:96 stereo=1;sprop-stereo=1
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=rtcp-rsize
a=ptime:20
a=sendrecv
a=label:1
";

// Asterisk (chan_pjsip) with several codecs allowed, PCMA preferred.
const ASTERISK: &str = "v=0
o=- 1712345678 1712345678 IN IP4 203.0.113.5
s=Asterisk
c=IN IP4 203.0.113.5
t=0 0
m=audio 17890 RTP/AVP 9 8 0 3 111 101
a=rtpmap:9 G722/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:3 GSM/8000
a=rtpmap:111 opus/48000/2
a=fmtp:111 useinbandfec=1
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=maxptime:150
a=sendrecv
";

// The same Asterisk putting us on hold the RFC 2543 way: c=0.0.0.0, plus a=sendonly
// (music on hold), version up by one.
const ASTERISK_HOLD: &str = "v=0
o=- 1712345678 1712345679 IN IP4 203.0.113.5
s=Asterisk
c=IN IP4 0.0.0.0
t=0 0
m=audio 17890 RTP/AVP 8 0 101
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=sendonly
";

// An IPv6 offer (RFC 5118 §4.6 style) with RTCP on another address (RFC 3605 §2.1).
const IPV6: &str = "v=0
o=bob 2890844730 2890844730 IN IP6 2001:db8::2
s=-
c=IN IP6 2001:db8::2
t=0 0
m=audio 49172 RTP/AVP 8 0 101
a=rtpmap:101 telephone-event/8000
a=rtcp:49180 IN IP6 2001:db8::3
";

// A video phone: audio and H.264 video.
const VIDEO_AND_AUDIO: &str = "v=0
o=carol 28908764872 28908764872 IN IP4 198.51.100.7
s=-
c=IN IP4 198.51.100.7
t=0 0
m=audio 49170 RTP/AVP 0 8 97 101
a=rtpmap:97 iLBC/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
m=video 51372 RTP/AVP 31 32 96
a=rtpmap:96 H264/90000
a=fmtp:96 profile-level-id=42801F
";

// ---------------------------------------------------------------------------------------
// Parsing real-world bodies.

#[test]
fn sipp_default_body_parses() {
    let d = parsed(SIPP_UAC);
    assert_eq!(d.origin.username, "user1");
    assert_eq!(d.origin.session_id, 53655765);
    assert_eq!(d.origin.session_version, 2353687637);
    assert_eq!(d.origin.address_type, AddressType::Ip4);
    assert_eq!(d.origin.address, "127.0.0.1");
    assert_eq!(d.session_name, "-");
    assert_eq!(d.connection, Some(ip("127.0.0.1")));
    assert_eq!(d.timing, Timing { start: 0, stop: 0 });
    let m = &d.media[0];
    assert_eq!(
        (&m.kind, m.port, &m.protocol),
        (&MediaKind::Audio, 6000, &Protocol::RtpAvp)
    );
    assert_eq!(m.payload_types().collect::<Vec<_>>(), [0]);
    assert_eq!(m.direction_in(&d), Direction::SendRecv);
    assert_eq!(m.rtp_addr_in(&d), Some(addr("127.0.0.1:6000")));
    assert_eq!(m.rtcp_addr_in(&d), Some(addr("127.0.0.1:6001")));
}

#[test]
fn bare_lf_line_ends_read_like_crlf() {
    // RFC 8866 §5 asks parsers to accept a bare LF; SIPp scenario files often send them.
    let lf = SessionDescription::parse(SIPP_UAC.as_bytes()).unwrap();
    assert_eq!(lf, parsed(SIPP_UAC));
}

#[test]
fn static_payload_types_need_no_rtpmap() {
    let d = parsed(IPV6);
    let m = &d.media[0];
    let pcma = m.encoding(8).unwrap();
    assert_eq!((pcma.name, pcma.clock_rate), ("PCMA", 8000));
    assert_eq!(Codec::from_encoding(&pcma), Some(Codec::Pcma));
    assert_eq!(m.encoding(0).map(|e| e.name), Some("PCMU"));
    assert_eq!(m.encoding(18).map(|e| e.name), Some("G729"));
    assert_eq!(m.encoding(101).map(|e| e.name), Some("telephone-event"));
    assert_eq!(
        m.encoding(96),
        None,
        "dynamic types mean nothing without an rtpmap"
    );
}

#[test]
fn linphone_offer_parses_with_telephone_event_per_clock_rate() {
    let d = parsed(LINPHONE);
    assert_eq!(d.session_name, "Talk");
    assert_eq!(d.attributes[0].name, "rtcp-xr");
    let m = &d.media[0];
    assert_eq!(
        m.payload_types().collect::<Vec<_>>(),
        [96, 97, 98, 0, 8, 18, 101, 99, 100]
    );
    let opus = m.encoding(96).unwrap();
    assert_eq!(
        (opus.name, opus.clock_rate, opus.channels),
        ("opus", 48000, Some(2))
    );
    assert_eq!(m.fmtp(96), Some("useinbandfec=1"));
    assert_eq!(m.fmtp(18), Some("annexb=yes"));
    assert_eq!(m.telephone_event(8000), Some(100));
    assert_eq!(m.telephone_event(48000), Some(101));
    assert_eq!(m.attributes.len(), 2, "rtcp-fb kept verbatim");
    assert_eq!(m.attributes[0].value.as_deref(), Some("* trr-int 1000"));
}

#[test]
fn asterisk_offer_parses_ptime_maxptime_and_direction() {
    let d = parsed(ASTERISK);
    let m = &d.media[0];
    assert_eq!(m.ptime, Some(20));
    assert_eq!(m.maxptime, Some(150));
    assert_eq!(m.direction, Some(Direction::SendRecv));
    assert_eq!(m.telephone_event(8000), Some(101));
    assert_eq!(m.fmtp(101), Some("0-16"));
    assert_eq!(m.rtpmaps.len(), 6);
}

#[test]
fn baresip_media_level_connection_overrides_the_session() {
    let d = parsed(BARESIP);
    let m = &d.media[0];
    assert_eq!(d.connection, Some(ip("10.0.0.5")));
    assert_eq!(m.connection, Some(ip("10.0.0.6")));
    assert_eq!(m.rtp_addr_in(&d), Some(addr("10.0.0.6:10206")));
}

#[test]
fn ipv6_offer_parses_with_rfc3605_rtcp_address() {
    let d = parsed(IPV6);
    assert_eq!(d.origin.address_type, AddressType::Ip6);
    assert_eq!(d.connection, Some(ip("2001:db8::2")));
    let m = &d.media[0];
    assert_eq!(
        m.rtcp,
        Some(Rtcp {
            port: 49180,
            address: Some(ip("2001:db8::3"))
        })
    );
    assert_eq!(m.rtcp_addr_in(&d), Some(addr("[2001:db8::3]:49180")));
}

#[test]
fn rtcp_attribute_without_address_uses_the_stream_address() {
    let d =
        parsed("v=0\no=- 1 1 IN IP4 h\nc=IN IP4 192.0.2.1\nm=audio 5000 RTP/AVP 0\na=rtcp:5005\n");
    assert_eq!(d.media[0].rtcp_addr_in(&d), Some(addr("192.0.2.1:5005")));
}

#[test]
fn session_direction_is_the_default_and_media_overrides_it() {
    let d = parsed(
        "v=0\no=- 1 1 IN IP4 h\nc=IN IP4 192.0.2.1\nt=0 0\na=sendonly\n\
         m=audio 5000 RTP/AVP 0\nm=audio 5002 RTP/AVP 0\na=inactive\n",
    );
    assert_eq!(d.direction, Some(Direction::SendOnly));
    assert_eq!(d.media[0].direction_in(&d), Direction::SendOnly);
    assert_eq!(d.media[1].direction_in(&d), Direction::Inactive);
}

#[test]
fn tolerated_deviations() {
    // No s= or t=, unknown line types, trailing blanks, a multicast TTL, a port count,
    // a repeated identical direction, leading zeros, a Latin-1 session name.
    let mut body = b"v=0\r\no=- 01 02 IN IP4 host.example.com \r\n".to_vec();
    body.extend_from_slice(b"s=Caf\xe9\r\n");
    body.extend_from_slice(
        b"i=info\r\nb=AS:64\r\nz=0 0\r\nc=IN IP4 224.2.1.1/127\r\n\
          m=audio 49170/2 RTP/AVP 00 08\r\na=sendrecv\r\na=sendrecv\r\n\
          a=tool:x\xff\r\n\r\n",
    );
    let d = SessionDescription::parse(&body).unwrap();
    assert_eq!(d.origin.session_id, 1);
    assert_eq!(d.origin.address, "host.example.com");
    assert_eq!(d.session_name, "Caf\u{fffd}");
    assert_eq!(d.timing, Timing::default());
    assert_eq!(d.connection, Some(ip("224.2.1.1")));
    assert_eq!(d.media[0].port, 49170);
    assert_eq!(d.media[0].formats, ["0", "8"]);
    assert_eq!(d.media[0].direction, Some(Direction::SendRecv));
}

#[test]
fn disabled_stream_needs_no_connection() {
    let d = parsed("v=0\no=- 1 1 IN IP4 h\nt=0 0\nm=video 0 RTP/AVP 31\n");
    assert_eq!(d.media[0].port, 0);
    assert_eq!(d.media[0].address_in(&d), None);
}

#[test]
fn non_rtp_formats_are_kept_as_tokens() {
    let d = parsed(
        "v=0\no=- 1 1 IN IP4 h\nc=IN IP4 192.0.2.1\nm=image 6000 udptl t38\n\
         m=application 9 TCP/BFCP *\na=fmtp:x y\nm=audio 9 tcp/rtp/avp 0\n",
    );
    assert_eq!(d.media[0].kind, MediaKind::Image);
    assert_eq!(d.media[0].protocol, Protocol::Udptl);
    assert_eq!(d.media[0].formats, ["t38"]);
    assert_eq!(d.media[1].formats, ["*"]);
    assert_eq!(d.media[1].payload_types().count(), 0);
    assert_eq!(
        d.media[2].payload_types().collect::<Vec<_>>(),
        [0],
        "RFC 4571 framing is still RTP"
    );
    assert_eq!(
        d.media[1].attributes[0].name, "fmtp",
        "fmtp of a non-RTP stream is opaque"
    );
}

// ---------------------------------------------------------------------------------------
// Parse errors: every one names the line and the reason.

#[test]
fn parse_errors_name_line_and_reason() {
    use ParseReason::*;
    // Whole bodies.
    let cases: &[(&str, usize, ParseReason)] = &[
        ("", 0, Empty),
        ("\r\n \r\n", 0, Empty),
        ("o=- 1 1 IN IP4 h\r\n", 1, Version),
        ("v=1\r\n", 1, Version),
        ("v=0\r\ns=x\r\n", 0, MissingOrigin),
        ("v=0\r\nv=0\r\n", 2, Repeated),
        ("v=0\r\nhello\r\n", 2, LineSyntax),
        ("v=0\r\n=x\r\n", 2, LineSyntax),
        ("v=0\r\n1=x\r\n", 2, LineSyntax),
        ("v=0\r\no=- 1 1 IN IP4\r\n", 2, Origin),
        ("v=0\r\no=- x 1 IN IP4 h\r\n", 2, Origin),
        ("v=0\r\no=- +1 1 IN IP4 h\r\n", 2, Origin),
        ("v=0\r\no=- 1 1 IN IP5 h\r\n", 2, Origin),
        ("v=0\r\no=- 1 1 IN IP4 h extra\r\n", 2, Origin),
        ("v=0\r\no=- 99999999999999999999 1 IN IP4 h\r\n", 2, Origin),
        // Blank lines count: the line number is the one an editor shows.
        ("v=0\r\n\r\n\r\no=bad\r\n", 4, Origin),
    ];
    for &(text, line, reason) in cases {
        let e = parse_error(text);
        assert_eq!((e.line, e.reason), (line, reason), "{text:?}");
    }

    // One more line after a valid v= and o= (so the error is on line 3, or on the
    // line the case adds last).
    let session_cases: &[(&str, ParseReason)] = &[
        ("o=- 1 1 IN IP4 h", Repeated),
        ("s=a\r\ns=b", Repeated),
        ("t=0", Timing),
        ("t=now later", Timing),
        ("c=IN IP4 ::1", Connection),
        ("c=IN IP6 192.0.2.1", Connection),
        ("c=IN IP4 pbx.example.com", Connection),
        ("c=ATM NSAP 47", Connection),
        ("c=IN IP4 256.1.1.1", Connection),
        ("c=IN IP4", Connection),
        ("m=audio", Media),
        ("m=audio 70000 RTP/AVP 0", Media),
        ("m=audio -1 RTP/AVP 0", Media),
        ("m=audio 5/x RTP/AVP 0", Media),
        ("m=audio 5000 RTP/AVP 128", PayloadType),
        ("m=audio 5000 RTP/AVP PCMU", PayloadType),
        ("m=audio 5000 RTP/AVP 0", MissingConnection),
        ("a=sendonly\r\na=recvonly", ConflictingDirection),
    ];
    for &(tail, reason) in session_cases {
        let text = format!("v=0\r\no=- 1 1 IN IP4 h\r\n{tail}\r\n");
        let e = parse_error(&text);
        assert_eq!(
            (e.line, e.reason),
            (text.lines().count(), reason),
            "{tail:?}"
        );
    }

    // Media-level attributes, after a valid stream.
    let media_cases: &[(&str, ParseReason)] = &[
        ("a=rtpmap:0 PCMU", Rtpmap),
        ("a=rtpmap:0", Rtpmap),
        ("a=rtpmap:128 X/8000", Rtpmap),
        ("a=rtpmap:96 X/0", Rtpmap),
        ("a=rtpmap:96 X/8000/1/2", Rtpmap),
        ("a=rtpmap:96 X/8000/two", Rtpmap),
        ("a=rtpmap:96 /8000", Rtpmap),
        ("a=fmtp:abc 0-15", Fmtp),
        ("a=fmtp:300 0-15", Fmtp),
        ("a=ptime:0", Ptime),
        ("a=ptime:20ms", Ptime),
        ("a=maxptime:", Ptime),
        ("a=rtcp:x", Rtcp),
        ("a=rtcp:70000", Rtcp),
        ("a=rtcp:5001 IN IP4", Rtcp),
        ("a=rtcp:5001 IN IP4 host.example.com", Rtcp),
        ("a=rtcp:5001 IN IP4 192.0.2.1 extra", Rtcp),
        ("a=sendonly\r\na=inactive", ConflictingDirection),
        ("a=:x", LineSyntax),
        ("a=rtpmap:0 PCMU/8000\r\na=rtpmap:0 PCMA/8000", Rtpmap),
    ];
    for &(attr, reason) in media_cases {
        let text = format!(
            "v=0\r\no=- 1 1 IN IP4 h\r\nc=IN IP4 192.0.2.1\r\nm=audio 5000 RTP/AVP 0\r\n{attr}\r\n"
        );
        let e = parse_error(&text);
        let last_line = text.lines().count();
        assert_eq!((e.line, e.reason), (last_line, reason), "{attr:?}");
    }
}

#[test]
fn values_we_read_must_be_text() {
    let e = SessionDescription::parse(b"v=0\r\no=- 1 1 IN IP4 h\r\nc=IN IP4 \xff\r\n").unwrap_err();
    assert_eq!((e.line, e.reason), (3, ParseReason::NotText));
}

#[test]
fn repeated_identical_rtpmap_is_harmless() {
    let d = parsed(
        "v=0\no=- 1 1 IN IP4 h\nc=IN IP4 192.0.2.1\nm=audio 5000 RTP/AVP 0\n\
         a=rtpmap:0 PCMU/8000\na=rtpmap:0 PCMU/8000\n",
    );
    assert_eq!(d.media[0].rtpmaps.len(), 1);
}

#[test]
fn limits_are_enforced_before_work() {
    let head = "v=0\r\no=- 1 1 IN IP4 h\r\nc=IN IP4 192.0.2.1\r\n";

    let too_large = format!("{head}{}", "a=x\r\n".repeat(MAX_SDP_BYTES / 5));
    let e = parse_error(&too_large);
    assert_eq!((e.line, e.reason), (0, ParseReason::TooLarge));

    let many_lines = format!("{head}{}", "a=x\r\n".repeat(MAX_SDP_LINES));
    let e = parse_error(&many_lines);
    assert_eq!(
        (e.line, e.reason),
        (MAX_SDP_LINES + 1, ParseReason::TooManyLines)
    );

    let long_line = format!("{head}a={}\r\n", "x".repeat(MAX_SDP_LINE_BYTES));
    let e = parse_error(&long_line);
    assert_eq!((e.line, e.reason), (4, ParseReason::LineTooLong));

    let many_media = format!(
        "{head}{}",
        "m=audio 0 RTP/AVP 0\r\n".repeat(MAX_SDP_MEDIA + 1)
    );
    let e = parse_error(&many_media);
    assert_eq!(
        (e.line, e.reason),
        (4 + MAX_SDP_MEDIA, ParseReason::TooManyMedia)
    );

    // Exactly at the caps is fine.
    let at_cap = format!("{head}{}", "a=x\r\n".repeat(MAX_SDP_LINES - 3));
    assert!(SessionDescription::parse(at_cap.as_bytes()).is_ok());
}

#[test]
fn errors_have_stable_classes_and_map_to_488() {
    let e = parse_error("v=0\r\no=bad\r\n");
    assert_eq!(e.to_string(), "SDP line 2: malformed o= line");
    assert_eq!(e.class(), "origin");
    let e = SdpError::from(e);
    assert_eq!((e.class(), e.sip_status()), ("sdp_malformed", 488));
    let big = SdpError::from(ParseError {
        line: 0,
        reason: ParseReason::TooLarge,
    });
    assert_eq!(big.class(), "sdp_too_large");
    assert_eq!(SdpError::NotAcceptable.class(), "sdp_not_acceptable");
    assert_eq!(SdpError::NotAcceptable.sip_status(), 488);
    assert_eq!(SdpError::AnswerRejected.class(), "sdp_answer_rejected");
}

// ---------------------------------------------------------------------------------------
// Writing.

#[test]
fn written_descriptions_use_crlf_and_rfc8866_order() {
    // baresip's offer printed back: CRLF, session lines in RFC 8866 §5 order, typed
    // attributes first, then the rest in their order; b= (not kept) is gone.
    assert_eq!(
        parsed(BARESIP).to_string(),
        "v=0\r\n\
         o=- 1193478457 2009447829 IN IP4 10.0.0.5\r\n\
         s=-\r\n\
         c=IN IP4 10.0.0.5\r\n\
         t=0 0\r\n\
         m=audio 10206 RTP/AVP 96 9 0 8 101\r\n\
         c=IN IP4 10.0.0.6\r\n\
         a=rtpmap:96 opus/48000/2\r\n\
         a=rtpmap:9 G722/8000\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:96 stereo=1;sprop-stereo=1\r\n\
         a=fmtp:101 0-15\r\n\
         a=ptime:20\r\n\
         a=sendrecv\r\n\
         a=rtcp-rsize\r\n\
         a=label:1\r\n"
    );
    // Session-level attributes sit between t= and the first m=.
    let linphone = parsed(LINPHONE).to_string();
    assert!(linphone.contains("t=0 0\r\na=rtcp-xr:rcvr-rtt=all:10000 stat-summary"));
}

#[test]
fn real_world_bodies_survive_parse_print_parse() {
    for text in [
        SIPP_UAC,
        LINPHONE,
        BARESIP,
        ASTERISK,
        ASTERISK_HOLD,
        IPV6,
        VIDEO_AND_AUDIO,
    ] {
        let first = parsed(text);
        let again = SessionDescription::parse(&first.to_bytes()).unwrap();
        assert_eq!(again, first, "{text}");
    }
}

// ---------------------------------------------------------------------------------------
// Answering offers (RFC 3264 §6).

#[test]
fn answer_to_sipp_is_exact() {
    let a = answer(SIPP_UAC).unwrap();
    assert_eq!(
        a.description.to_string(),
        "v=0\r\n\
         o=switchboard 42 1 IN IP4 192.0.2.10\r\n\
         s=switchboard\r\n\
         c=IN IP4 192.0.2.10\r\n\
         t=0 0\r\n\
         m=audio 30000 RTP/AVP 0\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtcp:30001\r\n\
         a=sendrecv\r\n"
    );
    let s = only_stream(&a);
    assert_eq!(s.index, 0);
    assert_eq!(s.local_rtp_port, 30000);
    assert_eq!(s.remote_rtp, addr("127.0.0.1:6000"));
    assert_eq!(s.remote_rtcp, addr("127.0.0.1:6001"));
    assert_eq!((s.codec(), s.payload_type()), (Codec::Pcmu, 0));
    assert_eq!(s.telephone_event(), None);
    assert_eq!(s.direction, Direction::SendRecv);
    assert_eq!(s.ptime, None);
}

#[test]
fn answer_to_linphone_keeps_offerer_order_and_the_8khz_telephone_event() {
    let a = answer(LINPHONE).unwrap();
    assert_eq!(
        answer_section(&a, 0),
        "m=audio 30000 RTP/AVP 0 8 100\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:100 telephone-event/8000\r\n\
         a=rtcp:30001\r\n\
         a=sendrecv\r\n"
    );
    let s = only_stream(&a);
    assert_eq!((s.codec(), s.payload_type()), (Codec::Pcmu, 0));
    assert_eq!(s.telephone_event(), Some(100));
    assert_eq!(s.payloads.receive().pcma, Some(8));
}

#[test]
fn answer_to_baresip_echoes_fmtp_and_ptime_and_uses_media_address() {
    let a = answer(BARESIP).unwrap();
    assert_eq!(
        answer_section(&a, 0),
        "m=audio 30000 RTP/AVP 0 8 101\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-15\r\n\
         a=ptime:20\r\n\
         a=rtcp:30001\r\n\
         a=sendrecv\r\n"
    );
    let s = only_stream(&a);
    assert_eq!(s.remote_rtp, addr("10.0.0.6:10206"));
    assert_eq!(s.ptime, Some(20));
}

#[test]
fn answer_to_asterisk_prefers_its_pcma_and_keeps_event_101() {
    let a = answer(ASTERISK).unwrap();
    assert_eq!(
        answer_section(&a, 0),
        "m=audio 30000 RTP/AVP 8 0 101\r\n\
         a=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\n\
         a=ptime:20\r\n\
         a=rtcp:30001\r\n\
         a=sendrecv\r\n"
    );
    let s = only_stream(&a);
    assert_eq!((s.codec(), s.payload_type()), (Codec::Pcma, 8));
    assert_eq!(s.telephone_event(), Some(101));
    assert_eq!(s.remote_rtp, addr("203.0.113.5:17890"));
    assert_eq!(s.remote_rtcp, addr("203.0.113.5:17891"));
}

#[test]
fn answer_keeps_the_offers_timing() {
    let offer = SIPP_UAC.replace("t=0 0", "t=3034423619 3042462419");
    let a = answer(&offer).unwrap();
    assert_eq!(
        a.description.timing,
        Timing {
            start: 3034423619,
            stop: 3042462419
        }
    );
}

#[test]
fn dynamic_payload_type_for_pcmu_is_echoed() {
    let a = answer(
        "v=0\no=- 1 1 IN IP4 h\nc=IN IP4 192.0.2.1\nt=0 0\n\
         m=audio 5000 RTP/AVP 96\na=rtpmap:96 pcmu/8000\n",
    )
    .unwrap();
    assert!(answer_section(&a, 0).starts_with("m=audio 30000 RTP/AVP 96\r\na=rtpmap:96 PCMU/8000"));
    assert_eq!(only_stream(&a).payload_type(), 96);
}

#[test]
fn rfc2543_hold_with_sendonly_is_answered_recvonly_and_we_send_nothing() {
    let mut session = local();
    let first = session.answer(&parsed(ASTERISK), &[30000]).unwrap();
    let hold = session.answer(&parsed(ASTERISK_HOLD), &[30000]).unwrap();
    let s = only_stream(&hold);
    assert_eq!(s.direction, Direction::RecvOnly);
    assert!(!s.direction.sends());
    assert_eq!(s.remote_rtp, addr("0.0.0.0:17890"));
    assert!(answer_section(&hold, 0).ends_with("a=recvonly\r\n"));
    // The answer changed, so its version moved on; the session id did not.
    assert_eq!(first.description.origin.session_version, 1);
    assert_eq!(hold.description.origin.session_version, 2);
    assert_eq!(hold.description.origin.session_id, 42);
}

#[test]
fn rfc2543_hold_without_direction_still_means_send_nothing() {
    let offer = SIPP_UAC.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0");
    let s = answer(&offer).unwrap().media[0].clone();
    assert_eq!(s.direction, Direction::RecvOnly);
}

#[test]
fn directions_are_answered_per_rfc3264_section_6_1() {
    for (offered, answered) in [
        ("sendrecv", Direction::SendRecv),
        ("sendonly", Direction::RecvOnly),
        ("recvonly", Direction::SendOnly),
        ("inactive", Direction::Inactive),
    ] {
        let media_level = format!("{SIPP_UAC}a={offered}\n");
        let a = answer(&media_level).unwrap();
        assert_eq!(only_stream(&a).direction, answered, "{offered}");
        assert!(answer_section(&a, 0).ends_with(&format!("a={}\r\n", answered.as_str())));

        let session_level = SIPP_UAC.replace("t=0 0\n", &format!("t=0 0\na={offered}\n"));
        let a = answer(&session_level).unwrap();
        assert_eq!(
            only_stream(&a).direction,
            answered,
            "session-level {offered}"
        );
    }
}

#[test]
fn ipv6_offer_is_answered_with_its_addresses() {
    let a = answer(IPV6).unwrap();
    let s = only_stream(&a);
    assert_eq!(s.remote_rtp, addr("[2001:db8::2]:49172"));
    assert_eq!(s.remote_rtcp, addr("[2001:db8::3]:49180"));
    assert_eq!((s.codec(), s.payload_type()), (Codec::Pcma, 8));
    assert_eq!(s.telephone_event(), Some(101));

    let mut v6 = LocalSession::new(7, ip("2001:db8::10"));
    let a = v6.answer(&parsed(IPV6), &[40000]).unwrap();
    let text = a.description.to_string();
    assert!(text.contains("o=switchboard 7 1 IN IP6 2001:db8::10\r\n"));
    assert!(text.contains("c=IN IP6 2001:db8::10\r\n"));
}

#[test]
fn video_is_declined_with_port_zero_and_audio_accepted() {
    let a = answer(VIDEO_AND_AUDIO).unwrap();
    assert_eq!(a.description.media.len(), 2);
    assert_eq!(
        answer_section(&a, 0),
        "m=audio 30000 RTP/AVP 0 8 101\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-15\r\n\
         a=rtcp:30001\r\n\
         a=sendrecv\r\n"
    );
    assert_eq!(answer_section(&a, 1), "m=video 0 RTP/AVP 31 32 96\r\n");

    // Video first: the order of m-lines is the offer's, and the stream knows its index.
    let video_first = parsed(
        "v=0\no=- 1 1 IN IP4 h\nc=IN IP4 192.0.2.1\nt=0 0\n\
         m=video 5002 RTP/AVP 96\na=rtpmap:96 VP8/90000\nm=audio 5000 RTP/AVP 8\n",
    );
    let a = local().answer(&video_first, &[30000]).unwrap();
    assert_eq!(a.description.media[0].port, 0);
    assert_eq!(a.description.media[0].kind, MediaKind::Video);
    assert_eq!(only_stream(&a).index, 1);
}

#[test]
fn srtp_stream_is_declined_and_its_rtp_avp_twin_accepted() {
    // Best-effort SRTP as some phones offer it: the same audio twice, SAVP first.
    let a = answer(
        "v=0\no=- 1 1 IN IP4 h\nc=IN IP4 192.0.2.1\nt=0 0\n\
         m=audio 5000 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\n\
         m=audio 5002 RTP/AVP 0\n",
    )
    .unwrap();
    assert_eq!(answer_section(&a, 0), "m=audio 0 RTP/SAVP 0\r\n");
    assert_eq!(only_stream(&a).index, 1);
    assert_eq!(only_stream(&a).remote_rtp, addr("192.0.2.1:5002"));
}

#[test]
fn extra_audio_streams_beyond_our_ports_are_declined() {
    let two = "v=0\no=- 1 1 IN IP4 h\nc=IN IP4 192.0.2.1\nt=0 0\n\
               m=audio 5000 RTP/AVP 0\nm=audio 5002 RTP/AVP 8\n";
    let a = local().answer(&parsed(two), &[30000]).unwrap();
    assert_eq!(a.description.media[1].port, 0);
    assert_eq!(a.media.len(), 1);

    let a = local().answer(&parsed(two), &[30000, 30002]).unwrap();
    let ports: Vec<_> = a
        .media
        .iter()
        .map(|m| (m.index, m.local_rtp_port))
        .collect();
    assert_eq!(ports, [(0, 30000), (1, 30002)]);
}

#[test]
fn offers_we_cannot_take_are_488() {
    const HEAD: &str = "v=0\no=- 1 1 IN IP4 h\nc=IN IP4 192.0.2.1\nt=0 0\n";
    let cases = [
        (
            "video only",
            "m=video 5000 RTP/AVP 96\na=rtpmap:96 H264/90000\n",
        ),
        ("G.729 only", "m=audio 5000 RTP/AVP 18\n"),
        (
            "Opus only",
            "m=audio 5000 RTP/AVP 111\na=rtpmap:111 opus/48000/2\n",
        ),
        ("unmapped dynamic type", "m=audio 5000 RTP/AVP 96\n"),
        (
            "SDES-SRTP only",
            "m=audio 5000 RTP/SAVP 0 8\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\n",
        ),
        (
            "WebRTC DTLS-SRTP",
            "m=audio 9 UDP/TLS/RTP/SAVPF 111 0\na=rtpmap:111 opus/48000/2\n",
        ),
        ("RTCP feedback profile", "m=audio 5000 RTP/AVPF 0\n"),
        ("audio disabled", "m=audio 0 RTP/AVP 0 8\n"),
        (
            "events only",
            "m=audio 5000 RTP/AVP 101\na=rtpmap:101 telephone-event/8000\n",
        ),
        (
            "wideband PCMU",
            "m=audio 5000 RTP/AVP 96\na=rtpmap:96 PCMU/16000\n",
        ),
        (
            "stereo PCMA",
            "m=audio 5000 RTP/AVP 96\na=rtpmap:96 PCMA/8000/2\n",
        ),
        ("T.38 fax only", "m=image 5000 udptl t38\n"),
        ("no media at all", ""),
    ];
    for (what, media) in cases {
        let err = answer(&format!("{HEAD}{media}")).expect_err(what);
        assert_eq!(err, SdpError::NotAcceptable, "{what}");
        assert_eq!((err.sip_status(), err.class()), (488, "sdp_not_acceptable"));
    }

    // A fine offer but no port to receive on is no better.
    let err = local().answer(&parsed(SIPP_UAC), &[]).unwrap_err();
    assert_eq!(err, SdpError::NotAcceptable);

    // And a body that does not parse is a 488 too.
    let err: SdpError = SessionDescription::parse(b"v=0\r\nm=audio x\r\n")
        .unwrap_err()
        .into();
    assert_eq!((err.sip_status(), err.class()), (488, "sdp_malformed"));
}

#[test]
fn failed_answer_does_not_move_the_version() {
    let mut session = local();
    assert!(
        session
            .answer(&parsed("v=0\no=- 1 1 IN IP4 h\nt=0 0\n"), &[30000])
            .is_err()
    );
    assert_eq!(session.version(), 0);
    let a = session.answer(&parsed(SIPP_UAC), &[30000]).unwrap();
    assert_eq!(a.description.origin.session_version, 1);
}

// ---------------------------------------------------------------------------------------
// Our offers and their answers.

#[test]
fn our_offer_is_exact() {
    let offer = local().offer(30000, Direction::SendRecv);
    assert_eq!(
        offer.to_string(),
        "v=0\r\n\
         o=switchboard 42 1 IN IP4 192.0.2.10\r\n\
         s=switchboard\r\n\
         c=IN IP4 192.0.2.10\r\n\
         t=0 0\r\n\
         m=audio 30000 RTP/AVP 0 8 101\r\n\
         a=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:8 PCMA/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\n\
         a=ptime:20\r\n\
         a=rtcp:30001\r\n\
         a=sendrecv\r\n"
    );
    assert_eq!(SessionDescription::parse(&offer.to_bytes()).unwrap(), offer);
}

#[test]
fn re_offers_move_the_version_only_when_something_changed() {
    let mut session = local();
    let v = |d: &SessionDescription| d.origin.session_version;
    let first = session.offer(30000, Direction::SendRecv);
    let refresh = session.offer(30000, Direction::SendRecv);
    let hold = session.offer(30000, Direction::SendOnly);
    let resume = session.offer(30000, Direction::SendRecv);
    assert_eq!([v(&first), v(&refresh), v(&hold), v(&resume)], [1, 1, 2, 3]);
    assert_eq!(
        refresh, first,
        "an unchanged description is byte for byte the same"
    );
    assert!(first.origin.is_same_version(&refresh.origin));
    assert!(!first.origin.is_same_version(&hold.origin));
    assert!(hold.to_string().contains("a=sendonly\r\n"));
    assert_eq!(session.version(), 3);
}

#[test]
fn session_id_stays_below_2_pow_63() {
    let session = LocalSession::new(u64::MAX, ip(OUR_IP));
    assert_eq!(session.session_id(), i64::MAX as u64);
}

/// The callee's answer to our offer, given its audio m-line section.
fn read(answer_media: &str) -> Result<Vec<NegotiatedMedia>, SdpError> {
    read_with(Direction::SendRecv, answer_media)
}

fn read_with(ours: Direction, answer_media: &str) -> Result<Vec<NegotiatedMedia>, SdpError> {
    let offer = local().offer(30000, ours);
    let answer = parsed(&format!(
        "v=0\no=callee 9 9 IN IP4 198.51.100.20\ns=-\nc=IN IP4 198.51.100.20\nt=0 0\n{answer_media}"
    ));
    read_answer(&offer, &answer)
}

#[test]
fn answer_choosing_pcma_with_events() {
    let s = read(
        "m=audio 8000 RTP/AVP 8 101\na=rtpmap:101 telephone-event/8000\na=fmtp:101 0-15\na=ptime:30\n",
    )
    .unwrap();
    let s = &s[0];
    assert_eq!((s.codec(), s.payload_type()), (Codec::Pcma, 8));
    assert_eq!(s.telephone_event(), Some(101));
    assert_eq!(s.remote_rtp, addr("198.51.100.20:8000"));
    assert_eq!(s.remote_rtcp, addr("198.51.100.20:8001"));
    assert_eq!(s.local_rtp_port, 30000);
    assert_eq!(s.direction, Direction::SendRecv);
    assert_eq!(s.ptime, Some(30));
    assert_eq!(s.payloads.receive().pcmu, None, "only what the answer kept");
}

#[test]
fn answer_order_decides_the_codec() {
    let s = read("m=audio 8000 RTP/AVP 8 0\n").unwrap();
    assert_eq!(s[0].codec(), Codec::Pcma);
    assert_eq!(s[0].payloads.send().pcmu, Some(0));
}

#[test]
fn answer_with_its_own_event_number_is_sent_with_it_and_received_with_ours() {
    // RFC 3264 §6.1 asks the answerer to keep our numbers, but each side receives with the
    // numbers it declared, so a different one is still workable.
    let s = read("m=audio 8000 RTP/AVP 0 96\na=rtpmap:96 telephone-event/8000\n").unwrap();
    let p = s[0].payloads;
    assert_eq!(p.telephone_event(), Some(96));
    assert_eq!(p.receive().telephone_event, Some(101));
    assert_eq!(p.classify(101), Some(Payload::TelephoneEvent));
    assert_eq!(p.classify(96), None);
}

#[test]
fn answer_formats_we_did_not_offer_are_ignored() {
    let s = read("m=audio 8000 RTP/AVP 18 0 13\n").unwrap();
    assert_eq!(s[0].codec(), Codec::Pcmu);
}

#[test]
fn answer_with_rfc3605_rtcp() {
    let s = read("m=audio 8000 RTP/AVP 0\na=rtcp:9000 IN IP4 198.51.100.21\n").unwrap();
    assert_eq!(s[0].remote_rtcp, addr("198.51.100.21:9000"));
}

#[test]
fn answer_direction_limits_ours() {
    let cases = [
        (Direction::SendRecv, "", Direction::SendRecv),
        (Direction::SendRecv, "a=recvonly\n", Direction::SendOnly),
        (Direction::SendRecv, "a=sendonly\n", Direction::RecvOnly),
        (Direction::SendRecv, "a=inactive\n", Direction::Inactive),
        (Direction::SendOnly, "a=recvonly\n", Direction::SendOnly),
        (Direction::SendOnly, "a=inactive\n", Direction::Inactive),
        (Direction::Inactive, "a=inactive\n", Direction::Inactive),
        // The callee holds us the RFC 2543 way in its answer: we must not send.
        (
            Direction::SendRecv,
            "c=IN IP4 0.0.0.0\n",
            Direction::RecvOnly,
        ),
    ];
    for (ours, attr, expected) in cases {
        let s = read_with(ours, &format!("m=audio 8000 RTP/AVP 0\n{attr}")).unwrap();
        assert_eq!(s[0].direction, expected, "{ours:?} answered with {attr:?}");
    }
}

#[test]
fn answers_that_do_not_match_the_offer_are_refused() {
    let cases: [(&str, SdpError, &str); 6] = [
        (
            "m=audio 8000 RTP/AVP 0\nm=video 0 RTP/AVP 96\n",
            SdpError::AnswerMediaCount {
                offered: 1,
                answered: 2,
            },
            "sdp_answer_mismatch",
        ),
        (
            "",
            SdpError::AnswerMediaCount {
                offered: 1,
                answered: 0,
            },
            "sdp_answer_mismatch",
        ),
        (
            "m=video 8000 RTP/AVP 96\na=rtpmap:96 H264/90000\n",
            SdpError::AnswerMediaMismatch { index: 0 },
            "sdp_answer_mismatch",
        ),
        (
            "m=audio 8000 RTP/SAVP 0\n",
            SdpError::AnswerMediaMismatch { index: 0 },
            "sdp_answer_mismatch",
        ),
        (
            "m=audio 8000 RTP/AVP 18 101\na=rtpmap:101 telephone-event/8000\n",
            SdpError::AnswerCodecNotOffered {
                index: 0,
                payload_type: Some(18),
            },
            "sdp_answer_codec",
        ),
        (
            "m=audio 0 RTP/AVP 0\n",
            SdpError::AnswerRejected,
            "sdp_answer_rejected",
        ),
    ];
    for (media, expected, class) in cases {
        let err = read(media).unwrap_err();
        assert_eq!(err, expected, "{media:?}");
        assert_eq!((err.class(), err.sip_status()), (class, 488));
    }
}

#[test]
fn two_switchboards_negotiate_with_each_other() {
    // Our offer, parsed by another instance of us, answered, and the answer read back.
    let mut caller = local();
    let mut callee = LocalSession::new(99, ip("192.0.2.20"));
    let offer = caller.offer(30000, Direction::SendRecv);
    let answer = callee
        .answer(
            &SessionDescription::parse(&offer.to_bytes()).unwrap(),
            &[40000],
        )
        .unwrap();
    let theirs = &answer.media[0];
    assert_eq!(theirs.remote_rtp, addr("192.0.2.10:30000"));
    assert_eq!(theirs.ptime, Some(20));
    let ours = read_answer(
        &offer,
        &SessionDescription::parse(&answer.description.to_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(ours[0].remote_rtp, addr("192.0.2.20:40000"));
    assert_eq!(ours[0].remote_rtcp, addr("192.0.2.20:40001"));
    assert_eq!(
        (ours[0].codec(), ours[0].telephone_event()),
        (Codec::Pcmu, Some(101))
    );
    assert_eq!(ours[0].payloads, theirs.payloads);
}

// ---------------------------------------------------------------------------------------
// Mapping payload types between legs.

#[test]
fn relay_maps_payload_types_and_transcodes_between_legs() {
    // Leg A: Asterisk offered PCMA first; we answered with its numbers (8, 0, 101).
    let a = answer(ASTERISK).unwrap().media[0].payloads;
    // Leg B: we offered, the callee answered PCMU only, events on 96.
    let b =
        read("m=audio 8000 RTP/AVP 0 96\na=rtpmap:96 telephone-event/8000\n").unwrap()[0].payloads;

    // PCMA from A: B has no PCMA, so it is transcoded to B's PCMU.
    assert_eq!(
        a.forward(8, &b),
        Some(Forward {
            payload_type: 0,
            transcode: Some(Transcode {
                from: Codec::Pcma,
                to: Codec::Pcmu
            }),
        })
    );
    // PCMU from A passes through untouched.
    assert_eq!(
        a.forward(0, &b),
        Some(Forward {
            payload_type: 0,
            transcode: None
        })
    );
    // Events: 101 on A becomes 96 on B; B sends us 101 (our offer's number), A gets 101.
    assert_eq!(a.forward(101, &b).map(|f| f.payload_type), Some(96));
    assert_eq!(b.forward(101, &a).map(|f| f.payload_type), Some(101));
    // PCMU from B to A: A negotiated PCMU too, so no transcoding even though A prefers PCMA.
    assert_eq!(b.forward(0, &a).and_then(|f| f.transcode), None);
    // Comfort noise, unknown types, and 96 (B's send number, not its receive number): dropped.
    assert_eq!(a.forward(13, &b), None);
    assert_eq!(b.forward(96, &a), None);
}

#[test]
fn events_to_a_leg_without_telephone_event_are_dropped() {
    let with = answer(ASTERISK).unwrap().media[0].payloads;
    let without = answer(SIPP_UAC).unwrap().media[0].payloads;
    assert_eq!(with.forward(101, &without), None);
    assert_eq!(without.classify(101), None);
}

#[test]
fn payload_map_requires_its_codec_in_the_send_table() {
    let pcmu_only = PayloadTypes {
        pcmu: Some(0),
        ..PayloadTypes::default()
    };
    assert!(PayloadMap::new(Codec::Pcma, pcmu_only, pcmu_only).is_none());
    let map = PayloadMap::new(Codec::Pcmu, pcmu_only, pcmu_only).unwrap();
    assert_eq!((map.codec(), map.payload_type()), (Codec::Pcmu, 0));
}

#[test]
fn direction_algebra() {
    use Direction::*;
    for d in [SendRecv, SendOnly, RecvOnly, Inactive] {
        assert_eq!(d.reversed().reversed(), d);
        assert_eq!(Direction::from_flags(d.sends(), d.receives()), d);
        assert_eq!(Direction::from_attribute(d.as_str()), Some(d));
        assert_eq!(d.and(SendRecv), d);
        assert_eq!(d.and(Inactive), Inactive);
    }
    assert_eq!(SendOnly.reversed(), RecvOnly);
    assert_eq!(Inactive.reversed(), Inactive);
    assert_eq!(SendOnly.and(RecvOnly), Inactive);
    assert_eq!(Direction::from_attribute("ptime"), None);
}

// ---------------------------------------------------------------------------------------
// Properties: junk never panics; what parses prints stably; answers keep RFC 3264 shape.

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Line types and attribute names that exercise every branch of the parser.
    fn sdp_like_line() -> impl Strategy<Value = String> {
        let attr = prop::sample::select(vec![
            "rtpmap:",
            "fmtp:",
            "ptime:",
            "maxptime:",
            "rtcp:",
            "sendonly",
            "recvonly",
            "inactive",
            "sendrecv",
            "x:",
            "",
        ]);
        prop_oneof![
            ("[voscmtbiz]", "[ -~]{0,40}").prop_map(|(t, v)| format!("{t}={v}")),
            (attr, "[ 0-9A-Za-z/.:-]{0,30}").prop_map(|(a, v)| format!("a={a}{v}")),
            "c=IN IP[46] [0-9a-f.:/]{0,20}",
            "m=(audio|video|image) [0-9/]{1,6} (RTP/AVP|RTP/SAVP|udptl|x) [0-9a-z ]{0,20}",
            "o=[a-z-]{1,4} [0-9]{1,3} [0-9]{1,3} IN IP[46] [0-9a-z.:]{1,10}",
        ]
    }

    fn sdp_like() -> impl Strategy<Value = Vec<u8>> {
        (
            prop::collection::vec(sdp_like_line(), 0..24),
            prop::bool::ANY,
        )
            .prop_map(|(lines, crlf)| {
                let end = if crlf { "\r\n" } else { "\n" };
                let mut text = format!("v=0{end}o=- 1 1 IN IP4 h{end}c=IN IP4 192.0.2.1{end}");
                for l in lines {
                    text.push_str(&l);
                    text.push_str(end);
                }
                text.into_bytes()
            })
    }

    /// An offer built from pieces offer/answer branches on.
    fn offer_like() -> impl Strategy<Value = String> {
        let stream = (
            prop::sample::select(vec!["audio", "video"]),
            prop::sample::select(vec![0u16, 5000, 6000]),
            prop::sample::select(vec!["RTP/AVP", "RTP/SAVP"]),
            prop::sample::subsequence(vec![0u8, 8, 18, 96, 100, 101], 1..=6).prop_shuffle(),
            prop::sample::select(vec!["", "a=sendonly\n", "a=recvonly\n", "a=inactive\n"]),
            prop::option::of("0-1[56]"),
        )
            .prop_map(|(kind, port, proto, pts, dir, events)| {
                let fmts: Vec<String> = pts.iter().map(u8::to_string).collect();
                let mut m = format!("m={kind} {port} {proto} {}\n", fmts.join(" "));
                m.push_str("a=rtpmap:96 opus/48000/2\na=rtpmap:100 telephone-event/48000\n");
                m.push_str("a=rtpmap:101 telephone-event/8000\n");
                if let Some(e) = events {
                    m.push_str(&format!("a=fmtp:101 {e}\n"));
                }
                m.push_str(dir);
                m
            });
        (
            prop::collection::vec(stream, 0..4),
            prop::sample::select(vec!["192.0.2.1", "0.0.0.0"]),
        )
            .prop_map(|(streams, c)| {
                format!(
                    "v=0\no=- 1 1 IN IP4 h\ns=-\nc=IN IP4 {c}\nt=0 0\n{}",
                    streams.concat()
                )
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            let _ = SessionDescription::parse(&bytes);
        }

        #[test]
        fn sdp_like_text_never_panics_and_prints_stably(body in sdp_like()) {
            if let Ok(d) = SessionDescription::parse(&body) {
                let once = d.to_string();
                let reparsed = SessionDescription::parse(once.as_bytes());
                prop_assert!(reparsed.is_ok(), "{once:?}: {reparsed:?}");
                prop_assert_eq!(reparsed.unwrap().to_string(), once);
                let _ = local().answer(&d, &[30000]);
            }
        }

        #[test]
        fn mutated_real_offers_never_panic(
            at in 0..ASTERISK.len(),
            cut in 0usize..16,
            junk in prop::collection::vec(any::<u8>(), 0..16),
        ) {
            let mut body = crlf(ASTERISK);
            let end = (at + cut).min(body.len());
            body.splice(at..end, junk);
            if let Ok(d) = SessionDescription::parse(&body) {
                let _ = local().answer(&d, &[30000]);
                let _ = read_answer(&local().offer(30000, Direction::SendRecv), &d);
            }
        }

        #[test]
        fn answers_keep_the_offers_shape(offer in offer_like()) {
            let offer = parsed(&offer);
            match local().answer(&offer, &[30000]) {
                Ok(a) => {
                    let answer = SessionDescription::parse(&a.description.to_bytes()).unwrap();
                    prop_assert_eq!(answer.media.len(), offer.media.len());
                    prop_assert_eq!(a.media.len(), 1);
                    for (o, m) in offer.media.iter().zip(&answer.media) {
                        prop_assert_eq!(&o.kind, &m.kind);
                        prop_assert_eq!(&o.protocol, &m.protocol);
                        // Formats are a subsequence of the offer's, in its order.
                        let mut offered = o.formats.iter();
                        prop_assert!(m.formats.iter().all(|f| offered.any(|g| g == f)));
                    }
                    let s = &a.media[0];
                    prop_assert_eq!(answer.media[s.index].port, 30000);
                    let o = &offer.media[s.index];
                    prop_assert!(o.port != 0 && o.kind == MediaKind::Audio);
                    if offer.connection.is_some_and(|c| c.is_unspecified()) {
                        prop_assert!(!s.direction.sends());
                    }
                }
                Err(e) => {
                    prop_assert_eq!(e, SdpError::NotAcceptable);
                    prop_assert!(offer.media.iter().all(|m| m.port == 0
                        || m.kind != MediaKind::Audio
                        || m.protocol != Protocol::RtpAvp
                        || !m.formats.iter().any(|f| f == "0" || f == "8")));
                }
            }
        }
    }
}
