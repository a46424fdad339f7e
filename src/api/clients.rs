//! `Clients.json` and `Clients/{Identity}.json`: registered clients and their presence.
//!
//! A client's status comes from `Presence`. Where the location store disagrees, because
//! bindings expired seconds ago and the sweep has not run yet, or presence was never told,
//! the store's live bindings win, so status and contacts never contradict each other: no
//! live binding → `offline`; live bindings but presence `offline` → `available`.
//!
//! An identity never seen is `offline` with no contacts and `status_changed_at: null` (200,
//! not 404: "offline" is an answer about it).

use std::collections::BTreeMap;

use hyper::{Response, StatusCode};
use serde::Serialize;

use super::{ApiState, Body, reply};
use crate::registrar::location::{AorKey, Binding};
use crate::registrar::presence::{PresenceState, PresenceStatus};
use crate::sip::peer::Transport;
use crate::time::rfc3339;

/// `PageSize` when none is given, and the most allowed (Twilio's values).
const DEFAULT_PAGE_SIZE: usize = 50;
const MAX_PAGE_SIZE: usize = 1000;

/// What every handler here needs.
pub(super) struct Ctx<'a> {
    pub account: &'a str,
    pub state: &'a ApiState,
    pub now: u64,
}

#[derive(Serialize)]
struct Client<'a> {
    identity: &'a str,
    account_sid: &'a str,
    status: PresenceStatus,
    status_changed_at: Option<String>,
    contacts: Vec<Contact<'a>>,
    uri: String,
}

#[derive(Serialize)]
struct Contact<'a> {
    uri: &'a str,
    transport: &'static str,
    source: String,
    /// Seconds left.
    expires: u64,
    expires_at: String,
    registered_at: String,
    user_agent: Option<&'a str>,
    instance: Option<&'a str>,
    reg_id: Option<u32>,
    q: Option<f32>,
    path: Vec<&'a str>,
}

#[derive(Serialize)]
struct Page<'a> {
    clients: Vec<Client<'a>>,
    page: usize,
    page_size: usize,
    start: usize,
    end: usize,
    uri: String,
    first_page_uri: String,
    next_page_uri: Option<String>,
    previous_page_uri: Option<String>,
}

fn transport_name(t: Transport) -> &'static str {
    t.name()
}

/// `+sip.instance` as stored is `"<urn:uuid:…>"`; show the URN.
fn bare_instance(i: &str) -> &str {
    let i = i.trim_matches('"');
    i.strip_prefix('<')
        .and_then(|i| i.strip_suffix('>'))
        .unwrap_or(i)
}

fn contact(b: &Binding, now: u64) -> Contact<'_> {
    Contact {
        uri: &b.contact,
        transport: transport_name(b.transport),
        source: b.source.to_string(),
        expires: b.seconds_left(now),
        expires_at: rfc3339(b.expires_at),
        registered_at: rfc3339(b.registered_at),
        user_agent: b.user_agent.as_deref(),
        instance: b.instance.as_deref().map(bare_instance),
        reg_id: b.reg_id,
        q: b.q,
        path: b.path.iter().map(|p| &**p).collect(),
    }
}

fn client<'a>(
    ctx: &Ctx<'a>,
    identity: &'a str,
    presence: PresenceState,
    bindings: &'a [Binding],
) -> Client<'a> {
    let status = match (bindings.is_empty(), presence.status) {
        (true, _) => PresenceStatus::Offline,
        (false, PresenceStatus::Offline) => PresenceStatus::Available,
        (false, s) => s,
    };
    Client {
        identity,
        account_sid: ctx.account,
        status,
        status_changed_at: presence.changed_at.map(rfc3339),
        contacts: bindings.iter().map(|b| contact(b, ctx.now)).collect(),
        uri: client_uri(ctx.account, identity),
    }
}

fn base_uri(account: &str) -> String {
    format!("/2010-04-01/Accounts/{account}/Clients")
}

fn client_uri(account: &str, identity: &str) -> String {
    format!(
        "{}/{}.json",
        base_uri(account),
        crate::percent::encode(identity)
    )
}

/// `GET Clients/{Identity}.json`
pub(super) fn fetch(ctx: &Ctx<'_>, identity: &str) -> Response<Body> {
    let key = AorKey::new(ctx.account, identity);
    let bindings = ctx.state.store.lookup(&key, ctx.now);
    let presence = ctx.state.presence.get(&key);
    reply::json(StatusCode::OK, &client(ctx, identity, presence, &bindings))
}

/// `GET Clients.json[?PageSize=N&Page=P]`: identities with a live binding or a recorded
/// presence, sorted by identity.
pub(super) fn list(ctx: &Ctx<'_>, query: Option<&str>) -> Response<Body> {
    let (mut page, mut page_size): (usize, usize) = (0, DEFAULT_PAGE_SIZE);
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        // Unparseable values fall back to the defaults.
        match &*k {
            "Page" => page = v.parse().unwrap_or(0),
            "PageSize" => {
                page_size = v
                    .parse()
                    .unwrap_or(DEFAULT_PAGE_SIZE)
                    .clamp(1, MAX_PAGE_SIZE);
            }
            _ => {}
        }
    }

    // Union of both sources, by identity.
    let mut all: BTreeMap<Box<str>, (PresenceState, Vec<Binding>)> = BTreeMap::new();
    for (identity, state) in ctx.state.presence.list(ctx.account) {
        all.insert(identity, (state, Vec::new()));
    }
    for (identity, bindings) in ctx.state.store.list(ctx.account, ctx.now) {
        all.entry(identity)
            .or_insert((PresenceState::UNKNOWN, Vec::new()))
            .1 = bindings;
    }

    let start = page.saturating_mul(page_size);
    let clients: Vec<Client<'_>> = all
        .iter()
        .skip(start)
        .take(page_size)
        .map(|(identity, (presence, bindings))| client(ctx, identity, *presence, bindings))
        .collect();
    let base = base_uri(ctx.account);
    let page_uri = |p: usize| format!("{base}.json?PageSize={page_size}&Page={p}");
    let more = all.len() > start.saturating_add(clients.len());
    let doc = Page {
        page,
        page_size,
        start,
        end: start.saturating_add(clients.len().saturating_sub(1)),
        uri: page_uri(page),
        first_page_uri: page_uri(0),
        next_page_uri: more.then(|| page_uri(page + 1)),
        previous_page_uri: (page > 0).then(|| page_uri(page - 1)),
        clients,
    };
    reply::json(StatusCode::OK, &doc)
}
