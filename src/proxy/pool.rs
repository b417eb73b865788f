//! The UDP sockets to one server, kept for the proxy's life: a few connected sockets, each
//! carrying many queries at once, told apart by their ids.
//!
//! WHY a pool, not a socket per query: opening, connecting and closing a socket for every leg
//! of every query was a third of the proxy's time under load (BENCHMARKS.md). WHY this is safe
//! enough: a reused socket keeps its source port, so a forged answer must guess a 16-bit id on
//! a port that stays the same while the proxy lives. That is what dnsmasq does too: it shares
//! each of its random-port sockets between the queries in flight. The ports here are chosen by
//! the kernel (random in the ephemeral range), the ids are fresh per query and never one in
//! flight on the same socket, a connected socket takes datagrams from its server's address and
//! port only, and an answer counts only with our id and the question asked (`wire::read_reply`).

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};

use nix::poll::PollFlags;

use super::wire::Ids;

/// Sockets per server: enough that one socket's receive queue is not the bottleneck, few
/// enough that the poll set stays small (4 servers at most: 16 sockets).
pub const SOCKETS: usize = 4;

/// Who waits for an answer: a pending query's key and its leg.
pub type Owner = (u64, usize);

pub struct Pool {
    server: SocketAddr,
    slots: Vec<Slot>,
    /// The slot the next query goes to: round-robin.
    next: usize,
}

#[derive(Default)]
struct Slot {
    /// Opened on first use, closed after an error (and opened again on the next use).
    socket: Option<UdpSocket>,
    waiting: Vec<Waiting>,
}

struct Waiting {
    id: u16,
    owner: Owner,
    /// The query, while the socket's send buffer was full.
    unsent: Option<Vec<u8>>,
}

/// Where a query went: what [`Pool::forget`] needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    pub slot: usize,
    pub id: u16,
}

impl Pool {
    pub fn new(server: SocketAddr) -> Pool {
        Pool {
            server,
            slots: (0..SOCKETS).map(|_| Slot::default()).collect(),
            next: 0,
        }
    }

    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// Send `query` (a client's bytes: its id is replaced in place) for `owner`, on the next
    /// socket, with an id no other query waiting on that socket has.
    pub fn send(&mut self, query: &mut [u8], ids: &mut Ids, owner: Owner) -> io::Result<Ticket> {
        let slot_index = self.next % SOCKETS;
        self.next = self.next.wrapping_add(1);
        let server = self.server;
        let slot = self
            .slots
            .get_mut(slot_index)
            .ok_or(io::ErrorKind::NotFound)?;
        if slot.socket.is_none() {
            slot.socket = Some(open(server)?);
        }
        let id = slot.fresh_id(ids).ok_or(io::ErrorKind::AddrInUse)?;
        if let Some(bytes) = query.get_mut(..2) {
            bytes.copy_from_slice(&id.to_be_bytes());
        }
        let unsent = match slot.socket.as_ref().map(|s| s.send(query)) {
            Some(Ok(_)) => None,
            Some(Err(e)) if e.kind() == io::ErrorKind::WouldBlock => Some(query.to_vec()),
            Some(Err(e)) => {
                // ECONNREFUSED left by an earlier query, ENETUNREACH, ...: start afresh next time.
                slot.socket = None;
                return Err(e);
            }
            None => return Err(io::ErrorKind::NotConnected.into()),
        };
        slot.waiting.push(Waiting { id, owner, unsent });
        Ok(Ticket {
            slot: slot_index,
            id,
        })
    }

    /// The query is decided: an answer to it is no longer awaited.
    pub fn forget(&mut self, ticket: Ticket) {
        if let Some(slot) = self.slots.get_mut(ticket.slot) {
            if let Some(i) = slot.waiting.iter().position(|w| w.id == ticket.id) {
                slot.waiting.swap_remove(i);
            }
        }
    }

    /// The open sockets and what to wait for on each, with their slot.
    pub fn interest(&self) -> impl Iterator<Item = (usize, BorrowedFd<'_>, PollFlags)> {
        self.slots.iter().enumerate().filter_map(|(i, slot)| {
            let socket = slot.socket.as_ref()?;
            let mut flags = PollFlags::POLLIN;
            if slot.waiting.iter().any(|w| w.unsent.is_some()) {
                flags |= PollFlags::POLLOUT;
            }
            Some((i, socket.as_fd(), flags))
        })
    }

    /// Slot `slot` is ready: send what waited for room, then read every datagram there is and
    /// hand each with a waited-for id to `reply` (with its owner), which says whether it was the
    /// answer (the wait is then over). The owners whose queries failed with the socket.
    pub fn serve(
        &mut self,
        slot: usize,
        buffer: &mut [u8],
        mut reply: impl FnMut(Owner, &[u8]) -> bool,
    ) -> Vec<Owner> {
        let Some(slot) = self.slots.get_mut(slot) else {
            return Vec::new();
        };
        if let Err(e) = slot.flush().and_then(|()| slot.receive(buffer, &mut reply)) {
            // A connected UDP socket reports the server's ICMP port unreachable as ECONNREFUSED,
            // not knowing which query caused it: the server is not there for any of them.
            crate::debug!("proxy: {}: {e}", self.server);
            slot.socket = None;
            return slot.waiting.drain(..).map(|w| w.owner).collect();
        }
        Vec::new()
    }
}

impl Slot {
    /// An id for a new query: not one a query waiting on this socket has, so that an answer
    /// finds its query by id alone before its question is compared.
    fn fresh_id(&self, ids: &mut Ids) -> Option<u16> {
        // At most 256 queries wait on a socket, of 65536 ids: a free one comes in a try or two.
        (0..64)
            .map(|_| ids.fresh())
            .find(|id| self.waiting.iter().all(|w| w.id != *id))
    }

    fn flush(&mut self) -> io::Result<()> {
        let Some(socket) = &self.socket else {
            return Ok(());
        };
        for waiting in self.waiting.iter_mut() {
            let Some(query) = waiting.unsent.take() else {
                continue;
            };
            match socket.send(&query) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    waiting.unsent = Some(query);
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn receive(
        &mut self,
        buffer: &mut [u8],
        reply: &mut impl FnMut(Owner, &[u8]) -> bool,
    ) -> io::Result<()> {
        let Some(socket) = &self.socket else {
            return Ok(());
        };
        loop {
            let length = match socket.recv(buffer) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let packet = buffer.get(..length).unwrap_or_default();
            let id = super::wire::id_of(packet);
            // A late answer to a decided query, or a stray: nobody waits for it.
            let Some(i) = self.waiting.iter().position(|w| w.id == id) else {
                continue;
            };
            let owner = self.waiting.get(i).map_or((0, 0), |w| w.owner);
            if reply(owner, packet) {
                self.waiting.swap_remove(i);
            }
        }
    }
}

/// A non-blocking, close-on-exec UDP socket connected to `server`: the kernel chooses its
/// source port and drops datagrams from any other address; an ICMP port unreachable comes back
/// as ECONNREFUSED instead of a silent wait.
fn open(server: SocketAddr) -> io::Result<UdpSocket> {
    Ok(UdpSocket::from(super::attempt::open(server, false)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn wait_readable(pool: &Pool) {
        let mut fds: Vec<_> = pool
            .interest()
            .map(|(_, fd, _)| nix::poll::PollFd::new(fd, PollFlags::POLLIN))
            .collect();
        nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(2000u16)).unwrap();
    }

    /// Several queries on the pool's sockets: each answer reaches its own query, whatever the
    /// order; strays and late answers reach none; ids are distinct on each socket.
    #[test]
    fn answers_find_their_queries_on_shared_sockets() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut pool = Pool::new(server.local_addr().unwrap());
        let mut ids = Ids::new();
        let count = 3 * SOCKETS;
        let tickets: Vec<Ticket> = (0..count)
            .map(|i| {
                let mut query = vec![0, 0, i as u8];
                pool.send(&mut query, &mut ids, (i as u64, 1)).unwrap()
            })
            .collect();
        for slot in 0..SOCKETS {
            let mut on_slot: Vec<u16> = tickets
                .iter()
                .filter(|t| t.slot == slot)
                .map(|t| t.id)
                .collect();
            on_slot.sort_unstable();
            on_slot.dedup();
            assert_eq!(on_slot.len(), 3, "distinct ids on socket {slot}");
        }
        // The server answers in reverse order, each datagram echoed back, and a stray first.
        let mut received = Vec::new();
        let mut buffer = [0u8; 512];
        for _ in 0..count {
            let (n, from) = server.recv_from(&mut buffer).unwrap();
            received.push((buffer[..n].to_vec(), from));
        }
        for (packet, from) in received.iter().rev() {
            server.send_to(&[0xff, 0xff, 0xff], from).unwrap();
            server.send_to(packet, from).unwrap();
        }
        // Query 0 is decided before its answer is read: that answer reaches nobody.
        pool.forget(tickets[0]);
        let mut heard = Vec::new();
        for _ in 0..20 {
            wait_readable(&pool);
            for slot in 0..SOCKETS {
                let failed = pool.serve(slot, &mut buffer, |owner, packet| {
                    heard.push((owner, packet.to_vec()));
                    true
                });
                assert!(failed.is_empty());
            }
            if heard.len() == count - 1 {
                break;
            }
        }
        heard.sort();
        assert_eq!(heard.len(), count - 1, "{heard:?}");
        for ((key, leg), packet) in heard {
            let ticket = tickets[key as usize];
            assert_eq!(leg, 1);
            assert_ne!(key, 0);
            assert_eq!(
                packet,
                vec![(ticket.id >> 8) as u8, ticket.id as u8, key as u8]
            );
        }
    }

    /// A server that is not there: ECONNREFUSED fails every query waiting on that socket.
    #[test]
    fn a_refused_socket_fails_its_queries() {
        let gone = UdpSocket::bind("127.0.0.1:0").unwrap();
        let address = gone.local_addr().unwrap();
        drop(gone);
        let mut pool = Pool::new(address);
        let mut ids = Ids::new();
        let ticket = pool.send(&mut [0, 0, 1], &mut ids, (7, 0)).unwrap();
        wait_readable(&pool);
        let mut buffer = [0u8; 64];
        let failed = pool.serve(ticket.slot, &mut buffer, |_, _| true);
        assert_eq!(failed, vec![(7, 0)]);
        // The socket is opened again for the next query.
        assert!(pool.send(&mut [0, 0, 2], &mut ids, (8, 0)).is_ok());
    }
}
