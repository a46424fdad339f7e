//! The REGISTER rules themselves (RFC 3261 §10.3 steps 6–8, RFC 5626 §6, RFC 5627 §6), as a
//! pure function over one AOR's bindings, so every store applies them the same way.
//!
//! It runs in two phases so a rejected request changes nothing: `plan` only reads the
//! stored bindings and decides the new list as "keep stored binding i" or "new binding";
//! `commit` then moves the kept bindings into an exactly sized slice.
//!
//! Matching a contact update to stored bindings:
//! - With `+sip.instance`: the binding with the same instance and the same `reg-id` (both
//!   absent counts as the same). RFC 5626: a device re-registering a flow replaces that
//!   flow; RFC 5627: an instance without reg-id replaces its previous contact. The URI is
//!   not compared: two flows of one instance often carry the same Contact URI.
//! - Without: every binding with the same Contact URI (`uri::same_contact`).
//!
//! Ordering (§10.3 step 7): a matched binding stored by the same Call-ID must have a lower
//! CSeq than the update, else the whole request fails with `OutOfOrder`. A binding from
//! another Call-ID is replaced unconditionally. The wildcard (step 6) checks every live
//! binding the same way. Bindings added earlier in the same request are not checked
//! against (a Contact listed twice simply replaces itself).
//!
//! A removal limited to a flow (a closed connection's, RFC 5626 §5.3) matches only bindings
//! still over that flow, for the ordering check as well as for the removal.
//!
//! A refresh keeps the `registered_at` of the binding it replaces.
//!
//! `max_contacts` is checked after replacement, and only fails a request that would grow
//! the AOR past it: a refresh still works after the limit was lowered by a config reload.

use super::binding::Binding;
use super::store::{ContactUpdate, RegisterError, Target};
use super::uri::same_contact;

/// One slot of the tentative binding list.
enum Slot {
    /// The stored binding at this index, unchanged.
    Keep(usize),
    /// A binding added by this request.
    New(Binding),
}

/// The decided new binding list; apply with `commit`.
pub(super) struct Plan {
    slots: Vec<Slot>,
    /// Live bindings before the update.
    pub live_before: usize,
}

fn matches(stored: &Binding, t: &Target<'_>) -> bool {
    let same = match t.instance {
        Some(instance) => stored.instance.as_deref() == Some(instance) && stored.reg_id == t.reg_id,
        None => same_contact(&stored.contact, t.contact),
    };
    same && t.flow.is_none_or(|f| stored.is_over(f))
}

/// What a REGISTER asks of one AOR: `RegisterRequest` without the key.
pub(super) struct Changes {
    /// `Some((call_id, cseq))` for `Contact: *` with `Expires: 0`.
    pub wildcard: Option<(Box<str>, u32)>,
    pub updates: Vec<ContactUpdate>,
    pub max_contacts: usize,
    pub now: u64,
}

/// Decide the new list for `stored` (one AOR's bindings, expired ones included; they are
/// dropped here) without changing anything.
pub(super) fn plan(stored: &[Binding], req: Changes) -> Result<Plan, RegisterError> {
    let now = req.now;
    let mut slots: Vec<Slot> = stored
        .iter()
        .enumerate()
        .filter(|(_, b)| b.is_live(now))
        .map(|(i, _)| Slot::Keep(i))
        .collect();
    let live_before = slots.len();

    if let Some((call_id, cseq)) = &req.wildcard {
        let stale = stored
            .iter()
            .filter(|b| b.is_live(now))
            .any(|b| b.call_id == *call_id && *cseq <= b.cseq);
        if stale {
            return Err(RegisterError::OutOfOrder);
        }
        slots.clear();
    }

    for update in req.updates {
        let target = update.target();
        let mut first_registered: Option<u64> = None;
        for slot in &slots {
            if let Slot::Keep(i) = *slot {
                let b = &stored[i];
                if matches(b, &target) {
                    if *b.call_id == *target.call_id && target.cseq <= b.cseq {
                        return Err(RegisterError::OutOfOrder);
                    }
                    first_registered =
                        Some(first_registered.map_or(b.registered_at, |t| t.min(b.registered_at)));
                }
            }
        }
        slots.retain(|slot| match slot {
            Slot::Keep(i) => !matches(&stored[*i], &target),
            Slot::New(b) => !matches(b, &target),
        });
        if let ContactUpdate::Add(mut b) = update
            && b.is_live(now)
        {
            if let Some(t) = first_registered {
                b.registered_at = b.registered_at.min(t);
            }
            slots.push(Slot::New(b));
        }
    }

    if slots.len() > req.max_contacts && slots.len() > live_before {
        return Err(RegisterError::TooManyContacts {
            max: req.max_contacts,
        });
    }
    Ok(Plan { slots, live_before })
}

/// Build the new binding list from `plan`, moving the kept bindings out of `stored` (the
/// same slice `plan` saw).
pub(super) fn commit(stored: Box<[Binding]>, plan: Plan) -> Box<[Binding]> {
    let mut out = Vec::with_capacity(plan.slots.len());
    // Kept indices come in increasing order: the tentative list starts as the stored
    // bindings in order and is only filtered and appended to.
    let mut old = stored.into_vec().into_iter().enumerate();
    for slot in plan.slots {
        match slot {
            Slot::Keep(i) => {
                if let Some((_, b)) = old.by_ref().find(|(j, _)| *j == i) {
                    out.push(b);
                }
            }
            Slot::New(b) => out.push(b),
        }
    }
    out.into_boxed_slice()
}
