#!/usr/bin/env python3
"""Restarts with a slow request in flight (issue 24), side by side.

A server (example-posix-http) is restarted while a 5 s request (/delay/5000)
is in flight and a client opens a new connection every 50 ms; each new
client's time to first byte (connect to the first byte of the answer) is
measured, and whether it failed. The restarts, one scenario each:

  serial (sockact-run)       the reference: SIGTERM to the program; it drains
                             (5 s, its slow request) and exits; sockact-run
                             holds the socket and starts the next one on the
                             next connection: new clients wait in the queue
  --watch (sockact-run)      `sockact-run --watch`: the program file touched
  SIGUSR2 (sockact-run)      `kill -USR2 sockact-run`
  serial (systemd)           the reference under systemd: `systemctl restart`
                             of a socket-activated service (stop, then start)
  overlap (systemd)          examples/overlap: two instances share the socket
                             (Sockets=), overlap-restart.sh starts the other
                             one, waits for READY=1, stops the old one

The systemd rows run under the real manager of tests/systemd/harness.sh
(root; skipped otherwise, or with --no-systemd), with the units of
examples/overlap (a drop-in sets SHUTDOWN_TIMEOUT=30, turns the idle exit off,
as for sockact-run, and raises StartLimitBurst= for the cold-start samples).

Per scenario: 20 warm requests (fresh connections, 50 ms apart) before the
restart ("warm": their median TTFB); the slow request at t=0; the restart at
t=0.5 s; new clients every 50 ms from t=0.5 s to t=6.5 s ("new clients":
p50, p99, max TTFB, failed); then 5 cold starts (the program stopped while
idle, then one request: "cold", median). A failure is a refused or reset
connection, a timeout (15 s) or an answer that is not 200. The issue's goal:
new clients' p99 <= 2 x (warm + cold), 0 failed, the slow request answered.

  bench/overlap_restart.py --sockact-run PATH --server PATH [--no-systemd]
        [--results FILE]

Exit status: 0 when every overlapping restart meets the goal, 1 when one
misses, 2 on errors.
"""
import argparse
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SECTION = "## Restarts with a slow request in flight (issue 24)"
SLOW_MS = 5000
RESTART_AT = 0.5  # s after the slow request
WINDOW = 6.0  # s of new clients from the restart on
EVERY = 0.05  # s between new clients
TIMEOUT = 15.0


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port, path="/"):
    """One request on a fresh connection: (ok, ttfb s, body or why)."""
    start = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
            s.settimeout(TIMEOUT)
            s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            data = s.recv(65536)
            ttfb = time.monotonic() - start
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError as e:
        return (False, time.monotonic() - start, type(e).__name__)
    text = data.decode(errors="replace")
    if not text.startswith("HTTP/1.1 200"):
        return (False, ttfb, "answer %r" % text[:60])
    return (True, ttfb, text.split("\r\n\r\n", 1)[-1])


def pid_in(body):
    return body.split("pid=", 1)[1].split()[0] if "pid=" in body else ""


def wait_until(what, predicate, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.02)
    raise RuntimeError(f"{what}: not within {seconds} s")


def percentile(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    return v[min(len(v) - 1, max(0, int(round(p / 100 * len(v) + 0.5)) - 1))]


def measure(port, restart, stop_program, label):
    """The scenario: warm requests, the slow one, the restart, new clients, cold starts."""
    warm = []
    for _ in range(20):
        ok, ttfb, body = get(port)
        if not ok:
            raise RuntimeError(f"{label}: a warm request failed: {body}")
        warm.append(ttfb)
        time.sleep(EVERY)
    slow = {}

    def slow_request():
        slow["result"] = get(port, f"/delay/{SLOW_MS}")
        slow["done"] = time.monotonic()

    t0 = time.monotonic()
    slow_thread = threading.Thread(target=slow_request)
    slow_thread.start()
    time.sleep(RESTART_AT)
    restart_at = time.monotonic()
    restart_thread = threading.Thread(target=restart)
    restart_thread.start()
    results, threads = [], []
    lock = threading.Lock()

    def client():
        r = get(port)
        with lock:
            results.append(r)

    n = int(WINDOW / EVERY)
    for i in range(n):
        t = threading.Thread(target=client)
        t.start()
        threads.append(t)
        time.sleep(max(0.0, restart_at + (i + 1) * EVERY - time.monotonic()))
    for t in threads + [slow_thread, restart_thread]:
        t.join()
    ok_slow, _, slow_body = slow["result"]
    cold = []
    for _ in range(5):
        stop_program()
        ok, ttfb, body = get(port)
        if not ok:
            raise RuntimeError(f"{label}: a cold start failed: {body}")
        cold.append(ttfb)
    ttfbs = [r[1] for r in results if r[0]]
    failed = [r[2] for r in results if not r[0]]
    row = {
        "label": label,
        "warm": statistics.median(warm),
        "cold": statistics.median(cold),
        "n": len(results),
        "failed": len(failed),
        "why": sorted(set(failed))[:3],
        "p50": percentile(ttfbs, 50),
        "p99": percentile(ttfbs, 99),
        "max": max(ttfbs) if ttfbs else float("nan"),
        "slow": f"answered after {slow['done'] - t0:.2f} s" if ok_slow and f"delayed {SLOW_MS} ms" in slow_body
        else f"failed: {slow_body[:40]}",
        "pids": len(set(pid_in(r[2]) for r in results if r[0])),
    }
    row["goal"] = 2 * (row["warm"] + row["cold"])
    row["met"] = row["failed"] == 0 and row["p99"] <= row["goal"] and row["slow"].startswith("answered")
    log(f"{label}: {row}")
    return row


def gone(pid):
    """Has the process exited (a zombie has)?"""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


class sockact_run:
    """sockact-run holding the socket, the server a copy in a folder of its own."""

    def __init__(self, tool, server, tmp, watch):
        self.port = free_port()
        self.bin = os.path.join(tmp, "app")
        shutil.copy2(server, self.bin)
        self.log_path = os.path.join(tmp, "sockact-run.%s.log" % ("watch" if watch else "plain"))
        args = [tool, "-l", f"127.0.0.1:{self.port}", "--fdname", "web", "-E", "SHUTDOWN_TIMEOUT=30",
                "-E", "IDLE_TIMEOUT=0"] + (["--watch"] if watch else []) + ["--", self.bin]
        self.log_file = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=self.log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_until("sockact-run listening", lambda: "starts on the first" in open(self.log_path).read(), 10)

    def program_pid(self):
        ok, _, body = get(self.port)
        if not ok:
            raise RuntimeError(f"sockact-run: {body}")
        return int(pid_in(body))

    def stop_program(self):
        pid = self.program_pid()
        os.kill(pid, signal.SIGTERM)
        wait_until("the program's exit", lambda: gone(pid), 10)
        time.sleep(0.05)  # sockact-run reaps it and polls the socket again

    def close(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        self.log_file.close()


def sockact_run_rows(a, tmp):
    rows = []
    for label, watch, how in (("serial (sockact-run): SIGTERM to the program", False, "serial"),
                              ("--watch (sockact-run): the file touched", True, "watch"),
                              ("SIGUSR2 (sockact-run)", False, "usr2")):
        d = tempfile.mkdtemp(dir=tmp)
        r = sockact_run(a.sockact_run, a.server, d, watch)
        try:
            pid = r.program_pid()
            if how == "serial":
                def restart():
                    os.kill(pid, signal.SIGTERM)
            elif how == "watch":
                def restart():
                    os.utime(r.bin)
            else:
                def restart():
                    r.proc.send_signal(signal.SIGUSR2)
            rows.append(measure(r.port, restart, r.stop_program, label))
        finally:
            r.close()
    return rows


SYSTEMD_SETUP = r'''
set -euo pipefail
. "$HARNESS"
sd_require
P=$(sd_free_port)
sd_up >&2
for u in overlap-http.socket overlap-http@.service; do
  sed -e "s|^ExecStart=/usr/local/bin/example-posix-http|ExecStart=/srv/app|" \
    -e "s|^ListenStream=127.0.0.1:[0-9]*|ListenStream=127.0.0.1:$P|" "$UNITS/$u" | sd_install "$u"
done
# Every cold-start sample is a start: more than the default 5 in 10 s.
sd_install "overlap-http@.service.d/50-bench.conf" <<EOF
[Unit]
StartLimitBurst=100
[Service]
Environment=IDLE_TIMEOUT=0 SHUTDOWN_TIMEOUT=30
EOF
sd_nsenter mount -t tmpfs -o mode=755 sockact-bin /srv
sd_nsenter cp "$SERVER" /srv/app
sd_nsenter cp "$UNITS/overlap-restart.sh" /srv/overlap-restart.sh
sd_reload
sdctl start overlap-http.socket
echo "up $SD_PID $P"
read -r _ || true
'''


def systemd_rows(a):
    env = dict(os.environ, HARNESS=os.path.join(ROOT, "tests/systemd/harness.sh"),
               UNITS=os.path.join(ROOT, "examples/overlap"), SERVER=os.path.abspath(a.server))
    sh = subprocess.Popen(["bash", "-c", SYSTEMD_SETUP], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                          text=True)
    line = sh.stdout.readline().split()
    if not line or line[0] != "up":
        sh.wait()
        if sh.returncode == 77:
            log("systemd rows skipped: the harness cannot run here")
            return []
        raise RuntimeError(f"the systemd harness did not come up (status {sh.returncode})")
    sd_pid, port = line[1], int(line[2])

    def ctl(*args):
        subprocess.run(["nsenter", "-t", sd_pid, "-m", "-p", "systemctl", "--no-pager"] + list(args), check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop_program():
        ctl("stop", "overlap-http@blue.service", "overlap-http@green.service")

    rows = []
    try:
        for label, restart in (
                ("serial (systemd): systemctl restart", lambda: ctl("restart", "overlap-http@blue.service")),
                ("overlap (systemd): overlap-restart.sh", lambda: subprocess.run(
                    ["nsenter", "-t", sd_pid, "-m", "-p", "/srv/overlap-restart.sh", "overlap-http"], check=True,
                    stdout=subprocess.DEVNULL))):
            stop_program()
            ok, _, body = get(port)  # starts overlap-http@blue
            if not ok:
                raise RuntimeError(f"systemd: {body}")
            rows.append(measure(port, restart, stop_program, label))
    finally:
        sh.stdin.write("done\n")
        sh.stdin.close()
        sh.wait(timeout=120)
    return rows


def ms(s):
    return f"{s * 1000:.1f} ms" if s < 1 else f"{s:.2f} s"


def table(rows, a, started, load0, took):
    uname = platform.uname()
    lines = [
        SECTION, "",
        f"`bench/overlap_restart.py` (server: {a.server}; sockact-run: {a.sockact_run}), "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))}; {os.cpu_count()} CPUs, "
        f"Linux {uname.release}; load average {load0} at start, {' '.join(open('/proc/loadavg').read().split()[:3])} "
        f"at the end; run took {took / 60:.1f} min.", "",
        f"A {SLOW_MS / 1000:g} s request in flight, the restart {RESTART_AT:g} s later, then a new client "
        f"every {EVERY * 1000:g} ms for {WINDOW:g} s (fresh connections): their time to first byte and "
        "failures. Warm: median TTFB of 20 requests before the restart; cold: median of 5 first requests to "
        "a stopped program. Goal: p99 <= 2 x (warm + cold), 0 failed, the slow request answered.", "",
        "| restart | new clients | failed | TTFB p50 | p99 | max | slow request | warm | cold | goal | met |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(f"| {r['label']} | {r['n']} | {r['failed']} | {ms(r['p50'])} | {ms(r['p99'])} | "
                     f"{ms(r['max'])} | {r['slow']} | {ms(r['warm'])} | {ms(r['cold'])} | {ms(r['goal'])} | "
                     f"{'yes' if r['met'] else 'no'} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sockact-run", required=True)
    ap.add_argument("--server", required=True, help="example-posix-http")
    ap.add_argument("--no-systemd", action="store_true", help="leave out the systemd rows")
    ap.add_argument("--results", default="", help="append (or replace) the section in FILE (default: print only)")
    a = ap.parse_args()
    started = time.time()
    load0 = " ".join(open("/proc/loadavg").read().split()[:3])
    tmp = tempfile.mkdtemp(prefix="sockact-overlap-bench.")
    try:
        rows = sockact_run_rows(a, tmp)
        if not a.no_systemd:
            rows += systemd_rows(a)
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        log(f"overlap_restart: {e}")
        return 2
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    text = table(rows, a, started, load0, time.time() - started)
    print(text)
    if a.results:
        old = open(a.results).read() if os.path.exists(a.results) else ""
        if SECTION in old:
            head, rest = old.split(SECTION, 1)
            nxt = rest.find("\n## ")
            old = head + (rest[nxt + 1:] if nxt >= 0 else "")
        with open(a.results, "w") as f:
            f.write(old.rstrip("\n") + "\n\n" + text)
    overlapping = [r for r in rows if not r["label"].startswith("serial")]
    return 0 if overlapping and all(r["met"] for r in overlapping) else 1


if __name__ == "__main__":
    sys.exit(main())
