//! The location service (RFC 3261 §10.3): which contacts each address of record is
//! registered at, with RFC 5626 flows (`+sip.instance`, `reg-id`) and RFC 3327 Path.
//!
//! - `binding`: what is stored (`Binding`, `AorKey`).
//! - `store`: the `LocationStore` contract and its request/outcome types.
//! - `update`: the REGISTER rules (matching, ordering, wildcard, limits), pure.
//! - `uri`: Contact URI equality, simplified.
//! - `memory`: `MemoryStore`, sharded maps in process.
//! - `redis`: `RedisStore`, shared by the nodes of a cluster (a replica in process).
//! - `codec`: how bindings are written to Redis.
//!
//! Who calls what: the registrar (shard side) builds a `RegisterRequest` from an
//! authenticated REGISTER and calls `register`, answering 200 with `outcome.bindings`,
//! 500 for `OutOfOrder`, 403 for `TooManyContacts`; then it tells presence
//! `Presence::on_bindings(&key, outcome.bindings.len(), now)`. When a stream connection
//! closes, the registrar calls `register` with a `Remove` limited to that `Flow` for each
//! binding still over it (RFC 5626 §5.3). A periodic task calls
//! `Presence::sweep(store, now)` (which calls `store.sweep`). Call routing uses `lookup`;
//! the REST API uses `lookup` and `list`.

mod binding;
mod codec;
mod memory;
mod redis;
pub(crate) mod shards;
mod store;
mod update;
pub mod uri;

pub use binding::{AorKey, Binding, Edge, Flow};
pub use memory::MemoryStore;
pub use redis::RedisStore;
pub use store::{
    ContactUpdate, Lapsed, LocationStore, RegisterError, RegisterFuture, RegisterOutcome,
    RegisterRequest,
};

#[cfg(test)]
mod tests;

/// The value of a future that must be ready at its first poll (the memory store's
/// `register`, in tests).
#[cfg(test)]
pub(crate) fn ready<T>(f: impl std::future::Future<Output = T>) -> T {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("expected a future ready at once"),
    }
}
