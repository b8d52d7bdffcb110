#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Writes the seed corpora in corpus/<target>/ (run from anywhere; rewrites them).
# The values are systemd's edge cases: bases, signs, whitespace, range limits,
# escapes, and each address form.
import os
import shutil

here = os.path.dirname(os.path.abspath(__file__))


def write(target, seeds):
    d = os.path.join(here, "corpus", target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for i, s in enumerate(seeds):
        with open(os.path.join(d, "seed-%03d" % i), "wb") as f:
            f.write(s if isinstance(s, bytes) else s.encode())


numbers = ["1", "2", "0", "-0", "-1", "+1", "0x2a", "0X2A", " 052", "052", "0b101", "0B1", "0o17", "0O7",
           "\t\n\r 3", "\v3", "3 ", "", " ", "4294967296", "2147483647", "2147483648", "2147483644",
           "2147483645", "18446744073709551615", "18446744073709551616", "-18446744073709551615", "0x",
           "0b", "0b2", "1e3", "3\n", "9" * 40]
names = ["", "web", "a:b", "a\\:b", "a\\", "\\\\", "a::b", ":", "web:admin:x", "connection", "stored",
         "unknown:unknown", "x" * 300]


def listen_seed(flags, slots, present, pid="", fds="", fdnames="", pidfdid=""):
    return bytes([flags, slots, present]) + b"\0".join(v.encode() for v in (pid, fds, fdnames, pidfdid))


seeds = []
for enc in range(8):  # our pid in each encoding, one fd, named
    seeds.append(listen_seed(2 | (enc << 2), 0x01, 0x06, fds="1", fdnames="web"))
for n in numbers:
    seeds.append(listen_seed(2, 0xFF, 0x02, fds=n))           # our pid, fuzzed count
    seeds.append(listen_seed(0, 0xFF, 0x03, pid=n, fds="1"))  # fuzzed pid
    seeds.append(listen_seed(2 | 32, 0x0F, 0x0A, fds="2", pidfdid=n))
for nm in names:
    seeds.append(listen_seed(2, 0x03, 0x06, fds="2", fdnames=nm))
    seeds.append(listen_seed(3, 0x03, 0x06, fds="2", fdnames=nm))
seeds += [listen_seed(2, 0x05, 0x02, fds="3"),            # a hole at fd 4
          listen_seed(2, 0xFF, 0x02, fds="8"), listen_seed(2, 0xFF, 0x02, fds="9"),
          listen_seed(2, 0x00, 0x02, fds="1"), listen_seed(0, 0xFF, 0x03, pid="1", fds="1"),
          listen_seed(2 | 32 | 4, 0x01, 0x02, fds="1"), listen_seed(0x42, 0x01, 0x03, pid="1", fds="1"),
          listen_seed(0x82, 0x01, 0x03, pid="1", fds="1"), listen_seed(0, 0, 0x02, fds="1"),
          listen_seed(0, 0, 0x01, pid="1"), listen_seed(0, 0, 0)]
write("listen_fds", seeds)

write("endpoints", [
    "127.0.0.1:8080", "[::1]:80", "8080", "0", "65535", "65536", "99999", "/run/app.sock", "./app.sock",
    "../app.sock", "@abstract", "@", "sd-listen", "sd-listen:*", "sd-listen:web", "sd-listen:",
    "127.0.0.1:80,[::1]:80 /tmp/x.sock\t@y\nsd-listen:web", ",, ,", "", "::1:80", "[::1]80", "[::1]:",
    "[]:80", "[::ffff:1.2.3.4]:443", "[fe80::1%lo]:80", "1.2.3.4:", ":80", "1.2.3:80", "01.2.3.4:80",
    "localhost:80", "08080", " 80", "80x", "+80", "/" + "p" * 107, "/" + "p" * 108, "@" + "a" * 107,
    "@" + "a" * 108, "a\\:b", "127.0.0.1:8080\0:1", "0x2a", "2.5"])

write("address_env", [
    b"\x00", b"\x01/run/app.sock", b"\x01app.sock", b"\x01@abstract", b"\x01sd-listen", b"\x01@",
    b"\x01" + b"a" * 120, b"\x02127.0.0.1", b"\x02::1", b"\x02\x00::1\x008080", b"\x04\x00\x0080",
    b"\x06\x00[::1]\x0080", b"\x06\x00localhost\x0080", b"\x04\x00\x00http", b"\x04\x00\x0065536",
    b"\x04\x00\x00 80", b"\x07\x00127.0.0.1\x00443", b"\x06\x00::1]:80\x003000", b"\x06\x001.2.3.4:5\x001",
    b"\x06\x00\x00", b"\x06\x00::ffff:1.2.3.4\x00080"])

seconds = ["30", "2.5", "0", "0.001", "0.0005", "1.", ".5", "-5", "+5", "1e3", "0x10", " 5", "5 ", "31622400",
           "31622401", "31622400.999", "99999999999999999999", "1.23456789", "2.5s", "", "0" * 50 + "1",
           "1." + "9" * 60, "NaN", "inf"]
write("lifecycle", [b"\x03" + s.encode() + b"\0" + s.encode() for s in seconds] +
      [b"\x01" + s.encode() for s in seconds] + [b"\x02\x00" + s.encode() for s in seconds])

write("notify_address", [
    "/run/systemd/notify", "@abstract", "@", "/", "@a", "/" + "p" * 106, "/" + "p" * 107, "@" + "a" * 106,
    "@" + "a" * 107, "vsock:2:5", "vsock:host:5", "vsock:any:5", "vsock::5", "vsock:-1:5", "vsock:2:-1",
    "vsock:2:4294967295", "vsock:2:4294967296", "vsock:0x2:0o17", "vsock: 2: 5", "vsock-stream:2:5",
    "vsock-dgram:local:1", "vsock-seqpacket:hypervisor:1", "vsock-bogus:2:5", "vsock:2", "vsock", "", "x",
    "unix:/run/x", "vsock:4294967295:1", "vsock:4294967294:1"])

write("notify_send", ["READY=1", "STATUS=serving\nMAINPID=1", "", "READY=1\0STATUS=hidden", "\0",
                      "STATUS=" + "x" * 3000, "WATCHDOG=1\n", "FDSTORE=1\nFDNAME=web"])

# mini_http: byte 0 picks the limits (0: defaults), bytes 1-4 seed the splits,
# the rest is one connection's bytes.
GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
requests = [
    GET, GET + GET + b"GET /delay/5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 02\r\ncontent-length: 2\r\n\r\nab",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc",
    b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\nGET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", b"GET / HTTP/1.2\r\nHost: x\r\n\r\n", b"GET / http/1.1\r\n\r\n",
    b"\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", b"GET / HTTP/1.1\nHost: x\n\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", b"GET / HTTP/1.1\r\nX: a\x00b\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, close\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n" + b"A: b\r\n" * 120 + b"\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 9000 + b"\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\n",
]
write("mini_http", [bytes([lim, 7, 0, 0, 0]) + r for lim in (0, 0x15, 0x2a, 0x3f) for r in requests])
