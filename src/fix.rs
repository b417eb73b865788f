//! The run's DNS steps, in order: read the file once, decide what to do with 127.0.0.11
//! ([`crate::policy::decide`]), start the proxy where the plan needs it (R8), write the file in
//! place (R4), say in one line what was done, and then `--probe` the servers the app will ask.
//! Each step is another module's; this one only puts them in order and words the log lines.

use std::net::IpAddr;

use crate::cli::{Embedded, Options};
use crate::dns::{self, Family};
use crate::resolv_conf::{self, Outcome, Policy, EMBEDDED};
use crate::{debug, error, info, policy, proxy, supervisor, warn};

/// `--probe NAME`: asks `servers`, those of the text the app reads (or why there are none);
/// returns false when none gave an AAAA record.
pub fn probe_dns(options: &Options, servers: Result<Vec<IpAddr>, String>) -> bool {
    match (&options.probe, servers) {
        (None, _) => true,
        (Some(name), Ok(servers)) => dns::probe_and_log(&servers, name, options.probe_timeout),
        (Some(name), Err(e)) => {
            warn!("--probe {name}: {e}");
            false
        }
    }
}

/// What the fix left for the rest of the run.
pub struct Fixed {
    /// Is the file now as it should be? (A failure is logged, never fatal here.)
    pub fixed: bool,
    /// For `--probe`: the servers of the text the app will read (for the proxy, those it asks).
    pub servers: Result<Vec<IpAddr>, String>,
    /// Is shim's proxy running, and named by the file?
    pub proxied: bool,
}

/// Read the file once, decide (`--embedded auto` asks 127.0.0.11 here), start the proxy when the
/// plan needs it, write the file in place.
pub fn fix_resolv_conf(options: &Options) -> Fixed {
    let failed = |e: &resolv_conf::FixError| {
        if options.strict {
            error!("{e}");
        } else {
            warn!("{e}");
        }
    };
    let path = options.resolv_conf.display();
    let content = match resolv_conf::read(&options.resolv_conf) {
        Ok(content) => content,
        Err(e) => {
            if matches!(options.embedded, Embedded::Auto) {
                info!("--embedded auto: {path} cannot be read");
            }
            failed(&e);
            return Fixed {
                fixed: false,
                servers: Err(e.to_string()),
                proxied: false,
            };
        }
    };
    let conf = resolv_conf::parse(&content);
    // auto asks 127.0.0.11 for the probe's name, if there is one.
    let name = || options.probe.as_deref().unwrap_or(policy::DEFAULT_NAME);
    let stays_parent = supervisor::stays_parent(options.needs_parent());
    let mut decision = policy::decide(&conf, options.embedded, stays_parent, || {
        dns::query(EMBEDDED.into(), name(), Family::Aaaa, options.probe_timeout)
    });
    if let Some(auto) = &decision.auto {
        info!("--embedded auto: {}", auto.explain(name()));
    }
    // The proxy runs before the file names it: if it cannot, 127.0.0.11 is dropped instead, and
    // nothing points at a proxy that does not run.
    if let Outcome::Proxy {
        listen, upstreams, ..
    } = &decision.plan.outcome
    {
        if let Err(e) = proxy::start(*listen, upstreams) {
            warn!("--embedded proxy: cannot serve DNS on {listen}:53 ({e}); dropping 127.0.0.11 instead, so names of other containers no longer resolve");
            decision.policy = Policy::Drop;
            decision.plan = resolv_conf::plan(&conf, Policy::Drop);
        }
    }
    // For --probe: the lines the plan drops, before the plan goes to the writer.
    let dropped = options
        .probe
        .as_ref()
        .map(|_| decision.plan.dropped().to_vec());
    let written = resolv_conf::apply(
        &options.resolv_conf,
        decision.policy,
        &content,
        &conf,
        decision.plan,
    );
    let mut proxied = None;
    let fixed = match written {
        Ok(fixed) => {
            match fixed.outcome {
                Outcome::Drop(lines) => info!(
                    "removed {} line(s) 'nameserver 127.0.0.11' from {path}: names of other containers no longer resolve; pass --embedded proxy to keep them and IPv6 DNS (shim then stays as the app's parent), or --embedded keep",
                    lines.len()
                ),
                Outcome::Proxy { listen, upstreams, .. } => {
                    let names: Vec<String> = upstreams.iter().map(|a| a.to_string()).collect();
                    info!(
                        "{path} now names only shim's proxy, {listen}: names of other containers from 127.0.0.11, other names from {}",
                        names.join(", ")
                    );
                    proxied = Some(upstreams);
                }
                Outcome::OnlyNameserver => debug!(
                    "{path}: 127.0.0.11 is the only nameserver (Docker >= 26 forwards to the upstreams itself); kept"
                ),
                Outcome::Kept => debug!("{path}: 127.0.0.11 kept (--embedded keep)"),
                Outcome::NoEmbedded => debug!("{path}: no 127.0.0.11; left untouched"),
            }
            true
        }
        Err(e) => {
            failed(&e);
            false
        }
    };
    // The app reads the text written, or the file as read when the write failed; through the
    // proxy, it gets what the proxy's upstreams answer.
    let servers = match (&proxied, dropped) {
        (_, None) => Vec::new(),
        (Some(upstreams), _) => upstreams.clone(),
        (None, Some(dropped)) => {
            resolv_conf::servers_in_use(&conf, if fixed { &dropped } else { &[] })
        }
    };
    Fixed {
        fixed,
        servers: Ok(servers),
        proxied: proxied.is_some(),
    }
}
