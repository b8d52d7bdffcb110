#!/bin/bash
# Counts the lines each example adds for sockact: the lines marked `// sockact`
# (a server that already works without sockact gains exactly these). Prints a
# Markdown table with the target per kind of loop. Exit 1 when a target is
# missed (MISS), when an example carries no marker at all, or when a line
# names sockact without the marker (the count would be meaningless).
#   bench/integration_lines.sh [--results FILE]   (appends the table to FILE)
set -euo pipefail
cd "$(dirname "$0")/.."
results=
[ "${1:-}" = "--results" ] && results=${2:?}

# example  kind  target
rows=(
  "posix-http epoll 15"
  "asio-http Asio 10"
  "beast-http Beast 10"
  "libuv-http libuv 10"
  "httplib blocking 15"
  "beast-sync Beast-sync 15"
  "asio-coro Asio-coroutines 10"
  "libevent-http libevent-evhttp 15"
  "microhttpd libmicrohttpd 15"
)
table="| example | loop | sockact lines | target |
| --- | --- | --- | --- |"
status=0
for row in "${rows[@]}"; do
  read -r dir kind target <<<"$row"
  f=examples/$dir/main.cpp
  [ -f "$f" ] || continue
  n=$(grep -c '// sockact$' "$f" || true)
  verdict=ok
  [ "$n" -le "$target" ] || { verdict="**MISS**"; status=1; }
  [ "$n" -gt 0 ] || { verdict="**not marked**"; status=1; }
  # Code that names sockact without the mark would make the count a lie. The
  # exceptions are neutral: the fd RAII type a plain server could have had
  # anyway, and the aliases that pick Boost.Asio or standalone asio (only
  # those names are let through, not the rest of their line). Lines that only
  # use a member a marked line declared (conn.stream() where a plain libuv
  # server writes &c->tcp) are the server's own lines and are not counted.
  unmarked=$(grep -n 'sockact' "$f" | grep -v '// sockact$' | grep -Ev '^[0-9]+: *//|^[0-9]+:#include "' |
    sed -E 's/sockact::(unique_fd|asio_ns|asio_error_code)\b//g' | grep 'sockact' || true)
  if [ -n "$unmarked" ]; then
    verdict="**unmarked sockact code**"
    status=1
    printf '%s: sockact code without the mark:\n%s\n' "$f" "$unmarked" >&2
  fi
  table+="
| example-$dir | $kind | $n | ≤ $target $verdict |"
done
echo "$table"
if [ -n "$results" ]; then
  printf '\n## Integration cost (bench/integration_lines.sh)\n\nLines marked `// sockact` in each example: what a user adds to a server that already works.\n\n%s\n' "$table" >>"$results"
fi
exit $status
