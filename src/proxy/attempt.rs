//! One attempt over TCP: a client's query carried to one server on its own non-blocking
//! connection, until that server says something about it. (UDP queries share the sockets of
//! `pool`: a connection per query is what TCP is.)

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use hickory_proto::op::Query;
use nix::errno::Errno;
use nix::poll::PollFlags;
use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, SockaddrStorage};

use super::decide::Heard;
use super::wire;

/// The largest TCP frame: a whole DNS message and its length.
const MAX_FRAME: usize = 2 + 65535;

pub struct Attempt {
    /// The id this attempt's query carries (a fresh one: the client's is restored in the answer).
    pub id: u16,
    link: Link,
}

enum Link {
    /// TCP: `unsent` is what is left of the framed query (all of it while connecting).
    Tcp {
        stream: TcpStream,
        unsent: Vec<u8>,
        received: Vec<u8>,
    },
    /// Heard from, or failed: the socket is closed.
    Over,
}

/// What serving the socket brought.
pub enum Event {
    Nothing,
    /// A reply to our query, and its bytes.
    Reply(Heard, Vec<u8>),
    Failed(io::Error),
}

impl Attempt {
    /// Open the connection; `query` (the client's bytes with `id` in them) goes once it is made.
    pub fn start(server: SocketAddr, id: u16, query: &[u8]) -> io::Result<Attempt> {
        let link = Link::Tcp {
            stream: TcpStream::from(open(server, true)?),
            unsent: wire::framed(query),
            received: Vec::new(),
        };
        Ok(Attempt { id, link })
    }

    /// What to wait for, on which socket.
    pub fn interest(&self) -> Option<(BorrowedFd<'_>, PollFlags)> {
        match &self.link {
            Link::Tcp { stream, unsent, .. } => {
                Some((stream.as_fd(), readiness(!unsent.is_empty())))
            }
            Link::Over => None,
        }
    }

    /// The socket is ready (or has an error to report): go as far as it goes without waiting.
    /// Once the server has said something, or failed, the socket is closed.
    pub fn advance(&mut self, question: &Query, buffer: &mut [u8]) -> Event {
        let event = match &mut self.link {
            Link::Tcp {
                stream,
                unsent,
                received,
            } => {
                if unsent.is_empty() {
                    receive_tcp(stream, received, self.id, question, buffer)
                } else {
                    send_tcp(stream, unsent)
                }
            }
            Link::Over => Event::Nothing,
        };
        if !matches!(event, Event::Nothing) {
            self.link = Link::Over;
        }
        event
    }
}

fn readiness(writing: bool) -> PollFlags {
    if writing {
        PollFlags::POLLOUT
    } else {
        PollFlags::POLLIN
    }
}

/// A non-blocking, close-on-exec socket connected to `server`. For TCP, connect(2) returns
/// EINPROGRESS; poll reports the socket writable once the connection is made or has failed.
pub fn open(server: SocketAddr, tcp: bool) -> io::Result<OwnedFd> {
    let family = match server {
        SocketAddr::V4(_) => AddressFamily::Inet,
        SocketAddr::V6(_) => AddressFamily::Inet6,
    };
    let kind = if tcp {
        SockType::Stream
    } else {
        SockType::Datagram
    };
    let fd = socket(
        family,
        kind,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    match connect(fd.as_raw_fd(), &SockaddrStorage::from(server)) {
        Ok(()) | Err(Errno::EINPROGRESS) => Ok(fd),
        Err(errno) => Err(errno.into()),
    }
}

fn send_tcp(stream: &mut TcpStream, unsent: &mut Vec<u8>) -> Event {
    // The first time the socket is writable, the connection is made or has failed.
    match stream.take_error() {
        Ok(None) => {}
        Ok(Some(e)) | Err(e) => return Event::Failed(e),
    }
    match stream.write(unsent) {
        Ok(n) => {
            unsent.drain(..n.min(unsent.len()));
            Event::Nothing
        }
        Err(e) if is_transient(&e) => Event::Nothing,
        Err(e) => Event::Failed(e),
    }
}

/// Read what has come; each whole message in turn, until one is a reply to our query.
fn receive_tcp(
    stream: &mut TcpStream,
    received: &mut Vec<u8>,
    id: u16,
    question: &Query,
    buffer: &mut [u8],
) -> Event {
    loop {
        match stream.read(buffer) {
            Ok(0) => return Event::Failed(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => received.extend_from_slice(buffer.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Event::Nothing,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Event::Failed(e),
        }
        while let Some(message) = wire::take_frame(received) {
            if let Some(heard) = wire::read_reply(&message, id, question) {
                return Event::Reply(heard, message);
            }
        }
        // A frame never grows past its length: anything longer is not DNS.
        if received.len() > MAX_FRAME {
            return Event::Failed(io::ErrorKind::InvalidData.into());
        }
    }
}

pub fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}
