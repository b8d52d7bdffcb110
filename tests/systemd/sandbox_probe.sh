#!/bin/bash
# shellcheck disable=SC2317 # tcp and write below are called through result
# Tries two things the example services' sandbox forbids and prints one line:
#   sockact-probe TAG: tcp=RESULT write=RESULT netns=net:[INODE]
# RESULT is "ok" or the error (e.g. "Read-only file system").
# usage: sandbox_probe.sh TAG HOST PORT DIR
#   tcp:   a TCP connection to HOST:PORT (bash's /dev/tcp: socket(2) + connect(2))
#   write: creating (then removing) a file in DIR
# Always exits 0: as an ExecStartPost= of the service under test, it must not
# decide whether the service starts; the test reads the line instead.
tag=$1 host=$2 port=$3 dir=$4

# result CMD...: "ok", or the last words of the error CMD printed.
result() {
  local err
  if err=$("$@" 2>&1); then
    echo ok
  else
    err=${err##*$'\n'}
    echo "${err##*: }"
  fi
}
tcp() { : 3<>"/dev/tcp/$host/$port"; }
write() { : >"$dir/sockact-probe.$$" && rm -f "$dir/sockact-probe.$$"; }

echo "sockact-probe $tag: tcp=$(result tcp) write=$(result write) netns=$(readlink /proc/self/ns/net)"
exit 0
