//! Loading tests: the sample parses, and every rule fails at the right `line:col`.

use super::*;
use crate::config::error::line_col;

const SAMPLE: &str = include_str!("../../conf/switchboard.toml");

const AC: &str = "AC0123456789abcdef0123456789abcdef";
const AP: &str = "AP0123456789abcdef0123456789abcdef";

/// A small valid config the failing cases are variations of.
fn base() -> String {
    format!(
        r#"[server]
sip_listen = ["127.0.0.1:5060"]

[[accounts]]
sid = "{AC}"
auth_token = "t"

[[accounts.api_keys]]
sid = "SK0123456789abcdef0123456789abcdef"
secret = "s"

[[applications]]
sid = "{AP}"
account = "{AC}"
twiml = "<Response/>"

[[trunks]]
name = "carrier"
account = "{AC}"
inbound_cidrs = ["127.0.0.0/8"]
outbound_uri = "sip:127.0.0.1:5080"

[[numbers]]
number = "+15550100001"
application = "{AP}"

[[routes]]
pattern = "+"
trunk = "carrier"

[[sip_users]]
username = "alice"
password = "pw"
identity = "alice"
account = "{AC}"
"#
    )
}

/// `text` must fail with a message containing `why`, positioned at the `nth` (0-based)
/// occurrence of `needle`.
#[track_caller]
fn fails_at(text: &str, needle: &str, nth: usize, why: &str) {
    let offset = text
        .match_indices(needle)
        .nth(nth)
        .unwrap_or_else(|| panic!("test bug: `{needle}` #{nth} not in text"))
        .0;
    let (line, col) = line_col(text, offset);
    let err = parse("t.toml", text).expect_err("config should be rejected");
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("t.toml:{line}:{col}: ")),
        "expected t.toml:{line}:{col}: (at `{needle}`), got: {msg}"
    );
    assert!(msg.contains(why), "expected `{why}` in: {msg}");
}

/// Replace exactly one occurrence, so a typo in a test cannot silently test nothing.
#[track_caller]
fn edit(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "test bug: `{from}` must occur once"
    );
    text.replacen(from, to, 1)
}

#[test]
fn sample_config_parses() {
    let c = parse("conf/switchboard.toml", SAMPLE).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.server.sip_listen, vec!["127.0.0.1:5060".parse().unwrap()]);
    assert_eq!(c.server.http_listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(
        c.server.rtp_range,
        PortRange {
            first: 20000,
            last: 29999
        }
    );
    assert_eq!(c.store.kind, StoreKind::Memory);
    assert_eq!(c.accounts.len(), 1);
    assert_eq!(c.accounts[0].api_keys.len(), 1);
    assert!(
        c.applications[0]
            .twiml
            .as_deref()
            .unwrap()
            .contains("<Client>alice</Client>")
    );
    assert_eq!(c.trunks[0].name, "carrier");
    assert!(c.trunks[0].inbound_nets[0].contains("127.0.0.1".parse().unwrap()));
    assert_eq!(c.numbers[0].application, c.applications[0].sid);
    assert_eq!(c.routes[0].pattern, "+");
    assert_eq!(c.sip_users[0].identity, "alice");
    assert_eq!(c.webhooks.private_nets.len(), 1);
    // The sample keeps `cdr_file` commented out so it runs anywhere.
    assert_eq!(c.calls, model::CallsConfig::default());
}

#[test]
fn sample_file_on_disk_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/switchboard.toml");
    load(&path).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn empty_file_gives_defaults() {
    let c = parse("t.toml", "").expect("empty config is valid");
    let d = ServerConfig::default();
    assert_eq!(c.server.sip_listen, d.sip_listen);
    assert_eq!(c.server.http_listen, d.http_listen);
    assert_eq!(c.server.realm, "switchboard.local");
    assert_eq!(c.server.rtp_range, PortRange::default());
    assert_eq!(
        c.server.user_agent,
        format!("Switchboard/{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(
        c.server.timers,
        TimersConfig {
            t1_ms: 500,
            t2_ms: 4000,
            t4_ms: 5000
        }
    );
    assert_eq!(c.server.tcp.max_connections_per_ip, 256);
    assert_eq!(c.server.limits.max_message_bytes, 65535);
    assert_eq!(c.webhooks.timeout_ms, 15000);
    assert_eq!(c.webhooks.max_redirects, 3);
    assert!(c.webhooks.allow_private_networks.is_empty());
    assert_eq!(c.calls.cdr_file, None);
    assert_eq!(c.calls.keep_finished, 10_000);
    assert_eq!(c.calls.max_concurrent, 10_000);
}

#[test]
fn base_is_valid() {
    let c = parse("t.toml", &base()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.applications[0].voice_method, HttpMethod::Post);
}

#[test]
fn misspelled_key_points_at_the_key() {
    let text = "# comment\n[server]\nsip_lisen = [\"127.0.0.1:5060\"]\n";
    let err = parse("conf/x.toml", text).expect_err("unknown key");
    let msg = err.to_string();
    assert!(
        msg.starts_with("conf/x.toml:3:1: unknown field `sip_lisen`, expected one of"),
        "{msg}"
    );
    assert_eq!(err.class(), "schema");
    // Nested tables and arrays of tables too.
    fails_at(
        &edit(&base(), "secret = \"s\"", "secret = \"s\"\n  scret = 1"),
        "scret",
        0,
        "unknown field `scret`",
    );
    fails_at(
        "[server.timers]\nt3_ms = 1\n",
        "t3_ms",
        0,
        "unknown field `t3_ms`",
    );
    fails_at("bogus = 1\n", "bogus", 0, "unknown field `bogus`");
}

#[test]
fn schema_errors_are_positioned() {
    fails_at(
        "[server]\nhttp_listen = \"nowhere\"\n",
        "\"nowhere\"",
        0,
        "",
    );
    fails_at(
        "[server]\nworkers = \"two\"\n",
        "\"two\"",
        0,
        "invalid type",
    );
    fails_at(
        "[store]\nkind = \"etcd\"\n",
        "\"etcd\"",
        0,
        "unknown variant `etcd`",
    );
    fails_at(
        &edit(
            &base(),
            "twiml = \"<Response/>\"",
            "twiml = \"<Response/>\"\nvoice_method = \"PUT\"",
        ),
        "\"PUT\"",
        0,
        "unknown variant `PUT`",
    );
    // A required field missing: the table header.
    fails_at(
        &edit(&base(), "auth_token = \"t\"\n", ""),
        "[[accounts]]",
        0,
        "missing field `auth_token`",
    );
}

#[test]
fn syntax_errors_are_positioned() {
    let err = parse("t.toml", "[server]\nrealm = = \"x\"\n").expect_err("bad toml");
    assert_eq!(err.position(), Some((2, 9)), "{err}");
    assert_eq!(err.class(), "syntax");
    fails_at(
        "[server]\nrealm = \"x\"\n[server]\n",
        "server]",
        1,
        "duplicate",
    );
}

#[test]
fn non_ascii_before_error_counts_chars() {
    let text = "# héllo wörld\n[server]\nrealm = \"é\" \nfoo = 1\n";
    fails_at(text, "foo", 0, "unknown field `foo`");
    let text = "[server]\nuser_agent = \"ü\"; x = 1\n";
    assert!(parse("t.toml", text).is_err());
}

#[test]
fn server_rules() {
    fails_at("[server]\nsip_listen = []\n", "[]", 0, "at least one");
    fails_at(
        "[server]\nsip_listen = [\"127.0.0.1:5060\", \"127.0.0.1:5060\"]\n",
        "\"127.0.0.1:5060\"",
        1,
        "listed twice",
    );
    fails_at(
        "[server]\npublic_address = \"a b\"\n",
        "\"a b\"",
        0,
        "public_address",
    );
    fails_at("[server]\nrealm = \"\"\n", "\"\"", 0, "realm");
    fails_at(
        "[server]\nrtp_ports = \"20001-29999\"\n",
        "\"20001",
        0,
        "must be even",
    );
    fails_at(
        "[server]\nrtp_ports = \"20000-29998\"\n",
        "\"20000",
        0,
        "must be odd",
    );
    fails_at(
        "[server]\nrtp_ports = \"lots\"\n",
        "\"lots\"",
        0,
        "not a port range",
    );
    fails_at(
        "[server]\nworkers = 100000\n",
        "100000",
        0,
        "workers must be 0",
    );
    fails_at(
        "[server]\nuser_agent = \"a\\r\\nX: y\"\n",
        "\"a",
        0,
        "control characters",
    );
    fails_at(
        "[server.timers]\nt1_ms = 0\n",
        "0",
        0,
        "t1_ms must be greater than 0",
    );
    fails_at(
        "[server.timers]\nt1_ms = 500\nt2_ms = 400\n",
        "400",
        0,
        "t2_ms (400) must be at least t1_ms (500)",
    );
    fails_at(
        "[server.timers]\nt1_ms = 5000\n",
        "[server.timers]",
        0,
        "t2_ms (4000) must be at least",
    );
    fails_at(
        "[server.tcp]\nidle_timeout_secs = 0\n",
        "0",
        0,
        "idle_timeout_secs",
    );
    fails_at(
        "[server.tcp]\nmax_connections = 0\n",
        "0",
        0,
        "max_connections must",
    );
    fails_at(
        "[server.tcp]\nmax_connections_per_ip = 0\n",
        "0",
        0,
        "max_connections_per_ip must",
    );
    fails_at(
        "[server.limits]\nmax_message_bytes = 1023\n",
        "1023",
        0,
        "1024..=1048576",
    );
    fails_at(
        "[server.limits]\nmax_message_bytes = 1048577\n",
        "1048577",
        0,
        "1024..=1048576",
    );
    assert!(parse("t.toml", "[server.limits]\nmax_message_bytes = 1024\n").is_ok());
    assert!(parse("t.toml", "[server.limits]\nmax_message_bytes = 1048576\n").is_ok());
}

#[test]
fn store_rules() {
    fails_at("[store]\nkind = \"redis\"\n", "\"redis\"", 0, "needs `url`");
    fails_at(
        "[store]\nkind = \"redis\"\nurl = \"http://x\"\n",
        "\"http://x\"",
        0,
        "redis://",
    );
    fails_at(
        "[store]\nkind = \"redis\"\nurl = \"redis://127.0.0.1:6379\"\n",
        "\"redis\"",
        0,
        "set peers_cidrs or secret",
    );
    let c = parse(
        "t.toml",
        "[store]\nkind = \"redis\"\nurl = \"redis://127.0.0.1:6379\"\n[cluster]\nnode_id = \"a\"\npeers_cidrs = [\"127.0.0.0/8\"]\n",
    )
    .expect("valid");
    assert_eq!(c.store.kind, StoreKind::Redis);
    assert_eq!(c.store.key_prefix, "sb");
    assert!(c.cluster.peer_nets[0].contains("127.0.0.2".parse().unwrap()));
    fails_at("[cluster]\nnode_id = \"a b\"\n", "\"a b\"", 0, "node_id");
    fails_at(
        "[cluster]\nadvertise = \"host\"\n",
        "\"host\"",
        0,
        "host:port",
    );
    fails_at(
        "[cluster]\nsecret = \"short\"\n",
        "\"short\"",
        0,
        "16 characters",
    );
    fails_at("[cluster]\npeers_cidrs = [\"x\"]\n", "\"x\"", 0, "");
}

#[test]
fn account_rules() {
    let b = base();
    fails_at(
        &edit(&b, &format!("sid = \"{AC}\""), "sid = \"AC123\""),
        "\"AC123\"",
        0,
        "AC followed by 32",
    );
    fails_at(
        &edit(&b, "auth_token = \"t\"", "auth_token = \"\""),
        "\"\"",
        0,
        "auth_token must not be empty",
    );
    fails_at(
        &edit(
            &b,
            "auth_token = \"t\"",
            "auth_token = \"t\"\npresence_callback = \"ftp://x\"",
        ),
        "\"ftp://x\"",
        0,
        "http:// or https://",
    );
    fails_at(
        &edit(&b, "SK0123456789abcdef0123456789abcdef", "SKnope"),
        "\"SKnope\"",
        0,
        "SK followed by 32",
    );
    fails_at(
        &edit(&b, "secret = \"s\"", "secret = \"\""),
        "\"\"",
        0,
        "secret must not be empty",
    );
    // Duplicate account, reported at the second one.
    let dup = format!("{b}\n[[accounts]]\nsid = \"{AC}\"\nauth_token = \"u\"\n");
    fails_at(&dup, &format!("\"{AC}\""), 4, "defined twice");
    // Duplicate API key across accounts.
    let dup_key = format!(
        "{b}\n[[accounts]]\nsid = \"AC1123456789abcdef0123456789abcdef\"\nauth_token = \"u\"\n\
         [[accounts.api_keys]]\nsid = \"SK0123456789abcdef0123456789abcdef\"\nsecret = \"x\"\n"
    );
    fails_at(
        &dup_key,
        "\"SK0123456789abcdef0123456789abcdef\"",
        1,
        "API key `SK0123456789abcdef0123456789abcdef` is defined twice",
    );
}

#[test]
fn issuer_rules() {
    let b = base();
    let with = |issuer: &str| format!("{b}\n[[accounts.issuers]]\n{issuer}");
    let ok = with(
        "iss = \"https://idp\"\nalgorithms = [\"ES256\", \"EdDSA\", \"RS256\"]\njwks_file = \"k.json\"\n",
    );
    let c = parse("t.toml", &ok).unwrap_or_else(|e| panic!("{e}"));
    // The issuer table follows the api_keys one, so it belongs to the (only) account.
    assert_eq!(
        c.accounts[0].issuers[0].algorithms,
        vec![Algorithm::Es256, Algorithm::EdDsa, Algorithm::Rs256]
    );
    fails_at(
        &with("iss = \"\"\nalgorithms = [\"ES256\"]\njwks_file = \"k\"\n"),
        "\"\"",
        0,
        "iss must not be empty",
    );
    fails_at(
        &with("iss = \"i\"\nalgorithms = []\njwks_file = \"k\"\n"),
        "[]",
        0,
        "at least one algorithm",
    );
    fails_at(
        &with("iss = \"i\"\nalgorithms = [\"HS256\"]\njwks_file = \"k\"\n"),
        "\"HS256\"",
        0,
        "unknown variant `HS256`",
    );
    fails_at(
        &with(
            "iss = \"i\"\nalgorithms = [\"ES256\"]\njwks_file = \"k\"\npublic_key_pem = \"-----BEGIN PUBLIC KEY-----\"\n",
        ),
        "\"k\"",
        0,
        "not both",
    );
    fails_at(
        &with("iss = \"i\"\nalgorithms = [\"ES256\"]\n"),
        "[[accounts.issuers]]",
        0,
        "public_key_pem or jwks_file",
    );
    fails_at(
        &with("iss = \"i\"\nalgorithms = [\"ES256\"]\npublic_key_pem = \"abc\"\n"),
        "\"abc\"",
        0,
        "PEM block",
    );
}

#[test]
fn application_rules() {
    let b = base();
    fails_at(
        &edit(&b, &format!("sid = \"{AP}\""), "sid = \"APx\""),
        "\"APx\"",
        0,
        "AP followed by 32",
    );
    // Unknown account: the value of `account` in [[applications]].
    let other = "AC9999999999999999999999999999999f";
    let t = edit(
        &b,
        &format!("sid = \"{AP}\"\naccount = \"{AC}\""),
        &format!("sid = \"{AP}\"\naccount = \"{other}\""),
    );
    fails_at(
        &t,
        &format!("\"{other}\""),
        0,
        &format!("no account `{other}`"),
    );
    fails_at(
        &edit(
            &b,
            "twiml = \"<Response/>\"",
            "twiml = \"<Response/>\"\nvoice_url = \"https://x/v\"",
        ),
        "\"<Response/>\"",
        0,
        "not both",
    );
    fails_at(
        &edit(&b, "twiml = \"<Response/>\"", "friendly_name = \"n\""),
        "[[applications]]",
        0,
        "needs voice_url or twiml",
    );
    fails_at(
        &edit(&b, "twiml = \"<Response/>\"", "twiml = \"  \""),
        "\"  \"",
        0,
        "twiml must not be empty",
    );
    fails_at(
        &edit(&b, "twiml = \"<Response/>\"", "voice_url = \"example.com\""),
        "\"example.com\"",
        0,
        "not an http",
    );
    fails_at(
        &edit(
            &b,
            "twiml = \"<Response/>\"",
            "voice_url = \"https://a/\"\nvoice_fallback_url = \"b\"",
        ),
        "\"b\"",
        0,
        "not an http",
    );
    fails_at(
        &edit(
            &b,
            "twiml = \"<Response/>\"",
            "twiml = \"<Response/>\"\nstatus_callback = \"c\"",
        ),
        "\"c\"",
        0,
        "not an http",
    );
    let dup = format!(
        "{b}\n[[applications]]\nsid = \"{AP}\"\naccount = \"{AC}\"\ntwiml = \"<Response/>\"\n"
    );
    fails_at(&dup, &format!("\"{AP}\""), 2, "defined twice");
    let get = edit(
        &b,
        "twiml = \"<Response/>\"",
        "voice_url = \"https://a/\"\nvoice_method = \"GET\"",
    );
    assert_eq!(
        parse("t.toml", &get).expect("valid").applications[0].voice_method,
        HttpMethod::Get
    );
}

#[test]
fn trunk_rules() {
    let b = base();
    fails_at(
        &edit(&b, "name = \"carrier\"", "name = \"\""),
        "\"\"",
        0,
        "name must not be empty",
    );
    let t = edit(
        &b,
        "name = \"carrier\"\naccount = \"AC0",
        "name = \"carrier\"\naccount = \"AC1",
    );
    fails_at(&t, "\"AC1", 0, "no account");
    fails_at(
        &edit(&b, "[\"127.0.0.0/8\"]", "[\"127.0.0.0/8\", \"10.0.0.1/8\"]"),
        "\"10.0.0.1/8\"",
        0,
        "host bits",
    );
    fails_at(
        &edit(&b, "[\"127.0.0.0/8\"]", "[\"::1/129\"]"),
        "\"::1/129\"",
        0,
        "0..=128",
    );
    fails_at(
        &edit(&b, "[\"127.0.0.0/8\"]", "[\"localhost\"]"),
        "\"localhost\"",
        0,
        "not a CIDR",
    );
    fails_at(
        &edit(&b, "\"sip:127.0.0.1:5080\"", "\"127.0.0.1:5080\""),
        "\"127.0.0.1:5080\"",
        0,
        "sip: or sips:",
    );
    fails_at(
        &edit(
            &b,
            "outbound_uri = \"sip:127.0.0.1:5080\"",
            "outbound_uri = \"sip:x\"\nusername = \"u\"",
        ),
        "\"u\"",
        0,
        "needs a password",
    );
    fails_at(
        &edit(
            &b,
            "outbound_uri = \"sip:127.0.0.1:5080\"",
            "outbound_uri = \"sip:x\"\npassword = \"p\"",
        ),
        "\"p\"",
        0,
        "needs a username",
    );
    fails_at(
        &edit(
            &b,
            "outbound_uri = \"sip:127.0.0.1:5080\"",
            "outbound_uri = \"sip:x\"\nrealm = \"r\"",
        ),
        "\"r\"",
        0,
        "realm only",
    );
    let dup = format!("{b}\n[[trunks]]\nname = \"carrier\"\naccount = \"{AC}\"\n");
    fails_at(&dup, "\"carrier\"", 2, "trunk `carrier` is defined twice");
    let v6 = edit(
        &b,
        "[\"127.0.0.0/8\"]",
        "[\"2001:db8::/32\", \"0.0.0.0/0\"]",
    );
    assert_eq!(
        parse("t.toml", &v6).expect("valid").trunks[0]
            .inbound_nets
            .len(),
        2
    );
}

#[test]
fn number_rules() {
    let b = base();
    fails_at(
        &edit(&b, "\"+15550100001\"", "\"15550100001\""),
        "\"15550100001\"",
        0,
        "E.164",
    );
    fails_at(
        &edit(&b, "\"+15550100001\"", "\"+0555\""),
        "\"+0555\"",
        0,
        "E.164",
    );
    let t = edit(
        &b,
        &format!("application = \"{AP}\""),
        "application = \"AP1\"",
    );
    fails_at(&t, "\"AP1\"", 0, "no application `AP1`");
    let t = edit(
        &b,
        "number = \"+15550100001\"",
        "number = \"+15550100001\"\ntrunk = \"nope\"",
    );
    fails_at(&t, "\"nope\"", 0, "no trunk `nope`");
    let dup = format!("{b}\n[[numbers]]\nnumber = \"+15550100001\"\napplication = \"{AP}\"\n");
    fails_at(&dup, "\"+15550100001\"", 1, "listed twice");
}

#[test]
fn route_rules() {
    let b = base();
    fails_at(
        &edit(&b, "pattern = \"+\"", "pattern = \"+1x\""),
        "\"+1x\"",
        0,
        "not a route pattern",
    );
    fails_at(
        &edit(&b, "trunk = \"carrier\"", "trunk = \"other\""),
        "\"other\"",
        0,
        "no trunk `other`",
    );
    fails_at(
        &edit(&b, "outbound_uri = \"sip:127.0.0.1:5080\"\n", ""),
        "\"carrier\"",
        1,
        "has no outbound_uri",
    );
    // A route of one account naming another account's trunk (toll fraud through the
    // other account's carrier and credentials) is refused where its account is written.
    let other = "AC00000000000000000000000000000009";
    fails_at(
        &edit(
            &b,
            "trunk = \"carrier\"\n",
            &format!("trunk = \"carrier\"\naccount = \"{other}\"\n"),
        ),
        &format!("\"{other}\""),
        0,
        &format!("route of account {other} names trunk `carrier` of account {AC}"),
    );
    let t = edit(
        &b,
        "trunk = \"carrier\"\n",
        &format!("trunk = \"carrier\"\naccount = \"{AC}\"\nshared = true\n"),
    );
    let c = parse("t.toml", &t).expect("own account");
    assert!(c.routes[0].shared);
    let t = edit(&b, "pattern = \"+\"", "pattern = \"*\"\npriority = 2");
    assert_eq!(
        parse("t.toml", &t).expect("valid").routes[0].priority,
        Some(2)
    );
}

#[test]
fn sip_user_rules() {
    let b = base();
    fails_at(
        &edit(&b, "username = \"alice\"", "username = \"a@b\""),
        "\"a@b\"",
        0,
        "username `a@b`",
    );
    fails_at(
        &edit(&b, "password = \"pw\"", "password = \"\""),
        "\"\"",
        0,
        "password must not be empty",
    );
    fails_at(
        &edit(
            &b,
            "password = \"pw\"",
            "password = \"pw\"\nha1 = \"0123456789abcdef0123456789abcdef\"",
        ),
        "\"0123456789abcdef0123456789abcdef\"",
        0,
        "not both",
    );
    fails_at(
        &edit(&b, "password = \"pw\"\n", ""),
        "[[sip_users]]",
        0,
        "needs password or ha1",
    );
    fails_at(
        &edit(&b, "password = \"pw\"", "ha1 = \"XYZ\""),
        "\"XYZ\"",
        0,
        "32 lowercase hex",
    );
    fails_at(
        &edit(&b, "identity = \"alice\"", "identity = \"al ice\""),
        "\"al ice\"",
        0,
        "identity `al ice`",
    );
    let t = edit(
        &b,
        "identity = \"alice\"\naccount = \"AC0",
        "identity = \"alice\"\naccount = \"AC2",
    );
    fails_at(&t, "\"AC2", 0, "no account");
    let dup = format!(
        "{b}\n[[sip_users]]\nusername = \"alice\"\npassword = \"x\"\nidentity = \"bob\"\naccount = \"{AC}\"\n"
    );
    fails_at(&dup, "\"alice\"", 2, "SIP user `alice` is defined twice");
    let ha1 = edit(
        &b,
        "password = \"pw\"",
        "ha1 = \"0123456789abcdef0123456789abcdef\"",
    );
    assert!(parse("t.toml", &ha1).is_ok());
}

#[test]
fn webhook_rules() {
    fails_at(
        "[webhooks]\nconnect_timeout_ms = 0\n",
        "0",
        0,
        "connect_timeout_ms",
    );
    fails_at("[webhooks]\ntimeout_ms = 0\n", "0", 0, "timeout_ms must");
    fails_at("[webhooks]\nmax_body_bytes = 0\n", "0", 0, "max_body_bytes");
    fails_at(
        "[webhooks]\nallow_private_networks = [\"10.0.0.0/8\", \"192.168.0.0\"]\n",
        "\"192.168.0.0\"",
        0,
        "not a CIDR",
    );
    fails_at("[webhooks]\nmax_redirects = -1\n", "-1", 0, "");
}

#[test]
fn calls_section() {
    let c = parse(
        "t.toml",
        "[calls]\ncdr_file = \"/var/log/switchboard/cdr.jsonl\"\nkeep_finished = 0\nmax_concurrent = 5\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        c.calls.cdr_file.as_deref(),
        Some(Path::new("/var/log/switchboard/cdr.jsonl"))
    );
    assert_eq!(c.calls.keep_finished, 0);
    assert_eq!(c.calls.max_concurrent, 5);
    // Only what is given changes; the rest keeps its default.
    let c = parse("t.toml", "[calls]\nmax_concurrent = 7\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.calls.keep_finished, 10_000);
    assert_eq!(c.calls.cdr_file, None);

    fails_at(
        "[calls]\ncdr_fil = \"x\"\n",
        "cdr_fil",
        0,
        "unknown field `cdr_fil`",
    );
    fails_at(
        "[calls]\ncdr_file = \"\"\n",
        "\"\"",
        0,
        "cdr_file must not be empty",
    );
    fails_at(
        "[calls]\ncdr_file = \"logs/\"\n",
        "\"logs/\"",
        0,
        "names a directory",
    );
    fails_at("[calls]\ncdr_file = 3\n", "3", 0, "invalid type");
    fails_at(
        "[calls]\nmax_concurrent = 0\n",
        "0",
        0,
        "max_concurrent must be at least 1",
    );
    fails_at("[calls]\nmax_concurrent = -1\n", "-1", 0, "");
    fails_at(
        "[calls]\nkeep_finished = 1000001\n",
        "1000001",
        0,
        "keep_finished must be 0 to 1000000",
    );
}

#[test]
fn media_section_is_checked() {
    fails_at(
        "[media]\nthreads = 65\n",
        "65",
        0,
        "threads must be 0 (one per core) to 64",
    );
    fails_at(
        "[media]\ntimeout_secs = 0\n",
        "0",
        0,
        "timeout_secs must be 1 to 86400",
    );
    fails_at(
        "[media]\nrecordings_dir = \"\"\n",
        "\"\"",
        0,
        "recordings_dir must not be empty",
    );
    fails_at(
        "[media]\nmax_play_bytes = 0\n",
        "0",
        0,
        "max_play_bytes must be greater than 0",
    );
    fails_at("[media]\nthreds = 2\n", "threds", 0, "unknown field");
}

#[test]
fn first_problem_in_file_order_is_reported() {
    // Two problems; the one higher in the file wins regardless of check order.
    let text = "[[routes]]\npattern = \"x\"\ntrunk = \"none\"\n\n[server]\nrealm = \"\"\n";
    fails_at(text, "\"x\"", 0, "not a route pattern");
}

#[test]
fn read_error_names_the_file() {
    let err = load(Path::new("/nonexistent/switchboard.toml")).expect_err("missing file");
    let msg = err.to_string();
    assert!(
        msg.starts_with("/nonexistent/switchboard.toml: cannot read: "),
        "{msg}"
    );
    assert_eq!(err.class(), "read");
    assert_eq!(err.position(), None);
}

#[test]
fn tls_and_websocket_rules() {
    fails_at(
        "[server]\nsip_tls_listen = [\"127.0.0.1:5061\"]\n",
        "[\"127.0.0.1:5061\"]",
        0,
        "need tls_cert and tls_key",
    );
    fails_at(
        "[server]\nwss_listen = [\"127.0.0.1:7443\"]\n",
        "[\"127.0.0.1:7443\"]",
        0,
        "need tls_cert and tls_key",
    );
    fails_at(
        "[server]\ntls_cert = \"c.pem\"\n",
        "\"c.pem\"",
        0,
        "go together",
    );
    fails_at(
        "[server]\nws_origins = [\"https://app.example/\"]\n",
        "\"https://app.example/\"",
        0,
        "scheme://host",
    );
    let c = parse(
        "t.toml",
        "[server]\nws_listen = [\"127.0.0.1:5066\"]\nws_origins = [\"https://app.example\"]\n",
    )
    .expect("plain ws needs no certificate");
    assert_eq!(c.server.ws_listen.len(), 1);
}
