//! What to do with one client query, given what each server has said so far and the clock: a
//! pure function, so that every rule of R8 is a unit test.

use std::time::{Duration, Instant};

/// What one server has said about a query (a reply that is not ours is not heard at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// Nothing yet.
    Waiting,
    /// NOERROR with at least one answer record (or truncated: the records are there, too many
    /// for UDP).
    Positive,
    /// NOERROR without an answer record: the name exists, not this type.
    NoData,
    NxDomain,
    /// SERVFAIL, REFUSED, any other code, or a socket error: this server has nothing to say.
    Failed,
}

impl Heard {
    fn is_negative(self) -> bool {
        matches!(self, Heard::NoData | Heard::NxDomain)
    }
}

/// The timings of [`crate::proxy::Config`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub names_wait: Duration,
    pub names_wait_single_label: Duration,
    pub stagger: Duration,
    pub deadline: Duration,
}

/// One upstream asked: when, and what it said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asked {
    pub at: Instant,
    pub heard: Heard,
}

/// Everything a decision looks at, for one client query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub arrived: Instant,
    /// The question is a single label (`db`): what compose service names, container names and
    /// most aliases are, and outside names almost never.
    pub single_label: bool,
    /// The embedded resolver, asked when the query arrived.
    pub embedded: Heard,
    /// The upstreams asked so far, in the order of the file.
    pub upstreams: Vec<Asked>,
    /// How many upstreams there are to ask.
    pub upstream_count: usize,
}

/// Whose answer goes to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Embedded,
    Upstream(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send this server's answer to the client, as it gave it (with the client's id).
    Send(Source),
    /// Nothing usable came: SERVFAIL with the client's id and question.
    ServFail,
    /// Ask the next upstream now, then decide again.
    AskNext,
    /// Nothing to do before this instant, unless a server says something.
    WaitUntil(Instant),
}

pub fn decide(timing: &Timing, progress: &Progress, now: Instant) -> Verdict {
    let arrived = progress.arrived;
    let upstreams = &progress.upstreams;
    // Names of containers win: a NOERROR from the embedded resolver is the name's truth,
    // without a record too (a container without IPv6 answers AAAA with NOERROR and no record,
    // and an upstream's NXDOMAIN there would make musl fail the A lookup with it).
    if matches!(progress.embedded, Heard::Positive | Heard::NoData) {
        return Verdict::Send(Source::Embedded);
    }
    // An outside name: as fast as asking the upstream directly.
    if let Some(i) = upstreams.iter().position(|a| a.heard == Heard::Positive) {
        return Verdict::Send(Source::Upstream(i));
    }
    // An upstream says the name (or type) does not exist: a container name is not an outside
    // name, so give the embedded resolver a moment, which it needs well under a millisecond
    // for names it knows, but longer when dockerd is busy; longer still for a single label,
    // where a container name is likely and an outside name is not. glibc takes the first
    // NXDOMAIN as final, and so does this.
    if let Some(i) = upstreams.iter().position(|a| a.heard.is_negative()) {
        let wait = if progress.single_label {
            timing.names_wait_single_label
        } else {
            timing.names_wait
        };
        let names_by = arrived + wait;
        return if progress.embedded != Heard::Waiting || now >= names_by {
            Verdict::Send(Source::Upstream(i))
        } else {
            Verdict::WaitUntil(names_by)
        };
    }
    let deadline = arrived + timing.deadline;
    if now >= deadline {
        return give_up(progress);
    }
    // The next upstream, as glibc would try them, without glibc's 5 s on a silent one.
    let next_at = match upstreams.last() {
        _ if upstreams.len() >= progress.upstream_count => None,
        None => Some(arrived),
        Some(last) if last.heard == Heard::Failed => Some(arrived),
        Some(last) => Some(last.at + timing.stagger),
    };
    match next_at {
        Some(at) if now >= at => return Verdict::AskNext,
        _ => {}
    }
    let all_heard =
        progress.embedded != Heard::Waiting && upstreams.iter().all(|a| a.heard != Heard::Waiting);
    if all_heard && next_at.is_none() {
        return give_up(progress);
    }
    Verdict::WaitUntil(next_at.map_or(deadline, |at| at.min(deadline)))
}

/// Nothing decisive came and nothing more will: the best negative seen (only the embedded
/// resolver's NXDOMAIN can be left here: an upstream's negative was sent once `names_wait` was
/// over), else SERVFAIL, which every stub resolver reads as "try again later".
fn give_up(progress: &Progress) -> Verdict {
    if progress.embedded == Heard::NxDomain {
        Verdict::Send(Source::Embedded)
    } else {
        Verdict::ServFail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMING: Timing = Timing {
        names_wait: Duration::from_millis(100),
        names_wait_single_label: Duration::from_millis(1000),
        stagger: Duration::from_millis(1000),
        deadline: Duration::from_millis(4000),
    };

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A query that arrived at `t0`, with `count` upstreams, of which those in `asked` were
    /// asked (at t0 + ms, with what they said).
    fn progress(t0: Instant, embedded: Heard, asked: &[(u64, Heard)], count: usize) -> Progress {
        Progress {
            arrived: t0,
            single_label: false,
            embedded,
            upstreams: asked
                .iter()
                .map(|&(at, heard)| Asked {
                    at: t0 + ms(at),
                    heard,
                })
                .collect(),
            upstream_count: count,
        }
    }

    fn at(t0: Instant, embedded: Heard, asked: &[(u64, Heard)], count: usize, now: u64) -> Verdict {
        decide(&TIMING, &progress(t0, embedded, asked, count), t0 + ms(now))
    }

    use Heard::*;
    use Source::*;
    use Verdict::*;

    #[test]
    fn the_first_upstream_is_asked_with_the_embedded_resolver() {
        let t0 = Instant::now();
        assert_eq!(at(t0, Waiting, &[], 2, 0), AskNext);
        // With no upstream, only the embedded resolver is waited for, up to the deadline.
        assert_eq!(at(t0, Waiting, &[], 0, 0), WaitUntil(t0 + ms(4000)));
    }

    #[test]
    fn an_embedded_noerror_is_sent_at_once_with_or_without_records() {
        let t0 = Instant::now();
        assert_eq!(at(t0, Positive, &[(0, Waiting)], 1, 0), Send(Embedded));
        assert_eq!(at(t0, NoData, &[(0, Waiting)], 1, 0), Send(Embedded));
        // Over an upstream's negative that came first, too.
        assert_eq!(at(t0, NoData, &[(0, NxDomain)], 1, 1), Send(Embedded));
        assert_eq!(at(t0, Positive, &[(0, Positive)], 1, 1), Send(Embedded));
    }

    #[test]
    fn an_upstream_answer_with_records_is_sent_at_once() {
        let t0 = Instant::now();
        assert_eq!(at(t0, Waiting, &[(0, Positive)], 1, 2), Send(Upstream(0)));
        assert_eq!(
            at(t0, Waiting, &[(0, Waiting), (1000, Positive)], 2, 1002),
            Send(Upstream(1))
        );
        // The embedded resolver's failure or NXDOMAIN does not stand in its way.
        assert_eq!(at(t0, NxDomain, &[(0, Positive)], 1, 2), Send(Upstream(0)));
        assert_eq!(at(t0, Failed, &[(0, Positive)], 1, 2), Send(Upstream(0)));
    }

    #[test]
    fn an_upstream_negative_waits_for_names_until_names_wait() {
        let t0 = Instant::now();
        for negative in [NxDomain, NoData] {
            assert_eq!(
                at(t0, Waiting, &[(0, negative)], 1, 3),
                WaitUntil(t0 + ms(100))
            );
            assert_eq!(at(t0, Waiting, &[(0, negative)], 1, 100), Send(Upstream(0)));
            // Once the embedded resolver has said it does not know, no need to wait.
            assert_eq!(at(t0, NxDomain, &[(0, negative)], 1, 3), Send(Upstream(0)));
            assert_eq!(at(t0, Failed, &[(0, negative)], 1, 3), Send(Upstream(0)));
            // An upstream negative is final, as for glibc: the next upstream is not asked.
            assert_eq!(
                at(t0, Waiting, &[(0, negative)], 3, 50),
                WaitUntil(t0 + ms(100))
            );
        }
        // A negative that comes late (after a stagger) is sent at once.
        assert_eq!(
            at(t0, Waiting, &[(0, Waiting), (1000, NxDomain)], 2, 1001),
            Send(Upstream(1))
        );
    }

    #[test]
    fn a_single_label_name_waits_longer_for_the_embedded_resolver() {
        let t0 = Instant::now();
        let single = |embedded, asked: &[(u64, Heard)], now| {
            let p = Progress {
                single_label: true,
                ..progress(t0, embedded, asked, 1)
            };
            decide(&TIMING, &p, t0 + ms(now))
        };
        for negative in [NxDomain, NoData] {
            assert_eq!(
                single(Waiting, &[(0, negative)], 3),
                WaitUntil(t0 + ms(1000))
            );
            assert_eq!(
                single(Waiting, &[(0, negative)], 500),
                WaitUntil(t0 + ms(1000))
            );
            assert_eq!(single(Waiting, &[(0, negative)], 1000), Send(Upstream(0)));
            // A busy dockerd's late answer still wins for `db`.
            assert_eq!(single(Positive, &[(0, negative)], 700), Send(Embedded));
            // Once the embedded resolver has said it does not know, no need to wait.
            assert_eq!(single(NxDomain, &[(0, negative)], 3), Send(Upstream(0)));
            assert_eq!(single(Failed, &[(0, negative)], 3), Send(Upstream(0)));
        }
        // A positive upstream answer is not held back for a single label.
        assert_eq!(single(Waiting, &[(0, Positive)], 1), Send(Upstream(0)));
    }

    #[test]
    fn embedded_failures_and_nxdomain_end_nothing_by_themselves() {
        let t0 = Instant::now();
        for embedded in [Failed, NxDomain] {
            assert_eq!(
                at(t0, embedded, &[(0, Waiting)], 1, 1),
                WaitUntil(t0 + ms(4000))
            );
            assert_eq!(
                at(t0, embedded, &[(0, Waiting)], 2, 1),
                WaitUntil(t0 + ms(1000))
            );
        }
    }

    #[test]
    fn an_upstream_failure_moves_to_the_next_at_once() {
        let t0 = Instant::now();
        assert_eq!(at(t0, Waiting, &[(0, Failed)], 3, 1), AskNext);
        assert_eq!(at(t0, Waiting, &[(0, Failed), (1, Failed)], 3, 2), AskNext);
        // The last one failed: only the embedded resolver is left to wait for.
        assert_eq!(
            at(t0, Waiting, &[(0, Failed), (1, Failed), (2, Failed)], 3, 3),
            WaitUntil(t0 + ms(4000))
        );
        // An earlier one still waiting does not stop the next from being asked.
        assert_eq!(
            at(t0, Waiting, &[(0, Waiting), (1000, Failed)], 3, 1001),
            AskNext
        );
    }

    #[test]
    fn a_silent_upstream_makes_the_next_be_asked_after_the_stagger() {
        let t0 = Instant::now();
        assert_eq!(
            at(t0, Waiting, &[(0, Waiting)], 2, 999),
            WaitUntil(t0 + ms(1000))
        );
        assert_eq!(at(t0, Waiting, &[(0, Waiting)], 2, 1000), AskNext);
        assert_eq!(
            at(t0, Waiting, &[(0, Waiting), (1000, Waiting)], 3, 1500),
            WaitUntil(t0 + ms(2000))
        );
        // The stagger never runs past the deadline.
        let late = Timing {
            stagger: ms(3000),
            ..TIMING
        };
        let p = progress(t0, Waiting, &[(0, Waiting), (3000, Waiting)], 3);
        assert_eq!(decide(&late, &p, t0 + ms(3500)), WaitUntil(t0 + ms(4000)));
    }

    #[test]
    fn at_the_deadline_the_best_negative_else_servfail() {
        let t0 = Instant::now();
        assert_eq!(at(t0, Waiting, &[(0, Waiting)], 1, 4000), ServFail);
        assert_eq!(at(t0, Failed, &[(0, Waiting)], 1, 4000), ServFail);
        assert_eq!(at(t0, NxDomain, &[(0, Waiting)], 1, 4000), Send(Embedded));
        assert_eq!(
            at(t0, Waiting, &[(0, Waiting), (1000, Failed)], 3, 4000),
            ServFail
        );
    }

    #[test]
    fn when_everyone_has_spoken_without_an_answer_the_end_comes_at_once() {
        let t0 = Instant::now();
        assert_eq!(at(t0, Failed, &[(0, Failed)], 1, 2), ServFail);
        assert_eq!(at(t0, NxDomain, &[(0, Failed)], 1, 2), Send(Embedded));
        assert_eq!(at(t0, Failed, &[], 0, 2), ServFail);
        assert_eq!(at(t0, NxDomain, &[], 0, 2), Send(Embedded));
    }

    fn any_heard() -> impl proptest::strategy::Strategy<Value = Heard> {
        proptest::sample::select(vec![Waiting, Positive, NoData, NxDomain, Failed])
    }

    proptest::proptest! {
        /// Whatever was heard and whenever: a wait is always for a later instant (no spin), the
        /// deadline is never passed, and a name the embedded resolver knows always wins.
        #[test]
        fn every_verdict_keeps_the_rules(
            embedded in any_heard(),
            asked in proptest::collection::vec((0u64..5000, any_heard()), 0..=3),
            extra in 0usize..3,
            now in 0u64..6000,
            single_label in proptest::bool::ANY,
        ) {
            let t0 = Instant::now();
            let count = asked.len() + extra;
            let p = Progress { single_label, ..progress(t0, embedded, &asked, count) };
            let verdict = decide(&TIMING, &p, t0 + ms(now));
            let now = t0 + ms(now);
            match verdict {
                WaitUntil(t) => {
                    proptest::prop_assert!(t > now);
                    proptest::prop_assert!(t <= t0 + TIMING.deadline);
                }
                AskNext => proptest::prop_assert!(asked.len() < count && now < t0 + TIMING.deadline),
                Send(Upstream(i)) => proptest::prop_assert!(i < asked.len()),
                Send(Embedded) | ServFail => {}
            }
            if matches!(embedded, Positive | NoData) {
                proptest::prop_assert_eq!(verdict, Send(Embedded));
            }
        }
    }
}
