#!/usr/bin/env python3
"""Hostile and careless HTTP clients against a running example (hostile_fault.sh).

  hostile.py CASE HOST PORT PID

CASE:
  drain     pipelined requests sent during the drain are all answered, then FIN
  partial   a request that never completes its head gets 408 (HEADERS_TIMEOUT=1)
            and does not keep an idle server alive (IDLE_TIMEOUT=3)
  batch     a 4 MB pipelined batch: every request answered, and another client
            waits less than 1 s meanwhile
  noread    a client that pipelines and never reads: server RSS stays < 64 MB
  hygiene   conflicting Content-Length, Transfer-Encoding with Content-Length,
            a huge head and too many fields are refused (400, 431)
  emfile    3000 clients against RLIMIT_NOFILE 256: at least 99% answered
  fdreuse   a client that resets during a /delay: the next connection, which
            gets its fd number, gets its own one answer and not the delayed one
  smuggle   a Transfer-Encoding whose final coding is not chunked (its body
            would run as a second request), a missing or repeated Host: 400
            and close; a Content-Length over the body limit: 413
  continue  Expect: 100-continue gets "100 Continue" before the body is sent
  absolute  absolute-form targets (http://host/path) are routed as /path

Every wait is bounded; each check prints PASS: or FAIL:; exit 1 on any FAIL.
"""

import functools
import os
import resource
import selectors
import signal
import subprocess
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from httpcheck import (alive, check, connect, exit_status, read_until_eof, request, reset, rss_mb,  # noqa: E402
                       send_unread, statuses)

get = functools.partial(request, host="hostile")


def case_drain(host, port, pid):
    busy = connect(host, port)
    busy.sendall(get("/delay/600"))
    silent = connect(host, port)
    time.sleep(0.2)
    os.kill(pid, signal.SIGTERM)
    time.sleep(0.2)
    # Both were connected before the drain began: what they send now was sent
    # to a server that had not closed them, so it must be answered.
    busy.sendall(get("/") + get("/"))
    silent.sendall(get("/") + get("/"))
    for name, s, want in (("busy", busy, 3), ("silent", silent, 2)):
        data, how = read_until_eof(s)
        st = statuses(data)
        check(st == ["200"] * want, "drain: %s connection: %d answers, got %s" % (name, want, st))
        check(how == "eof", "drain: %s connection ends with FIN (%s)" % (name, how))
        check(data.count(b"Connection: close") == 1, "drain: %s: the last answer says Connection: close" % name)


def case_partial(host, port, pid):
    one = connect(host, port)
    one.sendall(b"G")
    head = connect(host, port)
    head.sendall(b"GET / HTTP/1.1\r\nHost: hostile\r\n")
    # A whole head, then a body one byte every 0.3 s (2.4 s, beyond
    # HEADERS_TIMEOUT=1): a slow upload, not a slow head.
    body = connect(host, port)
    body.sendall(b"POST / HTTP/1.1\r\nHost: hostile\r\nContent-Length: 8\r\nConnection: close\r\n\r\n")

    def dribble():
        for _ in range(8):
            time.sleep(0.3)
            try:
                body.sendall(b"x")
            except OSError:
                return

    sender = threading.Thread(target=dribble)
    sender.start()
    t0 = time.monotonic()
    for name, s in (("one byte", one), ("head without its blank line", head)):
        data, how = read_until_eof(s, 5.0)
        check(statuses(data) == ["408"], "partial: %s gets 408 (got %r)" % (name, data[:40]))
        check(how == "eof", "partial: %s: then FIN (%s)" % (name, how))
    check(time.monotonic() - t0 < 4.0, "partial: cut within HEADERS_TIMEOUT=1 (%.1f s)" % (time.monotonic() - t0))
    sender.join()
    data, how = read_until_eof(body, 5.0)
    body.close()
    got = statuses(data)
    check(len(got) == 1 and got[0] != "408",
          "partial: a body arriving over 2.4 s after its head is answered, not cut by HEADERS_TIMEOUT=1 (got %r)"
          % (data[:40],))
    # The client stays connected, sending nothing: the idle exit still comes.
    stay = connect(host, port)
    stay.sendall(b"GE")
    end = time.monotonic() + 10.0
    while alive(pid) and time.monotonic() < end:
        time.sleep(0.1)
    check(not alive(pid), "partial: the server exits when idle although a client holds a partial request")
    stay.close()


def case_batch(host, port, pid):
    req = get("/")
    n = (4 * 1024 * 1024) // len(req)
    batch = connect(host, port, timeout=60)
    got = {"n": 0, "how": ""}

    def reader():
        buf = b""
        batch.settimeout(30)
        try:
            while got["n"] < n:
                b = batch.recv(1 << 20)
                if not b:
                    got["how"] = "eof"
                    return
                buf += b
                k = buf.count(b"HTTP/1.1 200")
                if k:
                    got["n"] += k
                    buf = buf[buf.rfind(b"HTTP/1.1 200") + 12:]
        except OSError as e:
            got["how"] = str(e)

    t = threading.Thread(target=reader)
    t.start()
    sender = threading.Thread(target=lambda: batch.sendall(req * n))
    sender.start()
    time.sleep(0.3)
    # Timed from another process (curl), so that this one's threads do not count.
    worst = 0.0
    for _ in range(5):
        r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-m", "10", "-w", "%{http_code} %{time_total}",
                            "http://%s:%d/" % (host, port)], capture_output=True, text=True)
        code, took = (r.stdout.split() + ["0", "99"])[:2]
        worst = max(worst, float(took) if code == "200" else 99.0)
        time.sleep(0.1)
    sender.join(60)
    t.join(60)
    check(got["n"] == n, "batch: %d pipelined requests (4 MB) all answered (%d, %s)" % (n, got["n"], got["how"]))
    check(worst < 1.0, "batch: another client waited at most %.2f s (< 1 s)" % worst)


def case_noread(host, port, pid):
    s = connect(host, port)
    peak = [0.0]

    def sample():
        peak[0] = max(peak[0], rss_mb(pid))

    sent = send_unread(s, get("/") * 256, 8.0, 0.01, sample)
    sample()
    peak = peak[0]
    print("note: sent %.1f MB of requests without reading; server RSS peak %.1f MB" % (sent / 1e6, peak))
    check(0 < peak < 64, "noread: server RSS stays under 64 MB (peak %.1f MB)" % peak)
    t0 = time.monotonic()
    other = connect(host, port)
    other.sendall(get("/", close=True))
    data, _ = read_until_eof(other, 5.0)
    check(statuses(data) == ["200"] and time.monotonic() - t0 < 1.0, "noread: another client is served meanwhile")
    s.close()


def case_hygiene(host, port, pid):
    cases = [
        ("conflicting Content-Length", b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 5\r\n\r\nabcde", "400"),
        ("Transfer-Encoding with Content-Length",
         b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc", "400"),
        ("a 64 KiB head", b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 65536 + b"\r\n\r\n", "431"),
        ("1000 header fields", b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(1000)) + b"\r\n", "431"),
    ]
    for name, raw, want in cases:
        s = connect(host, port)
        try:
            s.sendall(raw)
        except OSError:
            pass
        data, how = read_until_eof(s, 5.0)
        st = statuses(data)
        check(st[:1] == [want], "hygiene: %s -> %s (got %s, %s)" % (name, want, st, how))


def case_emfile(host, port, pid):
    clients = 3000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, clients + 100), max(hard, clients + 100)))
    os.system("prlimit --pid %d --nofile=256:256" % pid)
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(clients):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex((host, port))
        socks.append(s)
        sel.register(s, selectors.EVENT_WRITE, {"out": get("/", close=True), "in": b""})
    answered = 0
    end = time.monotonic() + 60
    while sel.get_map() and time.monotonic() < end:
        for key, ev in sel.select(0.5):
            s, st = key.fileobj, key.data
            try:
                if ev & selectors.EVENT_WRITE:
                    s.send(st["out"])
                    sel.modify(s, selectors.EVENT_READ, st)
                    continue
                b = s.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                b = b""
            if b:
                st["in"] += b
                continue
            if st["in"].startswith(b"HTTP/1.1 200"):
                answered += 1
            sel.unregister(s)
            s.close()
    for s in socks:
        s.close()
    check(answered >= clients * 99 // 100, "emfile: %d of %d clients answered with RLIMIT_NOFILE 256 (>= 99%%)" % (answered, clients))


def read_for(socks, seconds):
    """What each socket received in `seconds` (keep-alive: no EOF to wait for)."""
    sel = selectors.DefaultSelector()
    got = {}
    for s in socks:
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        got[s] = b""
    end = time.monotonic() + seconds
    while sel.get_map() and time.monotonic() < end:
        for key, _ in sel.select(max(0.0, end - time.monotonic())):
            try:
                b = key.fileobj.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                b = b""
            if b:
                got[key.fileobj] += b
            else:
                sel.unregister(key.fileobj)
    sel.close()
    return got


def case_fdreuse(host, port, pid):
    # Clients that reset during a /delay free their fd numbers; the clients
    # right behind them get those numbers (the kernel hands out the lowest
    # free one). A timer that finds its connection by fd number answers them.
    rounds, clients, delay = 3, 8, 0.3
    wrong = []
    for _ in range(rounds):
        t0 = time.monotonic()
        old = [connect(host, port) for _ in range(clients)]
        for s in old:
            s.sendall(get("/delay/%d" % int(delay * 1000)))
        time.sleep(0.1)  # read and waiting
        for s in old:
            reset(s)
        time.sleep(0.05)  # the server has seen the resets and closed their fds
        new = [connect(host, port) for _ in range(clients)]
        for s in new:
            s.sendall(get("/"))
        # Until well after the old timers were due.
        got = read_for(new, t0 + delay + 0.3 - time.monotonic())
        for s in new:
            data = got[s]
            if statuses(data) != ["200"] or data.count(b"hello from") != 1:
                wrong.append(data[:200])
            s.close()
    check(not wrong, "fdreuse: %d clients on the fds of clients that reset during a /delay each got their "
          "own one answer (wrong: %d, first %r)" % (rounds * clients, len(wrong), wrong[:1]))


# The examples' request body limit: mini_http::limits::max_body_bytes, and
# body_limit() in the Beast example.
BODY_LIMIT = 1024 * 1024


def case_smuggle(host, port, pid):
    # Each request is followed by another: if the server took the first as
    # bodiless, the bytes meant as its body would be answered as a request.
    behind = get("/delay/7")
    cases = []
    for te in (b"gzip", b"identity", b"chunked, identity", b"xchunked", b"chunked\r\nTransfer-Encoding: identity"):
        cases.append(("Transfer-Encoding: %s" % te.decode().replace("\r\n", " + "),
                      b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: " + te + b"\r\n\r\n" + behind, "400"))
    cases += [
        ("no Host", b"GET / HTTP/1.1\r\n\r\n" + behind, "400"),
        ("two Host fields", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" + behind, "400"),
        ("two Host fields in HTTP/1.0", b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n", "400"),
        ("Content-Length one over the body limit",
         b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % (BODY_LIMIT + 1), "413"),
    ]
    for name, raw, want in cases:
        s = connect(host, port)
        s.sendall(raw)
        data, how = read_until_eof(s, 5.0)
        s.close()
        st = statuses(data)
        check(st == [want] and how == "eof", "smuggle: %s -> %s and close, nothing more (got %s, %s)" %
              (name, want, st, how))


def case_continue(host, port, pid):
    head = b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
    s = connect(host, port)
    s.sendall(head)
    t0 = time.monotonic()
    first = read_for([s], 0.5)[s]
    check(statuses(first) == ["100"] and first.endswith(b"\r\n\r\n"),
          "continue: 100 Continue within 0.5 s of a head with Expect: 100-continue (got %r after %.2f s)"
          % (first[:60], time.monotonic() - t0))
    s.setblocking(True)
    s.sendall(b"hello")
    rest, how = read_until_eof(s, 5.0)
    s.close()
    st = statuses(first + rest)
    check(st[-1:] == ["404"] and st.count("100") <= 1 and how == "eof",
          "continue: then the body, then the answer to POST / (404) (got %s, %s)" % (st, how))
    # Not to HTTP/1.0 (RFC 9110 §10.1.1), nor when the body came with the head.
    for name, raw in (("HTTP/1.0", head.replace(b"HTTP/1.1", b"HTTP/1.0")), ("body sent at once", head + b"hello")):
        s = connect(host, port)
        s.sendall(raw)
        early = read_for([s], 0.3)[s]
        s.setblocking(True)
        if name == "HTTP/1.0":
            s.sendall(b"hello")
        rest, how = read_until_eof(s, 5.0)
        s.close()
        st = statuses(early + rest)
        check(st == ["404"], "continue: %s: no 100 Continue, the answer (got %s, %s)" % (name, st, how))


def case_absolute(host, port, pid):
    # RFC 9112 §3.2.2: a server must accept the absolute form of a target.
    cases = [
        ("http://hostile/", "200", b"hello from"),
        ("HTTP://hostile:8080/delay/5", "200", b"delayed 5 ms"),
        ("http://hostile", "200", b"hello from"),  # empty path: "/"
        ("https://hostile/nothing", "404", b"not found"),
        ("http://user@hostile/", "400", b""),  # userinfo: refused (RFC 9110 §4.2.4)
        ("http:///", "400", b""),  # no host
    ]
    for target, want, body in cases:
        s = connect(host, port)
        s.sendall(get(target, close=True))
        data, how = read_until_eof(s, 5.0)
        s.close()
        st = statuses(data)
        check(st == [want] and body in data, "absolute: GET %s -> %s (got %s, %r)" % (target, want, st, data[-40:]))


def main():
    case, host, port, pid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    globals()["case_" + case](host, port, pid)
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
