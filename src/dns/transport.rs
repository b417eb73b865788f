//! The DNS transport: carry many queries at once from the calling thread, over UDP and then TCP
//! when the answer is truncated, on non-blocking sockets served by one poll(2) loop under one
//! deadline.
//!
//! Apart from the wire format (which it only calls through each exchange's [`Reader`]) and from
//! the probe policy (which decides whom to ask): this is the only layer with sockets and a clock.
//! One loop and no thread, because the whole probe must take one timeout however many servers
//! there are, and a container's pids.max may not allow a thread.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, SockaddrStorage};

use super::wire::{Reply, MAX_MESSAGE};

/// One query to carry: to `server` over UDP (then TCP if the answer is truncated), with the
/// wire format's reading of what comes back.
pub struct Exchange<'a> {
    pub server: SocketAddr,
    pub query: Vec<u8>,
    pub read: Reader<'a>,
}

/// How an exchange reads each message that comes back: the wire format's [`classify`] for its
/// query, in practice.
pub type Reader<'a> = Box<dyn Fn(&[u8]) -> Reply + 'a>;

/// How an exchange ended.
#[derive(Debug)]
pub enum Ending {
    /// The first reply that settles it: `Reply::Final`, or `Reply::Truncated` over TCP.
    Replied(Reply),
    /// The socket failed: ICMP unreachable (ECONNREFUSED on a connected socket), a reset or
    /// closed TCP connection, no socket to be had.
    Failed(io::Error),
    /// Nothing settled it before the deadline; `malformed` when packets with the query's id
    /// came that could not be read.
    TimedOut { malformed: bool },
}

#[derive(Debug)]
pub struct Outcome {
    pub ending: Ending,
    /// From the first packet sent to the ending; the whole timeout for `TimedOut`.
    pub elapsed: Duration,
    /// Whether the exchange had moved to TCP.
    pub tcp: bool,
}

/// Carry every exchange at once, each bounded by `timeout` from the start: all sockets are
/// non-blocking and one poll(2) loop serves them, so the time taken is one timeout at most,
/// whatever their number, with no thread. Outcomes come in the order of `exchanges`.
pub fn exchange(exchanges: &[Exchange], timeout: Duration) -> Vec<Outcome> {
    let deadline = Instant::now() + timeout;
    let mut flights: Vec<Flight> = exchanges.iter().map(Flight::start).collect();
    loop {
        let waiting: Vec<usize> = (0..flights.len())
            .filter(|&i| !flights[i].is_over())
            .collect();
        let left = deadline.saturating_duration_since(Instant::now());
        if waiting.is_empty() || left.is_zero() {
            break;
        }
        match wait(&flights, &waiting, left) {
            Ok(ready) => {
                for i in ready {
                    flights[i].advance(&exchanges[i]);
                }
            }
            // poll itself failed (no memory, more sockets than RLIMIT_NOFILE): nothing more
            // can be heard.
            Err(errno) => {
                for i in waiting {
                    flights[i].end(Ending::Failed(errno.into()));
                }
            }
        }
    }
    flights
        .into_iter()
        .map(|flight| flight.outcome(timeout))
        .collect()
}

/// One exchange on its way.
struct Flight {
    stage: Stage,
    /// When the first packet went out.
    sent: Instant,
    malformed: bool,
    tcp: bool,
}

enum Stage {
    /// Connected UDP: the kernel drops datagrams from any other address, and an ICMP port
    /// unreachable comes back as ECONNREFUSED instead of a silent wait. `sent` is false only
    /// while the send buffer was full.
    Udp {
        socket: UdpSocket,
        sent: bool,
    },
    /// TCP: `unsent` is what is left of the length-prefixed query (all of it while the
    /// connection is being made), `received` the answer's bytes so far.
    Tcp {
        stream: TcpStream,
        unsent: Vec<u8>,
        received: Vec<u8>,
    },
    Over(Ending, Instant),
}

impl Flight {
    /// Open the socket and send the query: the time starts with that first packet.
    fn start(exchange: &Exchange) -> Flight {
        let sent = Instant::now();
        let stage = match open_udp(exchange.server) {
            Ok(socket) => Stage::Udp {
                socket,
                sent: false,
            },
            Err(e) => Stage::Over(Ending::Failed(e), sent),
        };
        let mut flight = Flight {
            stage,
            sent,
            malformed: false,
            tcp: false,
        };
        flight.advance(exchange);
        flight
    }

    fn is_over(&self) -> bool {
        matches!(self.stage, Stage::Over(..))
    }

    fn end(&mut self, ending: Ending) {
        self.stage = Stage::Over(ending, Instant::now());
    }

    /// What to wait for, on which socket.
    fn interest(&self) -> Option<(BorrowedFd<'_>, PollFlags)> {
        let writing = PollFlags::POLLOUT;
        let reading = PollFlags::POLLIN;
        match &self.stage {
            Stage::Udp { socket, sent } => {
                Some((socket.as_fd(), if *sent { reading } else { writing }))
            }
            Stage::Tcp { stream, unsent, .. } => Some((
                stream.as_fd(),
                if unsent.is_empty() { reading } else { writing },
            )),
            Stage::Over(..) => None,
        }
    }

    /// The socket is ready (or has an error to report): move on as far as it goes without
    /// waiting.
    fn advance(&mut self, exchange: &Exchange) {
        let step = match &mut self.stage {
            Stage::Udp { socket, sent } if !*sent => match socket.send(&exchange.query) {
                Ok(_) => {
                    *sent = true;
                    Step::Wait
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Step::Wait,
                Err(e) => Step::End(Ending::Failed(e)),
            },
            Stage::Udp { socket, .. } => receive_udp(socket, &exchange.read, &mut self.malformed),
            Stage::Tcp {
                stream,
                unsent,
                received,
            } => {
                if unsent.is_empty() {
                    receive_tcp(stream, received, &exchange.read, &mut self.malformed)
                } else {
                    send_tcp(stream, unsent)
                }
            }
            Stage::Over(..) => Step::Wait,
        };
        match step {
            Step::Wait => {}
            Step::End(ending) => self.end(ending),
            Step::Tcp => {
                self.tcp = true;
                match open_tcp(exchange.server) {
                    Ok(stream) => {
                        self.stage = Stage::Tcp {
                            stream,
                            unsent: framed(&exchange.query),
                            received: Vec::new(),
                        }
                    }
                    Err(e) => self.end(Ending::Failed(e)),
                }
            }
        }
    }

    fn outcome(self, timeout: Duration) -> Outcome {
        let (ending, elapsed) = match self.stage {
            Stage::Over(ending, at) => (ending, at.saturating_duration_since(self.sent)),
            // Still waiting at the deadline: it was given the whole timeout.
            _ => (
                Ending::TimedOut {
                    malformed: self.malformed,
                },
                timeout,
            ),
        };
        Outcome {
            ending,
            elapsed,
            tcp: self.tcp,
        }
    }
}

/// Where an exchange goes after its socket was served.
enum Step {
    Wait,
    End(Ending),
    Tcp,
}

/// Sleep in poll(2) until one of the `waiting` flights' sockets is ready (or has an error to
/// report) or `left` runs out; the flights that are ready. poll sleeps on a high-resolution timer; a
/// socket's SO_RCVTIMEO runs on the timer wheel, which wakes a 1 s wait tens of ms late.
fn wait(flights: &[Flight], waiting: &[usize], left: Duration) -> Result<Vec<usize>, Errno> {
    let interests: Vec<(usize, BorrowedFd, PollFlags)> = waiting
        .iter()
        .filter_map(|&i| flights[i].interest().map(|(fd, flags)| (i, fd, flags)))
        .collect();
    let mut fds: Vec<PollFd> = interests
        .iter()
        .map(|(_, fd, flags)| PollFd::new(*fd, *flags))
        .collect();
    let ms = left.as_micros().div_ceil(1000);
    let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
    match poll(&mut fds, timeout) {
        Ok(_) => {}
        Err(Errno::EINTR) => return Ok(Vec::new()),
        Err(errno) => return Err(errno),
    }
    Ok(interests
        .iter()
        .zip(&fds)
        .filter(|(_, fd)| fd.revents().is_some_and(|events| !events.is_empty()))
        .map(|((i, _, _), _)| *i)
        .collect())
}

fn open_udp(server: SocketAddr) -> io::Result<UdpSocket> {
    let local: IpAddr = match server {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = UdpSocket::bind((local, 0))?;
    socket.connect(server)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// Every datagram waiting on the socket, read until one settles the exchange.
fn receive_udp(socket: &UdpSocket, read: &dyn Fn(&[u8]) -> Reply, malformed: &mut bool) -> Step {
    let mut buffer = vec![0u8; MAX_MESSAGE];
    loop {
        let received = match socket.recv(&mut buffer) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Wait,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Step::End(Ending::Failed(e)),
        };
        match read(&buffer[..received]) {
            Reply::NotOurs => {}
            Reply::Malformed => *malformed = true,
            Reply::Truncated => return Step::Tcp,
            reply => return Step::End(Ending::Replied(reply)),
        }
    }
}

/// A TCP connection being made: std connects only while blocking, so the socket is made
/// non-blocking before connect(2), which then returns EINPROGRESS; poll reports it writable
/// once the connection is made or has failed.
fn open_tcp(server: SocketAddr) -> io::Result<TcpStream> {
    let family = match server {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    let fd = socket(family, SockType::Stream, flags, None)?;
    match connect(fd.as_raw_fd(), &SockaddrStorage::from(server)) {
        Ok(()) | Err(Errno::EINPROGRESS) => Ok(TcpStream::from(fd)),
        Err(errno) => Err(errno.into()),
    }
}

/// A DNS message over TCP: its length first, in two bytes.
fn framed(message: &[u8]) -> Vec<u8> {
    // A query is a few hundred bytes at most.
    let length = u16::try_from(message.len()).unwrap_or(u16::MAX);
    let mut framed = length.to_be_bytes().to_vec();
    framed.extend_from_slice(message);
    framed
}

fn send_tcp(stream: &mut TcpStream, unsent: &mut Vec<u8>) -> Step {
    // The first time the socket is writable, the connection is made or has failed.
    match stream.take_error() {
        Ok(None) => {}
        Ok(Some(e)) | Err(e) => return Step::End(Ending::Failed(e)),
    }
    match stream.write(unsent) {
        Ok(n) => {
            unsent.drain(..n);
            Step::Wait
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) =>
        {
            Step::Wait
        }
        Err(e) => Step::End(Ending::Failed(e)),
    }
}

/// Read what has come; each whole message is read in turn until one settles the exchange (a
/// server may send an answer to an older query on the same connection first).
fn receive_tcp(
    stream: &mut TcpStream,
    received: &mut Vec<u8>,
    read: &dyn Fn(&[u8]) -> Reply,
    malformed: &mut bool,
) -> Step {
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => {
                return Step::End(Ending::Failed(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the server closed the TCP connection without an answer",
                )))
            }
            Ok(n) => received.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Wait,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Step::End(Ending::Failed(e)),
        }
        while let Some(message) = whole_message(received) {
            let reply = read(&message);
            match reply {
                Reply::NotOurs => {}
                Reply::Malformed => *malformed = true,
                // Truncated over TCP settles it too: there is nothing bigger to ask over.
                reply => return Step::End(Ending::Replied(reply)),
            }
        }
    }
}

/// The first length-prefixed message in `received`, taken out of it, once all of it is there.
fn whole_message(received: &mut Vec<u8>) -> Option<Vec<u8>> {
    let prefix: [u8; 2] = received.get(..2)?.try_into().ok()?;
    let end = 2 + usize::from(u16::from_be_bytes(prefix));
    if received.len() < end {
        return None;
    }
    let message = received[2..end].to_vec();
    received.drain(..end);
    Some(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::wire::testing::{aaaa, bytes, name, response};
    use crate::dns::wire::{build_query, classify, Family, Status};
    use hickory_proto::op::{Message, ResponseCode};
    use hickory_proto::rr::RecordType;

    #[test]
    fn the_transport_serves_every_exchange_in_one_timeout() {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let closed = UdpSocket::bind("127.0.0.1:0").unwrap();
        let closed_address = closed.local_addr().unwrap();
        drop(closed);
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let server_address = server.local_addr().unwrap();
        let answering = std::thread::spawn(move || {
            let mut buffer = [0u8; 512];
            let (n, peer) = server.recv_from(&mut buffer).unwrap();
            let query = Message::from_vec(&buffer[..n]).unwrap();
            let mut m = response(
                query.metadata.id,
                "dual.test",
                RecordType::AAAA,
                ResponseCode::NoError,
            );
            m.add_answer(aaaa("dual.test", "2001:db8::66"));
            let good = bytes(&m);
            server.send_to(&good[..good.len() - 5], peer).unwrap();
            server.send_to(&good, peer).unwrap();
        });
        let name = name("dual.test");
        let exchanges: Vec<Exchange> =
            [silent.local_addr().unwrap(), closed_address, server_address]
                .into_iter()
                .zip(1..)
                .map(|(server, id)| {
                    let name = &name;
                    Exchange {
                        server,
                        query: build_query(id, name, Family::Aaaa).unwrap(),
                        read: Box::new(move |p: &[u8]| classify(id, name, Family::Aaaa, p)),
                    }
                })
                .collect();
        let timeout = Duration::from_millis(300);
        let start = Instant::now();
        let outcomes = exchange(&exchanges, timeout);
        assert!(start.elapsed() >= timeout);
        assert!(start.elapsed() < timeout * 3, "{:?}", start.elapsed());
        answering.join().unwrap();
        assert!(matches!(
            outcomes[0].ending,
            Ending::TimedOut { malformed: false }
        ));
        assert_eq!(outcomes[0].elapsed, timeout);
        match &outcomes[1].ending {
            Ending::Failed(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused),
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(
                &outcomes[2].ending,
                Ending::Replied(Reply::Final {
                    status: Status::Ok,
                    ..
                })
            ),
            "{:?}",
            outcomes[2]
        );
        assert!(outcomes[2].elapsed < timeout);
    }
}
