//! `--embedded proxy` (R8): a DNS forwarder on a loopback address of the container, the only
//! nameserver of its resolv.conf. Each question goes to Docker's embedded resolver (container
//! names) and, at the same time, to the upstreams the file listed after it (everything else);
//! [`decide`] picks the answer: the embedded resolver's when it knows the name, else the
//! upstream's without waiting out a silent embedded resolver (Docker <= 25 on an IPv6-only
//! host), and never the upstream's NXDOMAIN for a container name (musl's race, moby#46968).
//!
//! One thread of shim's process runs [`serve`]: one poll(2) loop over the two listeners, the
//! clients' TCP connections and one socket per attempt. The timeout of poll is the nearest
//! deadline, and infinite when nothing is pending: no wake-up while no query comes (I9).
//! Everything is bounded (connections, pending queries, buffers) and every error is logged at
//! debug level and survived: shim is PID 1, a panic here would take the app down.

mod attempt;
mod client;
pub mod decide;
pub mod wire;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::resolv_conf::EMBEDDED;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use attempt::{Attempt, Event};
use client::Connection;
use decide::{decide, Asked, Heard, Progress, Source, Timing, Verdict};
use wire::{ClientQuery, Ids};

/// Where the proxy listens (port 53).
///
/// WHY this address: loopback, so never reachable from outside the container. Docker's DNAT
/// rules for its embedded resolver, in the container's own namespace, match only destination
/// 127.0.0.11: any other loopback address is left alone. 127.0.0.53 and 127.0.0.54 are
/// systemd-resolved's (confusing in a file a user reads, and taken with `--network host`), and
/// 127.0.0.1 is where apps run their own servers. Port 53 because resolv.conf cannot name a port.
pub const LISTEN: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 153);

/// The port every stub resolver asks.
pub const PORT: u16 = 53;

/// glibc (MAXNS) and musl use the first three nameservers of the file, and so does the proxy.
const MAX_UPSTREAMS: usize = 3;

/// Bounded memory whatever the clients do: beyond these, new queries and connections are
/// dropped (a stub resolver asks again, or moves on).
const MAX_PENDING: usize = 256;
const MAX_CONNECTIONS: usize = 128;

/// Datagrams, or connections, taken from a listener per turn: one flood cannot hold the loop.
const BATCH: usize = 64;

/// After EMFILE and the like, the listener is left alone this long: it stays readable, and
/// polling it again at once would spin.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

pub struct Config {
    /// Docker's embedded resolver, 127.0.0.11:53.
    pub embedded: SocketAddr,
    /// The other nameservers of the file, in order (only the first three are used).
    pub upstreams: Vec<SocketAddr>,
    /// How long an upstream's NXDOMAIN or NODATA waits for the embedded resolver, counted from
    /// the query's arrival: Docker answers container names from memory in well under a
    /// millisecond; this bounds what a missing outside name costs.
    pub names_wait: Duration,
    /// How long an upstream may stay silent before the next one is asked too (the order glibc
    /// tries them in, without its 5 s stall).
    pub stagger: Duration,
    /// Nothing decisive by then: the best negative seen, else SERVFAIL. Under glibc's and
    /// musl's 5 s, so the client hears before it gives up.
    pub deadline: Duration,
}

impl Config {
    pub fn new(embedded: SocketAddr, upstreams: Vec<SocketAddr>) -> Config {
        Config {
            embedded,
            upstreams,
            names_wait: Duration::from_millis(100),
            stagger: Duration::from_secs(1),
            deadline: Duration::from_secs(4),
        }
    }

    fn timing(&self) -> Timing {
        Timing {
            names_wait: self.names_wait,
            stagger: self.stagger,
            deadline: self.deadline,
        }
    }
}

/// The proxy's two sockets, bound (close-on-exec, non-blocking): by root before `--user` drops
/// privileges (port 53), and before the app starts, so its first query finds them.
pub struct Listeners {
    udp: UdpSocket,
    tcp: TcpListener,
}

pub fn bind(address: SocketAddr) -> io::Result<Listeners> {
    // std opens every socket close-on-exec: the app inherits neither (I6).
    let udp = UdpSocket::bind(address)?;
    udp.set_nonblocking(true)?;
    let tcp = TcpListener::bind(address)?;
    tcp.set_nonblocking(true)?;
    Ok(Listeners { udp, tcp })
}

impl Listeners {
    /// Where they are bound (the port, when bound to port 0 in tests).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.udp.local_addr()
    }
}

/// R8 in a run: bind `listen`:53 and serve from a thread of shim's own, asking 127.0.0.11 for
/// names and `upstreams` (port 53) for the rest. Called before the file names the proxy: if it
/// fails, the caller falls back and nothing points at a proxy that does not run. The thread is
/// started before the app is forked; shim's fork then copies only the forking thread, and the
/// child needs nothing of the proxy's before its exec (its allocations come from the lock-free
/// arena, and musl's fork keeps malloc usable in the child).
pub fn start(listen: IpAddr, upstreams: &[IpAddr]) -> io::Result<()> {
    let listeners = bind(SocketAddr::new(listen, PORT))?;
    let config = Config::new(
        SocketAddr::new(EMBEDDED.into(), PORT),
        upstreams
            .iter()
            .map(|&a| SocketAddr::new(a, PORT))
            .collect(),
    );
    // A thread that cannot be had (a pids limit) is an error here, not a panic: shim is PID 1.
    std::thread::Builder::new()
        .name("proxy".into())
        .stack_size(128 * 1024)
        .spawn(move || serve(listeners, config))?;
    Ok(())
}

/// Serve forever: the body of a thread of shim's process. Queries that arrived before it runs
/// wait in the sockets' buffers. The thread has every signal blocked (shim's mask), so poll is
/// never interrupted.
pub fn serve(listeners: Listeners, config: Config) -> ! {
    let mut proxy = Proxy::new(listeners, config);
    loop {
        proxy.turn();
    }
}

/// Who asked.
#[derive(Debug, Clone, Copy)]
enum Client {
    Udp(SocketAddr),
    /// The key of its connection.
    Tcp(u64),
}

/// One client query being decided.
struct Pending {
    client: Client,
    /// The client's bytes.
    query: Vec<u8>,
    read: ClientQuery,
    tcp: bool,
    progress: Progress,
    /// The embedded resolver's, then each upstream's, in the order asked.
    legs: Vec<Leg>,
    /// When to decide again if no server says anything.
    wake: Option<Instant>,
}

struct Leg {
    /// `None` when its socket could not be opened (the leg then counts as failed).
    attempt: Option<Attempt>,
    answer: Option<Vec<u8>>,
}

impl Pending {
    fn answer(&self, source: Source) -> Option<&[u8]> {
        let leg = match source {
            Source::Embedded => 0,
            Source::Upstream(i) => i + 1,
        };
        self.legs.get(leg)?.answer.as_deref()
    }

    /// Record what leg `leg` heard.
    fn heard(&mut self, leg: usize, heard: Heard) {
        let slot = match leg.checked_sub(1) {
            None => Some(&mut self.progress.embedded),
            Some(i) => self.progress.upstreams.get_mut(i).map(|a| &mut a.heard),
        };
        if let Some(slot) = slot {
            *slot = heard;
        }
    }
}

/// What a socket in the poll set belongs to.
#[derive(Debug, Clone, Copy)]
enum Token {
    Udp,
    Tcp,
    Connection(u64),
    Attempt { pending: u64, leg: usize },
}

struct Proxy {
    udp: UdpSocket,
    tcp: TcpListener,
    config: Config,
    timing: Timing,
    connections: Table<Connection>,
    pending: Table<Pending>,
    /// Keys of connections and pending queries: never reused.
    next_key: u64,
    ids: Ids,
    /// One receive buffer for every socket: the largest DNS message.
    buffer: Vec<u8>,
    accept_paused_until: Option<Instant>,
}

impl Proxy {
    fn new(listeners: Listeners, config: Config) -> Proxy {
        Proxy {
            udp: listeners.udp,
            tcp: listeners.tcp,
            timing: config.timing(),
            config,
            connections: Table::new(),
            pending: Table::new(),
            next_key: 0,
            ids: Ids::new(),
            buffer: vec![0; 65535],
            accept_paused_until: None,
        }
    }

    /// Sleep until a socket is ready or the nearest deadline, then do all there is to do.
    fn turn(&mut self) {
        let ready = self.wait();
        let now = Instant::now();
        for token in ready {
            self.serve_socket(token, now);
        }
        if self.accept_paused_until.is_some_and(|until| now >= until) {
            self.accept_paused_until = None;
        }
        self.settle(now);
        self.connections.retain(|_, c| !c.is_finished(now));
    }

    /// poll(2) over every socket with something to wait for; the tokens of those ready.
    fn wait(&self) -> Vec<Token> {
        let mut tokens = vec![Token::Udp];
        let mut fds = vec![PollFd::new(self.udp.as_fd(), PollFlags::POLLIN)];
        if self.accept_paused_until.is_none() {
            tokens.push(Token::Tcp);
            fds.push(PollFd::new(self.tcp.as_fd(), PollFlags::POLLIN));
        }
        for (&key, connection) in self.connections.iter() {
            if let Some((fd, flags)) = connection.interest() {
                tokens.push(Token::Connection(key));
                fds.push(PollFd::new(fd, flags));
            }
        }
        for (&key, pending) in self.pending.iter() {
            for (leg, attempt) in pending.legs.iter().enumerate() {
                if let Some((fd, flags)) = attempt.attempt.as_ref().and_then(Attempt::interest) {
                    tokens.push(Token::Attempt { pending: key, leg });
                    fds.push(PollFd::new(fd, flags));
                }
            }
        }
        match poll(&mut fds, self.timeout(Instant::now())) {
            Ok(_) => {}
            Err(Errno::EINTR) => return Vec::new(),
            Err(errno) => {
                // No memory for the poll set: wait a little rather than spin.
                crate::debug!("proxy: poll: {errno}");
                std::thread::sleep(Duration::from_millis(10));
                return Vec::new();
            }
        }
        tokens
            .into_iter()
            .zip(&fds)
            .filter(|(_, fd)| fd.revents().is_some_and(|r| !r.is_empty()))
            .map(|(token, _)| token)
            .collect()
    }

    /// Until the nearest deadline; forever when there is none: no timer while idle (I9).
    fn timeout(&self, now: Instant) -> PollTimeout {
        let wakes = self.pending.values().filter_map(|p| p.wake);
        let idle = self.connections.values().filter_map(|c| c.idle_deadline());
        let nearest = wakes.chain(idle).chain(self.accept_paused_until).min();
        match nearest {
            None => PollTimeout::NONE,
            Some(at) => {
                let ms = at.saturating_duration_since(now).as_micros().div_ceil(1000);
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            }
        }
    }

    fn serve_socket(&mut self, token: Token, now: Instant) {
        match token {
            Token::Udp => self.receive_udp(now),
            Token::Tcp => self.accept(now),
            Token::Connection(key) => self.serve_connection(key, now),
            Token::Attempt { pending, leg } => self.serve_attempt(pending, leg),
        }
    }

    fn receive_udp(&mut self, now: Instant) {
        for _ in 0..BATCH {
            let (length, peer) = match self.udp.recv_from(&mut self.buffer) {
                Ok(received) => received,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    crate::debug!("proxy: receive: {e}");
                    return;
                }
            };
            let query = self.buffer.get(..length).unwrap_or_default().to_vec();
            self.take_query(query, Client::Udp(peer), now);
        }
    }

    fn accept(&mut self, now: Instant) {
        for _ in 0..BATCH {
            let stream = match self.tcp.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if is_out_of_resources(&e) => {
                    crate::debug!("proxy: accept: {e}");
                    self.accept_paused_until = Some(now + ACCEPT_PAUSE);
                    return;
                }
                // ECONNABORTED and the like: that client is gone, the next may not be.
                Err(e) => {
                    crate::debug!("proxy: accept: {e}");
                    continue;
                }
            };
            if self.connections.len() >= MAX_CONNECTIONS {
                crate::debug!("proxy: {MAX_CONNECTIONS} TCP clients already, one more closed");
                continue;
            }
            if let Err(e) = stream.set_nonblocking(true) {
                crate::debug!("proxy: accept: {e}");
                continue;
            }
            let key = self.key();
            self.connections.insert(key, Connection::new(stream, now));
        }
    }

    fn serve_connection(&mut self, key: u64, now: Instant) {
        let Some(connection) = self.connections.get_mut(&key) else {
            return;
        };
        match connection.serve(&mut self.buffer, now) {
            Ok(queries) => {
                for query in queries {
                    self.take_query(query, Client::Tcp(key), now);
                }
            }
            Err(e) => {
                crate::debug!("proxy: TCP client: {e}");
                self.connections.remove(&key);
            }
        }
    }

    fn serve_attempt(&mut self, key: u64, leg: usize) {
        let Some(pending) = self.pending.get_mut(&key) else {
            return;
        };
        let question = &pending.read.question;
        let Some(attempt) = pending.legs.get_mut(leg).and_then(|l| l.attempt.as_mut()) else {
            return;
        };
        match attempt.advance(question, &mut self.buffer) {
            Event::Nothing => {}
            Event::Reply(heard, answer) => {
                pending.heard(leg, heard);
                if let Some(l) = pending.legs.get_mut(leg) {
                    l.answer = Some(answer);
                }
            }
            Event::Failed(e) => {
                pending.heard(leg, Heard::Failed);
                crate::debug!("proxy: {}: {e}", self.server(leg));
            }
        }
    }

    /// A client's query: start on it, unless it is no query or too many are pending.
    fn take_query(&mut self, query: Vec<u8>, client: Client, now: Instant) {
        let Some(read) = wire::read_query(&query) else {
            crate::debug!("proxy: dropped a message that is no query");
            return;
        };
        if self.pending.len() >= MAX_PENDING {
            crate::debug!("proxy: {MAX_PENDING} queries pending already, one more dropped");
            return;
        }
        let tcp = matches!(client, Client::Tcp(_));
        let embedded = self.start_leg(self.config.embedded, &query, tcp);
        let progress = Progress {
            arrived: now,
            embedded: if embedded.attempt.is_some() {
                Heard::Waiting
            } else {
                Heard::Failed
            },
            upstreams: Vec::new(),
            upstream_count: self.config.upstreams.len().min(MAX_UPSTREAMS),
        };
        if let Client::Tcp(key) = client {
            if let Some(connection) = self.connections.get_mut(&key) {
                connection.in_flight += 1;
            }
        }
        let key = self.key();
        let pending = Pending {
            client,
            query,
            read,
            tcp,
            progress,
            legs: vec![embedded],
            wake: None,
        };
        self.pending.insert(key, pending);
    }

    /// Send the client's query to `server` with a fresh id.
    fn start_leg(&mut self, server: SocketAddr, query: &[u8], tcp: bool) -> Leg {
        let id = self.ids.fresh();
        let attempt = match Attempt::start(server, id, wire::with_id(query, id), tcp) {
            Ok(attempt) => Some(attempt),
            Err(e) => {
                // EMFILE, ENETUNREACH (no IPv6 route), ...: this server is out of this query.
                crate::debug!("proxy: {server}: {e}");
                None
            }
        };
        Leg {
            attempt,
            answer: None,
        }
    }

    /// Decide every pending query: ask the next upstream, answer, or note when to look again.
    fn settle(&mut self, now: Instant) {
        let keys: Vec<u64> = self.pending.iter().map(|(&key, _)| key).collect();
        for key in keys {
            while let Some(pending) = self.pending.get_mut(&key) {
                match decide(&self.timing, &pending.progress, now) {
                    Verdict::WaitUntil(at) => {
                        pending.wake = Some(at);
                        break;
                    }
                    Verdict::AskNext => self.ask_next_upstream(key, now),
                    Verdict::Send(source) => {
                        let message = pending
                            .answer(source)
                            .map(|a| wire::with_id(a, pending.read.id));
                        let message = message
                            .unwrap_or_else(|| wire::servfail(&pending.query, &pending.read));
                        self.finish(key, &message, now);
                    }
                    Verdict::ServFail => {
                        let message = wire::servfail(&pending.query, &pending.read);
                        self.finish(key, &message, now);
                    }
                }
            }
        }
    }

    fn ask_next_upstream(&mut self, key: u64, now: Instant) {
        let Some(pending) = self.pending.get(&key) else {
            return;
        };
        let next = pending.progress.upstreams.len();
        let Some(&server) = self.config.upstreams.get(next) else {
            // Cannot be (upstream_count is at most their number); end the asking anyway.
            if let Some(pending) = self.pending.get_mut(&key) {
                pending.progress.upstream_count = next;
            }
            return;
        };
        let (query, tcp) = (pending.query.clone(), pending.tcp);
        let leg = self.start_leg(server, &query, tcp);
        let heard = if leg.attempt.is_some() {
            Heard::Waiting
        } else {
            Heard::Failed
        };
        if let Some(pending) = self.pending.get_mut(&key) {
            pending.progress.upstreams.push(Asked { at: now, heard });
            pending.legs.push(leg);
        }
    }

    /// Answer the client and forget the query (its sockets close).
    fn finish(&mut self, key: u64, message: &[u8], now: Instant) {
        let Some(pending) = self.pending.remove(&key) else {
            return;
        };
        match pending.client {
            Client::Udp(peer) => {
                if let Err(e) = self.udp.send_to(message, peer) {
                    crate::debug!("proxy: answer to {peer}: {e}");
                }
            }
            Client::Tcp(connection) => {
                let Some(c) = self.connections.get_mut(&connection) else {
                    return; // the client went away
                };
                if let Err(e) = c.answer(message, now) {
                    crate::debug!("proxy: answer to a TCP client: {e}");
                    self.connections.remove(&connection);
                }
            }
        }
    }

    /// The server of leg `leg`, for a log line.
    fn server(&self, leg: usize) -> SocketAddr {
        match leg.checked_sub(1) {
            None => self.config.embedded,
            Some(i) => self
                .config
                .upstreams
                .get(i)
                .copied()
                .unwrap_or(self.config.embedded),
        }
    }

    fn key(&mut self) -> u64 {
        self.next_key = self.next_key.wrapping_add(1);
        self.next_key
    }
}

/// Entries by key, kept in a Vec: a few hundred at most, found by a linear search, and much
/// less code in the static binary than a BTreeMap. Keys are never reused, so an answer for a
/// connection that has gone never reaches a newer one.
struct Table<T>(Vec<(u64, T)>);

impl<T> Table<T> {
    fn new() -> Table<T> {
        Table(Vec::new())
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn insert(&mut self, key: u64, value: T) {
        self.0.push((key, value));
    }

    fn get(&self, key: &u64) -> Option<&T> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn get_mut(&mut self, key: &u64) -> Option<&mut T> {
        self.0.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn remove(&mut self, key: &u64) -> Option<T> {
        let index = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.swap_remove(index).1)
    }

    fn retain(&mut self, mut keep: impl FnMut(&u64, &mut T) -> bool) {
        self.0.retain_mut(|(k, v)| keep(k, v));
    }

    fn iter(&self) -> impl Iterator<Item = (&u64, &T)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    fn values(&self) -> impl Iterator<Item = &T> {
        self.0.iter().map(|(_, v)| v)
    }
}

/// Errors that say the process or the system is out of something, not that one client failed.
fn is_out_of_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(Errno::from_raw),
        Some(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM)
    )
}
