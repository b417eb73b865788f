//! The model of a resolv.conf as the C libraries see it.
//!
//! Lines are kept as the exact bytes of the input (terminator included), so that rendering
//! what we keep reproduces every other byte of the file. Classification follows glibc's
//! `res_init.c` and musl's `resolvconf.c`: keywords only count at column 1; glibc ends an address
//! at space or tab only (so `127.0.0.11#docker` is no address for it), musl at any white space
//! (so `\r` of a CRLF file), and both stop reading a line at a NUL byte because they handle it as
//! a C string. musl also skips whole lines: one that does not fit its 256-byte buffer, and one
//! with a NUL byte together with the line after it (its `fgets` check finds no `\n`, and it then
//! reads away the rest of the stream up to the next `\n`: the whole next line).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Docker's embedded resolver, listed by Docker on user-defined networks.
pub const EMBEDDED: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

/// [`EMBEDDED`] as Docker writes it.
const EMBEDDED_TEXT: &[u8] = b"127.0.0.11";

/// musl reads lines into a 256-byte buffer and skips any line that does not fit.
pub const MUSL_MAX_LINE: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf<'a> {
    pub lines: Vec<Line<'a>>,
    /// Whether any line holds a NUL byte: found by one scan of the whole text, as almost no file
    /// has one and a scan of each line costs a call and its set-up every time.
    has_nul: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<'a> {
    /// The line's bytes exactly as in the file, `\n` included when present.
    pub raw: &'a [u8],
    /// `Some` when glibc or musl reads this line as a `nameserver` line.
    pub nameserver: Option<Nameserver>,
    /// `Some` when musl skips the whole line, and why (glibc reads every line).
    pub musl_skips: Option<MuslSkip>,
}

impl Line<'_> {
    /// Does musl read this line at all?
    pub fn musl_reads(&self) -> bool {
        self.musl_skips.is_none()
    }
}

/// Why musl skips a whole line: its `fgets(line, 256, f)` found no newline in the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MuslSkip {
    /// Over [`MUSL_MAX_LINE`] bytes, newline included.
    TooLong,
    /// The last line, without a newline, of exactly [`MUSL_MAX_LINE`] bytes: it fills the buffer
    /// before `fgets` sees the end of the file, so musl takes it for a longer line.
    FillsBuffer,
    /// A NUL byte ends the C string before its newline.
    Nul,
    /// The line after a [`MuslSkip::Nul`] line, which musl reads away as that line's rest.
    AfterNul,
}

/// A `nameserver` line and the address each C library takes from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nameserver {
    pub glibc: Option<IpAddr>,
    pub musl: Option<IpAddr>,
}

impl Nameserver {
    /// Is this Docker's embedded resolver for either library?
    pub fn is_embedded(&self) -> bool {
        [self.glibc, self.musl].contains(&Some(IpAddr::V4(EMBEDDED)))
    }

    /// Does every C library use this server? Only such a server may stand in for 127.0.0.11.
    pub fn is_usable_by_all(&self) -> bool {
        self.glibc.is_some() && self.glibc == self.musl
    }

    /// The address, as the library that understood the line reads it.
    pub fn address(&self) -> Option<IpAddr> {
        self.glibc.or(self.musl)
    }
}

/// Who wrote the file, as far as its content tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Docker <= 25 on a user-defined network: 127.0.0.11 first, host servers after it.
    DockerLegacy,
    /// Docker >= 26: a header, only 127.0.0.11, upstreams in a trailing `# ExtServers:` comment.
    DockerModern,
    /// Podman with aardvark-dns: the network gateway and `search dns.podman`.
    Podman,
    /// Kubernetes: cluster DNS and `ndots:5`.
    Kubernetes,
    /// Anything else: a host file, Docker's default bridge, a hand-written file.
    Plain,
}

impl Kind {
    pub fn describe(self) -> &'static str {
        match self {
            Kind::DockerLegacy => "Docker <= 25 (embedded resolver 127.0.0.11 and host servers)",
            Kind::DockerModern => "Docker >= 26 (only 127.0.0.11; upstreams in # ExtServers)",
            Kind::Podman => "Podman (aardvark-dns)",
            Kind::Kubernetes => "Kubernetes (cluster DNS)",
            Kind::Plain => "plain (no embedded resolver)",
        }
    }
}

pub fn parse(bytes: &[u8]) -> ResolvConf<'_> {
    let has_nul = bytes.contains(&0);
    // musl reads a line only when the line before it did not hide it (see the module comment).
    let mut hidden = false;
    let lines = bytes
        .split_inclusive(|&b| b == b'\n')
        .map(|raw| {
            let nul = has_nul && raw.contains(&0);
            let musl_skips = musl_skips(raw, nul, hidden);
            hidden = musl_skips == Some(MuslSkip::Nul);
            let nameserver = nameserver(raw).map(|n| Nameserver {
                musl: n.musl.filter(|_| musl_skips.is_none()),
                ..n
            });
            Line {
                raw,
                nameserver,
                musl_skips,
            }
        })
        .collect();
    ResolvConf { lines, has_nul }
}

/// musl's `fgets(line, 256, f)` keeps a line only if, as a C string, it ends in `\n` within the
/// buffer, or it is the last line and shorter than the buffer's 255 bytes of text; `hidden` when
/// the line before had a NUL byte. A length over the buffer is named first, whatever else holds.
fn musl_skips(raw: &[u8], nul: bool, hidden: bool) -> Option<MuslSkip> {
    let newline = raw.ends_with(b"\n");
    if raw.len() > MUSL_MAX_LINE {
        Some(MuslSkip::TooLong)
    } else if hidden {
        Some(MuslSkip::AfterNul)
    } else if !newline && raw.len() == MUSL_MAX_LINE {
        Some(MuslSkip::FillsBuffer)
    } else if newline && nul {
        Some(MuslSkip::Nul)
    } else {
        None
    }
}

/// The part of a line a C library looks at: up to the first NUL, without the newline.
fn c_text(raw: &[u8]) -> &[u8] {
    let end = raw
        .iter()
        .position(|&b| b == 0 || b == b'\n')
        .unwrap_or(raw.len());
    &raw[..end]
}

fn nameserver(raw: &[u8]) -> Option<Nameserver> {
    // The keyword's ten bytes hold no NUL and no newline: a line that does not start with it
    // cannot be a nameserver line, and most lines are not; skip the scan for a NUL there.
    if !raw.starts_with(b"nameserver") {
        return None;
    }
    let text = c_text(raw);
    let rest = text.strip_prefix(b"nameserver")?;
    // glibc requires a blank after the keyword; musl accepts any white space there too, but a
    // line like "nameserver\r1.2.3.4" exists in no real file.
    if !matches!(rest.first(), Some(b' ' | b'\t')) {
        return None;
    }
    let value = trim_start(rest);
    let glibc_token = token(value, |b| matches!(b, b' ' | b'\t'));
    let glibc = address(glibc_token);
    let musl_token = token(value, |b| b.is_ascii_whitespace() || b == 0x0b);
    // Both libraries end the address at the same byte on almost every line: parse it once.
    let musl = if musl_token == glibc_token {
        glibc
    } else {
        address(musl_token)
    }
    .filter(|_| musl_reads_scope(musl_token));
    Some(Nameserver { glibc, musl })
}

/// musl takes an IPv6 scope only as a number (`fe80::1%2`); a name (`%eth0`) counts only for a
/// link-local address and only when the container has that interface, so it is not relied upon.
/// glibc ignores a scope it cannot read.
fn musl_reads_scope(token: &[u8]) -> bool {
    match token.iter().position(|&b| b == b'%') {
        None => true,
        Some(p) => std::str::from_utf8(&token[p + 1..])
            .is_ok_and(|id| id.bytes().all(|b| b.is_ascii_digit()) && id.parse::<u32>().is_ok()),
    }
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(bytes.len());
    &bytes[start..]
}

fn token(bytes: &[u8], ends: impl Fn(u8) -> bool) -> &[u8] {
    let end = bytes.iter().position(|&b| ends(b)).unwrap_or(bytes.len());
    &bytes[..end]
}

/// An IPv4 dotted quad or an IPv6 address with an optional `%scope`, as `inet_pton` reads them.
fn address(token: &[u8]) -> Option<IpAddr> {
    // Docker's own line, in every file shim is meant for: no need for the general parser.
    if token == EMBEDDED_TEXT {
        return Some(IpAddr::V4(EMBEDDED));
    }
    let text = std::str::from_utf8(token).ok()?;
    // A colon tells them apart: no IPv4 address has one, every IPv6 address does.
    if !token.contains(&b':') {
        return text.parse::<Ipv4Addr>().ok().map(IpAddr::V4);
    }
    let without_scope = text.split_once('%').map_or(text, |(addr, _)| addr);
    without_scope.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
}

impl ResolvConf<'_> {
    /// Does any line hold a NUL byte, which makes musl skip the line after it?
    pub fn has_nul(&self) -> bool {
        self.has_nul
    }

    pub fn nameservers(&self) -> impl Iterator<Item = &Nameserver> {
        self.lines.iter().filter_map(|l| l.nameserver.as_ref())
    }

    /// Lines as glibc reads them (up to a NUL, without the newline), for keyword checks.
    fn texts(&self) -> impl Iterator<Item = &[u8]> {
        self.lines.iter().map(|l| c_text(l.raw))
    }

    fn has_keyword_value(&self, keyword: &[u8], value: &[u8]) -> bool {
        self.texts().any(|text| {
            text.strip_prefix(keyword)
                .filter(|rest| matches!(rest.first(), Some(b' ' | b'\t')))
                .is_some_and(|rest| {
                    rest.split(|b| b.is_ascii_whitespace())
                        .any(|word| word == value || word.ends_with(value))
                })
        })
    }

    pub fn kind(&self) -> Kind {
        let embedded = self.nameservers().any(Nameserver::is_embedded);
        let docker_header = self.texts().any(|t| {
            t.starts_with(b"# Generated by Docker Engine.") || t.starts_with(b"# ExtServers:")
        });
        if embedded && docker_header {
            Kind::DockerModern
        } else if embedded {
            Kind::DockerLegacy
        } else if self.has_keyword_value(b"search", b"dns.podman") {
            Kind::Podman
        } else if self.has_keyword_value(b"search", b".svc.cluster.local")
            || self.has_keyword_value(b"options", b"ndots:5")
        {
            Kind::Kubernetes
        } else {
            Kind::Plain
        }
    }

    /// The upstreams Docker >= 26 lists in its trailing `# ExtServers: [...]` comment, as written
    /// (`host(127.0.0.53)` marks one that Docker reaches from the host's namespace).
    pub fn ext_servers(&self) -> Vec<String> {
        self.texts()
            .filter_map(|t| t.strip_prefix(b"# ExtServers:"))
            .flat_map(|rest| {
                String::from_utf8_lossy(rest)
                    .trim()
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(line: &str) -> Option<Nameserver> {
        nameserver(line.as_bytes())
    }

    fn v4(a: u8, b: u8, c: u8, d: u8) -> Option<IpAddr> {
        Some(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
    }

    #[test]
    fn reads_plain_nameserver_lines() {
        let n = ns("nameserver 127.0.0.11\n").unwrap();
        assert!(n.is_embedded() && n.is_usable_by_all());
        assert_eq!(n.glibc, v4(127, 0, 0, 11));
        let n = ns("nameserver\t2001:db8::53\n").unwrap();
        assert_eq!(n.glibc, Some("2001:db8::53".parse().unwrap()));
        assert!(!n.is_embedded());
    }

    #[test]
    fn the_embedded_resolver_is_exactly_127_0_0_11() {
        assert!(!ns("nameserver 127.0.0.111\n").unwrap().is_embedded());
        assert!(!ns("nameserver 127.0.0.1\n").unwrap().is_embedded());
        assert!(!ns("nameserver 127.0.0.011\n").unwrap().is_embedded());
    }

    #[test]
    fn keywords_count_only_at_column_one() {
        assert_eq!(ns("  nameserver 127.0.0.11\n"), None);
        assert_eq!(ns("#nameserver 127.0.0.11\n"), None);
        assert_eq!(ns("nameservers 127.0.0.11\n"), None);
        assert_eq!(ns("nameserver\n"), None);
        assert_eq!(
            ns("nameserver \n"),
            Some(Nameserver {
                glibc: None,
                musl: None
            })
        );
    }

    #[test]
    fn glibc_and_musl_end_the_address_differently() {
        // glibc stops only at a space or a tab (strpbrk(cp, " \t\n") in res_init.c), musl at any
        // white space: "127.0.0.11#docker" is no address for either.
        let n = ns("nameserver 127.0.0.11#docker\n").unwrap();
        assert_eq!((n.glibc, n.musl), (None, None));
        assert!(!n.is_embedded());
        assert_eq!(ns("nameserver 10.0.0.2;x\n").unwrap().glibc, None);
        // A CRLF line: glibc keeps the '\r' in the address and rejects it, musl trims it.
        let n = ns("nameserver 10.0.0.2\r\n").unwrap();
        assert_eq!((n.glibc, n.musl), (None, v4(10, 0, 0, 2)));
        let n = ns("nameserver 10.0.0.2 # office\n").unwrap();
        assert!(n.is_usable_by_all());
    }

    #[test]
    fn a_nul_byte_ends_the_line_for_both_libraries() {
        let n = ns("nameserver 10.0.0.2\0garbage\n").unwrap();
        assert!(n.is_usable_by_all());
        assert_eq!(ns("name\0server 10.0.0.2\n"), None);
    }

    #[test]
    fn musl_skips_lines_longer_than_its_buffer() {
        // Whether musl reads a line at all is decided for the whole file, in `parse`.
        let long = format!("nameserver 10.0.0.2 {}\n", " ".repeat(300));
        let n = parse(long.as_bytes()).lines[0].nameserver.unwrap();
        assert_eq!((n.glibc, n.musl), (v4(10, 0, 0, 2), None));
    }

    #[test]
    fn ipv6_scope_ids_are_accepted() {
        let n = ns("nameserver fe80::1%2\n").unwrap();
        assert!(n.is_usable_by_all());
        // By name, musl takes it only for a link-local address of an interface that exists.
        let n = ns("nameserver fe80::1%eth0\n").unwrap();
        assert!(n.glibc.is_some() && n.musl.is_none());
        assert_eq!(ns("nameserver 2001:db8::1%eth0\n").unwrap().musl, None);
    }

    #[test]
    fn musl_skips_a_line_with_a_nul_byte_and_the_line_after_it() {
        let conf = parse(b"nameserver 10.0.0.1\0\nnameserver 10.0.0.2\nnameserver 10.0.0.3\n");
        let musl: Vec<_> = conf.nameservers().map(|n| n.musl.is_some()).collect();
        assert_eq!(musl, [false, false, true]);
        assert!(conf.nameservers().all(|n| n.glibc.is_some()));
        // The last line, without a newline, is read up to the NUL.
        let conf = parse(b"search a\nnameserver 10.0.0.1\0x");
        assert!(conf.nameservers().all(|n| n.is_usable_by_all()));
    }

    #[test]
    fn musl_skips_a_last_line_that_fills_its_buffer() {
        let line = |len: usize| format!("nameserver 10.0.0.2{}", " ".repeat(len - 19));
        assert!(parse(line(254).as_bytes())
            .nameservers()
            .all(|n| n.musl.is_some()));
        assert!(parse(line(255).as_bytes())
            .nameservers()
            .all(|n| n.musl.is_none()));
    }

    #[test]
    fn each_line_says_why_musl_skips_it() {
        let skips = |text: &[u8]| -> Vec<Option<MuslSkip>> {
            parse(text).lines.iter().map(|l| l.musl_skips).collect()
        };
        let long = format!("search {}\n", "a".repeat(300));
        let text = format!("a\0\n{long}b\0\nc\nd\n{}", "e".repeat(255));
        assert_eq!(
            skips(text.as_bytes()),
            [
                Some(MuslSkip::Nul),
                Some(MuslSkip::TooLong),
                Some(MuslSkip::Nul),
                Some(MuslSkip::AfterNul),
                None,
                Some(MuslSkip::FillsBuffer),
            ]
        );
        assert_eq!(skips(b"a\nb"), [None, None]);
        assert!(parse(b"a\n").lines[0].musl_reads());
    }

    #[test]
    fn lines_keep_every_byte() {
        let text = b"a\r\nb\n\nc";
        let conf = parse(text);
        let joined: Vec<u8> = conf.lines.iter().flat_map(|l| l.raw.to_vec()).collect();
        assert_eq!(joined, text);
        assert_eq!(conf.lines.len(), 4);
    }

    #[test]
    fn ext_servers_are_read_from_docker_26_comment() {
        let conf = parse(b"nameserver 127.0.0.11\n# ExtServers: [host(127.0.0.53) 2001:db8::53]\n");
        assert_eq!(conf.ext_servers(), ["host(127.0.0.53)", "2001:db8::53"]);
        assert_eq!(conf.kind(), Kind::DockerModern);
    }
}
