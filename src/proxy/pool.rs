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
//!
//! The queries of one turn of the loop all go on one socket and leave together at its end
//! ([`Pool::flush`], one sendmmsg(2)); the next turn's go on the next socket.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};

use nix::poll::PollFlags;

use super::outbox::Outbox;
use super::wire::Ids;

/// Sockets per server: enough that one socket's receive queue is not the bottleneck, few
/// enough that the poll set stays small (4 servers at most: 16 sockets).
pub const SOCKETS: usize = 4;

/// Who waits for an answer: a pending query's key and its leg.
pub type Owner = (u64, usize);

pub struct Pool {
    server: SocketAddr,
    /// Opened on first use, closed after an error (and opened again on the next use).
    sockets: Vec<Option<UdpSocket>>,
    /// The queries waiting for an answer, on every socket: one list for the pool, not one per
    /// socket, since a turn's queries all go on one socket (one list grows to the queries in
    /// flight, where four would each grow to a turn's worth).
    waiting: Vec<Waiting>,
    /// The socket queries go to: the same for a whole turn, so that they leave in one
    /// sendmmsg; the next once they have all gone (round-robin).
    current: usize,
    /// The queries for the current socket not sent yet: this turn's, and those its full send
    /// buffer held back. At most one per pending query.
    outbox: Outbox,
}

struct Waiting {
    slot: u8,
    id: u16,
    owner: Owner,
}

/// Where a query went: what [`Pool::forget`] needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    pub slot: usize,
    pub id: u16,
}

impl Ticket {
    fn is(&self, waiting: &Waiting) -> bool {
        usize::from(waiting.slot) == self.slot && waiting.id == self.id
    }
}

impl Pool {
    pub fn new(server: SocketAddr) -> Pool {
        Pool {
            server,
            sockets: (0..SOCKETS).map(|_| None).collect(),
            waiting: Vec::new(),
            current: 0,
            outbox: Outbox::default(),
        }
    }

    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// Queue `query` (a client's bytes: its id is replaced in place) for `owner`, on the
    /// current socket, with an id no other query waiting on that socket has. It leaves with
    /// the turn's others at [`Pool::flush`].
    pub fn send(&mut self, query: &mut [u8], ids: &mut Ids, owner: Owner) -> io::Result<Ticket> {
        let slot = self.current;
        let socket = self.sockets.get_mut(slot).ok_or(io::ErrorKind::NotFound)?;
        if socket.is_none() {
            *socket = Some(open(self.server)?);
        }
        let id = self.fresh_id(slot, ids).ok_or(io::ErrorKind::AddrInUse)?;
        super::wire::set_id(query, id);
        self.outbox.push(query, None, id);
        let ticket = Ticket { slot, id };
        self.waiting.push(Waiting {
            slot: slot as u8, // < SOCKETS
            id,
            owner,
        });
        Ok(ticket)
    }

    /// The query is decided: an answer to it is no longer awaited (and if it has not gone yet,
    /// it does not go).
    pub fn forget(&mut self, ticket: Ticket) {
        if let Some(i) = self.waiting.iter().position(|w| ticket.is(w)) {
            self.waiting.swap_remove(i);
            if ticket.slot == self.current {
                self.outbox.remove(ticket.id);
            }
        }
    }

    /// The end of a turn: send the queued queries, in one sendmmsg(2) (two past 64). The rest
    /// of those a full send buffer held back waits for POLLOUT ([`Pool::interest`]). The owners
    /// whose queries failed with the socket.
    pub fn flush(&mut self) -> Vec<Owner> {
        if self.outbox.is_empty() {
            return Vec::new();
        }
        let current = self.current;
        let sent = match self.sockets.get(current).and_then(Option::as_ref) {
            Some(socket) => self.outbox.send(socket.as_fd()),
            None => Err(io::ErrorKind::NotConnected.into()), // cannot be: queued on an open socket
        };
        match sent {
            Ok(()) => {
                self.current = (current + 1) % SOCKETS;
                Vec::new()
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Vec::new(),
            // ECONNREFUSED left by an earlier query (the server's ICMP port unreachable),
            // ENETUNREACH, ...: the server is not there for any query on the socket.
            Err(e) => self.fail(current, &e),
        }
    }

    /// The open sockets and what to wait for on each, with their slot.
    pub fn interest(&self) -> impl Iterator<Item = (usize, BorrowedFd<'_>, PollFlags)> {
        let held_back = !self.outbox.is_empty();
        self.sockets
            .iter()
            .enumerate()
            .filter_map(move |(i, socket)| {
                let socket = socket.as_ref()?;
                let mut flags = PollFlags::POLLIN;
                if held_back && i == self.current {
                    flags |= PollFlags::POLLOUT;
                }
                Some((i, socket.as_fd(), flags))
            })
    }

    /// Socket `slot` is ready: read every datagram there is and hand each with a waited-for id
    /// to `reply` (with its owner), which says whether it was the answer (the wait is then
    /// over). The owners whose queries failed with the socket. (What waited for room goes at
    /// the turn's [`Pool::flush`].)
    pub fn serve(
        &mut self,
        slot: usize,
        buffer: &mut [u8],
        mut reply: impl FnMut(Owner, &[u8]) -> bool,
    ) -> Vec<Owner> {
        match self.receive(slot, buffer, &mut reply) {
            Ok(()) => Vec::new(),
            // A connected UDP socket reports the server's ICMP port unreachable as
            // ECONNREFUSED, not knowing which query caused it: the server is not there for any.
            Err(e) => self.fail(slot, &e),
        }
    }

    /// An id for a new query on socket `slot`: not one a query waiting on that socket has, so
    /// that an answer finds its query by id alone before its question is compared.
    fn fresh_id(&self, slot: usize, ids: &mut Ids) -> Option<u16> {
        // At most 256 queries wait, of 65536 ids: a free one comes in a try or two.
        (0..64)
            .map(|_| ids.fresh())
            .find(|&id| !self.waiting.iter().any(|w| Ticket { slot, id }.is(w)))
    }

    fn receive(
        &mut self,
        slot: usize,
        buffer: &mut [u8],
        reply: &mut impl FnMut(Owner, &[u8]) -> bool,
    ) -> io::Result<()> {
        let Some(Some(socket)) = self.sockets.get(slot) else {
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
            let ticket = Ticket {
                slot,
                id: super::wire::id_of(packet),
            };
            // A late answer to a decided query, or a stray: nobody waits for it.
            let Some(i) = self.waiting.iter().position(|w| ticket.is(w)) else {
                continue;
            };
            let owner = self.waiting.get(i).map_or((0, 0), |w| w.owner);
            if reply(owner, packet) {
                self.waiting.swap_remove(i);
            }
        }
    }

    /// Close socket `slot` after error `e` (the next query opens another): every query waiting
    /// on it fails, those not sent yet included. Their owners.
    fn fail(&mut self, slot: usize, e: &io::Error) -> Vec<Owner> {
        crate::debug!("proxy: {}: {e}", self.server);
        if slot == self.current {
            self.outbox.clear();
        }
        if let Some(socket) = self.sockets.get_mut(slot) {
            *socket = None;
        }
        let mut failed = Vec::new();
        self.waiting.retain(|w| {
            let on_it = usize::from(w.slot) == slot;
            if on_it {
                failed.push(w.owner);
            }
            !on_it
        });
        failed
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

    fn server() -> UdpSocket {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        server
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        server
    }

    /// Every datagram the server has, with where it came from.
    fn receive_all(server: &UdpSocket) -> Vec<(Vec<u8>, SocketAddr)> {
        let mut buffer = [0u8; 512];
        let mut received = Vec::new();
        while let Ok((n, from)) = server.recv_from(&mut buffer) {
            received.push((buffer[..n].to_vec(), from));
        }
        received
    }

    /// Several queries on the pool's sockets: each answer reaches its own query, whatever the
    /// order; strays and late answers reach none; ids are distinct on each socket.
    #[test]
    fn answers_find_their_queries_on_shared_sockets() {
        let server = server();
        let mut pool = Pool::new(server.local_addr().unwrap());
        let mut ids = Ids::new();
        // SOCKETS turns of 3 queries: each turn's go on a socket of their own.
        let count = 3 * SOCKETS;
        let mut tickets = Vec::new();
        for turn in 0..SOCKETS {
            for i in 3 * turn..3 * turn + 3 {
                let mut query = vec![0, 0, i as u8];
                tickets.push(pool.send(&mut query, &mut ids, (i as u64, 1)).unwrap());
            }
            assert!(pool.flush().is_empty());
        }
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
        let received = receive_all(&server);
        assert_eq!(received.len(), count);
        for (packet, from) in received.iter().rev() {
            server.send_to(&[0xff, 0xff, 0xff], from).unwrap();
            server.send_to(packet, from).unwrap();
        }
        // Query 0 is decided before its answer is read: that answer reaches nobody.
        pool.forget(tickets[0]);
        let mut heard = Vec::new();
        let mut buffer = [0u8; 512];
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

    /// A turn's queries wait for the flush, then reach the server together, in order, from one
    /// socket; a query decided before the flush never goes. The next turn's use another socket.
    #[test]
    fn a_turns_queries_leave_together_on_one_socket() {
        let server = server();
        server.set_nonblocking(true).unwrap();
        let mut pool = Pool::new(server.local_addr().unwrap());
        let mut ids = Ids::new();
        let count = 100; // more than one sendmmsg's worth
        let tickets: Vec<Ticket> = (0..count)
            .map(|i| {
                let mut query = vec![0, 0, i as u8];
                pool.send(&mut query, &mut ids, (i as u64, 0)).unwrap()
            })
            .collect();
        let mut buffer = [0u8; 64];
        assert_eq!(
            server.recv_from(&mut buffer).unwrap_err().kind(),
            io::ErrorKind::WouldBlock,
            "nothing leaves before the flush"
        );
        assert!(tickets.iter().all(|t| t.slot == tickets[0].slot));
        pool.forget(tickets[7]);
        assert!(pool.flush().is_empty());
        server.set_nonblocking(false).unwrap();
        let received = receive_all(&server);
        let expected: Vec<Vec<u8>> = (0..count)
            .filter(|&i| i != 7)
            .map(|i| {
                let id = tickets[i].id.to_be_bytes();
                vec![id[0], id[1], i as u8]
            })
            .collect();
        assert_eq!(
            received.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>(),
            expected
        );
        let from = received[0].1;
        assert!(received.iter().all(|(_, f)| *f == from), "one socket");
        // The next turn's query goes on the next socket.
        let next = pool.send(&mut [0, 0, 1], &mut ids, (200, 0)).unwrap();
        assert_ne!(next.slot, tickets[0].slot);
        assert!(pool.flush().is_empty());
        assert_ne!(receive_all(&server)[0].1, from);
    }

    /// A server that is not there: ECONNREFUSED fails every query waiting on that socket, when
    /// the socket is read.
    #[test]
    fn a_refused_socket_fails_its_queries() {
        let gone = UdpSocket::bind("127.0.0.1:0").unwrap();
        let address = gone.local_addr().unwrap();
        drop(gone);
        let mut pool = Pool::new(address);
        let mut ids = Ids::new();
        let ticket = pool.send(&mut [0, 0, 1], &mut ids, (7, 0)).unwrap();
        assert!(pool.flush().is_empty());
        wait_readable(&pool);
        let mut buffer = [0u8; 64];
        let failed = pool.serve(ticket.slot, &mut buffer, |_, _| true);
        assert_eq!(failed, vec![(7, 0)]);
        // The socket is opened again for the next query.
        assert!(pool.send(&mut [0, 0, 2], &mut ids, (8, 0)).is_ok());
    }

    /// The same when the error comes back on sending: the socket's next flush fails the
    /// queries already waiting on it and those it was to send.
    #[test]
    fn a_refused_socket_fails_its_queries_at_the_flush() {
        let gone = UdpSocket::bind("127.0.0.1:0").unwrap();
        let address = gone.local_addr().unwrap();
        drop(gone);
        let mut pool = Pool::new(address);
        let mut ids = Ids::new();
        // One query per socket, the first socket's refused and not read.
        for key in 0..SOCKETS as u64 {
            pool.send(&mut [0, 0, 1], &mut ids, (key, 0)).unwrap();
            assert!(pool.flush().is_empty());
        }
        wait_readable(&pool);
        std::thread::sleep(Duration::from_millis(50)); // every ICMP is in
        let ticket = pool.send(&mut [0, 0, 2], &mut ids, (100, 0)).unwrap();
        assert_eq!(ticket.slot, 0);
        let mut failed = pool.flush();
        failed.sort_unstable();
        assert_eq!(failed, vec![(0, 0), (100, 0)]);
        // Nothing is left to send, nothing waits for room.
        assert!(pool.flush().is_empty());
        assert!(pool
            .interest()
            .all(|(_, _, flags)| !flags.contains(PollFlags::POLLOUT)));
    }
}
