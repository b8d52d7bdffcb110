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

import os
import random
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import httpcheck  # noqa: E402

PORT, TOTAL, SECONDS, NAME = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4].encode()
lock = threading.Lock()
stats = {"sent": 0, "ok": 0, "failed": 0, "retried": 0}
failures = []
deadline = time.monotonic() + SECONDS


def req(close=False):
    return httpcheck.request(host="mixed", close=close)


def connect():
    return httpcheck.connect("127.0.0.1", PORT, 15)


def read_answers(s, n):
    """Reads n answers (head + Content-Length body): (answers, no byte of another answer at EOF, why not all)."""
    buf = b""
    while True:
        answers, rest = httpcheck.parse_responses(buf)
        if len(answers) >= n:
            return answers[:n], True, ""
        try:
            b = s.recv(65536)
        except (ConnectionResetError, socket.timeout) as e:
            return answers, False, str(e)
        if not b:
            return answers, rest == b"", "EOF"
        buf += b


def account(kind, answers, want, why):
    good = sum(1 for r in answers if r.status == 200 and r.line.startswith("HTTP/1.1 ") and NAME in r.body)
    with lock:
        stats["sent"] += want
        stats["ok"] += good
        if good != want:
            stats["failed"] += want - good
            if len(failures) < 10:
                failures.append("%s: %d of %d answered (%s)" % (kind, good, want, why))


def exchange(kind, n, requests, delay=0):
    """On a new connection: sleeps `delay` s, sends requests, expects n answers."""
    s = connect()
    if delay:
        time.sleep(delay)
    s.sendall(requests)
    answers, _, why = read_answers(s, n)
    account(kind, answers, n, why)
    s.close()


def fresh():
    exchange("fresh", 1, req(close=True))


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
    exchange("pipelined", 2, req() + req(close=True))


def late():
    delay = random.uniform(0.5, 1.5)
    n = random.choice([1, 2])
    exchange("late", n, req() * (n - 1) + req(close=True), delay)


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
