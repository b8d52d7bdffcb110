#!/usr/bin/env python3
"""The drain at the idle boundary, against a running example (drain_fault.sh).

  drain.py CASE HOST PORT PID LOG

CASE:
  sigidle    SIGTERM during an idle drain: a request received after the drain
             began (from a client connected before it) is still answered
  pooled     a client holds an idle keep-alive connection, as HTTP client
             pools do, and does not close it on FIN: a new client that comes
             while the idle drain lingers on it is served at once by this
             process (it used to wait for the linger, then for a cold start);
             then SIGTERM during the next idle drain's linger
  sendstall  a client pipelines requests and never reads: SEND_TIMEOUT resets
             it, and the server still exits when idle

Every wait is bounded; each check prints PASS: or FAIL:; exit 1 on any FAIL.
The server's exit status is checked by drain_fault.sh.
"""

import functools
import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from httpcheck import (check, connect, exit_status, read_response, read_until_eof, request, send_unread,  # noqa: E402
                       status)

get = functools.partial(request, host="drain")


def wait_eof(s, limit):
    """'eof', 'reset' or 'timeout', discarding data."""
    return read_until_eof(s, limit)[1]


def log_count(log, what):
    try:
        with open(log, errors="replace") as f:
            return f.read().count(what)
    except FileNotFoundError:
        return 0


def wait_log(log, what, n=1, limit=6.0):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if log_count(log, what) >= n:
            return True
        time.sleep(0.02)
    return False


def case_sigidle(host, port, pid, log):
    # Connected before the idle drain, silent until it began: a new
    # connection's grace lets it send its request then.
    c = connect(host, port)
    check(wait_log(log, "stopping (IDLE)"), "sigidle: the idle drain began (IDLE_TIMEOUT=1)")
    time.sleep(0.3)
    c.sendall(get("/delay/1500"))
    time.sleep(0.4)
    os.kill(pid, signal.SIGTERM)  # systemd stopping the unit, mid-drain
    data, how = read_response(c, 6.0)
    check(status(data) == "200" and b"delayed 1500" in data,
          "sigidle: the request received during the idle drain is answered despite SIGTERM (%s, %r)"
          % (how, data[:60]))


def case_pooled(host, port, pid, log):
    pooled = connect(host, port)
    pooled.sendall(get("/"))
    data, how = read_response(pooled)
    check(status(data) == "200", "pooled: the pooled connection is answered (%s)" % how)
    check(wait_log(log, "stopping (IDLE)"), "pooled: the idle drain began (IDLE_TIMEOUT=0.5)")
    check(wait_eof(pooled, 1.0) == "eof", "pooled: the idle keep-alive connection gets a FIN")
    # The pooled client does not close its side: the drain lingers on it.
    worst = 0.0
    for i in range(3):
        t0 = time.monotonic()
        try:
            fresh = connect(host, port)
            fresh.sendall(get("/"))
            data, how = read_response(fresh, 5.0)
        except OSError as e:  # refused: the process had exited and nothing starts it again here
            check(False, "pooled: a new client during the drain's linger: %s" % e)
            return
        took = time.monotonic() - t0
        worst = max(worst, took)
        check(status(data) == "200" and (b"pid=%d" % pid) in data,
              "pooled: a new client during the drain's linger is served by this process (%s, %r)"
              % (how, data[:60]))
        if i < 2:
            fresh.close()
            time.sleep(0.05)
    check(worst < 0.5, "pooled: ... at once, not after the linger (worst %.3f s, < 0.5 s)" % worst)
    # Idle again; the last client is pooled too. SIGTERM during that linger:
    # the process exits 0 (drain_fault.sh checks), it is not killed.
    check(wait_log(log, "stopping (IDLE)", 2), "pooled: idle again")
    check(wait_eof(fresh, 1.0) == "eof", "pooled: the second pooled connection gets a FIN")
    time.sleep(0.2)
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:  # no linger left to wait for (the thread driver's closes shut both sides)
        print("note: pooled: the server had exited before the SIGTERM", flush=True)
    pooled.close()


def case_sendstall(host, port, pid, log):
    s = connect(host, port)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sent = send_unread(s, get("/") * 512, 3.0, 0.05)  # until the server stops reading
    print("note: sendstall: %.1f MB of requests sent, none of the answers read" % (sent / 1e6), flush=True)
    # SEND_TIMEOUT=1: the server resets the connection, then exits when idle
    # (about 2 s; 15 s leaves room for a loaded machine and sanitizers, and
    # without the send timeout it stays up for good).
    end = time.monotonic() + 15.0
    gone = False
    while time.monotonic() < end and not gone:
        try:
            os.kill(pid, 0)
            time.sleep(0.1)
        except ProcessLookupError:
            gone = True
    check(gone, "sendstall: a client that never reads does not pin the server (SEND_TIMEOUT=1, IDLE_TIMEOUT=1)")
    s.close()


def main():
    case, host, port, pid, log = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    globals()["case_" + case](host, port, pid, log)
    return exit_status()


if __name__ == "__main__":
    sys.exit(main())
