//! `shim --check-dns`: explain what shim sees, change nothing.
//!
//! [`run`] is the edge: it reads the file once, asks every listed nameserver at once (see
//! [`crate::dns`]) and prints. Everything between is pure: [`report::build`] turns the file and
//! the answers into a [`Report`] (plan, roles, pitfalls, verdict), making the same decision as a
//! run ([`crate::policy::decide`]); `text` and `json` render it.

use std::io::Write;

use crate::cli::Options;
use crate::dns;
use crate::resolv_conf;

mod json;
mod report;
mod text;

pub use crate::resolv_conf::Role;
pub use json::{kind_id, Json};
pub use report::{
    build, embedded_name, timeout, to_probe, unreadable, Change, Report, Server, SLOW,
};

/// `shim --check-dns`: print the report on stdout; the exit status is 0 when AAAA for `name`
/// resolves through the nameservers the app would use after the fix (slowly too: the verdict
/// then says SLOW and why, the JSON `"slow": true`), 1 when not, 2 when `name` is not a domain
/// name.
pub fn run(options: &Options, name: &str, json: bool) -> i32 {
    if let Err(e) = dns::parse_name(name) {
        eprintln!("shim: --name: {e}");
        return 2;
    }
    let file = options.resolv_conf.display().to_string();
    let report = match resolv_conf::read(&options.resolv_conf) {
        Err(e) => unreadable(file, name, options, e.to_string()),
        Ok(content) => {
            let conf = resolv_conf::parse(&content);
            let timeout = timeout(&conf, options.probe_timeout, options.probe_timeout_given);
            // The name was checked above: probe only fails on a name it cannot parse.
            let probes = dns::probe(&to_probe(&conf), name, timeout).unwrap_or_default();
            build(
                file,
                &conf,
                name,
                options.embedded,
                crate::supervisor::stays_parent(options.needs_parent()),
                timeout,
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
