#!/usr/bin/env python3
"""Hostile and unlucky clients for example-libuv-http (libuv_hostile_e2e.sh).

  hostile_client.py MODE HOST PORT PID [ARGS]
    many N LIMIT       the server's RLIMIT_NOFILE is set to LIMIT (prlimit),
                       then N clients connect at once and each sends one
                       request: every one must be answered (EMFILE back-off,
                       not accept-and-close)
    drain-pipelined    a connection that has sent nothing when SIGTERM comes,
                       then sends two pipelined requests: both answered (the
                       first keeps the connection, the second says close), EOF
    term-right-after   sends two pipelined requests and SIGTERM at once: both
                       answered
    headers-timeout S  half a request head; after HEADERS_TIMEOUT (S seconds)
                       a 408 and a clean close, not before
    graceful           a request with Connection: close followed by more
                       pipelined bytes, and more after the answer: the client
                       reads the whole answer and EOF, no reset
    too-large          a request head over 16 KiB: 431, then EOF
    never-reads MB     pipelines requests and never reads: the server stays
                       under MB of RSS and answers another client meanwhile
    batch MB           a MB-sized batch of pipelined requests, read as it is
                       answered: every request answered, in linear time, and
                       another client is answered within 1 s meanwhile

Uses tests/support/httpcheck.py and tests/fault/fault_client.py. Every
wait is bounded; each failed check prints a line that starts with "FAIL:".
"""

import os
import resource
import selectors
import signal
import socket
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "..", "support"), os.path.join(HERE, "..", "fault")]
from fault_client import REQUEST, fd_count, get  # noqa: E402
from httpcheck import (alive, check, connect, exit_status, is_200, parse_responses, read_until_eof,  # noqa: E402
                       request, says_close)

GET = request(host="hostile")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def responses(data):
    """The status lines of the HTTP responses in `data`, and whether each said Connection: close."""
    return [(r.line, says_close(r)) for r in parse_responses(data)[0]]


def many(host, port, pid, n, limit):
    check(is_200(get(host, port)), "server answers before the test")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, n + 64)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < n + 64:
        n = want - 64
        print("note: the client can open only %d connections" % n, flush=True)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, limit))
    print("server: %d fds open, RLIMIT_NOFILE now %d; %d clients" % (fd_count(pid), limit, n), flush=True)

    sel = selectors.DefaultSelector()
    state = {}
    t0 = time.monotonic()
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex((host, port))
        sel.register(s, selectors.EVENT_WRITE)
        state[s] = b""
    answered = closed_early = 0
    deadline = t0 + 60
    while state and time.monotonic() < deadline:
        for key, ev in sel.select(timeout=1.0):
            s = key.fileobj
            if ev & selectors.EVENT_WRITE:
                try:
                    s.send(REQUEST)
                except OSError:
                    closed_early += 1
                    sel.unregister(s)
                    del state[s]
                    s.close()
                    continue
                sel.modify(s, selectors.EVENT_READ)
                continue
            try:
                chunk = s.recv(65536)
            except OSError:
                chunk = b""
            if chunk:
                state[s] += chunk
                continue
            if is_200(state[s]):
                answered += 1
            else:
                closed_early += 1
            sel.unregister(s)
            del state[s]
            s.close()
    elapsed = time.monotonic() - t0
    for s in state:
        s.close()
    share = 100.0 * answered / n
    print("answered %d of %d (%.1f%%), closed unanswered %d, unfinished %d, in %.1f s" %
          (answered, n, share, closed_early, len(state), elapsed), flush=True)
    check(answered == n, "every one of %d clients answered against RLIMIT_NOFILE=%d" % (n, limit))
    check(alive(pid), "server alive after the burst")
    check(is_200(get(host, port)), "server answers after the burst")


def drain_pipelined(host, port, pid):
    s = connect(host, port)
    time.sleep(0.3)  # accepted, silent
    os.kill(pid, signal.SIGTERM)
    time.sleep(0.3)  # the drain has begun; the new connection has its grace period
    s.sendall(GET + GET)
    data, how = read_until_eof(s, 10)
    s.close()
    got = responses(data)
    print("answers: %r, then %s" % (got, how), flush=True)
    check(len(got) == 2 and all(r[0].startswith("HTTP/1.1 200") for r in got),
             "both pipelined requests sent during the drain answered")
    check(len(got) == 2 and not got[0][1] and got[1][1],
             "the first keeps the connection (the second is here), the second says Connection: close")
    check(how == "eof", "then EOF (got %s)" % how)


def term_right_after(host, port, pid):
    s = connect(host, port)
    s.sendall(GET + GET)
    os.kill(pid, signal.SIGTERM)  # no wait at all: the drain may begin before the first read
    data, how = read_until_eof(s, 10)
    s.close()
    got = responses(data)
    check(len(got) == 2 and all(r[0].startswith("HTTP/1.1 200") for r in got),
             "a pipelined pair sent right before SIGTERM: both answered (%r, %s)" % (got, how))


def headers_timeout(host, port, pid, seconds):
    s = connect(host, port)
    t0 = time.monotonic()
    s.sendall(b"GET / HTTP/1.1\r\nHost: hostile\r\n")  # no blank line: the head never ends
    data, how = read_until_eof(s, t0 + seconds + 5 - time.monotonic())
    waited = time.monotonic() - t0
    s.close()
    print("after %.2f s: %r, %s" % (waited, data[:60], how), flush=True)
    check(data.startswith(b"HTTP/1.1 408"), "a partial head is answered with 408")
    check(how == "eof", "then closed cleanly (got %s)" % how)
    check(waited >= seconds - 0.1, "not before HEADERS_TIMEOUT (%.2f s >= %.1f s)" % (waited, seconds))
    check(waited < seconds + 3, "soon after HEADERS_TIMEOUT (%.2f s)" % waited)


def graceful(host, port, pid):
    s = connect(host, port)
    # The answer to the first request closes the connection; the bytes the
    # client goes on sending must not turn that close into a reset, which
    # would make the client's kernel drop the answer it has not read yet.
    s.sendall(REQUEST + GET + b"x" * 200000)  # more than one read: unread when the answer is done
    late_error = None
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        try:
            s.send(b"x" * 1024)
        except OSError as e:
            late_error = e
            break
        time.sleep(0.01)
    data, how = read_until_eof(s, 10)
    s.close()
    got = responses(data)
    print("answers: %r, then %s; sending afterwards: %s" % (got, how, late_error or "ok"), flush=True)
    check(len(got) == 1 and got[0][0].startswith("HTTP/1.1 200") and got[0][1],
             "the Connection: close request answered, nothing after it")
    check(how == "eof" and late_error is None,
             "the client gets EOF, not a reset, also while it still sends (got %s; %s)" %
             (how, late_error or "sends ok"))


def never_reads(host, port, pid, limit_mb):
    s = connect(host, port)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    batch = GET * 2000
    sent = 0
    t0 = time.monotonic()
    peak = 0
    delays = []
    s.settimeout(0.5)
    while time.monotonic() - t0 < 6:
        try:
            sent += s.send(batch)
        except socket.timeout:
            pass  # the server stopped reading: good; keep pushing for a while
        except OSError as e:
            print("send: %s" % e, flush=True)
            break
        peak = max(peak, rss_kib(pid))
        if len(delays) < 3 and time.monotonic() - t0 > 2 * (len(delays) + 1) - 1:
            t1 = time.monotonic()
            ok = is_200(get(host, port, timeout=5))
            delays.append((ok, time.monotonic() - t1))
    s.close()
    print("pushed %.1f MB of pipelined requests without reading; server RSS peak %.1f MB; other client: %r" %
          (sent / 1e6, peak / 1024.0, delays), flush=True)
    check(peak < limit_mb * 1024, "server RSS stays under %d MB (peak %.1f MB)" % (limit_mb, peak / 1024.0))
    check(len(delays) > 0 and all(ok and d < 1.0 for ok, d in delays),
             "another client is answered within 1 s meanwhile")
    check(alive(pid), "server alive")


def too_large(host, port, pid):
    s = connect(host, port)
    s.sendall(b"GET / HTTP/1.1\r\nHost: hostile\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
    data, how = read_until_eof(s, 10)
    s.close()
    check(data.startswith(b"HTTP/1.1 431 "), "a head over 16 KiB is answered with 431 (%r)" % data[:40])
    check(how == "eof", "then EOF (got %s)" % how)


def batch(host, port, pid, megabytes):
    import threading
    n = megabytes * 1000000 // len(GET)
    s = connect(host, port, timeout=30)
    received = [0, b""]  # answers counted, the tail of an incomplete one

    def reader():
        marker = b"HTTP/1.1 200 OK"
        s.settimeout(30)
        while received[0] < n:
            try:
                chunk = s.recv(1 << 20)
            except OSError:
                return
            if not chunk:
                return
            data = received[1] + chunk
            received[0] += data.count(marker)
            keep = len(marker) - 1
            received[1] = data[-keep:] if not data.endswith(b"\n") else b""

    t = threading.Thread(target=reader)
    t.start()
    t0 = time.monotonic()
    payload = GET * n
    sender = threading.Thread(target=lambda: s.sendall(payload))
    sender.start()
    delays = []
    while t.is_alive() and time.monotonic() - t0 < 60 and len(delays) < 20:
        t1 = time.monotonic()
        ok = is_200(get(host, port, timeout=5))
        delays.append((ok, time.monotonic() - t1))
        time.sleep(0.1)
    sender.join(60)
    t.join(60)
    elapsed = time.monotonic() - t0
    s.close()
    worst = max((d for _, d in delays), default=0.0)
    print("%d MB batch: %d of %d answered in %.2f s; another client: %d requests, worst %.3f s" %
          (megabytes, received[0], n, elapsed, len(delays), worst), flush=True)
    check(received[0] == n, "every pipelined request of the batch answered")
    check(elapsed < 30, "the batch took %.2f s (linear time)" % elapsed)
    check(all(ok for ok, _ in delays) and worst < 1.0, "another client waited at most %.3f s (< 1 s)" % worst)


# MODE: (function, the types of its ARGS)
MODES = {
    "many": (many, int, int),
    "drain-pipelined": (drain_pipelined,),
    "term-right-after": (term_right_after,),
    "headers-timeout": (headers_timeout, float),
    "graceful": (graceful,),
    "too-large": (too_large,),
    "batch": (batch, int),
    "never-reads": (never_reads, int),
}


def main():
    args = sys.argv[1:]
    if len(args) < 4 or args[0] not in MODES:
        sys.exit(__doc__)
    mode, host, port, pid = args[0], args[1], int(args[2]), int(args[3])
    fn, *types = MODES[mode]
    try:
        fn(host, port, pid, *(t(a) for t, a in zip(types, args[4:])))
    except Exception as e:  # a client-side error (timeout, refused) is a failure too
        import traceback
        traceback.print_exc()
        check(False, "%s: %r" % (mode, e))
    sys.exit(exit_status())


if __name__ == "__main__":
    main()
