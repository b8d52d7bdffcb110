#!/usr/bin/env python3
"""Mixed clients around the idle deadline of a socket-activated server.

  mixed_clients.py PORT REQUESTS SECONDS NAME

Eight workers send, until REQUESTS requests were made or SECONDS passed:
  fresh      one request per connection (Connection: close)
  keepalive  two requests on one connection, 0.3-0.8 s apart (across deadlines)
  pipelined  two requests in one write
  late       connect, wait 0.5-1.5 s, then one request or a pipelined pair
Each answer must be a 200 from NAME. One exception, as HTTP allows: a request
on a reused keep-alive connection that the server closed while it was idle
(EOF before any byte of the answer) is retried once on a new connection, as
curl and browsers do; those retries are counted and printed. Prints the counts
and one line per failure; exit 1 when any request failed.
"""

import random
import re
import socket
import sys
import threading
import time

PORT, TOTAL, SECONDS, NAME = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4].encode()
lock = threading.Lock()
stats = {"sent": 0, "ok": 0, "failed": 0, "retried": 0}
failures = []
deadline = time.monotonic() + SECONDS


def req(close=False):
    return b"GET / HTTP/1.1\r\nHost: mixed\r\n" + (b"Connection: close\r\n" if close else b"") + b"\r\n"


def connect():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=15)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_answers(s, n):
    """Reads n answers (head + Content-Length body). Returns (answers, buffer_was_empty_at_eof)."""
    buf = b""
    answers = []
    while len(answers) < n:
        m = re.match(rb"HTTP/1\.1 (\d{3})[^\r]*\r\n(.*?)\r\n\r\n", buf, re.S)
        if m:
            cl = re.search(rb"content-length: *(\d+)", m.group(2), re.I)
            end = m.end() + (int(cl.group(1)) if cl else 0)
            if len(buf) >= end:
                answers.append((m.group(1), buf[m.end():end]))
                buf = buf[end:]
                continue
        try:
            b = s.recv(65536)
        except (ConnectionResetError, socket.timeout) as e:
            return answers, False, str(e)
        if not b:
            return answers, buf == b"", "EOF"
        buf += b
    return answers, True, ""


def account(kind, answers, want, why):
    good = sum(1 for code, body in answers if code == b"200" and NAME in body)
    with lock:
        stats["sent"] += want
        stats["ok"] += good
        if good != want:
            stats["failed"] += want - good
            if len(failures) < 10:
                failures.append("%s: %d of %d answered (%s)" % (kind, good, want, why))


def fresh():
    s = connect()
    s.sendall(req(close=True))
    answers, _, why = read_answers(s, 1)
    account("fresh", answers, 1, why)
    s.close()


def keepalive():
    s = connect()
    s.sendall(req())
    answers, _, why = read_answers(s, 1)
    account("keepalive first", answers, 1, why)
    time.sleep(random.uniform(0.3, 0.8))
    try:
        s.sendall(req(close=True))
        again, clean_eof, why = read_answers(s, 1)
    except OSError as e:
        again, clean_eof, why = [], True, str(e)
    if not again and clean_eof:
        # The server closed the idle connection before our request reached it.
        with lock:
            stats["retried"] += 1
        s.close()
        s = connect()
        s.sendall(req(close=True))
        again, _, why = read_answers(s, 1)
    account("keepalive reused", again, 1, why)
    s.close()


def pipelined():
    s = connect()
    s.sendall(req() + req(close=True))
    answers, _, why = read_answers(s, 2)
    account("pipelined", answers, 2, why)
    s.close()


def late():
    s = connect()
    time.sleep(random.uniform(0.5, 1.5))
    n = random.choice([1, 2])
    s.sendall(req() * (n - 1) + req(close=True))
    answers, _, why = read_answers(s, n)
    account("late", answers, n, why)
    s.close()


def worker(seed):
    random.seed(seed)
    kinds = [fresh, fresh, keepalive, pipelined, late]
    while time.monotonic() < deadline:
        with lock:
            if stats["sent"] >= TOTAL:
                return
        k = random.choice(kinds)
        try:
            k()
        except OSError as e:
            account(k.__name__ + " connect", [], 1, str(e))
        if random.random() < 0.15:
            time.sleep(random.uniform(0.4, 0.9))  # let the server reach its idle deadline


threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("mixed: %(sent)d requests, %(ok)d answered, %(failed)d failed, %(retried)d idle keep-alive retries" % stats)
for f in failures:
    print("failed: " + f)
sys.exit(1 if stats["failed"] or stats["sent"] < TOTAL else 0)
