#!/usr/bin/env python3
"""Clients that example-httplib (sockact::httplib_server) failed (issue 23, item 6).

  httplib_client.py CASE HOST PORT PID

CASE:
  halfclose  100 clients send a GET and shutdown(SHUT_WR) at once; 20 send a
             pipelined pair, then SHUT_WR: every request is answered, then FIN
  pipeline   200 pipelined pairs (two GETs in one write) on 20 keep-alive
             connections: all 400 answered; then pairs at the idle boundary
             (IDLE_TIMEOUT=1): a pair is answered whole, or the connection is
             closed before any answer (a client retries that), never half
  keepalive  300 keep-alive clients, then 20 requests in flight: all 20 are
             answered within 3 s; then 40 idle keep-alive clients and SIGTERM:
             each gets FIN, and the server exits within 2 s (SHUTDOWN_TIMEOUT=10)
  idleexit   5 idle keep-alive clients do not pin the server: it exits after
             IDLE_TIMEOUT=1, not at cpp-httplib's keep-alive timeout
  payload    a 200 MB Content-Length POST gets 413 at once, and so does a
             chunked body over the limit; the server's RSS stays < 64 MB
  chunked    malformed chunked bodies (a size that is not hex, no CRLF after
             the data, sizes of 2^64 and 2^64-2) get 400 or 413 and FIN; a
             valid one (with an extension) is answered on a connection kept open

Every wait is bounded; each check prints PASS: or FAIL:; exit 1 on any FAIL.
"""

import functools
import os
import selectors
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from httpcheck import (alive, check, connect, exit_status, parse_responses, read_responses, request,  # noqa: E402
                       rss_mb, says_close)

lock = threading.Lock()
get = functools.partial(request, host="httplib")


def run_threads(n, fn):
    threads = [threading.Thread(target=fn, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def wait_exit(pid, seconds):
    """Seconds until pid exited, or None."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        if not alive(pid):
            return time.monotonic() - t0
        time.sleep(0.02)
    return None


def exit_and_fins(pid, socks, limit, sig=None):
    """Reads each of socks in a thread of its own until EOF and closes it then,
    as a client does; sends pid `sig` (if given) and waits up to `limit` s for
    it to exit: (its seconds or None, those as text, [a FIN and nothing else, per socket])."""
    fins = [False] * len(socks)

    def watch(i):
        got, how = read_responses(socks[i], None, limit)
        fins[i] = how == "eof" and not got
        socks[i].close()

    threads = [threading.Thread(target=watch, args=(i,)) for i in range(len(socks))]
    for t in threads:
        t.start()
    if sig is not None:
        os.kill(pid, sig)
    took = wait_exit(pid, limit)
    for t in threads:
        t.join()
    return took, ("%.2f s" % took if took is not None else "still running after %g s" % limit), fins


def case_halfclose(host, port, pid):
    counts = {"one": 0, "pair": 0}

    def client(kind, requests):
        try:
            s = connect(host, port)
            s.sendall(get() * requests)
            s.shutdown(socket.SHUT_WR)
            got, how = read_responses(s, None, 5.0)
            s.close()
        except OSError:
            return
        if [r[0] for r in got] == [200] * requests and how == "eof":
            with lock:
                counts[kind] += 1

    def worker(i):
        for _ in range(10):
            client("one", 1)
        for _ in range(2):
            client("pair", 2)

    run_threads(10, worker)
    check(counts["one"] == 100, "halfclose: a GET then SHUT_WR: %d of 100 answered, then FIN" % counts["one"])
    check(counts["pair"] == 20, "halfclose: a pipelined pair then SHUT_WR: %d of 20 answered whole" % counts["pair"])


def case_pipeline(host, port, pid):
    whole = [0]

    def worker(i):
        try:
            s = connect(host, port)
        except OSError:
            return
        for _ in range(10):
            s.sendall(get() + get())  # one write: the pair arrives together
            got, how = read_responses(s, 2, 2.0)
            if [r[0] for r in got] != [200, 200]:
                break
            with lock:
                whole[0] += 1
        s.close()

    run_threads(20, worker)
    check(whole[0] == 200, "pipeline: %d of 200 pipelined pairs answered whole (400 requests)" % whole[0])

    # The idle boundary: one keep-alive connection, a pair after longer and
    # longer pauses around IDLE_TIMEOUT=1 (the deadline falls between 1 and
    # 1.1 s after the last answer). Whatever the drain does, no pair may be
    # answered half (the second request dropped without a word).
    outcome = {"whole": 0, "closed before any answer": 0, "half, with Connection: close": 0, "half, silently": 0}
    s = None
    for gap in [0.9, 0.98, 1.02, 1.05, 1.08, 1.12, 1.2, 1.4]:
        if s is None:
            try:
                s = connect(host, port)
            except OSError:
                break  # the server exited (idle): the sockets went with it
        time.sleep(gap)
        try:
            s.sendall(get() + get())
            got, how = read_responses(s, 2, 3.0)
        except OSError:
            got, how = [], "reset"
        if len(got) == 2:
            outcome["whole"] += 1
        elif not got:
            outcome["closed before any answer"] += 1
        elif says_close(got[0]):
            outcome["half, with Connection: close"] += 1
        else:
            outcome["half, silently"] += 1
        if len(got) != 2 or any(says_close(r) for r in got):
            s.close()
            s = None
    if s is not None:
        s.close()
    print("pipeline: pairs at the idle boundary: %s" % outcome, flush=True)
    check(outcome["half, silently"] == 0, "pipeline: no pair at the idle boundary lost its second request silently")
    check(outcome["whole"] >= 2, "pipeline: pairs before the idle deadline answered whole (%d)" % outcome["whole"])


def case_keepalive(host, port, pid):
    # 300 clients, each a GET on a connection it keeps open.
    sel = selectors.DefaultSelector()
    idle = []
    for _ in range(300):
        s = connect(host, port)
        s.setblocking(False)
        s.sendall(get())
        idle.append(s)
        sel.register(s, selectors.EVENT_READ, [b""])
    answered = 0
    end = time.monotonic() + 3.0
    while time.monotonic() < end and answered < 300:
        for key, _ in sel.select(0.1):
            try:
                b = key.fileobj.recv(65536)
            except OSError:
                b = b""
            if b:
                key.data[0] += b
                if parse_responses(key.data[0])[0]:
                    answered += 1
                    sel.unregister(key.fileobj)
            else:
                sel.unregister(key.fileobj)
    print("keepalive: %d of the 300 keep-alive clients answered in 3 s" % answered, flush=True)

    # 20 requests in flight while those connections stay open.
    ok = [0]
    t0 = time.monotonic()

    def inflight(i):
        try:
            c = connect(host, port)
            c.sendall(get())
            got, _ = read_responses(c, 1, 3.0)
            c.close()
        except OSError:
            return
        if got and got[0][0] == 200:
            with lock:
                ok[0] += 1

    run_threads(20, inflight)
    check(ok[0] == 20, "keepalive: %d of 20 requests in flight answered within 3 s (%.1f s) beside 300 "
          "keep-alive clients" % (ok[0], time.monotonic() - t0))
    for s in idle:
        s.close()
    sel.close()
    time.sleep(0.3)

    # The drain: idle keep-alive connections are closed by the library, and
    # SIGTERM does not wait for their keep-alive timeout.
    quiet = []
    for _ in range(40):
        s = connect(host, port)
        s.sendall(get())
        got, _ = read_responses(s, 1, 3.0)
        if got and not says_close(got[0]):
            quiet.append(s)
        else:
            s.close()
    check(len(quiet) == 40, "keepalive: 40 keep-alive connections open (%d)" % len(quiet))
    time.sleep(0.5)
    took, said, fins = exit_and_fins(pid, quiet, 15.0, signal.SIGTERM)
    check(took is not None and took < 2.0,
          "keepalive: SIGTERM with only idle keep-alive connections: exit within 2 s (%s)" % said)
    check(all(fins), "keepalive: each idle keep-alive connection got FIN (%d of %d)" % (sum(fins), len(fins)))


def case_idleexit(host, port, pid):
    held = []
    for _ in range(5):
        s = connect(host, port)
        s.sendall(get())
        got, _ = read_responses(s, 1, 3.0)
        check(len(got) == 1 and not says_close(got[0]), "idleexit: a keep-alive answer")
        held.append(s)
    took, said, fins = exit_and_fins(pid, held, 10.0)
    check(took is not None and took < 2.5,
          "idleexit: exits after IDLE_TIMEOUT=1 although 5 keep-alive clients stay connected (%s)" % said)
    check(all(fins), "idleexit: the keep-alive clients got FIN (%d of 5)" % sum(fins))


def upload(host, port, head, piece, total, limit):
    """Sends head then `piece` repeatedly (up to `total` bytes) while reading; (responses, bytes sent, seconds)."""
    s = connect(host, port)
    s.sendall(head)
    s.setblocking(False)
    data, sent, t0 = b"", 0, time.monotonic()
    closed = False
    pending = b""
    while time.monotonic() - t0 < limit and not parse_responses(data)[0] and not closed:
        if sent < total or pending:
            if not pending:
                pending = piece
            try:
                n = s.send(pending)  # may take part of it: the rest goes next
                pending = pending[n:]
                sent += n
            except BlockingIOError:
                time.sleep(0.005)
            except OSError:
                closed = True
        else:
            time.sleep(0.01)
        try:
            b = s.recv(65536)
            if b:
                data += b
            else:
                closed = True
        except BlockingIOError:
            pass
        except OSError:
            closed = True
    s.close()
    return parse_responses(data)[0], sent, time.monotonic() - t0


def case_payload(host, port, pid):
    chunk = b"%x\r\n" % (1 << 20) + b"x" * (1 << 20) + b"\r\n"
    for name, framing, piece, total in (
            ("Content-Length 200 MB", b"Content-Length: 200000000", b"x" * 65536, 16 << 20),
            ("a chunked body over the limit", b"Transfer-Encoding: chunked", chunk, 32 << 20)):
        got, sent, took = upload(host, port, b"POST / HTTP/1.1\r\nHost: httplib\r\n" + framing + b"\r\n\r\n",
                                 piece, total, 5.0)
        check(len(got) == 1 and got[0][0] == 413, "payload: %s: 413 (got %s after %.1f MB sent, %.1f s)" %
              (name, [r[0] for r in got], sent / 1048576.0, took))
        check(0 < rss_mb(pid) < 64, "payload: RSS %.1f MB < 64 MB" % rss_mb(pid))


def case_chunked(host, port, pid):
    head = b"POST / HTTP/1.1\r\nHost: httplib\r\nTransfer-Encoding: chunked\r\n\r\n"
    bad = [
        ("a chunk size that is not hex", b"5g\r\nhello\r\n0\r\n\r\n", [400]),
        ("no CRLF after the chunk data", b"5\r\nhelloXY\r\n0\r\n\r\n", [400]),
        ("a chunk size of 2^64", b"10000000000000000\r\nhello\r\n0\r\n\r\n", [400, 413]),
        ("a chunk size of 2^64-2", b"fffffffffffffffe\r\nhello\r\n0\r\n\r\n", [400, 413]),
    ]
    for name, body, want in bad:
        s = connect(host, port)
        s.sendall(head + body)
        got, how = read_responses(s, None, 3.0)
        s.close()
        check(len(got) == 1 and got[0][0] in want and how == "eof",
              "chunked: %s: one %s, then FIN (got %s, %s)" % (name, " or ".join(map(str, want)), [r[0] for r in got], how))
    s = connect(host, port)
    s.sendall(head + b"5;name=value\r\nhello\r\n0\r\n\r\n" + get())
    got, how = read_responses(s, 2, 3.0)
    s.close()
    check([r[0] for r in got] == [404, 200] and not says_close(got[0]),
          "chunked: a valid body (with an extension) is read whole, and the connection serves the next request "
          "(got %s, %s)" % ([r[0] for r in got], how))


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    case, host, port, pid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    fn = globals().get("case_" + case)
    if fn is None:
        sys.exit("unknown case %r" % case)
    fn(host, port, pid)
    sys.exit(exit_status())


if __name__ == "__main__":
    main()
