//! The REGISTER rules against `MemoryStore`, one rule per test.

use super::*;
use crate::registrar::presence::PresenceStatus;
use crate::sip::peer::Transport;

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";

fn key(identity: &str) -> AorKey {
    AorKey::new(ACCOUNT, identity)
}

fn binding(contact: &str, call_id: &str, cseq: u32, expires_at: u64) -> Binding {
    Binding {
        contact: contact.into(),
        expires_at,
        call_id: call_id.into(),
        cseq,
        instance: None,
        reg_id: None,
        path: Box::default(),
        source: "198.51.100.7:40000".parse().unwrap(),
        transport: Transport::Udp,
        conn: None,
        user_agent: Some("Test/1.0".into()),
        q: None,
        registered_at: 0,
        edge: None,
    }
}

fn flow(contact: &str, instance: &str, reg_id: u32, call_id: &str, cseq: u32) -> Binding {
    Binding {
        instance: Some(instance.into()),
        reg_id: Some(reg_id),
        ..binding(contact, call_id, cseq, 3600)
    }
}

fn remove(contact: &str, call_id: &str, cseq: u32) -> ContactUpdate {
    ContactUpdate::Remove {
        contact: contact.into(),
        instance: None,
        reg_id: None,
        call_id: call_id.into(),
        cseq,
        flow: None,
    }
}

fn request(
    identity: &str,
    call_id: &str,
    cseq: u32,
    updates: Vec<ContactUpdate>,
) -> RegisterRequest {
    RegisterRequest {
        key: key(identity),
        call_id: call_id.into(),
        cseq,
        wildcard_remove: false,
        updates,
        max_contacts: 10,
        now: 100,
    }
}

/// Register `b` for alice (its own Call-ID and CSeq) at time 100.
fn add(store: &MemoryStore, b: Binding) -> Result<RegisterOutcome, RegisterError> {
    let (call_id, cseq) = (b.call_id.clone(), b.cseq);
    store.register_now(request(
        "alice",
        &call_id,
        cseq,
        vec![ContactUpdate::Add(b)],
    ))
}

fn contacts(bindings: &[Binding]) -> Vec<&str> {
    bindings.iter().map(|b| &*b.contact).collect()
}

#[test]
fn add_refresh_and_query() {
    let store = MemoryStore::new();
    let out = add(&store, binding("sip:alice@192.0.2.1", "c1", 1, 3700)).unwrap();
    assert_eq!(contacts(&out.bindings), ["sip:alice@192.0.2.1"]);
    assert_eq!(out.presence_changed, Some(PresenceStatus::Available));

    // Refresh with a higher CSeq replaces, keeping registered_at from the first one.
    let mut refreshed = binding("SIP:alice@192.0.2.1", "c1", 2, 3800);
    refreshed.registered_at = 90;
    let first = store.lookup(&key("alice"), 100)[0].registered_at;
    let out = add(&store, refreshed).unwrap();
    assert_eq!(out.bindings.len(), 1);
    assert_eq!(out.bindings[0].expires_at, 3800);
    assert_eq!(out.bindings[0].cseq, 2);
    assert_eq!(out.bindings[0].registered_at, first.min(90));
    assert_eq!(out.presence_changed, None);

    // A query (no Contact) changes nothing and lists what is there.
    let out = store
        .register_now(request("alice", "c9", 1, vec![]))
        .unwrap();
    assert_eq!(contacts(&out.bindings), ["SIP:alice@192.0.2.1"]);
    assert_eq!(store.binding_count(), 1);
}

#[test]
fn same_call_id_needs_higher_cseq() {
    let store = MemoryStore::new();
    add(&store, binding("sip:alice@192.0.2.1", "c1", 5, 3700)).unwrap();
    // Equal and lower CSeq with the same Call-ID: rejected, nothing changes.
    for cseq in [5, 4] {
        let err = add(&store, binding("sip:alice@192.0.2.1", "c1", cseq, 9999)).unwrap_err();
        assert_eq!(err, RegisterError::OutOfOrder);
    }
    assert_eq!(store.lookup(&key("alice"), 100)[0].expires_at, 3700);
    // Another Call-ID replaces whatever its CSeq.
    let out = add(&store, binding("sip:alice@192.0.2.1", "other", 1, 4000)).unwrap();
    assert_eq!(out.bindings.len(), 1);
    assert_eq!(&*out.bindings[0].call_id, "other");
}

#[test]
fn out_of_order_rejects_the_whole_request() {
    let store = MemoryStore::new();
    add(&store, binding("sip:a@192.0.2.1", "c1", 5, 3700)).unwrap();
    // The first contact is new, the second is stale: neither applies.
    let req = request(
        "alice",
        "c1",
        3,
        vec![
            ContactUpdate::Add(binding("sip:b@192.0.2.2", "c1", 3, 3700)),
            ContactUpdate::Add(binding("sip:a@192.0.2.1", "c1", 3, 3700)),
        ],
    );
    assert_eq!(store.register_now(req), Err(RegisterError::OutOfOrder));
    assert_eq!(
        contacts(&store.lookup(&key("alice"), 100)),
        ["sip:a@192.0.2.1"]
    );
    assert_eq!(store.binding_count(), 1);
}

#[test]
fn expires_zero_removes_one() {
    let store = MemoryStore::new();
    add(&store, binding("sip:alice@192.0.2.1", "c1", 1, 3700)).unwrap();
    add(&store, binding("sip:alice@192.0.2.2", "c2", 1, 3700)).unwrap();
    let out = store
        .register_now(request(
            "alice",
            "c2",
            2,
            vec![remove("sip:alice@192.0.2.2", "c2", 2)],
        ))
        .unwrap();
    assert_eq!(contacts(&out.bindings), ["sip:alice@192.0.2.1"]);
    assert_eq!(out.presence_changed, None);
    // Removing the last one: offline, and the AOR is gone.
    let out = store
        .register_now(request(
            "alice",
            "c1",
            2,
            vec![remove("sip:alice@192.0.2.1", "c1", 2)],
        ))
        .unwrap();
    assert!(out.bindings.is_empty());
    assert_eq!(out.presence_changed, Some(PresenceStatus::Offline));
    assert_eq!(store.binding_count(), 0);
    assert!(store.list(ACCOUNT, 100).is_empty());
    // Removing what is not there is fine.
    let out = store
        .register_now(request(
            "alice",
            "c1",
            3,
            vec![remove("sip:alice@192.0.2.1", "c1", 3)],
        ))
        .unwrap();
    assert!(out.bindings.is_empty());
    assert_eq!(out.presence_changed, None);
}

#[test]
fn stale_removal_is_out_of_order() {
    let store = MemoryStore::new();
    add(&store, binding("sip:alice@192.0.2.1", "c1", 7, 3700)).unwrap();
    let req = request(
        "alice",
        "c1",
        6,
        vec![remove("sip:alice@192.0.2.1", "c1", 6)],
    );
    assert_eq!(store.register_now(req), Err(RegisterError::OutOfOrder));
    assert_eq!(store.lookup(&key("alice"), 100).len(), 1);
}

#[test]
fn wildcard_removes_all_in_order_only() {
    let store = MemoryStore::new();
    add(&store, binding("sip:alice@192.0.2.1", "c1", 4, 3700)).unwrap();
    add(&store, binding("sip:alice@192.0.2.2", "c2", 9, 3700)).unwrap();
    let wildcard = |call_id: &str, cseq| RegisterRequest {
        wildcard_remove: true,
        ..request("alice", call_id, cseq, vec![])
    };
    // c1 with CSeq 4 is not higher than the stored 4: nothing removed.
    assert_eq!(
        store.register_now(wildcard("c1", 4)),
        Err(RegisterError::OutOfOrder)
    );
    assert_eq!(store.lookup(&key("alice"), 100).len(), 2);
    // c1 with 5: higher than c1's binding, and c2's is from another Call-ID.
    let out = store.register_now(wildcard("c1", 5)).unwrap();
    assert!(out.bindings.is_empty());
    assert_eq!(out.presence_changed, Some(PresenceStatus::Offline));
    assert_eq!(store.binding_count(), 0);
    // On an empty AOR it is a no-op.
    assert!(
        store
            .register_now(wildcard("c1", 6))
            .unwrap()
            .bindings
            .is_empty()
    );
}

#[test]
fn instance_and_reg_id_replace_their_own_flow() {
    let store = MemoryStore::new();
    let dev = "<urn:uuid:00000000-0000-1000-8000-000a95a0e128>";
    add(&store, flow("sip:alice@192.0.2.1;ob", dev, 1, "c1", 1)).unwrap();
    // Second flow of the same device, same URI: a separate binding.
    let out = add(&store, flow("sip:alice@192.0.2.1;ob", dev, 2, "c2", 1)).unwrap();
    assert_eq!(out.bindings.len(), 2);
    // The device re-registers flow 1 from a new address and Call-ID: replaces flow 1 only.
    let out = add(&store, flow("sip:alice@203.0.113.5;ob", dev, 1, "c3", 1)).unwrap();
    let mut got: Vec<(u32, &str)> = out
        .bindings
        .iter()
        .map(|b| (b.reg_id.unwrap(), &*b.contact))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (1, "sip:alice@203.0.113.5;ob"),
            (2, "sip:alice@192.0.2.1;ob")
        ]
    );
    // Another device with the same reg-id is another binding.
    let other = "<urn:uuid:11111111-0000-1000-8000-000a95a0e128>";
    let out = add(&store, flow("sip:alice@192.0.2.9;ob", other, 1, "c4", 1)).unwrap();
    assert_eq!(out.bindings.len(), 3);
    // Removing by instance and reg-id.
    let req = request(
        "alice",
        "c3",
        2,
        vec![ContactUpdate::Remove {
            contact: "sip:whatever@192.0.2.1".into(),
            instance: Some(dev.into()),
            reg_id: Some(1),
            call_id: "c3".into(),
            cseq: 2,
            flow: None,
        }],
    );
    assert_eq!(store.register_now(req).unwrap().bindings.len(), 2);
    assert_eq!(store.binding_count(), 2);
}

#[test]
fn instance_without_reg_id_replaces_its_previous_contact() {
    let store = MemoryStore::new();
    let dev = "<urn:uuid:22222222-0000-1000-8000-000a95a0e128>";
    let at = |contact: &str, call_id: &str| Binding {
        instance: Some(dev.into()),
        ..binding(contact, call_id, 1, 3700)
    };
    add(&store, at("sip:alice@192.0.2.1", "c1")).unwrap();
    let out = add(&store, at("sip:alice@192.0.2.77", "c2")).unwrap();
    assert_eq!(contacts(&out.bindings), ["sip:alice@192.0.2.77"]);
}

#[test]
fn max_contacts_counts_after_replacement() {
    let store = MemoryStore::new();
    let limited = |b: Binding| {
        let (call_id, cseq) = (b.call_id.clone(), b.cseq);
        RegisterRequest {
            max_contacts: 2,
            ..request("alice", &call_id, cseq, vec![ContactUpdate::Add(b)])
        }
    };
    store
        .register_now(limited(binding("sip:a@192.0.2.1", "c1", 1, 3700)))
        .unwrap();
    store
        .register_now(limited(binding("sip:b@192.0.2.2", "c2", 1, 3700)))
        .unwrap();
    // A third: refused, nothing changed.
    assert_eq!(
        store.register_now(limited(binding("sip:c@192.0.2.3", "c3", 1, 3700))),
        Err(RegisterError::TooManyContacts { max: 2 })
    );
    assert_eq!(store.binding_count(), 2);
    // Refreshing one at the limit is fine.
    store
        .register_now(limited(binding("sip:a@192.0.2.1", "c1", 2, 3900)))
        .unwrap();
    // So is swapping one for another in one request.
    let req = RegisterRequest {
        max_contacts: 2,
        ..request(
            "alice",
            "c2",
            2,
            vec![
                remove("sip:b@192.0.2.2", "c2", 2),
                ContactUpdate::Add(binding("sip:c@192.0.2.3", "c2", 2, 3700)),
            ],
        )
    };
    let out = store.register_now(req).unwrap();
    assert_eq!(
        contacts(&out.bindings),
        ["sip:a@192.0.2.1", "sip:c@192.0.2.3"]
    );
    // A lowered limit does not block refreshing what is already there.
    let req = RegisterRequest {
        max_contacts: 1,
        ..request(
            "alice",
            "c1",
            3,
            vec![ContactUpdate::Add(binding(
                "sip:a@192.0.2.1",
                "c1",
                3,
                4000,
            ))],
        )
    };
    assert_eq!(store.register_now(req).unwrap().bindings.len(), 2);
}

#[test]
fn duplicate_contact_in_one_request_is_not_out_of_order() {
    let store = MemoryStore::new();
    let req = request(
        "alice",
        "c1",
        1,
        vec![
            ContactUpdate::Add(binding("sip:a@192.0.2.1", "c1", 1, 3700)),
            ContactUpdate::Add(binding("sip:a@192.0.2.1", "c1", 1, 3800)),
        ],
    );
    let out = store.register_now(req).unwrap();
    assert_eq!(out.bindings.len(), 1);
    assert_eq!(out.bindings[0].expires_at, 3800);
}

#[test]
fn lookup_and_list_ignore_expired() {
    let store = MemoryStore::new();
    add(&store, binding("sip:alice@192.0.2.1", "c1", 1, 150)).unwrap();
    add(&store, binding("sip:alice@192.0.2.2", "c2", 1, 300)).unwrap();
    store
        .register_now(request(
            "bob",
            "c3",
            1,
            vec![ContactUpdate::Add(binding(
                "sip:bob@192.0.2.3",
                "c3",
                1,
                150,
            ))],
        ))
        .unwrap();
    assert_eq!(store.lookup(&key("alice"), 149).len(), 2);
    assert_eq!(
        contacts(&store.lookup(&key("alice"), 150)),
        ["sip:alice@192.0.2.2"]
    );
    assert_eq!(store.live_count(&key("alice"), 150), 1);
    let listed = store.list(ACCOUNT, 150);
    assert_eq!(listed.len(), 1);
    assert_eq!(&*listed[0].0, "alice");
    let listed = store.list(ACCOUNT, 100);
    let ids: Vec<&str> = listed.iter().map(|(i, _)| &**i).collect();
    assert_eq!(ids, ["alice", "bob"]);
    assert!(store.list("AC_other", 100).is_empty());
    assert!(store.lookup(&key("nobody"), 100).is_empty());
    // Expired but unswept bindings still count as held.
    assert_eq!(store.binding_count(), 3);
}

#[test]
fn expired_binding_neither_orders_nor_limits() {
    let store = MemoryStore::new();
    add(&store, binding("sip:a@192.0.2.1", "c1", 9, 150)).unwrap();
    // At 200 the stored one is gone: a lower CSeq on the same Call-ID is accepted, and it
    // comes back as a new registration (online again).
    let req = RegisterRequest {
        now: 200,
        max_contacts: 1,
        ..request(
            "alice",
            "c1",
            1,
            vec![ContactUpdate::Add(binding("sip:b@192.0.2.2", "c1", 1, 900))],
        )
    };
    let out = store.register_now(req).unwrap();
    assert_eq!(contacts(&out.bindings), ["sip:b@192.0.2.2"]);
    assert_eq!(out.presence_changed, Some(PresenceStatus::Available));
    assert_eq!(
        store.binding_count(),
        1,
        "the expired one was dropped on the way"
    );
}

#[test]
fn add_already_expired_is_a_removal() {
    let store = MemoryStore::new();
    add(&store, binding("sip:a@192.0.2.1", "c1", 1, 3700)).unwrap();
    let out = add(&store, binding("sip:a@192.0.2.1", "c1", 2, 100)).unwrap();
    assert!(out.bindings.is_empty());
}

#[test]
fn sweep_reports_aors_that_went_offline() {
    let store = MemoryStore::new();
    add(&store, binding("sip:alice@192.0.2.1", "c1", 1, 150)).unwrap();
    add(&store, binding("sip:alice@192.0.2.2", "c2", 1, 300)).unwrap();
    store
        .register_now(request(
            "bob",
            "c3",
            1,
            vec![ContactUpdate::Add(binding(
                "sip:bob@192.0.2.3",
                "c3",
                1,
                150,
            ))],
        ))
        .unwrap();
    assert!(store.sweep(149).is_empty());
    assert_eq!(store.binding_count(), 3);
    // At 150 alice loses one binding (still online), bob his only one.
    let lapsed = |name: &str, at: u64| Lapsed { key: key(name), at };
    assert_eq!(store.sweep(150), [lapsed("bob", 150)]);
    assert_eq!(store.binding_count(), 1);
    assert_eq!(store.lookup(&key("alice"), 150).len(), 1);
    // Reported with the instant the last binding lapsed, not the sweep's own time.
    assert_eq!(store.sweep(1000), [lapsed("alice", 300)]);
    assert_eq!(store.binding_count(), 0);
    assert!(store.sweep(1001).is_empty());
}

#[test]
fn path_and_flow_details_are_kept() {
    let store = MemoryStore::new();
    let b = Binding {
        path: vec!["<sip:edge.example.com;lr>".into()].into_boxed_slice(),
        transport: Transport::Tcp,
        conn: Some(42),
        q: Some(0.5),
        ..binding("sip:alice@10.0.0.2:5060;transport=tcp", "c1", 1, 3700)
    };
    add(&store, b.clone()).unwrap();
    assert_eq!(store.lookup(&key("alice"), 100), [b]);
}

#[test]
fn shards_do_not_mix_aors() {
    let store = MemoryStore::with_shards(3);
    for i in 0..50 {
        let id = format!("user{i}");
        let req = request(
            &id,
            "c",
            1,
            vec![ContactUpdate::Add(binding(
                &format!("sip:{id}@192.0.2.1"),
                "c",
                1,
                3700,
            ))],
        );
        store.register_now(req).unwrap();
    }
    assert_eq!(store.binding_count(), 50);
    assert_eq!(store.list(ACCOUNT, 100).len(), 50);
    assert_eq!(
        contacts(&store.lookup(&key("user7"), 100)),
        ["sip:user7@192.0.2.1"]
    );
}

/// A removal limited to a flow (a closed connection's) touches only a binding still over
/// that flow: not one since refreshed over another connection (even with the same Call-ID
/// and a higher CSeq, which is no ordering fault then), nor one over UDP, nor one of
/// another node's connection with the same id.
#[test]
fn a_removal_limited_to_a_flow_leaves_bindings_over_other_flows() {
    let store = MemoryStore::new();
    let over = |contact: &str, conn: Option<u64>, node: Option<&str>| Binding {
        conn,
        transport: if conn.is_some() {
            Transport::Tcp
        } else {
            Transport::Udp
        },
        edge: node.map(|n| {
            Box::new(Edge {
                node: n.into(),
                addr: "192.0.2.1:5060".parse().unwrap(),
            })
        }),
        ..binding(contact, "c1", 5, 3600)
    };
    let a = "sip:a@192.0.2.1";
    let b = "sip:b@192.0.2.1";
    let c = "sip:c@192.0.2.1";
    add(&store, over(a, Some(2), None)).unwrap();
    add(&store, over(b, None, None)).unwrap();
    add(&store, over(c, Some(1), Some("other-node"))).unwrap();
    let closed = Flow {
        conn: 1,
        node: None,
    };
    let on_flow = |contact: &str, cseq: u32| ContactUpdate::Remove {
        contact: contact.into(),
        instance: None,
        reg_id: None,
        call_id: "c1".into(),
        cseq,
        flow: Some(closed.clone()),
    };
    // CSeq 3 is below the stored 5: a fault only for a binding the removal applies to.
    let out = store
        .register_now(request(
            "alice",
            "c1",
            3,
            vec![on_flow(a, 3), on_flow(b, 3), on_flow(c, 3)],
        ))
        .unwrap();
    assert_eq!(contacts(&out.bindings), [a, b, c]);

    // Over the flow itself, ordering holds as for any removal, then it applies.
    add(&store, over("sip:d@192.0.2.1", Some(1), None)).unwrap();
    let d = "sip:d@192.0.2.1";
    assert_eq!(
        store.register_now(request("alice", "c1", 5, vec![on_flow(d, 5)])),
        Err(RegisterError::OutOfOrder)
    );
    let out = store
        .register_now(request("alice", "c1", 6, vec![on_flow(d, 6)]))
        .unwrap();
    assert_eq!(contacts(&out.bindings), [a, b, c]);
}
