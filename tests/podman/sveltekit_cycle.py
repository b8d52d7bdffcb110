#!/usr/bin/env python3
"""Requests around the idle deadline of a socket-activated container.

  sveltekit_cycle.py PORT REQUESTS IDLE_SECONDS EXPECT MIN_ACTIVATIONS

Sends at least REQUESTS requests (GET /pid, one per connection) to
127.0.0.1:PORT. After each step it waits a gap measured from the moment the
last answer arrived, which is when the app's idle countdown starts:
  before   0.2-0.9 x IDLE: the same container answers
  at       0.9-1.3 x IDLE: the idle exit is under way (SIGTERM, shutdown)
  after    1.3 x IDLE to IDLE + 1 s: the container is going or gone; the
           connection waits in systemd's socket for the next start
Every fifth step sends three requests at once instead of one. Each answer must
be a 200 whose body starts with EXPECT; the app's instance=... tells the runs
apart. Prints the counts, the activations seen and the latencies; one line per
failure; exit 1 when any request failed or fewer than MIN_ACTIVATIONS runs
answered (then the gaps did not reach the deadline).
"""

import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import httpcheck  # noqa: E402

PORT, TOTAL, IDLE = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
EXPECT, MIN_RUNS = sys.argv[4], int(sys.argv[5])
random.seed(22)  # the same gaps every run


def dechunk(body):
    """The payload of a chunked body ("" when it is cut short)."""
    out = ""
    while True:
        size, sep, rest = body.partition("\r\n")
        try:
            n = int(size.split(";")[0], 16)
        except ValueError:
            return ""
        if not sep or n == 0:
            return out
        out, body = out + rest[:n], rest[n + 2:]


def request():
    """One GET /pid on a new connection: (ok, seconds, body or error)."""
    t0 = time.monotonic()
    try:
        data, how = httpcheck.fetch("127.0.0.1", PORT, httpcheck.request("/pid", host="cycle", close=True), 15)
    except OSError as e:
        return False, time.monotonic() - t0, f"{type(e).__name__}: {e}"
    took = time.monotonic() - t0
    if how != "eof":
        return False, took, f"{how} after {data[:200]!r}"
    head, _, body = data.decode(errors="replace").partition("\r\n\r\n")
    if "transfer-encoding: chunked" in head.lower():
        body = dechunk(body)
    ok = head.startswith("HTTP/1.1 200") and body.startswith(EXPECT)
    return ok, took, body.strip() if ok else (data[:200].decode(errors="replace") or "EOF, no answer")


sent = failed = 0
instances, latencies, failures = [], [], []
kinds = {"before": 0, "at": 0, "after": 0}
step = 0
t_start = time.monotonic()
while sent < TOTAL:
    step += 1
    n = 3 if step % 5 == 0 else 1
    results = [None] * n

    def one(i):
        results[i] = request()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for ok, took, what in results:
        sent += 1
        latencies.append(took)
        if ok:
            inst = what.rsplit("instance=", 1)[-1]
            if not instances or instances[-1] != inst:
                instances.append(inst)
        else:
            failed += 1
            failures.append(f"step {step}: after {took:.3f} s: {what}")
    r = random.random()
    if r < 0.3:
        kind, gap = "before", random.uniform(0.2 * IDLE, 0.9 * IDLE)
    elif r < 0.7:
        kind, gap = "at", random.uniform(0.9 * IDLE, 1.3 * IDLE)
    else:
        kind, gap = "after", random.uniform(1.3 * IDLE, IDLE + 1.0)
    kinds[kind] += 1
    time.sleep(gap)

latencies.sort()
print(f"cycle: {sent} requests in {step} steps ({time.monotonic() - t_start:.1f} s), {failed} failed; "
      f"gaps before/at/after the deadline: {kinds['before']}/{kinds['at']}/{kinds['after']}; "
      f"{len(set(instances))} activations seen; latency median {latencies[len(latencies) // 2] * 1000:.0f} ms, "
      f"p90 {latencies[int(len(latencies) * 0.9)] * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms")
for f in failures[:20]:
    print("  failed: " + f)
if len(set(instances)) < MIN_RUNS:
    print(f"  too few activations: {len(set(instances))} < {MIN_RUNS}")
sys.exit(1 if failed or len(set(instances)) < MIN_RUNS else 0)
