//! Independent models of how the C libraries take nameservers from a resolv.conf, and the
//! invariants of shim's parse -> plan -> render checked against them. Shared by the proptest
//! suite (tests/invariants.rs) and the cargo-fuzz target (fuzz/fuzz_targets/resolv_conf.rs).
//!
//! The models are written from the C sources, not from shim's parser, and share no code with it:
//! glibc 2.36 (resolv/res_init.c `res_vinit_1`, inet/inet_addr.c `__inet_aton_exact`,
//! resolv/inet_pton.c) and musl 1.2.3 (src/network/resolvconf.c `__get_resolv_conf`,
//! lookup_ipliteral.c, inet_aton.c, inet_pton.c). tests/invariants.rs checks them against the
//! real libraries on this machine.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use shim::resolv_conf::{parse, plan, render, Policy};

/// Docker's embedded resolver.
pub const EMBEDDED: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 11));

/// Both libraries use at most this many servers (they read the first MAXNS valid lines).
pub const MAXNS: usize = 3;

/// The bytes a C string function sees: up to the first NUL.
fn c_str(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    &bytes[..end]
}

/// C `isspace` in the C locale.
fn c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

// ---------------------------------------------------------------------------------------------
// glibc

/// Every nameserver glibc takes from the file, in order (it then uses the first MAXNS). Empty
/// means glibc falls back to 127.0.0.1.
pub fn glibc(file: &[u8]) -> Vec<IpAddr> {
    // getline() returns each line with its '\n'; the rest is C-string handling.
    file.split_inclusive(|&b| b == b'\n')
        .filter_map(glibc_line)
        .collect()
}

/// What glibc's `res_vinit_1` takes from one line (it never looks at other lines for it).
pub fn glibc_line(raw: &[u8]) -> Option<IpAddr> {
    let line = c_str(raw);
    // MATCH(line, "nameserver"): the keyword at column 1, then a space or a tab.
    let rest = line.strip_prefix(b"nameserver")?;
    if !matches!(rest.first(), Some(b' ' | b'\t')) {
        return None;
    }
    let start = rest
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(rest.len());
    let cp = &rest[start..];
    // strpbrk(cp, " \t\n") ends the address: nothing else does (not '#', not ';', not '\r').
    let end = cp
        .iter()
        .position(|&b| matches!(b, b' ' | b'\t' | b'\n'))
        .unwrap_or(cp.len());
    let cp = &cp[..end];
    if cp.is_empty() {
        return None;
    }
    if let Some(v4) = inet_aton_exact(cp) {
        return Some(IpAddr::V4(v4));
    }
    // The scope after '%' is cut off; errors in it are ignored "for backwards compatibility".
    let cp = &cp[..cp.iter().position(|&b| b == b'%').unwrap_or(cp.len())];
    if cp.is_empty() {
        return None;
    }
    glibc_inet_pton6(cp).map(|a| IpAddr::V6(Ipv6Addr::from(a)))
}

/// `strtoul(s, &end, 0)` on a string that starts with a digit: the value (None past
/// 0xffffffff, where both libraries give up) and how many bytes it used.
fn strtoul0(s: &[u8]) -> Option<(u64, usize)> {
    let (base, mut i) = match s {
        [b'0', b'x' | b'X', h, ..] if h.is_ascii_hexdigit() => (16, 2),
        [b'0', ..] => (8, 1),
        _ => (10, 0),
    };
    let mut value: u64 = 0;
    while let Some(d) = s.get(i).and_then(|&b| (b as char).to_digit(base)) {
        value = value.checked_mul(base as u64)?.checked_add(d as u64)?;
        i += 1;
    }
    (value <= 0xffff_ffff).then_some((value, i))
}

/// `inet_aton` (glibc's `__inet_aton_exact` and musl's `__inet_aton` agree): one to four parts,
/// each decimal, octal (leading 0) or hex (0x), the last part filling the remaining bytes.
/// "127.0.0.013", "0x7f.11" and "2130706443" are all 127.0.0.11.
pub fn inet_aton_exact(s: &[u8]) -> Option<Ipv4Addr> {
    let mut parts: Vec<u64> = Vec::new();
    let mut i = 0;
    let last = loop {
        if !s.get(i).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        let (value, used) = strtoul0(&s[i..])?;
        i += used;
        if s.get(i) == Some(&b'.') {
            if parts.len() > 2 || value > 0xff {
                return None;
            }
            parts.push(value);
            i += 1;
        } else {
            break value;
        }
    };
    if i != s.len() {
        return None;
    }
    let max = [0xffff_ffff, 0xff_ffff, 0xffff, 0xff][parts.len()];
    if last > max {
        return None;
    }
    let mut word: u32 = last as u32;
    for (n, part) in parts.iter().enumerate() {
        word |= (*part as u32) << (24 - 8 * n);
    }
    Some(Ipv4Addr::from(word))
}

fn hex_value(b: u8) -> Option<u32> {
    (b as char).to_digit(16)
}

/// glibc's `inet_pton4`, used for the IPv4 tail of an IPv6 address: four decimal parts, no
/// leading zero, each at most 255.
fn glibc_inet_pton4(s: &[u8]) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let (mut octets, mut saw_digit, mut t) = (0, false, 0usize);
    for &ch in s {
        if ch.is_ascii_digit() {
            let new = out[t] as u32 * 10 + (ch - b'0') as u32;
            if saw_digit && out[t] == 0 {
                return None;
            }
            if new > 255 {
                return None;
            }
            out[t] = new as u8;
            if !saw_digit {
                octets += 1;
                if octets > 4 {
                    return None;
                }
                saw_digit = true;
            }
        } else if ch == b'.' && saw_digit {
            if octets == 4 {
                return None;
            }
            t += 1;
            out[t] = 0;
            saw_digit = false;
        } else {
            return None;
        }
    }
    (octets >= 4).then_some(out)
}

/// glibc's `inet_pton6` (resolv/inet_pton.c, as rewritten in 2.26).
fn glibc_inet_pton6(s: &[u8]) -> Option<[u8; 16]> {
    let mut tmp = [0u8; 16];
    let mut tp = 0usize;
    let mut colonp: Option<usize> = None;
    let mut src = 0usize;
    if s.is_empty() {
        return None;
    }
    if s[0] == b':' {
        src += 1;
        if s.get(src) != Some(&b':') {
            return None;
        }
    }
    let mut curtok = src;
    let mut xdigits_seen = 0;
    let mut val: u32 = 0;
    while src < s.len() {
        let ch = s[src];
        src += 1;
        if let Some(digit) = hex_value(ch) {
            if xdigits_seen == 4 {
                return None;
            }
            val = (val << 4) | digit;
            if val > 0xffff {
                return None;
            }
            xdigits_seen += 1;
            continue;
        }
        if ch == b':' {
            curtok = src;
            if xdigits_seen == 0 {
                if colonp.is_some() {
                    return None;
                }
                colonp = Some(tp);
                continue;
            } else if src == s.len() {
                return None;
            }
            if tp + 2 > 16 {
                return None;
            }
            tmp[tp] = (val >> 8) as u8;
            tmp[tp + 1] = val as u8;
            tp += 2;
            xdigits_seen = 0;
            val = 0;
            continue;
        }
        if ch == b'.' && tp + 4 <= 16 {
            if let Some(v4) = glibc_inet_pton4(&s[curtok..]) {
                tmp[tp..tp + 4].copy_from_slice(&v4);
                tp += 4;
                xdigits_seen = 0;
                break;
            }
        }
        return None;
    }
    if xdigits_seen > 0 {
        if tp + 2 > 16 {
            return None;
        }
        tmp[tp] = (val >> 8) as u8;
        tmp[tp + 1] = val as u8;
        tp += 2;
    }
    if let Some(colon) = colonp {
        if tp == 16 {
            return None;
        }
        let n = tp - colon;
        tmp.copy_within(colon..tp, 16 - n);
        tmp[colon..16 - n].fill(0);
        tp = 16;
    }
    (tp == 16).then_some(tmp)
}

// ---------------------------------------------------------------------------------------------
// musl

/// The nameservers musl takes from the file (at most MAXNS), when no network interface of the
/// container is known: a scope given by name (`fe80::1%eth0`) then never counts, as in a
/// container that has no such interface. Empty means musl falls back to 127.0.0.1.
pub fn musl(file: &[u8]) -> Vec<IpAddr> {
    musl_with_interfaces(file, &[])
}

/// musl's `__get_resolv_conf`: `fgets` into a 256-byte buffer. A line that does not end, as a C
/// string, in '\n' within it is skipped and the rest of the stream up to the next '\n' is read
/// away: for a line that is too long that is its own tail, for a line with a NUL byte it is the
/// whole next line. `interfaces` are the names `if_nametoindex` knows, in index order from 1.
pub fn musl_with_interfaces(file: &[u8], interfaces: &[&[u8]]) -> Vec<IpAddr> {
    const BUF: usize = 256;
    let mut servers = Vec::new();
    let mut pos = 0;
    while pos < file.len() {
        let avail = &file[pos..];
        let window = &avail[..avail.len().min(BUF - 1)];
        let n = window
            .iter()
            .position(|&b| b == b'\n')
            .map_or(window.len(), |i| i + 1);
        let line = &avail[..n];
        pos += n;
        // fgets sets the end-of-file flag only when it ran out of input before '\n' or a full
        // buffer.
        let eof = !line.ends_with(b"\n") && n < BUF - 1;
        let text = c_str(line);
        if !text.contains(&b'\n') && !eof {
            pos = file[pos..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(file.len(), |i| pos + i + 1);
            continue;
        }
        if let Some(address) = musl_nameserver(text, interfaces) {
            if servers.len() < MAXNS {
                servers.push(address);
            }
        }
    }
    servers
}

/// What musl takes from one line it reads (a C string), or None.
pub fn musl_nameserver(text: &[u8], interfaces: &[&[u8]]) -> Option<IpAddr> {
    // !strncmp(line, "nameserver", 10) && isspace(line[10])
    if text.len() <= 10 || !text.starts_with(b"nameserver") || !c_space(text[10]) {
        return None;
    }
    let mut p = 11;
    while p < text.len() && c_space(text[p]) {
        p += 1;
    }
    let z = p + text[p..]
        .iter()
        .position(|&b| c_space(b))
        .unwrap_or(text.len() - p);
    lookup_ipliteral(&text[p..z], interfaces)
}

/// What musl would take from this line if its reading reached it (ignoring the buffer length
/// and the line before it): used to tell a 127.0.0.11 line.
pub fn musl_line(raw: &[u8]) -> Option<IpAddr> {
    let text = c_str(raw);
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    musl_nameserver(text, &[])
}

/// musl's `__lookup_ipliteral(buf, name, AF_UNSPEC) > 0`.
fn lookup_ipliteral(name: &[u8], interfaces: &[&[u8]]) -> Option<IpAddr> {
    if let Some(v4) = inet_aton_exact(name) {
        return Some(IpAddr::V4(v4));
    }
    let percent = name.iter().position(|&b| b == b'%');
    let address = match percent {
        Some(p) if p < 64 => &name[..p],
        _ => name,
    };
    let a6 = musl_inet_pton6(address)?;
    if let Some(p) = percent {
        let scope = &name[p + 1..];
        let digits = scope.iter().take_while(|b| b.is_ascii_digit()).count();
        let mut scope_id: u64 = 0;
        for &d in &scope[..digits] {
            scope_id = scope_id
                .saturating_mul(10)
                .saturating_add((d - b'0') as u64);
        }
        // A scope that is not all digits (or is empty) must name an interface, and only a
        // link-local address may have one.
        if digits == 0 || digits < scope.len() {
            let link_local =
                (a6[0] == 0xfe && a6[1] & 0xc0 == 0x80) || (a6[0] == 0xff && a6[1] & 0x0f == 0x02);
            if !link_local {
                return None;
            }
            let index = interfaces.iter().position(|&i| i == scope)?;
            scope_id = index as u64 + 1;
        }
        if scope_id > u32::MAX as u64 {
            return None;
        }
    }
    Some(IpAddr::V6(Ipv6Addr::from(a6)))
}

/// musl's `inet_pton(AF_INET, ...)`: four parts of one to three digits, no leading zero.
fn musl_inet_pton4(s: &[u8]) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut s = s;
    for (i, byte) in out.iter_mut().enumerate() {
        let j = s.iter().take(3).take_while(|b| b.is_ascii_digit()).count();
        let v = s[..j].iter().fold(0u32, |v, &d| v * 10 + (d - b'0') as u32);
        if j == 0 || (j > 1 && s[0] == b'0') || v > 255 {
            return None;
        }
        *byte = v as u8;
        if s.get(j).is_none() && i == 3 {
            return Some(out);
        }
        if s.get(j) != Some(&b'.') {
            return None;
        }
        s = &s[j + 1..];
    }
    None
}

/// musl's `inet_pton(AF_INET6, ...)`.
fn musl_inet_pton6(s: &[u8]) -> Option<[u8; 16]> {
    let at = |s: &[u8], i: usize| s.get(i).copied().unwrap_or(0);
    let mut ip = [0u16; 8];
    let mut brk: Option<usize> = None;
    let mut need_v4 = false;
    let mut s = s;
    if at(s, 0) == b':' {
        s = &s[1..];
        if at(s, 0) != b':' {
            return None;
        }
    }
    let mut i = 0usize;
    loop {
        if at(s, 0) == b':' && brk.is_none() {
            brk = Some(i);
            ip[i & 7] = 0;
            s = &s[1..];
            if at(s, 0) == 0 {
                break;
            }
            if i == 7 {
                return None;
            }
            i += 1;
            continue;
        }
        let mut v: u32 = 0;
        let mut j = 0;
        while j < 4 {
            match hex_value(at(s, j)) {
                Some(d) => v = 16 * v + d,
                None => break,
            }
            j += 1;
        }
        if j == 0 {
            return None;
        }
        ip[i & 7] = v as u16;
        if at(s, j) == 0 && (brk.is_some() || i == 7) {
            break;
        }
        if i == 7 {
            return None;
        }
        if at(s, j) != b':' {
            if at(s, j) != b'.' || (i < 6 && brk.is_none()) {
                return None;
            }
            need_v4 = true;
            i += 1;
            ip[i & 7] = 0;
            break;
        }
        s = &s[j + 1..];
        i += 1;
    }
    if let Some(brk) = brk {
        let moved: Vec<u16> = ip[brk..=i].to_vec();
        ip[brk + 7 - i..].copy_from_slice(&moved);
        ip[brk..brk + 7 - i].fill(0);
    }
    let mut out = [0u8; 16];
    for (j, group) in ip.iter().enumerate() {
        out[2 * j..2 * j + 2].copy_from_slice(&group.to_be_bytes());
    }
    if need_v4 {
        out[12..].copy_from_slice(&musl_inet_pton4(s)?);
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// The invariants

/// Does either library read this line as Docker's embedded resolver?
pub fn is_embedded_line(raw: &[u8]) -> bool {
    glibc_line(raw) == Some(EMBEDDED) || musl_line(raw) == Some(EMBEDDED)
}

/// `out` as a subsequence of the lines of `input`: the lines that were removed, or None when
/// `out` is not `input` with whole lines removed, order kept.
pub fn removed_lines<'a>(input: &'a [u8], out: &[u8]) -> Option<Vec<&'a [u8]>> {
    let mut removed = Vec::new();
    let mut rest = out;
    for line in input.split_inclusive(|&b| b == b'\n') {
        match rest.strip_prefix(line) {
            Some(after) => rest = after,
            None => removed.push(line),
        }
    }
    rest.is_empty().then_some(removed)
}

fn fixed(input: &[u8], policy: Policy) -> Vec<u8> {
    let conf = parse(input);
    render(&conf, &plan(&conf, policy))
}

fn shown(bytes: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(bytes))
}

/// The invariants of issue 7 and DESIGN.md R1..R3, R6, R7 for one input, on shim's own
/// parse -> plan -> render; panics on a violation.
pub fn check(input: &[u8]) {
    // R7: no panic, whatever the input; the read-only views too.
    let conf = parse(input);
    let _ = conf.kind();
    let _ = conf.ext_servers();
    let out = render(&conf, &plan(&conf, Policy::Drop));
    check_output(input, &out);

    // --embedded keep never changes a file.
    assert!(
        fixed(input, Policy::Keep) == input,
        "keep changed {}",
        shown(input)
    );

    // R6: idempotent.
    let twice = fixed(&out, Policy::Drop);
    assert!(
        twice == out,
        "second pass changed {} -> {}",
        shown(&out),
        shown(&twice)
    );

    check_proxy(input, out != input);
}

/// R8 on any input, judged by the independent models: where the proxy changes the file, glibc
/// and musl each read the proxy and nothing else, and every line that is no nameserver line for
/// either library stays, in order; it changes a file only where a drop would; a second pass
/// changes nothing.
fn check_proxy(input: &[u8], drop_changes: bool) {
    let listen: IpAddr = "127.0.0.153".parse().unwrap();
    let out = fixed(input, Policy::Proxy(listen));
    let (input_s, out_s) = (shown(input), shown(&out));
    if !drop_changes {
        assert!(
            out == input,
            "the proxy changed what a drop keeps: {input_s} -> {out_s}"
        );
        return;
    }
    if glibc(&out).contains(&listen) || musl(&out).contains(&listen) {
        assert_eq!(glibc(&out), [listen], "glibc: {input_s} -> {out_s}");
        assert_eq!(musl(&out), [listen], "musl: {input_s} -> {out_s}");
        // The proxy's line aside, the output is the input less whole lines, in order, and each
        // line that went is a `nameserver` line.
        let proxy_line = format!("nameserver {listen}\n");
        let at = out
            .windows(proxy_line.len())
            .position(|w| w == proxy_line.as_bytes())
            .unwrap_or_else(|| panic!("no proxy line: {input_s} -> {out_s}"));
        let without = [&out[..at], &out[at + proxy_line.len()..]].concat();
        let removed = removed_lines(input, &without)
            .unwrap_or_else(|| panic!("not the input less whole lines: {input_s} -> {out_s}"));
        for line in removed {
            assert!(
                line.starts_with(b"nameserver"),
                "removed {}: {input_s} -> {out_s}",
                shown(line)
            );
        }
    } else {
        // The proxy's line would not read right (a NUL byte before it): the plan dropped instead.
        check_output(input, &out);
    }
    let twice = fixed(&out, Policy::Proxy(listen));
    assert!(twice == out, "proxy second pass changed {out_s}");
}

/// The invariants that relate a file to what a fix made of it; panics on a violation.
pub fn check_output(input: &[u8], out: &[u8]) {
    let input_s = shown(input);
    let out_s = shown(out);

    // Only whole lines are removed, order kept, so the file never grows; and every removed
    // line is one that a C library reads as 127.0.0.11 (R2: every other line stays).
    assert!(out.len() <= input.len(), "grew: {input_s} -> {out_s}");
    let removed = removed_lines(input, out)
        .unwrap_or_else(|| panic!("not the input less whole lines: {input_s} -> {out_s}"));
    for line in &removed {
        assert!(
            is_embedded_line(line),
            "removed {} which no library reads as 127.0.0.11: {input_s} -> {out_s}",
            shown(line)
        );
    }

    // R1: a file without 127.0.0.11 is returned as it is.
    if !input.split_inclusive(|&b| b == b'\n').any(is_embedded_line) {
        assert!(
            out == input,
            "no 127.0.0.11, yet changed: {input_s} -> {out_s}"
        );
    }

    // R3: a file that a library reads with at least one nameserver keeps at least one for it.
    for (library, read) in [("glibc", glibc as fn(&[u8]) -> Vec<IpAddr>), ("musl", musl)] {
        if !read(input).is_empty() {
            assert!(
                !read(out).is_empty(),
                "{library} reads no nameserver any more: {input_s} -> {out_s}"
            );
        }
    }
}
