//! Tests of the compiled dial plan and `switchboard route`'s explanation.

use super::*;

const AC: &str = "AC0123456789abcdef0123456789abcdef";
const AC2: &str = "AC00000000000000000000000000000002";
const AP: &str = "AP0123456789abcdef0123456789abcdef";
const AP2: &str = "AP00000000000000000000000000000002";

fn plan(extra: &str) -> DialPlan {
    let text = format!(
        r#"
[[accounts]]
sid = "{AC}"
auth_token = "t"

[[accounts]]
sid = "{AC2}"
auth_token = "t2"

[[applications]]
sid = "{AP}"
account = "{AC}"
friendly_name = "Hello"
twiml = "<Response/>"

[[applications]]
sid = "{AP2}"
account = "{AC2}"
twiml = "<Response/>"

[[trunks]]
name = "carrier"
account = "{AC}"
inbound_cidrs = ["127.0.0.0/8", "2001:db8::/32"]
outbound_uri = "sip:127.0.0.1:5080"

[[trunks]]
name = "other"
account = "{AC2}"
inbound_cidrs = ["127.0.0.2/32", "2001:db8:1::/48"]
outbound_uri = "sip:10.0.0.1:5060"

[[trunks]]
name = "backup"
account = "{AC}"
inbound_cidrs = ["10.0.0.0/8"]
outbound_uri = "sip:10.9.9.9"

[[numbers]]
number = "+15550100001"
application = "{AP}"

[[numbers]]
number = "+15550100002"
application = "{AP2}"
trunk = "other"
{extra}"#
    );
    DialPlan::new(&super::super::parse("test.toml", &text).expect("valid test config"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn trunk_of(d: &InboundDecision) -> &str {
    match d {
        InboundDecision::Carrier { trunk, .. }
        | InboundDecision::UnknownNumber { trunk, .. }
        | InboundDecision::NumberNotOnThisTrunk { trunk, .. } => trunk,
        InboundDecision::UnknownSource { .. } => "",
    }
}

#[test]
fn carrier_call() {
    let d = plan("").inbound(ip("127.0.0.1"), "+15550100001");
    assert_eq!(
        d,
        InboundDecision::Carrier {
            source: ip("127.0.0.1"),
            trunk: "carrier".into(),
            cidr: Cidr::parse("127.0.0.0/8").unwrap(),
            account: AC.into(),
            application: AP.into(),
            application_name: Some("Hello".into()),
            number: "+15550100001".into(),
        }
    );
    assert_eq!(d.status(), 200);
    assert_eq!(
        d.why(),
        format!(
            "source 127.0.0.1 is inside trunk `carrier` (127.0.0.0/8); \
             +15550100001 is a configured number → application {AP} (Hello)"
        )
    );
}

#[test]
fn unknown_source_is_403() {
    let p = plan("");
    for src in ["203.0.113.9", "::1", "::ffff:203.0.113.9"] {
        let d = p.inbound(ip(src), "+15550100001");
        assert_eq!(d, InboundDecision::UnknownSource { source: ip(src) });
        assert_eq!(d.status(), 403);
        assert!(d.why().contains(&format!("source {src} is not inside")));
    }
}

#[test]
fn unknown_number_is_404() {
    let p = plan("");
    let d = p.inbound(ip("127.0.0.1"), "+15550109999");
    assert_eq!(d.status(), 404);
    assert!(matches!(
        &d,
        InboundDecision::UnknownNumber { trunk, did_you_mean: None, .. } if trunk == "carrier"
    ));
    // Exact matching: no `+` is added, no separators are stripped; the near miss of a
    // missing `+` is pointed out.
    let d = p.inbound(ip("127.0.0.1"), "15550100001");
    assert_eq!(d.status(), 404);
    assert!(matches!(
        &d,
        InboundDecision::UnknownNumber { did_you_mean: Some(m), .. } if m == "+15550100001"
    ));
    assert!(d.why().contains("+15550100001 is configured"));
    for near in ["+1 555 0100001", "+1-555-0100001", " +15550100001", ""] {
        let d = p.inbound(ip("127.0.0.1"), near);
        assert_eq!(d.status(), 404, "{near:?}");
        assert!(matches!(
            &d,
            InboundDecision::UnknownNumber {
                did_you_mean: None,
                ..
            }
        ));
    }
}

#[test]
fn restricted_number_only_from_its_trunk() {
    let p = plan("");
    let d = p.inbound(ip("127.0.0.1"), "+15550100002");
    assert_eq!(
        d,
        InboundDecision::NumberNotOnThisTrunk {
            source: ip("127.0.0.1"),
            trunk: "carrier".into(),
            cidr: Cidr::parse("127.0.0.0/8").unwrap(),
            number: "+15550100002".into(),
            allowed_trunk: "other".into(),
        }
    );
    assert_eq!(d.status(), 404);
    assert!(d.why().contains("only from trunk `other`"));
    // From its own trunk it is accepted, for that trunk's account.
    let d = p.inbound(ip("127.0.0.2"), "+15550100002");
    assert!(matches!(
        &d,
        InboundDecision::Carrier { trunk, account, application, .. }
            if trunk == "other" && account == AC2 && application == AP2
    ));
}

#[test]
fn most_specific_cidr_wins_then_config_order() {
    let p = plan("");
    // 127.0.0.2/32 (other) beats 127.0.0.0/8 (carrier), though carrier comes first.
    assert_eq!(
        trunk_of(&p.inbound(ip("127.0.0.2"), "+15550100001")),
        "other"
    );
    assert_eq!(
        trunk_of(&p.inbound(ip("127.0.0.3"), "+15550100001")),
        "carrier"
    );
    // Equal blocks: the trunk listed first.
    let p = plan(&format!(
        r#"
[[trunks]]
name = "dup"
account = "{AC}"
inbound_cidrs = ["10.0.0.0/8"]
"#
    ));
    assert_eq!(
        trunk_of(&p.inbound(ip("10.1.1.1"), "+15550100001")),
        "backup"
    );
}

#[test]
fn ipv6_and_mapped_sources() {
    let p = plan("");
    assert_eq!(
        trunk_of(&p.inbound(ip("2001:db8::5"), "+15550100001")),
        "carrier"
    );
    // The /48 beats the /32.
    let d = p.inbound(ip("2001:db8:1::5"), "+15550100001");
    assert_eq!(trunk_of(&d), "other");
    assert!(d.why().contains("(2001:db8:1::/48)"));
    // What a dual-stack socket reports for an IPv4 peer matches the IPv4 blocks.
    let d = p.inbound(ip("::ffff:127.0.0.1"), "+15550100001");
    assert_eq!(d.status(), 200);
    assert!(
        d.why()
            .starts_with("source ::ffff:127.0.0.1 is inside trunk `carrier` (127.0.0.0/8)")
    );
    assert_eq!(trunk_of(&p.inbound(ip("::ffff:127.0.0.2"), "+1")), "other");
}

const ROUTES: &str = r#"
[[routes]]
pattern = "*"
trunk = "backup"

[[routes]]
pattern = "+"
trunk = "carrier"

[[routes]]
pattern = "+44"
trunk = "other"

[[routes]]
pattern = "+1555"
trunk = "backup"
priority = 20

[[routes]]
pattern = "+1555"
trunk = "other"

[[routes]]
pattern = "+1555"
trunk = "carrier"
priority = 10
"#;

#[test]
fn outbound_longest_prefix() {
    let p = plan(ROUTES);
    // AC2's own `+44` route.
    let o = p.outbound(AC2, "+442071234567").unwrap();
    assert_eq!((o.trunk.as_str(), o.pattern.as_str()), ("other", "+44"));
    assert_eq!(o.trunk_account, AC2);
    assert_eq!(o.outbound_uri.as_deref(), Some("sip:10.0.0.1:5060"));
    assert_eq!(o.status(), 200);
    assert_eq!(
        o.why(),
        "+442071234567 → trunk `other` (sip:10.0.0.1:5060) by [[routes]] #3: `+44` is the \
         longest matching route prefix"
    );
    // AC has no `+44` route of its own: its `+` takes the call.
    let o = p.outbound(AC, "+442071234567").unwrap();
    assert_eq!((o.trunk.as_str(), o.pattern.as_str()), ("carrier", "+"));
    let o = p.outbound(AC, "+33123456789").unwrap();
    assert_eq!((o.trunk.as_str(), o.pattern.as_str()), ("carrier", "+"));
}

#[test]
fn outbound_never_uses_another_accounts_trunk() {
    let p = plan(ROUTES);
    // AC has `+` and `*`, which match everything; AC2 may use neither.
    assert!(p.outbound(AC2, "+33123456789").is_none());
    assert!(p.outbound(AC2, "+19005550100").is_none());
    assert_eq!(p.outbound(AC2, "+15551234567").unwrap().trunk, "other");
    // Nor may an account the config does not know, nor the empty one.
    assert!(
        p.outbound("AC99999999999999999999999999999999", "+1")
            .is_none()
    );
    assert!(p.outbound("", "+1").is_none());
    // A shared route is open to every account, on its owner's trunk, and says so.
    let p = plan(&format!(
        "{ROUTES}\n[[routes]]\npattern = \"+33\"\ntrunk = \"carrier\"\nshared = true\n"
    ));
    let o = p.outbound(AC2, "+33123456789").unwrap();
    assert_eq!(
        (o.trunk.as_str(), o.trunk_account.as_str()),
        ("carrier", AC)
    );
    assert!(
        o.why.contains(&format!("of account {AC} (shared route)")),
        "{}",
        o.why
    );
    assert!(p.outbound(AC2, "+34123456789").is_none());
}

#[test]
fn outbound_star_is_the_fallback() {
    let p = plan(ROUTES);
    // `*` is listed first but ranks below every prefix; it takes what none matches.
    let o = p.outbound(AC, "alice").unwrap();
    assert_eq!((o.trunk.as_str(), o.pattern.as_str()), ("backup", "*"));
    assert!(
        o.why
            .ends_with("by [[routes]] #1: no prefix route matches, `*` catches everything")
    );
    assert!(p.outbound(AC, "").is_some());
    // Without `*`, a number no prefix matches has no route.
    let p = plan("[[routes]]\npattern = \"+\"\ntrunk = \"carrier\"\n");
    assert!(p.outbound(AC, "0044123").is_none());
    assert!(p.outbound(AC, "+1").is_some());
}

#[test]
fn outbound_priority_then_config_order() {
    let p = plan(ROUTES);
    let o = p.outbound(AC, "+15551234567").unwrap();
    assert_eq!((o.trunk.as_str(), o.pattern.as_str()), ("carrier", "+1555"));
    assert!(
        o.why
            .contains("(priority 10, first of 3 routes with that pattern)")
    );
    // Unset priority sorts after every set one; equal ones go by config order.
    let p = plan(
        r#"
[[routes]]
pattern = "+1"
trunk = "backup"

[[routes]]
pattern = "+1"
trunk = "carrier"
priority = 5

[[routes]]
pattern = "+1"
trunk = "backup"
priority = 5
"#,
    );
    assert_eq!(p.outbound(AC, "+1555").unwrap().trunk, "carrier");
    let p = plan(
        r#"
[[routes]]
pattern = "+1"
trunk = "backup"

[[routes]]
pattern = "+1"
trunk = "carrier"
"#,
    );
    assert_eq!(p.outbound(AC, "+1555").unwrap().trunk, "backup");
}

#[test]
fn explain_accepts_and_refuses() {
    let p = plan(ROUTES);
    let (code, out) = explain(&p, ip("127.0.0.1"), "+15550100001", None);
    assert_eq!(code, 0);
    assert_eq!(
        out,
        format!(
            "accept 200 OK: carrier call on trunk `carrier` for account {AC} → application \
             {AP} (Hello)\n  because source 127.0.0.1 is inside trunk `carrier` \
             (127.0.0.0/8)\n  because +15550100001 is a configured number → application \
             {AP} (Hello)\n"
        )
    );

    let (code, out) = explain(&p, ip("127.0.0.1"), "+442071234567", None);
    assert_eq!(code, 1);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "refuse 404 Not Found: +442071234567 is not a number of ours (from trunk `carrier`)"
    );
    assert!(lines[2].contains("never routed out"));
    // The source's trunk's account (AC) would dial it out through its own `+` route.
    assert!(
        lines[3].starts_with(&format!(
            "  if dialled out by {AC}: +442071234567 → trunk `carrier`"
        )),
        "{}",
        lines[3]
    );
    // --account picks whose routes are shown.
    let (_, out) = explain(&p, ip("127.0.0.1"), "+442071234567", Some(AC2));
    assert!(out.contains(&format!(
        "  if dialled out by {AC2}: +442071234567 → trunk `other`"
    )));

    let (code, out) = explain(&p, ip("203.0.113.9"), "+15550100001", None);
    assert_eq!(code, 1);
    assert!(out.starts_with("refuse 403 Forbidden: 203.0.113.9 is not a known trunk\n"));
    // Our number: no outbound line.
    assert_eq!(out.lines().count(), 2);

    let (code, out) = explain(&p, ip("127.0.0.1"), "+15550100002", None);
    assert_eq!(code, 1);
    assert!(out.starts_with("refuse 404 Not Found: +15550100002 is not reachable"));

    // No route at all for a number that is not ours.
    let p = plan("");
    let (code, out) = explain(&p, ip("203.0.113.9"), "+44", None);
    assert_eq!(code, 1);
    assert!(out.ends_with("pass --account to see which trunk an account would use\n"));
    let (_, out) = explain(&p, ip("203.0.113.9"), "+44", Some(AC));
    assert!(out.ends_with(&format!(
        "  if dialled out by {AC}: no route of that account (or shared) matches +44, so no trunk would dial it\n"
    )));
}
