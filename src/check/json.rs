//! The `--check-dns --json` report: one JSON object, for scripts.
//!
//! A renderer of the pure [`Report`], with its own small encoder: serde_json would add 16 KB to
//! the static binary for this one object (DESIGN.md, section 8).

#![forbid(unsafe_code)]

use super::report::{embedded_name, Report};
use crate::dns::Answer;
use crate::resolv_conf::Kind;

/// The kind's name in the JSON.
pub fn kind_id(kind: Kind) -> &'static str {
    match kind {
        Kind::DockerLegacy => "docker-legacy",
        Kind::DockerModern => "docker-modern",
        Kind::Podman => "podman",
        Kind::Kubernetes => "kubernetes",
        Kind::Plain => "plain",
    }
}

impl Report {
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
                ("ms", Json::Milli(a.elapsed.as_micros())),
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
                    ("line", s.line.map_or(Json::Null, |n| Json::Int(n as u64))),
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
                    ("line", Json::Int(c.line as u64)),
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
            ("timeout_ms", Json::Milli(self.timeout.as_micros())),
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
            ("slow", Json::Bool(self.slow)),
            ("verdict", Json::Str(self.verdict.clone())),
        ])
        .to_string()
    }
}

/// `n` thousandths as a decimal number, without trailing zeros: 1500 is "1.5", 2000 is "2".
fn thousandths(n: u128) -> String {
    let (whole, part) = (n / 1000, n % 1000);
    if part == 0 {
        return whole.to_string();
    }
    let decimals = format!("{part:03}");
    format!("{whole}.{}", decimals.trim_end_matches('0'))
}

/// Just enough JSON to write one report. Numbers are whole, or thousandths (milliseconds to the
/// microsecond): no float is formatted, which keeps Rust's float printing (about 10 KB) out of
/// the static binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Json {
    Null,
    Bool(bool),
    Int(u64),
    /// A number in thousandths: `Milli(1500)` is 1.5.
    Milli(u128),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(&'static str, Json)>),
}

impl Json {
    fn write(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(n) => out.push_str(&n.to_string()),
            Json::Milli(n) => out.push_str(&thousandths(*n)),
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
    use super::super::report::testing::{report, silent_embedded, LEGACY};
    use super::*;
    use crate::cli::Embedded;

    #[test]
    fn json_has_the_promised_fields() {
        let r = report(LEGACY, Embedded::Drop, &silent_embedded());
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
                Json::Arr(vec![Json::Milli(123), Json::Milli(2000), Json::Bool(false)]),
            ),
            ("i", Json::Int(7)),
            ("m", Json::Milli(1_000_050)),
        ])
        .to_string();
        assert_eq!(o, r#"{"n":null,"x":[0.123,2,false],"i":7,"m":1000.05}"#);
    }
}
