//! The `--check-dns` report as text, for a person at a terminal.
//!
//! A renderer of the pure [`Report`] and nothing else, apart from the model so that the text and
//! the JSON show the same facts, and a wording change touches no decision.

#![forbid(unsafe_code)]

use std::borrow::Cow;

use super::report::{embedded_name, Report};
use crate::dns::{format_ms, Family};
use crate::resolv_conf::{Role, MAXNS};

/// What a role means, in the report's words.
fn describe(role: Role) -> Cow<'static, str> {
    match role {
        Role::Used => "used by the app".into(),
        Role::Dropped => "removed by the fix".into(),
        Role::Ignored => format!("not used: only the first {MAXNS} count").into(),
        Role::Fallback => "not listed: asked because no nameserver is".into(),
        Role::Proxied => "asked by shim's proxy in the app's stead".into(),
    }
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
            format_ms(self.timeout)
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
                describe(server.role)
            ));
            for (family, answer) in [(Family::A, &server.a), (Family::Aaaa, &server.aaaa)] {
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
}

#[cfg(test)]
mod tests {
    use super::super::report::testing::{report, silent_embedded};
    use crate::cli::Embedded;

    #[test]
    fn text_names_every_part() {
        let text = "nameserver 127.0.0.11\nnameserver 2001:db8::53\n# ExtServers: [2001:db8::99]\n";
        let r = report(text, Embedded::Drop, &silent_embedded());
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
}
