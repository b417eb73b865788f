//! Open and read the few files shim reads (resolv.conf, /etc/passwd, /etc/group) without ever
//! blocking on them.
//!
//! A hostile or broken image can put a FIFO (or a device) where a file is expected: a plain
//! `open(2)` of a FIFO for reading waits for a writer that never comes, and shim would hang
//! before the app starts. Opening with O_NONBLOCK returns at once for every kind of file, and
//! `fstat` on the open descriptor (not on the path, which could change in between) tells us what
//! we hold. O_NONBLOCK has no effect on a regular file's reads and writes.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::libc;
use nix::sys::stat::fstat;

/// Open `path` for reading, or for reading and writing, refusing anything but a regular file.
pub fn open(path: &Path, write: bool) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    // fstat(2) itself: std's metadata() tries statx first and builds a larger structure, a cost
    // paid on every start.
    let kind = fstat(&file)?.st_mode & libc::S_IFMT;
    if kind == libc::S_IFDIR {
        return Err(io::Error::from_raw_os_error(libc::EISDIR));
    }
    if kind != libc::S_IFREG {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    Ok(file)
}

/// The whole content of the regular file at `path`, refused past `limit` bytes: the files we
/// read are small, and a huge one is a mistake we should name rather than load.
pub fn read(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    read_all(&open(path, false)?, limit)
}

/// Read `file` from where it stands to its end, at most `limit` bytes.
pub fn read_all(file: &File, limit: u64) -> io::Result<Vec<u8>> {
    let mut content = Vec::with_capacity(1024);
    file.take(limit + 1).read_to_end(&mut content)?;
    if content.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than {}, too large to be what we read", size(limit)),
        ));
    }
    Ok(content)
}

/// `limit` for people: in MiB or KiB when it is a whole number of them.
fn size(limit: u64) -> String {
    match limit {
        l if l >= 1 << 20 && l % (1 << 20) == 0 => format!("{} MiB", l >> 20),
        l if l >= 1 << 10 && l % (1 << 10) == 0 => format!("{} KiB", l >> 10),
        l => format!("{l} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_regular_file_and_refuses_the_rest() {
        let dir = std::env::temp_dir().join(format!("shim-regular-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f");
        std::fs::write(&file, b"abc").unwrap();
        assert_eq!(read(&file, 3).unwrap(), b"abc");
        assert_eq!(
            read(&file, 2).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        // A FIFO with no writer: refused at once instead of waiting for one.
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert_eq!(
            read(&fifo, 10).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            open(&fifo, true).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        assert_eq!(
            read(&dir, 10).unwrap_err().raw_os_error(),
            Some(libc::EISDIR)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
