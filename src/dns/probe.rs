//! The probe: whom to ask for what, all at once in one timeout, and what the outcomes mean for
//! a person (an [`Answer`] and its summary) and for the run's log (`--probe`).
//!
//! The policy on top of the two layers below it, apart from them as hickory-dns keeps its
//! resolver apart from its protocol and transport: the wire format ([`super::wire`]) says what a
//! reply means, the transport ([`super::transport`]) carries the queries.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::rr::Name;

use super::transport::{exchange, Ending, Exchange, Outcome};
use super::wire::{build_query, classify, parse_name, Family, Reply, Status, PORT};

/// The outcome of one query to one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: Status,
    /// The addresses of the asked family in the answer section (after any CNAME).
    pub addresses: Vec<IpAddr>,
    /// From the first packet sent to the outcome.
    pub elapsed: Duration,
    /// Whether the answer came over TCP after a truncated UDP answer.
    pub tcp: bool,
    /// For `Error`: what went wrong; for `Timeout`: what came instead of an answer.
    pub detail: Option<String>,
}

impl Answer {
    /// One short phrase: `ok 2001:db8::1 (0.4 ms)`, `timeout (1000 ms)`, `error: ... (0.1 ms)`.
    pub fn summary(&self) -> String {
        let mut text = self.status.as_str().to_owned();
        for address in &self.addresses {
            text.push(' ');
            text.push_str(&address.to_string());
        }
        if let Some(detail) = &self.detail {
            text.push_str(": ");
            text.push_str(detail);
        }
        if self.tcp {
            text.push_str(" over TCP");
        }
        format!("{text} ({})", format_ms(self.elapsed))
    }

    /// An answer that never came: the query could not be made or carried, or was not asked.
    pub fn failed(detail: String) -> Answer {
        Answer {
            status: Status::Error,
            addresses: Vec::new(),
            elapsed: Duration::ZERO,
            tcp: false,
            detail: Some(detail),
        }
    }
}

/// Milliseconds for people: one decimal below 10 ms, whole numbers above. In whole numbers of
/// microseconds: formatting a float would bring Rust's float printing (about 10 KB) into the
/// static binary for this one line.
pub fn format_ms(elapsed: Duration) -> String {
    let micros = elapsed.as_micros();
    if micros < 9_950 {
        let tenths = (micros + 50) / 100;
        format!("{}.{} ms", tenths / 10, tenths % 10)
    } else {
        format!("{} ms", (micros + 500) / 1000)
    }
}

/// One server's answers for both families.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerProbe {
    pub server: IpAddr,
    pub a: Answer,
    pub aaaa: Answer,
}

impl ServerProbe {
    pub fn answer(&self, family: Family) -> &Answer {
        match family {
            Family::A => &self.a,
            Family::Aaaa => &self.aaaa,
        }
    }
}

/// A query id. It need not be unpredictable: the answer is only taken from the server's own
/// address and port on a connected socket with a kernel-chosen source port, and a probe's
/// result only decides what is logged and whether 127.0.0.11 stays. Drawing it from the clock
/// keeps the static binary free of a random number generator that could fail in a bare chroot.
fn query_id() -> u16 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut x = nanos
        ^ (u64::from(std::process::id()) << 32)
        ^ COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    // splitmix64's finalizer spreads every input bit over the output.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (x ^ (x >> 31)) as u16
}

/// Ask each `(server, family)` for `name`, all at once, in one timeout. Answers come in the
/// order asked.
fn ask(asked: &[(IpAddr, Family)], name: &Name, timeout: Duration) -> Result<Vec<Answer>, String> {
    let exchanges = asked
        .iter()
        .map(|&(server, family)| {
            let id = query_id();
            Ok(Exchange {
                server: SocketAddr::new(server, PORT),
                query: build_query(id, name, family)?,
                read: Box::new(move |packet: &[u8]| classify(id, name, family, packet)),
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(exchange(&exchanges, timeout)
        .into_iter()
        .map(answer)
        .collect())
}

fn answer(outcome: Outcome) -> Answer {
    let (status, addresses, detail) = match outcome.ending {
        Ending::Replied(Reply::Final {
            status,
            addresses,
            detail,
        }) => (status, addresses, detail),
        Ending::Replied(_) => (
            Status::Error,
            Vec::new(),
            Some("truncated answer over TCP".to_owned()),
        ),
        Ending::Failed(e) => (Status::Error, Vec::new(), Some(failure(&e))),
        Ending::TimedOut { malformed } => (
            Status::Timeout,
            Vec::new(),
            malformed.then(|| "only malformed answers".to_owned()),
        ),
    };
    Answer {
        status,
        addresses,
        elapsed: outcome.elapsed,
        tcp: outcome.tcp,
        detail,
    }
}

fn failure(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => {
            "connection refused (nothing listens on port 53)".to_owned()
        }
        _ => e.to_string(),
    }
}

/// Ask `server` for `name` of one family alone, as `--embedded auto` asks 127.0.0.11; never
/// takes longer than `timeout` (plus the time to notice it ran out).
pub fn query(
    server: IpAddr,
    name: &str,
    family: Family,
    timeout: Duration,
) -> Result<Answer, String> {
    let name = parse_name(name)?;
    Ok(match ask(&[(server, family)], &name, timeout) {
        Ok(mut answers) if answers.len() == 1 => answers.remove(0),
        Ok(_) => Answer::failed("no answer was recorded".to_owned()),
        Err(e) => Answer::failed(e),
    })
}

/// Ask every server for `name`'s A and AAAA at once, in one timeout. Results come in the
/// order of `servers`.
pub fn probe(
    servers: &[IpAddr],
    name: &str,
    timeout: Duration,
) -> Result<Vec<ServerProbe>, String> {
    let name = parse_name(name)?;
    let asked: Vec<(IpAddr, Family)> = servers
        .iter()
        .flat_map(|&server| [(server, Family::A), (server, Family::Aaaa)])
        .collect();
    let mut answers = ask(&asked, &name, timeout)?.into_iter();
    Ok(servers
        .iter()
        .map(|&server| {
            let mut next = || {
                answers
                    .next()
                    .unwrap_or_else(|| Answer::failed("no answer was recorded".to_owned()))
            };
            let (a, aaaa) = (next(), next());
            ServerProbe { server, a, aaaa }
        })
        .collect())
}

/// `--probe NAME` in run mode: ask `servers` (the ones the app will use, after the fix), log
/// one info line per server, and warn when none gives an AAAA record. Returns whether one did.
pub fn probe_and_log(servers: &[IpAddr], name: &str, timeout: Duration) -> bool {
    let probes = match probe(servers, name, timeout) {
        Ok(probes) => probes,
        Err(e) => {
            crate::warn!("--probe: {e}");
            return false;
        }
    };
    for p in &probes {
        crate::info!(
            "probe {name} via {}: AAAA {}, A {}",
            p.server,
            p.aaaa.summary(),
            p.a.summary()
        );
    }
    let resolved = probes.iter().any(|p| p.aaaa.status == Status::Ok);
    if !resolved {
        let seen: Vec<String> = probes
            .iter()
            .map(|p| format!("{} {}", p.server, p.aaaa.status.as_str()))
            .collect();
        crate::warn!(
            "--probe: no nameserver returned an AAAA record for {name} ({}); the app may not reach IPv6 names",
            seen.join(", ")
        );
    }
    resolved
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_ids_vary() {
        let ids: std::collections::HashSet<u16> = (0..64).map(|_| query_id()).collect();
        assert!(ids.len() > 48, "{} distinct ids of 64", ids.len());
    }

    #[test]
    fn summaries_name_status_addresses_and_time() {
        let answer = Answer {
            status: Status::Ok,
            addresses: vec!["2001:db8::6".parse().unwrap()],
            elapsed: Duration::from_micros(1500),
            tcp: true,
            detail: None,
        };
        assert_eq!(answer.summary(), "ok 2001:db8::6 over TCP (1.5 ms)");
        assert_eq!(format_ms(Duration::from_millis(1000)), "1000 ms");
        for (micros, text) in [
            (0, "0.0 ms"),
            (1_449, "1.4 ms"),
            (1_450, "1.5 ms"),
            (9_949, "9.9 ms"),
            (9_950, "10 ms"),
            (10_499, "10 ms"),
            (4_003_400, "4003 ms"),
        ] {
            assert_eq!(format_ms(Duration::from_micros(micros)), text, "{micros}");
        }
    }
}
