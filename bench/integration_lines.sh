#!/bin/bash
# Counts the lines each example adds for sockact: the lines marked `// sockact`
# (a server that already works without sockact gains exactly these). Prints a
# Markdown table with the target per kind of loop. A target missed is
# reported (MISS), like the other benchmarks' targets; exit 1 only when an
# example carries no marker at all (the count would be meaningless).
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
  [ "$n" -le "$target" ] || verdict="**MISS**"
  [ "$n" -gt 0 ] || { verdict="**not marked**"; status=1; }
  table+="
| example-$dir | $kind | $n | ≤ $target $verdict |"
done
echo "$table"
if [ -n "$results" ]; then
  printf '\n## Integration cost (bench/integration_lines.sh)\n\nLines marked `// sockact` in each example: what a user adds to a server that already works.\n\n%s\n' "$table" >>"$results"
fi
exit $status
