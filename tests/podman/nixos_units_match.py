#!/usr/bin/env python3
"""Compares a NixOS module with the units it is meant to produce.

  nixos_units_match.py MODULE.nix UNIT_DIR

There is no Nix on the test machines, so the module is never evaluated; its
units are checked in beside it, verified and run. This keeps the two from
drifting apart: every value the module sets for the container, the socket and
the service must appear in podman-NAME.service / podman-NAME.socket in
UNIT_DIR. The module must be in the shape of the shipped examples (a `name =
"..."` binding, `virtualisation.oci-containers.containers.${name}`,
`systemd.sockets."podman-${name}"`, `systemd.services."podman-${name}"`).
Prints one PASS/FAIL line per value; exit 1 on any failure.
"""

import re
import sys

nix_path, unit_dir = sys.argv[1], sys.argv[2]
nix = open(nix_path, encoding="utf-8").read()
# Comments would hide nothing here, but they mention values too: drop them.
nix = "\n".join(re.sub(r"(^|\s)#.*$", "", line) for line in nix.splitlines())
fails = 0


def check(name, ok, detail=""):
    global fails
    print(("PASS: " if ok else "FAIL: ") + name + ("" if ok else f" ({detail})"))
    if not ok:
        fails += 1


def one(pattern, what):
    m = re.search(pattern, nix, re.S)
    if not m:
        check(f"the module sets {what}", False, f"no match for {pattern!r}")
        return None
    return m.group(1)


def units(kind):
    path = f"{unit_dir}/podman-{name}.{kind}"
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"\\\n\s*", " ", text)  # continuation lines joined
    keys = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z]+)=(.*)$", line)
        if m:
            keys.setdefault(m.group(1), []).append(m.group(2))
    return keys


def strings(body):
    return re.findall(r'"([^"]*)"', body)


name = one(r'\bname\s*=\s*"([^"]+)"\s*;', "name")
if name is None:
    sys.exit(1)
svc, sock = units("service"), units("socket")
start = " ".join(svc.get("ExecStart", []))
check("the service has one ExecStart=", len(svc.get("ExecStart", [])) == 1, svc.get("ExecStart"))
argv = start.split()

# virtualisation.oci-containers.containers.${name}
image = one(r'\bimage\s*=\s*"([^"]+)"\s*;', "image")
if image:
    image = image.replace("${name}", name)
    check(f"podman run's last argument is the image {image}", argv[-1:] == [image], argv[-1:])
check(f"--name={name}", f"--name={name}" in argv, start)
env = one(r"\benvironment\s*=\s*\{(.*?)\};", "environment")
if env is not None:
    pairs = re.findall(r'([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"([^"]*)"\s*;', env)
    check("the module's environment is not empty", bool(pairs), env)
    for k, v in pairs:
        check(f"-e {k}={v}", f"{k}={v}" in [a for i, a in enumerate(argv) if i and argv[i - 1] in ("-e", "--env")],
              start)
    given = [a.split("=", 1)[0] for i, a in enumerate(argv) if i and argv[i - 1] in ("-e", "--env")]
    extra = sorted(set(given) - {k for k, _ in pairs})
    check("no -e that the module does not set", not extra, extra)
opts = one(r"\bextraOptions\s*=\s*\[(.*?)\]\s*;", "extraOptions")
if opts is not None:
    for o in strings(opts):
        check(f"extraOptions {o}", o in argv, start)
auto = one(r"\bautoStart\s*=\s*(true|false)\s*;", "autoStart")
check("autoStart = false: the service has no [Install]", auto == "false" and "WantedBy" not in svc,
      f"autoStart={auto}, WantedBy={svc.get('WantedBy')}")

# systemd.sockets."podman-${name}"
listen = one(r"\blistenStreams\s*=\s*\[(.*?)\]\s*;", "listenStreams")
if listen is not None:
    check(f"ListenStream= {strings(listen)}", sock.get("ListenStream") == strings(listen), sock.get("ListenStream"))
fdname = one(r'FileDescriptorName\s*=\s*"([^"]*)"\s*;', "FileDescriptorName")
check(f"FileDescriptorName={fdname}", sock.get("FileDescriptorName") == [fdname], sock.get("FileDescriptorName"))
wanted = one(r"\bwantedBy\s*=\s*\[(.*?)\]\s*;", "wantedBy")
if wanted is not None:
    check(f"socket WantedBy= {strings(wanted)}", sock.get("WantedBy") == strings(wanted), sock.get("WantedBy"))

# systemd.services."podman-${name}"
for key, unit_key in (("requires", "Requires"), ("after", "After")):
    body = one(rf"\b{key}\s*=\s*\[(.*?)\]\s*;", key)
    if body is not None:
        want = [s.replace("${name}", name) for s in strings(body)]
        check(f"{unit_key}= {want}", svc.get(unit_key) == want, svc.get(unit_key))
restart = one(r'serviceConfig\.Restart\s*=\s*lib\.mkForce\s*"([^"]+)"\s*;', "Restart with lib.mkForce")
check(f"Restart={restart} (forced: oci-containers says always)", svc.get("Restart") == [restart], svc.get("Restart"))
for key, unit_key in (("startLimitIntervalSec", "StartLimitIntervalSec"), ("startLimitBurst", "StartLimitBurst")):
    m = re.search(rf"\b{key}\s*=\s*(\d+)\s*;", nix)
    if m:
        check(f"{unit_key}={m.group(1)}", svc.get(unit_key) == [m.group(1)], svc.get(unit_key))

print(f"{nix_path} vs {unit_dir}: {'match' if not fails else f'{fails} difference(s)'}")
sys.exit(1 if fails else 0)
