#!/usr/bin/env python3
"""Requests that land around the idle deadline (issue 23, item 8), side by side.

Each server runs under sockact-run (which holds the listening socket and starts
the program on the first connection, and again after it exits) with
IDLE_TIMEOUT=1:
  today         the previous example-posix-http (--today), whose idle drain
                stops accepting and lingers up to 2 s on a pool's keep-alive
                connection before it exits;
  after         the current example-posix-http (--after), whose drain keeps
                accepting: a new connection returns it to serving;
  adapter-node  bench/adapter-node (SvelteKit 2 on adapter-node, which adopts
                fd 3 and exits after IDLE_TIMEOUT seconds without requests);
                skipped without node or without its build/index.js.

Load, the same for each server (the gaps come from one seed): requests spaced
by gaps drawn uniformly from 0.8-1.4 s (end of one to the start of the next),
so they land just before and just after the 1 s deadline, alternating between
  fresh   a new TCP connection per request (`Connection: close`), and
  pooled  one keep-alive connection kept between requests, as an HTTP client
          pool keeps it: it is not closed when the server sends FIN; before
          reuse it is polled, and when it is readable (EOF, reset) it is
          closed and a new one opened, within the request's time. A reused
          connection that fails before the first byte of the answer is
          retried once on a new one (as pools do for idempotent requests);
          the table counts those retries.
Each request is timed from its start (connect, or the poll of the pooled
connection) to the last byte of a complete answer. A failure is a timeout
(--timeout, 10 s), a reset or EOF (after the one retry) or a status other than
200. Latency percentiles are over the requests that did not fail.

The servers are interleaved in blocks (--block requests of one server, then
the next; the order rotates each round). A block starts once that server's
program has exited, with one "cold start" sample (a fresh request to the exited
program) and --warm back-to-back fresh requests ("warm request"), then the
block's boundary requests. The issue's goal: fresh p99 at the boundary
<= 2 x (warm p50 + cold-start median).

Program starts ("activations") are the `sockact-run: activation N:` lines of
each sockact-run's log, less the cold-start samples. Each request also records
the program's pid before and after it (sockact-run's child), which says what
it landed on: the running program, an exited one (a cold start), or one that
was draining (it waited for that program to exit, then for a cold start). The
per-request data goes to a CSV (--csv).

  bench/idle_boundary.py --today PATH --after PATH --sockact-run PATH
        [--node NODE | --no-node] [--requests 200 | --quick] [--results FILE]

Exit status: 0 when "after" meets the goal, 1 when it misses, 2 on errors.
"""
import argparse
import csv
import os
import platform
import random
import re
import select
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ADAPTER_NODE = os.path.join(HERE, "adapter-node")
SECTION = "## Requests at the idle boundary (issue 23)"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def now_ms():
    return time.perf_counter_ns() / 1e6


# ---------------------------------------------------------------------------
# HTTP/1.1 client: just enough for `GET /` (Content-Length, chunked, or EOF).
# ---------------------------------------------------------------------------
class HttpError(Exception):
    def __init__(self, kind, got_bytes):
        super().__init__(kind)
        self.kind = kind            # "timeout", "reset", "eof", "status NNN", ...
        self.got_bytes = got_bytes  # whether any byte of the answer had come


class Reader:
    def __init__(self, sock, deadline):
        self.sock, self.deadline, self.buf, self.got = sock, deadline, b"", False

    def more(self):
        left = (self.deadline - now_ms()) / 1000
        if left <= 0:
            raise HttpError("timeout", self.got)
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise HttpError("timeout", self.got)
        except ConnectionResetError:
            raise HttpError("reset", self.got)
        except OSError as e:
            raise HttpError(f"recv: {e.strerror}", self.got)
        if not chunk:
            raise HttpError("eof", self.got)
        self.got = True
        self.buf += chunk

    def until(self, sep):
        while sep not in self.buf:
            self.more()
        i = self.buf.index(sep)
        out, self.buf = self.buf[:i], self.buf[i + len(sep):]
        return out

    def exactly(self, n):
        while len(self.buf) < n:
            self.more()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def request(sock, port, keep_alive, deadline):
    """Sends GET / and reads the whole answer. Returns (status, server_closes)."""
    conn = "keep-alive" if keep_alive else "close"
    try:
        sock.sendall(f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: {conn}\r\n\r\n".encode())
    except (BrokenPipeError, ConnectionResetError):
        raise HttpError("reset", False)
    r = Reader(sock, deadline)
    head = r.until(b"\r\n\r\n").decode("latin-1").split("\r\n")
    parts = head[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise HttpError("bad status line", True)
    status = int(parts[1])
    headers = {}
    for line in head[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip().lower()
    if "chunked" in headers.get("transfer-encoding", ""):
        while True:
            size = int(r.until(b"\r\n").split(b";")[0], 16)
            if size == 0:
                while r.until(b"\r\n"):  # trailers, up to the empty line
                    pass
                break
            r.exactly(size + 2)
    elif "content-length" in headers:
        r.exactly(int(headers["content-length"]))
    else:
        try:
            while True:
                r.more()
        except HttpError as e:
            if e.kind != "eof":
                raise
    closes = headers.get("connection") == "close" or parts[0] == "HTTP/1.0"
    return status, closes


def connect(port, deadline):
    left = (deadline - now_ms()) / 1000
    if left <= 0:
        raise HttpError("timeout", False)
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=left)
    except socket.timeout:
        raise HttpError("connect timeout", False)
    except OSError as e:
        raise HttpError(f"connect: {e.strerror}", False)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def fresh_request(port, timeout_s):
    """A new connection, `Connection: close`, closed after the answer."""
    t0 = now_ms()
    deadline = t0 + timeout_s * 1000
    res = {"error": "", "status": 0, "stale": False, "retried": False}
    s = None
    try:
        s = connect(port, deadline)
        res["status"], _ = request(s, port, False, deadline)
        if res["status"] != 200:
            res["error"] = f"status {res['status']}"
    except HttpError as e:
        res["error"] = e.kind
    finally:
        if s:
            s.close()
    res["ms"] = now_ms() - t0
    return res


class Pool:
    """One keep-alive connection, kept as an HTTP client pool keeps it."""

    def __init__(self, port):
        self.port, self.sock = port, None

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None

    def request(self, timeout_s):
        t0 = now_ms()
        deadline = t0 + timeout_s * 1000
        res = {"error": "", "status": 0, "stale": False, "retried": False}
        if self.sock is not None:
            # The pool's check before reuse: readable means EOF, a reset or stray bytes.
            r, _, _ = select.select([self.sock], [], [], 0)
            if r:
                res["stale"] = True
                self.close()
        try:
            reused = self.sock is not None
            if not reused:
                self.sock = connect(self.port, deadline)
            try:
                res["status"], closes = request(self.sock, self.port, True, deadline)
            except HttpError as e:
                if not (reused and not e.got_bytes and e.kind != "timeout"):
                    raise
                # The server closed it between the check and the request: once more, on a new one.
                res["retried"] = True
                self.close()
                self.sock = connect(self.port, deadline)
                res["status"], closes = request(self.sock, self.port, True, deadline)
            if closes:
                self.close()
            if res["status"] != 200:
                res["error"] = f"status {res['status']}"
        except HttpError as e:
            res["error"] = e.kind
            self.close()
        res["ms"] = now_ms() - t0
        return res


# ---------------------------------------------------------------------------
# Servers under sockact-run
# ---------------------------------------------------------------------------
class Server:
    def __init__(self, name, argv, sockact_run, idle, logdir):
        self.name, self.argv = name, argv
        self.port = free_port()
        self.log_path = os.path.join(logdir, f"{name}.log")
        env = {k: v for k, v in os.environ.items()
               if k not in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET", "IDLE_TIMEOUT",
                            "WATCHDOG_USEC", "WATCHDOG_PID")}
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sockact_run, "-l", f"127.0.0.1:{self.port}", "-E", f"IDLE_TIMEOUT={idle}", "--"] + argv,
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=subprocess.STDOUT, env=env,
            start_new_session=True)
        deadline = time.monotonic() + 10
        while "listening on" not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sockact-run for {name} did not listen:\n{self.log()}")
            time.sleep(0.01)
        self.pool = Pool(self.port)

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def activations(self):
        return re.findall(r"^sockact-run: activation \d+: .*$", self.log(), re.M)

    def program(self):
        """The pid of the running program (sockact-run's child), or None."""
        kids = []
        try:
            for t in os.listdir(f"/proc/{self.proc.pid}/task"):
                with open(f"/proc/{self.proc.pid}/task/{t}/children") as f:
                    kids += [int(x) for x in f.read().split()]
        except OSError:
            pass
        return kids[0] if kids else None

    def wait_exited(self, limit_s=30):
        """Waits for the program to exit (idle). Returns the seconds waited, or None."""
        t0 = time.monotonic()
        while self.program() is not None:
            if time.monotonic() - t0 > limit_s:
                return None
            time.sleep(0.01)
        return time.monotonic() - t0

    def stop(self):
        self.pool.close()
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGTERM, 5)):  # the second one: SIGKILL to PROGRAM
            if self.proc.poll() is not None:
                break
            self.proc.send_signal(sig)
            try:
                self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.logf.close()


# ---------------------------------------------------------------------------
# Statistics and formatting
# ---------------------------------------------------------------------------
def pct(xs, p):
    """Percentile with linear interpolation between closest ranks."""
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def fmt_ms(v):
    if v != v:
        return "-"
    if v >= 1000:
        return f"{v / 1000:.2f} s"
    if v >= 100:
        return f"{v:.0f} ms"
    if v >= 10:
        return f"{v:.1f} ms"
    return f"{v:.2f} ms"


def landed(r):
    """What a request met: the running program, an exited one, or a draining one."""
    b, a = r["pid_before"], r["pid_after"]
    if b is None:
        return "exited"
    if a is not None and a != b:
        return "draining"
    return "running"


LANDED = {"running": "the running program (no start)",
          "exited": "an exited program (cold start)",
          "draining": "a draining program (its exit, then a cold start)"}


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
            "load": " ".join(f"{x:.2f}" for x in os.getloadavg())}


# ---------------------------------------------------------------------------
def run(a):
    logdir = tempfile.mkdtemp(prefix="idle_boundary.")
    specs = [("today", [a.today]), ("after", [a.after])]
    node = None if a.no_node else (a.node or shutil.which("node"))
    node_entry = os.path.join(ADAPTER_NODE, "build", "index.js")
    skipped = []
    if node and os.path.exists(node_entry):
        specs.append(("adapter-node", [node, node_entry]))
    elif not a.no_node:
        skipped.append("adapter-node: " + ("no node" if not node else f"{node_entry} missing (scripts/bench.sh builds it)"))
        log("idle_boundary: " + skipped[-1] + "; skipped")
    for name, argv in specs:
        if not os.access(argv[0], os.X_OK):
            raise RuntimeError(f"{name}: {argv[0]} is not executable")

    servers = []
    try:
        for name, argv in specs:
            servers.append(Server(name, argv, a.sockact_run, a.idle_timeout, logdir))
        return measure(a, servers, logdir, skipped)
    finally:
        for s in servers:
            s.stop()


def measure(a, servers, logdir, skipped):
    m0 = machine()
    started = time.time()
    lo, hi = a.gap
    rngs = {s.name: random.Random(a.seed) for s in servers}  # the same gaps for every server
    index = {s.name: 0 for s in servers}
    rows = []      # boundary requests
    warm = {s.name: [] for s in servers}
    cold = {s.name: [] for s in servers}
    notes = []
    blocks = (a.requests + a.block - 1) // a.block
    t_run = now_ms()
    for rnd in range(blocks):
        order = servers[rnd % len(servers):] + servers[:rnd % len(servers)]
        if rnd % 2:
            order.reverse()
        for s in order:
            n = min(a.block, a.requests - index[s.name])
            waited = s.wait_exited()
            if waited is None:
                # Only a program that never goes idle gets here; the pool's connection is the
                # one thing the client holds open.
                notes.append(f"{s.name}: the program had not exited 30 s after block {rnd}'s start; "
                             "closed the pooled connection")
                s.pool.close()
                if s.wait_exited() is None:
                    notes.append(f"{s.name}: still running 30 s later; its cold sample is not cold")
            before = s.program()
            r = fresh_request(s.port, a.timeout)
            if before is None and s.program() is not None and not r["error"]:
                cold[s.name].append(r["ms"])
            else:
                notes.append(f"{s.name}: cold sample of block {rnd} dropped "
                             f"({r['error'] or 'the program was running'})")
            for _ in range(a.warm):
                r = fresh_request(s.port, a.timeout)
                if r["error"]:
                    notes.append(f"{s.name}: warm request failed: {r['error']}")
                else:
                    warm[s.name].append(r["ms"])
            log(f"idle_boundary: {s.name}: block {rnd + 1}/{blocks}, {n} requests "
                f"(cold {fmt_ms(cold[s.name][-1]) if cold[s.name] else '-'})")
            for _ in range(n):
                i = index[s.name]
                index[s.name] += 1
                gap = rngs[s.name].uniform(lo, hi)
                time.sleep(gap)
                kind = "fresh" if i % 2 == 0 else "pooled"
                pid_before = s.program()
                t_start = now_ms() - t_run
                r = fresh_request(s.port, a.timeout) if kind == "fresh" else s.pool.request(a.timeout)
                r.update(server=s.name, i=i, block=rnd, kind=kind, gap_s=gap, t_s=t_start / 1000,
                         pid_before=pid_before, pid_after=s.program())
                r["landed"] = landed(r)
                rows.append(r)
                if r["error"]:
                    log(f"idle_boundary: {s.name} #{i} ({kind}, gap {gap:.3f} s): {r['error']} "
                        f"after {fmt_ms(r['ms'])}")
    for s in servers:
        s.wait_exited(10)
    m1 = machine()
    minutes = (time.time() - started) / 60
    acts = {}
    for s in servers:
        s.stop()
        acts[s.name] = s.activations()
    return report(a, servers, rows, warm, cold, acts, notes, skipped, m0, m1, minutes, logdir)


def report(a, servers, rows, warm, cold, acts, notes, skipped, m0, m1, minutes, logdir):
    names = [s.name for s in servers]
    csv_path = a.csv or os.path.join(logdir, "requests.csv")
    fields = ["server", "i", "block", "kind", "gap_s", "t_s", "ms", "status", "error", "stale", "retried",
              "pid_before", "pid_after", "landed"]
    with open(csv_path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{r[k]:.3f}" if isinstance(r[k], float) else r[k]) for k in fields})

    out = ["| server | clients | requests | p50 | p99 | max | failed | pool reconnects / retries | program starts |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    verdict = {}
    for name in names:
        mine = [r for r in rows if r["server"] == name]
        for kind in ("fresh", "pooled", "all"):
            rs = [r for r in mine if kind == "all" or r["kind"] == kind]
            ok = [r["ms"] for r in rs if not r["error"]]
            failed = len(rs) - len(ok)
            starts = sum(1 for r in rs if r["landed"] != "running")
            pool = (f"{sum(r['stale'] for r in rs)} / {sum(r['retried'] for r in rs)}"
                    if kind != "fresh" else "")
            if kind == "all":
                logged = len(acts[name]) - len(cold[name])
                starts = f"{starts} ({logged} in sockact-run's log)"
            out.append(f"| {name} | {kind} | {len(rs)} | {fmt_ms(pct(ok, 50))} | {fmt_ms(pct(ok, 99))} | "
                       f"{fmt_ms(max(ok) if ok else float('nan'))} | {failed} | {pool} | {starts} |")
    out += ["", "| server | warm request (p50) | one cold start (median) | warm + cold | fresh p99 at the boundary "
            "| fresh p99 / (warm + cold) | goal <= 2x |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for name in names:
        w, c = pct(warm[name], 50), statistics.median(cold[name]) if cold[name] else float("nan")
        fresh = [r for r in rows if r["server"] == name and r["kind"] == "fresh"]
        fresh_ok = [r["ms"] for r in fresh if not r["error"]]
        failed = len(fresh) - len(fresh_ok)
        p99 = pct(fresh_ok, 99)
        ratio = p99 / (w + c)
        ok = ratio <= 2 and failed == 0
        verdict[name] = ok
        extra = f", {failed} failed" if failed else ""
        rtxt = f"{ratio:.2f}x" if ratio < 10 else f"{ratio:.0f}x"
        out.append(f"| {name} | {fmt_ms(w)} (n={len(warm[name])}) | {fmt_ms(c)} (n={len(cold[name])}; "
                   f"{fmt_ms(min(cold[name]) if cold[name] else float('nan'))}-"
                   f"{fmt_ms(max(cold[name]) if cold[name] else float('nan'))}) | {fmt_ms(w + c)} | "
                   f"{fmt_ms(p99)}{extra} | {rtxt} | {'PASS' if ok else 'MISS'} |")
    out += ["", "What each request landed on (from the program's pid before and after it):", "",
            "| server | clients | landed on | requests | p50 | max | gap before it (range) |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for name in names:
        for kind in ("fresh", "pooled"):
            for where in ("running", "exited", "draining"):
                rs = [r for r in rows if r["server"] == name and r["kind"] == kind and r["landed"] == where]
                if not rs:
                    continue
                ok = [r["ms"] for r in rs if not r["error"]]
                gaps = [r["gap_s"] for r in rs]
                out.append(f"| {name} | {kind} | {LANDED[where]} | {len(rs)} | {fmt_ms(pct(ok, 50))} | "
                           f"{fmt_ms(max(ok) if ok else float('nan'))} | {min(gaps):.2f}-{max(gaps):.2f} s |")
    for name in names:
        if verdict[name] and not any(r["error"] for r in rows if r["server"] == name):
            continue
        worst = sorted((r for r in rows if r["server"] == name and r["kind"] == "fresh"),
                       key=lambda r: (not r["error"], -r["ms"]))[:8]
        out += ["", f"{name}: the slowest fresh requests" + (" (and every failed one)" if any(
                r["error"] for r in rows if r["server"] == name) else "") + ":", "",
                "| # | at | gap before it | time | result | landed on | pid before -> after |",
                "| --- | --- | --- | --- | --- | --- | --- |"]
        failed_any = [r for r in rows if r["server"] == name and r["error"] and r not in worst]
        for r in worst + failed_any:
            out.append(f"| {r['i']} ({r['kind']}) | {r['t_s']:.1f} s | {r['gap_s']:.3f} s | {fmt_ms(r['ms'])} | "
                       f"{r['error'] or r['status']} | {r['landed']} | {r['pid_before']} -> {r['pid_after']} |")
    table = "\n".join(out)

    cmd = "bench/idle_boundary.py " + " ".join(shlex.quote(x) for x in sys.argv[1:])
    verdict_line = []
    for name in names:
        verdict_line.append(f"{name} {'meets' if verdict[name] else 'misses'} the goal")
    header = [
        SECTION, "",
        f"Run on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: {m0['nproc']} CPUs "
        f"(nproc), {m0['cpu']}, Linux {m0['kernel']}; load average {m0['load']} at start, {m1['load']} at the "
        f"end; run took {minutes:.1f} min. Command: `{cmd}`.",
        "",
        f"IDLE_TIMEOUT={a.idle_timeout} s; {a.requests} requests per server with gaps drawn uniformly from "
        f"{a.gap[0]}-{a.gap[1]} s (seed {a.seed}, the same gaps for every server), alternating fresh (new "
        "connection, `Connection: close`) and pooled (one keep-alive connection, not closed on the server's FIN; "
        "polled before reuse and reopened when readable, within the request's time; a reused one that fails "
        "before the answer's first byte is retried once); timed from the start of the request to the last byte "
        f"of the answer; a failure is a timeout ({a.timeout:g} s), a reset or a status other than 200. Servers "
        f"interleaved in blocks of {a.block}; each block starts with a cold-start sample and {a.warm} back-to-back "
        "warm requests (fresh connections). Percentiles are over the requests that did not fail. Program starts: "
        "requests during which the program's pid appeared or changed; sockact-run's count is its activation "
        "lines less the cold-start samples. Goal (issue 23): fresh p99 <= 2 x (warm + one cold start), with no "
        "fresh request failed.",
        "",
        table,
        "",
        "; ".join(verdict_line) + "."]
    if skipped:
        header += ["", "Skipped: " + "; ".join(skipped) + "."]
    if notes:
        header += ["", "Notes: " + "; ".join(notes) + "."]
    text = "\n".join(header) + "\n"
    print(text)
    log(f"idle_boundary: per-request data in {csv_path}, sockact-run logs in {logdir}")
    if a.results:
        with open(a.results, "a") as f:
            f.write("\n" + text)
    if "after" not in verdict:
        return 0
    return 0 if verdict["after"] else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--today", required=True, help="example-posix-http built before the fix")
    ap.add_argument("--after", required=True, help="example-posix-http built with the fix")
    ap.add_argument("--sockact-run", required=True, help="the sockact-run binary")
    ap.add_argument("--node", help="node for adapter-node (default: node on PATH)")
    ap.add_argument("--no-node", action="store_true", help="leave adapter-node out")
    ap.add_argument("--requests", type=int, default=200, help="boundary requests per server (default 200)")
    ap.add_argument("--quick", action="store_true", help="40 requests per server, a check that it works")
    ap.add_argument("--block", type=int, default=20, help="requests per block of one server (default 20)")
    ap.add_argument("--warm", type=int, default=5, help="back-to-back warm requests per block (default 5)")
    ap.add_argument("--idle-timeout", type=int, default=1, help="IDLE_TIMEOUT for the servers (default 1)")
    ap.add_argument("--gap", type=float, nargs=2, default=(0.8, 1.4), metavar=("MIN", "MAX"),
                    help="gap between requests, seconds (default 0.8 1.4)")
    ap.add_argument("--timeout", type=float, default=10, help="per-request timeout, seconds (default 10)")
    ap.add_argument("--seed", type=int, default=23)
    ap.add_argument("--csv", help="per-request data (default: in the run's temporary directory)")
    ap.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"),
                    help="append the section here (default bench/RESULTS.md; '' for none)")
    a = ap.parse_args()
    if a.quick:
        a.requests = 40
    if not os.access(a.sockact_run, os.X_OK):
        raise SystemExit(f"idle_boundary: {a.sockact_run} is not executable")
    try:
        return run(a)
    except (RuntimeError, OSError) as e:
        log(f"idle_boundary: {e}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
