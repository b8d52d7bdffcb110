#!/usr/bin/env python3
"""sockact benchmarks: runs every measurement of bench/README.md, interleaved,
and prints one table of ratios against their targets (also written as
bench/RESULTS.md). Started by scripts/bench.sh, which installs and builds first.

  run.py BUILD_DIR [--quick] [--only cold,steady,idle,compile] [--results FILE]

Absolute times on a shared machine are noise; every target is a ratio of two
things measured side by side, in alternating order, and compared by medians.
"""
import argparse
import json
import os
import platform
import random
import re
import resource
import select
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
ADAPTER_NODE = os.path.join(HERE, "adapter-node")
EXAMPLES = ["example-posix-http", "example-asio-http", "example-libuv-http"]
# How each example is linked: as examples/ builds it (-static-libstdc++ -static-libgcc), with a
# shared libstdc++, -static.
KINDS = ["", "-shared-libstdcxx", "-static"]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def quartiles(xs):
    if len(xs) < 4:
        return (min(xs), max(xs)) if xs else (float("nan"), float("nan"))
    q = statistics.quantiles(xs, n=4)
    return q[0], q[2]


# ---------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------
def start_activated(cmd, port, env=None):
    """systemd-socket-activate -l 127.0.0.1:PORT CMD: returns once it listens."""
    args = ["systemd-socket-activate", "-l", f"127.0.0.1:{port}"]
    for k, v in (env or {}).items():
        args += ["-E", f"{k}={v}"]
    p = subprocess.Popen(args + cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         start_new_session=True)
    buf = b""
    deadline = time.monotonic() + 10
    while b"Listening on" not in buf:
        left = deadline - time.monotonic()
        if left <= 0 or p.poll() is not None:
            stop(p)
            raise RuntimeError(f"systemd-socket-activate did not listen: {buf.decode(errors='replace')}")
        r, _, _ = select.select([p.stderr], [], [], left)
        if r:
            chunk = os.read(p.stderr.fileno(), 4096)
            if not chunk:
                continue
            buf += chunk
    return p


def start_bound(cmd, port):
    env = dict(os.environ, HOST="127.0.0.1", PORT=str(port))
    for k in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "IDLE_TIMEOUT"):
        env.pop(k, None)
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def stop(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    p.wait()
    if p.stderr:
        p.stderr.close()


def client(build, port, retry_ms=0):
    """One timed GET: (first_byte_us, total_us)."""
    r = subprocess.run([os.path.join(build, "client"), str(port), str(retry_ms)],
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        raise RuntimeError(f"client: {r.stdout.strip()} {r.stderr.strip()}")
    first, total = r.stdout.split()[:2]
    return float(first), float(total)


# ---------------------------------------------------------------------------
# 1. Cold start
# ---------------------------------------------------------------------------
def cold_targets(build):
    t = [("floor", [os.path.join(build, "floor")]),
         ("floor-static", [os.path.join(build, "floor-static")])]
    for e in EXAMPLES:
        for kind in KINDS:
            t.append((e + kind, [os.path.join(build, e + kind)]))
    node_entry = os.path.join(ADAPTER_NODE, "build", "index.js")
    node = shutil_which("node")
    if node and os.path.exists(node_entry):
        t.append(("adapter-node", [node, node_entry]))
    else:
        log("cold start: adapter-node not built (bench/adapter-node/build/index.js); skipped")
    return t


def shutil_which(name):
    import shutil
    return shutil.which(name)


def cold_start(build, rounds, warmup=2):
    targets = cold_targets(build)
    samples = {name: [] for name, _ in targets}
    log(f"cold start: {len(targets)} programs x {rounds} rounds (+{warmup} warm-up), interleaved")
    for r in range(warmup + rounds):
        order = targets[r % len(targets):] + targets[:r % len(targets)]  # rotate: no fixed position
        if r % 2:
            order.reverse()
        for name, cmd in order:
            port = free_port()
            p = start_activated(cmd, port)
            try:
                first, _ = client(build, port)
            finally:
                stop(p)
            if r >= warmup:
                samples[name].append(first)
    return samples


def startup_cost(build, rounds):
    """Where the cold start goes beyond the floor: each program started with a
    bad option, so it only loads, initialises and exits. CPU time and page
    faults from wait4(), interleaved; no socket, no activation."""
    names = ["floor", "floor-static"] + [e + k for e in EXAMPLES for k in KINDS]
    cpu = {n: [] for n in names}
    faults = {n: [] for n in names}
    for r in range(rounds):
        order = names[:]
        random.Random(1000 + r).shuffle(order)
        for n in order:
            p = subprocess.Popen([os.path.join(build, n), "--bad-option"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            _, _, ru = os.wait4(p.pid, 0)
            p.returncode = 0
            cpu[n].append((ru.ru_utime + ru.ru_stime) * 1e6)
            faults[n].append(ru.ru_minflt + ru.ru_majflt)
    return {n: (median(cpu[n]), median(faults[n])) for n in names}


# ---------------------------------------------------------------------------
# 2. Steady state
# ---------------------------------------------------------------------------
def wrk(port, seconds):
    r = subprocess.run(["wrk", "-t2", "-c50", f"-d{seconds}s", f"http://127.0.0.1:{port}/"],
                       capture_output=True, text=True, timeout=seconds + 30)
    m = re.search(r"Requests/sec:\s*([\d.]+)", r.stdout)
    if not m or "Non-2xx" in r.stdout:
        raise RuntimeError("wrk: " + r.stdout + r.stderr)
    errors = re.search(r"Socket errors:.*", r.stdout)
    return float(m.group(1)), errors.group(0) if errors else ""


def steady_state(build, rounds, seconds):
    """Requests/s per (example, mode); the two modes of one example run back to
    back in alternating order, so each round gives one paired ratio."""
    samples = {(e, m): [] for e in EXAMPLES for m in ("activated", "bound")}
    log(f"steady state: {len(EXAMPLES)} examples x 2 modes x {rounds} rounds x {seconds} s of wrk")
    for r in range(rounds):
        for i, e in enumerate(EXAMPLES):
            modes = ["activated", "bound"] if (r + i) % 2 == 0 else ["bound", "activated"]
            for mode in modes:
                cmd = [os.path.join(build, e)]
                port = free_port()
                if mode == "activated":
                    p = start_activated(cmd, port)
                    client(build, port)  # starts it
                else:
                    p = start_bound(cmd, port)
                    client(build, port, retry_ms=5000)  # waits until it listens
                try:
                    rps, errors = wrk(port, seconds)
                finally:
                    stop(p)
                samples[(e, mode)].append(rps)
                log(f"  {e:22} {mode:9} {rps:10.0f} req/s {errors}")
    return samples


# ---------------------------------------------------------------------------
# 3. Idle tracking
# ---------------------------------------------------------------------------
def idle_bench(build, quick):
    reps = 5 if quick else 9
    r = subprocess.run([os.path.join(build, "idle_bench"), "--benchmark_format=json",
                        f"--benchmark_repetitions={reps}", "--benchmark_enable_random_interleaving=true",
                        "--benchmark_min_time=0.05", "--benchmark_report_aggregates_only=true"],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError("idle_bench: " + r.stderr)
    res = {}
    for b in json.loads(r.stdout)["benchmarks"]:
        if b.get("aggregate_name") == "median":
            res[b["run_name"]] = b["cpu_time"]
    a = subprocess.run([os.path.join(build, "idle_alloc_test")], capture_output=True, text=True)
    msg = (a.stdout.strip() or a.stderr.strip()).split(": ", 1)[-1].replace("allocations in 1e6 begin/end: ", "")
    return res, a.returncode == 0, msg


# ---------------------------------------------------------------------------
# 4. Compile cost
# ---------------------------------------------------------------------------
def read_config(build):
    cfg = {}
    with open(os.path.join(build, "bench-config.txt")) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                cfg[k] = v
    return cfg


def isystem(d):
    """-isystem DIR, except for the compiler's own directories (that would break #include_next)."""
    return [] if not d or d.rstrip("/") in ("/usr/include", "/usr/local/include") else ["-isystem", d]


def compile_units(build):
    cfg = read_config(build)
    cxx = [cfg.get("cxx") or "g++", "-std=c++17", "-O2", "-I", os.path.join(ROOT, "include")]
    c = lambda f: os.path.join(HERE, "compile", f)
    units = {
        "baseline": cxx + ["-c", c("baseline.cpp")],
        "core": cxx + ["-c", c("core.cpp")],
        "receive": cxx + ["-c", c("receive.cpp")],
        "poll driver": cxx + ["-c", c("poll_driver.cpp")],
    }
    if cfg.get("boost_asio_dir"):
        d = isystem(cfg["boost_asio_dir"]) + ["-DSOCKACT_ASIO_BOOST=1"]
        units["boost.asio"] = cxx + d + ["-c", c("asio_dep.cpp")]
        units["asio adapter (boost)"] = cxx + d + ["-c", c("asio_adapter.cpp")]
    if cfg.get("standalone_asio_dir"):
        d = isystem(cfg["standalone_asio_dir"]) + ["-DSOCKACT_ASIO_STANDALONE=1"]
        units["asio"] = cxx + d + ["-c", c("asio_dep.cpp")]
        units["asio adapter (standalone)"] = cxx + d + ["-c", c("asio_adapter.cpp")]
    inc = [x for x in cfg.get("libuv_include", "").split(";") if x]
    d = sum((isystem(x) for x in inc), [])
    units["uv.h"] = cxx + d + ["-c", c("uv_dep.cpp")]
    units["uv.h + std"] = cxx + d + ["-c", c("uv_dep_std.cpp")]
    units["libuv adapter"] = cxx + d + ["-c", c("uv_adapter.cpp")]
    # The same sockact units with SOCKACT_SEPARATE_COMPILATION: the headers
    # declare, <sockact/impl/src.hpp> compiles the definitions once elsewhere.
    for name in [n for n in units if n in SOCKACT_UNITS]:
        cmd = units[name]
        units[name + SEPARATE] = cmd[:-2] + ["-DSOCKACT_SEPARATE_COMPILATION=1"] + cmd[-2:]
    return units


SEPARATE = " [separate]"
SOCKACT_UNITS = ("core", "receive", "poll driver", "asio adapter (boost)", "asio adapter (standalone)",
                 "libuv adapter")


def time_command(cmd):
    """(wall seconds, user+sys CPU seconds) of one run."""
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd + ["-o", os.devnull], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    err = p.stderr.read()
    p.stderr.close()
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError(f"compile failed: {' '.join(cmd)}\n{err.decode(errors='replace')}")
    return wall, ru.ru_utime + ru.ru_stime


def time_interleaved(units, rounds):
    names = list(units)
    wall = {n: [] for n in names}
    cpu = {n: [] for n in names}
    for n in names:  # warm the page cache
        time_command(units[n])
    for r in range(rounds):
        order = names[:]
        random.Random(r).shuffle(order)
        for n in order:
            w, c = time_command(units[n])
            wall[n].append(w)
            cpu[n].append(c)
    return wall, cpu


def compile_cost(build, rounds):
    units = compile_units(build)
    log(f"compile cost: {len(units)} translation units x {rounds} rounds, shuffled each round")
    return time_interleaved(units, rounds)


def core_breakdown(build, rounds):
    """When the core misses its target: what each header the core pulls in
    (beyond the baseline's) costs on top of the baseline, alone."""
    cfg = read_config(build)
    cxx = [cfg.get("cxx") or "g++", "-std=c++17", "-O2", "-I", os.path.join(ROOT, "include")]
    # The standard and system headers that the umbrella's own headers include
    # (followed from sockact.hpp: the headers it leaves out do not count).
    headers, seen, todo = set(), set(), ["sockact/sockact.hpp"]
    while todo:
        h = todo.pop()
        if h in seen:
            continue
        seen.add(h)
        with open(os.path.join(ROOT, "include", h)) as fh:
            for line in fh:
                m = re.match(r"\s*#\s*include\s*<([^>]+)>", line)
                if not m or m.group(1).startswith(("systemd/", "sockact_needs")):
                    continue
                if m.group(1).startswith("sockact/"):
                    todo.append(m.group(1))
                else:
                    headers.add(m.group(1))
    base = {"string", "vector", "system_error"}
    tmp = os.path.join(build, "compile-breakdown")
    os.makedirs(tmp, exist_ok=True)
    prologue = "#include <string>\n#include <vector>\n#include <system_error>\n"

    def unit(name, body):
        src = os.path.join(tmp, re.sub(r"[^A-Za-z0-9]", "_", name) + ".cpp")
        with open(src, "w") as fh:
            fh.write(prologue + body + "int main() { return 0; }\n")
        return cxx + ["-c", src]

    units = {"baseline": unit("baseline", ""),
             "every header sockact includes": unit("all", "".join(f"#include <{h}>\n" for h in sorted(headers))),
             "sockact.hpp": unit("core", "#include <sockact/sockact.hpp>\n")}
    for h in sorted(headers - base):
        units[f"<{h}>"] = unit(h, f"#include <{h}>\n")

    def lines(cmd):  # preprocessed size: deterministic, unlike the timings
        src = cmd[-1]
        r = subprocess.run(cmd[:-2] + ["-E", "-P", src], capture_output=True, text=True)
        return len([x for x in r.stdout.splitlines() if x.strip()])

    _, cpu = time_interleaved(units, rounds)
    med = {n: median(v) for n, v in cpu.items()}
    ln = {n: lines(c) for n, c in units.items()}
    b = med["baseline"]
    extra = [(n, med[n] - b, ln[n] - ln["baseline"]) for n in units if n.startswith("<")]
    return {
        "baseline": (b, ln["baseline"]),
        "headers": (med["every header sockact includes"] - b, ln["every header sockact includes"] - ln["baseline"]),
        "sockact": (med["sockact.hpp"] - med["every header sockact includes"],
                    ln["sockact.hpp"] - ln["every header sockact includes"]),
        "each": sorted(extra, key=lambda t: -t[2]),
    }


# ---------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------
def machine():
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "load": " ".join(open("/proc/loadavg").read().split()[:3]),
    }


def fmt_us(x):
    return f"{x / 1000:.2f} ms" if x >= 1000 else f"{x:.0f} us"


def status(ok):
    return "PASS" if ok else "MISS"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build")
    ap.add_argument("--quick", action="store_true", help="fewer rounds (a smoke run)")
    ap.add_argument("--only", default="cold,steady,idle,compile")
    ap.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    ap.add_argument("--json", default=None, help="also write the raw samples here")
    a = ap.parse_args()
    only = set(a.only.split(","))
    build = os.path.abspath(a.build)
    m0 = machine()
    started = time.time()
    rows = []  # (section, measurement, result, reference, ratio, target, status)
    notes = []
    raw = {}

    if "cold" in only:
        rounds = 12 if a.quick else 40
        s = cold_start(build, rounds)
        raw["cold"] = s
        med = {k: median(v) for k, v in s.items()}
        iqr = {k: quartiles(v) for k, v in s.items()}

        def res(k):
            q1, q3 = iqr[k]
            return f"{fmt_us(med[k])} (IQR {fmt_us(q1)}-{fmt_us(q3)}, n={len(s[k])})"

        rows.append(("cold start", "floor (bare C responder, dynamic)", res("floor"), "", "", "", ""))
        rows.append(("cold start", "floor-static", res("floor-static"), "", "", "", ""))
        for e in EXAMPLES:
            limit = 1.1 if e == "example-posix-http" else 1.3
            for kind in KINDS:
                k = e + kind
                floor = "floor-static" if kind == "-static" else "floor"
                ratio = med[k] / med[floor]
                st = status(ratio <= limit)
                if kind == "-shared-libstdcxx":
                    st = f"({st})"  # how the examples were linked before; for comparison
                rows.append(("cold start", f"{k} vs {floor}", res(k), fmt_us(med[floor]), f"{ratio:.2f}x",
                             f"<= {limit}x", st))
        if "adapter-node" in med:
            rows.append(("cold start", "adapter-node (SvelteKit 2, Node " + node_version() + ")",
                         res("adapter-node"), "", "", "", ""))
            for e in EXAMPLES:
                for kind in ("", "-static"):
                    k = e + kind
                    speed = med["adapter-node"] / med[k]
                    rows.append(("cold start", f"{k} faster than adapter-node", fmt_us(med[k]),
                                 fmt_us(med["adapter-node"]), f"{speed:.0f}x", ">= 30x", status(speed >= 30)))
        else:
            rows.append(("cold start", "adapter-node", "not built (see bench/README.md)", "", "", ">= 30x", "MISS"))
        log("start-up cost: each program run with a bad option (load, initialise, exit)")
        raw["startup"] = startup_cost(build, 10 if a.quick else 30)

    if "steady" in only:
        rounds, seconds = (3, 2) if a.quick else (9, 2)
        s = steady_state(build, rounds, seconds)
        raw["steady"] = {f"{e}/{m}": v for (e, m), v in s.items()}
        for e in EXAMPLES:
            act, bound = median(s[(e, "activated")]), median(s[(e, "bound")])
            # The median of the rounds' paired ratios: drift in the machine's load
            # between rounds cancels out, which a ratio of medians does not do.
            pairs = [x / y for x, y in zip(s[(e, "activated")], s[(e, "bound")])]
            ratio = median(pairs)
            q1, q3 = quartiles(pairs)
            rows.append(("steady state", f"{e}: activated vs bound (wrk -t2 -c50 -d{seconds}s, {rounds} pairs; "
                         f"median of paired ratios, IQR {q1:.2f}-{q3:.2f})",
                         f"{act:,.0f} req/s", f"{bound:,.0f} req/s", f"{ratio:.3f}", ">= 0.98",
                         status(ratio >= 0.98)))

    if "idle" in only:
        res, alloc_ok, alloc_msg = idle_bench(build, a.quick)
        raw["idle"] = res
        for t in (1, 2):
            base = res.get(f"atomic_pair/threads:{t}")
            mine = res.get(f"idle_begin_end/threads:{t}")
            if base and mine:
                ratio = mine / base
                rows.append(("idle tracking", f"begin/end vs atomic ++/-- ({t} thread{'s' if t > 1 else ''}, CPU)",
                             f"{mine:.2f} ns", f"{base:.2f} ns", f"{ratio:.2f}x", "<= 2x", status(ratio <= 2)))
        rows.append(("idle tracking", "allocations in 1e6 begin/end per thread (idle_alloc_test, also a ctest)",
                     alloc_msg, "", "", "0", status(alloc_ok)))

    if "compile" in only:
        rounds = 5 if a.quick else 7
        wall, cpu = compile_cost(build, rounds)
        raw["compile"] = {"wall": wall, "cpu": cpu}
        # Targets of issue 10 (the integration redesign).
        pairs = [("core", "baseline", "<sockact/sockact.hpp> vs <string>,<vector>,<system_error>", 1.5),
                 ("receive", "baseline", "<sockact/listen_fds.hpp> (receive only) vs the same", 1.2),
                 ("poll driver", "baseline", "<sockact/poll_driver.hpp> (activation + driver) vs the same", None)]
        if "boost.asio" in cpu:
            pairs.append(("asio adapter (boost)", "boost.asio", "<sockact/asio.hpp> vs <boost/asio.hpp>", 1.1))
        if "asio" in cpu:
            pairs.append(("asio adapter (standalone)", "asio", "<sockact/asio.hpp> vs <asio.hpp>", 1.1))
        pairs.append(("libuv adapter", "uv.h", "<sockact/libuv.hpp> vs <uv.h> (a C header)", None))
        pairs.append(("libuv adapter", "uv.h + std", "<sockact/libuv.hpp> vs <uv.h>,<string>,<vector>,<system_error>", 1.5))
        # Each sockact unit twice: header-only (the default) and with
        # SOCKACT_SEPARATE_COMPILATION, against the same reference.
        pairs = [p for pair in pairs for p in (pair, (pair[0] + SEPARATE,) + pair[1:])]
        for mine, base, label, limit in pairs:
            if mine not in cpu:
                continue
            mode = "SOCKACT_SEPARATE_COMPILATION" if mine.endswith(SEPARATE) else "header-only"
            mc, bc = median(cpu[mine]), median(cpu[base])
            mw, bw = median(wall[mine]), median(wall[base])
            ratio = mc / bc
            rows.append(("compile cost", f"{label}, {mode} (g++ -O2 -c, CPU; wall {mw / bw:.2f}x)",
                         f"{mc * 1000:.0f} ms", f"{bc * 1000:.0f} ms", f"{ratio:.2f}x",
                         f"<= {limit}x" if limit else "report", status(ratio <= limit) if limit else "-"))
            if mine == "core" and ratio > 1.5:
                bd = core_breakdown(build, 3)
                raw["compile_breakdown"] = bd
                top = ", ".join(f"{h} +{n:,} lines/+{d * 1000:.0f} ms" for h, d, n in bd["each"][:8])
                notes.append(
                    "Where the core's compile time goes (CPU medians, preprocessed non-blank lines): the baseline "
                    f"TU {bd['baseline'][0] * 1000:.0f} ms/{bd['baseline'][1]:,} lines; the standard and system "
                    f"headers sockact includes add {bd['headers'][0] * 1000:.0f} ms/{bd['headers'][1]:,} lines; "
                    f"sockact's own code adds {bd['sockact'][0] * 1000:.0f} ms/{bd['sockact'][1]:,} lines. "
                    f"Each header alone on top of the baseline, largest first: {top}.")

    m1 = machine()
    minutes = (time.time() - started) / 60
    table = render(rows, m0, m1, minutes, raw.get("startup"), notes)
    print(table)
    with open(a.results, "w") as f:
        f.write(table)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(raw, f, indent=1, default=str)
    return 0 if all(r[6] != "MISS" for r in rows) else 1


def node_version():
    try:
        return subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip().lstrip("v")
    except OSError:
        return "?"


def render(rows, m0, m1, minutes, startup, notes):
    out = ["# sockact benchmark results", "",
           f"Machine: {m0['nproc']} CPUs, {m0['cpu']}, Linux {m0['kernel']}; "
           f"load average {m0['load']} at start, {m1['load']} at the end; run took {minutes:.1f} min.",
           f"Generated by scripts/bench.sh on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
           "Ratios of medians, measured interleaved; absolute numbers depend on the machine and its load.",
           "",
           "| section | measurement | result | reference | ratio | target | status |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        out.append("| " + " | ".join(str(x) for x in r) + " |")
    passed = sum(1 for r in rows if r[6] == "PASS")  # parenthesised rows are not targets
    missed = [r[1] for r in rows if r[6] == "MISS"]
    out += ["", f"{passed} targets met, {len(missed)} missed" + (": " + "; ".join(missed) if missed else "") + "."]
    if startup:
        out += ["", "Where a cold start goes beyond the floor: each program started with a bad option, so it only "
                "loads, initialises and exits (median CPU time and page faults; not a target):", "",
                "| program | CPU | page faults |", "| --- | --- | --- |"]
        for name, (cpu, faults) in startup.items():
            out.append(f"| {name} | {fmt_us(cpu)} | {faults:.0f} |")
    if any(r[6].startswith("(") for r in rows):
        out += ["", "Parenthesised: the examples linked with a shared libstdc++ (the default before "
                "SOCKACT_EXAMPLES_STATIC_CXX_RUNTIME), to show what loading it costs; not one of the targets."]
    for n in notes:
        out += ["", n]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main())
