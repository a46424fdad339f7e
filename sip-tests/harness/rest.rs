//! The REST API as a customer's code calls it: Basic `AccountSid:AuthToken`, form bodies,
//! JSON back. A plain `TcpStream` with `Connection: close`, no HTTP library.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;

use super::Switch;

/// One request to `/2010-04-01/Accounts/{account}/{path}`: (status, JSON body or Null,
/// the raw response head).
pub fn call_as(
    sw: &Switch,
    account: &str,
    auth_token: &str,
    method: &str,
    path: &str,
    form: &str,
) -> (u16, Value, String) {
    let full = format!("/2010-04-01/Accounts/{account}/{path}");
    http(sw, method, &full, account, auth_token, form)
}

/// One request to any `path` with Basic `user:pass`: (status, JSON body or Null, head).
pub fn http(
    sw: &Switch,
    method: &str,
    path: &str,
    user: &str,
    pass: &str,
    form: &str,
) -> (u16, Value, String) {
    let mut s = TcpStream::connect(sw.http_addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {auth}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
        sw.http_addr(),
        form.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("HTTP response");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (
        status,
        serde_json::from_str(body).unwrap_or(Value::Null),
        head.to_string(),
    )
}

/// Form-encodes `pairs` (percent-encoding everything but unreserved characters).
pub fn form(pairs: &[(&str, &str)]) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `GET path` (absolute, e.g. `/2010-04-01/…/Recordings/RE….wav`) with Basic auth: the
/// status and the body's bytes (audio, not JSON).
pub fn get_bytes(sw: &Switch, user: &str, pass: &str, path: &str) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(sw.http_addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic {auth}\r\nConnection: close\r\n\r\n",
        sw.http_addr()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP response");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, raw[split + 4..].to_vec())
}
