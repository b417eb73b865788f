//! Which of the listed nameservers the C libraries ask: the first [`MAXNS`] they can read, or
//! [`FALLBACK`] when they read none.
//!
//! This is a fact of how glibc and musl use the file, as much as parse.rs is a fact of how they
//! read it, so it lives beside the parser: the run's `--probe` (the servers the app will ask) and
//! `--check-dns` (the role of every listed server) both take it from [`servers`] alone.

use std::net::{IpAddr, Ipv4Addr};

use super::parse::ResolvConf;

/// glibc (MAXNS in resolv.h) and musl both use the first three nameservers they can read, and
/// no more.
pub const MAXNS: usize = 3;

/// With no nameserver they can read, glibc and musl both ask 127.0.0.1.
pub const FALLBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// What the C libraries make of one server, once the fix has removed its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The app asks it: one of the first [`MAXNS`] left.
    Used,
    /// The fix removes its line.
    Dropped,
    /// Left in the file, but past the first [`MAXNS`]: no C library asks it.
    Ignored,
    /// Not listed: [`FALLBACK`], asked because no nameserver is.
    Fallback,
    /// R8: its line goes, and shim's proxy asks it in the app's stead (127.0.0.11 for the names
    /// of containers, the upstreams for the rest).
    Proxied,
}

impl Role {
    /// Is the server asked when the app looks a name up?
    pub fn is_asked(self) -> bool {
        matches!(self, Role::Used | Role::Fallback | Role::Proxied)
    }

    /// The role's name in `--check-dns --json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Used => "used",
            Role::Dropped => "dropped",
            Role::Ignored => "ignored",
            Role::Fallback => "fallback",
            Role::Proxied => "proxied",
        }
    }
}

/// One server the file lists (or the fallback), with its role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Server {
    /// Index of its line in `ResolvConf::lines`; `None` for the fallback.
    pub line: Option<usize>,
    pub address: IpAddr,
    /// Is it Docker's embedded resolver, 127.0.0.11?
    pub embedded: bool,
    pub role: Role,
}

/// Every `nameserver` line with an address, in order, with its role once the `dropped` lines
/// (ascending, as a plan lists them) are gone; and the fallback when none is left to ask.
/// One walk over the lines and `dropped` together: linear however many lines go.
pub fn servers(conf: &ResolvConf, dropped: &[usize]) -> Vec<Server> {
    debug_assert!(dropped.windows(2).all(|w| w[0] < w[1]));
    let mut dropped = dropped.iter().peekable();
    let mut kept = 0;
    let mut servers = Vec::new();
    for (index, line) in conf.lines.iter().enumerate() {
        let is_dropped = dropped.next_if_eq(&&index).is_some();
        let Some(nameserver) = line.nameserver else {
            continue;
        };
        let Some(address) = nameserver.address() else {
            continue;
        };
        let role = if is_dropped {
            Role::Dropped
        } else {
            kept += 1;
            if kept <= MAXNS {
                Role::Used
            } else {
                Role::Ignored
            }
        };
        servers.push(Server {
            line: Some(index),
            address,
            embedded: nameserver.is_embedded(),
            role,
        });
    }
    if kept == 0 {
        servers.push(Server {
            line: None,
            address: FALLBACK,
            embedded: false,
            role: Role::Fallback,
        });
    }
    servers
}

/// The servers the app asks once the `dropped` lines are gone, in the order it asks them.
pub fn servers_in_use(conf: &ResolvConf, dropped: &[usize]) -> Vec<IpAddr> {
    servers(conf, dropped)
        .into_iter()
        .filter(|s| s.role.is_asked())
        .map(|s| s.address)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;

    fn roles(text: &[u8], dropped: &[usize]) -> Vec<(String, Role)> {
        servers(&parse(text), dropped)
            .iter()
            .map(|s| (s.address.to_string(), s.role))
            .collect()
    }

    #[test]
    fn servers_in_use_are_the_first_three_readable_ones() {
        let conf = parse(
            b"nameserver bogus\nnameserver 10.0.0.1\nnameserver 2001:db8::1\nnameserver 10.0.0.3\nnameserver 10.0.0.4\n",
        );
        let servers: Vec<String> = servers_in_use(&conf, &[])
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(servers, ["10.0.0.1", "2001:db8::1", "10.0.0.3"]);
        let empty = parse(b"search x\n");
        assert_eq!(
            servers_in_use(&empty, &[]),
            [IpAddr::from(Ipv4Addr::LOCALHOST)]
        );
    }

    #[test]
    fn a_dropped_line_makes_room_for_the_next() {
        let text = b"nameserver 127.0.0.11\nnameserver 10.0.0.1\nnameserver 10.0.0.2\nnameserver 10.0.0.3\n";
        let role = |address: &str, role| (address.to_owned(), role);
        assert_eq!(
            roles(text, &[]),
            [
                role("127.0.0.11", Role::Used),
                role("10.0.0.1", Role::Used),
                role("10.0.0.2", Role::Used),
                role("10.0.0.3", Role::Ignored),
            ]
        );
        assert_eq!(
            roles(text, &[0]),
            [
                role("127.0.0.11", Role::Dropped),
                role("10.0.0.1", Role::Used),
                role("10.0.0.2", Role::Used),
                role("10.0.0.3", Role::Used),
            ]
        );
        let first = servers(&parse(text), &[0])[0];
        assert_eq!((first.line, first.embedded), (Some(0), true));
    }

    #[test]
    fn with_no_server_left_the_fallback_is_asked() {
        assert_eq!(
            roles(b"search x\nnameserver bogus\n", &[]),
            [("127.0.0.1".to_owned(), Role::Fallback)]
        );
        assert_eq!(servers(&parse(b""), &[])[0].line, None);
    }
}
