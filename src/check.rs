//! `shim --check-dns`: explain what shim sees, change nothing.
//!
//! [`run`] is the edge: it reads the file, asks every listed nameserver (see [`crate::probe`])
//! and prints. Everything between is pure: [`build`] turns the file and the answers into a
//! [`Report`] (plan, roles, pitfalls, verdict), [`Report::text`] and [`Report::json`] render it.

use std::collections::HashMap;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::cli::{Embedded, Options};
use crate::probe::{self, Answer, Family, ServerProbe, Status, MAXNS};
use crate::resolv_conf::{self, Kind, Outcome, Policy, ResolvConf, MUSL_MAX_LINE};

/// Lines are shown up to this many characters: a megabyte line is reported, not printed.
const SHOWN_CHARS: usize = 160;

/// What a run would do with one listed server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The app asks it after the fix (one of the first three left).
    Used,
    /// The fix removes its line.
    Dropped,
    /// Left in the file, but past the first three: no C library asks it.
    Ignored,
    /// Not listed: with no nameserver at all, glibc and musl ask 127.0.0.1.
    Fallback,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Used => "used",
            Role::Dropped => "dropped",
            Role::Ignored => "ignored",
            Role::Fallback => "fallback",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Role::Used => "used by the app",
            Role::Dropped => "removed by the fix",
            Role::Ignored => "not used: only the first 3 count",
            Role::Fallback => "not listed: asked because no nameserver is",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// 1-based line number; `None` for the 127.0.0.1 fallback.
    pub line: Option<usize>,
    pub address: IpAddr,
    pub embedded: bool,
    pub role: Role,
    pub a: Answer,
    pub aaaa: Answer,
}

/// One line a run would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// 1-based line number.
    pub line: usize,
    pub action: &'static str,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub file: String,
    /// Why the file could not be read; the rest of the report is then empty.
    pub error: Option<String>,
    pub kind: Option<Kind>,
    pub name: String,
    pub timeout: Duration,
    pub embedded: Embedded,
    /// What a run would do, in one sentence.
    pub outcome: String,
    pub changes: Vec<Change>,
    pub servers: Vec<Server>,
    pub ext_servers: Vec<String>,
    pub pitfalls: Vec<String>,
    pub ok: bool,
    pub verdict: String,
}

/// `shim --check-dns`: print the report on stdout; the exit status is 0 when AAAA for `name`
/// resolves through the nameservers the app would use after the fix, 1 when not, 2 when
/// `name` is not a domain name.
pub fn run(options: &Options, name: &str, json: bool) -> i32 {
    if let Err(e) = probe::parse_name(name) {
        eprintln!("shim: --name: {e}");
        return 2;
    }
    let file = options.resolv_conf.display().to_string();
    let report = match resolv_conf::read(&options.resolv_conf) {
        Err(e) => unreadable(file, name, options, e.to_string()),
        Ok(content) => {
            let conf = resolv_conf::parse(&content);
            let addresses = to_probe(&conf);
            // The name was checked above: probe only fails on a name it cannot parse.
            let probes = probe::probe(&addresses, name, options.probe_timeout).unwrap_or_default();
            build(
                file,
                &conf,
                name,
                options.embedded,
                options.probe_timeout,
                &probes,
            )
        }
    };
    let text = if json {
        report.json() + "\n"
    } else {
        report.text()
    };
    // The exit status tells the verdict even when nobody reads the report.
    let _ = std::io::stdout().write_all(text.as_bytes());
    if report.ok {
        0
    } else {
        1
    }
}

fn unreadable(file: String, name: &str, options: &Options, error: String) -> Report {
    Report {
        verdict: format!("cannot tell: {error}"),
        file,
        error: Some(error),
        kind: None,
        name: name.to_owned(),
        timeout: options.probe_timeout,
        embedded: options.embedded,
        outcome: "none: the file cannot be read".to_owned(),
        changes: Vec::new(),
        servers: Vec::new(),
        ext_servers: Vec::new(),
        pitfalls: Vec::new(),
        ok: false,
    }
}

/// Every listed address once, in order; 127.0.0.1 when none is listed.
pub fn to_probe(conf: &ResolvConf) -> Vec<IpAddr> {
    let mut addresses: Vec<IpAddr> = Vec::new();
    for address in conf.nameservers().filter_map(|n| n.address()) {
        if !addresses.contains(&address) {
            addresses.push(address);
        }
    }
    if addresses.is_empty() {
        addresses.push(Ipv4Addr::LOCALHOST.into());
    }
    addresses
}

/// The report, from the file and the answers of its servers (as [`to_probe`] lists them).
pub fn build(
    file: String,
    conf: &ResolvConf,
    name: &str,
    embedded: Embedded,
    timeout: Duration,
    probes: &[ServerProbe],
) -> Report {
    let answers: HashMap<IpAddr, &ServerProbe> = probes.iter().map(|p| (p.server, p)).collect();
    let answer = |address: IpAddr| -> (Answer, Answer) {
        match answers.get(&address) {
            Some(p) => (p.a.clone(), p.aaaa.clone()),
            None => (not_asked(), not_asked()),
        }
    };

    let (policy, decision) = policy(conf, embedded, &answer);
    let plan = resolv_conf::plan(conf, policy);
    let dropped = plan.dropped();

    let mut servers = Vec::new();
    let mut kept = 0;
    for (index, line) in conf.lines.iter().enumerate() {
        let Some(address) = line.nameserver.and_then(|n| n.address()) else {
            continue;
        };
        let role = if dropped.contains(&index) {
            Role::Dropped
        } else {
            kept += 1;
            if kept <= MAXNS {
                Role::Used
            } else {
                Role::Ignored
            }
        };
        let (a, aaaa) = answer(address);
        servers.push(Server {
            line: Some(index + 1),
            address,
            embedded: line.nameserver.is_some_and(|n| n.is_embedded()),
            role,
            a,
            aaaa,
        });
    }
    if kept == 0 {
        let address = IpAddr::from(Ipv4Addr::LOCALHOST);
        let (a, aaaa) = answer(address);
        servers.push(Server {
            line: None,
            address,
            embedded: false,
            role: Role::Fallback,
            a,
            aaaa,
        });
    }

    let changes = dropped
        .iter()
        .map(|&index| Change {
            line: index + 1,
            action: "remove",
            text: shown(conf.lines[index].raw),
        })
        .collect();
    let (ok, verdict) = verdict(name, &servers);
    Report {
        file,
        error: None,
        kind: Some(conf.kind()),
        name: name.to_owned(),
        timeout,
        embedded,
        outcome: outcome(&plan.outcome, embedded, decision),
        changes,
        servers,
        ext_servers: conf.ext_servers(),
        pitfalls: pitfalls(conf),
        ok,
        verdict,
    }
}

fn not_asked() -> Answer {
    Answer {
        status: Status::Error,
        addresses: Vec::new(),
        elapsed: Duration::ZERO,
        tcp: false,
        detail: Some("not asked".to_owned()),
    }
}

/// The policy a run would apply; for `auto`, decided on 127.0.0.11's AAAA answer as a run
/// decides it, with the reason.
fn policy(
    conf: &ResolvConf,
    embedded: Embedded,
    answer: &dyn Fn(IpAddr) -> (Answer, Answer),
) -> (Policy, Option<String>) {
    match embedded {
        Embedded::Drop => (Policy::Drop, None),
        Embedded::Keep => (Policy::Keep, None),
        Embedded::Auto => {
            if !resolv_conf::plan(conf, Policy::Drop).changes() {
                return (Policy::Keep, None);
            }
            let (_, aaaa) = answer(resolv_conf::EMBEDDED.into());
            let said = format!("127.0.0.11 answered AAAA: {}", aaaa.summary());
            if probe::embedded_answers(&aaaa) {
                (Policy::Keep, Some(format!("{said}, so auto keeps it")))
            } else {
                (Policy::Drop, Some(format!("{said}, so auto drops it")))
            }
        }
    }
}

fn outcome(outcome: &Outcome, embedded: Embedded, decision: Option<String>) -> String {
    let text = match outcome {
        Outcome::NoEmbedded => "no change: 127.0.0.11 is not listed, the file stays as it is".to_owned(),
        Outcome::OnlyNameserver => {
            "no change: 127.0.0.11 is the only nameserver every C library reads; without it none would be left".to_owned()
        }
        Outcome::Kept => format!("no change: 127.0.0.11 is kept (--embedded {})", embedded_name(embedded)),
        Outcome::Drop(lines) => format!(
            "remove {} line(s) 'nameserver 127.0.0.11': names of other containers would no longer resolve (--embedded keep or auto keeps them)",
            lines.len()
        ),
    };
    match decision {
        Some(decision) => format!("{text}; {decision}"),
        None => text,
    }
}

pub fn embedded_name(embedded: Embedded) -> &'static str {
    match embedded {
        Embedded::Drop => "drop",
        Embedded::Keep => "keep",
        Embedded::Auto => "auto",
    }
}

pub fn kind_id(kind: Kind) -> &'static str {
    match kind {
        Kind::DockerLegacy => "docker-legacy",
        Kind::DockerModern => "docker-modern",
        Kind::Podman => "podman",
        Kind::Kubernetes => "kubernetes",
        Kind::Plain => "plain",
    }
}

/// Does AAAA resolve through the servers the app uses? As glibc asks them: in order, and the
/// first NOERROR or NXDOMAIN answer is the result; silence, SERVFAIL and REFUSED move it on.
fn verdict(name: &str, servers: &[Server]) -> (bool, String) {
    let mut passed: Vec<String> = Vec::new();
    let mut waits = false;
    for server in servers
        .iter()
        .filter(|s| matches!(s.role, Role::Used | Role::Fallback))
    {
        let aaaa = &server.aaaa;
        if !aaaa.status.is_final() {
            waits |= aaaa.status == Status::Timeout;
            passed.push(format!("{} {}", server.address, aaaa.status.as_str()));
            continue;
        }
        let before = if passed.is_empty() {
            String::new()
        } else if waits {
            format!(
                " after {} (glibc waits out its own timeout, 5 s by default, for each silent server first)",
                passed.join(", ")
            )
        } else {
            format!(" after {}", passed.join(", "))
        };
        return if aaaa.status == Status::Ok {
            let addresses: Vec<String> = aaaa.addresses.iter().map(|a| a.to_string()).collect();
            (
                true,
                format!(
                    "OK: AAAA for {name} resolves through {}{before}: {}",
                    server.address,
                    addresses.join(" ")
                ),
            )
        } else {
            let why = match aaaa.status {
                Status::NoData => "the name has no IPv6 address",
                _ => "the name does not exist",
            };
            (
                false,
                format!(
                    "FAIL: AAAA for {name} does not resolve: {} answers {}{before} ({why})",
                    server.address,
                    aaaa.status.as_str()
                ),
            )
        };
    }
    (
        false,
        format!(
            "FAIL: AAAA for {name} does not resolve: no nameserver the app uses answers ({})",
            passed.join(", ")
        ),
    )
}

/// What in the file bites, whatever the answers.
pub fn pitfalls(conf: &ResolvConf) -> Vec<String> {
    let mut found = Vec::new();
    let readable: Vec<IpAddr> = conf.nameservers().filter_map(|n| n.address()).collect();
    if readable.is_empty() {
        found.push(
            "no nameserver: glibc and musl both fall back to 127.0.0.1 (glibc fails at once, musl after 5 s)".to_owned(),
        );
    }
    if readable.len() > MAXNS {
        let first: Vec<String> = readable[..MAXNS].iter().map(|a| a.to_string()).collect();
        found.push(format!(
            "{} nameservers listed: glibc and musl use only the first {MAXNS} ({})",
            readable.len(),
            first.join(", ")
        ));
    }
    for (index, line) in conf.lines.iter().enumerate() {
        let number = index + 1;
        if line.raw.len() > MUSL_MAX_LINE {
            found.push(format!(
                "line {number} is {} bytes long: musl ignores lines over {MUSL_MAX_LINE} bytes",
                line.raw.len()
            ));
        }
        match line.nameserver {
            Some(n) if n.glibc.is_some() && n.musl.is_none() => found.push(format!(
                "line {number} ({}): glibc reads this nameserver, musl does not",
                shown(line.raw)
            )),
            Some(n) if n.glibc.is_none() && n.musl.is_some() => found.push(format!(
                "line {number} ({}): musl reads this nameserver, glibc does not (a CR at the end of the line?)",
                shown(line.raw)
            )),
            Some(n) if n.address().is_none() => found.push(format!(
                "line {number} ({}): not an address; ignored",
                shown(line.raw)
            )),
            None if indented_keyword(line.raw) => found.push(format!(
                "line {number} ({}): keywords count only at column 1; ignored",
                shown(line.raw)
            )),
            _ => {}
        }
    }
    if let Some(ndots) = ndots(conf) {
        if ndots >= 2 {
            found.push(format!(
                "options ndots:{ndots}: a name with fewer than {ndots} dots is first tried with every search domain appended, one query (and one wait) each, before it is tried as given"
            ));
        }
    }
    found
}

fn indented_keyword(raw: &[u8]) -> bool {
    let text = raw.trim_ascii_start();
    text.len() < raw.len()
        && ["nameserver", "search", "domain", "options"]
            .iter()
            .any(|k| text.starts_with(k.as_bytes()))
}

/// The last `ndots:N` of the `options` lines, as glibc and musl take it (the last one wins).
pub fn ndots(conf: &ResolvConf) -> Option<u32> {
    let mut value = None;
    for line in &conf.lines {
        let Some(rest) = line.raw.strip_prefix(b"options") else {
            continue;
        };
        if !matches!(rest.first(), Some(b' ' | b'\t')) {
            continue;
        }
        for word in rest.split(|b| b.is_ascii_whitespace()) {
            if let Some(number) = word.strip_prefix(b"ndots:") {
                let digits: Vec<u8> = number
                    .iter()
                    .copied()
                    .take_while(u8::is_ascii_digit)
                    .collect();
                if let Ok(n) = std::str::from_utf8(&digits).unwrap_or("").parse::<u32>() {
                    // Both libraries cap it at 15.
                    value = Some(n.min(15));
                }
            }
        }
    }
    value
}

/// A line as shown in a report: without its newline, lossy UTF-8, at most [`SHOWN_CHARS`].
fn shown(raw: &[u8]) -> String {
    let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
    let text = String::from_utf8_lossy(raw);
    if text.chars().count() <= SHOWN_CHARS {
        return text.into_owned();
    }
    let head: String = text.chars().take(SHOWN_CHARS).collect();
    format!("{head}... ({} bytes)", raw.len())
}

/// Control characters (a CR, a NUL) made visible for a terminal.
fn visible(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

impl Report {
    pub fn text(&self) -> String {
        let mut out = String::new();
        let mut line = |text: String| {
            out.push_str(&text);
            out.push('\n');
        };
        line(format!("file:    {}", visible(&self.file)));
        if let Some(error) = &self.error {
            line(format!("error:   {}", visible(error)));
        }
        if let Some(kind) = self.kind {
            line(format!("kind:    {}", kind.describe()));
        }
        line(format!(
            "name:    {} (A and AAAA, timeout {})",
            visible(&self.name),
            probe::format_ms(self.timeout)
        ));
        line(String::new());
        line(format!(
            "plan (--embedded {}): {}",
            embedded_name(self.embedded),
            self.outcome
        ));
        for change in &self.changes {
            line(format!(
                "  line {}: {}  {}",
                change.line,
                change.action,
                visible(&change.text)
            ));
        }
        if !self.servers.is_empty() {
            line(String::new());
            line("nameservers:".to_owned());
        }
        let width = self
            .servers
            .iter()
            .map(|s| s.address.to_string().len())
            .max()
            .unwrap_or(0);
        for server in &self.servers {
            let place = server.line.map_or(String::new(), |n| format!("line {n}, "));
            let embedded = if server.embedded {
                "Docker's embedded resolver, "
            } else {
                ""
            };
            line(format!(
                "  {:width$}  {place}{embedded}{}",
                server.address.to_string(),
                server.role.describe()
            ));
            for family in [Family::A, Family::Aaaa] {
                let answer = match family {
                    Family::A => &server.a,
                    Family::Aaaa => &server.aaaa,
                };
                line(format!(
                    "      {:4}  {}",
                    family.label(),
                    visible(&answer.summary())
                ));
            }
        }
        if !self.ext_servers.is_empty() {
            line(String::new());
            line(format!(
                "ExtServers (the upstreams Docker >= 26 forwards to): {}",
                visible(&self.ext_servers.join(" "))
            ));
        }
        if self.error.is_none() {
            line(String::new());
            line("pitfalls:".to_owned());
            if self.pitfalls.is_empty() {
                line("  none".to_owned());
            }
            for pitfall in &self.pitfalls {
                line(format!("  - {}", visible(pitfall)));
            }
        }
        line(String::new());
        line(format!("verdict: {}", self.verdict));
        out
    }

    pub fn json(&self) -> String {
        let answer = |a: &Answer| {
            let mut fields = vec![
                ("status", Json::Str(a.status.as_str().to_owned())),
                (
                    "addresses",
                    Json::Arr(
                        a.addresses
                            .iter()
                            .map(|x| Json::Str(x.to_string()))
                            .collect(),
                    ),
                ),
                ("ms", Json::Num(a.elapsed.as_secs_f64() * 1000.0)),
                ("tcp", Json::Bool(a.tcp)),
            ];
            if let Some(detail) = &a.detail {
                fields.push(("detail", Json::Str(detail.clone())));
            }
            Json::Obj(fields)
        };
        let servers = self
            .servers
            .iter()
            .map(|s| {
                Json::Obj(vec![
                    ("address", Json::Str(s.address.to_string())),
                    ("line", s.line.map_or(Json::Null, |n| Json::Num(n as f64))),
                    ("embedded", Json::Bool(s.embedded)),
                    ("role", Json::Str(s.role.as_str().to_owned())),
                    ("a", answer(&s.a)),
                    ("aaaa", answer(&s.aaaa)),
                ])
            })
            .collect();
        let plan = self
            .changes
            .iter()
            .map(|c| {
                Json::Obj(vec![
                    ("line", Json::Num(c.line as f64)),
                    ("action", Json::Str(c.action.to_owned())),
                    ("text", Json::Str(c.text.clone())),
                ])
            })
            .collect();
        let strings = |items: &[String]| Json::Arr(items.iter().cloned().map(Json::Str).collect());
        Json::Obj(vec![
            ("file", Json::Str(self.file.clone())),
            ("error", self.error.clone().map_or(Json::Null, Json::Str)),
            (
                "kind",
                self.kind
                    .map_or(Json::Null, |k| Json::Str(kind_id(k).to_owned())),
            ),
            (
                "kind_description",
                self.kind
                    .map_or(Json::Null, |k| Json::Str(k.describe().to_owned())),
            ),
            ("name", Json::Str(self.name.clone())),
            ("timeout_ms", Json::Num(self.timeout.as_secs_f64() * 1000.0)),
            (
                "embedded",
                Json::Str(embedded_name(self.embedded).to_owned()),
            ),
            ("outcome", Json::Str(self.outcome.clone())),
            ("plan", Json::Arr(plan)),
            ("servers", Json::Arr(servers)),
            ("ext_servers", strings(&self.ext_servers)),
            ("pitfalls", strings(&self.pitfalls)),
            ("ok", Json::Bool(self.ok)),
            ("verdict", Json::Str(self.verdict.clone())),
        ])
        .to_string()
    }
}

/// Just enough JSON to write one report.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(&'static str, Json)>),
}

impl Json {
    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            // Three decimals are plenty for milliseconds; Display never uses an exponent.
            Json::Num(n) if n.is_finite() => {
                let rounded = (n * 1000.0).round() / 1000.0;
                out.push_str(&rounded.to_string());
            }
            Json::Num(_) => out.push_str("null"),
            Json::Str(s) => write_string(out, s),
            Json::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Json::Obj(fields) => {
                out.push('{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(out, key);
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }
}

impl std::fmt::Display for Json {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let mut out = String::new();
        self.write(&mut out);
        f.write_str(&out)
    }
}

/// A JSON string (RFC 8259): quote, backslash and every control character escaped; the rest
/// is UTF-8 as it is (a Rust string is always valid UTF-8).
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolv_conf::parse;

    fn answer(status: Status, addresses: &[&str], ms: u64) -> Answer {
        Answer {
            status,
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            elapsed: Duration::from_millis(ms),
            tcp: false,
            detail: None,
        }
    }

    fn server(address: &str, a: Answer, aaaa: Answer) -> ServerProbe {
        ServerProbe {
            server: address.parse().unwrap(),
            a,
            aaaa,
        }
    }

    fn silent(address: &str) -> ServerProbe {
        server(
            address,
            answer(Status::Timeout, &[], 1000),
            answer(Status::Timeout, &[], 1000),
        )
    }

    fn v6(address: &str) -> ServerProbe {
        server(
            address,
            answer(Status::NoData, &[], 1),
            answer(Status::Ok, &["2001:db8:6::6"], 1),
        )
    }

    fn report(text: &str, embedded: Embedded, probes: &[ServerProbe]) -> Report {
        let conf = parse(text.as_bytes());
        build(
            "/etc/resolv.conf".into(),
            &conf,
            "v6only.test",
            embedded,
            Duration::from_secs(1),
            probes,
        )
    }

    const LEGACY: &str =
        "search example.org\nnameserver 127.0.0.11\nnameserver 2001:db8::53\noptions ndots:0\n";

    #[test]
    fn docker_legacy_with_a_silent_resolver_is_fixed_by_dropping_it() {
        let r = report(
            LEGACY,
            Embedded::Drop,
            &[silent("127.0.0.11"), v6("2001:db8::53")],
        );
        assert_eq!(r.kind, Some(Kind::DockerLegacy));
        assert_eq!(
            r.changes,
            [Change {
                line: 2,
                action: "remove",
                text: "nameserver 127.0.0.11".into()
            }]
        );
        let roles: Vec<(String, Role, bool)> = r
            .servers
            .iter()
            .map(|s| (s.address.to_string(), s.role, s.embedded))
            .collect();
        assert_eq!(
            roles,
            [
                ("127.0.0.11".into(), Role::Dropped, true),
                ("2001:db8::53".into(), Role::Used, false)
            ]
        );
        assert!(r.ok, "{}", r.verdict);
        assert!(r.verdict.contains("2001:db8:6::6"), "{}", r.verdict);
        assert!(r.pitfalls.is_empty(), "{:?}", r.pitfalls);
    }

    #[test]
    fn keeping_a_silent_resolver_is_seen_as_a_wait() {
        let r = report(
            LEGACY,
            Embedded::Keep,
            &[silent("127.0.0.11"), v6("2001:db8::53")],
        );
        assert!(r.changes.is_empty());
        assert!(r.outcome.contains("kept"), "{}", r.outcome);
        // It still resolves, after glibc waits for 127.0.0.11.
        assert!(r.ok);
        assert!(
            r.verdict.contains("after 127.0.0.11 timeout"),
            "{}",
            r.verdict
        );
        assert!(r.verdict.contains("waits"), "{}", r.verdict);
    }

    #[test]
    fn auto_decides_on_the_embedded_resolvers_answer() {
        let r = report(
            LEGACY,
            Embedded::Auto,
            &[silent("127.0.0.11"), v6("2001:db8::53")],
        );
        assert_eq!(r.changes.len(), 1);
        assert!(r.outcome.contains("auto drops it"), "{}", r.outcome);
        let forwarding = v6("127.0.0.11");
        let r = report(LEGACY, Embedded::Auto, &[forwarding, v6("2001:db8::53")]);
        assert!(r.changes.is_empty());
        assert!(r.outcome.contains("auto keeps it"), "{}", r.outcome);
        assert_eq!(r.servers[0].role, Role::Used);
        let nx = server(
            "127.0.0.11",
            answer(Status::NxDomain, &[], 1),
            answer(Status::NxDomain, &[], 1),
        );
        let r = report(LEGACY, Embedded::Auto, &[nx, v6("2001:db8::53")]);
        assert!(r.changes.is_empty(), "NXDOMAIN is an answer: kept");
        // ... and then it is the embedded resolver's NXDOMAIN the app gets.
        assert!(!r.ok);
        let failing = server(
            "127.0.0.11",
            answer(Status::ServFail, &[], 1),
            answer(Status::ServFail, &[], 1),
        );
        let r = report(LEGACY, Embedded::Auto, &[failing, v6("2001:db8::53")]);
        assert_eq!(r.changes.len(), 1, "SERVFAIL: dropped");
    }

    #[test]
    fn docker_modern_keeps_its_only_nameserver() {
        let text = "# Generated by Docker Engine.\n# This file can be edited; Docker Engine will not make further changes once it\n# has been modified.\n\nnameserver 127.0.0.11\nsearch example.org\noptions ndots:0\n\n# Based on host file: '/etc/resolv.conf' (internal resolver)\n# ExtServers: [host(127.0.0.53) 2001:db8::53]\n# Overrides: []\n# Option ndots from: internal\n";
        let r = report(text, Embedded::Drop, &[silent("127.0.0.11")]);
        assert_eq!(r.kind, Some(Kind::DockerModern));
        assert!(r.changes.is_empty());
        assert!(r.outcome.contains("only nameserver"), "{}", r.outcome);
        assert_eq!(r.ext_servers, ["host(127.0.0.53)", "2001:db8::53"]);
        assert_eq!(r.servers[0].role, Role::Used);
        assert!(!r.ok);
        assert!(
            r.verdict.contains("no nameserver the app uses answers"),
            "{}",
            r.verdict
        );
        let r = report(text, Embedded::Drop, &[v6("127.0.0.11")]);
        assert!(r.ok, "{}", r.verdict);
    }

    #[test]
    fn nodata_and_nxdomain_fail_the_verdict() {
        let text = "nameserver 2001:db8::53\n";
        let nodata = server(
            "2001:db8::53",
            answer(Status::Ok, &["192.0.2.4"], 1),
            answer(Status::NoData, &[], 1),
        );
        let r = report(text, Embedded::Drop, &[nodata]);
        assert!(!r.ok);
        assert!(r.verdict.contains("no IPv6 address"), "{}", r.verdict);
        let nx = server(
            "2001:db8::53",
            answer(Status::NxDomain, &[], 1),
            answer(Status::NxDomain, &[], 1),
        );
        let r = report(text, Embedded::Drop, &[nx]);
        assert!(!r.ok);
        assert!(r.verdict.contains("does not exist"), "{}", r.verdict);
    }

    #[test]
    fn the_first_final_answer_decides_as_in_glibc() {
        // The first server says NXDOMAIN: glibc stops there even though the second has it.
        let text = "nameserver 10.0.0.1\nnameserver 2001:db8::53\n";
        let nx = server(
            "10.0.0.1",
            answer(Status::NxDomain, &[], 1),
            answer(Status::NxDomain, &[], 1),
        );
        assert!(!report(text, Embedded::Drop, &[nx, v6("2001:db8::53")]).ok);
        // SERVFAIL moves on.
        let failing = server(
            "10.0.0.1",
            answer(Status::ServFail, &[], 1),
            answer(Status::ServFail, &[], 1),
        );
        let r = report(text, Embedded::Drop, &[failing, v6("2001:db8::53")]);
        assert!(r.ok);
        assert!(
            r.verdict.contains("after 10.0.0.1 servfail"),
            "{}",
            r.verdict
        );
        assert!(!r.verdict.contains("waits"), "{}", r.verdict);
    }

    #[test]
    fn only_the_first_three_servers_count() {
        let text = "nameserver 10.0.0.1\nnameserver 10.0.0.2\nnameserver 10.0.0.3\nnameserver 2001:db8::53\n";
        let probes = [
            silent("10.0.0.1"),
            silent("10.0.0.2"),
            silent("10.0.0.3"),
            v6("2001:db8::53"),
        ];
        let r = report(text, Embedded::Drop, &probes);
        assert_eq!(r.servers[3].role, Role::Ignored);
        assert!(!r.ok, "{}", r.verdict);
        assert!(
            r.pitfalls[0].starts_with("4 nameservers listed"),
            "{:?}",
            r.pitfalls
        );
    }

    #[test]
    fn no_nameserver_means_127_0_0_1() {
        let r = report("search x\n", Embedded::Drop, &[silent("127.0.0.1")]);
        assert_eq!(r.servers.len(), 1);
        assert_eq!(r.servers[0].role, Role::Fallback);
        assert_eq!(r.servers[0].line, None);
        assert!(!r.ok);
        assert!(
            r.pitfalls[0].starts_with("no nameserver"),
            "{:?}",
            r.pitfalls
        );
        assert_eq!(
            to_probe(&parse(b"search x\n")),
            [IpAddr::from(Ipv4Addr::LOCALHOST)]
        );
    }

    #[test]
    fn to_probe_lists_each_address_once() {
        let conf = parse(b"nameserver 127.0.0.11\nnameserver 10.0.0.1\nnameserver 127.0.0.11\n");
        let listed: Vec<String> = to_probe(&conf).iter().map(|a| a.to_string()).collect();
        assert_eq!(listed, ["127.0.0.11", "10.0.0.1"]);
    }

    #[test]
    fn pitfalls_in_the_file_are_named() {
        let long = format!("search {}\n", "a.example ".repeat(30));
        // A nameserver line too long for musl's buffer: glibc reads it, musl skips it.
        let long_server = format!("nameserver 10.0.0.3{}\n", " ".repeat(300));
        let text = format!(
            "{long}nameserver 10.0.0.2\r\n{long_server} nameserver 10.0.0.4\nnameserver bogus\noptions timeout:2 ndots:5\n"
        );
        let pitfalls = pitfalls(&parse(text.as_bytes()));
        let joined = pitfalls.join("\n");
        assert!(
            joined.contains(&format!("line 1 is {} bytes long", long.len())),
            "{joined}"
        );
        assert!(
            joined.contains("line 2 (nameserver 10.0.0.2\r): musl reads"),
            "{joined}"
        );
        assert!(
            joined.contains(&format!("line 3 is {} bytes long", long_server.len())),
            "{joined}"
        );
        assert!(
            joined.contains("line 3 (nameserver 10.0.0.3   "),
            "{joined}"
        );
        assert!(
            joined.contains("): glibc reads this nameserver, musl does not"),
            "{joined}"
        );
        assert!(
            joined.contains("line 4 ( nameserver 10.0.0.4): keywords count only at column 1"),
            "{joined}"
        );
        assert!(
            joined.contains("line 5 (nameserver bogus): not an address"),
            "{joined}"
        );
        assert!(joined.contains("options ndots:5"), "{joined}");
        assert_eq!(pitfalls.len(), 7, "{joined}");
    }

    #[test]
    fn ndots_is_read_like_the_c_libraries() {
        assert_eq!(ndots(&parse(b"options ndots:0\n")), Some(0));
        assert_eq!(
            ndots(&parse(
                b"options rotate ndots:5 attempts:2\noptions ndots:2\n"
            )),
            Some(2)
        );
        assert_eq!(ndots(&parse(b"options ndots:99\n")), Some(15));
        assert_eq!(ndots(&parse(b" options ndots:5\n")), None);
        assert_eq!(ndots(&parse(b"search ndots:5\n")), None);
        // Docker's ndots:0 is no pitfall.
        assert!(pitfalls(&parse(LEGACY.as_bytes())).is_empty());
    }

    #[test]
    fn long_lines_are_shown_shortened() {
        let raw = format!("search {}\n", "x".repeat(1 << 20));
        let text = shown(raw.as_bytes());
        assert!(text.len() < 200, "{}", text.len());
        assert!(
            text.ends_with(&format!("... ({} bytes)", raw.len() - 1)),
            "{text}"
        );
        assert_eq!(shown(b"nameserver \xff\n"), "nameserver \u{fffd}");
    }

    #[test]
    fn text_names_every_part() {
        let text = "nameserver 127.0.0.11\nnameserver 2001:db8::53\n# ExtServers: [2001:db8::99]\n";
        let r = report(
            text,
            Embedded::Drop,
            &[silent("127.0.0.11"), v6("2001:db8::53")],
        );
        let out = r.text();
        for part in [
            "file:    /etc/resolv.conf",
            "kind:    Docker >= 26",
            "plan (--embedded drop): remove 1 line(s)",
            "  line 1: remove  nameserver 127.0.0.11",
            "  127.0.0.11    line 1, Docker's embedded resolver, removed by the fix",
            "      A     timeout (1000 ms)",
            "  2001:db8::53  line 2, used by the app",
            "      AAAA  ok 2001:db8:6::6 (1.0 ms)",
            "ExtServers (the upstreams Docker >= 26 forwards to): 2001:db8::99",
            "pitfalls:\n  none",
            "verdict: OK: AAAA for v6only.test resolves through 2001:db8::53: 2001:db8:6::6",
        ] {
            assert!(out.contains(part), "missing {part:?} in:\n{out}");
        }
    }

    #[test]
    fn json_has_the_promised_fields() {
        let r = report(
            LEGACY,
            Embedded::Drop,
            &[silent("127.0.0.11"), v6("2001:db8::53")],
        );
        let json = r.json();
        for part in [
            r#""file":"/etc/resolv.conf""#,
            r#""kind":"docker-legacy""#,
            r#""plan":[{"line":2,"action":"remove","text":"nameserver 127.0.0.11"}]"#,
            r#""servers":[{"address":"127.0.0.11","line":2,"embedded":true,"role":"dropped","a":{"status":"timeout","addresses":[],"ms":1000,"tcp":false},"#,
            r#""aaaa":{"status":"ok","addresses":["2001:db8:6::6"],"ms":1,"tcp":false}"#,
            r#""ext_servers":[]"#,
            r#""pitfalls":[]"#,
            r#""ok":true"#,
        ] {
            assert!(json.contains(part), "missing {part} in {json}");
        }
        assert!(json.starts_with('{') && json.ends_with('}'));
    }

    #[test]
    fn json_strings_are_escaped() {
        let s = Json::Str("a\"b\\c\nd\re\tf\u{0}g\u{1f}h\u{8}\u{c}é€😀\u{7f}".into()).to_string();
        assert_eq!(
            s,
            r#""a\"b\\c\nd\re\tf\u0000g\u001fh\b\fé€😀"#.to_owned() + "\u{7f}\""
        );
        let o = Json::Obj(vec![
            ("n", Json::Null),
            (
                "x",
                Json::Arr(vec![Json::Num(0.1234), Json::Num(2.0), Json::Bool(false)]),
            ),
            ("nan", Json::Num(f64::NAN)),
        ])
        .to_string();
        assert_eq!(o, r#"{"n":null,"x":[0.123,2,false],"nan":null}"#);
    }

    #[test]
    fn an_unreadable_file_is_a_failed_check() {
        let options = crate::cli::parse(&["--check-dns".as_ref()], |_| None)
            .unwrap()
            .options;
        let r = unreadable("/nope".into(), "x.test", &options, "No such file".into());
        assert!(!r.ok);
        assert!(r.text().contains("error:   No such file"));
        assert!(r.json().contains(r#""error":"No such file""#));
    }
}
