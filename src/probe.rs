//! Ask nameservers directly: one A and one AAAA query per server, all in parallel, each bounded
//! by one timeout, over UDP and over TCP when the answer is truncated.
//!
//! The pure half builds a query and classifies the bytes that come back ([`build_query`],
//! [`classify`]); the edge ([`query`], [`probe`]) moves packets with blocking std sockets, one
//! thread per server and family, so the whole probe takes one timeout however many servers
//! there are. Only `--probe`, `--embedded auto` and `--check-dns` come here: a plain start
//! does no DNS work.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

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
    /// Anything else: another RCODE, a malformed answer, a socket error (ICMP unreachable...).
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
    /// For `Error`: what went wrong.
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
    /// TC set: ask again over TCP.
    Truncated,
    Final {
        status: Status,
        addresses: Vec<IpAddr>,
        detail: Option<String>,
    },
}

/// The parts of an answer a probe looks at. Records are read by hand, past their owner name,
/// instead of with `Message`: its decoder formats every record type for a panic message it
/// can never reach, and that alone would bring IDNA tables and base64 into the static binary.
struct Decoded {
    metadata: Metadata,
    queries: Result<Vec<Query>, DecodeError>,
    /// (type, class, rdata) of each record of the answer section.
    answers: Result<Vec<(RecordType, u16, Vec<u8>)>, DecodeError>,
}

fn decode(packet: &[u8]) -> Result<Decoded, DecodeError> {
    let mut decoder = BinDecoder::new(packet);
    let header = Header::read(&mut decoder)?;
    let queries: Result<Vec<Query>, DecodeError> = (0..header.counts.queries)
        .map(|_| Query::read(&mut decoder))
        .collect();
    let answers = queries.as_ref().map_err(Clone::clone).and_then(|_| {
        (0..header.counts.answers)
            .map(|_| {
                Name::read(&mut decoder)?;
                let kind = RecordType::from(decoder.read_u16()?.unverified());
                let class = decoder.read_u16()?.unverified();
                decoder.read_u32()?; // TTL
                let length = decoder.read_u16()?.unverified();
                let data = decoder.read_slice(usize::from(length))?.unverified();
                Ok((kind, class, data.to_vec()))
            })
            .collect()
    });
    Ok(Decoded {
        metadata: header.metadata,
        queries,
        answers,
    })
}

/// The class IN.
const CLASS_IN: u16 = 1;

pub fn classify(id: u16, name: &Name, family: Family, packet: &[u8]) -> Reply {
    let ours = packet.len() >= 2 && u16::from_be_bytes([packet[0], packet[1]]) == id;
    if !ours {
        return Reply::NotOurs;
    }
    // Our id, but not a DNS message we can read: the server answered, badly.
    let malformed = || Reply::Final {
        status: Status::Error,
        addresses: Vec::new(),
        detail: Some("malformed answer".to_owned()),
    };
    let Ok(message) = decode(packet) else {
        return malformed();
    };
    if message.metadata.message_type != MessageType::Response {
        return Reply::NotOurs;
    }
    let Ok(queries) = message.queries else {
        // A truncated answer may be cut anywhere: TCP will tell.
        return if message.metadata.truncation {
            Reply::Truncated
        } else {
            malformed()
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
        return malformed();
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
    // Every address of the asked family in the answer section: a resolver puts the CNAME chain
    // first and the addresses of its end after it.
    let addresses: Vec<IpAddr> = answers
        .iter()
        .filter(|(kind, class, _)| *kind == family.record_type() && *class == CLASS_IN)
        .filter_map(|(_, _, data)| match family {
            Family::A => <[u8; 4]>::try_from(data.as_slice()).ok().map(IpAddr::from),
            Family::Aaaa => <[u8; 16]>::try_from(data.as_slice()).ok().map(IpAddr::from),
        })
        .collect();
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

/// Ask `server` for `name` of one family; never takes longer than `timeout` (plus the time to
/// notice it ran out).
pub fn query(server: IpAddr, name: &Name, family: Family, timeout: Duration) -> Answer {
    let start = Instant::now();
    let deadline = start + timeout;
    let id = query_id();
    let (reply, tcp) = match exchange(server, id, name, family, deadline) {
        Ok(result) => result,
        Err(e) if is_timeout(&e) => (timeout_reply(), false),
        Err(e) => (error_reply(&e), false),
    };
    let (status, addresses, detail) = match reply {
        Reply::Final {
            status,
            addresses,
            detail,
        } => (status, addresses, detail),
        // TCP answers are never truncated; NotOurs never leaves `exchange`.
        Reply::Truncated | Reply::NotOurs => (
            Status::Error,
            Vec::new(),
            Some("truncated answer over TCP".to_owned()),
        ),
    };
    Answer {
        status,
        addresses,
        elapsed: if status == Status::Timeout {
            timeout
        } else {
            start.elapsed()
        },
        tcp,
        detail,
    }
}

fn timeout_reply() -> Reply {
    Reply::Final {
        status: Status::Timeout,
        addresses: Vec::new(),
        detail: None,
    }
}

fn error_reply(e: &io::Error) -> Reply {
    let detail = match e.kind() {
        io::ErrorKind::ConnectionRefused => {
            "connection refused (nothing listens on port 53)".to_owned()
        }
        _ => e.to_string(),
    };
    Reply::Final {
        status: Status::Error,
        addresses: Vec::new(),
        detail: Some(detail),
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// The time left before `deadline`, or a timeout error once there is none.
fn remaining(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(io::ErrorKind::TimedOut.into())
    } else {
        Ok(left)
    }
}

/// UDP first; TCP when the UDP answer is truncated. Returns the final reply and whether TCP
/// carried it.
fn exchange(
    server: IpAddr,
    id: u16,
    name: &Name,
    family: Family,
    deadline: Instant,
) -> io::Result<(Reply, bool)> {
    let packet = build_query(id, name, family).map_err(io::Error::other)?;
    let address = SocketAddr::new(server, PORT);
    match udp(address, &packet, id, name, family, deadline)? {
        Reply::Truncated => Ok((tcp(address, &packet, id, name, family, deadline)?, true)),
        reply => Ok((reply, false)),
    }
}

fn udp(
    server: SocketAddr,
    packet: &[u8],
    id: u16,
    name: &Name,
    family: Family,
    deadline: Instant,
) -> io::Result<Reply> {
    let local: IpAddr = match server {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = UdpSocket::bind((local, 0))?;
    // Connected: the kernel drops datagrams from any other address, and an ICMP port
    // unreachable comes back as ECONNREFUSED instead of a silent wait.
    socket.connect(server)?;
    socket.send(packet)?;
    let mut buffer = vec![0u8; MAX_MESSAGE];
    loop {
        wait_readable(socket.as_fd(), deadline)?;
        let received = socket.recv(&mut buffer)?;
        match classify(id, name, family, &buffer[..received]) {
            Reply::NotOurs => continue,
            reply => return Ok(reply),
        }
    }
}

fn tcp(
    server: SocketAddr,
    packet: &[u8],
    id: u16,
    name: &Name,
    family: Family,
    deadline: Instant,
) -> io::Result<Reply> {
    let mut stream = TcpStream::connect_timeout(&server, remaining(deadline)?)?;
    let length = u16::try_from(packet.len()).map_err(io::Error::other)?;
    let mut framed = length.to_be_bytes().to_vec();
    framed.extend_from_slice(packet);
    stream.set_write_timeout(Some(remaining(deadline)?))?;
    stream.write_all(&framed)?;
    let mut prefix = [0u8; 2];
    read_exact_by(&mut stream, &mut prefix, deadline)?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
    read_exact_by(&mut stream, &mut answer, deadline)?;
    match classify(id, name, family, &answer) {
        Reply::NotOurs => Err(io::Error::other("the TCP answer is not for our query")),
        Reply::Truncated => Ok(Reply::Final {
            status: Status::Error,
            addresses: Vec::new(),
            detail: Some("truncated answer over TCP".to_owned()),
        }),
        reply => Ok(reply),
    }
}

/// Wait until `fd` can be read (or has an error to report) or `deadline` passes. poll(2) sleeps
/// on a high-resolution timer; a socket's SO_RCVTIMEO runs on the timer wheel, which wakes a
/// 1 s wait tens of milliseconds late.
fn wait_readable(fd: BorrowedFd, deadline: Instant) -> io::Result<()> {
    loop {
        let left = remaining(deadline)?;
        let ms = left.as_micros().div_ceil(1000);
        let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
        match poll(&mut [PollFd::new(fd, PollFlags::POLLIN)], timeout) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => return Ok(()),
            Err(errno) => return Err(errno.into()),
        }
    }
}

/// `read_exact`, but no read waits past `deadline`.
fn read_exact_by(
    stream: &mut TcpStream,
    mut buffer: &mut [u8],
    deadline: Instant,
) -> io::Result<()> {
    while !buffer.is_empty() {
        wait_readable(stream.as_fd(), deadline)?;
        match stream.read(buffer) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => buffer = &mut buffer[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Ask every server for `name`'s A and AAAA at once: 2 threads a server, each bounded by
/// `timeout`, so the whole probe takes one timeout. Results come in the order of `servers`.
pub fn probe(
    servers: &[IpAddr],
    name: &str,
    timeout: Duration,
) -> Result<Vec<ServerProbe>, String> {
    let name = parse_name(name)?;
    let name = &name;
    let results = std::thread::scope(|scope| {
        let handles: Vec<_> = servers
            .iter()
            .map(|&server| {
                [Family::A, Family::Aaaa].map(|family| {
                    let ask = move || query(server, name, family, timeout);
                    // A thread needs little stack here; if one cannot be had, ask inline.
                    std::thread::Builder::new()
                        .stack_size(256 * 1024)
                        .spawn_scoped(scope, ask)
                        .map_err(|_| ask)
                })
            })
            .collect();
        handles
            .into_iter()
            .zip(servers)
            .map(|(pair, &server)| {
                let [a, aaaa] = pair.map(|handle| match handle {
                    Ok(thread) => thread.join().unwrap_or_else(|_| panicked()),
                    Err(ask) => ask(),
                });
                ServerProbe { server, a, aaaa }
            })
            .collect()
    });
    Ok(results)
}

fn panicked() -> Answer {
    Answer {
        status: Status::Error,
        addresses: Vec::new(),
        elapsed: Duration::ZERO,
        tcp: false,
        detail: Some("the query thread panicked".to_owned()),
    }
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
    fn garbage_with_our_id_is_an_error() {
        let reply = classify(
            0x0102,
            &name("x.test"),
            Family::A,
            &[1, 2, 0x81, 0x80, 0, 1],
        );
        assert!(matches!(
            reply,
            Reply::Final {
                status: Status::Error,
                ..
            }
        ));
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
        assert_eq!(
            reply,
            Reply::Final {
                status: Status::Error,
                addresses: vec![],
                detail: Some("malformed answer".into())
            }
        );
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
