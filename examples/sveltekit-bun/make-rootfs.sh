#!/bin/sh
# Builds a root filesystem folder for `podman run --rootfs DIR`: programs with
# the shared libraries they load (as ldd lists them), the built SvelteKit app
# and libsockact-adopt.so. No image, no registry.
#   make-rootfs.sh [--app APP] [--adopt LIBRARY] DIR PROGRAM...
# Each PROGRAM lands in DIR/usr/local/bin/ under its own name, each library at
# the path ldd names; --app APP copies APP/build and APP/package.json (adapter-node's
# output is ESM: package.json says "type": "module") to DIR/app; --adopt puts
# the library at DIR/usr/local/lib/libsockact-adopt.so. DIR is created, or
# refreshed when it exists: only files that differ are copied again.
#   make-rootfs.sh --app examples/sveltekit-bun/app --adopt build/tools/libsockact-adopt.so \
#     /var/lib/sveltekit-bun/rootfs .cache/npm/node_modules/@oven/bun-linux-x64/bin/bun /usr/bin/node
set -eu
usage="usage: make-rootfs.sh [--app APP] [--adopt LIBRARY] DIR PROGRAM..."
APP='' LIB=''
while [ $# -gt 0 ]; do
  case $1 in
    --app) APP=${2:?$usage}; shift 2 ;;
    --adopt) LIB=${2:?$usage}; shift 2 ;;
    -*) echo "$usage" >&2; exit 2 ;;
    *) break ;;
  esac
done
DIR=${1:?$usage}
shift
[ $# -gt 0 ] || [ -n "$APP" ] || { echo "$usage" >&2; exit 2; }
umask 022

# put SRC DEST: copies SRC (following links) to DIR/DEST unless the same bytes are there.
put() {
  if ! cmp -s "$1" "$DIR$2"; then
    mkdir -p "$(dirname "$DIR$2")"
    cp -L "$1" "$DIR$2.new"
    mv -f "$DIR$2.new" "$DIR$2"
  fi
}
# libs FILE: the shared libraries FILE loads, with the dynamic loader, as ldd
# resolves them here ("name => /path (addr)" or "/path (addr)"). None for a static file.
libs() {
  ldd "$1" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' || true
}
# with_libs FILE DEST: FILE at DEST, and every library it needs.
with_libs() {
  [ -f "$1" ] || { echo "make-rootfs.sh: $1: no such file" >&2; exit 1; }
  put "$1" "$2"
  for l in $(libs "$1"); do put "$l" "$l"; done
}

mkdir -p "$DIR/etc" "$DIR/proc" "$DIR/sys" "$DIR/dev" "$DIR/tmp" "$DIR/run" "$DIR/root"
chmod 1777 "$DIR/tmp"
for p in "$@"; do
  [ -x "$p" ] || { echo "make-rootfs.sh: $p is not an executable" >&2; exit 1; }
  with_libs "$p" "/usr/local/bin/$(basename "$p")"
  chmod 755 "$DIR/usr/local/bin/$(basename "$p")"
done
if [ -n "$LIB" ]; then
  with_libs "$LIB" /usr/local/lib/libsockact-adopt.so
fi
if [ -n "$APP" ]; then
  [ -f "$APP/build/index.js" ] || { echo "make-rootfs.sh: no $APP/build/index.js (run build.sh first)" >&2; exit 1; }
  rm -rf "$DIR/app.new"
  mkdir -p "$DIR/app.new"
  cp -R "$APP/build" "$DIR/app.new/build"
  cp "$APP/package.json" "$DIR/app.new/package.json"
  rm -rf "$DIR/app"
  mv "$DIR/app.new" "$DIR/app"
fi
printf 'root:x:0:0:root:/root:/usr/local/bin/none\nnobody:x:65534:65534:nobody:/:/usr/local/bin/none\n' >"$DIR/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$DIR/etc/group"
echo "make-rootfs.sh: $DIR ready ($(du -sh "$DIR" | cut -f1))"
