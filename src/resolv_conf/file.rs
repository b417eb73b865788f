//! The imperative edge: read the file and write it back in place (R4, R5, R6).
//!
//! On a user-defined network Docker bind-mounts a single file over /etc/resolv.conf. `sed -i`
//! writes a temporary file and renames it over the target, which the kernel refuses with EBUSY
//! because the target is a mount point. Writing through an fd of the same inode works, so we
//! never create, rename or unlink: we rewrite from offset 0 and truncate to the new length.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::parse::{parse, ResolvConf};
use super::plan::{plan, render, Outcome, Plan, Policy};
use crate::regular_file;

/// A resolv.conf is a few hundred bytes; a larger file is not one we should rewrite.
const MAX_SIZE: u64 = 16 << 20;

/// How long we wait for another holder of the file's lock. Another shim holds it for the few
/// microseconds of its read-plan-write; anything that holds it longer (any process may take a
/// shared lock on a file it can read) must not keep the app from starting.
pub const LOCK_WAIT: Duration = Duration::from_secs(1);

/// What a fix did.
#[derive(Debug)]
pub struct Fixed {
    pub outcome: Outcome,
}

#[derive(Debug)]
pub struct FixError {
    pub path: PathBuf,
    pub writing: bool,
    pub cause: io::Error,
}

impl fmt::Display for FixError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let verb = if self.writing { "rewrite" } else { "read" };
        let path = self.path.display();
        write!(f, "cannot {verb} {path}: {}; {}", self.cause, self.remedy())
    }
}

impl FixError {
    fn remedy(&self) -> String {
        let path = self.path.display();
        let keep = "or pass --embedded keep to leave it as it is";
        match self.cause.raw_os_error().map(nix::errno::Errno::from_raw) {
            Some(nix::errno::Errno::ENOENT) => {
                "nothing was changed; point --resolv-conf (or SHIM_RESOLV_CONF) at the file the app reads".to_owned()
            }
            Some(nix::errno::Errno::EACCES | nix::errno::Errno::EPERM) => format!(
                "run shim as root (no USER in the image, or docker run --user 0) and let it drop privileges with --user USER, {keep}"
            ),
            Some(nix::errno::Errno::EROFS) => format!(
                "{path} is on a read-only mount (docker run --read-only?); give the app working servers with docker run --dns, {keep}"
            ),
            Some(nix::errno::Errno::EISDIR) => {
                "point --resolv-conf at a file, not a directory".to_owned()
            }
            Some(nix::errno::Errno::EWOULDBLOCK) => format!(
                "another process holds a lock on it for over {} ms; the file was left as it was (find it with: fuser {path}), {keep}",
                LOCK_WAIT.as_millis()
            ),
            _ if self.cause.kind() == io::ErrorKind::InvalidInput => {
                "point --resolv-conf at a regular file (not a FIFO, device or directory)".to_owned()
            }
            _ => format!("the file was left as it was, {keep}"),
        }
    }
}

/// Read the whole file, refusing one too large to be a resolv.conf.
pub fn read(path: &Path) -> Result<Vec<u8>, FixError> {
    regular_file::read(path, MAX_SIZE).map_err(|cause| error(path, false, cause))
}

/// Apply `policy` to the file at `path`, in place. A file that needs no change is only read.
pub fn fix(path: &Path, policy: Policy) -> Result<Fixed, FixError> {
    let content = read(path)?;
    let conf = parse(&content);
    let plan = plan(&conf, policy);
    apply(path, policy, &content, &conf, plan)
}

/// Carry out `plan`, made with `policy` on `conf`, the parse of `content` as read from `path`:
/// a plan that changes nothing writes nothing; otherwise the file is rewritten in place under
/// its lock (R4, R6).
pub fn apply(
    path: &Path,
    policy: Policy,
    content: &[u8],
    conf: &ResolvConf,
    plan: Plan,
) -> Result<Fixed, FixError> {
    match new_text(conf, plan) {
        Err(outcome) => Ok(Fixed { outcome }),
        Ok(planned) => {
            rewrite(path, policy, content, planned).map_err(|cause| error(path, true, cause))
        }
    }
}

/// The plan's outcome and the text it writes; only the outcome when it writes nothing.
fn new_text(conf: &ResolvConf, plan: Plan) -> Result<(Outcome, Vec<u8>), Outcome> {
    if !plan.changes() {
        return Err(plan.outcome);
    }
    let after = render(conf, &plan);
    Ok((plan.outcome, after))
}

/// `planned`: the outcome and the new text for `seen`, what was read before taking the lock.
fn rewrite(
    path: &Path,
    policy: Policy,
    seen: &[u8],
    planned: (Outcome, Vec<u8>),
) -> io::Result<Fixed> {
    let file = regular_file::open(path, true)?;
    // Containers that share one file (`--network container:`, a Kubernetes pod) may all start a
    // shim at once: the lock makes the read-plan-write of each one atomic for the others, and
    // the plan is made again on what we read under it, since another shim may have fixed it.
    let file = lock(file, LOCK_WAIT)?;
    let before = regular_file::read_all(&file, MAX_SIZE)?;
    // Almost always the file is still what was planned on: no second parse. If another shim
    // changed it in between, plan again on what we now hold.
    let (outcome, after) = if same_bytes(&before, seen) {
        planned
    } else {
        let conf = parse(&before);
        match new_text(&conf, plan(&conf, policy)) {
            Err(outcome) => return Ok(Fixed { outcome }),
            Ok(planned) => planned,
        }
    };
    if let Err(cause) = write_in_place(&file, &after, before.len()) {
        // Whatever part of the new text reached the file, put the old one back: a half-written
        // resolv.conf is worse than the one Docker gave us.
        let _ = write_in_place(&file, &before, before.len());
        return Err(cause);
    }
    Ok(Fixed { outcome })
}

fn write_in_place(file: &File, content: &[u8], old_len: usize) -> io::Result<()> {
    // The C libraries read the file whenever they like, without our lock, so one may read it
    // between this write and the truncate. Pad the new text with empty lines to the old length:
    // what it reads then means the same as the new text, rather than the new text followed by
    // a torn tail of the old one.
    let mut padded = content.to_vec();
    padded.resize(old_len.max(content.len()), b'\n');
    file.write_all_at(&padded, 0)?;
    file.set_len(content.len() as u64)
}

/// `a == b`, eight bytes at a time: `==` on slices calls the C library's `bcmp`, and musl's
/// compares one byte at a time, ~8 instructions a byte, on every start that fixes the file.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let word = |chunk: &[u8]| u64::from_ne_bytes(chunk.try_into().expect("chunks of 8 bytes"));
    let (mut a8, mut b8) = (a.chunks_exact(8), b.chunks_exact(8));
    a.len() == b.len()
        && a8
            .by_ref()
            .zip(b8.by_ref())
            .all(|(x, y)| word(x) == word(y))
        && a8.remainder().iter().eq(b8.remainder())
}

/// Take the exclusive lock, waiting at most `wait`. flock(2) has no timeout, and shim has every
/// signal blocked during start-up, so a blocking flock would wait for the holder forever: try
/// without blocking, and back off between tries (a few tries in all; none when nobody holds it).
fn lock(file: File, wait: Duration) -> io::Result<Flock<File>> {
    // The clock is read only once the lock turns out to be taken: almost never.
    let mut deadline = None;
    let mut pause = Duration::from_millis(1);
    let mut file = file;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => return Ok(locked),
            Err((back, Errno::EWOULDBLOCK))
                if *deadline.get_or_insert_with(|| Instant::now() + wait) > Instant::now() =>
            {
                file = back;
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(64));
            }
            Err((back, Errno::EINTR)) => file = back,
            Err((_, errno)) => return Err(errno.into()),
        }
    }
}

fn error(path: &Path, writing: bool, cause: io::Error) -> FixError {
    FixError {
        path: path.to_owned(),
        writing,
        cause,
    }
}

#[cfg(test)]
mod tests {
    use super::same_bytes;

    #[test]
    fn same_bytes_is_slice_equality() {
        let text: Vec<u8> = (0..40).collect();
        for len in 0..text.len() {
            let a = &text[..len];
            assert!(same_bytes(a, a));
            assert!(!same_bytes(a, &text[..len + 1]));
            for at in 0..len {
                let mut b = a.to_vec();
                b[at] ^= 0x80;
                assert!(!same_bytes(a, &b), "len {len}, differing at {at}");
            }
        }
    }
}
