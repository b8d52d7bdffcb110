#!/bin/sh
# Builds a root filesystem folder for `podman run --rootfs DIR`: the statically
# linked server and a minimal /etc. No image, no registry.
#   make-rootfs.sh BINARY DIR      e.g. make-rootfs.sh build/examples/example-posix-http-static /var/lib/example-posix-http/rootfs
# The binary lands at DIR/example-posix-http (the name the units run). DIR is
# created, or refreshed when it exists (only the files below are written).
set -eu
BIN=${1:?usage: make-rootfs.sh BINARY DIR}
DIR=${2:?usage: make-rootfs.sh BINARY DIR}
if [ ! -x "$BIN" ]; then
  echo "make-rootfs.sh: $BIN is not an executable" >&2
  exit 1
fi
# A dynamically linked binary would fail inside with a bare "no such file or directory".
if command -v file >/dev/null 2>&1 && ! file -L "$BIN" | grep -q 'statically linked'; then
  echo "make-rootfs.sh: $BIN is not statically linked (build the target example-posix-http-static)" >&2
  exit 1
fi
umask 022
mkdir -p "$DIR/etc" "$DIR/proc" "$DIR/sys" "$DIR/dev" "$DIR/tmp" "$DIR/run"
chmod 1777 "$DIR/tmp"
cp "$BIN" "$DIR/example-posix-http.new"
chmod 755 "$DIR/example-posix-http.new"
mv -f "$DIR/example-posix-http.new" "$DIR/example-posix-http"
printf 'root:x:0:0:root:/:/example-posix-http\nnobody:x:65534:65534:nobody:/:/example-posix-http\n' >"$DIR/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$DIR/etc/group"
echo "make-rootfs.sh: $DIR ready ($(du -sh "$DIR" | cut -f1)); run: podman run --rm --network=none --rootfs $DIR /example-posix-http"
