#!/usr/bin/env python3
"""Measurement harness of bench/init.sh (issue 4): shim against tini-static, catatonit, dumb-init.

Run it through bench/init.sh, which installs the anchors and builds the shim. Standard library only.
Prints one markdown report on stdout; progress goes to stderr.

What is measured, for each command, with `/bin/true` (or `/bin/sleep` for the idle part) as the app:
  1. instructions: callgrind, first process only (no --trace-children). shim without --supervise
     execs the app, and an exec replaces valgrind with the new image before callgrind can dump, so
     for that row callgrind dumps on entry to musl's execve() (--dump-before) and we count up to there.
     The shipped binary is stripped: callgrind names a block without symbol by its address, so we
     find execve by its machine code (EXECVE_PROLOGUE) and pass that address as well.
  2. wall time: all commands interleaved in a shuffled order each round, many rounds; median, time
     added over `/bin/true` alone, and the median of the paired differences against tini-static
     (same round) with a 95 % confidence interval. Done twice: as a plain child, and as PID 1 of a
     fresh PID namespace (`unshare --pid --fork --mount-proc`, same wrapper for every command).
     As root the timed loop runs under SCHED_FIFO (inherited by every command alike), so that
     builds running beside it do not preempt it.
  3. RSS (VmRSS) of the init process while the app sleeps, plain child and PID 1.
  4. binary size.
  5. idle wake-ups: growth of the init's voluntary_ctxt_switches over a window while the app sleeps.
Every command gets a fresh copy of a Docker <= 25 resolv.conf before each run (only shim reads it,
through --resolv-conf), and the same small container-like environment.
"""

import argparse
import datetime
import gc
import math
import os
import platform
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

# tests/fixtures/docker25-ipv6-host.conf: Docker <= 25 on a user-defined network, IPv6-only host DNS.
RESOLV_CONF = (
    b"search corp.example lab.example\n"
    b"nameserver 127.0.0.11\n"
    b"nameserver 2001:db8::53\n"
    b"nameserver 2001:db8::54\n"
    b"options ndots:0\n"
)
# What `docker run` gives a process: PATH, HOSTNAME, HOME. The same for every command, so that no
# init pays for the harness's own environment (shim looks up a dozen SHIM_* variables).
ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOSTNAME": "0f1e2d3c4b5a",
    "HOME": "/root",
}
# The same plus 32 more variables: about what a developer's shell exports (35 in all), the
# environment DESIGN.md's anchor figures (tini-static 38.7 k instructions) were taken in. Static
# glibc (tini-static, catatonit) scans the environment at start-up once per tunable, so its count
# grows with it; shim's barely does. Counted once more in this environment, for instructions only.
ENV_LARGE = dict(ENV, **{f"VAR_{i:02d}": "x" * 40 for i in range(32)})
TINI, CATATONIT, DUMB_INIT = "/usr/bin/tini-static", "/usr/bin/catatonit", "/usr/bin/dumb-init"
TRUE, SLEEP, UNSHARE = "/bin/true", "/bin/sleep", "/usr/bin/unshare"
PID1_WRAP = [UNSHARE, "--pid", "--fork", "--mount-proc"]
# musl's execve() (src/process/execve.c) as compiled in Rust's self-contained libc.a for
# x86_64-unknown-linux-musl: sub $8,%rsp; mov $59,%eax; syscall; mov %rax,%rdi; call __syscall_ret.
EXECVE_PROLOGUE = bytes.fromhex("4883ec08b83b0000000f054889c7e8")

# Targets of DESIGN.md "Build and performance", as ratios against tini-static.
TARGET_INSTR, TARGET_RSS, TARGET_SIZE = 0.65, 0.80, 900_000
# The CI gate (--gate) on what the start-up work protects: the stripped binary's size, and the
# instructions of `shim --` against tini-static's, counted in the same run.
GATE_SIZE, GATE_INSTR = 650_000, TARGET_INSTR


def log(*a):
    print("init-bench:", *a, file=sys.stderr, flush=True)


class Row:
    """One command under test. `argv(app)` builds its command line around the app's argv."""

    def __init__(self, key, label, argv, binary, execs=False, is_shim=False, anchor=False):
        self.key, self.label, self._argv, self.binary = key, label, argv, binary
        self.execs, self.is_shim, self.anchor = execs, is_shim, anchor
        self.broken = None  # why this row could not be measured
        self.instr = None
        self.instr_large = None
        self.wall = {}  # mode -> list of ns
        self.idle = {}  # mode -> dict(rss=kB, wakeups=int) or str (why not)

    def argv(self, app, rc):
        return self._argv(app, rc)


def make_rows(shim):
    return [
        Row("true", f"`{TRUE}` alone (baseline)", lambda app, rc: list(app), TRUE),
        Row("shim", "`shim -- /bin/true` (fix included)",
            lambda app, rc: [shim, "--resolv-conf", rc, "--", *app], shim, execs=True, is_shim=True),
        Row("shim-sup", "`shim --supervise -- /bin/true` (fix included)",
            lambda app, rc: [shim, "--supervise", "--resolv-conf", rc, "--", *app], shim, is_shim=True),
        Row("tini", "`tini-static -s -- /bin/true`",
            lambda app, rc: [TINI, "-s", "--", *app], TINI, anchor=True),
        Row("catatonit", "`catatonit -- /bin/true`", lambda app, rc: [CATATONIT, "--", *app], CATATONIT),
        Row("dumb-init", "`dumb-init /bin/true`", lambda app, rc: [DUMB_INIT, *app], DUMB_INIT),
    ]


def fresh_rc(path):
    with open(path, "wb") as f:
        f.write(RESOLV_CONF)


# ---------------------------------------------------------------- sanity


def sanity(rows, tmp, modes):
    """Each command must run and exit 0 in every mode; shim must really fix the file."""
    for row in rows:
        rc = os.path.join(tmp, f"sanity-{row.key}.conf")
        for mode in modes:
            wrap = PID1_WRAP if mode == "pid1" else []
            fresh_rc(rc)
            p = subprocess.run(wrap + row.argv([TRUE], rc), env=ENV, capture_output=True, timeout=60)
            if p.returncode != 0:
                why = (p.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[0]
                row.broken = f"exits {p.returncode} ({mode}): {why}"
                break
            if row.is_shim:
                with open(rc, "rb") as f:
                    after = f.read()
                if b"127.0.0.11" in after or b"2001:db8::53" not in after:
                    row.broken = f"did not fix the resolv.conf ({mode})"
                    break
        if row.broken:
            log(f"{row.key}: NOT MEASURED: {row.broken}")


# ---------------------------------------------------------------- 1. instructions


def elf_vaddr(data, offset):
    """Map a file offset of a 64-bit ELF to its link-time virtual address (callgrind's names)."""
    phoff = struct.unpack_from("<Q", data, 0x20)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, _flags, p_offset, p_vaddr, _pa, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 1 and p_offset <= offset < p_offset + p_filesz:
            return p_vaddr + offset - p_offset
    return None


def execve_names(binary):
    """callgrind function names for musl's execve in `binary`: its symbol, and for a stripped
    binary the name callgrind gives a code block without symbol, its address as 0x%016x."""
    names = ["execve"]
    with open(binary, "rb") as f:
        data = f.read()
    hits, at = [], data.find(EXECVE_PROLOGUE)
    while at >= 0:
        hits.append(at)
        at = data.find(EXECVE_PROLOGUE, at + 1)
    if len(hits) == 1:
        vaddr = elf_vaddr(data, hits[0])
        if vaddr is not None:
            names.append(f"0x{vaddr:016x}")
    else:
        log(f"execve prologue found {len(hits)} times in {binary}; relying on the symbol name")
    return names


def callgrind(row, tmp, env=ENV):
    rc = os.path.join(tmp, f"cg-{row.key}.conf")
    fresh_rc(rc)
    outdir = tempfile.mkdtemp(dir=tmp, prefix=f"cg-{row.key}-")
    cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={outdir}/cg.%p"]
    if row.execs:
        cmd += [f"--dump-before={n}" for n in execve_names(row.binary)]
    p = subprocess.Popen(cmd + row.argv([TRUE], rc), env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, err = p.communicate(timeout=300)
    total, parts = 0, 0
    # Only the first process: valgrind runs it under its own pid; a forked child that execs
    # (the app) never dumps, and its file, if any, has the child's pid.
    for name in sorted(os.listdir(outdir)):
        if name != f"cg.{p.pid}" and not name.startswith(f"cg.{p.pid}."):
            continue
        with open(os.path.join(outdir, name)) as f:
            for line in f:
                if line.startswith("totals:"):
                    total += int(line.split()[1])
                    parts += 1
    if row.execs and parts == 0:
        log(f"{row.key}: callgrind never reached execve:\n{err.decode(errors='replace')[-2000:]}")
        return None
    return total if parts else None


# ---------------------------------------------------------------- 2. wall time


def wall(rows, tmp, runs, wrap, warmup=20, seed=4):
    devnull = os.open("/dev/null", os.O_WRONLY)
    actions = [(os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2)]
    plan = []
    for row in rows:
        rc = os.path.join(tmp, f"wall-{row.key}.conf")
        argv = wrap + row.argv([TRUE], rc)
        plan.append((row, rc, argv))
    times = {row.key: [] for row in rows}
    rng = random.Random(seed)
    gc.disable()
    realtime = rt_priority()
    wall.realtime = realtime
    try:
        for i in range(warmup + runs):
            rng.shuffle(plan)
            for row, rc, argv in plan:
                fresh_rc(rc)  # every command pays the same copy, outside the timed part
                t0 = time.perf_counter_ns()
                pid = os.posix_spawn(argv[0], argv, ENV, file_actions=actions)
                _, status = os.waitpid(pid, 0)
                t1 = time.perf_counter_ns()
                if status != 0:
                    raise SystemExit(f"{' '.join(argv)}: exit status {status} during the wall-time runs")
                if i >= warmup:
                    times[row.key].append(t1 - t0)
    finally:
        if realtime:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        gc.enable()
        os.close(devnull)
    return times


def rt_priority():
    """Run the timed loop, and so every command it starts, under SCHED_FIFO: the same for every
    command, and compilers running beside the benchmark no longer preempt it. Needs root."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        return True
    except (PermissionError, AttributeError, OSError):
        log("SCHED_FIFO not available: wall times share the CPU with everything else")
        return False


def median(xs):
    s = sorted(xs)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def median_ci(xs, z=1.96):
    """Distribution-free 95 % confidence interval of the median (order statistics)."""
    s = sorted(xs)
    n = len(s)
    k = max(0, int(math.floor(n / 2 - z * math.sqrt(n) / 2)))
    return s[k], s[min(n - 1, n - 1 - k)]


# ---------------------------------------------------------------- 3 and 5. RSS and idle wake-ups


def status_fields(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            out[key] = value.strip()
    return out


def children(pid):
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if int(status_fields(int(name)).get("PPid", -1)) == pid:
                    found.append(int(name))
            except (OSError, ValueError):
                pass
    return found


def idle_repeated(rows, tmp, wrap, repeats):
    """`idle` `repeats` times: the median of each RSS figure (a static PIE lands at a random address,
    which moves the kernel's fault-around windows over its file, so its RSS varies from start to
    start), and the largest wake-up count."""
    runs = [idle(rows, tmp, wrap) for _ in range(repeats)]
    result = {}
    for row in rows:
        got = [r.get(row.key) for r in runs]
        bad = [g for g in got if not isinstance(g, dict)]
        if bad:
            result[row.key] = bad[0] if isinstance(bad[0], str) else "not measured"
            continue
        result[row.key] = {k: median([g[k] for g in got]) for k in ("rss", "anon", "file")}
        result[row.key]["wakeups"] = max(g.get("wakeups", 0) for g in got)
    return result


def idle(rows, tmp, wrap, settle=0.7, window=3.0):
    """Start every init with `sleep` as its app, all at once; sample VmRSS after `settle` s, and the
    voluntary context switches at the start and the end of `window` s. Returns key -> dict or str."""
    app = [SLEEP, str(int(settle + window + 5))]
    running = []
    for row in rows:
        rc = os.path.join(tmp, f"idle-{row.key}.conf")
        fresh_rc(rc)
        p = subprocess.Popen(wrap + row.argv(app, rc), env=ENV, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        running.append((row, p))
    time.sleep(settle)
    result, first = {}, {}
    for row, p in running:
        init = p.pid
        if wrap:  # unshare forks; its child is PID 1 of the new namespace
            kids = children(p.pid)
            init = kids[0] if len(kids) == 1 else None
        try:
            exe = os.path.basename(os.readlink(f"/proc/{init}/exe")) if init else None
            st = status_fields(init) if init else None
        except OSError:
            exe = st = None
        if st is None:
            result[row.key] = "not running"
        elif exe == os.path.basename(SLEEP) and row.key != "true":
            result[row.key] = "execs the app"
        else:
            first[row.key] = (init, int(st["voluntary_ctxt_switches"]))
            kb = lambda field: int(st.get(field, "0 kB").split()[0])
            result[row.key] = {"rss": kb("VmRSS"), "anon": kb("RssAnon"), "file": kb("RssFile")}
    time.sleep(window)
    for key, (init, v0) in first.items():
        try:
            v1 = int(status_fields(init)["voluntary_ctxt_switches"])
            result[key]["wakeups"] = v1 - v0
        except OSError:
            result[key] = "exited during the window"
    for row, p in running:
        # The app may sit in a process group of its own: kill the whole tree, leaves first
        # gathered, so that nothing is re-parented away from us before it is killed.
        tree = [p.pid]
        for pid in tree:
            tree.extend(children(pid))
        for pid in reversed(tree):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        p.wait(timeout=30)
    return result


# ---------------------------------------------------------------- report


def fmt_int(n):
    return f"{n:,}"


def ratio(a, b):
    if a is None or b in (None, 0):
        return "–"
    return f"{a / b:.2f}x"


def verdict(ok):
    return "**met**" if ok else "**missed**"


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return cpu


def git_desc(repo):
    try:
        head = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no",
                                "--", "src", "Cargo.toml", "Cargo.lock", ".cargo"],
                               capture_output=True, text=True).stdout.strip()
        return head + (" + uncommitted changes in src/ or Cargo files" if dirty else "")
    except OSError:
        return "unknown"


def versions():
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version}\\n",
                              "tini", "catatonit", "dumb-init", "valgrind"],
                             capture_output=True, text=True).stdout.split("\n")
        return ", ".join(line for line in out if line)
    except OSError:
        return "unknown"


def report(rows, args, modes, started):
    by = {r.key: r for r in rows}
    tini, true = by["tini"], by["true"]
    out = []
    w = out.append
    w(f"- date: {started:%Y-%m-%d %H:%M %Z}; machine: {os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), "
      f"{machine()}, Linux {platform.release()}; load average at start: {args.load}")
    w(f"- shim: `{args.shim}` ({os.path.getsize(args.shim):,} bytes), git {git_desc(args.repo)}")
    w(f"- anchors and tools: {versions()}")
    w(f"- every command: environment of 3 variables ({', '.join(ENV)}), as `docker run` gives; app "
      f"`/bin/true`; a fresh Docker <= 25 resolv.conf ({len(RESOLV_CONF)} bytes, 127.0.0.11 and two IPv6 "
      f"servers) before each run, which shim fixes through `--resolv-conf`")
    w(f"- wall time: {args.runs} interleaved rounds as a plain child, {args.pid1_runs} as PID 1 "
      f"(`{' '.join(PID1_WRAP)} CMD`; its cost is in every row, baseline included), "
      f"{'under SCHED_FIFO (root), ' if args.realtime else ''}commands in a new random order each round; "
      f"idle: app `sleep`, all inits at once, VmRSS 0.7 s after start (median of {args.idle_repeats} starts), "
      f"voluntary context switches over the next 3.0 s (largest of the {args.idle_repeats})")
    w("")

    def wall_cells(row, mode):
        t = row.wall.get(mode)
        if not t:
            return ["–", "–"]
        m = median(t) / 1e6
        added = (median(t) - median(true.wall[mode])) / 1e6
        return [f"{m:.3f}", f"{added:+.3f}" if row is not true else "0"]

    def idle_cells(row, mode):
        v = row.idle.get(mode)
        if v is None:
            return ["–", "–"]
        if isinstance(v, str):
            return [f"n/a ({v})", "–"]
        t = tini.idle.get(mode)
        vs = f", {v['rss'] / t['rss']:.2f}x" if isinstance(t, dict) and row is not tini else ""
        return [f"{v['rss']:,.0f} ({v['anon']:,.0f} + {v['file']:,.0f}){vs}", str(v.get("wakeups", "?"))]

    w("| command | instructions | vs tini | wall ms median (added) | vs tini, added | "
      "wall as PID 1 ms (added) | vs tini, added | RSS kB, anon + file (PID 1), vs tini | RSS kB (child), vs tini | "
      "wake-ups in 3 s (PID 1 / child) | binary bytes |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        if row.broken:
            w(f"| {row.label} | not measured: {row.broken} |" + " |" * 10)
            continue
        cells = [row.label]
        cells.append(fmt_int(row.instr) if row.instr is not None else "–")
        cells.append(ratio(row.instr, tini.instr) if row is not true else "–")
        for mode in modes:
            m, added = wall_cells(row, mode)
            cells.append(f"{m} ({added})")
            if row is true or not row.wall.get(mode):
                cells.append("–")
            else:
                a = median(row.wall[mode]) - median(true.wall[mode])
                b = median(tini.wall[mode]) - median(true.wall[mode])
                cells.append(ratio(a, b) if b > 0 else "–")
        if "pid1" not in modes:
            cells += ["skipped (not root)", "–"]
        rss = {mode: idle_cells(row, mode) for mode in ("pid1", "plain")}
        cells += [rss["pid1"][0], rss["plain"][0]]
        cells.append(f"{rss['pid1'][1]} / {rss['plain'][1]}")
        size = os.path.getsize(row.binary)
        note = " (dynamic)" if row.key in ("dumb-init", "true") else ""
        vs = f", {size / os.path.getsize(TINI):.2f}x" if row is not tini else ""
        cells.append(f"{size:,}{note}{vs}")
        w("| " + " | ".join(cells) + " |")
    w("")

    # Targets: shim against tini-static, each in the same mode.
    w("| target (DESIGN.md) | shim | tini-static | ratio | goal | |")
    w("|---|---:|---:|---:|---:|---|")
    for key in ("shim", "shim-sup"):
        row = by[key]
        name = "`shim --`" if key == "shim" else "`shim --supervise`"
        if row.broken:
            w(f"| {name}: all | not measured: {row.broken} | | | | **missed** |")
            continue
        if row.instr is not None and tini.instr:
            r = row.instr / tini.instr
            w(f"| {name}: instructions | {fmt_int(row.instr)} | {fmt_int(tini.instr)} | {r:.2f}x | "
              f"<= {TARGET_INSTR}x | {verdict(r <= TARGET_INSTR)} |")
        for mode in modes:
            if not row.wall.get(mode) or not tini.wall.get(mode):
                continue
            d = [a - b for a, b in zip(row.wall[mode], tini.wall[mode])]
            md, (lo, hi) = median(d) / 1e6, [x / 1e6 for x in median_ci(d)]
            where = "as PID 1" if mode == "pid1" else "as a child"
            w(f"| {name}: wall {where}, paired difference (95 % CI) | "
              f"{median(row.wall[mode]) / 1e6:.3f} ms | {median(tini.wall[mode]) / 1e6:.3f} ms | "
              f"{md:+.3f} ms [{lo:+.3f}, {hi:+.3f}] | no slower | {verdict(lo <= 0)} |")
        idle_mode = "pid1" if key == "shim" else "plain"
        where = "as PID 1" if idle_mode == "pid1" else "as a child"
        mine, theirs = row.idle.get(idle_mode), tini.idle.get(idle_mode)
        if isinstance(mine, dict) and isinstance(theirs, dict):
            r = mine["rss"] / theirs["rss"]
            w(f"| {name}: RSS waiting, {where} | {mine['rss']:,.0f} kB | {theirs['rss']:,.0f} kB | {r:.2f}x | "
              f"<= {TARGET_RSS}x | {verdict(r <= TARGET_RSS)} |")
            if "wakeups" in mine:
                w(f"| {name}: idle wake-ups in 3 s, {where} | {mine['wakeups']} | {theirs.get('wakeups', '?')} | | "
                  f"0 | {verdict(mine['wakeups'] == 0)} |")
        elif mine is not None:
            w(f"| {name}: RSS and wake-ups {where} | n/a ({mine}) | | | | |")
    size = os.path.getsize(args.shim)
    w(f"| binary size | {size:,} B | {os.path.getsize(TINI):,} B | {size / os.path.getsize(TINI):.2f}x | "
      f"<= {TARGET_SIZE:,} B | {verdict(size <= TARGET_SIZE)} |")
    w("")
    w(f"Instructions in a {len(ENV_LARGE)}-variable environment (DESIGN.md's anchors were measured in "
      "one like it):")
    w("")
    w("| command | instructions | vs tini | goal |")
    w("|---|---:|---:|---|")
    for row in rows:
        if row.broken or getattr(row, "instr_large", None) is None:
            continue
        goal = ""
        if row.is_shim and tini.instr_large:
            goal = verdict(row.instr_large / tini.instr_large <= TARGET_INSTR)
        vs = ratio(row.instr_large, tini.instr_large) if row is not true else "–"
        w(f"| {row.label} | {fmt_int(row.instr_large)} | {vs} | {goal} |")
    w("")
    w("Wall: \"added\" is the median minus the median of the baseline in the same mode; the ratio is "
      "added time against tini-static's added time. The wall target counts as met unless the whole 95 % "
      "interval of the paired difference (shim minus tini-static in the same round) lies above zero. "
      "Instructions: callgrind, first process only; `shim --` execs, so it is counted up to musl's "
      "`execve()`; dumb-init and `/bin/true` are dynamic, their counts include ld.so.")
    return "\n".join(out)


def gate(shim):
    """The CI gate: callgrind counts are the same run after run, so they can fail a build."""
    tmp = tempfile.mkdtemp(prefix="shim-gate-")
    # Counted from a path of fixed length: musl's start-up walks argv[0] byte by byte (about 7
    # instructions a byte), so the same binary counted from a deeper checkout would cost more.
    # /tmp/shim-gate-XXXXXXXX/shim is as long as tini-static's /usr/bin/tini-static, give or take.
    size = os.path.getsize(shim)
    shutil.copy2(shim, os.path.join(tmp, "shim"))
    shim = os.path.join(tmp, "shim")
    rows = {r.key: r for r in make_rows(shim) if r.key in ("shim", "tini")}
    try:
        sanity(list(rows.values()), tmp, ["plain"])
        if any(r.broken for r in rows.values()):
            return 1
        shim_instr, tini_instr = (callgrind(rows[k], tmp) for k in ("shim", "tini"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not shim_instr or not tini_instr:
        print("gate: FAIL: instructions could not be counted")
        return 1
    ratio_ = shim_instr / tini_instr
    ok_size, ok_instr = size <= GATE_SIZE, ratio_ <= GATE_INSTR
    print(f"gate: size {size} bytes (at most {GATE_SIZE}): {'ok' if ok_size else 'FAIL'}")
    print(f"gate: `shim --` {shim_instr} instructions, tini-static {tini_instr}: {ratio_:.3f}x "
          f"(at most {GATE_INSTR}x): {'ok' if ok_instr else 'FAIL'}")
    return 0 if ok_size and ok_instr else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shim", required=True)
    ap.add_argument("--repo", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--runs", type=int, default=1000, help="interleaved rounds, plain child")
    ap.add_argument("--pid1-runs", type=int, default=300, help="interleaved rounds as PID 1")
    ap.add_argument("--idle-repeats", type=int, default=5, help="starts per init for RSS and wake-ups")
    ap.add_argument("--command", default="bench/init.sh", help="the command line, for the report")
    ap.add_argument("--gate", action="store_true",
                    help="only check the binary size and the instructions of `shim --` against tini-static; exit 1 past the gate")
    args = ap.parse_args()
    if args.gate:
        sys.exit(gate(os.path.abspath(args.shim)))
    started = datetime.datetime.now(datetime.timezone.utc)
    args.load = " ".join(open("/proc/loadavg").read().split()[:3])
    rows = make_rows(os.path.abspath(args.shim))
    root = os.geteuid() == 0 and shutil.which("unshare") is not None
    modes = ["plain", "pid1"] if root else ["plain"]
    if not root:
        log("not root: the PID 1 measurements are skipped")
    tmp = tempfile.mkdtemp(prefix="shim-init-bench-")
    try:
        sanity(rows, tmp, modes)
        live = [r for r in rows if not r.broken]
        for row in live:
            log(f"callgrind: {row.key}")
            row.instr = callgrind(row, tmp)
            row.instr_large = callgrind(row, tmp, ENV_LARGE)
        for mode in modes:
            wrap = PID1_WRAP if mode == "pid1" else []
            runs = args.pid1_runs if mode == "pid1" else args.runs
            log(f"wall time ({mode}): {runs} rounds of {len(live)} commands")
            times = wall(live, tmp, runs, wrap)
            for row in live:
                row.wall[mode] = times[row.key]
            log(f"RSS and idle wake-ups ({mode})")
            res = idle_repeated([r for r in live if r.key != "true"], tmp, wrap, args.idle_repeats)
            for row in live:
                row.idle[mode] = res.get(row.key)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    args.realtime = getattr(wall, "realtime", False)
    print(report(rows, args, modes, started))


if __name__ == "__main__":
    main()
