//! The machinery of the Docker suite (`tests/docker.rs`): what a test needs before it can look at
//! shim in a container, and nothing it asserts about shim.
//!
//! - requirements: a visible skip, or a failure under `CI=true`;
//! - the engines: the default one (`docker` as it is) and Docker 26 at `$SHIM_E2E_DOCKER26`
//!   (`docker -H`), each with its era, read from its version;
//! - the run: a name prefix and the `shim-e2e.owner` label on everything it creates, removed at
//!   exit, and the sweep of what a killed run left;
//! - `docker` wrappers and the `Container` guard;
//! - the images, built once per test process from files on this machine on the default engine and
//!   loaded into the other, and a seed network per engine with its DNS server, which answers the
//!   test zone below;
//! - the reading of what `tests/docker/probe.c` printed.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common;

/// The test zone the seed network's DNS server answers from local records.
pub const V6ONLY: &str = "v6only.shim.test";
pub const V6ONLY_AAAA: &str = "2001:db8::6";
pub const DUAL: &str = "dual.shim.test";
pub const DUAL_A: &str = "198.51.100.46";
pub const DUAL_AAAA: &str = "2001:db8::46";
const OWNER_LABEL: &str = "shim-e2e.owner";

// ---------------------------------------------------------------------------------------------
// Requirements: a visible skip, or a failure under CI=true.

#[derive(Clone, Copy)]
pub enum Need {
    /// The engine the test runs on.
    Engine(Engine),
    Gcc,
    MuslGcc,
    Dnsmasq,
}

pub fn ready(needs: &[Need]) -> bool {
    needs.iter().all(|need| match need {
        Need::Engine(engine) => common::require(engine.available(), &engine.requirement()),
        Need::Gcc => common::require(find_program("gcc").is_some(), "gcc"),
        Need::MuslGcc => common::require(
            find_program("musl-gcc").is_some(),
            "musl-gcc (Debian's musl-tools)",
        ),
        Need::Dnsmasq => common::require(
            find_program("dnsmasq").is_some(),
            "dnsmasq (Debian's dnsmasq-base)",
        ),
    })
}

// ---------------------------------------------------------------------------------------------
// The engines: every scenario runs on each of them.

/// The environment variable that names the Docker 26 engine's socket (`unix:///run/....sock`),
/// set by `.ci/run` from `scripts/engines/docker26.sh start`.
pub const DOCKER26_ENV: &str = "SHIM_E2E_DOCKER26";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// The engine `docker` talks to by default (DOCKER_HOST or /var/run/docker.sock): the
    /// machine's Docker 20.10 here and in CI.
    Default,
    /// The Docker 26.1 engine at $SHIM_E2E_DOCKER26, run beside it by scripts/engines/docker26.sh.
    Docker26,
}

/// What the engine writes in a container's resolv.conf on a user-defined network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Era {
    /// Docker <= 25: `nameserver 127.0.0.11`, then the `--dns` (or host's) IPv6 servers.
    Legacy,
    /// Docker >= 26: a header, only `nameserver 127.0.0.11`, the upstreams in `# ExtServers:`.
    Modern,
}

impl Engine {
    pub const ALL: [Engine; 2] = [Engine::Default, Engine::Docker26];

    fn index(self) -> usize {
        self as usize
    }

    pub fn id(self) -> &'static str {
        match self {
            Engine::Default => "docker",
            Engine::Docker26 => "docker26",
        }
    }

    /// The `-H` the docker command line gets; None for the default engine.
    fn host(self) -> Option<String> {
        match self {
            Engine::Default => None,
            Engine::Docker26 => std::env::var(DOCKER26_ENV).ok().filter(|h| !h.is_empty()),
        }
    }

    fn requirement(self) -> String {
        match self {
            Engine::Default => "a Docker daemon".to_owned(),
            Engine::Docker26 => format!(
                "the Docker 26 engine (${DOCKER26_ENV}, from scripts/engines/docker26.sh start)"
            ),
        }
    }

    /// `docker [-H HOST]`, stdin closed.
    pub fn command(self) -> Command {
        let mut cmd = Command::new("docker");
        if let Some(host) = self.host() {
            cmd.args(["-H", &host]);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// The server's version, when the engine answers (asked once).
    pub fn version(self) -> Option<&'static str> {
        static VERSIONS: [OnceLock<Option<String>>; 2] = [OnceLock::new(), OnceLock::new()];
        VERSIONS[self.index()]
            .get_or_init(|| {
                if self == Engine::Docker26 && self.host().is_none() {
                    return None;
                }
                let out = self
                    .command()
                    .args(["version", "--format", "{{.Server.Version}}"])
                    .output()
                    .ok()?;
                let version = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                (out.status.success() && !version.is_empty()).then_some(version)
            })
            .as_deref()
    }

    fn available(self) -> bool {
        match (self, self.version()) {
            (_, None) => false,
            (Engine::Default, Some(_)) => true,
            // The socket must be the engine the test names: a mistaken socket is no Docker 26.
            (Engine::Docker26, Some(v)) => {
                assert!(
                    v.starts_with("26."),
                    "${DOCKER26_ENV} is Docker {v}, not 26"
                );
                true
            }
        }
    }

    pub fn era(self) -> Era {
        let version = self.version().expect("the engine answers");
        let major: u32 = version
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or_else(|| panic!("Docker version {version}"));
        if major >= 26 {
            Era::Modern
        } else {
            Era::Legacy
        }
    }

    pub fn docker<S: AsRef<OsStr>>(self, args: &[S]) -> Output {
        common::output(self.command().args(args))
    }

    /// Runs docker and returns its trimmed stdout; fails the test with docker's stderr otherwise.
    pub fn docker_ok<S: AsRef<OsStr>>(self, args: &[S]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker ({}) {:?} failed ({}): {}",
            self.id(),
            args.iter().map(|a| a.as_ref()).collect::<Vec<_>>(),
            out.status,
            common::stderr(&out)
        );
        common::stdout(&out).trim().to_owned()
    }
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
        for engine in Engine::ALL.into_iter().filter(|e| e.version().is_some()) {
            sweep_stale_runs(engine);
        }
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
        for engine in Engine::ALL.into_iter().filter(|e| e.version().is_some()) {
            remove_owned_by(engine, &run.owner);
        }
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
fn sweep_stale_runs(engine: Engine) {
    let label = format!("label={OWNER_LABEL}");
    let format = format!("{{{{.Label \"{OWNER_LABEL}\"}}}}");
    let mut owners = BTreeSet::new();
    for args in [
        vec!["ps", "-a", "--filter", &label, "--format", &format],
        vec!["network", "ls", "--filter", &label, "--format", &format],
    ] {
        owners.extend(lines(&engine.docker(&args)));
    }
    let images = lines(&engine.docker(&["images", "-q", "--filter", &label]));
    if !images.is_empty() {
        let inspect_format = format!("{{{{index .Config.Labels \"{OWNER_LABEL}\"}}}}");
        let mut args = vec!["image", "inspect", "-f", &inspect_format];
        args.extend(images.iter().map(String::as_str));
        owners.extend(lines(&engine.docker(&args)));
    }
    for owner in owners.iter().filter(|owner| !owner_alive(owner)) {
        remove_owned_by(engine, owner);
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
fn remove_owned_by(engine: Engine, owner: &str) {
    let docker = |args: &[&str]| engine.docker(args);
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

pub fn lines(out: &Output) -> Vec<String> {
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

/// A container of this run; removed (with its anonymous volumes) when the guard drops.
pub struct Container {
    pub engine: Engine,
    pub name: String,
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self
            .engine
            .command()
            .args(["rm", "-f", "-v", &self.name])
            .output();
    }
}

impl Container {
    /// `docker VERB --pull=never --name N --label OWNER ARGS...`, the guard made before docker
    /// is asked. Every image is local: never a registry.
    fn docker(engine: Engine, verb: &str, what: &str, args: &[&str]) -> (Container, Output) {
        let container = Container {
            engine,
            name: unique_name(what),
        };
        let label = owner_label();
        let mut full = vec![
            verb,
            "--pull=never",
            "--name",
            &container.name,
            "--label",
            &label,
        ];
        full.extend_from_slice(args);
        let out = engine.docker(&full);
        (container, out)
    }

    /// `docker run` in the foreground: returns when the container has ended; it is kept (not
    /// `--rm`) so that the host's copy of its resolv.conf can still be read.
    pub fn run(engine: Engine, what: &str, args: &[&str]) -> (Container, Output) {
        Self::docker(engine, "run", what, args)
    }

    pub fn run_detached(engine: Engine, what: &str, args: &[&str]) -> Container {
        let mut full = vec!["-d"];
        full.extend_from_slice(args);
        let (container, out) = Self::docker(engine, "run", what, &full);
        assert!(
            out.status.success(),
            "docker run -d {args:?}: {}",
            common::stderr(&out)
        );
        container
    }

    pub fn create(engine: Engine, what: &str, args: &[&str]) -> Container {
        let (container, out) = Self::docker(engine, "create", what, args);
        assert!(
            out.status.success(),
            "docker create {args:?}: {}",
            common::stderr(&out)
        );
        container
    }

    pub fn inspect(&self, format: &str) -> String {
        self.engine
            .docker_ok(&["inspect", "-f", format, &self.name])
    }

    /// The container's stdout and stderr so far.
    pub fn logs(&self) -> (String, String) {
        let out = self.engine.docker(&["logs", &self.name]);
        (common::stdout(&out), common::stderr(&out))
    }

    /// Waits until the container's stdout holds `needle`; returns stdout and stderr then.
    pub fn wait_for_stdout(&self, needle: &str, timeout: Duration) -> (String, String) {
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

    pub fn exec(&self, args: &[&str]) -> Output {
        let mut full = vec!["exec", self.name.as_str()];
        full.extend_from_slice(args);
        self.engine.docker(&full)
    }

    /// The host's file behind the container's /etc/resolv.conf bind mount: bytes and inode.
    pub fn host_resolv_conf(&self) -> (String, u64) {
        let snap = self.host_resolv_conf_snap();
        (snap.content, snap.inode)
    }

    /// The host's file behind the bind mount: bytes, inode and mtime (as /probe prints them).
    pub fn host_resolv_conf_snap(&self) -> FileSnap {
        let path = self.inspect("{{.ResolvConfPath}}");
        let content = fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
        let meta = fs::metadata(&path).expect("stat the host's resolv.conf");
        FileSnap {
            inode: meta.ino(),
            mtime: format!("{}.{:09}", meta.mtime(), meta.mtime_nsec()),
            content: String::from_utf8(content).expect("UTF-8 resolv.conf"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Images, built once per test process from files on this machine.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Libc {
    Glibc,
    Musl,
}

fn repo_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

pub fn work_dir(name: &str) -> PathBuf {
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
    Engine::Default.docker_ok(&args);
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
    let out = Engine::Default
        .command()
        .args(["import", "--change", &change, "-", &tag])
        .stdin(tar.stdout.take().expect("tar's stdout"))
        .output()
        .expect("run docker import");
    let tar_status = tar.wait().expect("wait for tar");
    // Docker's error first: when docker import fails, tar dies of the closed pipe, and its
    // failure would hide the cause.
    assert!(
        out.status.success(),
        "docker import: {}",
        common::stderr(&out)
    );
    assert!(tar_status.success(), "tar failed: {tar_status}");
    tag
}

/// An image of this run on `engine`. Images are built once, on the default engine; another engine
/// gets each one once, by `docker save | docker -H ... load` (the layers are the same bytes).
fn on_engine(engine: Engine, tag: &'static str) -> &'static str {
    if engine == Engine::Default {
        return tag;
    }
    static LOADED: Mutex<BTreeSet<(usize, &'static str)>> = Mutex::new(BTreeSet::new());
    // Held during the load: two tests asking for one image load it once.
    let mut loaded = LOADED.lock().unwrap_or_else(|e| e.into_inner());
    if loaded.insert((engine.index(), tag)) {
        let mut save = Engine::Default
            .command()
            .args(["save", tag])
            .stdout(Stdio::piped())
            .spawn()
            .expect("docker save");
        let out = engine
            .command()
            .args(["load", "-q"])
            .stdin(save.stdout.take().expect("docker save's stdout"))
            .output()
            .expect("docker load");
        let saved = save.wait().expect("docker save");
        assert!(
            out.status.success(),
            "docker ({}) load of {tag}: {}",
            engine.id(),
            common::stderr(&out)
        );
        assert!(saved.success(), "docker save {tag}: {saved}");
    }
    tag
}

/// The image that holds only /shim, built from the repository's Dockerfile.
pub fn shim_image(engine: Engine) -> &'static str {
    on_engine(engine, shim_image_built())
}

fn shim_image_built() -> &'static str {
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
pub fn app_image(engine: Engine, libc: Libc) -> &'static str {
    on_engine(engine, app_image_built(libc))
}

fn app_image_built(libc: Libc) -> &'static str {
    static GLIBC: OnceLock<String> = OnceLock::new();
    static MUSL: OnceLock<String> = OnceLock::new();
    let cell = match libc {
        Libc::Glibc => &GLIBC,
        Libc::Musl => &MUSL,
    };
    cell.get_or_init(|| {
        let build_args = [
            format!("SHIM_IMAGE={}", shim_image_built()),
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
pub fn user_1000_image(engine: Engine) -> &'static str {
    on_engine(engine, user_1000_image_built())
}

fn user_1000_image_built() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let dir = work_dir("user-1000");
        let dockerfile = dir.join("Dockerfile");
        fs::write(
            &dockerfile,
            format!("FROM {}\nUSER 1000\n", app_image_built(Libc::Glibc)),
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

pub fn dns_image(engine: Engine) -> &'static str {
    on_engine(engine, dns_image_built())
}

fn dns_image_built() -> &'static str {
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

pub struct SeedNet {
    pub name: String,
    pub dns_v6: String,
    pub dns_v4: String,
    /// Kept for the life of the process; removed by the clean-up at exit.
    _dns: Container,
}

impl SeedNet {
    /// Arguments of an app container whose only DNS server is the IPv6 one (the seed case).
    pub fn ipv6_dns_args(&self) -> [&str; 4] {
        ["--network", &self.name, "--dns", &self.dns_v6]
    }
}

pub fn seed_net(engine: Engine) -> &'static SeedNet {
    static NETS: [OnceLock<SeedNet>; 2] = [OnceLock::new(), OnceLock::new()];
    NETS[engine.index()].get_or_init(|| {
        let dns_image = dns_image(engine);
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
            let out = engine.docker(&[
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
        let mut args = vec![
            "--network".to_owned(),
            name.clone(),
            "--ip6".into(),
            dns_v6.clone(),
        ];
        args.push(dns_image.to_owned());
        args.extend(dnsmasq_zone_command());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let dns = Container::run_detached(engine, "dns", &args);
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
// What the container printed: /probe's report on stdout, shim's lines on stderr.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSnap {
    pub inode: u64,
    pub mtime: String,
    pub content: String,
}

#[derive(Debug, Clone)]
pub struct Lookup {
    pub name: String,
    pub family: String,
    pub ms: f64,
    pub status: String,
    pub addrs: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct SelfInfo {
    pub pid: u32,
    pub ppid: u32,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: String,
}

#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: u32,
    pub ppid: u32,
    pub comm: String,
}

#[derive(Debug, Default)]
pub struct Report {
    pub files: Vec<FileSnap>,
    pub lookups: Vec<Lookup>,
    pub selves: Vec<SelfInfo>,
    pub procs: Vec<Proc>,
    pub signals: Vec<String>,
}

fn fields(line: &str) -> BTreeMap<&str, &str> {
    line.split_whitespace()
        .filter_map(|word| word.split_once('='))
        .collect()
}

pub fn parse_report(stdout: &str) -> Report {
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
pub fn report_of(what: &str, out: &Output) -> Report {
    assert!(
        out.status.success(),
        "{what}: the container failed ({})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        common::stdout(out),
        common::stderr(out)
    );
    parse_report(&common::stdout(out))
}

/// The addresses of the file's `nameserver` lines, in order.
pub fn nameservers(content: &str) -> Vec<&str> {
    content
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver "))
        .map(str::trim)
        .collect()
}

/// The lines shim wrote on stderr.
pub fn shim_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("shim: ")).collect()
}

/// dnsmasq in the foreground, answering the test zone from its records and NXDOMAIN for the rest
/// of it; with no upstream at all it forwards nothing anywhere. The command of the DNS server
/// container of every engine's suite (Docker and Podman).
pub fn dnsmasq_zone_command() -> Vec<String> {
    [
        "/usr/sbin/dnsmasq",
        "--keep-in-foreground",
        "--log-facility=-",
        "--log-queries",
        "--no-resolv",
        "--no-hosts",
        "--no-poll",
        "--user=root",
        "--pid-file=",
        "--local=/shim.test/",
    ]
    .into_iter()
    .map(str::to_owned)
    .chain([
        format!("--host-record={V6ONLY},{V6ONLY_AAAA}"),
        format!("--host-record={DUAL},{DUAL_A},{DUAL_AAAA}"),
    ])
    .collect()
}
