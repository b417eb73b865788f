//! The end-to-end suite on a real Docker Engine (issue 6): shim runs in real containers, as the
//! ENTRYPOINT of an image built from `Dockerfile.example`, and each test checks what a user would
//! see there.
//!
//! No registry is reachable, so every image is built here from files on this machine:
//! - the shim image: `Dockerfile` (`FROM scratch` + the static musl binary);
//! - a glibc client: `docker import` of a rootfs holding `tests/docker/probe.c` built with gcc, its
//!   shared libraries (from `ldd`), `/etc/nsswitch.conf`, `/etc/passwd` and `/etc/group`;
//! - a musl client: the same source built with `musl-gcc -static` (Debian's musl-tools);
//! - a DNS server: Debian's dnsmasq (dnsmasq-base) with its libraries, answering `v6only.shim.test`
//!   (AAAA only) and `dual.shim.test` (A and AAAA) from local records and forwarding nothing;
//! - the app images: `Dockerfile.example` built with those local images in place of registry ones.
//!
//! The seed case runs on a user-defined network with IPv6 (a random ULA /64), created `--internal`
//! so that no container of the suite has a route out of it: every packet stays between the suite's
//! own containers. App containers get `--dns <the DNS server's IPv6 address>` only, so Docker (<= 25)
//! writes `nameserver 127.0.0.11` (an embedded resolver with no upstream, which never answers) before
//! the real server.
//!
//! On a machine without a Docker daemon (or gcc, musl-gcc, dnsmasq) each test prints a SKIPPED line;
//! under `CI=true` that is a failure instead. Everything the suite creates carries the label
//! `shim-e2e.owner=<pid>.<start time>` and a per-run name prefix: containers are removed by a guard
//! when a test ends (even by a panic), networks and images when the test process exits, and objects
//! left by a run that was killed are swept by the next run.
//!
//! `SHIM_E2E_BINARY=/path/to/static/shim` puts another build in the shim image (by default the
//! static musl binary is built from this tree). Run with `--nocapture` to see Docker's files, the
//! lookup times and the lines shim printed.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const RESOLV_CONF: &str = "/etc/resolv.conf";
const EMBEDDED_LINE: &str = "nameserver 127.0.0.11";
const V6ONLY: &str = "v6only.shim.test";
const V6ONLY_AAAA: &str = "2001:db8::6";
const DUAL: &str = "dual.shim.test";
const DUAL_A: &str = "198.51.100.46";
const DUAL_AAAA: &str = "2001:db8::46";
/// A lookup "at once": the answer comes in a few milliseconds; this bound leaves room for a busy
/// machine and is still far below the 5 s resolver timeout it is compared with.
const FAST_MS: f64 = 1000.0;
/// glibc's default resolver timeout is 5 s; a lookup that waited it out took at least this.
const WAITED_MS: f64 = 4000.0;
const OWNER_LABEL: &str = "shim-e2e.owner";

// ---------------------------------------------------------------------------------------------
// Requirements: a visible skip, or a failure under CI=true.

#[derive(Clone, Copy)]
enum Need {
    Docker,
    Gcc,
    MuslGcc,
    Dnsmasq,
}

fn ready(test: &str, needs: &[Need]) -> bool {
    needs.iter().all(|need| match need {
        Need::Docker => common::require(docker_available(), "a Docker daemon", test),
        Need::Gcc => common::require(find_program("gcc").is_some(), "gcc", test),
        Need::MuslGcc => common::require(
            find_program("musl-gcc").is_some(),
            "musl-gcc (Debian's musl-tools)",
            test,
        ),
        Need::Dnsmasq => common::require(
            find_program("dnsmasq").is_some(),
            "dnsmasq (Debian's dnsmasq-base)",
            test,
        ),
    })
}

fn docker_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        Command::new("docker")
            .args(["version", "--format", "{{.Server.Version}}"])
            .stdin(Stdio::null())
            .output()
            .is_ok_and(|out| out.status.success() && !out.stdout.trim_ascii().is_empty())
    })
}

/// A program on PATH, or in the sbin folders a non-root PATH may lack.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| {
            candidate
                .metadata()
                .is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
        })
}

// ---------------------------------------------------------------------------------------------
// The run: a name prefix, an owner label, a work folder, and the clean-up at exit.

struct Run {
    prefix: String,
    owner: String,
    dir: PathBuf,
}

static RUN: OnceLock<Run> = OnceLock::new();

fn run_ctx() -> &'static Run {
    RUN.get_or_init(|| {
        sweep_stale_runs();
        let pid = std::process::id();
        let owner = process_identity(pid).expect("read /proc/self/stat");
        let prefix = format!("shim-e2e-{pid}-{:06x}", random_u64() & 0xff_ffff);
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("shim-e2e.{owner}"));
        fs::create_dir_all(&dir).expect("create the suite's work folder");
        // Statics are never dropped: networks and images shared by the tests go when the test
        // process exits (libtest returns from main or calls exit(), both run atexit handlers).
        // SAFETY: registering a plain extern "C" function with no captured state.
        unsafe { nix::libc::atexit(clean_up_at_exit) };
        Run { prefix, owner, dir }
    })
}

extern "C" fn clean_up_at_exit() {
    if let Some(run) = RUN.get() {
        remove_owned_by(&run.owner);
        let _ = fs::remove_dir_all(&run.dir);
    }
}

fn random_u64() -> u64 {
    use std::hash::BuildHasher;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    std::collections::hash_map::RandomState::new().hash_one((nanos, std::process::id()))
}

/// `pid.starttime`: names one process for good (a reused pid has another start time).
fn process_identity(pid: u32) -> Option<String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 2..];
    // Fields from the third (state) on; starttime is the 22nd.
    let start = after_comm.split_whitespace().nth(19)?;
    Some(format!("{pid}.{start}"))
}

fn owner_alive(owner: &str) -> bool {
    let Some((pid, _)) = owner.split_once('.') else {
        return false;
    };
    pid.parse::<u32>()
        .ok()
        .and_then(process_identity)
        .is_some_and(|now| now == owner)
}

/// Removes what an earlier run left behind when it was killed before its clean-up ran.
fn sweep_stale_runs() {
    let label = format!("label={OWNER_LABEL}");
    let format = format!("{{{{.Label \"{OWNER_LABEL}\"}}}}");
    let mut owners = BTreeSet::new();
    for args in [
        vec!["ps", "-a", "--filter", &label, "--format", &format],
        vec!["network", "ls", "--filter", &label, "--format", &format],
    ] {
        owners.extend(lines(&docker(&args)));
    }
    let images = lines(&docker(&["images", "-q", "--filter", &label]));
    if !images.is_empty() {
        let inspect_format = format!("{{{{index .Config.Labels \"{OWNER_LABEL}\"}}}}");
        let mut args = vec!["image", "inspect", "-f", &inspect_format];
        args.extend(images.iter().map(String::as_str));
        owners.extend(lines(&docker(&args)));
    }
    for owner in owners.iter().filter(|owner| !owner_alive(owner)) {
        remove_owned_by(owner);
    }
    // And their work folders, named after their owner.
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    for entry in fs::read_dir(tmp).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let stale = name
            .to_str()
            .and_then(|n| n.strip_prefix("shim-e2e."))
            .is_some_and(|owner| !owner_alive(owner));
        if stale {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Removes every container, network and image labelled with this owner.
fn remove_owned_by(owner: &str) {
    let label = format!("label={OWNER_LABEL}={owner}");
    let containers = lines(&docker(&["ps", "-aq", "--filter", &label]));
    if !containers.is_empty() {
        let mut args = vec!["rm", "-f", "-v"];
        args.extend(containers.iter().map(String::as_str));
        docker(&args);
    }
    let networks = lines(&docker(&["network", "ls", "-q", "--filter", &label]));
    if !networks.is_empty() {
        let mut args = vec!["network", "rm"];
        args.extend(networks.iter().map(String::as_str));
        docker(&args);
    }
    // An image that another one is built on goes once its child has gone: a few passes.
    for _ in 0..4 {
        let images: BTreeSet<String> = lines(&docker(&["images", "-q", "--filter", &label]))
            .into_iter()
            .collect();
        if images.is_empty() {
            break;
        }
        let mut args = vec!["rmi", "-f"];
        args.extend(images.iter().map(String::as_str));
        docker(&args);
    }
}

fn lines(out: &Output) -> Vec<String> {
    common::stdout(out)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn unique_name(what: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}-{what}-{n}", run_ctx().prefix)
}

fn owner_label() -> String {
    format!("{OWNER_LABEL}={}", run_ctx().owner)
}

// ---------------------------------------------------------------------------------------------
// The docker command line.

fn docker<S: AsRef<OsStr>>(args: &[S]) -> Output {
    common::output(Command::new("docker").args(args).stdin(Stdio::null()))
}

/// Runs docker and returns its trimmed stdout; fails the test with docker's stderr otherwise.
fn docker_ok<S: AsRef<OsStr>>(args: &[S]) -> String {
    let out = docker(args);
    assert!(
        out.status.success(),
        "docker {:?} failed ({}): {}",
        args.iter().map(|a| a.as_ref()).collect::<Vec<_>>(),
        out.status,
        common::stderr(&out)
    );
    common::stdout(&out).trim().to_owned()
}

/// A container of this run; removed (with its anonymous volumes) when the guard drops.
struct Container {
    name: String,
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v", &self.name])
            .stdin(Stdio::null())
            .output();
    }
}

impl Container {
    /// `docker VERB --name N --label OWNER ARGS...`, the guard made before docker is asked.
    fn docker(verb: &str, what: &str, args: &[&str]) -> (Container, Output) {
        let container = Container {
            name: unique_name(what),
        };
        let label = owner_label();
        let mut full = vec![verb, "--name", &container.name, "--label", &label];
        full.extend_from_slice(args);
        let out = docker(&full);
        (container, out)
    }

    /// `docker run` in the foreground: returns when the container has ended; it is kept (not
    /// `--rm`) so that the host's copy of its resolv.conf can still be read.
    fn run(what: &str, args: &[&str]) -> (Container, Output) {
        Self::docker("run", what, args)
    }

    fn run_detached(what: &str, args: &[&str]) -> Container {
        let mut full = vec!["-d"];
        full.extend_from_slice(args);
        let (container, out) = Self::docker("run", what, &full);
        assert!(
            out.status.success(),
            "docker run -d {args:?}: {}",
            common::stderr(&out)
        );
        container
    }

    fn create(what: &str, args: &[&str]) -> Container {
        let (container, out) = Self::docker("create", what, args);
        assert!(
            out.status.success(),
            "docker create {args:?}: {}",
            common::stderr(&out)
        );
        container
    }

    fn inspect(&self, format: &str) -> String {
        docker_ok(&["inspect", "-f", format, &self.name])
    }

    /// The container's stdout and stderr so far.
    fn logs(&self) -> (String, String) {
        let out = docker(&["logs", &self.name]);
        (common::stdout(&out), common::stderr(&out))
    }

    /// Waits until the container's stdout holds `needle`; returns stdout and stderr then.
    fn wait_for_stdout(&self, needle: &str, timeout: Duration) -> (String, String) {
        let start = Instant::now();
        loop {
            let (stdout, stderr) = self.logs();
            if stdout.contains(needle) {
                return (stdout, stderr);
            }
            assert!(
                start.elapsed() < timeout,
                "{}: no {needle:?} on stdout after {timeout:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
                self.name
            );
            thread::sleep(Duration::from_millis(50));
        }
    }

    fn exec(&self, args: &[&str]) -> Output {
        let mut full = vec!["exec", self.name.as_str()];
        full.extend_from_slice(args);
        docker(&full)
    }

    /// The host's file behind the container's /etc/resolv.conf bind mount: bytes and inode.
    fn host_resolv_conf(&self) -> (String, u64) {
        let path = self.inspect("{{.ResolvConfPath}}");
        let content = fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        let inode = fs::metadata(&path)
            .expect("stat the host's resolv.conf")
            .ino();
        (
            String::from_utf8(content).expect("UTF-8 resolv.conf"),
            inode,
        )
    }
}

// ---------------------------------------------------------------------------------------------
// Images, built once per test process from files on this machine.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Libc {
    Glibc,
    Musl,
}

fn repo_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

fn work_dir(name: &str) -> PathBuf {
    let dir = run_ctx().dir.join(name);
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

fn docker_build(what: &str, dockerfile: &Path, context: &Path, build_args: &[String]) -> String {
    let tag = unique_name(what);
    let label = owner_label();
    let dockerfile = dockerfile.to_str().expect("UTF-8 path");
    let context = context.to_str().expect("UTF-8 path");
    let mut args = vec![
        "build",
        "-q",
        "--force-rm",
        "--label",
        &label,
        "-t",
        &tag,
        "-f",
        dockerfile,
    ];
    for arg in build_args {
        args.extend(["--build-arg", arg]);
    }
    args.push(context);
    docker_ok(&args);
    tag
}

/// `docker import` of a folder as the image's whole filesystem.
fn docker_import(what: &str, rootfs: &Path) -> String {
    let tag = unique_name(what);
    let mut tar = Command::new("tar")
        .args(["-C", rootfs.to_str().expect("UTF-8 path"), "-c", "."])
        .stdout(Stdio::piped())
        .spawn()
        .expect("run tar");
    let change = format!("LABEL {}", owner_label());
    let out = Command::new("docker")
        .args(["import", "--change", &change, "-", &tag])
        .stdin(tar.stdout.take().expect("tar's stdout"))
        .output()
        .expect("run docker import");
    assert!(tar.wait().expect("wait for tar").success(), "tar failed");
    assert!(
        out.status.success(),
        "docker import: {}",
        common::stderr(&out)
    );
    tag
}

/// The image that holds only /shim, built from the repository's Dockerfile.
fn shim_image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let context = work_dir("shim-context");
        // SHIM_E2E_BINARY runs the suite against another static build (a release, an older
        // commit); by default the binary is built from this tree.
        let binary = std::env::var_os("SHIM_E2E_BINARY")
            .map(PathBuf::from)
            .unwrap_or_else(|| common::static_shim().to_owned());
        fs::copy(&binary, context.join("shim"))
            .unwrap_or_else(|e| panic!("copy {} into the image: {e}", binary.display()));
        docker_build("shim", &repo_file("Dockerfile"), &context, &[])
    })
}

fn compile_probe(libc: Libc) -> PathBuf {
    let source = repo_file("tests/docker/probe.c");
    let out = work_dir("bin").join(match libc {
        Libc::Glibc => "probe-glibc",
        Libc::Musl => "probe-musl",
    });
    let mut cmd = match libc {
        Libc::Glibc => Command::new("gcc"),
        Libc::Musl => {
            let mut c = Command::new("musl-gcc");
            c.arg("-static");
            c
        }
    };
    let result = common::output(cmd.args(["-O2", "-Wall", "-o"]).arg(&out).arg(&source));
    assert!(
        result.status.success(),
        "compiling {} for {libc:?}: {}",
        source.display(),
        common::stderr(&result)
    );
    out
}

/// Copies `program` to `dest` inside `root`, with every shared library `ldd` names.
fn install_with_libraries(root: &Path, program: &Path, dest: &str) {
    let copy = |from: &Path, to: &str| {
        let target = root.join(to.trim_start_matches('/'));
        fs::create_dir_all(target.parent().expect("a parent folder")).expect("mkdir in rootfs");
        fs::copy(from, &target)
            .unwrap_or_else(|e| panic!("copy {} into the rootfs: {e}", from.display()));
    };
    copy(program, dest);
    let ldd = common::output(Command::new("ldd").arg(program));
    // A static program makes ldd exit 1 ("not a dynamic executable"): no library to copy.
    for token in common::stdout(&ldd).split_whitespace() {
        if token.starts_with('/') {
            copy(Path::new(token), token);
        }
    }
}

/// The few files of /etc the clients read: NSS, users (1000 "app", also in group 50 "staff").
fn install_etc(root: &Path) {
    let etc = root.join("etc");
    fs::create_dir_all(&etc).expect("mkdir etc");
    let files = [
        ("nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n"),
        (
            "passwd",
            "root:x:0:0:root:/root:/probe\napp:x:1000:1000:app:/home/app:/probe\nnobody:x:65534:65534:nobody:/nonexistent:/probe\n",
        ),
        (
            "group",
            "root:x:0:\nstaff:x:50:app\napp:x:1000:\nnogroup:x:65534:\n",
        ),
    ];
    for (name, content) in files {
        fs::write(etc.join(name), content).expect("write /etc file");
    }
}

/// A client image: /probe (glibc with its libraries, or static musl) and /etc; no shim.
fn base_image(libc: Libc) -> &'static str {
    static GLIBC: OnceLock<String> = OnceLock::new();
    static MUSL: OnceLock<String> = OnceLock::new();
    let cell = match libc {
        Libc::Glibc => &GLIBC,
        Libc::Musl => &MUSL,
    };
    cell.get_or_init(|| {
        let name = match libc {
            Libc::Glibc => "base-glibc",
            Libc::Musl => "base-musl",
        };
        let root = work_dir(&format!("{name}-rootfs"));
        install_with_libraries(&root, &compile_probe(libc), "/probe");
        install_etc(&root);
        docker_import(name, &root)
    })
}

/// `Dockerfile.example` built with the local shim and client images in place of registry ones.
fn app_image(libc: Libc) -> &'static str {
    static GLIBC: OnceLock<String> = OnceLock::new();
    static MUSL: OnceLock<String> = OnceLock::new();
    let cell = match libc {
        Libc::Glibc => &GLIBC,
        Libc::Musl => &MUSL,
    };
    cell.get_or_init(|| {
        let build_args = [
            format!("SHIM_IMAGE={}", shim_image()),
            format!("BASE_IMAGE={}", base_image(libc)),
        ];
        let name = match libc {
            Libc::Glibc => "app-glibc",
            Libc::Musl => "app-musl",
        };
        docker_build(
            name,
            &repo_file("Dockerfile.example"),
            &work_dir("empty-context"),
            &build_args,
        )
    })
}

/// The glibc app image with `USER 1000`, as an image that drops root itself would be.
fn user_1000_image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let dir = work_dir("user-1000");
        let dockerfile = dir.join("Dockerfile");
        fs::write(
            &dockerfile,
            format!("FROM {}\nUSER 1000\n", app_image(Libc::Glibc)),
        )
        .expect("write Dockerfile");
        docker_build(
            "app-user-1000",
            &dockerfile,
            &work_dir("empty-context"),
            &[],
        )
    })
}

fn dns_image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let root = work_dir("dns-rootfs");
        let dnsmasq = find_program("dnsmasq").expect("dnsmasq");
        install_with_libraries(&root, &dnsmasq, "/usr/sbin/dnsmasq");
        install_etc(&root);
        docker_import("dns", &root)
    })
}

// ---------------------------------------------------------------------------------------------
// The seed-case network: IPv6 (ULA), internal, with the DNS server on it.

struct SeedNet {
    name: String,
    dns_v6: String,
    dns_v4: String,
    /// Kept for the life of the process; removed by the clean-up at exit.
    _dns: Container,
}

impl SeedNet {
    /// Arguments of an app container whose only DNS server is the IPv6 one (the seed case).
    fn ipv6_dns_args(&self) -> [&str; 4] {
        ["--network", &self.name, "--dns", &self.dns_v6]
    }
}

fn seed_net() -> &'static SeedNet {
    static NET: OnceLock<SeedNet> = OnceLock::new();
    NET.get_or_init(|| {
        let dns_image = dns_image();
        let name = unique_name("net");
        let label = owner_label();
        // A random ULA /64 (RFC 4193); a clash with a network of the machine gets a new one.
        let mut prefix = String::new();
        for attempt in 0.. {
            let r = random_u64();
            prefix = format!(
                "fd{:02x}:{:04x}:{:04x}:{:04x}",
                r >> 56,
                (r >> 40) & 0xffff,
                (r >> 24) & 0xffff,
                (r >> 8) & 0xffff
            );
            let subnet = format!("{prefix}::/64");
            let out = docker(&[
                "network",
                "create",
                "--internal",
                "--ipv6",
                "--subnet",
                &subnet,
                "--label",
                &label,
                &name,
            ]);
            if out.status.success() {
                break;
            }
            assert!(
                attempt < 3,
                "docker network create: {}",
                common::stderr(&out)
            );
        }
        // Written as Docker and the resolvers write it (no leading zeros, "::" where it fits).
        let dns_v6 = format!("{prefix}::53")
            .parse::<std::net::Ipv6Addr>()
            .expect("an IPv6 address")
            .to_string();
        let host_record_v6 = format!("--host-record={V6ONLY},{V6ONLY_AAAA}");
        let host_record_dual = format!("--host-record={DUAL},{DUAL_A},{DUAL_AAAA}");
        let dns = Container::run_detached(
            "dns",
            &[
                "--network",
                &name,
                "--ip6",
                &dns_v6,
                dns_image,
                "/usr/sbin/dnsmasq",
                "--keep-in-foreground",
                "--log-facility=-",
                "--log-queries",
                "--no-resolv",
                "--no-hosts",
                "--no-poll",
                "--user=root",
                "--pid-file=",
                // Answers the test zone from the records below, NXDOMAIN for the rest of it;
                // with no upstream at all it forwards nothing anywhere.
                "--local=/shim.test/",
                &host_record_v6,
                &host_record_dual,
            ],
        );
        // dnsmasq opens its sockets before it logs that it started.
        let start = Instant::now();
        while !dns.logs().1.contains("started") {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "dnsmasq did not start: {:?}",
                dns.logs()
            );
            thread::sleep(Duration::from_millis(50));
        }
        let dns_v4 = dns.inspect("{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}");
        SeedNet {
            name,
            dns_v6,
            dns_v4,
            _dns: dns,
        }
    })
}

// ---------------------------------------------------------------------------------------------
// What /probe printed.

#[derive(Debug, Clone, PartialEq, Eq)]
struct FileSnap {
    inode: u64,
    mtime: String,
    content: String,
}

#[derive(Debug, Clone)]
struct Lookup {
    name: String,
    family: String,
    ms: f64,
    status: String,
    addrs: Vec<String>,
}

#[derive(Debug, Clone)]
struct SelfInfo {
    pid: u32,
    ppid: u32,
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
    home: String,
}

#[derive(Debug, Clone)]
struct Proc {
    pid: u32,
    ppid: u32,
    comm: String,
}

#[derive(Debug, Default)]
struct Report {
    files: Vec<FileSnap>,
    lookups: Vec<Lookup>,
    selves: Vec<SelfInfo>,
    procs: Vec<Proc>,
    signals: Vec<String>,
}

fn fields(line: &str) -> BTreeMap<&str, &str> {
    line.split_whitespace()
        .filter_map(|word| word.split_once('='))
        .collect()
}

fn parse_report(stdout: &str) -> Report {
    let mut report = Report::default();
    let mut lines = stdout.lines();
    while let Some(line) = lines.next() {
        let f = fields(line);
        let num = |key: &str| -> u32 {
            f.get(key)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no number {key} in {line:?}"))
        };
        let word = line.split_whitespace().next().unwrap_or("");
        match word {
            "file" => {
                let path = line.split_whitespace().nth(1).expect("file PATH");
                let begin = format!("--- begin {path}");
                let end = format!("--- end {path}");
                assert_eq!(lines.next(), Some(begin.as_str()), "in {stdout}");
                let mut content = String::new();
                for body in lines.by_ref() {
                    if body == end {
                        break;
                    }
                    content.push_str(body);
                    content.push('\n');
                }
                report.files.push(FileSnap {
                    inode: f["inode"].parse().expect("inode"),
                    mtime: f["mtime"].to_owned(),
                    content,
                });
            }
            "lookup" => report.lookups.push(Lookup {
                name: f["name"].to_owned(),
                family: f["family"].to_owned(),
                ms: f["ms"].parse().expect("ms"),
                status: f["status"].to_owned(),
                addrs: f
                    .get("addrs")
                    .map(|a| a.split(',').map(str::to_owned).collect())
                    .unwrap_or_default(),
            }),
            "self" => report.selves.push(SelfInfo {
                pid: num("pid"),
                ppid: num("ppid"),
                uid: num("uid"),
                gid: num("gid"),
                groups: f["groups"]
                    .split(',')
                    .filter(|g| !g.is_empty())
                    .map(|g| g.parse().expect("group id"))
                    .collect(),
                home: f["home"].to_owned(),
            }),
            "proc" => report.procs.push(Proc {
                pid: num("pid"),
                ppid: num("ppid"),
                comm: f["comm"].to_owned(),
            }),
            "signal" => report
                .signals
                .push(line.split_whitespace().nth(1).unwrap_or("").to_owned()),
            _ => {}
        }
    }
    report
}

/// `docker run` output that must have succeeded, parsed.
fn report_of(what: &str, out: &Output) -> Report {
    assert!(
        out.status.success(),
        "{what}: the container failed ({})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        common::stdout(out),
        common::stderr(out)
    );
    parse_report(&common::stdout(out))
}

/// What R2 makes of Docker's file: the 127.0.0.11 line(s) gone, every other line as it was.
fn without_embedded(content: &str) -> String {
    content
        .split_inclusive('\n')
        .filter(|line| line.trim_end_matches('\n') != EMBEDDED_LINE)
        .collect()
}

fn nameservers(content: &str) -> Vec<&str> {
    content
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver "))
        .map(str::trim)
        .collect()
}

/// The lines shim wrote on stderr.
fn shim_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("shim: ")).collect()
}

fn assert_answer(lookup: &Lookup, name: &str, expected: &[&str]) {
    assert_eq!(lookup.name, name);
    assert_eq!(lookup.status, "ok", "{lookup:?}");
    let got: BTreeSet<&str> = lookup.addrs.iter().map(String::as_str).collect();
    let want: BTreeSet<&str> = expected.iter().copied().collect();
    assert_eq!(got, want, "{lookup:?}");
}

fn assert_fast(lookup: &Lookup, context: &str) {
    assert!(
        lookup.ms < FAST_MS,
        "{context}: the lookup should answer at once, took {:.1} ms: {lookup:?}",
        lookup.ms
    );
}

/// The app runs under shim as PID 1 (the contract's I1), not in its place.
fn assert_shim_is_pid1_parent(report: &Report) {
    let me = &report.selves[0];
    let pid1 = report.procs.iter().find(|p| p.pid == 1);
    assert!(
        me.pid != 1 && me.ppid == 1 && pid1.is_some_and(|p| p.comm == "shim"),
        "shim should stay as PID 1 with the app as its child (DESIGN I1); the app is PID {} \
         (parent {}), PID 1 is {:?}: shim exec'd the app instead (needs the PID-1 supervisor, issue 4)",
        me.pid,
        me.ppid,
        pid1.map(|p| &p.comm)
    );
}

// ---------------------------------------------------------------------------------------------
// The seed case.

/// One client: a container that looks up without shim, then execs shim and looks up again (same
/// file, same inode), and a container with shim as the image's ENTRYPOINT; prints the times.
fn seed_case(test: &str, libc: Libc, extra: &[&str]) {
    let net = seed_net();
    let image = app_image(libc);
    let mut common_args: Vec<&str> = net.ipv6_dns_args().to_vec();
    common_args.extend_from_slice(extra);

    // Without shim: Docker's file as it is, one lookup that pays the resolver's wait (only once per
    // client), then `exec /shim` as PID 1 and the same lookup through the fixed file.
    let mut before_after = common_args.clone();
    before_after.extend([
        "--entrypoint",
        "/probe",
        image,
        "file",
        RESOLV_CONF,
        "lookup",
        "6",
        V6ONLY,
        "exec",
        "/shim",
        "--",
        "/probe",
        "file",
        RESOLV_CONF,
        "lookup",
        "6",
        V6ONLY,
    ]);
    // With shim as the ENTRYPOINT of the image built from Dockerfile.example.
    let mut entrypoint = common_args.clone();
    entrypoint.extend([
        image,
        "/probe",
        "file",
        RESOLV_CONF,
        "lookup",
        "6",
        V6ONLY,
        "lookup",
        "any",
        DUAL,
    ]);
    let ((_a, out_a), (b, out_b)) = thread::scope(|s| {
        let a = s.spawn(|| Container::run("seed-noshim", &before_after));
        let b = s.spawn(|| Container::run("seed-shim", &entrypoint));
        (a.join().expect("thread"), b.join().expect("thread"))
    });
    let a = report_of("without shim, then exec shim", &out_a);
    let with = report_of("shim as ENTRYPOINT", &out_b);

    let before = &a.files[0];
    let after = &a.files[1];
    println!(
        "{test}: Docker wrote ({} bytes):\n{}",
        before.content.len(),
        before.content
    );
    let servers = nameservers(&before.content);
    assert_eq!(
        servers.first(),
        Some(&"127.0.0.11"),
        "Docker <= 25 lists its embedded resolver first: {before:?}"
    );
    assert!(
        servers.contains(&net.dns_v6.as_str()),
        "the --dns server: {before:?}"
    );
    assert_eq!(
        after.content,
        without_embedded(&before.content),
        "127.0.0.11 gone, every other line kept"
    );
    assert_eq!(
        after.inode, before.inode,
        "written in place: same inode (the bind mount)"
    );
    assert_eq!(with.files[0].content, after.content);

    let slow = &a.lookups[0];
    let fixed = &a.lookups[1];
    assert_answer(slow, V6ONLY, &[V6ONLY_AAAA]);
    assert_answer(fixed, V6ONLY, &[V6ONLY_AAAA]);
    assert_answer(&with.lookups[0], V6ONLY, &[V6ONLY_AAAA]);
    assert_answer(&with.lookups[1], DUAL, &[DUAL_A, DUAL_AAAA]);
    println!(
        "{test}: AAAA {V6ONLY}: without shim {:.1} ms; after exec shim {:.1} ms; shim as ENTRYPOINT {:.1} ms ({} {DUAL}: {:.1} ms)",
        slow.ms, fixed.ms, with.lookups[0].ms, with.lookups[1].family, with.lookups[1].ms
    );
    match libc {
        // glibc asks 127.0.0.11 first, waits its 5 s timeout, then asks the next server.
        Libc::Glibc => assert!(
            slow.ms >= WAITED_MS,
            "without shim glibc waits the resolver timeout: {slow:?}"
        ),
        // musl asks every server at once and takes the first answer (DESIGN.md): no wait.
        Libc::Musl => assert_fast(slow, "musl without shim"),
    }
    assert_fast(fixed, "after exec shim");
    assert_fast(&with.lookups[0], "shim as ENTRYPOINT");
    assert_fast(&with.lookups[1], "shim as ENTRYPOINT");

    // The host's file behind the bind mount is the one that was fixed.
    let (host_content, host_inode) = b.host_resolv_conf();
    assert_eq!(host_content, with.files[0].content);
    assert_eq!(host_inode, with.files[0].inode);
    assert!(!host_content.contains("127.0.0.11"));
}

#[test]
fn seed_case_glibc_waits_without_shim_and_answers_at_once_with_it() {
    const TEST: &str = "seed_case_glibc_waits_without_shim_and_answers_at_once_with_it";
    if !ready(TEST, &[Need::Docker, Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    // A search domain too, to see that the other lines are kept.
    seed_case(TEST, Libc::Glibc, &["--dns-search", "shim.test"]);
}

#[test]
fn seed_case_musl_answers_at_once_and_the_file_is_fixed() {
    const TEST: &str = "seed_case_musl_answers_at_once_and_the_file_is_fixed";
    if !ready(
        TEST,
        &[Need::Docker, Need::Gcc, Need::MuslGcc, Need::Dnsmasq],
    ) {
        return;
    }
    seed_case(TEST, Libc::Musl, &[]);
}

// ---------------------------------------------------------------------------------------------
// Files that must stay untouched (R1, R3).

/// Runs /probe, then execs shim (as PID 1), then /probe again: the file before and after.
fn untouched_case(what: &str, network_args: &[&str], then: &[&str]) -> (Container, Report) {
    let image = app_image(Libc::Glibc);
    let mut args = network_args.to_vec();
    args.extend([
        "--entrypoint",
        "/probe",
        image,
        "file",
        RESOLV_CONF,
        "exec",
        "/shim",
        "--",
        "/probe",
        "file",
        RESOLV_CONF,
    ]);
    args.extend_from_slice(then);
    let (container, out) = Container::run(what, &args);
    let report = report_of(what, &out);
    let (before, after) = (&report.files[0], &report.files[1]);
    println!("{what}: Docker wrote:\n{}", before.content);
    assert_eq!(
        after, before,
        "same bytes, same inode, same mtime: not written at all"
    );
    let (host_content, host_inode) = container.host_resolv_conf();
    assert_eq!(
        (host_content, host_inode),
        (before.content.clone(), before.inode)
    );
    (container, report)
}

#[test]
fn default_bridge_file_is_untouched() {
    const TEST: &str = "default_bridge_file_is_untouched";
    if !ready(TEST, &[Need::Docker, Need::Gcc]) {
        return;
    }
    // The default bridge copies the host's servers (no 127.0.0.11); nothing in it is asked.
    let (_c, report) = untouched_case("bridge", &["--network", "bridge"], &[]);
    let content = &report.files[0].content;
    assert!(!content.contains("127.0.0.11"), "{content}");
    assert!(!nameservers(content).is_empty(), "{content}");
}

#[test]
fn network_whose_file_lists_only_127_0_0_11_is_untouched_and_resolves() {
    const TEST: &str = "network_whose_file_lists_only_127_0_0_11_is_untouched_and_resolves";
    if !ready(TEST, &[Need::Docker, Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    let net = seed_net();
    // An IPv4 --dns: Docker <= 25 hands it to the embedded resolver and lists only 127.0.0.11
    // (as on an IPv4-only host). The embedded resolver forwards to the suite's DNS server.
    let (_c, report) = untouched_case(
        "only-embedded",
        &["--network", &net.name, "--dns", &net.dns_v4],
        &["lookup", "any", DUAL],
    );
    assert_eq!(nameservers(&report.files[0].content), ["127.0.0.11"]);
    let lookup = &report.lookups[0];
    assert_answer(lookup, DUAL, &[DUAL_A, DUAL_AAAA]);
    assert_fast(lookup, "through the kept embedded resolver");
}

// ---------------------------------------------------------------------------------------------
// Signals and PID 1.

/// A long-running app under shim (the image's ENTRYPOINT) on the seed network.
fn start_waiting_app(what: &str) -> (Container, Report) {
    let net = seed_net();
    let mut args = net.ipv6_dns_args().to_vec();
    args.extend([app_image(Libc::Glibc), "/probe", "self", "ps", "wait"]);
    let container = Container::run_detached(what, &args);
    let (stdout, _) = container.wait_for_stdout("ready", Duration::from_secs(20));
    let report = parse_report(&stdout);
    (container, report)
}

#[test]
fn docker_stop_sigterm_reaches_the_app_and_its_exit_code_is_the_containers() {
    const TEST: &str = "docker_stop_sigterm_reaches_the_app_and_its_exit_code_is_the_containers";
    if !ready(TEST, &[Need::Docker, Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    let (container, started) = start_waiting_app("stop");
    let start = Instant::now();
    docker_ok(&["stop", "-t", "5", &container.name]);
    let took = start.elapsed();
    let (stdout, stderr) = container.logs();
    let report = parse_report(&stdout);
    assert_eq!(
        report.signals,
        ["TERM"],
        "the app's TERM handler ran\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("exiting 42"), "{stdout}");
    assert_eq!(
        container.inspect("{{.State.ExitCode}}"),
        "42",
        "the container's exit code is the app's (not 137 from the KILL after the timeout)"
    );
    assert!(took < Duration::from_secs(4), "docker stop took {took:?}");
    assert_shim_is_pid1_parent(&started);
}

#[test]
fn docker_kill_usr1_reaches_the_app() {
    const TEST: &str = "docker_kill_usr1_reaches_the_app";
    if !ready(TEST, &[Need::Docker, Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    let (container, started) = start_waiting_app("usr1");
    docker_ok(&["kill", "-s", "USR1", &container.name]);
    let (stdout, _) = container.wait_for_stdout("signal USR1", Duration::from_secs(10));
    assert_eq!(parse_report(&stdout).signals, ["USR1"]);
    assert_eq!(
        container.inspect("{{.State.Running}}"),
        "true",
        "USR1 is the app's to handle: the container still runs"
    );
    assert_shim_is_pid1_parent(&started);
}

#[test]
fn docker_run_init_shim_is_not_pid1_and_execs_the_app() {
    const TEST: &str = "docker_run_init_shim_is_not_pid1_and_execs_the_app";
    if !ready(TEST, &[Need::Docker, Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    let net = seed_net();
    let mut args = vec!["--init"];
    args.extend(net.ipv6_dns_args());
    args.extend([
        app_image(Libc::Glibc),
        "/probe",
        "self",
        "ps",
        "file",
        RESOLV_CONF,
    ]);
    let (_c, out) = Container::run("init", &args);
    let report = report_of("--init", &out);
    let me = &report.selves[0];
    let comms: Vec<(u32, &str)> = report
        .procs
        .iter()
        .map(|p| (p.pid, p.comm.as_str()))
        .collect();
    // docker-init (tini) is PID 1 and started shim; shim fixed the file and exec'd the app, which
    // now has shim's PID: no shim process is left.
    assert_eq!(
        report
            .procs
            .iter()
            .find(|p| p.pid == 1)
            .map(|p| p.comm.as_str()),
        Some("docker-init"),
        "{comms:?}"
    );
    assert_eq!(me.ppid, 1, "the app is docker-init's child: {comms:?}");
    assert_eq!(
        report.procs.len(),
        2,
        "docker-init and the app only: {comms:?}"
    );
    assert!(
        report
            .procs
            .iter()
            .any(|p| p.pid == me.pid && p.ppid == 1 && p.comm == "probe"),
        "{comms:?}"
    );
    assert!(!report.procs.iter().any(|p| p.comm == "shim"), "{comms:?}");
    assert!(!report.files[0].content.contains("127.0.0.11"));
}

// ---------------------------------------------------------------------------------------------
// Files shim may not write (R5), and --user (I7).

#[test]
fn read_only_rootfs_gives_one_erofs_line_and_the_app_runs() {
    const TEST: &str = "read_only_rootfs_gives_one_erofs_line_and_the_app_runs";
    if !ready(TEST, &[Need::Docker, Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    let net = seed_net();
    let mut args = vec!["--read-only"];
    args.extend(net.ipv6_dns_args());
    args.extend([
        app_image(Libc::Glibc),
        "/probe",
        "file",
        RESOLV_CONF,
        "wait",
    ]);
    let container = Container::run_detached("read-only", &args);
    let (stdout, stderr) = container.wait_for_stdout("ready", Duration::from_secs(20));
    let lines = shim_lines(&stderr);
    assert_eq!(lines.len(), 1, "one clear line: {stderr}");
    let line = lines[0];
    assert!(line.contains(RESOLV_CONF), "names the file: {line}");
    assert!(
        line.contains("Read-only file system") || line.contains("EROFS"),
        "names the cause: {line}"
    );
    assert!(
        line.contains("read-only"),
        "names the remedy's context: {line}"
    );
    assert_eq!(container.inspect("{{.State.Running}}"), "true");
    let report = parse_report(&stdout);
    assert!(
        report.files[0].content.contains(EMBEDDED_LINE),
        "the file could not change"
    );
    println!("{TEST}: {line}");
}

#[test]
fn image_with_user_1000_gives_one_eacces_line_naming_user_flag() {
    const TEST: &str = "image_with_user_1000_gives_one_eacces_line_naming_user_flag";
    if !ready(TEST, &[Need::Docker, Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    let net = seed_net();
    let mut args = net.ipv6_dns_args().to_vec();
    args.extend([user_1000_image(), "/probe", "self", "file", RESOLV_CONF]);
    let (_c, out) = Container::run("user-1000", &args);
    let report = report_of("USER 1000", &out);
    let stderr = common::stderr(&out);
    let lines = shim_lines(&stderr);
    assert_eq!(lines.len(), 1, "one clear line: {stderr}");
    let line = lines[0];
    assert!(line.contains(RESOLV_CONF), "names the file: {line}");
    assert!(
        line.contains("Permission denied") || line.contains("EACCES"),
        "names the cause: {line}"
    );
    assert!(line.contains("--user"), "names the remedy --user: {line}");
    assert_eq!(
        report.selves[0].uid, 1000,
        "the app runs, as the image's USER"
    );
    assert!(report.files[0].content.contains(EMBEDDED_LINE));
    println!("{TEST}: {line}");
}

#[test]
fn user_flag_as_root_fixes_the_file_then_runs_the_app_as_1000() {
    const TEST: &str = "user_flag_as_root_fixes_the_file_then_runs_the_app_as_1000";
    if !ready(TEST, &[Need::Docker, Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    let net = seed_net();
    let image = app_image(Libc::Glibc);
    let app = ["/probe", "self", "file", RESOLV_CONF];
    // The flag, and its environment fallback with the image's own ENTRYPOINT.
    let mut by_flag = net.ipv6_dns_args().to_vec();
    by_flag.extend(["--entrypoint", "/shim", image, "--user", "1000", "--"]);
    by_flag.extend(app);
    let mut by_env = net.ipv6_dns_args().to_vec();
    by_env.extend(["-e", "SHIM_USER=1000", image]);
    by_env.extend(app);
    let runs = thread::scope(|s| {
        let flag = s.spawn(|| Container::run("user-flag", &by_flag));
        let env = s.spawn(|| Container::run("user-env", &by_env));
        [
            ("--user 1000", flag.join().expect("thread")),
            ("SHIM_USER=1000", env.join().expect("thread")),
        ]
    });
    for (how, (_c, out)) in &runs {
        let report = report_of(how, out);
        let me = &report.selves[0];
        assert_eq!((me.uid, me.gid), (1000, 1000), "{how}: {me:?}");
        let mut groups = me.groups.clone();
        groups.sort_unstable();
        assert_eq!(
            groups,
            [50, 1000],
            "{how}: the user's groups from /etc/group, root's gone: {me:?}"
        );
        assert_eq!(me.home, "/home/app", "{how}: HOME from /etc/passwd");
        let content = &report.files[0].content;
        assert!(
            !content.contains("127.0.0.11"),
            "{how}: fixed as root first: {content}"
        );
        assert!(content.contains(&net.dns_v6), "{content}");
    }
}

// ---------------------------------------------------------------------------------------------
// One file shared by several containers (R6).

#[test]
fn network_container_mode_shares_one_file_and_it_ends_correct() {
    const TEST: &str = "network_container_mode_shares_one_file_and_it_ends_correct";
    if !ready(TEST, &[Need::Docker, Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    let net = seed_net();
    let image = app_image(Libc::Glibc);
    // The first container owns the network namespace and the file; it starts with no shim, so the
    // joiners' shims find Docker's file as it was and all start at once on it.
    let mut first_args = net.ipv6_dns_args().to_vec();
    first_args.extend(["--entrypoint", "/probe", image, "file", RESOLV_CONF, "wait"]);
    let first = Container::run_detached("shared-first", &first_args);
    let (stdout, _) = first.wait_for_stdout("ready", Duration::from_secs(20));
    let original = parse_report(&stdout).files[0].clone();
    assert!(original.content.contains(EMBEDDED_LINE));
    let expected = without_embedded(&original.content);

    let mode = format!("container:{}", first.name);
    let joiners: Vec<Container> = (0..3)
        .map(|_| {
            Container::create(
                "shared-joiner",
                &["--network", &mode, image, "/probe", "file", RESOLV_CONF],
            )
        })
        .collect();
    let outputs: Vec<Output> = thread::scope(|s| {
        let handles: Vec<_> = joiners
            .iter()
            .map(|c| s.spawn(|| docker(&["start", "-a", &c.name])))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    for out in &outputs {
        let report = report_of("a joiner with shim", out);
        assert_eq!(
            report.files[0].content, expected,
            "each shim's app sees it fixed"
        );
        assert_eq!(report.files[0].inode, original.inode, "one shared file");
    }
    // Then a shim in the first container too (`docker exec`, so not PID 1: it execs the app): on
    // the file the others fixed it changes nothing, not even the mtime.
    let again = first.exec(&[
        "/probe",
        "file",
        RESOLV_CONF,
        "exec",
        "/shim",
        "--",
        "/probe",
        "file",
        RESOLV_CONF,
    ]);
    let seen = report_of("docker exec shim in the first container", &again);
    assert_eq!(
        seen.files[0].content, expected,
        "the first container sees it fixed"
    );
    assert_eq!(seen.files[0].inode, original.inode);
    assert_eq!(
        seen.files[1], seen.files[0],
        "a second shim leaves the file as it is"
    );
    let (host_content, host_inode) = first.host_resolv_conf();
    assert_eq!((host_content, host_inode), (expected, original.inode));
}

// ---------------------------------------------------------------------------------------------
// shim --check-dns --json in the seed case.

#[test]
fn check_dns_json_reports_embedded_timeout_and_ipv6_server_ok() {
    const TEST: &str = "check_dns_json_reports_embedded_timeout_and_ipv6_server_ok";
    if !ready(TEST, &[Need::Docker, Need::Gcc, Need::Dnsmasq]) {
        return;
    }
    let net = seed_net();
    let mut args = net.ipv6_dns_args().to_vec();
    args.extend([
        "--entrypoint",
        "/shim",
        app_image(Libc::Glibc),
        "--check-dns",
        "--json",
        "--name",
        V6ONLY,
    ]);
    let (container, out) = Container::run("check-dns", &args);
    let stdout = common::stdout(&out);
    let stderr = common::stderr(&out);
    assert!(
        out.status.success(),
        "AAAA resolves through the server left after the fix: exit 0 ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    let json = Json::parse(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    println!("{TEST}: {stdout}");
    assert_eq!(json.get("file").and_then(Json::as_str), Some(RESOLV_CONF));
    assert!(
        json.get("kind").and_then(Json::as_str).is_some(),
        "{stdout}"
    );
    assert!(
        json.get("plan")
            .and_then(Json::as_array)
            .is_some_and(|p| !p.is_empty()),
        "a run would drop 127.0.0.11: {stdout}"
    );
    assert_eq!(json.get("ok"), Some(&Json::Bool(true)), "{stdout}");
    let servers = json
        .get("servers")
        .and_then(Json::as_array)
        .unwrap_or_else(|| panic!("no servers list: {stdout}"));
    let server = |address: &str| {
        servers
            .iter()
            .find(|s| s.get("address").and_then(Json::as_str) == Some(address))
            .unwrap_or_else(|| panic!("no server {address}: {stdout}"))
    };
    let aaaa_status = |s: &Json| s.get("aaaa").and_then(|q| q.get("status")).cloned();
    let embedded = server("127.0.0.11");
    assert_eq!(
        aaaa_status(embedded),
        Some(Json::Str("timeout".into())),
        "127.0.0.11 never answers: {stdout}"
    );
    let ipv6 = server(&net.dns_v6);
    assert_eq!(aaaa_status(ipv6), Some(Json::Str("ok".into())), "{stdout}");
    let addresses = ipv6
        .get("aaaa")
        .and_then(|q| q.get("addresses"))
        .and_then(Json::as_array)
        .unwrap_or_else(|| panic!("no AAAA addresses: {stdout}"));
    assert!(
        addresses.contains(&Json::Str(V6ONLY_AAAA.into())),
        "{stdout}"
    );
    // --check-dns changes nothing.
    let (host_content, _) = container.host_resolv_conf();
    assert!(host_content.contains(EMBEDDED_LINE), "{host_content}");
}

// ---------------------------------------------------------------------------------------------
// The images themselves.

#[test]
fn shim_image_holds_only_shim_and_the_example_image_runs_it_as_entrypoint() {
    const TEST: &str = "shim_image_holds_only_shim_and_the_example_image_runs_it_as_entrypoint";
    if !ready(TEST, &[Need::Docker, Need::Gcc]) {
        return;
    }
    let shim = shim_image();
    assert_eq!(
        docker_ok(&["image", "inspect", "-f", "{{len .RootFS.Layers}}", shim]),
        "1"
    );
    // The one layer holds one file.
    let saved = work_dir("saved-shim-image");
    let mut save = Command::new("docker")
        .args(["save", shim])
        .stdout(Stdio::piped())
        .spawn()
        .expect("docker save");
    let untar = Command::new("tar")
        .args(["-x", "-C", saved.to_str().expect("UTF-8 path")])
        .stdin(save.stdout.take().expect("docker save's stdout"))
        .status()
        .expect("tar -x");
    assert!(save.wait().expect("docker save").success() && untar.success());
    let layers: Vec<PathBuf> = walk(&saved)
        .into_iter()
        .filter(|p| p.file_name() == Some(OsStr::new("layer.tar")))
        .collect();
    assert_eq!(layers.len(), 1, "{layers:?}");
    let listing = common::output(Command::new("tar").arg("-tf").arg(&layers[0]));
    assert_eq!(lines(&listing), ["shim"]);

    let app = app_image(Libc::Glibc);
    assert_eq!(
        docker_ok(&["image", "inspect", "-f", "{{json .Config.Entrypoint}}", app]),
        r#"["/shim","--"]"#
    );
    let (_c, out) = Container::run("version", &["--entrypoint", "/shim", app, "--version"]);
    assert_eq!(
        common::stdout(&out).trim(),
        format!("shim {}", env!("CARGO_PKG_VERSION"))
    );
    let engine = docker_ok(&["version", "--format", "{{.Server.Version}}"]);
    println!("{TEST}: Docker Engine {engine}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).expect("read_dir").flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

// ---------------------------------------------------------------------------------------------
// A small JSON reader for `--check-dns --json` (the crate has no JSON dependency).

#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn parse(text: &str) -> Result<Json, String> {
        let mut reader = JsonReader {
            bytes: text.as_bytes(),
            at: 0,
        };
        let value = reader.value()?;
        reader.space();
        if reader.at != reader.bytes.len() {
            return Err(format!("trailing text at byte {}", reader.at));
        }
        Ok(value)
    }

    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Arr(items) => Some(items),
            _ => None,
        }
    }
}

struct JsonReader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl JsonReader<'_> {
    fn space(&mut self) {
        while self.bytes.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.space();
        self.bytes.get(self.at).copied()
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at byte {}", byte as char, self.at))
        }
    }

    fn literal(&mut self, word: &str, value: Json) -> Result<Json, String> {
        if self.bytes[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(format!("bad literal at byte {}", self.at))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        match self.peek() {
            Some(b'{') => {
                self.at += 1;
                let mut members = Vec::new();
                if self.peek() == Some(b'}') {
                    self.at += 1;
                    return Ok(Json::Obj(members));
                }
                loop {
                    let key = self.string()?;
                    self.expect(b':')?;
                    members.push((key, self.value()?));
                    match self.peek() {
                        Some(b',') => self.at += 1,
                        Some(b'}') => {
                            self.at += 1;
                            return Ok(Json::Obj(members));
                        }
                        _ => return Err(format!("bad object at byte {}", self.at)),
                    }
                }
            }
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                if self.peek() == Some(b']') {
                    self.at += 1;
                    return Ok(Json::Arr(items));
                }
                loop {
                    items.push(self.value()?);
                    match self.peek() {
                        Some(b',') => self.at += 1,
                        Some(b']') => {
                            self.at += 1;
                            return Ok(Json::Arr(items));
                        }
                        _ => return Err(format!("bad array at byte {}", self.at)),
                    }
                }
            }
            Some(b'"') => self.string().map(Json::Str),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(_) => {
                let start = self.at;
                while self
                    .bytes
                    .get(self.at)
                    .is_some_and(|b| b"+-.eE0123456789".contains(b))
                {
                    self.at += 1;
                }
                std::str::from_utf8(&self.bytes[start..self.at])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .map(Json::Num)
                    .ok_or_else(|| format!("bad number at byte {start}"))
            }
            None => Err("unexpected end".to_owned()),
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self
            .bytes
            .get(self.at..self.at + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u32::from_str_radix(d, 16).ok())
            .ok_or_else(|| format!("bad \\u escape at byte {}", self.at))?;
        self.at += 4;
        Ok(digits)
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out = Vec::new();
        loop {
            let byte = *self.bytes.get(self.at).ok_or("unterminated string")?;
            self.at += 1;
            match byte {
                b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                b'\\' => {
                    let escape = *self.bytes.get(self.at).ok_or("unterminated escape")?;
                    self.at += 1;
                    let ch = match escape {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let mut code = self.hex4()?;
                            if (0xd800..0xdc00).contains(&code)
                                && self.bytes[self.at..].starts_with(b"\\u")
                            {
                                self.at += 2;
                                let low = self.hex4()?;
                                code =
                                    0x10000 + ((code - 0xd800) << 10) + (low.wrapping_sub(0xdc00));
                            }
                            char::from_u32(code).unwrap_or('\u{fffd}')
                        }
                        other => return Err(format!("bad escape \\{}", other as char)),
                    };
                    let mut buf = [0; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                other => out.push(other),
            }
        }
    }
}

#[test]
fn json_reader_reads_what_check_dns_prints() {
    let json = Json::parse(
        r#" {"file":"/etc/resolv.conf","ok":false,"n":-1.5e2,"none":null,
            "servers":[{"address":"127.0.0.11","aaaa":{"status":"timeout","addresses":[],"ms":1000}}],
            "s":"a\"b\\c\u00e9\ud83d\ude00"} "#,
    )
    .expect("valid JSON");
    assert_eq!(
        json.get("file").and_then(Json::as_str),
        Some("/etc/resolv.conf")
    );
    assert_eq!(json.get("ok"), Some(&Json::Bool(false)));
    assert_eq!(json.get("n"), Some(&Json::Num(-150.0)));
    assert_eq!(json.get("none"), Some(&Json::Null));
    assert_eq!(
        json.get("s").and_then(Json::as_str),
        Some("a\"b\\c\u{e9}\u{1f600}")
    );
    let servers = json.get("servers").and_then(Json::as_array).expect("array");
    assert_eq!(
        servers[0].get("aaaa").and_then(|q| q.get("status")),
        Some(&Json::Str("timeout".into()))
    );
    for bad in ["", "{", "[1,]", "{\"a\" 1}", "\"x", "tru", "{} x"] {
        assert!(Json::parse(bad).is_err(), "{bad:?} should not parse");
    }
}
