//! Lints: what in a resolv.conf bites, whatever its servers answer (the pitfalls of
//! `--check-dns`): lines musl skips, servers one C library reads and the other does not, more
//! servers than are used, keywords indented out of effect, a costly `ndots`.
//!
//! Beside the parser because every lint is a fact of how the C libraries read the file, taken
//! from the parsed [`Line`](super::Line)s rather than found again in the raw bytes (a second reading of the
//! same rules drifted from the first once already: the last line of 255 bytes).

use std::net::IpAddr;

use super::parse::{MuslSkip, ResolvConf, MUSL_MAX_LINE};
use super::servers::{FALLBACK, MAXNS};

/// Lines are shown up to this many characters: a megabyte line is reported, not printed.
const SHOWN_CHARS: usize = 160;

/// What in the file bites, whatever the answers.
pub fn pitfalls(conf: &ResolvConf) -> Vec<String> {
    let mut found = Vec::new();
    let readable: Vec<IpAddr> = conf.nameservers().filter_map(|n| n.address()).collect();
    if readable.is_empty() {
        found.push(
            format!("no nameserver: glibc and musl both fall back to {FALLBACK} (glibc fails at once, musl after 5 s)"),
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
        match line.musl_skips {
            Some(MuslSkip::TooLong) => found.push(format!(
                "line {number} is {} bytes long: musl ignores lines over {MUSL_MAX_LINE} bytes",
                line.raw.len()
            )),
            Some(MuslSkip::FillsBuffer) => found.push(format!(
                "line {number} is {MUSL_MAX_LINE} bytes long and ends the file without a newline: musl ignores it (it fills musl's buffer, which musl takes for a longer line)"
            )),
            // A NUL byte: named below when it hides a nameserver from musl.
            _ => {}
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
pub fn shown(raw: &[u8]) -> String {
    let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
    let text = String::from_utf8_lossy(raw);
    if text.chars().count() <= SHOWN_CHARS {
        return text.into_owned();
    }
    let head: String = text.chars().take(SHOWN_CHARS).collect();
    format!("{head}... ({} bytes)", raw.len())
}

#[cfg(test)]
mod tests {
    use super::super::parse::parse;
    use super::*;

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
        for part in [
            format!("line 1 is {} bytes long", long.len()),
            "line 2 (nameserver 10.0.0.2\r): musl reads".to_owned(),
            format!("line 3 is {} bytes long", long_server.len()),
            "line 3 (nameserver 10.0.0.3   ".to_owned(),
            "): glibc reads this nameserver, musl does not".to_owned(),
            "line 4 ( nameserver 10.0.0.4): keywords count only at column 1".to_owned(),
            "line 5 (nameserver bogus): not an address".to_owned(),
            "options ndots:5".to_owned(),
        ] {
            assert!(joined.contains(&part), "{joined}");
        }
        assert_eq!(pitfalls.len(), 7, "{joined}");
    }

    #[test]
    fn a_last_line_that_fills_musls_buffer_is_a_pitfall() {
        // No newline and exactly 255 bytes: musl's fgets fills its buffer without a newline and
        // skips the line as too long, as parse.rs models it.
        let last = format!("search {}", "a".repeat(255 - 7));
        let text = format!("nameserver 10.0.0.1\n{last}");
        let conf = parse(text.as_bytes());
        assert!(conf.lines[1].musl_skips.is_some());
        let joined = pitfalls(&conf).join("\n");
        assert!(joined.contains("line 2 is 255 bytes long"), "{joined}");
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
        let legacy = b"search example.org\nnameserver 127.0.0.11\nnameserver 2001:db8::53\noptions ndots:0\n";
        assert!(pitfalls(&parse(legacy)).is_empty());
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
}
