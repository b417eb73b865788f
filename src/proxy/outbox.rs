//! Datagrams held back during a turn of the proxy's loop, then sent with one sendmmsg(2) per
//! socket at its end.
//!
//! WHY: sending was most of the proxy's time under load (perf: 73% of its thread in sendto).
//! Each sendto over loopback runs the transmit path and wakes the receiving process for that one
//! datagram. One sendmmsg for a turn's datagrams to a socket enters the kernel once, and the
//! receiver (the embedded resolver, an upstream, a client) is woken once for the burst: it is
//! already running when the rest arrive.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::libc;
use nix::sys::socket::{SockaddrIn, SockaddrIn6, SockaddrLike};

/// Datagrams per sendmmsg(2): a full turn of queries from the listener (`BATCH`) in one call.
/// Their headers live on the stack (5 KB on x86_64), not in memory kept between turns.
const CHUNK: usize = 64;

/// Byte capacity kept once everything is sent: a turn of ordinary queries or answers fits, and
/// a burst of large answers does not stay resident.
const KEEP: usize = 16 * 1024;

/// Datagrams for one socket, in the order queued: a connected socket's (no address) or an
/// unconnected one's (an address each). Bounded by its users: a pool's queries and the
/// clients' answers are each at most one per pending query (`MAX_PENDING`).
#[derive(Default)]
pub struct Outbox {
    /// The datagrams' bytes, one after the other. Copied: a query's buffer gets the next
    /// server's id before the turn ends, and an answer's buffer goes back for the next one.
    bytes: Vec<u8>,
    datagrams: Vec<Datagram>,
    /// The datagrams' addresses, in the same order; none on a connected socket (a pool's
    /// outbox holds most datagrams and needs none: 32 bytes each spared).
    addresses: Vec<Destination>,
}

struct Datagram {
    len: usize,
    /// The queuer's mark for [`Outbox::remove`] (a query's id).
    tag: u16,
}

/// A datagram's address, kept as the kernel reads it (no conversion at each send).
#[derive(Clone, Copy)]
enum Destination {
    V4(SockaddrIn),
    V6(SockaddrIn6),
}

impl Outbox {
    pub fn is_empty(&self) -> bool {
        self.datagrams.is_empty()
    }

    /// Queue `bytes` for `to` (`None` on a connected socket), marked `tag`.
    pub fn push(&mut self, bytes: &[u8], to: Option<SocketAddr>, tag: u16) {
        self.bytes.extend_from_slice(bytes);
        self.datagrams.push(Datagram {
            len: bytes.len(),
            tag,
        });
        match to {
            None => {}
            Some(SocketAddr::V4(a)) => self.addresses.push(Destination::V4(a.into())),
            Some(SocketAddr::V6(a)) => self.addresses.push(Destination::V6(a.into())),
        }
    }

    /// Take back the datagram marked `tag`, if it has not gone yet.
    pub fn remove(&mut self, tag: u16) {
        let Some(i) = self.datagrams.iter().position(|d| d.tag == tag) else {
            return;
        };
        let start: usize = self.datagrams.iter().take(i).map(|d| d.len).sum();
        let len = self.datagrams.get(i).map_or(0, |d| d.len);
        self.bytes
            .drain(start..start.saturating_add(len).min(self.bytes.len()));
        self.datagrams.remove(i);
        if i < self.addresses.len() {
            self.addresses.remove(i);
        }
    }

    /// Send on `socket`, in order, as many as it takes. `Err`: the first datagram left could
    /// not go and is still first; WouldBlock when the socket's send buffer is full (the rest
    /// can go once poll(2) says POLLOUT).
    pub fn send(&mut self, socket: BorrowedFd<'_>) -> io::Result<()> {
        while !self.datagrams.is_empty() {
            match send_chunk(socket, &self.bytes, &self.datagrams, &self.addresses) {
                // Only for an empty batch: cannot be, but never loop on it.
                Ok(0) => return Err(io::ErrorKind::WouldBlock.into()),
                Ok(sent) => self.drop_front(sent),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Drop the first datagram (one that cannot be sent): where it was going, if it had an
    /// address.
    pub fn drop_first(&mut self) -> Option<SocketAddr> {
        self.datagrams.first()?;
        let to = self.addresses.first().map(|to| match *to {
            Destination::V4(a) => SocketAddr::from(a),
            Destination::V6(a) => SocketAddr::from(a),
        });
        self.drop_front(1);
        to
    }

    /// Drop everything queued (its socket is gone).
    pub fn clear(&mut self) {
        self.drop_front(self.datagrams.len());
    }

    fn drop_front(&mut self, count: usize) {
        let count = count.min(self.datagrams.len());
        if count == self.datagrams.len() {
            self.datagrams.clear();
            self.addresses.clear();
            self.bytes.clear();
            if self.bytes.capacity() > KEEP {
                self.bytes = Vec::new();
            }
            return;
        }
        // Partly sent (the socket's buffer filled): the rest moves to the front.
        let len: usize = self.datagrams.drain(..count).map(|d| d.len).sum();
        self.bytes.drain(..len.min(self.bytes.len()));
        self.addresses.drain(..count.min(self.addresses.len()));
    }
}

/// One sendmmsg(2) of the first `CHUNK` datagrams (their bytes one after the other in `bytes`,
/// to `addresses`, or none on a connected socket): how many the kernel took. When one fails
/// after others went, the kernel returns the count of those sent: the next call starts at that
/// one (and reports the error if it fails again).
///
/// WHY the raw system call, not nix's or libc's sendmmsg: musl's sendmmsg() on 64-bit targets
/// is a loop of sendmsg(2) in user space, because its msghdr has int fields (with padding)
/// where the kernel reads size_t. Headers zeroed first have zero padding, which makes the
/// kernel's reading of those fields right on every target.
fn send_chunk(
    socket: BorrowedFd<'_>,
    bytes: &[u8],
    datagrams: &[Datagram],
    addresses: &[Destination],
) -> io::Result<usize> {
    // SAFETY: all-zero bytes are a valid mmsghdr and iovec (null pointers, zero lengths).
    let mut headers: [libc::mmsghdr; CHUNK] = unsafe { std::mem::zeroed() };
    let mut iovecs: [libc::iovec; CHUNK] = unsafe { std::mem::zeroed() };
    let mut start = 0;
    let mut count: usize = 0;
    let slots = headers.iter_mut().zip(iovecs.iter_mut());
    for (i, (datagram, (header, iovec))) in datagrams.iter().zip(slots).enumerate() {
        let end = start + datagram.len;
        let Some(payload) = bytes.get(start..end) else {
            break; // cannot be: the lengths add up to the bytes
        };
        start = end;
        iovec.iov_base = payload.as_ptr().cast_mut().cast();
        iovec.iov_len = payload.len();
        let (name, name_len) = addresses
            .get(i)
            .map_or((std::ptr::null(), 0), Destination::name);
        let message = &mut header.msg_hdr;
        message.msg_iov = iovec;
        message.msg_iovlen = 1;
        message.msg_name = name.cast_mut().cast();
        message.msg_namelen = name_len;
        count += 1;
    }
    // SAFETY: the first `count` headers point at iovecs and addresses on this stack frame and
    // at payloads in `bytes`, all alive and unmoved for the call; the kernel reads them and
    // writes only each header's msg_len. `count` is at most CHUNK, the length of `headers`.
    let sent = unsafe {
        libc::syscall(
            libc::SYS_sendmmsg,
            libc::c_long::from(socket.as_raw_fd()),
            headers.as_mut_ptr(),
            count as libc::c_long,
            0 as libc::c_long,
        )
    };
    usize::try_from(sent).map_err(|_| io::Error::last_os_error())
}

impl Destination {
    /// The address as the kernel takes it: a pointer and its length.
    fn name(&self) -> (*const libc::sockaddr, libc::socklen_t) {
        match self {
            Destination::V4(a) => (a.as_ptr(), a.len()),
            Destination::V6(a) => (a.as_ptr(), a.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixDatagram;
    use std::time::Duration;

    fn receive_all(socket: &UdpSocket) -> Vec<(Vec<u8>, SocketAddr)> {
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut buffer = [0u8; 512];
        let mut received = Vec::new();
        while let Ok((n, from)) = socket.recv_from(&mut buffer) {
            received.push((buffer[..n].to_vec(), from));
        }
        received
    }

    /// Datagrams to several addresses, more than one sendmmsg's worth, leave in order and each
    /// reaches its own address; nothing stays queued.
    #[test]
    fn datagrams_reach_their_addresses_in_order() {
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (a, b) = (
            UdpSocket::bind("127.0.0.1:0").unwrap(),
            UdpSocket::bind("127.0.0.1:0").unwrap(),
        );
        let mut outbox = Outbox::default();
        let count = CHUNK + 10;
        for i in 0..count {
            let to = if i % 2 == 0 { &a } else { &b };
            outbox.push(
                &[i as u8; 3][..1 + i % 3],
                Some(to.local_addr().unwrap()),
                0,
            );
        }
        outbox.send(sender.as_fd()).unwrap();
        assert!(outbox.is_empty());
        let from = sender.local_addr().unwrap();
        for (socket, parity) in [(&a, 0), (&b, 1)] {
            let received = receive_all(socket);
            let expected: Vec<_> = (0..count)
                .filter(|i| i % 2 == parity)
                .map(|i| (vec![i as u8; 1 + i % 3], from))
                .collect();
            assert_eq!(received, expected);
        }
    }

    /// A peer that reads nothing fills up (a Unix datagram socket has a queue limit): the
    /// datagrams that did not go stay queued, first in line, and go in order once there is room.
    /// A removed one never goes.
    #[test]
    fn a_full_socket_keeps_the_rest_queued_in_order() {
        let (sender, receiver) = UnixDatagram::pair().unwrap();
        sender.set_nonblocking(true).unwrap();
        receiver.set_nonblocking(true).unwrap();
        let mut outbox = Outbox::default();
        let mut queued = 0u16;
        let mut filled = false;
        // Queue a batch and send it, until the receiver's queue is full.
        while !filled && queued < 10_000 {
            for _ in 0..CHUNK {
                outbox.push(&queued.to_be_bytes(), None, queued);
                queued += 1;
            }
            match outbox.send(sender.as_fd()) {
                Ok(()) => assert!(outbox.is_empty()),
                Err(e) => {
                    assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
                    assert!(!outbox.is_empty());
                    filled = true;
                }
            }
        }
        assert!(filled, "the peer's queue never filled");
        outbox.remove(queued - 1);
        let mut heard = Vec::new();
        let mut buffer = [0u8; 8];
        for _ in 0..10_000 {
            while let Ok(n) = receiver.recv(&mut buffer) {
                heard.push(u16::from_be_bytes([buffer[0], buffer[1]]));
                assert_eq!(n, 2);
            }
            if outbox.is_empty() {
                break;
            }
            match outbox.send(sender.as_fd()) {
                Ok(()) => {}
                Err(e) => assert_eq!(e.kind(), io::ErrorKind::WouldBlock),
            }
        }
        while let Ok(n) = receiver.recv(&mut buffer) {
            heard.push(u16::from_be_bytes([buffer[0], buffer[1]]));
            assert_eq!(n, 2);
        }
        let expected: Vec<u16> = (0..queued - 1).collect();
        assert_eq!(heard, expected);
    }

    /// A datagram the kernel refuses (here: too big for UDP) is reported as the first left;
    /// dropping it lets the rest go.
    #[test]
    fn a_refused_datagram_is_first_and_can_be_dropped() {
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = server.local_addr().unwrap();
        let mut outbox = Outbox::default();
        outbox.push(&[1], Some(to), 0);
        outbox.push(&vec![0u8; 70_000], Some(to), 0);
        outbox.push(&[3], Some(to), 0);
        let error = outbox.send(sender.as_fd()).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(libc::EMSGSIZE));
        assert_eq!(outbox.drop_first(), Some(to));
        outbox.send(sender.as_fd()).unwrap();
        assert!(outbox.is_empty());
        let from = sender.local_addr().unwrap();
        assert_eq!(receive_all(&server), vec![(vec![1], from), (vec![3], from)]);
    }
}
