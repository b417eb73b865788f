//! A network namespace made to look like a container, for the DNS tests (`tests/dns.rs`,
//! `tests/proxy.rs`): `lo` (where 127.0.0.11 lives, as in Docker) and a veth pair whose one end
//! holds 192.0.2.1 and 2001:db8::1 (an IPv4 and an IPv6 address, so that glibc's AI_ADDRCONFIG
//! asks for both families) and the servers' 192.0.2.53 and 2001:db8::53. The namespace has no
//! route out: every packet stays in it. Servers (`tests/dns/responder.rs`) run on threads of the
//! test process, on sockets opened inside the namespace. Clients run under `ip netns exec` with
//! the test's resolv.conf bind-mounted over /etc/resolv.conf, as Docker mounts it. The
//! namespace, the files and the servers go away with their guards, also when a test fails; the
//! mount lives and dies with the client's own mount namespace.
#![allow(dead_code)]

#[path = "../dns/responder.rs"]
pub mod responder;

use std::fs::{self, File};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};
use responder::{Behaviour, Responder};
use serde_json::Value;

/// No client run may take longer than this; a hung one is killed and fails its test.
pub const LIMIT: Duration = Duration::from_secs(60);

pub fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// Numbers names of namespaces, files and cgroups, unique in this process.
pub static SERIAL: AtomicUsize = AtomicUsize::new(0);

/// A network namespace imitating a container; deleted on drop.
pub struct Netns {
    pub name: String,
    pub dir: PathBuf,
}

impl Netns {
    pub fn new() -> Netns {
        let name = format!(
            "shim-dns-{}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::SeqCst)
        );
        let dir = std::env::temp_dir().join(&name);
        fs::create_dir_all(&dir).unwrap();
        must(Command::new("ip").args(["netns", "add", &name]));
        // From here on, a failure drops `ns`, which deletes what was made.
        let ns = Netns { name, dir };
        ns.ip(&["link", "set", "lo", "up"]);
        ns.ip(&[
            "link", "add", "veth0", "type", "veth", "peer", "name", "veth1",
        ]);
        for address in ["192.0.2.1/24", "192.0.2.53/24"] {
            ns.ip(&["addr", "add", address, "dev", "veth0"]);
        }
        for address in ["2001:db8::1/64", "2001:db8::53/64"] {
            ns.ip(&["-6", "addr", "add", address, "dev", "veth0", "nodad"]);
        }
        ns.ip(&["link", "set", "veth1", "up"]);
        ns.ip(&["link", "set", "veth0", "up"]);
        ns
    }

    pub fn ip(&self, args: &[&str]) {
        must(Command::new("ip").args(["-n", &self.name]).args(args));
    }

    /// Run `f` on a thread inside the namespace; sockets it opens stay in the namespace.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let handle = File::open(Path::new("/run/netns").join(&self.name)).unwrap();
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    setns(&handle, CloneFlags::CLONE_NEWNET)
                        .expect("setns into the test namespace");
                    f()
                })
                .join()
                .unwrap()
        })
    }

    /// A server on UDP and TCP `address`.
    pub fn serve(&self, address: &str, behaviour: Behaviour) -> Responder {
        let address = addr(address);
        self.enter(|| {
            let udp = std::net::UdpSocket::bind(address).expect("bind UDP");
            let tcp = std::net::TcpListener::bind(address).expect("bind TCP");
            Responder::start(udp, Some(tcp), behaviour)
        })
    }

    /// A server on `address` that relays every query to `upstream`.
    pub fn forwarder(&self, address: &str, upstream: &str) -> Responder {
        let upstream = addr(upstream);
        let socket = self.enter(|| responder::upstream_socket(upstream).unwrap());
        self.serve(address, Behaviour::Forward(socket))
    }

    /// A new resolv.conf with `content`, for one client to see as /etc/resolv.conf.
    pub fn resolv_conf(&self, content: &str) -> PathBuf {
        let path = self.dir.join(format!(
            "resolv.conf.{}",
            SERIAL.fetch_add(1, Ordering::SeqCst)
        ));
        fs::write(&path, content).unwrap();
        path
    }

    /// Run `program args` in the namespace with `resolv_conf` bind-mounted over /etc/resolv.conf.
    pub fn run(&self, resolv_conf: &Path, program: &Path, args: &[&str]) -> Run {
        let mut cmd = self.exec(&["sh", "-c"]);
        cmd.arg(r#"mount --bind "$0" /etc/resolv.conf && exec "$@""#)
            .arg(resolv_conf)
            .arg(program)
            .args(args);
        bounded(&mut cmd)
    }

    /// `ip netns exec` into the namespace, with no `SHIM_*` setting of this process leaking in.
    pub fn exec(&self, program: &[&str]) -> Command {
        let mut cmd = super::clean_command("ip");
        cmd.args(["netns", "exec", &self.name])
            .args(program)
            // A server that answers must not turn into a timeout on a loaded CI machine: runs
            // that expect a silent server name their own, shorter, --probe-timeout.
            .env("SHIM_PROBE_TIMEOUT_MS", "5000");
        cmd
    }

    pub fn shim(&self, resolv_conf: &Path, args: &[&str]) -> Run {
        self.run(resolv_conf, super::shim(), args)
    }

    /// `shim --check-dns --json ...`, parsed.
    pub fn check_json(&self, resolv_conf: &Path, args: &[&str]) -> (Run, Value) {
        let mut all = vec!["--check-dns", "--json"];
        all.extend_from_slice(args);
        let run = self.shim(resolv_conf, &all);
        let json: Value = serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", run.stdout, run.stderr));
        (run, json)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

pub fn must(cmd: &mut Command) {
    let out = super::output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        super::stderr(&out)
    );
}

#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// Run to completion, at most [`LIMIT`], with stdout and stderr captured.
pub fn bounded(cmd: &mut Command) -> Run {
    bounded_by(cmd, LIMIT)
}

/// Run to completion, at most `limit`, with stdout and stderr captured.
pub fn bounded_by(cmd: &mut Command, limit: Duration) -> Run {
    let start = Instant::now();
    let out = super::output_within(cmd, limit);
    Run {
        status: out.status,
        stdout: super::stdout(&out),
        stderr: super::stderr(&out),
        elapsed: start.elapsed(),
    }
}
