//! What to change in a resolv.conf, and the text that results (rules R1, R2, R3, R6, R8).

use std::net::IpAddr;

use super::parse::{parse, Nameserver, ResolvConf};
use super::servers::MAXNS;

/// What the user asked for 127.0.0.11 when other nameservers exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Drop,
    Keep,
    /// R8: shim's forwarder listens on this loopback address and becomes the only nameserver.
    Proxy(IpAddr),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// R1: no 127.0.0.11 line; the file is not touched.
    NoEmbedded,
    /// R3: 127.0.0.11 is the only nameserver every C library can use; removing it would leave none.
    OnlyNameserver,
    /// 127.0.0.11 stays because the policy says keep.
    Kept,
    /// R2: these lines (indices into `ResolvConf::lines`) go; everything else stays as it is.
    Drop(Vec<usize>),
    /// R8: every nameserver line (`lines`, ascending) goes and `nameserver <listen>` takes the
    /// place of the first; the forwarder asks 127.0.0.11 for names and `upstreams` (the servers
    /// both C libraries read, the first three, in order) for the rest.
    Proxy {
        lines: Vec<usize>,
        listen: IpAddr,
        upstreams: Vec<IpAddr>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub outcome: Outcome,
}

impl Plan {
    pub fn changes(&self) -> bool {
        matches!(self.outcome, Outcome::Drop(_) | Outcome::Proxy { .. })
    }

    /// The lines of the file that go (for the proxy: every nameserver line).
    pub fn dropped(&self) -> &[usize] {
        match &self.outcome {
            Outcome::Drop(lines) | Outcome::Proxy { lines, .. } => lines,
            _ => &[],
        }
    }
}

pub fn plan(conf: &ResolvConf, policy: Policy) -> Plan {
    let embedded: Vec<usize> = conf
        .lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.nameserver.is_some_and(|n| n.is_embedded()))
        .map(|(i, _)| i)
        .collect();
    // Only a server that glibc and musl both read may replace 127.0.0.11: a CRLF or long line
    // that one of them rejects would leave that library with zero servers, and both then fall
    // back to 127.0.0.1, which is worse than the delay we are removing.
    let others = conf
        .nameservers()
        .filter(|n| !n.is_embedded() && n.is_usable_by_all())
        .count();
    let outcome = if embedded.is_empty() {
        Outcome::NoEmbedded
    } else if others == 0
        || (musl_may_hide_lines(conf) && !every_library_keeps_a_server(conf, &embedded))
    {
        Outcome::OnlyNameserver
    } else {
        match policy {
            Policy::Keep => Outcome::Kept,
            Policy::Drop => Outcome::Drop(embedded),
            // Should the proxy's line not read as the only server for both libraries (a NUL
            // byte before it hides it from musl), the proxy cannot stand in: drop instead.
            Policy::Proxy(listen) => proxy(conf, listen).unwrap_or(Outcome::Drop(embedded)),
        }
    };
    Plan { outcome }
}

/// R8: the forwarder as the only nameserver, if both libraries then read it and nothing else.
fn proxy(conf: &ResolvConf, listen: IpAddr) -> Option<Outcome> {
    let lines: Vec<usize> = conf
        .lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.nameserver.is_some())
        .map(|(i, _)| i)
        .collect();
    let upstreams = conf
        .nameservers()
        .filter(|n| !n.is_embedded() && n.is_usable_by_all())
        .filter_map(Nameserver::address)
        .take(MAXNS)
        .collect();
    let plan = Plan {
        outcome: Outcome::Proxy {
            lines,
            listen,
            upstreams,
        },
    };
    let after = render(conf, &plan);
    let read = parse(&after);
    let only = |library: fn(&Nameserver) -> Option<IpAddr>| {
        let mut servers = read.nameservers().filter_map(library);
        servers.next() == Some(listen) && servers.next().is_none()
    };
    (only(|n| n.glibc) && only(|n| n.musl)).then_some(plan.outcome)
}

/// Only a line with a NUL byte makes musl skip the line after it. Without one, every line reads
/// the same once the 127.0.0.11 lines are dropped, so the `others` count above proves that both
/// libraries keep a server and no longer read 127.0.0.11: the second parse can be skipped.
fn musl_may_hide_lines(conf: &ResolvConf) -> bool {
    conf.has_nul()
}

/// R3 again, on the file as it would be without the `dropped` lines: a C library that reads a
/// nameserver now must still read one, and none may read 127.0.0.11 any more (R6: a second run
/// changes nothing). Counting on each line is not enough because musl skips the line after one
/// with a NUL byte: removing a line changes what musl reads of the line that follows it.
fn every_library_keeps_a_server(conf: &ResolvConf, dropped: &[usize]) -> bool {
    let after = lines_without(conf, dropped);
    let after = parse(&after);
    let reads =
        |conf: &ResolvConf, library: fn(&Nameserver) -> bool| conf.nameservers().any(library);
    let libraries: [fn(&Nameserver) -> bool; 2] = [|n| n.glibc.is_some(), |n| n.musl.is_some()];
    !reads(&after, Nameserver::is_embedded)
        && libraries
            .into_iter()
            .all(|library| !reads(conf, library) || reads(&after, library))
}

/// The file's new content: every line the plan keeps, byte for byte and in order; for the
/// proxy, its one nameserver line where the first nameserver line was.
pub fn render(conf: &ResolvConf, plan: &Plan) -> Vec<u8> {
    let mut out = lines_without(conf, plan.dropped());
    if let Outcome::Proxy { lines, listen, .. } = &plan.outcome {
        let at: usize = conf.lines[..lines[0]].iter().map(|l| l.raw.len()).sum();
        let line = format!("nameserver {listen}\n");
        out.splice(at..at, line.bytes());
    }
    out
}

/// `dropped` is in ascending order, as `plan` makes it: one walk over both keeps this linear
/// (a `contains` per line made a file of 80,000 dropped lines take seconds, 16 MiB minutes).
fn lines_without(conf: &ResolvConf, dropped: &[usize]) -> Vec<u8> {
    debug_assert!(dropped.windows(2).all(|w| w[0] < w[1]));
    // One copy per line into a buffer of the right size: collecting a byte iterator pushes
    // byte by byte and grows the vector several times.
    let mut out = Vec::with_capacity(conf.lines.iter().map(|l| l.raw.len()).sum());
    let mut dropped = dropped.iter().peekable();
    for (index, line) in conf.lines.iter().enumerate() {
        if dropped.next_if_eq(&&index).is_none() {
            out.extend_from_slice(line.raw);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;

    fn fix(text: &str) -> (Outcome, String) {
        let conf = parse(text.as_bytes());
        let p = plan(&conf, Policy::Drop);
        (
            p.outcome.clone(),
            String::from_utf8(render(&conf, &p)).unwrap(),
        )
    }

    #[test]
    fn drops_the_embedded_resolver_when_another_server_exists() {
        let (outcome, out) = fix("nameserver 127.0.0.11\nnameserver 2001:db8::53\n");
        assert_eq!(outcome, Outcome::Drop(vec![0]));
        assert_eq!(out, "nameserver 2001:db8::53\n");
    }

    #[test]
    fn never_leaves_zero_nameservers() {
        let text = "nameserver 127.0.0.11\noptions ndots:0\n";
        assert_eq!(fix(text), (Outcome::OnlyNameserver, text.to_owned()));
    }

    #[test]
    fn a_server_only_one_library_reads_does_not_count() {
        let text = "nameserver 127.0.0.11\nnameserver 10.0.0.2#office\nnameserver 10.0.0.3\r\n";
        assert_eq!(fix(text).0, Outcome::OnlyNameserver);
    }

    #[test]
    fn a_line_musl_skips_cannot_stand_in_for_the_embedded_resolver() {
        // musl skips a line with a NUL byte and the line after it.
        let text = "nameserver 127.0.0.11\nnameserver 10.0.0.2\0x\nnameserver 10.0.0.3\n";
        assert_eq!(fix(text).0, Outcome::OnlyNameserver);
        // Dropping 127.0.0.11 would move 10.0.0.2 to where musl no longer reads it.
        let text = "search a\0\nnameserver 127.0.0.11\nnameserver 10.0.0.2\n";
        assert_eq!(fix(text).0, Outcome::OnlyNameserver);
    }

    #[test]
    fn keep_policy_keeps() {
        let text = "nameserver 127.0.0.11\nnameserver 10.0.0.2\n";
        let conf = parse(text.as_bytes());
        let p = plan(&conf, Policy::Keep);
        assert_eq!(p.outcome, Outcome::Kept);
        assert_eq!(render(&conf, &p), text.as_bytes());
    }

    #[test]
    fn every_embedded_line_goes_and_nothing_else() {
        let text = "search a\nnameserver 127.0.0.11\nnameserver 10.0.0.2\nnameserver 127.0.0.11 # again\noptions x\n";
        let (outcome, out) = fix(text);
        assert_eq!(outcome, Outcome::Drop(vec![1, 3]));
        assert_eq!(out, "search a\nnameserver 10.0.0.2\noptions x\n");
    }

    fn proxied(text: &str) -> (Outcome, String) {
        let conf = parse(text.as_bytes());
        let p = plan(&conf, Policy::Proxy(LISTEN));
        let out = String::from_utf8(render(&conf, &p)).unwrap();
        (p.outcome, out)
    }

    const LISTEN: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 153));

    #[test]
    fn the_proxy_takes_the_place_of_every_nameserver() {
        let text = "search corp.example\nnameserver 127.0.0.11\nnameserver 2001:db8::53\nnameserver 10.0.0.2\noptions ndots:0\n";
        let (outcome, out) = proxied(text);
        assert_eq!(
            outcome,
            Outcome::Proxy {
                lines: vec![1, 2, 3],
                listen: LISTEN,
                upstreams: vec!["2001:db8::53".parse().unwrap(), "10.0.0.2".parse().unwrap()],
            }
        );
        assert_eq!(
            out,
            "search corp.example\nnameserver 127.0.0.153\noptions ndots:0\n"
        );
        // R6: the proxy's own file has no 127.0.0.11 left: a second run leaves it alone.
        assert_eq!(proxied(&out), (Outcome::NoEmbedded, out.clone()));
    }

    #[test]
    fn the_proxy_starts_only_where_dropping_would_change_the_file() {
        // Docker >= 26 and Podman files: nothing to stand in for.
        let modern =
            "# Generated by Docker Engine.\nnameserver 127.0.0.11\n# ExtServers: [2001:db8::53]\n";
        assert_eq!(
            proxied(modern),
            (Outcome::OnlyNameserver, modern.to_owned())
        );
        let podman = "search dns.podman\nnameserver 10.89.0.1\n";
        assert_eq!(proxied(podman), (Outcome::NoEmbedded, podman.to_owned()));
    }

    #[test]
    fn upstreams_are_the_first_three_that_both_libraries_read() {
        let text = "nameserver 127.0.0.11\nnameserver 10.0.0.1\r\nnameserver 10.0.0.2\nnameserver 10.0.0.3\nnameserver 10.0.0.4\nnameserver 10.0.0.5\n";
        let Outcome::Proxy { upstreams, .. } = proxied(text).0 else {
            panic!()
        };
        let upstreams: Vec<String> = upstreams.iter().map(|a| a.to_string()).collect();
        assert_eq!(upstreams, ["10.0.0.2", "10.0.0.3", "10.0.0.4"]);
    }

    #[test]
    fn a_proxy_line_musl_would_not_read_falls_back_to_dropping() {
        // A NUL byte on the line before the first nameserver hides the next line from musl.
        let text = "search a\0\nnameserver 127.0.0.11\nsearch b\nnameserver 10.0.0.2\n";
        let (outcome, _) = proxied(text);
        assert!(!matches!(outcome, Outcome::Proxy { .. }), "{outcome:?}");
    }

    #[test]
    fn a_second_run_changes_nothing() {
        let (_, once) = fix("nameserver 127.0.0.11\nnameserver 10.0.0.2\n");
        assert_eq!(fix(&once), (Outcome::NoEmbedded, once.clone()));
    }
}
