#!/usr/bin/env python3
"""Cold start of Bun and Node with libsockact-adopt.so, against their own bind().

Each sample is a fresh process, timed from fork() to the first byte of the
answer to `GET /`:
  adopted   the script listens on 127.0.0.1:PORT first and passes the socket
            as systemd does (fd 3, LISTEN_FDS=1, LISTEN_PID), with the library
            in LD_PRELOAD; the client connects at once and waits.
  own bind  no activation, no library: the program binds 127.0.0.1:PORT itself;
            the client retries connect() every 0.2 ms until it is accepted.
  own+lib   as "own bind", with the library preloaded (nothing to adopt):
            what loading and initialising it costs.
Rounds alternate the order of the variants. Prints medians side by side, of
the wall time and of the child's CPU time (user + sys, all threads, from
wait4): on a loaded machine the wall times mostly measure the load, the CPU
times much less so. The target: adopted - own bind < 1 ms and own+lib - own
bind < 1 ms, in CPU time. The polling client of "own bind" competes with the
server for the CPU, which shows in its wall time and, on a busy machine, in
its CPU time too: "own+lib" is polled the same way, so its difference is the
cleaner one. Exit status 1 when a target is missed.

  bench/adopt_cold_start.py LIBRARY [--bun BUN] [--node NODE] [--rounds N]
"""
import argparse
import os
import socket
import statistics
import sys
import tempfile
import time

SERVERS = {
    "bun": 'Bun.serve({port: Number(process.env.PORT), hostname: "127.0.0.1", fetch() { return new Response("hi\\n"); }});\n',
    "node": 'require("http").createServer((q, r) => r.end("hi\\n")).listen(Number(process.env.PORT), "127.0.0.1");\n',
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def first_byte(conn):
    conn.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
    if not conn.recv(1):
        raise RuntimeError("connection closed before the first byte")
    return time.perf_counter_ns()


def spawn(argv, env, listener=None):
    pid = os.fork()
    if pid == 0:
        try:
            if listener is not None:
                if listener.fileno() == 3:
                    os.set_inheritable(3, True)
                else:
                    os.dup2(listener.fileno(), 3, inheritable=True)
                env = dict(env, LISTEN_FDS="1", LISTEN_PID=str(os.getpid()))
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    return pid


def reap(pid):
    """Ends the child; its CPU time (user + sys, all threads) in ms."""
    os.kill(pid, 9)
    _, _, ru = os.wait4(pid, 0)
    return (ru.ru_utime + ru.ru_stime) * 1e3


def adopted(argv, env, lib):
    port = free_port()
    lst = socket.socket()
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind(("127.0.0.1", port))
    lst.listen(128)
    conn = socket.socket()
    conn.connect(("127.0.0.1", port))  # waits in the backlog, as an activating connection does
    t0 = time.perf_counter_ns()
    pid = spawn(argv, dict(env, PORT=str(port + 1 if port < 65535 else port - 1), LD_PRELOAD=lib), lst)
    lst.close()
    conn.settimeout(10)
    t1 = first_byte(conn)
    conn.close()
    return (t1 - t0) / 1e6, reap(pid)


def own_bind(argv, env, lib=None):
    port = free_port()
    e = dict(env, PORT=str(port))
    if lib:
        e["LD_PRELOAD"] = lib
    t0 = time.perf_counter_ns()
    pid = spawn(argv, e)
    deadline = time.monotonic() + 10
    while True:
        conn = socket.socket()
        try:
            conn.connect(("127.0.0.1", port))
            break
        except ConnectionRefusedError:
            conn.close()
            if time.monotonic() > deadline:
                reap(pid)
                raise RuntimeError("program did not listen within 10 s")
            time.sleep(0.0002)
    conn.settimeout(10)
    t1 = first_byte(conn)
    conn.close()
    return (t1 - t0) / 1e6, reap(pid)


def floor_run(lib, env, with_lib):
    """/bin/true, passed a listening socket as systemd does, with or without
    the library: what loading and initialising the library costs by itself,
    without a runtime's noise. Returns (wall ms fork to exit, child CPU ms)."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(8)
    e = dict(env, LD_PRELOAD=lib) if with_lib else dict(env)
    t0 = time.perf_counter_ns()
    pid = spawn(["/bin/true"], e, lst)
    _, _, ru = os.wait4(pid, 0)
    t1 = time.perf_counter_ns()
    lst.close()
    return (t1 - t0) / 1e6, (ru.ru_utime + ru.ru_stime) * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("library")
    ap.add_argument("--bun", default=os.path.join(os.path.dirname(__file__), "..", ".cache", "npm", "node_modules",
                                                  "@oven", "bun-linux-x64", "bin", "bun"))
    ap.add_argument("--node", default="/usr/bin/node")
    ap.add_argument("--rounds", type=int, default=30)
    a = ap.parse_args()
    lib = os.path.abspath(a.library)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LISTEN_") and k != "LD_PRELOAD"}
    status = 0
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for name, runtime in (("bun", a.bun), ("node", a.node)):
            if not os.access(runtime, os.X_OK):
                print(f"{name}: not found at {runtime}; skipped (scripts/setup.sh installs it)")
                continue
            script = os.path.join(tmp, f"server_{name}.js")
            with open(script, "w") as f:
                f.write(SERVERS[name])
            argv = [runtime, script]
            samples = {"adopted": [], "own bind": [], "own+lib": []}
            variants = [("adopted", lambda: adopted(argv, env, lib)), ("own bind", lambda: own_bind(argv, env)),
                        ("own+lib", lambda: own_bind(argv, env, lib))]
            for r in range(a.rounds + 2):
                order = variants if r % 2 == 0 else variants[::-1]
                for key, fn in order:
                    v = fn()
                    if r >= 2:  # 2 warm-up rounds
                        samples[key].append(v)
            med = {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
                   for k, v in samples.items()}
            rows.append((name, med))
        floor = {True: [], False: []}
        for r in range(a.rounds * 10):
            for w in ((True, False) if r % 2 == 0 else (False, True)):
                floor[w].append(floor_run(lib, env, w))
        fw = {k: (statistics.median(x for x, _ in v), statistics.median(c for _, c in v)) for k, v in floor.items()}
        print(f"/bin/true passed a listening socket, median of {a.rounds * 10} runs (ms): without the library "
              f"wall {fw[False][0]:.3f} cpu {fw[False][1]:.3f}; with it wall {fw[True][0]:.3f} cpu {fw[True][1]:.3f}; "
              f"added wall {fw[True][0] - fw[False][0]:.3f} cpu {fw[True][1] - fw[False][1]:.3f}")
        print(f"cold start, fork() to first byte, median of {a.rounds} fresh processes each (ms); "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print(f"{'server':8} {'':5} {'adopted':>9} {'own bind':>9} {'own+lib':>9} {'adopted-own':>12} {'lib load':>9}")
        for name, m in rows:
            for i, what in ((0, "wall"), (1, "cpu")):
                d = m["adopted"][i] - m["own bind"][i]
                load = m["own+lib"][i] - m["own bind"][i]
                verdict = ""
                if i == 1:  # both: "adopted" alone favours the library (its client does not poll)
                    ok = max(d, load) < 1.0
                    status |= 0 if ok else 1
                    verdict = f"  target < 1 ms: {'met' if ok else 'MISSED'}"
                print(f"{name:8} {what:5} {m['adopted'][i]:9.2f} {m['own bind'][i]:9.2f} {m['own+lib'][i]:9.2f} "
                      f"{d:12.2f} {load:9.2f}{verdict}")
    return status


if __name__ == "__main__":
    sys.exit(main())
