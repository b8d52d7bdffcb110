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
"""
import asyncio
import socket
import sys
import time


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


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "wait":
        wait(port, float(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else None)
    elif mode == "burst":
        asyncio.run(burst(port, int(sys.argv[3]), float(sys.argv[4]), sys.argv[5]))
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
