#!/usr/bin/env python3
"""Clients for the sockact-run tests, on 127.0.0.1 only.

  clients.py wait PORT SECONDS [SEND]
      connects (sends SEND and a newline, if given), then waits for the
      server's answer; prints one line: "data <first line> after S s",
      "eof after S s", "reset after S s", "refused" or "timeout after S s".
  clients.py burst PORT N SECONDS WANT
      N connections at once, each reading until the server closes it; prints
      "ok=A failed=B elapsed=S" where ok counts the answers that contain WANT,
      and the first few failures.
  clients.py stream PORT LOOPS STOPFILE
      LOOPS clients, each sending GET / on a fresh connection, one after the
      other (5 ms apart), until STOPFILE exists; prints "ok=A failed=B
      pids=C slowest=S" (C: how many processes answered; S: the slowest
      answer, in seconds) and the first few failures.
"""
import asyncio
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from httpcheck import fetch, request  # noqa: E402


def wait(port, seconds, send=None):
    start = time.monotonic()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=seconds)
    except ConnectionRefusedError:
        print("refused")
        return
    except ConnectionResetError:  # reset before connect() returned
        print("reset after %.3f s" % (time.monotonic() - start))
        return
    s.settimeout(seconds)
    try:
        if send is not None:
            s.sendall(send.encode() + b"\n")
        data = s.recv(4096)
        took = time.monotonic() - start
        if data:
            print("data %s after %.3f s" % (data.decode(errors="replace").splitlines()[0], took))
        else:
            print("eof after %.3f s" % took)
    except ConnectionResetError:
        print("reset after %.3f s" % (time.monotonic() - start))
    except socket.timeout:
        print("timeout after %.3f s" % (time.monotonic() - start))
    finally:
        s.close()


async def one(port, seconds, want):
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), seconds)
        data = await asyncio.wait_for(reader.read(), seconds)
        writer.close()
        return (want in data.decode(errors="replace"), repr(data[:60]))
    except Exception as e:  # noqa: BLE001 - every failure is counted and shown
        return (False, type(e).__name__ + " " + str(e))


async def burst(port, n, seconds, want):
    start = time.monotonic()
    results = await asyncio.gather(*(one(port, seconds, want) for _ in range(n)))
    ok = sum(1 for good, _ in results if good)
    failures = [why for good, why in results if not good][:5]
    print("ok=%d failed=%d elapsed=%.2f %s" % (ok, n - ok, time.monotonic() - start, "; ".join(failures)))


def http_get(port, seconds):
    """One GET / on a fresh connection: (ok, pid or why, seconds)."""
    start = time.monotonic()
    try:
        data, how = fetch("127.0.0.1", port, request(host="test", close=True), seconds)
    except OSError as e:
        return (False, type(e).__name__ + " " + str(e), time.monotonic() - start)
    text = data.decode(errors="replace")
    took = time.monotonic() - start
    if how != "eof":
        return (False, "%s after %r" % (how, text[:80]), took)
    if " 200 " not in text.split("\r\n", 1)[0] or "pid=" not in text:
        return (False, "answer %r" % text[:80], took)
    return (True, text.split("pid=", 1)[1].split()[0], took)


def stream(port, loops, stopfile):
    import os
    import threading

    results = []
    lock = threading.Lock()

    def loop():
        while not os.path.exists(stopfile):
            r = http_get(port, 10)
            with lock:
                results.append(r)
            time.sleep(0.005)

    threads = [threading.Thread(target=loop) for _ in range(loops)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [r for r in results if r[0]]
    failures = [r[1] for r in results if not r[0]][:5]
    print("ok=%d failed=%d pids=%d slowest=%.3f %s" % (
        len(ok), len(results) - len(ok), len(set(r[1] for r in ok)),
        max((r[2] for r in results), default=0), "; ".join(failures)))


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "wait":
        wait(port, float(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else None)
    elif mode == "burst":
        asyncio.run(burst(port, int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]))
    elif mode == "stream":
        stream(port, int(sys.argv[3]), sys.argv[4])
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
