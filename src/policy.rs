//! What to do with 127.0.0.11: `--embedded drop|keep|proxy|auto` made into a [`Policy`] and the
//! [`Plan`] it gives for one parsed file, by [`decide`] alone.
//!
//! Apart because the run and `--check-dns` must make the same decision: the run asks 127.0.0.11
//! itself, `--check-dns` looks its answer up among those it collected; both pass it in, so the
//! rule (when auto asks, and which answers keep the resolver) is written once. Pure: the one
//! question it may need is asked by the caller's closure.

#![forbid(unsafe_code)]

use std::net::IpAddr;

use crate::cli::Embedded;
use crate::dns::Answer;
use crate::proxy::LISTEN;
use crate::resolv_conf::{plan, Plan, Policy, ResolvConf};

/// R8's policy: shim's forwarder, on its loopback address.
pub const PROXY: Policy = Policy::Proxy(IpAddr::V4(LISTEN));

/// The name `--embedded auto` asks 127.0.0.11 for when no `--probe NAME` is given.
pub const DEFAULT_NAME: &str = "example.com";

/// The decision for one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub policy: Policy,
    /// The plan for the file under `policy`.
    pub plan: Plan,
    /// For `--embedded auto`: what it went by.
    pub auto: Option<Auto>,
}

/// What `--embedded auto` went by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auto {
    /// 127.0.0.11 is absent, or the only nameserver (R3): there is no choice, and it is not
    /// asked.
    NothingToDecide,
    /// shim stays as the app's parent (PID 1 or `--supervise`), so its proxy can keep both
    /// names and IPv6 DNS: nothing needs asking.
    Proxy,
    /// 127.0.0.11's AAAA answer.
    Answered(Answer),
    /// It could not be asked (the name is no domain name): it is dropped, as when it is silent.
    NotAsked(String),
}

impl Auto {
    /// Does auto keep 127.0.0.11? When it answers NOERROR or NXDOMAIN in time it works, and it
    /// is what resolves the names of other containers; silence, SERVFAIL or REFUSED make every
    /// lookup wait or move on, so it goes.
    pub fn keeps(&self) -> bool {
        match self {
            Auto::NothingToDecide | Auto::Proxy => true,
            Auto::Answered(answer) => answer.status.is_final(),
            Auto::NotAsked(_) => false,
        }
    }

    /// The run's log line for the decision (after `--embedded auto: `); `name` is what was asked.
    pub fn explain(&self, name: &str) -> String {
        match self {
            Auto::NothingToDecide => {
                "nothing to decide: 127.0.0.11 is absent or the only nameserver".to_owned()
            }
            Auto::Proxy => {
                "shim stays as the app's parent: its proxy keeps names of other containers and IPv6 DNS".to_owned()
            }
            Auto::Answered(answer) => {
                let said = format!("127.0.0.11 answered AAAA {name}: {}", answer.summary());
                if self.keeps() {
                    format!("{said}; kept, names of other containers keep resolving")
                } else {
                    format!("{said}; dropped, it stands in the way of the other nameservers")
                }
            }
            Auto::NotAsked(why) => why.clone(),
        }
    }
}

/// The policy `embedded` gives for `conf`, and its plan. For auto, `ask_embedded` gives
/// 127.0.0.11's AAAA answer; it is called only when the choice matters (the resolver is listed
/// and another server could stand in for it) and shim does not stay as the app's parent
/// (`stays_parent`: PID 1 or `--supervise`), where auto takes the proxy without asking.
pub fn decide(
    conf: &ResolvConf,
    embedded: Embedded,
    stays_parent: bool,
    ask_embedded: impl FnOnce() -> Result<Answer, String>,
) -> Decision {
    let fixed = |policy| Decision {
        policy,
        plan: plan(conf, policy),
        auto: None,
    };
    match embedded {
        Embedded::Drop => fixed(Policy::Drop),
        Embedded::Keep => fixed(Policy::Keep),
        Embedded::Proxy => fixed(PROXY),
        Embedded::Auto => {
            let dropping = plan(conf, Policy::Drop);
            let auto = if !dropping.changes() {
                Auto::NothingToDecide
            } else if stays_parent {
                return Decision {
                    policy: PROXY,
                    plan: plan(conf, PROXY),
                    auto: Some(Auto::Proxy),
                };
            } else {
                match ask_embedded() {
                    Ok(answer) => Auto::Answered(answer),
                    Err(why) => Auto::NotAsked(why),
                }
            };
            let (policy, plan) = match (auto.keeps(), dropping.changes()) {
                (true, true) => (Policy::Keep, plan(conf, Policy::Keep)),
                // With nothing to decide, keeping plans what dropping does: no change.
                (true, false) => (Policy::Keep, dropping),
                (false, _) => (Policy::Drop, dropping),
            };
            Decision {
                policy,
                plan,
                auto: Some(auto),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dns::Status;
    use crate::resolv_conf::{parse, Outcome};
    use std::time::Duration;

    const LEGACY: &[u8] = b"nameserver 127.0.0.11\nnameserver 2001:db8::53\n";

    fn answered(status: Status) -> Result<Answer, String> {
        Ok(Answer {
            status,
            addresses: Vec::new(),
            elapsed: Duration::from_millis(1),
            tcp: false,
            detail: None,
        })
    }

    fn auto(text: &[u8], answer: Result<Answer, String>) -> Decision {
        decide(&parse(text), Embedded::Auto, false, || answer)
    }

    #[test]
    fn auto_keeps_an_embedded_resolver_that_answers() {
        for (status, outcome) in [
            (Status::NoData, Outcome::Kept),
            (Status::NxDomain, Outcome::Kept),
            (Status::ServFail, Outcome::Drop(vec![0])),
            (Status::Timeout, Outcome::Drop(vec![0])),
        ] {
            let decision = auto(LEGACY, answered(status));
            assert_eq!(decision.plan.outcome, outcome, "{status:?}");
        }
        let decision = auto(LEGACY, Err("'a b' is not a domain name".into()));
        assert_eq!(decision.policy, Policy::Drop);
        assert_eq!(
            decision.auto.unwrap().explain("a b"),
            "'a b' is not a domain name"
        );
    }

    #[test]
    fn auto_asks_only_when_there_is_a_choice() {
        for text in [&b"nameserver 10.0.0.1\n"[..], b"nameserver 127.0.0.11\n"] {
            let decision = decide(&parse(text), Embedded::Auto, false, || panic!("asked"));
            assert_eq!(decision.auto, Some(Auto::NothingToDecide));
            assert_eq!(decision.policy, Policy::Keep);
            assert!(!decision.plan.changes());
        }
    }

    #[test]
    fn drop_and_keep_ask_nobody() {
        let drop = decide(&parse(LEGACY), Embedded::Drop, false, || panic!("asked"));
        assert_eq!(
            (drop.policy, drop.plan.outcome, drop.auto),
            (Policy::Drop, Outcome::Drop(vec![0]), None)
        );
        let keep = decide(&parse(LEGACY), Embedded::Keep, false, || panic!("asked"));
        assert_eq!(keep.plan.outcome, Outcome::Kept);
    }

    #[test]
    fn the_run_explains_what_auto_went_by() {
        let kept = auto(LEGACY, answered(Status::NxDomain)).auto.unwrap();
        assert!(kept
            .explain("example.com")
            .starts_with("127.0.0.11 answered AAAA example.com: nxdomain (1.0 ms); kept"));
        let dropped = auto(LEGACY, answered(Status::ServFail)).auto.unwrap();
        assert!(dropped
            .explain("x.test")
            .contains("servfail (1.0 ms); dropped"));
    }

    #[test]
    fn auto_takes_the_proxy_where_shim_stays_the_parent_and_asks_nobody() {
        let decision = decide(&parse(LEGACY), Embedded::Auto, true, || panic!("asked"));
        assert_eq!(decision.policy, PROXY);
        assert!(matches!(decision.plan.outcome, Outcome::Proxy { .. }));
        assert_eq!(decision.auto, Some(Auto::Proxy));
        // Where there is nothing to decide, there is no proxy either.
        let modern = b"# Generated by Docker Engine.\nnameserver 127.0.0.11\n";
        let decision = decide(&parse(modern), Embedded::Auto, true, || panic!("asked"));
        assert_eq!(decision.auto, Some(Auto::NothingToDecide));
        assert!(!decision.plan.changes());
        let proxy = decide(&parse(LEGACY), Embedded::Proxy, false, || panic!("asked"));
        assert!(matches!(proxy.plan.outcome, Outcome::Proxy { .. }));
    }
}
