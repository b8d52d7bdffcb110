#!/usr/bin/env python3
"""Clients and fd set-ups for the fault-injection tests (tests/fault/*.sh).

  fault_client.py emfile HOST PORT PID [--dropped-ok]
      Lowers the server's RLIMIT_NOFILE (prlimit on its pid) so that a few
      held-open connections use up its fds; more clients connect while accept()
      fails with EMFILE; the server's CPU time over that period must stay low
      (no busy loop); after the held connections close, the waiting clients
      must be answered and new requests must work.
  fault_client.py resets HOST PORT PID
      Bursts of clients that reset at once (SO_LINGER {1,0} + close), reset
      mid-request, or reset before the answer; the server keeps serving, keeps
      an unrelated keep-alive connection, and does not leak fds.
  fault_client.py spawn SPEC... -- PROGRAM ARGS...
      Execs PROGRAM with fds 3.. set up as SPEC says and LISTEN_PID set to its
      own pid (exec keeps it); LISTEN_FDS defaults to the number of SPECs.
      SPEC: tcp, udp, unix, file, fifo, devnull, dir, closed. Files and unix
      sockets go to $FAULT_TMP (else a new temporary directory).

Every wait is bounded; each failed check prints a line that starts with "FAIL:".
"""

import fcntl
import os
import resource
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from httpcheck import (alive, check, connect, exit_status, fetch, is_200, read_response, read_until_eof,  # noqa: E402
                       request, reset)

REQUEST = request(host="fault", close=True)
KEEPALIVE_REQUEST = request(host="fault")


def cpu_ticks(pid):
    """utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except FileNotFoundError:
        return -1  # exited


def get(host, port, timeout=10.0):
    """One GET / with Connection: close; returns the response bytes (b"error: ..." on failure)."""
    try:
        return fetch(host, port, REQUEST, timeout)[0]
    except OSError as e:
        return ("error: %s" % e).encode()


def wait_until(pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def emfile(host, port, pid, dropped_ok):
    first = get(host, port)
    check(is_200(first) and (b"pid=%d " % pid) in first, "server pid %d answers before the test" % pid)
    base = fd_count(pid)
    spare = 10
    limit = base + spare
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (limit, limit))
    print("server has %d fds open; RLIMIT_NOFILE set to %d" % (base, limit), flush=True)

    held = []
    for _ in range(spare + 6):  # more than fit: accept() then fails with EMFILE
        held.append(connect(host, port))
    full = wait_until(lambda: fd_count(pid) >= limit - 1, 5)
    check(full, "server reached its fd limit (%d of %d open)" % (fd_count(pid), limit))
    if not alive(pid):
        check(False, "server alive when out of fds")
        return

    waiting = []
    for _ in range(4):
        s = connect(host, port)
        s.sendall(REQUEST)
        waiting.append(s)

    t0, c0 = time.monotonic(), cpu_ticks(pid)
    time.sleep(2.0)
    t1, c1 = time.monotonic(), cpu_ticks(pid)
    hz = os.sysconf("SC_CLK_TCK")
    share = (c1 - c0) / hz / (t1 - t0)
    print("CPU during EMFILE: %.1f%% (%d ticks at %d Hz in %.2f s)" % (share * 100, c1 - c0, hz, t1 - t0),
          flush=True)
    check(share < 0.30, "no busy loop while accept() fails with EMFILE (CPU %.1f%% < 30%%)" % (share * 100))
    check(alive(pid), "server alive while out of fds")

    for s in held:
        s.close()
    deadline = time.monotonic() + 15
    outcomes = []
    for s in waiting:
        data, how = read_until_eof(s, deadline - time.monotonic())
        s.close()
        outcomes.append("200" if is_200(data) else how)
    print("waiting clients: " + " ".join(outcomes), flush=True)
    if dropped_ok:
        # libuv's own EMFILE handling (uv__emfile_trick) accepts and closes the
        # queued connections: they end without an answer, but must not hang.
        check("timeout" not in outcomes, "waiting clients answered or closed, none left hanging")
    else:
        check(outcomes == ["200"] * len(waiting), "waiting clients answered with 200 after fds were freed")

    answers = [get(host, port) for _ in range(3)]
    check(all(is_200(a) for a in answers), "new requests answered after recovery")
    check(alive(pid), "server alive after recovery")


def resets(host, port, pid):
    check(is_200(get(host, port)), "server answers before the test")
    base = fd_count(pid)
    keep = connect(host, port)
    keep.sendall(KEEPALIVE_REQUEST)
    check(is_200(read_response(keep, 10)[0]), "keep-alive connection answered")

    for round_ in range(3):
        for _ in range(100):  # connect and reset at once: ECONNABORTED/ECONNRESET around accept()
            reset(connect(host, port))
        for _ in range(30):  # reset in the middle of a request
            s = connect(host, port)
            s.sendall(b"GET / HTTP/1.1\r\nHost: fault\r\nX-Pad: ")
            reset(s)
        for _ in range(30):  # reset while the server has an answer to write
            s = connect(host, port)
            s.sendall(b"GET /delay/20 HTTP/1.1\r\nHost: fault\r\n\r\n")
            reset(s)
        for _ in range(30):  # full request, reset before reading the answer
            s = connect(host, port)
            s.sendall(KEEPALIVE_REQUEST * 3)
            reset(s)
        check(is_200(get(host, port)), "round %d: a normal request after the resets gets 200" % (round_ + 1))

    keep.sendall(KEEPALIVE_REQUEST)
    check(is_200(read_response(keep, 10)[0]), "the keep-alive connection still works")
    keep.close()
    check(alive(pid), "server alive after 570 reset connections")
    settled = wait_until(lambda: fd_count(pid) <= base, 10)
    check(settled, "no fd leaked: %d fds open, %d before" % (fd_count(pid), base))
    if not settled:
        os.system("ls -l /proc/%d/fd; ss -tanpe 'sport = :%d or dport = :%d'" % (pid, port, port))


def spawn(specs, argv):
    """Sets up fds 3.. as specs says, then execs argv with LISTEN_PID = this pid."""
    tmp = os.environ.get("FAULT_TMP") or tempfile.mkdtemp(prefix="sockact-fault-")
    made = []  # (slot, fd or None); each made fd is moved to 100+ first so none collide
    keep = []  # the pipes' write ends: open until exec closes them (CLOEXEC)
    for i, spec in enumerate(specs):
        if spec == "tcp":
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            s.listen(16)
        elif spec == "udp":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
        elif spec == "unix":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(os.path.join(tmp, "s%d" % i))
            s.listen(16)
        elif spec == "file":
            path = os.path.join(tmp, "f%d" % i)
            with open(path, "w") as f:
                f.write("not a socket\n")
            s = os.open(path, os.O_RDONLY)
        elif spec == "fifo":
            r, w = os.pipe()
            keep.append(w)
            s = r
        elif spec == "devnull":
            s = os.open("/dev/null", os.O_RDWR)
        elif spec == "dir":
            s = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY)
        elif spec == "closed":
            made.append((3 + i, None))
            continue
        else:
            sys.exit("unknown spec " + spec)
        fd = s if isinstance(s, int) else s.detach()
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 100)
        os.close(fd)
        made.append((3 + i, high))
    for slot, high in made:
        if high is None:
            try:
                os.close(slot)
            except OSError:
                pass
        else:
            os.dup2(high, slot, inheritable=True)
            os.close(high)
    env = dict(os.environ)
    env.setdefault("LISTEN_FDS", str(len(specs)))
    env["LISTEN_PID"] = str(os.getpid())
    os.execve(argv[0], argv, env)


def main():
    args = sys.argv[1:]
    if not args:
        sys.exit(__doc__)
    cmd = args.pop(0)
    if cmd == "spawn":
        split = args.index("--")
        spawn(args[:split], args[split + 1:])
    elif cmd in ("emfile", "resets"):
        started = time.monotonic()
        try:
            if cmd == "emfile":
                emfile(args[0], int(args[1]), int(args[2]), "--dropped-ok" in args[3:])
            else:
                resets(args[0], int(args[1]), int(args[2]))
        except Exception as e:  # a client-side error (timeout, refused) is a failure too
            import traceback
            traceback.print_exc()
            check(False, "%s: %r after %.2f s" % (cmd, e, time.monotonic() - started))
    else:
        sys.exit(__doc__)
    sys.exit(exit_status())


if __name__ == "__main__":
    main()
