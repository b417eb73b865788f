//! The proxy's loop: the pending queries, their legs to the servers, the clients, and one
//! poll(2) turn after another ([`Proxy::turn`]), deciding each query with the pure
//! [`super::decide`].

use super::*;

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
    /// The embedded resolver's, then each upstream's, in the order asked: leg `i` is server
    /// `i` (its pool).
    legs: Vec<Leg>,
    /// When to decide again if no server says anything.
    wake: Option<Instant>,
}

struct Leg {
    link: Link,
    answer: Option<Vec<u8>>,
}

/// How a leg waits for its server.
enum Link {
    /// On a socket of the server's pool.
    Udp(Ticket),
    Tcp(Attempt),
    /// Heard from, or failed (or its socket could not be had: it counts as failed).
    Over,
}

impl Pending {
    /// Record what leg `leg` heard (and its answer): it waits no more.
    fn heard(&mut self, leg: usize, heard: Heard, answer: Option<Vec<u8>>) {
        if let Some(l) = self.legs.get_mut(leg) {
            l.link = Link::Over;
            l.answer = answer;
        }
        let slot = match leg.checked_sub(1) {
            None => Some(&mut self.progress.embedded),
            Some(i) => self.progress.upstreams.get_mut(i).map(|a| &mut a.heard),
        };
        if let Some(slot) = slot {
            *slot = heard;
        }
    }

    /// The answer of `source` with the client's id, taken out (the query is being finished).
    fn take_answer(&mut self, source: Source) -> Option<Vec<u8>> {
        let leg = match source {
            Source::Embedded => 0,
            Source::Upstream(i) => i + 1,
        };
        let mut answer = self.legs.get_mut(leg)?.answer.take()?;
        if let Some(bytes) = answer.get_mut(..2) {
            bytes.copy_from_slice(&self.read.id.to_be_bytes());
        }
        Some(answer)
    }
}

/// What a socket in the poll set belongs to.
#[derive(Debug, Clone, Copy)]
enum Token {
    Udp,
    Tcp,
    Connection(u64),
    /// A socket of a server's pool.
    Pool {
        server: usize,
        slot: usize,
    },
    /// A TCP attempt.
    Attempt {
        pending: u64,
        leg: usize,
    },
}

pub(super) struct Proxy {
    udp: UdpSocket,
    tcp: TcpListener,
    config: Config,
    timing: Timing,
    connections: Table<Connection>,
    pending: Table<Pending>,
    /// The UDP sockets of the embedded resolver, then of each upstream: server `i` is leg `i`.
    pools: Vec<Pool>,
    /// Pending queries a turn heard about or started: those decided at its end (with those
    /// whose wake time has come).
    touched: Vec<u64>,
    /// The pending queries of TCP clients, for the poll set (most queries come over UDP).
    tcp_pending: Vec<u64>,
    /// The poll set's tokens, kept from turn to turn.
    tokens: Vec<Token>,
    /// Byte buffers of decided queries and answers, for the next ones: no allocation per
    /// message once the load is steady (musl's allocator would map and unmap pages for them).
    spare: Vec<Vec<u8>>,
    ids: Ids,
    /// The answers to UDP clients decided this turn, sent together at its end.
    answers: Outbox,
    /// One receive buffer for every socket: the largest DNS message. Allocated zeroed, so its
    /// pages are the kernel's zero pages until a message is written into them: a 64 KiB buffer
    /// that costs the RSS of the messages received.
    buffer: Vec<u8>,
    accept_paused_until: Option<Instant>,
}

impl Proxy {
    pub(super) fn new(listeners: Listeners, config: Config) -> Proxy {
        let servers = std::iter::once(config.embedded)
            .chain(config.upstreams.iter().copied().take(MAX_UPSTREAMS));
        Proxy {
            udp: listeners.udp,
            tcp: listeners.tcp,
            timing: config.timing(),
            pools: servers.map(Pool::new).collect(),
            config,
            connections: Table::new(),
            pending: Table::new(),
            touched: Vec::new(),
            tcp_pending: Vec::new(),
            tokens: Vec::new(),
            spare: Vec::new(),
            ids: Ids::new(),
            answers: Outbox::default(),
            buffer: vec![0; 65535],
            accept_paused_until: None,
        }
    }

    /// Sleep until a socket is ready or the nearest deadline, then do all there is to do.
    pub(super) fn turn(&mut self) {
        let mut ready = self.wait();
        let now = Instant::now();
        for &token in &ready {
            self.serve_socket(token, now);
        }
        ready.clear();
        self.tokens = ready;
        if self.accept_paused_until.is_some_and(|until| now >= until) {
            self.accept_paused_until = None;
        }
        self.settle(now);
        self.send_queries();
        self.send_answers();
        if self.connections.len() > 0 {
            self.connections.retain(|c| !c.is_finished(now));
        }
    }

    /// poll(2) over every socket with something to wait for; the tokens of those ready.
    fn wait(&mut self) -> Vec<Token> {
        // The Vecs of the last turn, of about the right size: no allocation to grow them.
        let mut tokens = std::mem::take(&mut self.tokens);
        let mut fds = Vec::with_capacity(tokens.capacity());
        tokens.push(Token::Udp);
        fds.push(PollFd::new(self.udp.as_fd(), PollFlags::POLLIN));
        if self.accept_paused_until.is_none() {
            tokens.push(Token::Tcp);
            fds.push(PollFd::new(self.tcp.as_fd(), PollFlags::POLLIN));
        }
        for (key, connection) in self.connections.iter() {
            if let Some((fd, flags)) = connection.interest() {
                tokens.push(Token::Connection(key));
                fds.push(PollFd::new(fd, flags));
            }
        }
        for (server, pool) in self.pools.iter().enumerate() {
            for (slot, fd, flags) in pool.interest() {
                tokens.push(Token::Pool { server, slot });
                fds.push(PollFd::new(fd, flags));
            }
        }
        for &key in &self.tcp_pending {
            let Some(pending) = self.pending.get(key) else {
                continue;
            };
            for (leg, l) in pending.legs.iter().enumerate() {
                if let Link::Tcp(attempt) = &l.link {
                    if let Some((fd, flags)) = attempt.interest() {
                        tokens.push(Token::Attempt { pending: key, leg });
                        fds.push(PollFd::new(fd, flags));
                    }
                }
            }
        }
        match poll(&mut fds, self.timeout(Instant::now())) {
            Ok(_) => {}
            Err(Errno::EINTR) => fds.clear(),
            Err(errno) => {
                // No memory for the poll set: wait a little rather than spin.
                crate::debug!("proxy: poll: {errno}");
                std::thread::sleep(Duration::from_millis(10));
                fds.clear();
            }
        }
        let mut index = 0;
        tokens.retain(|_| {
            let fd = fds.get(index);
            index += 1;
            fd.and_then(PollFd::revents).is_some_and(|r| !r.is_empty())
        });
        tokens
    }

    /// Until the nearest deadline; forever when there is none: no timer while idle (I9).
    fn timeout(&self, now: Instant) -> PollTimeout {
        if !self.touched.is_empty() {
            // Legs that failed as the last turn's queries were sent: decided at once.
            return PollTimeout::ZERO;
        }
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
            Token::Pool { server, slot } => self.serve_pool(server, slot),
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
            let query = copy(
                &mut self.spare,
                self.buffer.get(..length).unwrap_or_default(),
            );
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
            self.connections.insert(Connection::new(stream, now));
        }
    }

    fn serve_connection(&mut self, key: u64, now: Instant) {
        let Some(connection) = self.connections.get_mut(key) else {
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
                self.connections.remove(key);
            }
        }
    }

    /// The end of a turn: each pool sends its queued queries (one sendmmsg per server). Those
    /// that failed with their socket are decided in the next turn, without waiting.
    fn send_queries(&mut self) {
        for pool in self.pools.iter_mut() {
            for (key, leg) in pool.flush() {
                if let Some(p) = self.pending.get_mut(key) {
                    p.heard(leg, Heard::Failed, None);
                    self.touched.push(key);
                }
            }
        }
    }

    /// The end of a turn: the answers to UDP clients, in one sendmmsg. One that cannot be sent
    /// (a full send buffer, a client gone) is dropped, as a lost datagram would be: the client
    /// asks again.
    fn send_answers(&mut self) {
        // Ends: each error drops one answer.
        while let Err(e) = self.answers.send(self.udp.as_fd()) {
            if let Some(peer) = self.answers.drop_first() {
                crate::debug!("proxy: answer to {peer}: {e}");
            }
        }
    }

    /// A socket of server `server`'s pool is ready: each answer goes to its pending query.
    fn serve_pool(&mut self, server: usize, slot: usize) {
        let Proxy {
            pools,
            pending,
            touched,
            buffer,
            spare,
            ..
        } = self;
        let Some(pool) = pools.get_mut(server) else {
            return;
        };
        let failed = pool.serve(slot, buffer, |(key, leg), packet| {
            let Some(p) = pending.get_mut(key) else {
                return true; // cannot be: a decided query's wait is forgotten
            };
            let Some(heard) = wire::read_reply(packet, wire::id_of(packet), &p.read.question)
            else {
                return false; // not the answer to its question: the wait goes on
            };
            p.heard(leg, heard, Some(copy(spare, packet)));
            touched.push(key);
            true
        });
        for (key, leg) in failed {
            if let Some(p) = self.pending.get_mut(key) {
                p.heard(leg, Heard::Failed, None);
                self.touched.push(key);
            }
        }
    }

    fn serve_attempt(&mut self, key: u64, leg: usize) {
        let Some(pending) = self.pending.get_mut(key) else {
            return;
        };
        let question = &pending.read.question;
        let Some(Link::Tcp(attempt)) = pending.legs.get_mut(leg).map(|l| &mut l.link) else {
            return;
        };
        match attempt.advance(question, &mut self.buffer) {
            Event::Nothing => return,
            Event::Reply(heard, answer) => pending.heard(leg, heard, Some(answer)),
            Event::Failed(e) => {
                pending.heard(leg, Heard::Failed, None);
                crate::debug!("proxy: {}: {e}", self.server(leg));
            }
        }
        self.touched.push(key);
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
        let upstream_count = self.pools.len().saturating_sub(1);
        let progress = Progress {
            arrived: now,
            single_label: read.question.name().num_labels() == 1,
            embedded: Heard::Waiting,
            upstreams: Vec::with_capacity(upstream_count),
            upstream_count,
        };
        if let Client::Tcp(key) = client {
            if let Some(connection) = self.connections.get_mut(key) {
                connection.in_flight += 1;
            }
        }
        let mut legs = Vec::with_capacity(1 + upstream_count);
        legs.push(Leg {
            link: Link::Over,
            answer: None,
        });
        let key = self.pending.insert(Pending {
            client,
            query,
            read,
            tcp,
            progress,
            legs,
            wake: None,
        });
        if tcp {
            self.tcp_pending.push(key);
        }
        let link = self.start_leg(key, 0);
        if let Some(pending) = self.pending.get_mut(key) {
            if matches!(link, Link::Over) {
                pending.progress.embedded = Heard::Failed;
            }
            if let Some(leg) = pending.legs.get_mut(0) {
                leg.link = link;
            }
        }
        self.touched.push(key);
    }

    /// Send pending query `key` to server `leg` (0: the embedded resolver, i + 1: upstream i)
    /// with a fresh id: on a socket of its pool, or on a connection of its own over TCP.
    fn start_leg(&mut self, key: u64, leg: usize) -> Link {
        let (Some(pending), Some(pool)) = (self.pending.get_mut(key), self.pools.get_mut(leg))
        else {
            return Link::Over;
        };
        // The id goes into the stored query (the client's is kept in `read`, and restored in
        // the answer and in a SERVFAIL).
        let started = if pending.tcp {
            let id = self.ids.fresh();
            wire::set_id(&mut pending.query, id);
            Attempt::start(pool.server(), id, &pending.query).map(Link::Tcp)
        } else {
            let owner: Owner = (key, leg);
            pool.send(&mut pending.query, &mut self.ids, owner)
                .map(Link::Udp)
        };
        started.unwrap_or_else(|e| {
            // EMFILE, ENETUNREACH (no IPv6 route), ...: this server is out of this query.
            crate::debug!("proxy: {}: {e}", pool.server());
            Link::Over
        })
    }

    /// Decide the queries this turn touched and those whose wake time has come: ask the next
    /// upstream, answer, or note when to look again.
    fn settle(&mut self, now: Instant) {
        let mut keys = std::mem::take(&mut self.touched);
        let due = self
            .pending
            .iter()
            .filter(|(_, p)| p.wake.is_some_and(|at| now >= at));
        keys.extend(due.map(|(key, _)| key));
        for &key in &keys {
            while let Some(pending) = self.pending.get_mut(key) {
                match decide(&self.timing, &pending.progress, now) {
                    Verdict::WaitUntil(at) => {
                        pending.wake = Some(at);
                        break;
                    }
                    Verdict::AskNext => self.ask_next_upstream(key, now),
                    Verdict::Send(source) => {
                        let message = pending.take_answer(source);
                        let message = message
                            .unwrap_or_else(|| wire::servfail(&pending.query, &pending.read));
                        self.finish(key, message, now);
                    }
                    Verdict::ServFail => {
                        let message = wire::servfail(&pending.query, &pending.read);
                        self.finish(key, message, now);
                    }
                }
            }
        }
        // The Vec goes back for the next turn: no allocation per turn.
        keys.clear();
        self.touched = keys;
    }

    fn ask_next_upstream(&mut self, key: u64, now: Instant) {
        let Some(pending) = self.pending.get_mut(key) else {
            return;
        };
        let leg = pending.legs.len();
        if self.pools.get(leg).is_none() {
            // Cannot be (upstream_count is the number of upstream pools); end the asking anyway.
            pending.progress.upstream_count = pending.progress.upstreams.len();
            return;
        }
        pending.legs.push(Leg {
            link: Link::Over,
            answer: None,
        });
        let link = self.start_leg(key, leg);
        let heard = if matches!(link, Link::Over) {
            Heard::Failed
        } else {
            Heard::Waiting
        };
        if let Some(pending) = self.pending.get_mut(key) {
            pending.progress.upstreams.push(Asked { at: now, heard });
            if let Some(l) = pending.legs.get_mut(leg) {
                l.link = link;
            }
        }
    }

    /// Answer the client and forget the query: answers still to come for it are dropped.
    fn finish(&mut self, key: u64, message: Vec<u8>, now: Instant) {
        let Some(pending) = self.pending.remove(key) else {
            return;
        };
        self.answer(pending.client, &message, now);
        recycle(&mut self.spare, message);
        recycle(&mut self.spare, pending.query);
        for (leg, l) in pending.legs.into_iter().enumerate() {
            if let (Link::Udp(ticket), Some(pool)) = (&l.link, self.pools.get_mut(leg)) {
                pool.forget(*ticket);
            }
            if let Some(answer) = l.answer {
                recycle(&mut self.spare, answer);
            }
        }
        if pending.tcp {
            self.tcp_pending.retain(|&k| k != key);
        }
    }

    fn answer(&mut self, client: Client, message: &[u8], now: Instant) {
        match client {
            Client::Udp(peer) => self.answers.push(message, Some(peer), 0),
            Client::Tcp(connection) => {
                let Some(c) = self.connections.get_mut(connection) else {
                    return; // the client went away
                };
                if let Err(e) = c.answer(message, now) {
                    crate::debug!("proxy: answer to a TCP client: {e}");
                    self.connections.remove(connection);
                }
            }
        }
    }

    /// The server of leg `leg`, for a log line.
    fn server(&self, leg: usize) -> SocketAddr {
        self.pools
            .get(leg)
            .map_or(self.config.embedded, Pool::server)
    }
}

/// `bytes` in a buffer of `spare`, or a new one.
fn copy(spare: &mut Vec<Vec<u8>>, bytes: &[u8]) -> Vec<u8> {
    let mut buffer = spare.pop().unwrap_or_default();
    buffer.clear();
    buffer.extend_from_slice(bytes);
    buffer
}

/// Keep `buffer` for [`copy`]: small ones (most queries and answers), at most one per query
/// that can be pending, so at most 128 KiB are kept.
fn recycle(spare: &mut Vec<Vec<u8>>, buffer: Vec<u8>) {
    if buffer.capacity() <= 512 && spare.len() < MAX_PENDING {
        spare.push(buffer);
    }
}

/// Errors that say the process or the system is out of something, not that one client failed.
fn is_out_of_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error().map(Errno::from_raw),
        Some(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM)
    )
}
