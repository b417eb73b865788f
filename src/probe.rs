//! Ask nameservers directly: one A and one AAAA query per server, all at once, each bounded by
//! one timeout, over UDP and over TCP when the answer is truncated.
//!
//! Three layers, each using only the one above it:
//! - the wire format ([`build_query`], [`classify`]): bytes in, bytes out, pure and tested on
//!   crafted messages;
//! - the transport ([`exchange`]): every query from the calling thread, on non-blocking sockets
//!   in one poll(2) loop under one deadline, so the whole probe takes one timeout however many
//!   servers there are, and needs no thread (a container's pids.max may not allow one);
//! - the probe policy ([`query`], [`probe`], [`auto_policy`], [`probe_file`]): whom to ask,
//!   and what an outcome means.
//!
//! Only `--probe`, `--embedded auto` and `--check-dns` come here: a plain start does no DNS
//! work.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, SockaddrStorage};

use hickory_proto::op::{Header, HeaderCounts, MessageType, Metadata, OpCode, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::binary::{
    BinDecodable, BinDecoder, BinEncodable, BinEncoder, DecodeError,
};

use crate::resolv_conf::{self, Nameserver, Policy, ResolvConf, EMBEDDED};

/// The port every stub resolver asks.
pub const PORT: u16 = 53;

/// glibc (MAXNS) and musl both use the first three nameservers they can read, and no more.
pub const MAXNS: usize = 3;

/// The name `--embedded auto` asks 127.0.0.11 for when no `--probe NAME` is given.
pub const DEFAULT_NAME: &str = "example.com";

/// The largest DNS message (TCP); a UDP answer without EDNS is at most 512 bytes.
const MAX_MESSAGE: usize = 65535;

// ---------------------------------------------------------------------------------------------
// The wire format: a query, and what the bytes that come back mean for it.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    A,
    Aaaa,
}

impl Family {
    pub fn record_type(self) -> RecordType {
        match self {
            Family::A => RecordType::A,
            Family::Aaaa => RecordType::AAAA,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Family::A => "A",
            Family::Aaaa => "AAAA",
        }
    }
}

/// How one query ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// NOERROR with at least one record of the asked type.
    Ok,
    /// NOERROR without a record of the asked type (the name exists, this family does not).
    NoData,
    NxDomain,
    ServFail,
    Refused,
    /// No answer before the deadline.
    Timeout,
    /// Anything else: another RCODE, a socket error (ICMP unreachable...).
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::NoData => "nodata",
            Status::NxDomain => "nxdomain",
            Status::ServFail => "servfail",
            Status::Refused => "refused",
            Status::Timeout => "timeout",
            Status::Error => "error",
        }
    }

    /// An answer a stub resolver takes as final (NOERROR or NXDOMAIN): glibc and musl stop
    /// there and never ask another server. SERVFAIL, REFUSED, silence and errors move them on.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Ok | Status::NoData | Status::NxDomain)
    }
}

/// A name as asked on the wire: ASCII (no IDNA), absolute.
pub fn parse_name(name: &str) -> Result<Name, String> {
    let absolute = if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    };
    // hickory's errors are not formatted: their Display pulls IDNA tables and base64 into the
    // static binary, a large share of its size for one line of text.
    Name::from_ascii(&absolute).map_err(|_| {
        format!("'{name}' is not a domain name (ASCII labels of at most 63 bytes, 253 in all)")
    })
}

/// A standard recursive query for `name`, with no EDNS (as glibc and musl send by default).
pub fn build_query(id: u16, name: &Name, family: Family) -> Result<Vec<u8>, String> {
    let mut metadata = Metadata::new(id, MessageType::Query, OpCode::Query);
    metadata.recursion_desired = true;
    let header = Header {
        metadata,
        counts: HeaderCounts {
            queries: 1,
            ..HeaderCounts::default()
        },
    };
    let mut packet = Vec::with_capacity(64);
    let mut encoder = BinEncoder::new(&mut packet);
    header
        .emit(&mut encoder)
        .and_then(|()| Query::query(name.clone(), family.record_type()).emit(&mut encoder))
        .map_err(|_| "cannot encode the query".to_owned())?;
    Ok(packet)
}

/// What a received packet means for the query `id` for `name` and `family`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Not an answer to this query (another id, another question, not a response, garbage):
    /// keep waiting, as a stub resolver does.
    NotOurs,
    /// Our id, but not a message that can be read to its end: keep waiting too. A stub
    /// resolver drops what it cannot match to its query and waits for the next packet (musl
    /// for anything it cannot identify, glibc for a question it cannot match); a spoofed or
    /// mangled packet must not hide the good answer behind it.
    Malformed,
    /// TC set: ask again over TCP.
    Truncated,
    Final {
        status: Status,
        addresses: Vec<IpAddr>,
        detail: Option<String>,
    },
}

/// The parts of an answer a probe looks at. Records are read by hand instead of with
/// `Message`: its decoder formats every record type for a panic message it can never reach,
/// and that alone would bring IDNA tables and base64 into the static binary.
struct Decoded {
    metadata: Metadata,
    queries: Result<Vec<Query>, DecodeError>,
    answers: Result<Vec<AnswerRecord>, DecodeError>,
}

/// One record of the answer section, as far as a stub resolver reads it.
struct AnswerRecord {
    owner: Name,
    class: u16,
    data: RecordData,
}

enum RecordData {
    /// A CNAME, with its target.
    Alias(Name),
    /// Any other type, with its RDATA.
    Other(RecordType, Vec<u8>),
}

fn decode(packet: &[u8]) -> Result<Decoded, DecodeError> {
    let mut decoder = BinDecoder::new(packet);
    let header = Header::read(&mut decoder)?;
    let queries: Result<Vec<Query>, DecodeError> = (0..header.counts.queries)
        .map(|_| Query::read(&mut decoder))
        .collect();
    let answers = queries.as_ref().map_err(Clone::clone).and_then(|_| {
        (0..header.counts.answers)
            .map(|_| read_record(&mut decoder))
            .collect()
    });
    Ok(Decoded {
        metadata: header.metadata,
        queries,
        answers,
    })
}

fn read_record(decoder: &mut BinDecoder) -> Result<AnswerRecord, DecodeError> {
    let owner = Name::read(decoder)?;
    let kind = RecordType::from(decoder.read_u16()?.unverified());
    let class = decoder.read_u16()?.unverified();
    decoder.read_u32()?; // TTL
    let length = decoder.read_u16()?.unverified();
    let start = decoder.index();
    let rdata = decoder.read_slice(usize::from(length))?.unverified();
    let data = if kind == RecordType::CNAME {
        // The target may point back into the message (name compression): read it there.
        let start = u16::try_from(start).map_err(|_| DecodeError::InsufficientBytes)?;
        RecordData::Alias(Name::read(&mut decoder.clone(start))?)
    } else {
        RecordData::Other(kind, rdata.to_vec())
    };
    Ok(AnswerRecord { owner, class, data })
}

/// The class IN.
const CLASS_IN: u16 = 1;

pub fn classify(id: u16, name: &Name, family: Family, packet: &[u8]) -> Reply {
    let ours = packet.len() >= 2 && u16::from_be_bytes([packet[0], packet[1]]) == id;
    if !ours {
        return Reply::NotOurs;
    }
    let Ok(message) = decode(packet) else {
        return Reply::Malformed;
    };
    if message.metadata.message_type != MessageType::Response {
        return Reply::NotOurs;
    }
    let Ok(queries) = message.queries else {
        // A truncated answer may be cut anywhere: TCP will tell.
        return if message.metadata.truncation {
            Reply::Truncated
        } else {
            Reply::Malformed
        };
    };
    let rcode = message.metadata.response_code;
    let question_matches = queries
        .iter()
        .any(|q| q.name() == name && q.query_type() == family.record_type());
    // Servers may leave the question out of an error answer (FORMERR, REFUSED, NOTIMP); an
    // answer with data must repeat our question.
    let question_ok = question_matches || (queries.is_empty() && rcode != ResponseCode::NoError);
    if !question_ok {
        return Reply::NotOurs;
    }
    if message.metadata.truncation {
        return Reply::Truncated;
    }
    let Ok(answers) = message.answers else {
        return Reply::Malformed;
    };
    let (status, detail) = match rcode {
        ResponseCode::NoError => (Status::Ok, None),
        ResponseCode::NXDomain => (Status::NxDomain, None),
        ResponseCode::ServFail => (Status::ServFail, None),
        ResponseCode::Refused => (Status::Refused, None),
        other => (
            Status::Error,
            Some(format!("answer code {}", other.to_str())),
        ),
    };
    let addresses = addresses_on_chain(name, family, &answers);
    let status = match status {
        Status::Ok if addresses.is_empty() => Status::NoData,
        status => status,
    };
    Reply::Final {
        status,
        addresses,
        detail,
    }
}

/// The addresses glibc takes from an answer section (getanswer_r in nss_dns): it reads the
/// records once, in order, looking for the question's name; a CNAME moves the name looked for
/// to its target (whatever the CNAME's owner, "based on historic precedent"), and only an
/// address owned by the name looked for at that point counts, so an address for another name,
/// or one placed before the CNAME that leads to it, is skipped. Names compare without case.
/// musl does not look at owners: an answer glibc takes, musl takes too.
fn addresses_on_chain(question: &Name, family: Family, answers: &[AnswerRecord]) -> Vec<IpAddr> {
    let mut looked_for = question;
    let mut addresses = Vec::new();
    for record in answers.iter().filter(|r| r.class == CLASS_IN) {
        match &record.data {
            RecordData::Alias(target) => looked_for = target,
            RecordData::Other(kind, data)
                if *kind == family.record_type() && record.owner == *looked_for =>
            {
                // glibc skips an address of the wrong length.
                let address = match family {
                    Family::A => <[u8; 4]>::try_from(data.as_slice()).ok().map(IpAddr::from),
                    Family::Aaaa => <[u8; 16]>::try_from(data.as_slice()).ok().map(IpAddr::from),
                };
                addresses.extend(address);
            }
            RecordData::Other(..) => {}
        }
    }
    addresses
}

// ---------------------------------------------------------------------------------------------
// The transport: every exchange at once from this thread, one poll(2) loop, one deadline.
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// The probe: whom to ask for what, and what the outcomes mean.
// ---------------------------------------------------------------------------------------------

/// The outcome of one query to one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: Status,
    /// The addresses of the asked family in the answer section (after any CNAME).
    pub addresses: Vec<IpAddr>,
    /// From the first packet sent to the outcome.
    pub elapsed: Duration,
    /// Whether the answer came over TCP after a truncated UDP answer.
    pub tcp: bool,
    /// For `Error`: what went wrong; for `Timeout`: what came instead of an answer.
    pub detail: Option<String>,
}

impl Answer {
    /// One short phrase: `ok 2001:db8::1 (0.4 ms)`, `timeout (1000 ms)`, `error: ... (0.1 ms)`.
    pub fn summary(&self) -> String {
        let mut text = self.status.as_str().to_owned();
        for address in &self.addresses {
            text.push(' ');
            text.push_str(&address.to_string());
        }
        if let Some(detail) = &self.detail {
            text.push_str(": ");
            text.push_str(detail);
        }
        if self.tcp {
            text.push_str(" over TCP");
        }
        format!("{text} ({})", format_ms(self.elapsed))
    }

    fn failed(detail: String) -> Answer {
        Answer {
            status: Status::Error,
            addresses: Vec::new(),
            elapsed: Duration::ZERO,
            tcp: false,
            detail: Some(detail),
        }
    }
}

/// Milliseconds for people: one decimal below 10 ms, whole numbers above.
pub fn format_ms(elapsed: Duration) -> String {
    let ms = elapsed.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// One server's answers for both families.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerProbe {
    pub server: IpAddr,
    pub a: Answer,
    pub aaaa: Answer,
}

impl ServerProbe {
    pub fn answer(&self, family: Family) -> &Answer {
        match family {
            Family::A => &self.a,
            Family::Aaaa => &self.aaaa,
        }
    }
}

/// A query id. It need not be unpredictable: the answer is only taken from the server's own
/// address and port on a connected socket with a kernel-chosen source port, and a probe's
/// result only decides what is logged and whether 127.0.0.11 stays. Drawing it from the clock
/// keeps the static binary free of a random number generator that could fail in a bare chroot.
fn query_id() -> u16 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x = nanos
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // splitmix64's finalizer spreads every input bit over the output.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (x ^ (x >> 31)) as u16
}

/// Ask each `(server, family)` for `name`, all at once, in one timeout. Answers come in the
/// order asked.
fn ask(asked: &[(IpAddr, Family)], name: &Name, timeout: Duration) -> Result<Vec<Answer>, String> {
    let exchanges = asked
        .iter()
        .map(|&(server, family)| {
            let id = query_id();
            Ok(Exchange {
                server: SocketAddr::new(server, PORT),
                query: build_query(id, name, family)?,
                read: Box::new(move |packet: &[u8]| classify(id, name, family, packet)),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(exchange(&exchanges, timeout)
        .into_iter()
        .map(answer)
        .collect())
}

fn answer(outcome: Outcome) -> Answer {
    let (status, addresses, detail) = match outcome.ending {
        Ending::Replied(Reply::Final {
            status,
            addresses,
            detail,
        }) => (status, addresses, detail),
        Ending::Replied(_) => (
            Status::Error,
            Vec::new(),
            Some("truncated answer over TCP".to_owned()),
        ),
        Ending::Failed(e) => (Status::Error, Vec::new(), Some(failure(&e))),
        Ending::TimedOut { malformed } => (
            Status::Timeout,
            Vec::new(),
            malformed.then(|| "only malformed answers".to_owned()),
        ),
    };
    Answer {
        status,
        addresses,
        elapsed: outcome.elapsed,
        tcp: outcome.tcp,
        detail,
    }
}

fn failure(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => {
            "connection refused (nothing listens on port 53)".to_owned()
        }
        _ => e.to_string(),
    }
}

/// Ask `server` for `name` of one family; never takes longer than `timeout` (plus the time to
/// notice it ran out).
pub fn query(server: IpAddr, name: &Name, family: Family, timeout: Duration) -> Answer {
    match ask(&[(server, family)], name, timeout) {
        Ok(mut answers) if answers.len() == 1 => answers.remove(0),
        Ok(_) => Answer::failed("no answer was recorded".to_owned()),
        Err(e) => Answer::failed(e),
    }
}

/// Ask every server for `name`'s A and AAAA at once, in one timeout. Results come in the
/// order of `servers`.
pub fn probe(
    servers: &[IpAddr],
    name: &str,
    timeout: Duration,
) -> Result<Vec<ServerProbe>, String> {
    let name = parse_name(name)?;
    let asked: Vec<(IpAddr, Family)> = servers
        .iter()
        .flat_map(|&server| [(server, Family::A), (server, Family::Aaaa)])
        .collect();
    let mut answers = ask(&asked, &name, timeout)?.into_iter();
    Ok(servers
        .iter()
        .map(|&server| {
            let mut next = || {
                answers
                    .next()
                    .unwrap_or_else(|| Answer::failed("no answer was recorded".to_owned()))
            };
            let (a, aaaa) = (next(), next());
            ServerProbe { server, a, aaaa }
        })
        .collect())
}

/// The servers a C library uses, in order: the first [`MAXNS`] `nameserver` lines it can read.
pub fn servers_in_use(conf: &ResolvConf) -> Vec<IpAddr> {
    conf.nameservers()
        .filter_map(Nameserver::address)
        .take(MAXNS)
        .collect()
}

/// With no usable `nameserver` line, glibc and musl both ask 127.0.0.1.
pub fn servers_or_fallback(conf: &ResolvConf) -> Vec<IpAddr> {
    let servers = servers_in_use(conf);
    if servers.is_empty() {
        vec![Ipv4Addr::LOCALHOST.into()]
    } else {
        servers
    }
}

/// Does `--embedded auto` keep 127.0.0.11, given its answer? NOERROR or NXDOMAIN in time:
/// it works, and it is what resolves the names of other containers.
pub fn embedded_answers(answer: &Answer) -> bool {
    answer.status.is_final()
}

/// `--embedded auto`: the policy for the file at `path`, and why. 127.0.0.11 is only asked
/// when the choice matters (it is listed, and another server could replace it).
pub fn auto_policy(path: &Path, name: Option<&str>, timeout: Duration) -> (Policy, String) {
    let content = match resolv_conf::read(path) {
        Ok(content) => content,
        // The fix reads the file again and reports the failure with its remedy.
        Err(_) => return (Policy::Drop, format!("{} cannot be read", path.display())),
    };
    let conf = resolv_conf::parse(&content);
    if !resolv_conf::plan(&conf, Policy::Drop).changes() {
        return (
            Policy::Keep,
            "nothing to decide: 127.0.0.11 is absent or the only nameserver".to_owned(),
        );
    }
    let name = name.unwrap_or(DEFAULT_NAME);
    let answer = match parse_name(name) {
        Ok(name) => query(EMBEDDED.into(), &name, Family::Aaaa, timeout),
        Err(e) => return (Policy::Drop, e),
    };
    let said = format!("127.0.0.11 answered AAAA {name}: {}", answer.summary());
    if embedded_answers(&answer) {
        (
            Policy::Keep,
            format!("{said}; kept, names of other containers keep resolving"),
        )
    } else {
        (
            Policy::Drop,
            format!("{said}; dropped, it stands in the way of the other nameservers"),
        )
    }
}

/// `--probe NAME` in run mode: ask the servers the app will use (after the fix), log one info
/// line per server, and warn when none gives an AAAA record. Returns whether one did.
pub fn probe_file(path: &Path, name: &str, timeout: Duration) -> bool {
    let content = match resolv_conf::read(path) {
        Ok(content) => content,
        Err(e) => {
            crate::warn!("--probe {name}: {e}");
            return false;
        }
    };
    let conf = resolv_conf::parse(&content);
    let servers = servers_or_fallback(&conf);
    let probes = match probe(&servers, name, timeout) {
        Ok(probes) => probes,
        Err(e) => {
            crate::warn!("--probe: {e}");
            return false;
        }
    };
    for p in &probes {
        crate::info!(
            "probe {name} via {}: AAAA {}, A {}",
            p.server,
            p.aaaa.summary(),
            p.a.summary()
        );
    }
    let resolved = probes.iter().any(|p| p.aaaa.status == Status::Ok);
    if !resolved {
        let seen: Vec<String> = probes
            .iter()
            .map(|p| format!("{} {}", p.server, p.aaaa.status.as_str()))
            .collect();
        crate::warn!(
            "--probe: no nameserver returned an AAAA record for {name} ({}); the app may not reach IPv6 names",
            seen.join(", ")
        );
    }
    resolved
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Message;
    use hickory_proto::rr::rdata::{A, AAAA, CNAME};
    use hickory_proto::rr::{RData, Record};

    fn name(text: &str) -> Name {
        parse_name(text).unwrap()
    }

    fn response(id: u16, question: &str, qtype: RecordType, rcode: ResponseCode) -> Message {
        let mut m = Message::response(id, OpCode::Query);
        m.metadata.response_code = rcode;
        m.add_query(Query::query(name(question), qtype));
        m
    }

    fn bytes(m: &Message) -> Vec<u8> {
        m.to_vec().unwrap()
    }

    fn final_(status: Status, addresses: Vec<IpAddr>) -> Reply {
        Reply::Final {
            status,
            addresses,
            detail: None,
        }
    }

    #[test]
    fn the_query_asks_one_recursive_question() {
        let packet = build_query(0x1234, &name("v6only.test"), Family::Aaaa).unwrap();
        let m = Message::from_vec(&packet).unwrap();
        assert_eq!(m.metadata.id, 0x1234);
        assert_eq!(m.metadata.message_type, MessageType::Query);
        assert!(m.metadata.recursion_desired);
        assert!(m.edns.is_none());
        assert_eq!(m.queries.len(), 1);
        assert_eq!(m.queries[0].name(), &name("v6only.test."));
        assert_eq!(m.queries[0].query_type(), RecordType::AAAA);
        // id, flags RD, 1 question, 0 answers: the header as glibc sends it.
        assert_eq!(&packet[..6], &[0x12, 0x34, 0x01, 0x00, 0x00, 0x01]);
    }

    #[test]
    fn names_are_absolute_and_ascii() {
        assert!(name("example.com").is_fqdn());
        assert_eq!(name("example.com"), name("EXAMPLE.com."));
        assert!(parse_name("bad name").is_err());
    }

    #[test]
    fn addresses_of_the_asked_family_make_ok() {
        let mut m = response(7, "dual.test", RecordType::AAAA, ResponseCode::NoError);
        let v6: Ipv6Addr = "2001:db8::66".parse().unwrap();
        m.add_answer(Record::from_rdata(
            name("dual.test"),
            60,
            RData::AAAA(AAAA(v6)),
        ));
        // A stray A record in an AAAA answer is not an AAAA address.
        m.add_answer(Record::from_rdata(
            name("dual.test"),
            60,
            RData::A(A::new(192, 0, 2, 1)),
        ));
        let reply = classify(7, &name("dual.test"), Family::Aaaa, &bytes(&m));
        assert_eq!(reply, final_(Status::Ok, vec![IpAddr::V6(v6)]));
    }

    #[test]
    fn a_cname_chain_is_followed_to_its_addresses() {
        let mut m = response(8, "www.test", RecordType::A, ResponseCode::NoError);
        m.add_answer(Record::from_rdata(
            name("www.test"),
            60,
            RData::CNAME(CNAME(name("web.test"))),
        ));
        m.add_answer(Record::from_rdata(
            name("web.test"),
            60,
            RData::A(A::new(192, 0, 2, 8)),
        ));
        let reply = classify(8, &name("www.test"), Family::A, &bytes(&m));
        assert_eq!(
            reply,
            final_(Status::Ok, vec!["192.0.2.8".parse().unwrap()])
        );
    }

    #[test]
    fn noerror_without_records_is_nodata() {
        let m = response(9, "v4only.test", RecordType::AAAA, ResponseCode::NoError);
        let reply = classify(9, &name("v4only.test"), Family::Aaaa, &bytes(&m));
        assert_eq!(reply, final_(Status::NoData, vec![]));
    }

    #[test]
    fn response_codes_map_to_statuses() {
        for (rcode, status) in [
            (ResponseCode::NXDomain, Status::NxDomain),
            (ResponseCode::ServFail, Status::ServFail),
            (ResponseCode::Refused, Status::Refused),
        ] {
            let m = response(10, "x.test", RecordType::A, rcode);
            assert_eq!(
                classify(10, &name("x.test"), Family::A, &bytes(&m)),
                final_(status, vec![])
            );
        }
        let m = response(10, "x.test", RecordType::A, ResponseCode::FormErr);
        match classify(10, &name("x.test"), Family::A, &bytes(&m)) {
            Reply::Final {
                status: Status::Error,
                detail: Some(detail),
                ..
            } => assert!(detail.contains("Form"), "{detail}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn error_answers_may_leave_the_question_out() {
        let mut m = Message::response(11, OpCode::Query);
        m.metadata.response_code = ResponseCode::Refused;
        let reply = classify(11, &name("x.test"), Family::A, &bytes(&m));
        assert_eq!(reply, final_(Status::Refused, vec![]));
        // ... but a NOERROR answer without our question is not ours.
        let m = Message::response(11, OpCode::Query);
        assert_eq!(
            classify(11, &name("x.test"), Family::A, &bytes(&m)),
            Reply::NotOurs
        );
    }

    #[test]
    fn answers_to_other_queries_are_ignored() {
        let m = response(12, "x.test", RecordType::A, ResponseCode::NXDomain);
        let packet = bytes(&m);
        assert_eq!(
            classify(13, &name("x.test"), Family::A, &packet),
            Reply::NotOurs
        );
        assert_eq!(
            classify(12, &name("y.test"), Family::A, &packet),
            Reply::NotOurs
        );
        assert_eq!(
            classify(12, &name("x.test"), Family::Aaaa, &packet),
            Reply::NotOurs
        );
        // Our own query echoed back is not an answer.
        let query = build_query(12, &name("x.test"), Family::A).unwrap();
        assert_eq!(
            classify(12, &name("x.test"), Family::A, &query),
            Reply::NotOurs
        );
        assert_eq!(
            classify(12, &name("x.test"), Family::A, &[0]),
            Reply::NotOurs
        );
    }

    #[test]
    fn garbage_with_our_id_is_malformed() {
        let reply = classify(
            0x0102,
            &name("x.test"),
            Family::A,
            &[1, 2, 0x81, 0x80, 0, 1],
        );
        assert_eq!(reply, Reply::Malformed);
    }

    fn aaaa(owner: &str, v6: &str) -> Record {
        Record::from_rdata(name(owner), 60, RData::AAAA(AAAA(v6.parse().unwrap())))
    }

    fn cname(owner: &str, target: &str) -> Record {
        Record::from_rdata(name(owner), 60, RData::CNAME(CNAME(name(target))))
    }

    /// The AAAA answer for `question` with `records`, classified.
    fn chain(question: &str, records: Vec<Record>) -> Reply {
        let mut m = response(30, question, RecordType::AAAA, ResponseCode::NoError);
        for record in records {
            m.add_answer(record);
        }
        classify(30, &name(question), Family::Aaaa, &bytes(&m))
    }

    fn ok(addresses: &[&str]) -> Reply {
        let addresses = addresses.iter().map(|a| a.parse().unwrap()).collect();
        final_(Status::Ok, addresses)
    }

    #[test]
    fn an_address_of_another_name_is_not_an_answer() {
        let reply = chain("www.test", vec![aaaa("other.test", "2001:db8::1")]);
        assert_eq!(reply, final_(Status::NoData, vec![]));
    }

    #[test]
    fn addresses_count_along_the_cname_chain_in_glibc_order() {
        // question -> CNAME -> AAAA, names compared without case.
        let reply = chain(
            "www.test",
            vec![
                cname("WWW.test", "web.test"),
                aaaa("web.TEST", "2001:db8::8"),
            ],
        );
        assert_eq!(reply, ok(&["2001:db8::8"]));
        // A longer chain, in order.
        let reply = chain(
            "www.test",
            vec![
                cname("www.test", "a.test"),
                cname("a.test", "b.test"),
                aaaa("b.test", "2001:db8::b"),
            ],
        );
        assert_eq!(reply, ok(&["2001:db8::b"]));
        // glibc reads the records once, in order: an address before the CNAME that leads to
        // its owner is skipped, and so is one of the question after the chain moved on.
        let reply = chain(
            "www.test",
            vec![
                aaaa("web.test", "2001:db8::8"),
                cname("www.test", "web.test"),
                aaaa("www.test", "2001:db8::1"),
            ],
        );
        assert_eq!(reply, final_(Status::NoData, vec![]));
        let reply = chain(
            "www.test",
            vec![
                cname("a.test", "b.test"),
                cname("www.test", "a.test"),
                aaaa("b.test", "2001:db8::b"),
            ],
        );
        assert_eq!(reply, final_(Status::NoData, vec![]));
        // An address of the question before the CNAME still counts, as does its end's.
        let reply = chain(
            "www.test",
            vec![
                aaaa("www.test", "2001:db8::1"),
                cname("www.test", "web.test"),
                aaaa("web.test", "2001:db8::8"),
            ],
        );
        assert_eq!(reply, ok(&["2001:db8::1", "2001:db8::8"]));
        // glibc follows a CNAME whatever its owner ("historic precedent" in getanswer_r).
        let reply = chain(
            "www.test",
            vec![
                cname("elsewhere.test", "web.test"),
                aaaa("web.test", "2001:db8::8"),
            ],
        );
        assert_eq!(reply, ok(&["2001:db8::8"]));
    }

    #[test]
    fn a_malformed_answer_with_our_id_is_not_final() {
        let short = [1, 2, 0x81, 0x80, 0, 1];
        let mut m = response(0x0102, "dual.test", RecordType::AAAA, ResponseCode::NoError);
        m.add_answer(aaaa("dual.test", "2001:db8::66"));
        let good = bytes(&m);
        let cut = &good[..good.len() - 5];
        for packet in [&short[..], cut] {
            let reply = classify(0x0102, &name("dual.test"), Family::Aaaa, packet);
            assert!(!matches!(reply, Reply::Final { .. }), "{reply:?}");
            assert_eq!(reply, Reply::Malformed);
        }
    }

    /// The transport on loopback, with no namespace: a silent server, a closed port and a
    /// server that sends junk with the query's id before its answer, all in one timeout.
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
                .map(|server| {
                    let id = query_id();
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

    #[test]
    fn truncated_answers_go_to_tcp() {
        let mut m = response(14, "big.test", RecordType::AAAA, ResponseCode::NoError);
        m.metadata.truncation = true;
        let reply = classify(14, &name("big.test"), Family::Aaaa, &bytes(&m));
        assert_eq!(reply, Reply::Truncated);
    }

    #[test]
    fn a_truncated_answer_cut_inside_its_question_still_goes_to_tcp() {
        let mut m = response(15, "big.test", RecordType::AAAA, ResponseCode::NoError);
        m.metadata.truncation = true;
        let packet = bytes(&m);
        let cut = &packet[..packet.len() - 3];
        assert_eq!(
            classify(15, &name("big.test"), Family::Aaaa, cut),
            Reply::Truncated
        );
    }

    #[test]
    fn a_cut_answer_section_is_malformed() {
        let mut m = response(16, "dual.test", RecordType::AAAA, ResponseCode::NoError);
        let v6: Ipv6Addr = "2001:db8::66".parse().unwrap();
        m.add_answer(Record::from_rdata(
            name("dual.test"),
            60,
            RData::AAAA(AAAA(v6)),
        ));
        let packet = bytes(&m);
        let reply = classify(
            16,
            &name("dual.test"),
            Family::Aaaa,
            &packet[..packet.len() - 5],
        );
        assert_eq!(reply, Reply::Malformed);
    }

    #[test]
    fn records_of_another_class_are_not_addresses() {
        let mut m = response(17, "dual.test", RecordType::A, ResponseCode::NoError);
        let mut record = Record::from_rdata(name("dual.test"), 60, RData::A(A::new(192, 0, 2, 1)));
        record.dns_class = hickory_proto::rr::DNSClass::CH;
        m.add_answer(record);
        let reply = classify(17, &name("dual.test"), Family::A, &bytes(&m));
        assert_eq!(reply, final_(Status::NoData, vec![]));
    }

    #[test]
    fn only_noerror_and_nxdomain_are_final() {
        let finals: Vec<Status> = [
            Status::Ok,
            Status::NoData,
            Status::NxDomain,
            Status::ServFail,
            Status::Refused,
            Status::Timeout,
            Status::Error,
        ]
        .into_iter()
        .filter(|s| s.is_final())
        .collect();
        assert_eq!(finals, [Status::Ok, Status::NoData, Status::NxDomain]);
    }

    #[test]
    fn query_ids_vary() {
        let ids: std::collections::HashSet<u16> = (0..64).map(|_| query_id()).collect();
        assert!(ids.len() > 48, "{} distinct ids of 64", ids.len());
    }

    #[test]
    fn servers_in_use_are_the_first_three_readable_ones() {
        let conf = resolv_conf::parse(
            b"nameserver bogus\nnameserver 10.0.0.1\nnameserver 2001:db8::1\nnameserver 10.0.0.3\nnameserver 10.0.0.4\n",
        );
        let servers: Vec<String> = servers_in_use(&conf)
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(servers, ["10.0.0.1", "2001:db8::1", "10.0.0.3"]);
        let empty = resolv_conf::parse(b"search x\n");
        assert_eq!(
            servers_or_fallback(&empty),
            [IpAddr::from(Ipv4Addr::LOCALHOST)]
        );
    }

    #[test]
    fn summaries_name_status_addresses_and_time() {
        let answer = Answer {
            status: Status::Ok,
            addresses: vec!["2001:db8::6".parse().unwrap()],
            elapsed: Duration::from_micros(1500),
            tcp: true,
            detail: None,
        };
        assert_eq!(answer.summary(), "ok 2001:db8::6 over TCP (1.5 ms)");
        assert_eq!(format_ms(Duration::from_millis(1000)), "1000 ms");
    }
}
