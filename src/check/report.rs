//! The `--check-dns` report: what a run would do with the file and what its servers answered,
//! as data ([`Report`]), built by the pure [`build`].
//!
//! Apart from the renderers (`text`, `json`) and from the edge (`run`, which reads and asks):
//! everything a report says is decided here, from the parse, the one [`decide`] the run uses too,
//! the servers' roles of [`resolv_conf::servers`] and the lints of [`resolv_conf::pitfalls`].

#![forbid(unsafe_code)]

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::time::Duration;

use crate::cli::{Embedded, Options};
use crate::dns::{format_ms, Answer, ServerProbe, Status};
use crate::policy::{decide, Auto};
use crate::resolv_conf::{self, Kind, Outcome, ResolvConf, Role};

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
    /// It resolves, but an app waits for it (see [`SLOW`]).
    pub slow: bool,
    pub verdict: String,
}

/// An answer that takes longer than this is slow: every lookup of the app waits as long.
pub const SLOW: Duration = Duration::from_secs(1);

/// How long Docker's embedded resolver waits for each upstream before it asks the next, and how
/// many it asks at most (moby, libnetwork/resolver.go: `extIOTimeout = 4 * time.Second`,
/// `maxExtDNS = 3`, in Docker 20 to 29): with a silent first upstream every lookup takes 4 s.
const ENGINE_WAIT: Duration = Duration::from_secs(4);
const ENGINE_UPSTREAMS: u32 = 3;

/// musl's whole wait for an answer (`timeout:5`, its default): an answer later than this reaches
/// no musl app.
const MUSL_TIMEOUT: Duration = Duration::from_secs(5);

/// The timeout of `--check-dns`'s queries: the one given, or else the default `given_or_default`,
/// except on a Docker >= 26 file, where 127.0.0.11 answers only after it has waited for each
/// silent upstream it lists in `# ExtServers` (up to 3): the default then covers each of them, and
/// one more default for the answer itself, so that a slow answer is seen as slow, not as none.
pub fn timeout(conf: &ResolvConf, given_or_default: Duration, given: bool) -> Duration {
    if given || conf.kind() != Kind::DockerModern {
        return given_or_default;
    }
    let upstreams = (conf.ext_servers().len() as u32).clamp(1, ENGINE_UPSTREAMS);
    ENGINE_WAIT * upstreams + given_or_default
}

/// What `--check-dns` asks: every server the report shows, each once. That is every server the
/// file lists (a dropped one too, to show what the app is spared) or the fallback, whatever
/// `--embedded` decides: auto decides on 127.0.0.11's answer among them.
pub fn to_probe(conf: &ResolvConf) -> Vec<IpAddr> {
    let mut seen = HashSet::new();
    resolv_conf::servers(conf, &[])
        .into_iter()
        .map(|s| s.address)
        .filter(|&address| seen.insert(address))
        .collect()
}

/// The report, from the file and the answers of its servers (as [`to_probe`] lists them);
/// `stays_parent`: whether a run would stay as the app's parent (PID 1 or `--supervise`), where
/// auto takes the proxy.
pub fn build(
    file: String,
    conf: &ResolvConf,
    name: &str,
    embedded: Embedded,
    stays_parent: bool,
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
    let decision = decide(conf, embedded, stays_parent, || {
        Ok(answer(resolv_conf::EMBEDDED.into()).1)
    });
    let dropped = decision.plan.dropped();
    let proxy = match &decision.plan.outcome {
        Outcome::Proxy {
            listen, upstreams, ..
        } => Some((*listen, upstreams.as_slice())),
        _ => None,
    };
    let servers: Vec<Server> = resolv_conf::servers(conf, dropped)
        .into_iter()
        // With the proxy the app asks none of the listed servers itself (and so not the
        // fallback either): the proxy asks 127.0.0.11 and the upstreams.
        .filter_map(|mut s| {
            if let Some((_, upstreams)) = proxy {
                if s.role == Role::Fallback {
                    return None;
                }
                if s.embedded || upstreams.contains(&s.address) {
                    s.role = Role::Proxied;
                }
            }
            Some(s)
        })
        .map(|s| {
            let (a, aaaa) = answer(s.address);
            Server {
                line: s.line.map(|index| index + 1),
                address: s.address,
                embedded: s.embedded,
                role: s.role,
                a,
                aaaa,
            }
        })
        .collect();
    let mut changes: Vec<Change> = dropped
        .iter()
        .map(|&index| Change {
            line: index + 1,
            action: "remove",
            text: resolv_conf::shown(conf.lines[index].raw),
        })
        .collect();
    if let (Some((listen, _)), Some(first)) = (proxy, dropped.first()) {
        changes.insert(
            0,
            Change {
                line: first + 1,
                action: "insert",
                text: format!("nameserver {listen}"),
            },
        );
    }
    let (ok, slow, verdict) = match proxy {
        Some(_) => proxied_verdict(name, &servers),
        None => verdict(name, &servers),
    };
    Report {
        file,
        error: None,
        kind: Some(conf.kind()),
        name: name.to_owned(),
        timeout,
        embedded,
        outcome: outcome(&decision.plan.outcome, embedded, decision.auto.as_ref()),
        changes,
        servers,
        ext_servers: conf.ext_servers(),
        pitfalls: resolv_conf::pitfalls(conf),
        ok,
        slow,
        verdict,
    }
}

/// The report on a file that cannot be read: `error` says why, and nothing else can be told.
pub fn unreadable(file: String, name: &str, options: &Options, error: String) -> Report {
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
        slow: false,
    }
}

fn not_asked() -> Answer {
    Answer::failed("not asked".to_owned())
}

/// What auto went by, as the report's plan says it.
fn auto_reason(auto: &Auto) -> Option<String> {
    match auto {
        Auto::NothingToDecide => None,
        Auto::Proxy => Some("auto takes the proxy: shim stays as the app's parent".to_owned()),
        Auto::Answered(answer) => {
            let verb = if auto.keeps() { "keeps" } else { "drops" };
            Some(format!(
                "127.0.0.11 answered AAAA: {}, so auto {verb} it",
                answer.summary()
            ))
        }
        Auto::NotAsked(why) => Some(why.clone()),
    }
}

/// What a run would do, in one sentence.
fn outcome(outcome: &Outcome, embedded: Embedded, auto: Option<&Auto>) -> String {
    let text = match outcome {
        Outcome::NoEmbedded => "no change: 127.0.0.11 is not listed, the file stays as it is".to_owned(),
        Outcome::OnlyNameserver => {
            "no change: 127.0.0.11 is the only nameserver every C library reads; without it none would be left".to_owned()
        }
        Outcome::Kept => format!("no change: 127.0.0.11 is kept (--embedded {})", embedded_name(embedded)),
        Outcome::Drop(lines) => format!(
            "remove {} line(s) 'nameserver 127.0.0.11': names of other containers would no longer resolve (--embedded proxy keeps them and IPv6 DNS; --embedded keep or auto keeps them)",
            lines.len()
        ),
        Outcome::Proxy { lines, listen, upstreams } => {
            let upstreams: Vec<String> = upstreams.iter().map(|a| a.to_string()).collect();
            format!(
                "replace the {} nameserver line(s) with 'nameserver {listen}', shim's proxy: it asks 127.0.0.11 for names of other containers and {} for every other name, without waiting for a silent 127.0.0.11",
                lines.len(),
                upstreams.join(", ")
            )
        }
    };
    match auto.and_then(auto_reason) {
        Some(reason) => format!("{text}; {reason}"),
        None => text,
    }
}

/// `--embedded`'s value as the user writes it.
pub fn embedded_name(embedded: Embedded) -> &'static str {
    match embedded {
        Embedded::Drop => "drop",
        Embedded::Keep => "keep",
        Embedded::Proxy => "proxy",
        Embedded::Auto => "auto",
    }
}

/// Why an answer that came is slow, if it is: it took over [`SLOW`] itself (from 127.0.0.11:
/// Docker's wait for a silent upstream). A silent server before it, which glibc waits for, is
/// told by the verdict's "after".
fn slow_answer(server: &Server) -> Option<String> {
    let elapsed = server.aaaa.elapsed;
    if elapsed <= SLOW {
        return None;
    }
    let mut why = if server.embedded {
        format!(
            "Docker's embedded resolver waits {} s for each upstream that does not answer before it asks the next",
            ENGINE_WAIT.as_secs()
        )
    } else {
        format!("{} answers after more than 1 s", server.address)
    };
    if elapsed > MUSL_TIMEOUT {
        why.push_str("; musl gives up after 5 s, before it comes");
    }
    Some(format!(" in {} ({why})", format_ms(elapsed)))
}

/// The first word of a verdict that resolves.
fn resolves(slow: bool) -> &'static str {
    if slow {
        "SLOW"
    } else {
        "OK"
    }
}

/// Does AAAA resolve through the servers the app uses? As glibc asks them: in order, and the
/// first NOERROR or NXDOMAIN answer is the result; silence, SERVFAIL and REFUSED move it on.
/// (ok, slow, verdict).
fn verdict(name: &str, servers: &[Server]) -> (bool, bool, String) {
    let mut passed: Vec<String> = Vec::new();
    let mut waits = false;
    for server in servers.iter().filter(|s| s.role.is_asked()) {
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
            let in_time = slow_answer(server);
            let slow = waits || in_time.is_some();
            (
                true,
                slow,
                format!(
                    "{}: AAAA for {name} resolves through {}{before}{}: {}",
                    resolves(slow),
                    server.address,
                    in_time.unwrap_or_default(),
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
        false,
        format!(
            "FAIL: AAAA for {name} does not resolve: no nameserver the app uses answers ({})",
            passed.join(", ")
        ),
    )
}

/// With the proxy: does AAAA resolve through it? As the proxy decides (R8): 127.0.0.11's
/// NOERROR wins (a name of a container), else the upstreams' answer in their order, a failing or
/// silent one handing over to the next (the proxy does not wait 5 s as glibc would).
fn proxied_verdict(name: &str, servers: &[Server]) -> (bool, bool, String) {
    let proxied = || servers.iter().filter(|s| s.role == Role::Proxied);
    let embedded = proxied().find(|s| s.embedded);
    let by_embedded = embedded.filter(|s| matches!(s.aaaa.status, Status::Ok | Status::NoData));
    let chosen = by_embedded.or_else(|| {
        proxied()
            .filter(|s| !s.embedded)
            .find(|s| s.aaaa.status.is_final())
    });
    let Some(server) = chosen else {
        let seen: Vec<String> = proxied()
            .map(|s| format!("{} {}", s.address, s.aaaa.status.as_str()))
            .collect();
        return (
            false,
            false,
            format!(
                "FAIL: AAAA for {name} does not resolve: no server the proxy asks answers ({}); it would answer SERVFAIL",
                seen.join(", ")
            ),
        );
    };
    let through = format!("shim's proxy, from {}", server.address);
    match server.aaaa.status {
        Status::Ok => {
            let addresses: Vec<String> = server
                .aaaa
                .addresses
                .iter()
                .map(|a| a.to_string())
                .collect();
            let in_time = slow_answer(server);
            (
                true,
                in_time.is_some(),
                format!(
                    "{}: AAAA for {name} resolves through {through}{}: {}",
                    resolves(in_time.is_some()),
                    in_time.unwrap_or_default(),
                    addresses.join(" ")
                ),
            )
        }
        status => {
            let why = match status {
                Status::NoData => "the name has no IPv6 address",
                _ => "the name does not exist",
            };
            (
                false,
                false,
                format!(
                    "FAIL: AAAA for {name} does not resolve through {through}: {} ({why})",
                    status.as_str()
                ),
            )
        }
    }
}

/// Reports on crafted answers, for the tests of the model and of its renderers.
#[cfg(test)]
pub(super) mod testing {
    use super::*;
    use crate::resolv_conf::parse;

    pub fn answer(status: Status, addresses: &[&str], ms: u64) -> Answer {
        Answer {
            status,
            addresses: addresses.iter().map(|a| a.parse().unwrap()).collect(),
            elapsed: Duration::from_millis(ms),
            tcp: false,
            detail: None,
        }
    }

    pub fn server(address: &str, a: Answer, aaaa: Answer) -> ServerProbe {
        ServerProbe {
            server: address.parse().unwrap(),
            a,
            aaaa,
        }
    }

    pub fn silent(address: &str) -> ServerProbe {
        server(
            address,
            answer(Status::Timeout, &[], 1000),
            answer(Status::Timeout, &[], 1000),
        )
    }

    pub fn v6(address: &str) -> ServerProbe {
        server(
            address,
            answer(Status::NoData, &[], 1),
            answer(Status::Ok, &["2001:db8:6::6"], 1),
        )
    }

    pub fn report(text: &str, embedded: Embedded, probes: &[ServerProbe]) -> Report {
        let conf = parse(text.as_bytes());
        build(
            "/etc/resolv.conf".into(),
            &conf,
            "v6only.test",
            embedded,
            false,
            Duration::from_secs(1),
            probes,
        )
    }

    /// A silent 127.0.0.11 and an IPv6 server that has the name: the case shim exists for.
    pub fn silent_embedded() -> [ServerProbe; 2] {
        [silent("127.0.0.11"), v6("2001:db8::53")]
    }

    pub const LEGACY: &str =
        "search example.org\nnameserver 127.0.0.11\nnameserver 2001:db8::53\noptions ndots:0\n";
}

#[cfg(test)]
mod tests;
