//! A small DNS server for the tests (`tests/dns.rs`) and the benchmark (`examples/dns_responder.rs`),
//! built on hickory-proto: it plays Docker's embedded resolver (silent, failing or forwarding) and
//! an authoritative server for a test zone. It only ever answers on the sockets it is given and
//! forwards only to the address it is given.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};

/// The test zone: `v6only.test` (AAAA only), `dual.test` (A and AAAA), `v4only.test` (A only);
/// every other name is NXDOMAIN. Documentation addresses: never contacted, only returned.
pub const V6ONLY_AAAA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 6, 0, 0, 0, 0, 6);
pub const DUAL_AAAA: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 6, 0, 0, 0, 0, 0x66);
pub const DUAL_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 66);
pub const V4ONLY_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 4);

/// The container names the stand-in embedded resolver knows: `db` (and its alias `database`)
/// with an IPv4 address only, as a container on a network without IPv6.
pub const CONTAINER: &str = "db";
pub const CONTAINER_ALIAS: &str = "database";
pub const CONTAINER_A: Ipv4Addr = Ipv4Addr::new(172, 30, 0, 5);

#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Reads every query and drops it: Docker <= 25's 127.0.0.11 with no IPv4 upstream.
    Silent,
    /// Answers every query with this code at once (SERVFAIL: Docker 24+ when upstreams fail).
    Fail(ResponseCode),
    /// Authoritative for the test zone.
    Zone,
    /// The zone, but every UDP answer is truncated (TC, no records): the full one is over TCP.
    TruncatingZone,
    /// Relays each query to the upstream this socket is connected to and its answer back.
    Forward(Arc<UdpSocket>),
    /// The zone, but each UDP answer comes after two malformed ones with the query's id (one
    /// shorter than a header, one cut inside its last section): a broken middlebox or a
    /// hostile host.
    MalformedFirst,
    /// Only the malformed answers of `MalformedFirst`, never a good one.
    MalformedOnly,
    /// Docker's embedded resolver on an IPv6-only host: answers container names ([`names`]) and
    /// drops everything else (it has no upstream).
    Names,
    /// Docker's embedded resolver on a dual-stack host: answers container names and relays the
    /// rest to the upstream this socket is connected to (over TCP for a TCP query, as Docker).
    NamesOrForward(Arc<UdpSocket>),
    /// Docker >= 26's embedded resolver: relays each query to each upstream in turn, waiting at
    /// most this long for each (moby's `extIOTimeout`, 4 s) before it asks the next, and answers
    /// with the first answer, or SERVFAIL. Each query is served on a thread of its own, as
    /// Docker does: one waiting for a silent upstream holds up no other.
    ForwardInTurn(Vec<SocketAddr>, Duration),
}

/// A running server; stops and joins its threads when dropped.
pub struct Responder {
    stop: Arc<AtomicBool>,
    queries: Arc<AtomicUsize>,
    threads: Vec<JoinHandle<()>>,
}

impl Responder {
    /// Serve on `udp` (and `tcp`, when given) until dropped.
    pub fn start(udp: UdpSocket, tcp: Option<TcpListener>, behaviour: Behaviour) -> Responder {
        let stop = Arc::new(AtomicBool::new(false));
        let queries = Arc::new(AtomicUsize::new(0));
        let mut threads = Vec::new();
        {
            let (stop, queries, behaviour) = (stop.clone(), queries.clone(), behaviour.clone());
            threads.push(std::thread::spawn(move || {
                serve_udp(udp, &behaviour, &stop, &queries)
            }));
        }
        if let Some(tcp) = tcp {
            let (stop, queries) = (stop.clone(), queries.clone());
            threads.push(std::thread::spawn(move || {
                serve_tcp(tcp, &behaviour, &stop, &queries)
            }));
        }
        Responder {
            stop,
            queries,
            threads,
        }
    }

    /// How many queries arrived so far (UDP and TCP).
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

const POLL: Duration = Duration::from_millis(50);

fn serve_udp(socket: UdpSocket, behaviour: &Behaviour, stop: &AtomicBool, queries: &AtomicUsize) {
    socket.set_read_timeout(Some(POLL)).expect("read timeout");
    let mut buffer = vec![0u8; 65535];
    while !stop.load(Ordering::SeqCst) {
        let Ok((n, peer)) = socket.recv_from(&mut buffer) else {
            continue;
        };
        queries.fetch_add(1, Ordering::SeqCst);
        if let Behaviour::ForwardInTurn(..) = behaviour {
            let (socket, behaviour, query) = (
                socket.try_clone().expect("clone UDP socket"),
                behaviour.clone(),
                buffer[..n].to_vec(),
            );
            std::thread::spawn(move || {
                if let Some(answer) = answer(&query, &behaviour, true) {
                    let _ = socket.send_to(&answer, peer);
                }
            });
            continue;
        }
        for junk in malformed(&buffer[..n], behaviour) {
            let _ = socket.send_to(&junk, peer);
        }
        if let Some(answer) = answer(&buffer[..n], behaviour, true) {
            let _ = socket.send_to(&answer, peer);
        }
    }
}

fn serve_tcp(
    listener: TcpListener,
    behaviour: &Behaviour,
    stop: &AtomicBool,
    queries: &AtomicUsize,
) {
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = serve_connection(stream, behaviour, queries);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn serve_connection(
    mut stream: TcpStream,
    behaviour: &Behaviour,
    queries: &AtomicUsize,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    loop {
        let mut prefix = [0u8; 2];
        if stream.read_exact(&mut prefix).is_err() {
            return Ok(());
        }
        let mut query = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
        stream.read_exact(&mut query)?;
        queries.fetch_add(1, Ordering::SeqCst);
        if let Some(answer) = answer(&query, behaviour, false) {
            let mut framed = (answer.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(&answer);
            stream.write_all(&framed)?;
        }
    }
}

/// The bytes to send back for `query`, or `None` to stay silent.
fn answer(query: &[u8], behaviour: &Behaviour, udp: bool) -> Option<Vec<u8>> {
    match behaviour {
        Behaviour::Silent => None,
        Behaviour::Forward(upstream) if udp => forward(upstream, query),
        Behaviour::Forward(upstream) => forward_tcp(upstream, query),
        Behaviour::Names => names(&Message::from_vec(query).ok()?)?.to_vec().ok(),
        Behaviour::NamesOrForward(upstream) => match names(&Message::from_vec(query).ok()?) {
            Some(known) => known.to_vec().ok(),
            None if udp => forward(upstream, query),
            None => forward_tcp(upstream, query),
        },
        Behaviour::ForwardInTurn(upstreams, wait) => forward_in_turn(upstreams, *wait, query),
        Behaviour::Fail(code) => {
            let query = Message::from_vec(query).ok()?;
            let mut m = reply_to(&query);
            m.metadata.response_code = *code;
            m.to_vec().ok()
        }
        Behaviour::Zone | Behaviour::MalformedFirst => {
            zone(&Message::from_vec(query).ok()?).to_vec().ok()
        }
        Behaviour::MalformedOnly => None,
        Behaviour::TruncatingZone => {
            let query = Message::from_vec(query).ok()?;
            if udp {
                let mut m = reply_to(&query);
                m.metadata.truncation = true;
                m.to_vec().ok()
            } else {
                zone(&query).to_vec().ok()
            }
        }
    }
}

/// The malformed answers sent over UDP before the answer (if any), each with the query's id.
fn malformed(query: &[u8], behaviour: &Behaviour) -> Vec<Vec<u8>> {
    if !matches!(
        behaviour,
        Behaviour::MalformedFirst | Behaviour::MalformedOnly
    ) {
        return Vec::new();
    }
    let Some(good) = Message::from_vec(query)
        .ok()
        .and_then(|q| zone(&q).to_vec().ok())
    else {
        return Vec::new();
    };
    // QR, RD, RA, one question: then nothing, 6 bytes short of a header.
    let short = vec![query[0], query[1], 0x81, 0x80, 0, 1];
    let cut = good[..good.len() - 3].to_vec();
    vec![short, cut]
}

fn reply_to(query: &Message) -> Message {
    let mut m = Message::response(query.metadata.id, OpCode::Query);
    m.metadata.message_type = MessageType::Response;
    m.metadata.recursion_desired = query.metadata.recursion_desired;
    m.metadata.recursion_available = true;
    m.add_queries(query.queries.iter().cloned());
    m
}

/// The authoritative answer of the test zone.
pub fn zone(query: &Message) -> Message {
    let mut m = reply_to(query);
    m.metadata.authoritative = true;
    let Some(question) = query.queries.first() else {
        m.metadata.response_code = ResponseCode::FormErr;
        return m;
    };
    let owner = question.name().clone();
    let asked = owner.to_ascii().to_ascii_lowercase();
    let (a, aaaa): (&[Ipv4Addr], &[Ipv6Addr]) = match asked.trim_end_matches('.') {
        "v6only.test" => (&[], &[V6ONLY_AAAA]),
        "dual.test" => (&[DUAL_A], &[DUAL_AAAA]),
        "v4only.test" => (&[V4ONLY_A], &[]),
        _ => {
            m.metadata.response_code = ResponseCode::NXDomain;
            return m;
        }
    };
    match question.query_type() {
        RecordType::A => {
            for &v4 in a {
                m.add_answer(Record::from_rdata(owner.clone(), 60, RData::A(A(v4))));
            }
        }
        RecordType::AAAA => {
            for &v6 in aaaa {
                m.add_answer(Record::from_rdata(owner.clone(), 60, RData::AAAA(AAAA(v6))));
            }
        }
        // Any other type of an existing name: NOERROR, no records (NODATA).
        _ => {}
    }
    m
}

/// The answer of Docker's embedded resolver for a container name: its A record, and NOERROR
/// with no record for any other type (AAAA of a container without IPv6). `None` for any other
/// name: not a container's.
pub fn names(query: &Message) -> Option<Message> {
    let question = query.queries.first()?;
    let asked = question.name().to_ascii().to_ascii_lowercase();
    let asked = asked.trim_end_matches('.');
    if asked != CONTAINER && asked != CONTAINER_ALIAS {
        return None;
    }
    let mut m = reply_to(query);
    if question.query_type() == RecordType::A {
        let owner = question.name().clone();
        m.add_answer(Record::from_rdata(owner, 600, RData::A(A(CONTAINER_A))));
    }
    Some(m)
}

/// Relay one query upstream over TCP, to the address `upstream` is connected to, and bring its
/// answer back (at most 2 s).
fn forward_tcp(upstream: &UdpSocket, query: &[u8]) -> Option<Vec<u8>> {
    let mut stream =
        TcpStream::connect_timeout(&upstream.peer_addr().ok()?, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut framed = (query.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(query);
    stream.write_all(&framed).ok()?;
    let mut prefix = [0u8; 2];
    stream.read_exact(&mut prefix).ok()?;
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
    stream.read_exact(&mut answer).ok()?;
    Some(answer)
}

/// Relay one query upstream and wait (at most 2 s) for the answer with its id.
fn forward(upstream: &UdpSocket, query: &[u8]) -> Option<Vec<u8>> {
    upstream.send(query).ok()?;
    upstream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .ok()?;
    let mut buffer = vec![0u8; 65535];
    loop {
        let n = upstream.recv(&mut buffer).ok()?;
        if n >= 2 && query.len() >= 2 && buffer[..2] == query[..2] {
            return Some(buffer[..n].to_vec());
        }
    }
}

/// Relay one query to each upstream in turn over UDP, from a socket of its own each, waiting
/// at most `wait` for each; SERVFAIL when none answers.
fn forward_in_turn(upstreams: &[SocketAddr], wait: Duration, query: &[u8]) -> Option<Vec<u8>> {
    let mut buffer = vec![0u8; 65535];
    for &upstream in upstreams {
        let Ok(socket) = upstream_socket(upstream) else {
            continue;
        };
        if socket.set_read_timeout(Some(wait)).is_err() || socket.send(query).is_err() {
            continue;
        }
        if let Ok(n) = socket.recv(&mut buffer) {
            if n >= 2 && query.len() >= 2 && buffer[..2] == query[..2] {
                return Some(buffer[..n].to_vec());
            }
        }
    }
    let mut m = reply_to(&Message::from_vec(query).ok()?);
    m.metadata.response_code = ResponseCode::ServFail;
    m.to_vec().ok()
}

/// A socket for `Behaviour::Forward`, connected to `upstream` (bind it in the right namespace).
pub fn upstream_socket(upstream: SocketAddr) -> std::io::Result<Arc<UdpSocket>> {
    let local: IpAddr = match upstream {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let socket = UdpSocket::bind((local, 0))?;
    socket.connect(upstream)?;
    Ok(Arc::new(socket))
}
