//! Batched UDP I/O for the relay: `recvmmsg(2)` into reused buffers, `sendmmsg(2)` straight
//! out of them.
//!
//! Everything is allocated once per relay thread: the packet buffers, the address slots,
//! the iovecs and the message headers. The headers point into the buffers, so they are
//! re-pointed before every call rather than kept self-referential across moves. On this
//! kind of machine the pair costs about 346k packets/s per core against 275k for
//! `recvfrom`/`sendto` (../shared/peers/README.md), and a relay thread that finds
//! several packets queued on one socket takes them in one system call.
//!
//! # Why the `unsafe` here is sound
//!
//! This is the only file of the crate allowed `unsafe` (`src/lib.rs` denies it elsewhere).
//! The unsafe operations are the two system calls, zero-initialising the C structs, and
//! viewing a `sockaddr_storage` as a `sockaddr_in`/`sockaddr_in6`. Every public function is
//! safe, and no sequence of safe calls can make them touch memory they must not, because
//! the types, not the callers, keep these invariants:
//!
//! 1. **`recvmmsg` writes only into the [`RecvBatch`]'s own memory.** Right before each
//!    call every header is pointed at the batch's own boxed buffer, address slot and iovec,
//!    with those objects' sizes. Boxed contents do not move when the batch moves, and the
//!    pointers are rewritten before every use anyway.
//! 2. **Received bytes are read back only within what the kernel filled.** Datagrams are
//!    lent out by [`RecvBatch::packets`], limited to the count `recvmmsg` returned and to
//!    each message's length (at most [`MAX_DATAGRAM`]). The slices borrow the batch, so
//!    [`RecvBatch::recv`] (`&mut self`) cannot overwrite them while any is still held.
//! 3. **`sendmmsg` reads only live memory.** A [`SendBatch<'a>`] accepts only `&'a [u8]`
//!    and itself lives no longer than `'a`, so the borrow checker keeps every queued slice
//!    alive, unmoved and unmodified until [`SendBatch::flush`] returns. When the slices
//!    come from a [`RecvBatch`], that batch stays borrowed until the flush, so it cannot
//!    receive into those buffers first. The pointers a batch leaves behind in its
//!    [`SendQueue`] (when dropped or forgotten without a flush) are never read:
//!    [`SendQueue::batch`] empties the queue before lending it out, and only a batch
//!    calls `sendmmsg`.
//! 4. **Sockets are borrowed, not named by number.** Both calls take a [`BorrowedFd`], so
//!    the descriptor is open and ours for the length of the call (I/O safety), never a
//!    stale number that now belongs to another file.
//! 5. **Address slots are read as what they hold.** A `sockaddr_storage` is large and
//!    aligned enough for every socket address; it is viewed as `sockaddr_in` or
//!    `sockaddr_in6` only as its `ss_family` says, and it starts zeroed, so even a slot the
//!    kernel did not fill is an initialised `AF_UNSPEC` (skipped).
//! 6. **`Send`.** The raw pointers inside [`RecvBatch`] point only into the same value's
//!    boxes; the ones inside an idle [`SendQueue`] are dead (item 3). Neither type is
//!    `Sync`, so no two threads use one at once.
//!
//! Item 3 is checked by the compiler. Freeing queued data before the flush does not build:
//!
//! ```compile_fail,E0505
//! use std::net::UdpSocket;
//! use std::os::fd::AsFd;
//! use switchboard::media::mmsg::SendQueue;
//!
//! let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
//! let to = socket.local_addr().unwrap();
//! let mut queue = SendQueue::new();
//! let mut batch = queue.batch();
//! let packet = vec![0x80u8; 172];
//! batch.push(&packet, to);
//! drop(packet); // the batch still points at it
//! batch.flush(socket.as_fd());
//! ```
//!
//! Nor does receiving again while a received datagram is still queued:
//!
//! ```compile_fail,E0499
//! use std::net::UdpSocket;
//! use std::os::fd::AsFd;
//! use switchboard::media::mmsg::{RecvBatch, SendQueue};
//!
//! let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
//! let mut received = RecvBatch::new();
//! let mut queue = SendQueue::new();
//! let mut batch = queue.batch();
//! received.recv(socket.as_fd()).unwrap();
//! for (bytes, from) in received.packets() {
//!     batch.push(bytes, from);
//! }
//! received.recv(socket.as_fd()).unwrap(); // would overwrite the queued bytes
//! batch.flush(socket.as_fd());
//! ```
//!
//! The same code with the flush first builds and runs:
//!
//! ```
//! use std::net::UdpSocket;
//! use std::os::fd::AsFd;
//! use switchboard::media::mmsg::{RecvBatch, SendQueue};
//!
//! let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
//! let mut received = RecvBatch::new();
//! let mut queue = SendQueue::new();
//! let mut batch = queue.batch();
//! received.recv(socket.as_fd()).unwrap();
//! for (bytes, from) in received.packets() {
//!     batch.push(bytes, from);
//! }
//! batch.flush(socket.as_fd());
//! received.recv(socket.as_fd()).unwrap();
//! ```

#![allow(unsafe_code)]

use std::io;
use std::marker::PhantomData;
use std::mem::{MaybeUninit, size_of};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd};

/// Datagrams per system call.
pub const BATCH: usize = 32;

/// Largest datagram the relay takes. Longer ones arrive truncated (`MSG_TRUNC`) and are
/// dropped: G.711 at 20 ms is 172 bytes, and nothing we negotiate comes near this.
pub const MAX_DATAGRAM: usize = 1500;

/// Received datagrams, reused from one call to the next.
pub struct RecvBatch {
    bufs: Box<[[u8; MAX_DATAGRAM]]>,
    addrs: Box<[libc::sockaddr_storage]>,
    iovs: Box<[libc::iovec]>,
    hdrs: Box<[libc::mmsghdr]>,
    count: usize,
}

// SAFETY: the raw pointers in the headers point only into this value's own boxes and are
// rewritten before each use (module doc, items 1 and 6).
unsafe impl Send for RecvBatch {}

impl Default for RecvBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl RecvBatch {
    pub fn new() -> Self {
        RecvBatch {
            bufs: vec![[0u8; MAX_DATAGRAM]; BATCH].into_boxed_slice(),
            addrs: vec![zeroed_sockaddr(); BATCH].into_boxed_slice(),
            iovs: vec![null_iovec(); BATCH].into_boxed_slice(),
            hdrs: vec![zeroed_mmsghdr(); BATCH].into_boxed_slice(),
            count: 0,
        }
    }

    /// Receives up to [`BATCH`] datagrams from `socket` without blocking, replacing the
    /// previous ones. `Ok(0)` when none are queued.
    pub fn recv(&mut self, socket: BorrowedFd<'_>) -> io::Result<usize> {
        // Nothing from the previous call is readable any more, even if this one fails.
        self.count = 0;
        for i in 0..BATCH {
            self.iovs[i] = libc::iovec {
                iov_base: self.bufs[i].as_mut_ptr().cast(),
                iov_len: MAX_DATAGRAM,
            };
            let h = &mut self.hdrs[i].msg_hdr;
            h.msg_name = (&raw mut self.addrs[i]).cast();
            h.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
            h.msg_iov = &raw mut self.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            self.hdrs[i].msg_len = 0;
        }
        // SAFETY: the BATCH headers each point at one iovec covering one MAX_DATAGRAM-byte
        // buffer and at one sockaddr_storage with its true size, all owned by `self` and
        // exclusively borrowed here (module doc, item 1); `socket` is open (item 4).
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock => Ok(0),
                _ => Err(e),
            };
        }
        // The kernel never returns more than it was given room for; `min` keeps that true
        // for the slicing below even if it did.
        self.count = (n as usize).min(BATCH);
        Ok(self.count)
    }

    /// The datagrams of the last [`RecvBatch::recv`], in arrival order: their bytes
    /// (mutable, for rewriting in place) and their sources. Truncated datagrams and unknown
    /// address families are skipped. The slices borrow the batch, so they can be queued on a
    /// [`SendBatch`] and the batch cannot receive again until that is flushed.
    pub fn packets(&mut self) -> impl Iterator<Item = (&mut [u8], SocketAddr)> {
        let n = self.count;
        self.bufs[..n]
            .iter_mut()
            .zip(&self.hdrs[..n])
            .zip(&self.addrs[..n])
            .filter_map(|((buf, h), addr)| {
                if h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                    return None;
                }
                let len = (h.msg_len as usize).min(MAX_DATAGRAM);
                Some((&mut buf[..len], sockaddr_to_std(addr)?))
            })
    }
}

/// The reusable memory behind [`SendBatch`]es: address slots, iovecs and message headers
/// for [`BATCH`] datagrams, allocated once per relay thread.
pub struct SendQueue {
    addrs: Box<[libc::sockaddr_storage]>,
    addr_lens: Box<[libc::socklen_t]>,
    iovs: Box<[libc::iovec]>,
    hdrs: Box<[libc::mmsghdr]>,
    count: usize,
}

// SAFETY: between batches the pointers in here are dead (never read again, module doc
// item 3); during a batch the queue is reachable only through that batch's `&mut`.
unsafe impl Send for SendQueue {}

impl Default for SendQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl SendQueue {
    pub fn new() -> Self {
        SendQueue {
            addrs: vec![zeroed_sockaddr(); BATCH].into_boxed_slice(),
            addr_lens: vec![0; BATCH].into_boxed_slice(),
            iovs: vec![null_iovec(); BATCH].into_boxed_slice(),
            hdrs: vec![zeroed_mmsghdr(); BATCH].into_boxed_slice(),
            count: 0,
        }
    }

    /// Starts an empty batch of datagrams borrowed for `'a`. Whatever an earlier batch left
    /// queued without flushing is forgotten here.
    pub fn batch<'a>(&'a mut self) -> SendBatch<'a> {
        self.count = 0;
        SendBatch {
            queue: self,
            data: PhantomData,
        }
    }
}

/// Datagrams queued for one socket and sent with one `sendmmsg` by [`SendBatch::flush`].
/// The bytes are not copied: each queued slice stays borrowed until the flush.
pub struct SendBatch<'a> {
    queue: &'a mut SendQueue,
    /// The queued slices, which the iovecs point into.
    data: PhantomData<&'a [u8]>,
}

impl<'a> SendBatch<'a> {
    pub fn len(&self) -> usize {
        self.queue.count
    }

    pub fn is_empty(&self) -> bool {
        self.queue.count == 0
    }

    pub fn is_full(&self) -> bool {
        self.queue.count == BATCH
    }

    /// Queues `data` for `to`, without copying it.
    ///
    /// # Panics
    ///
    /// When the batch already holds [`BATCH`] datagrams.
    pub fn push(&mut self, data: &'a [u8], to: SocketAddr) {
        assert!(!self.is_full(), "a send batch holds {BATCH} datagrams");
        let q = &mut *self.queue;
        let i = q.count;
        q.addr_lens[i] = std_to_sockaddr(to, &mut q.addrs[i]);
        q.iovs[i] = libc::iovec {
            // sendmmsg only reads through it; the cast to *mut is what the C type wants.
            iov_base: data.as_ptr().cast_mut().cast(),
            iov_len: data.len(),
        };
        q.count += 1;
    }

    /// Sends everything queued from `socket`, ending the batch (and with it the borrow of
    /// the queued data). Datagrams the kernel refuses (a full socket buffer, an unreachable
    /// port) are dropped, as UDP would. Returns how many were queued, refused ones included.
    pub fn flush(self, socket: BorrowedFd<'_>) -> usize {
        let q = self.queue;
        let mut sent = 0;
        while sent < q.count {
            for i in sent..q.count {
                let h = &mut q.hdrs[i].msg_hdr;
                h.msg_name = (&raw mut q.addrs[i]).cast();
                h.msg_namelen = q.addr_lens[i];
                h.msg_iov = &raw mut q.iovs[i];
                h.msg_iovlen = 1;
                h.msg_control = std::ptr::null_mut();
                h.msg_controllen = 0;
                h.msg_flags = 0;
            }
            // SAFETY: headers sent..count point at our own address slots (with the lengths
            // written for them) and at iovecs over slices borrowed for 'a, which this batch
            // does not outlive (module doc, item 3); `socket` is open (item 4).
            let n = unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    q.hdrs[sent..q.count].as_mut_ptr(),
                    (q.count - sent) as libc::c_uint,
                    libc::MSG_DONTWAIT,
                )
            };
            if n <= 0 {
                // The first queued datagram failed (ECONNREFUSED from an earlier ICMP,
                // EAGAIN on a full buffer...): drop it and go on with the rest.
                sent += 1;
                continue;
            }
            sent += n as usize;
        }
        let out = q.count;
        q.count = 0;
        out
    }
}

fn zeroed_sockaddr() -> libc::sockaddr_storage {
    // SAFETY: all-zero is a valid sockaddr_storage (plain integers and byte arrays; family
    // AF_UNSPEC).
    unsafe { MaybeUninit::zeroed().assume_init() }
}

fn zeroed_mmsghdr() -> libc::mmsghdr {
    // SAFETY: all-zero is a valid mmsghdr (integers and null raw pointers).
    unsafe { MaybeUninit::zeroed().assume_init() }
}

const fn null_iovec() -> libc::iovec {
    libc::iovec {
        iov_base: std::ptr::null_mut(),
        iov_len: 0,
    }
}

fn sockaddr_to_std(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(s.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let a: &libc::sockaddr_in = unsafe { &*(s as *const _ as *const libc::sockaddr_in) };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                u16::from_be(a.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let a: &libc::sockaddr_in6 = unsafe { &*(s as *const _ as *const libc::sockaddr_in6) };
            Some(SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from(a.sin6_addr.s6_addr),
                u16::from_be(a.sin6_port),
                u32::from_be(a.sin6_flowinfo),
                a.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

fn std_to_sockaddr(addr: SocketAddr, out: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match addr {
        SocketAddr::V4(a) => {
            // SAFETY: sockaddr_storage is large and aligned enough for any sockaddr.
            let s: &mut libc::sockaddr_in =
                unsafe { &mut *(out as *mut _ as *mut libc::sockaddr_in) };
            s.sin_family = libc::AF_INET as libc::sa_family_t;
            s.sin_port = a.port().to_be();
            s.sin_addr = libc::in_addr {
                s_addr: u32::from(*a.ip()).to_be(),
            };
            s.sin_zero = [0; 8];
            size_of::<libc::sockaddr_in>() as libc::socklen_t
        }
        SocketAddr::V6(a) => {
            // SAFETY: as above.
            let s: &mut libc::sockaddr_in6 =
                unsafe { &mut *(out as *mut _ as *mut libc::sockaddr_in6) };
            s.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            s.sin6_port = a.port().to_be();
            s.sin6_flowinfo = a.flowinfo().to_be();
            s.sin6_addr = libc::in6_addr {
                s6_addr: a.ip().octets(),
            };
            s.sin6_scope_id = a.scope_id();
            size_of::<libc::sockaddr_in6>() as libc::socklen_t
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;

    #[test]
    fn a_batch_round_trips_through_real_sockets() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut rb = RecvBatch::new();
        assert_eq!(rb.recv(b.as_fd()).unwrap(), 0, "nothing queued yet");
        assert_eq!(rb.packets().count(), 0);
        for i in 0..5u8 {
            a.send_to(&[i; 20], b.local_addr().unwrap()).unwrap();
        }
        // Loopback delivers synchronously, but be patient anyway.
        let mut n = 0;
        for _ in 0..100 {
            n = rb.recv(b.as_fd()).unwrap();
            if n > 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(n, 5);
        let mut queue = SendQueue::new();
        let mut sb = queue.batch();
        for (i, (data, from)) in rb.packets().enumerate() {
            assert_eq!(from, a.local_addr().unwrap());
            assert_eq!(data, &[i as u8; 20]);
            data[0] = 0xEE;
            // Send it back from b to a, straight out of the receive buffer.
            sb.push(data, from);
        }
        assert_eq!(sb.len(), 5);
        assert_eq!(sb.flush(b.as_fd()), 5);
        let mut buf = [0u8; 64];
        for i in 0..5u8 {
            let (len, from) = a.recv_from(&mut buf).unwrap();
            assert_eq!(from, b.local_addr().unwrap());
            assert_eq!(len, 20);
            assert_eq!(buf[0], 0xEE);
            assert_eq!(buf[1], i);
        }
    }

    #[test]
    fn a_batch_dropped_unflushed_leaves_nothing_queued() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.set_nonblocking(true).unwrap();
        let mut queue = SendQueue::new();
        {
            let stale = vec![7u8; 20];
            let mut sb = queue.batch();
            sb.push(&stale, a.local_addr().unwrap());
            // Dropped here, unflushed, together with the bytes it pointed at.
        }
        let fresh = [9u8; 4];
        let mut sb = queue.batch();
        assert!(sb.is_empty(), "a new batch starts empty");
        sb.push(&fresh, a.local_addr().unwrap());
        assert_eq!(sb.flush(b.as_fd()), 1);
        let mut buf = [0u8; 64];
        let mut got = None;
        for _ in 0..100 {
            match a.recv_from(&mut buf) {
                Ok((len, _)) => {
                    got = Some(len);
                    break;
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
        assert_eq!(got, Some(4));
        assert_eq!(&buf[..4], &fresh);
        assert!(
            a.recv_from(&mut buf).is_err(),
            "only the fresh datagram went out"
        );
    }

    #[test]
    fn a_full_batch_refuses_more() {
        let to: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let data = [0u8; 12];
        let mut queue = SendQueue::new();
        let mut sb = queue.batch();
        for _ in 0..BATCH {
            sb.push(&data, to);
        }
        assert!(sb.is_full());
        let overflow =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sb.push(&data, to)));
        assert!(overflow.is_err());
    }

    #[test]
    fn ipv6_addresses_convert_both_ways() {
        let addr: SocketAddr = "[2001:db8::1]:4000".parse().unwrap();
        let mut s = zeroed_sockaddr();
        std_to_sockaddr(addr, &mut s);
        assert_eq!(sockaddr_to_std(&s), Some(addr));
    }
}
