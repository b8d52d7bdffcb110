#!/bin/bash
# Every C++ block of the README and of docs/*.md still compiles: each ```cpp or
# ```c++ fenced block is extracted and compiled on its own with
#   -std=c++17 -Wall -Wextra -Werror -fsyntax-only -I include
# plus the pkg-config flags of the library it includes (libuv, libevent,
# libmicrohttpd, cpp-httplib; Asio and Boost by their headers). A block whose
# library is missing is skipped with the reason. A block that is deliberately
# a fragment is marked by the line right before its fence:
#   <!-- fragment: why -->
# and is counted, not compiled. Any other block that does not compile fails.
#   docs_code_blocks.sh SOURCE_DIR CXX INCLUDE_DIR
SRC=${1:?usage: docs_code_blocks.sh SOURCE_DIR CXX INCLUDE_DIR}
CXX=${2:?}
INCLUDE=${3:?}
. "$(dirname "$0")/lib.sh"

# Extract: one file per block, named PAGE-LINE.cpp, with a list of
# "file<TAB>kind<TAB>page:line<TAB>reason" lines.
mkdir -p "$E2E_TMP/blocks"
for page in "$SRC/README.md" "$SRC"/docs/*.md; do
  awk -v out="$E2E_TMP/blocks" -v page="${page#"$SRC/"}" '
    function base() { p = page; gsub(/[\/.]/, "_", p); return out "/" p "-" NR ".cpp" }
    !on && /^[ \t]*```(cpp|c\+\+)[ \t]*$/ {
      on = 1; file = base(); kind = (prev ~ /^<!-- fragment:/) ? "fragment" : "code"
      reason = prev; sub(/^<!-- fragment:[ \t]*/, "", reason); sub(/[ \t]*-->[ \t]*$/, "", reason)
      if (kind == "code") reason = ""
      printf "%s\t%s\t%s:%d\t%s\n", file, kind, page, NR, reason >> (out "/list")
      printf "" > file
      next
    }
    on && /^[ \t]*```[ \t]*$/ { on = 0; close(file); prev = ""; next }
    on { sub(/^  /, "", $0); print >> file; next }   # a block indented in a list item
    !/^[ \t]*$/ { prev = $0 }
  ' "$page"
done
[ -s "$E2E_TMP/blocks/list" ] || { fail "no C++ blocks found under $SRC"; finish; exit 1; }

# dep_flags FILE: the flags for the libraries FILE includes; returns 1 and
# sets WHY when one is missing.
have_header() { printf '#include <%s>\n' "$1" | "$CXX" -std=c++17 -fsyntax-only -x c++ - >/dev/null 2>&1; }
dep_flags() {
  local f=$1 pc
  FLAGS=() WHY=
  for pc in libuv:'sockact/libuv|uv\.h' libevent:'sockact/libevent|event2/' \
            libmicrohttpd:'sockact/microhttpd|microhttpd\.h' cpp-httplib:'sockact/httplib|httplib\.h'; do
    grep -Eq "^#include <(${pc#*:})" "$f" || continue
    pkg-config --exists "${pc%%:*}" 2>/dev/null || { WHY="pkg-config cannot find ${pc%%:*}"; return 1; }
    read -r -a more <<<"$(pkg-config --cflags "${pc%%:*}")"
    FLAGS+=("${more[@]}")
  done
  if grep -Eq '^#include <(boost/|sockact/sync_stream)' "$f" && ! have_header boost/asio.hpp; then
    WHY="no Boost.Asio headers"; return 1
  fi
  if grep -Eq '^#include <asio(\.hpp|/)' "$f" && ! have_header asio.hpp; then
    WHY="no standalone asio headers"; return 1
  fi
  return 0
}

compiled=0 fragments=0 skipped=0
while IFS=$'\t' read -r file kind where reason; do
  if [ "$kind" = fragment ]; then
    fragments=$((fragments + 1))
    [ -n "$reason" ] || fail "$where: a fragment mark without a reason"
    continue
  fi
  if ! dep_flags "$file"; then
    skipped=$((skipped + 1)); echo "SKIP: $where: $WHY"; continue
  fi
  if "$CXX" -std=c++17 -Wall -Wextra -Werror -fsyntax-only -I"$INCLUDE" "${FLAGS[@]}" -x c++ "$file" \
    >"$file.log" 2>&1; then
    compiled=$((compiled + 1)); pass "$where compiles"
  else
    fail "$where does not compile (mark it <!-- fragment: why --> if it is meant as a fragment):"
    sed 's/^/    | /' "$file.log" | head -40
  fi
done <"$E2E_TMP/blocks/list"

echo "C++ blocks: $compiled compiled, $fragments fragments, $skipped skipped (a library missing)"
[ "$compiled" -gt 0 ] || fail "no block was compiled"
finish
