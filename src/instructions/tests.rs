use super::*;

fn ok(xml: &str) -> Document {
    parse(xml.as_bytes(), &Limits::default()).unwrap_or_else(|e| panic!("{xml}: {e}"))
}

fn err(xml: &str) -> InstructionError {
    parse(xml.as_bytes(), &Limits::default()).expect_err(xml)
}

fn one(xml: &str) -> Verb {
    let doc = ok(xml);
    assert!(doc.warnings.is_empty(), "{:?}", doc.warnings);
    assert_eq!(doc.verbs.len(), 1);
    doc.verbs.into_iter().next().unwrap()
}

#[test]
fn say_play_pause_defaults() {
    let doc = ok(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response>\n  <Say>  Hello  </Say>\n  <Play>https://x/a.wav</Play>\n  <Pause/>\n</Response>",
    );
    assert!(doc.warnings.is_empty());
    assert_eq!(
        doc.verbs,
        vec![
            Verb::Say {
                text: "Hello".into(),
                voice: None,
                language: None,
                loop_count: 1,
                speech: vec![SpeechPart::Text {
                    text: "Hello".into(),
                    rate: None
                }],
            },
            Verb::Play {
                url: "https://x/a.wav".into(),
                loop_count: 1,
                digits: None
            },
            Verb::Pause { length: 1 },
        ]
    );
    assert_eq!(
        one(r#"<Response><Say voice="alice" language="fr-FR" loop="0">Salut</Say></Response>"#),
        Verb::Say {
            text: "Salut".into(),
            voice: Some("alice".into()),
            language: Some("fr-FR".into()),
            loop_count: 0,
            speech: vec![SpeechPart::Text {
                text: "Salut".into(),
                rate: None
            }],
        }
    );
    assert_eq!(
        one(r#"<Response><Play digits="ww12"/></Response>"#),
        Verb::Play {
            url: String::new(),
            loop_count: 1,
            digits: Some("ww12".into())
        }
    );
    assert_eq!(
        one(r#"<Response><Pause length="3"/></Response>"#),
        Verb::Pause { length: 3 }
    );
}

#[test]
fn gather_defaults_and_nesting() {
    let Verb::Gather(g) = one("<Response><Gather/></Response>") else {
        panic!()
    };
    assert_eq!(g.input, vec![GatherInput::Dtmf]);
    assert_eq!(g.action, None);
    assert_eq!(g.method, Method::Post);
    assert_eq!(g.timeout, 5);
    assert_eq!(g.finish_on_key, "#");
    assert_eq!(g.num_digits, None);
    assert_eq!(g.speech_timeout, None);
    assert!(!g.action_on_empty_result);
    assert_eq!(g.language, "en-US");
    assert!(g.nested.is_empty());

    let doc = ok(r#"<Response>
  <Gather input="dtmf speech" action="/next" method="GET" numDigits="4" timeout="7" finishOnKey="" speechTimeout="auto" hints="a,b">
    <Say>Enter PIN</Say>
    <Pause length="2"/>
    <Play>beep.wav</Play>
    <Dial>123</Dial>
  </Gather>
</Response>"#);
    let Verb::Gather(g) = &doc.verbs[0] else {
        panic!()
    };
    assert_eq!(g.input, vec![GatherInput::Dtmf, GatherInput::Speech]);
    assert_eq!(g.action.as_deref(), Some("/next"));
    assert_eq!(g.method, Method::Get);
    assert_eq!(g.num_digits, Some(4));
    assert_eq!(g.timeout, 7);
    assert_eq!(g.finish_on_key, "");
    assert_eq!(g.speech_timeout, Some(SpeechTimeout::Auto));
    assert_eq!(g.extra, vec![("hints".to_string(), "a,b".to_string())]);
    assert_eq!(g.nested.len(), 3);
    assert!(
        matches!(&g.nested[0], GatherNested::Say(Verb::Say { text, .. }) if text == "Enter PIN")
    );
    assert!(matches!(
        &g.nested[1],
        GatherNested::Pause(Verb::Pause { length: 2 })
    ));
    assert!(matches!(&g.nested[2], GatherNested::Play(_)));
    // <Dial> may not nest in <Gather>: warned and skipped.
    assert_eq!(doc.warnings.len(), 1);
    assert_eq!(
        doc.warnings[0].kind,
        WarningKind::UnexpectedChild {
            parent: "Gather".into(),
            child: "Dial".into()
        }
    );
    assert_eq!(doc.warnings[0].pos, Position { line: 6, col: 5 });
}

#[test]
fn record_defaults() {
    let Verb::Record(r) = one("<Response><Record/></Response>") else {
        panic!()
    };
    assert_eq!(r.action, None);
    assert_eq!(r.method, Method::Post);
    assert_eq!(r.timeout, 5);
    assert_eq!(r.finish_on_key, "1234567890*#");
    assert_eq!(r.max_length, 3600);
    assert!(r.play_beep);
    assert_eq!(r.trim, RecordTrim::TrimSilence);
    assert_eq!(r.recording_status_callback_method, Method::Post);
    assert_eq!(
        r.recording_status_callback_event,
        vec!["completed".to_string()]
    );
    assert!(!r.transcribe);
    let Verb::Record(r) = one(
        r#"<Response><Record maxLength="20" playBeep="false" trim="do-not-trim" recordingStatusCallbackEvent="in-progress completed"/></Response>"#,
    ) else {
        panic!()
    };
    assert_eq!(r.max_length, 20);
    assert!(!r.play_beep);
    assert_eq!(r.trim, RecordTrim::DoNotTrim);
    assert_eq!(r.recording_status_callback_event.len(), 2);
}

#[test]
fn dial_defaults_with_bare_number() {
    let Verb::Dial(d) = one("<Response><Dial> +15551234567 </Dial></Response>") else {
        panic!()
    };
    assert_eq!(d.target, DialTarget::Number("+15551234567".into()));
    assert_eq!(d.action, None);
    assert_eq!(d.method, Method::Post);
    assert_eq!(d.timeout, 30);
    assert_eq!(d.caller_id, None);
    assert_eq!(d.time_limit, 14400);
    assert!(!d.answer_on_bridge);
    assert!(!d.hangup_on_star);
    assert_eq!(d.record, DialRecord::DoNotRecord);
    assert_eq!(d.ring_tone, None);
}

#[test]
fn dial_with_several_nouns() {
    let Verb::Dial(d) = one(r#"<Response>
  <Dial action="/done" timeout="10" callerId="+1555" answerOnBridge="true" record="true" ringTone="us" sequential="true">
    <Number sendDigits="ww1" statusCallbackEvent="initiated ringing">+15550001</Number>
    <Client><Identity>alice</Identity><Parameter name="k" value="v &amp; w"/></Client>
    <Client>bob</Client>
    <Sip username="u" password="p">sip:x@example.com?X-Foo=bar</Sip>
    <Conference beep="onEnter" startConferenceOnEnter="false" maxParticipants="10">room1</Conference>
    <Queue url="/whisper">support</Queue>
  </Dial>
</Response>"#)
    else {
        panic!()
    };
    assert_eq!(d.action.as_deref(), Some("/done"));
    assert_eq!(d.timeout, 10);
    assert_eq!(d.caller_id.as_deref(), Some("+1555"));
    assert!(d.answer_on_bridge);
    assert_eq!(d.record, DialRecord::RecordFromAnswer);
    assert_eq!(d.ring_tone.as_deref(), Some("us"));
    assert_eq!(d.extra, vec![("sequential".into(), "true".into())]);
    let DialTarget::Nouns(n) = &d.target else {
        panic!()
    };
    assert_eq!(n.len(), 6);
    let DialNoun::Number(num) = &n[0] else {
        panic!()
    };
    assert_eq!(num.number, "+15550001");
    assert_eq!(num.send_digits.as_deref(), Some("ww1"));
    assert_eq!(
        num.callbacks.status_callback_event,
        vec!["initiated", "ringing"]
    );
    assert_eq!(num.callbacks.method, Method::Post);
    let DialNoun::Client(c) = &n[1] else { panic!() };
    assert_eq!(c.identity, "alice");
    assert_eq!(c.parameters, vec![("k".into(), "v & w".into())]);
    assert!(c.callbacks.status_callback_event.is_empty());
    let DialNoun::Client(c) = &n[2] else { panic!() };
    assert_eq!(c.identity, "bob");
    let DialNoun::Sip(s) = &n[3] else { panic!() };
    assert_eq!(s.uri, "sip:x@example.com?X-Foo=bar");
    assert_eq!(s.username.as_deref(), Some("u"));
    assert_eq!(s.password.as_deref(), Some("p"));
    let DialNoun::Conference(cf) = &n[4] else {
        panic!()
    };
    assert_eq!(cf.name, "room1");
    assert_eq!(cf.beep, Beep::OnEnter);
    assert!(!cf.start_conference_on_enter);
    assert!(!cf.end_conference_on_exit);
    assert!(!cf.muted);
    assert_eq!(cf.max_participants, 10);
    let DialNoun::Queue(q) = &n[5] else { panic!() };
    assert_eq!(q.name, "support");
    assert_eq!(q.url.as_deref(), Some("/whisper"));
}

#[test]
fn conference_defaults() {
    let Verb::Dial(d) = one("<Response><Dial><Conference>r</Conference></Dial></Response>") else {
        panic!()
    };
    let DialTarget::Nouns(n) = d.target else {
        panic!()
    };
    let DialNoun::Conference(c) = &n[0] else {
        panic!()
    };
    assert_eq!(c.beep, Beep::True);
    assert!(c.start_conference_on_enter);
    assert_eq!(c.max_participants, 250);
    assert_eq!(c.wait_method, Method::Post);
}

#[test]
fn redirect_hangup_reject_and_other_verbs() {
    let doc = ok(r#"<Response>
  <Reject/>
  <Reject reason="busy"/>
  <Redirect>https://x/next</Redirect>
  <Redirect method="GET">/b</Redirect>
  <Enqueue waitUrl="/w">q1</Enqueue>
  <Leave/><Refer/><Pay/><Sms>hi</Sms><Message>m</Message>
  <Echo/><Prompt/>
  <Hangup/>
</Response>"#);
    assert!(doc.warnings.is_empty(), "{:?}", doc.warnings);
    assert_eq!(
        doc.verbs[0],
        Verb::Reject {
            reason: RejectReason::Rejected
        }
    );
    assert_eq!(
        doc.verbs[1],
        Verb::Reject {
            reason: RejectReason::Busy
        }
    );
    assert_eq!(
        doc.verbs[2],
        Verb::Redirect {
            url: "https://x/next".into(),
            method: Method::Post
        }
    );
    assert_eq!(
        doc.verbs[3],
        Verb::Redirect {
            url: "/b".into(),
            method: Method::Get
        }
    );
    assert_eq!(
        doc.verbs[4],
        Verb::Enqueue(Enqueue {
            name: "q1".into(),
            action: None,
            method: Method::Post,
            wait_url: Some("/w".into()),
            wait_url_method: Method::Post,
        })
    );
    let names: Vec<&str> = doc.verbs[5..]
        .iter()
        .map(|v| match v {
            Verb::Other { name, .. } => name.as_str(),
            Verb::Hangup => "Hangup",
            _ => "?",
        })
        .collect();
    assert_eq!(
        names,
        [
            "Leave", "Refer", "Pay", "Sms", "Message", "Echo", "Prompt", "Hangup"
        ]
    );
}

#[test]
fn connect_start_and_stop_stream() {
    let doc = ok(r#"<Response>
  <Start>
    <Stream url="wss://fork.example/a" name="fork1" track="both_tracks"
            statusCallback="https://app.example/s" statusCallbackMethod="GET">
      <Parameter name="agent" value="sales"/>
      <Parameter name="empty"/>
    </Stream>
    <Stream url=" wss://fork.example/b "/>
  </Start>
  <Connect action="/after" method="GET">
    <Stream url="wss://agent.example/ws" track="inbound_track">
      <Parameter name="customer" value="42"/>
    </Stream>
  </Connect>
  <Stop><Stream name="fork1"/></Stop>
</Response>"#);
    assert!(doc.warnings.is_empty(), "{:?}", doc.warnings);
    let fork1 = Stream {
        url: "wss://fork.example/a".into(),
        name: Some("fork1".into()),
        track: StreamTrack::Both,
        status_callback: Some("https://app.example/s".into()),
        status_callback_method: Method::Get,
        parameters: vec![
            ("agent".into(), "sales".into()),
            ("empty".into(), String::new()),
        ],
    };
    let plain = Stream {
        url: "wss://fork.example/b".into(),
        name: None,
        track: StreamTrack::Inbound,
        status_callback: None,
        status_callback_method: Method::Post,
        parameters: vec![],
    };
    assert_eq!(
        doc.verbs,
        vec![
            Verb::Start {
                streams: vec![fork1, plain]
            },
            Verb::Connect(Connect {
                action: Some("/after".into()),
                method: Method::Get,
                stream: Stream {
                    url: "wss://agent.example/ws".into(),
                    name: None,
                    track: StreamTrack::Inbound,
                    status_callback: None,
                    status_callback_method: Method::Post,
                    parameters: vec![("customer".into(), "42".into())],
                },
            }),
            Verb::Stop {
                stream_names: vec!["fork1".into()]
            },
        ]
    );
}

#[test]
fn streams_without_their_required_attributes_or_with_foreign_nouns() {
    for (xml, attribute) in [
        (
            r#"<Response><Connect><Stream/></Connect></Response>"#,
            "url",
        ),
        (
            r#"<Response><Start><Stream url=" "/></Start></Response>"#,
            "url",
        ),
        (r#"<Response><Stop><Stream/></Stop></Response>"#, "name"),
    ] {
        match err(xml) {
            InstructionError::InvalidAttribute { attribute: a, .. } => assert_eq!(a, attribute),
            e => panic!("{xml}: {e:?}"),
        }
    }
    match err(r#"<Response><Start><Stream url="wss://x" track="left"/></Start></Response>"#) {
        InstructionError::InvalidAttribute { attribute, .. } => assert_eq!(attribute, "track"),
        e => panic!("{e:?}"),
    }
    // <Connect><Room> (not ours) is warned about and the verb skipped; a second <Stream>
    // and <Start><Siprec> are warned about and left out.
    let doc = ok(r#"<Response><Connect><Room>r</Room></Connect>
<Connect><Stream url="wss://a"/><Stream url="wss://b"/></Connect>
<Start><Siprec connectorName="c"/></Start></Response>"#);
    assert_eq!(doc.verbs.len(), 2, "{:?}", doc.verbs);
    assert!(matches!(&doc.verbs[0], Verb::Connect(c) if c.stream.url == "wss://a"));
    assert_eq!(doc.verbs[1], Verb::Start { streams: vec![] });
    let unexpected: Vec<_> = doc
        .warnings
        .iter()
        .filter_map(|w| match &w.kind {
            WarningKind::UnexpectedChild { child, .. } => Some(child.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(unexpected, ["Room", "Stream", "Siprec"]);
}

#[test]
fn unknown_verb_and_attribute_warn_and_are_skipped() {
    let doc =
        ok("<Response>\n<Dance speed=\"9\"/>\n<say>lower</say>\n<Hangup foo=\"1\"/>\n</Response>");
    assert_eq!(doc.verbs, vec![Verb::Hangup]);
    assert_eq!(
        doc.warnings,
        vec![
            Warning {
                kind: WarningKind::UnknownVerb {
                    name: "Dance".into()
                },
                pos: Position { line: 2, col: 1 }
            },
            Warning {
                kind: WarningKind::UnknownVerb { name: "say".into() },
                pos: Position { line: 3, col: 1 }
            },
            Warning {
                kind: WarningKind::UnknownAttribute {
                    element: "Hangup".into(),
                    attribute: "foo".into()
                },
                pos: Position { line: 4, col: 1 }
            },
        ]
    );
    assert_eq!(Warning::TWILIO_CODE, 12200);
}

#[test]
fn empty_response_is_valid() {
    assert_eq!(ok("<Response/>"), Document::default());
    assert_eq!(ok("<Response></Response>").verbs, vec![]);
}

#[test]
fn text_trimming_and_entities() {
    let v = one(
        "<Response><Say>\n   Tom &amp; Jerry &lt;3 &#65;&#x42; &quot;q&quot; &apos;a&apos; &gt; </Say></Response>",
    );
    assert_eq!(
        v,
        Verb::Say {
            text: "Tom & Jerry <3 AB \"q\" 'a' >".into(),
            voice: None,
            language: None,
            loop_count: 1,
            speech: vec![SpeechPart::Text {
                text: "Tom & Jerry <3 AB \"q\" 'a' >".into(),
                rate: None
            }],
        }
    );
    let v = one("<Response><Play><![CDATA[ http://x/?a=1&b=2 ]]></Play></Response>");
    assert!(matches!(v, Verb::Play { url, .. } if url == "http://x/?a=1&b=2"));
    let v = one(r#"<Response><Redirect method="G&#69;T">/a?x=1&amp;y=2</Redirect></Response>"#);
    assert_eq!(
        v,
        Verb::Redirect {
            url: "/a?x=1&y=2".into(),
            method: Method::Get
        }
    );
}

#[test]
fn malformed_xml_reports_line_and_column() {
    let e = err("<Response>\n  <Say>hi</Sai>\n</Response>");
    assert_eq!(e.class(), ErrorClass::Syntax);
    assert_eq!(e.twilio_code(), 12100);
    assert!(matches!(e, InstructionError::Malformed { .. }), "{e:?}");
    assert_eq!(e.position(), Some(Position { line: 2, col: 10 }), "{e}");

    let e = err("<Response>\n<Say>unclosed\n");
    assert!(matches!(e, InstructionError::Malformed { .. }), "{e:?}");
    assert_eq!(e.position(), Some(Position { line: 3, col: 1 }), "{e}");

    let e = err("<Response>\n  <Say a=\"1\" a=\"2\">x</Say></Response>");
    assert_eq!(e.position(), Some(Position { line: 2, col: 3 }), "{e}");

    let e = err("<Response></Response><Response/>");
    assert_eq!(e.position(), Some(Position { line: 1, col: 22 }), "{e}");

    let e = err("<Response><Say>&nbsp;</Say></Response>");
    assert!(
        matches!(e, InstructionError::UnknownEntity { ref name, .. } if name == "nbsp"),
        "{e:?}"
    );

    assert_eq!(err(""), InstructionError::Empty);
    assert_eq!(err("   "), InstructionError::Empty);
    assert!(matches!(err("garbage"), InstructionError::Malformed { .. }));
    assert!(matches!(
        err("\u{0}"),
        InstructionError::Malformed { .. } | InstructionError::Empty
    ));
    assert!(matches!(
        parse(b"<Response>\xff</Response>", &Limits::default()),
        Err(InstructionError::NotUtf8 { offset: 10 })
    ));
    let e = err("<Response>\n<Say>x</Say>\n<Hangup></Response>");
    assert_eq!(e.position(), Some(Position { line: 3, col: 9 }), "{e}");
}

#[test]
fn root_must_be_response() {
    let e = err("\n  <response><Say>x</Say></response>");
    assert_eq!(
        e,
        InstructionError::RootNotResponse {
            found: "response".into(),
            pos: Position { line: 2, col: 3 }
        }
    );
    assert_eq!(e.twilio_code(), 12102);
    assert_eq!(e.class(), ErrorClass::Schema);
}

#[test]
fn invalid_attribute_values_are_errors() {
    for (xml, attr) in [
        (
            r#"<Response><Dial timeout="abc">1</Dial></Response>"#,
            "timeout",
        ),
        (
            r#"<Response><Redirect method="PUT">/x</Redirect></Response>"#,
            "method",
        ),
        (r#"<Response><Pause length="-1"/></Response>"#, "length"),
        (
            r#"<Response><Record playBeep="yes"/></Response>"#,
            "playBeep",
        ),
        (r#"<Response><Reject reason="nope"/></Response>"#, "reason"),
        (r#"<Response><Gather input="keys"/></Response>"#, "input"),
        (
            r#"<Response><Gather numDigits="0"/></Response>"#,
            "numDigits",
        ),
        (
            r#"<Response><Dial><Number method="PUT">1</Number></Dial></Response>"#,
            "method",
        ),
    ] {
        let e = err(xml);
        assert!(
            matches!(&e, InstructionError::InvalidAttribute { attribute, .. } if attribute == attr),
            "{xml}: {e:?}"
        );
        assert_eq!(e.twilio_code(), 12200);
        assert_eq!(e.class(), ErrorClass::Schema);
        assert!(e.position().is_some());
    }
}

#[test]
fn size_limit() {
    let limits = Limits {
        max_bytes: 20,
        ..Limits::default()
    };
    let e = parse(b"<Response><Hangup/></Response>", &limits).unwrap_err();
    assert_eq!(e, InstructionError::TooLarge { size: 30, max: 20 });
    assert_eq!(e.class(), ErrorClass::Limit);
    let big = format!("<Response><Say>{}</Say></Response>", "a".repeat(64 * 1024));
    assert!(matches!(err(&big), InstructionError::TooLarge { .. }));
}

#[test]
fn depth_limit() {
    let limits = Limits {
        max_depth: 3,
        ..Limits::default()
    };
    let xml = b"<Response><Dial><Client><Identity>a</Identity></Client></Dial></Response>";
    let e = parse(xml, &limits).unwrap_err();
    assert_eq!(
        e,
        InstructionError::TooDeep {
            max: 3,
            pos: Position { line: 1, col: 25 }
        }
    );
    assert!(parse(xml, &Limits::default()).is_ok());
    // Deep nesting far beyond the cap: clean error, no recursion.
    let deep = format!("<Response>{}", "<a>".repeat(10_000));
    assert!(matches!(
        err(&deep),
        InstructionError::TooDeep { max: 8, .. }
    ));
}

#[test]
fn verb_count_limit() {
    let xml = format!("<Response>{}</Response>", "<Pause/>".repeat(200));
    assert_eq!(ok(&xml).verbs.len(), 200);
    let xml = format!("<Response>{}</Response>", "<Pause/>".repeat(201));
    let e = err(&xml);
    assert!(
        matches!(e, InstructionError::TooManyVerbs { max: 200, .. }),
        "{e:?}"
    );
    assert_eq!(e.class(), ErrorClass::Limit);
}

#[test]
fn billion_laughs_rejected() {
    let xml = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
]>
<Response><Say>&lol2;</Say></Response>"#;
    let e = err(xml);
    assert_eq!(
        e,
        InstructionError::DocType {
            pos: Position { line: 2, col: 1 }
        }
    );
    assert_eq!(e.class(), ErrorClass::Security);
    assert_eq!(e.twilio_code(), 12100);
}

#[test]
fn xxe_rejected() {
    let xml = r#"<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Response><Say>&xxe;</Say></Response>"#;
    assert!(matches!(err(xml), InstructionError::DocType { .. }));
    // Without the DOCTYPE the reference is simply unknown; nothing is ever fetched.
    let e = err("<Response><Say>&xxe;</Say></Response>");
    assert!(matches!(e, InstructionError::UnknownEntity { ref name, .. } if name == "xxe"));
    let e = err(r#"<Response><Say voice="&xxe;">x</Say></Response>"#);
    assert!(
        matches!(e, InstructionError::UnknownEntity { ref name, .. } if name == "xxe"),
        "{e:?}"
    );
}

#[test]
fn comments_and_pis_ignored_xmlns_allowed() {
    let doc = ok(
        "<?xml version=\"1.0\"?><!-- c --><Response xmlns=\"x\"><!-- in --><?pi x?><Hangup/></Response><!-- tail -->",
    );
    assert_eq!(doc.verbs, vec![Verb::Hangup]);
    assert!(doc.warnings.is_empty());
}

#[test]
fn position_counts_characters() {
    assert_eq!(
        Position::at("é\néé<".as_bytes(), 7),
        Position { line: 2, col: 3 }
    );
    assert_eq!(Position::at(b"abc", 99), Position { line: 1, col: 4 });
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse(&bytes, &Limits::default());
        }

        #[test]
        fn twiml_like_text_never_panics(s in "[<>/ =\"'&;#a-zA-Z0-9!\\[\\]?\n-]{0,300}") {
            let _ = parse(s.as_bytes(), &Limits::default());
            let wrapped = format!("<Response>{s}</Response>");
            let _ = parse(wrapped.as_bytes(), &Limits { max_depth: 4, max_verbs: 5, max_bytes: 1024 });
        }
    }
}

#[test]
fn many_small_events_stay_fast() {
    // 64 KiB of references: positions are computed lazily (once per element, not per
    // event), so this stays linear rather than O(events x offset).
    let body = "&amp;".repeat((64 * 1024 - 40) / 5);
    let xml = format!("<Response><Say>{body}</Say></Response>");
    let doc = ok(&xml);
    assert!(matches!(&doc.verbs[0], Verb::Say { text, .. } if text.len() == body.len() / 5));
}

/// SSML in `<Say>`, in document order: breaks, rates (nested and restored), digits read
/// one by one, aliases, other elements read as text, whitespace collapsed.
#[test]
fn say_keeps_the_ssml_it_renders_in_order() {
    use std::time::Duration;
    let v = one(
        r#"<Response><Say voice="Polly.Joanna">Your code is <say-as interpret-as="digits">4 2
        7</say-as>.<break time="1.5s"/> <prosody rate="slow">Once <emphasis>more</emphasis>,
        <prosody rate="150%">quickly</prosody></prosody> <break strength="none"/>
        <sub alias="World Wide Web">WWW</sub><break/><break time="90s"/><p>bye</p></Say></Response>"#,
    );
    let Verb::Say { speech, text, .. } = v else {
        panic!("{v:?}")
    };
    let t = |s: &str, rate| SpeechPart::Text {
        text: s.into(),
        rate,
    };
    assert_eq!(
        speech,
        vec![
            t("Your code is 4 2 7 .", None),
            SpeechPart::Break(Duration::from_millis(1500)),
            t("Once more ,", Some(SpeechRate::Slow)),
            t("quickly", Some(SpeechRate::Percent(150))),
            t("World Wide Web", None),
            SpeechPart::Break(Duration::from_millis(500)),
            SpeechPart::Break(MAX_SPEECH_BREAK),
            t("bye", None),
        ]
    );
    assert!(text.starts_with("Your code is"), "{text}");
}
