//! `--embedded proxy` (R8): a DNS forwarder on a loopback address of the container, the only
//! nameserver of its resolv.conf. Each question goes to Docker's embedded resolver (container
//! names) and, at the same time, to the upstreams the file listed after it (everything else);
//! [`decide`] picks the answer: the embedded resolver's when it knows the name, else the
//! upstream's without waiting out a silent embedded resolver (Docker <= 25 on an IPv6-only
//! host), and never the upstream's NXDOMAIN for a container name (musl's race, moby#46968).
//!
//! One thread of shim's process runs [`serve`]: one poll(2) loop over the two listeners, a few
//! UDP sockets per server kept for its life ([`pool`]), the clients' TCP connections and one
//! connection per TCP attempt. The datagrams a turn queues leave at its end, one sendmmsg(2)
//! per socket ([`outbox`]). The timeout of poll is the nearest deadline, and infinite when
//! nothing is pending: no wake-up while no query comes (I9).
//! Everything is bounded (connections, pending queries, buffers) and every error is logged at
//! debug level and survived: shim is PID 1, a panic here would take the app down.

mod attempt;
mod client;
pub mod decide;
mod engine;
mod outbox;
mod pool;
mod table;
pub mod wire;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::resolv_conf::EMBEDDED;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use attempt::{Attempt, Event};
use client::Connection;
use decide::{decide, Asked, Heard, Progress, Source, Timing, Verdict};
use engine::Proxy;
use outbox::Outbox;
use pool::{Owner, Pool, Ticket};
use table::Table;
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
    /// The same for a single-label question (`db`): compose service names, container names and
    /// most aliases are single labels, outside names almost never, so a dockerd slow under
    /// load is waited for longer there (a container name got the upstream's NXDOMAIN once in
    /// seven Docker 20.10 suite runs with 100 ms); a mistyped service name costs this much.
    pub names_wait_single_label: Duration,
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
            names_wait_single_label: Duration::from_secs(1),
            stagger: Duration::from_secs(1),
            deadline: Duration::from_secs(4),
        }
    }

    fn timing(&self) -> Timing {
        Timing {
            names_wait: self.names_wait,
            names_wait_single_label: self.names_wait_single_label,
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
    // WHY wait for the thread: once the app runs, shim drops the pages of its code from its
    // RSS (`shed_startup_pages`); a thread still starting then faults them back, a window of
    // up to 16 pages at a time (fault-around): +190 kB idle in one start of six when the
    // machine was busy. So this returns only once the thread sleeps in its first poll.
    let ready = Arc::new(AtomicI32::new(0));
    let (signal, starter) = (Arc::clone(&ready), std::thread::current());
    // A thread that cannot be had (a pids limit) is an error here, not a panic: shim is PID 1.
    std::thread::Builder::new()
        .name("proxy".into())
        .stack_size(128 * 1024)
        .spawn(move || {
            let mut proxy = Proxy::new(listeners, config);
            signal.store(nix::unistd::gettid().as_raw(), Ordering::Release);
            starter.unpark();
            drop(signal);
            loop {
                proxy.turn();
            }
        })?;
    // park may return spuriously: the id says when the thread is set up.
    let tid = loop {
        match ready.load(Ordering::Acquire) {
            0 => std::thread::park(),
            tid => break tid,
        }
    };
    wait_until_asleep(tid);
    Ok(())
}

/// Until thread `tid` of this process sleeps (state S: the proxy's only sleep is its poll), or
/// a few hundred turns of the scheduler: best effort, it never holds shim's start for long.
fn wait_until_asleep(tid: i32) {
    let path = format!("/proc/self/task/{tid}/stat");
    for _ in 0..200 {
        let Ok(stat) = std::fs::read(&path) else {
            return; // no /proc: nothing to wait on
        };
        // "tid (comm) S ...": the state follows the last ')' (comm may hold anything).
        let state = stat
            .iter()
            .rposition(|&b| b == b')')
            .and_then(|end| stat.get(end + 2));
        if state == Some(&b'S') {
            return;
        }
        std::thread::yield_now();
    }
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
