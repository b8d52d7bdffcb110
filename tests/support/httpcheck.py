"""What the Python test clients share: PASS:/FAIL: checks, connections,
requests, reading and parsing answers, and the server's state from /proc.

A client beside another folder imports it with

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
    import httpcheck  # noqa: E402

Every read is bounded; how a read ended is one of "ok" (what was wanted
arrived), "eof", "reset" or "timeout".
"""

import collections
import re
import socket
import struct
import threading
import time

failures = 0
_lock = threading.Lock()


def check(ok, what):
    """Prints PASS: or FAIL: and what; counts the failures (from any thread)."""
    global failures
    with _lock:
        if not ok:
            failures += 1
        print(("PASS: " if ok else "FAIL: ") + what, flush=True)


def exit_status():
    return 1 if failures else 0


# ---------------------------------------------------------------- connections

def connect(host, port, timeout=5.0):
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def reset(s):
    """Closes with SO_LINGER {1, 0}: an RST instead of a FIN (the server reads ECONNRESET)."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def request(path="/", host="sockact", close=False):
    """A GET request; with close, it says Connection: close."""
    return ("GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (path, host, "Connection: close\r\n" if close else "")).encode()


# ---------------------------------------------------------------- reading

def read_until(s, limit, enough=None):
    """Reads s until enough(data) is true, the peer closes or resets it, or
    `limit` seconds pass: (data, how)."""
    s.settimeout(0.2)
    data = b""
    end = time.monotonic() + limit
    while not (enough is not None and enough(data)):
        if time.monotonic() >= end:
            return data, "timeout"
        try:
            b = s.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return data, "reset"
        if not b:
            return data, "eof"
        data += b
    return data, "ok"


def read_until_eof(s, limit=10.0):
    """(bytes, how it ended: 'eof', 'reset' or 'timeout')."""
    return read_until(s, limit)


def read_response(s, limit=5.0):
    """One whole response: (data, how); how is 'ok' once it is all there."""
    return read_until(s, limit, lambda data: parse_responses(data)[0])


def read_responses(s, want=None, limit=5.0):
    """Reads until `want` whole responses (None: until EOF): ([responses], how)."""
    data, how = read_until(s, limit, None if want is None else lambda data: len(parse_responses(data)[0]) >= want)
    return parse_responses(data)[0], how


def send_unread(s, data, seconds, pause, each=None):
    """Sends data again and again for `seconds` without reading the answers,
    sleeping `pause` s whenever the socket's buffer is full, until an error (the
    server reset it); calls each() after every try. The bytes sent."""
    s.setblocking(False)
    sent = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            sent += s.send(data)
        except BlockingIOError:
            time.sleep(pause)
        except OSError:
            break
        if each is not None:
            each()
    return sent


def fetch(host, port, req, timeout=10.0):
    """req on a new connection, then the answer until the server closes it:
    (data, how). Raises OSError when the connection or the send fails."""
    with connect(host, port, timeout) as s:
        s.sendall(req)
        return read_until_eof(s, timeout)


# ---------------------------------------------------------------- answers

Response = collections.namedtuple("Response", "status headers body line")
Response.__doc__ = "status (int), headers ({lower-case name: [values]}), body (bytes), the status line (str)"


def parse_responses(data):
    """The whole responses (head and Content-Length body) at the front of
    data: ([Response], the bytes after them)."""
    out = []
    while True:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            break
        lines = data[:end].decode("latin-1").split("\r\n")
        m = re.match(r"HTTP/1\.[01] (\d{3}) ", lines[0] + " ")
        if not m:
            break
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers.setdefault(k.strip().lower(), []).append(v.strip())
        n = int(headers.get("content-length", ["0"])[0])
        if len(data) < end + 4 + n:
            break
        out.append(Response(int(m.group(1)), headers, data[end + 4:end + 4 + n], lines[0]))
        data = data[end + 4 + n:]
    return out, data


def says_close(response):
    return "close" in [v.lower() for v in response.headers.get("connection", [])]


def statuses(data):
    """The status codes of every status line in data, as strings."""
    return [m.decode() for m in re.findall(rb"HTTP/1\.[01] (\d{3}) ", data)]


def status(data):
    """The status code of the status line data starts with, or None."""
    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", data)
    return m.group(1).decode() if m else None


def is_200(data):
    return data.startswith(b"HTTP/1.1 200")


# ---------------------------------------------------------------- the server process

def alive(pid):
    """Running, and not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def rss_mb(pid):
    """Resident memory in MB, or -1 when the process is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except FileNotFoundError:
        pass
    return -1.0
