#!/usr/bin/env python3
"""link_order.py MAP NM OUT DUMP...: the symbol ordering file for the linker (scripts/link-order).
MAP may be another target's build: the functions are matched by name, whatever the machine.
link_order.py --check MAP ORDER: is ORDER still made of the symbols of that build? (bench/gate.sh)

DUMP: callgrind dumps, one per thread, zeroed when shim's start-up ended. Kept: every function
with a cost of its own after the zero (it ran; a frame of the start-up that is never returned
into has none), the busiest first.
NM: `nm -n` of the profiled (unstripped) binary, for the addresses callgrind could not name
(assembly without a function type, such as musl's memcpy). MAP: the linker's map of the shipped
build, whose symbol names are written to OUT: a Rust symbol's hash differs between the two
builds, so names are matched without it.
"""
import bisect
import re
import sys

LEGACY_HASH = re.compile(r"17h[0-9a-f]{16}E$")
# v0 mangling names each crate with a disambiguator (`Cs<base-62>_3std`): std's differs per target.
CRATE_HASH = re.compile(r"Cs[0-9A-Za-z]+_(?=\d)")


def unhashed(name):
    """The name without what differs between builds of one source: the hash of a legacy Rust
    symbol, and the crate disambiguators of a v0 one (shim's own change with its build settings,
    std's with the target), so that one profile serves every target."""
    return CRATE_HASH.sub("Cs_", LEGACY_HASH.sub("E", name))


def read_dump(path):
    """{function: own cost} of one callgrind dump (--compress-strings=no)."""
    own, fn, after_call = {}, None, False
    for line in open(path, errors="replace"):
        if line.startswith("fn="):
            fn = re.sub(r"'\d+$", "", line[3:].strip())
            own.setdefault(fn, 0)
            after_call = False
        elif line.startswith("calls="):
            after_call = True  # the next cost line is the call's, not fn's own
        elif fn and re.match(r"^[+-]?\d+ \d+", line):
            if not after_call:
                own[fn] += int(line.split()[1])
            after_call = False
        else:
            after_call = False
    return own


def read_nm(path):
    symbols = []
    for line in open(path):
        fields = line.split()
        if len(fields) == 3:
            symbols.append((int(fields[0], 16), fields[2]))
    return symbols


def name_of(address, symbols, starts):
    i = bisect.bisect_right(starts, address) - 1
    return symbols[i][1] if i >= 0 else None


def map_entries(map_path):
    """The last column of each entry of lld's map (`VMA LMA Size Align Out In Symbol`): an input
    section as `file:(section)`, or a symbol defined in the section above it."""
    entry = re.compile(r"^\s*[0-9a-f]+\s+[0-9a-f]+\s+[0-9a-f]+\s+\d+\s+(\S.*)$")
    for line in open(map_path):
        m = entry.match(line)
        if m:
            yield m.group(1).strip()


def function_of(section):
    """The function an input section holds: `.text.NAME`, where std's precompiled cold functions
    come as `.text.unlikely.NAME`; None for another section."""
    m = re.match(r"\.text\.(?:unlikely\.|hot\.|startup\.|exit\.)?(.+)$", section)
    return m.group(1) if m else None


def shipped_names(map_path):
    """Every function symbol of the shipped build: `.text.NAME` (and `.text.unlikely.NAME`) input
    sections (Rust, and musl's C objects), and the global symbols listed under plain `.text`
    sections (musl's assembly)."""
    names = []
    for text in map_entries(map_path):
        section = re.search(r":\((\.[^)]*)\)$", text)
        if section:
            name = function_of(section.group(1))
            if name:
                names.append(name)
        elif ":(" not in text and not text.startswith(".") and " " not in text:
            names.append(text)
    return names


def check(map_path, order_path):
    """Exit 1 when fewer than 95% of the ordered names are symbols of the build MAP describes."""
    names = set(shipped_names(map_path))
    ordered = [line.strip() for line in open(order_path) if line.strip()]
    found = sum(name in names for name in ordered)
    if not ordered or found < 0.95 * len(ordered):
        print(f"{order_path}: only {found} of its {len(ordered)} symbols are in this build: "
              "run scripts/link-order (as root) and commit the file", file=sys.stderr)
        sys.exit(1)
    print(f"{order_path}: {found} of {len(ordered)} symbols found", file=sys.stderr)


def libc_companions(map_path, hot):
    """What the libc objects (`libc.a(X.lo)`) that hold a function of `hot` also hold: their
    static helpers (inlined on one machine, called on another: mallocng's `get_meta` on i686) and
    their read-only data (musl's allocator reads its size-class tables on every call), and i686's
    `__x86.get_pc_thunk.*`, which every function of musl's position-independent code calls."""
    objects, companions, section = set(), [], None
    for text in map_entries(map_path):
        source = re.search(r"([^/]*):\((\.[^)]*)\)$", text)
        if source:
            obj, name = source.group(1), function_of(source.group(2))
            section = (obj, source.group(2)) if obj.startswith("libc.a(") else None
            if name and name.startswith("__x86.get_pc_thunk."):
                companions.append((None, name))  # the copy kept may come from any object
            elif section and name:
                if name in hot:
                    objects.add(obj)
                companions.append((obj, name))
        elif section and section[1].startswith(".rodata") and not text.startswith("."):
            companions.append((section[0], text))
    return [name for obj, name in companions if obj is None or obj in objects]


def main():
    if sys.argv[1] == "--check":
        return check(sys.argv[2], sys.argv[3])
    map_path, nm_path, out, dumps = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    symbols = read_nm(nm_path)
    starts = [address for address, _ in symbols]
    aliases = {}  # identical code folding (--icf=all) leaves several names on one address
    for address, name in symbols:
        aliases.setdefault(address, []).append(name)
    address_of = {name: address for address, name in symbols}
    cost = {}
    for dump in dumps:
        for fn, own in read_dump(dump).items():
            if fn.startswith("0x"):
                fn = name_of(int(fn, 16), symbols, starts) or fn
            if own > 0 and not fn.startswith("0x"):
                cost[fn] = cost.get(fn, 0) + own
    # The busiest first: the functions every query runs fill the first window of pages, and a
    # function run once (the first query's set-up, the exit) comes last.
    wanted = []
    for fn in sorted(cost, key=lambda f: -cost[f]):
        # Which of the folded names the shipped build keeps may differ: all of them are listed.
        wanted += aliases.get(address_of.get(fn), [fn])
    by_unhashed = {}
    for name in shipped_names(map_path):
        by_unhashed.setdefault(unhashed(name), []).append(name)
    ordered, seen = [], set()
    for fn in wanted:
        for name in by_unhashed.get(unhashed(fn), []):
            if name not in seen:
                seen.add(name)
                ordered.append(name)
    ordered += [name for name in dict.fromkeys(libc_companions(map_path, seen)) if name not in seen]
    with open(out, "w") as f:
        f.write("".join(name + "\n" for name in ordered))
    print(f"link_order.py: {len(ordered)} symbols from {len(dumps)} dumps", file=sys.stderr)


if __name__ == "__main__":
    main()
