#!/bin/bash
# Scores every shipped *.service below EXAMPLES_DIR with
# `systemd-analyze security --offline=true` and fails above MAX (default 2.0,
# on systemd's scale of 0.0 to 10.0). Prints the score table, with what each
# unit still leaves open.
# usage: units_security.sh EXAMPLES_DIR [MAX]
#
# Units whose ExecStart= runs podman are left out: podman itself needs
# privileges (it sets up the container's namespaces, cgroups and mounts), so the
# sandbox belongs inside the container, not on the unit (docs/sandboxing.md).
# EXAMPLES_DIR/common/hardening.conf, the block the units copy, is scored too,
# in a unit that adds only DynamicUser=yes and NoNewPrivileges=yes; and the
# same unit without the block must fail, so the check can fail.
# Exit status: 0 all within MAX, 1 one is not (or usage error), 77 cannot run here.
set -euo pipefail
DIR=${1:?usage: units_security.sh EXAMPLES_DIR [MAX]}
MAX=${2:-2.0}
[[ $MAX =~ ^[0-9]+(\.[0-9])?$ ]] || { echo "units_security.sh: MAX: a number like 2.0" >&2; exit 1; }
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze not found"; exit 77; }
systemd-analyze security --help 2>&1 | grep -q -- '--offline' ||
  { echo "SKIP: systemd-analyze has no 'security --offline' (systemd < 250)"; exit 77; }
HARDENING=$DIR/common/hardening.conf

tmp=$(mktemp -d /tmp/sockact-security.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# tenths X.Y: the number in tenths (systemd-analyze's --threshold scale).
tenths() { echo $((${1%.*} * 10 + ${1#*.})); }
max=$(tenths "$MAX")

# score UNIT_FILE: prints "X.Y LEVEL" and the open items; its status is
# systemd-analyze's, non-zero above MAX (--threshold). The binary need not exist.
score() {
  local out rc=0
  out=$(systemd-analyze security --offline=true --threshold="$max" --no-pager "$1" 2>&1) || rc=$?
  if [[ $out =~ Overall\ exposure\ level\ for\ [^:]*:\ ([0-9]+\.[0-9])\ ([A-Z]+) ]]; then
    echo "${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"
  else
    echo "? (no score)"
    rc=1
  fi
  # what is left: the rows marked ✗, name and exposure
  grep '^✗' <<<"$out" | awk '{ printf "      %-50s %s\n", $2, $NF }' || true
  [ -z "$out" ] || [[ $out == *"Overall exposure"* ]] || sed 's/^/      | /' <<<"$out"
  return $rc
}

# directives FILE: the setting lines (no comments, no section headers).
directives() { grep -Ev '^[[:space:]]*([#;]|\[|$)' "$1"; }

fails=0
row() {  # NAME FILE [EXPECT]: one row; EXPECT=over: must be rated above MAX
  local name=$1 file=$2 expect=${3:-within} result rc=0
  result=$(score "$file") || rc=$?
  printf '  %-62s %s\n' "$name" "$(head -n 1 <<<"$result")"
  if [ "$expect" = over ]; then
    rc=$((!rc))
  else
    tail -n +2 <<<"$result"
  fi
  if [ "$rc" != 0 ]; then
    fails=$((fails + 1))
    echo "  FAIL: $name: expected $expect $MAX"
  fi
}

units=()
skipped=()
while IFS= read -r -d '' f; do
  if grep -Eq '^ExecStart=[^[:space:]]*podman([[:space:]]|$)' "$f"; then
    skipped+=("${f#"$DIR"/}")
  else
    units+=("$f")
  fi
done < <(find "$DIR" -type f -name '*.service' -print0 | sort -z)
[ ${#units[@]} -gt 0 ] || { echo "units_security.sh: no *.service below $DIR" >&2; exit 1; }

echo "systemd-analyze security --offline=true, at most $MAX ($(systemd-analyze --version | head -n 1)):"
for f in "${units[@]}"; do
  row "${f#"$DIR"/}" "$f"
  # Not a failure: a unit may leave a setting out (with a comment saying why).
  if [ -f "$HARDENING" ]; then
    missing=$(directives "$HARDENING" | grep -vxF -f <(directives "$f") || true)
    [ -z "$missing" ] || echo "      note: not as in common/hardening.conf: $(tr '\n' ' ' <<<"$missing")"
  fi
done

# The block on its own, and the check itself: without the block it must fail.
if [ -f "$HARDENING" ]; then
  printf '[Service]\nExecStart=/usr/local/bin/example\nDynamicUser=yes\nNoNewPrivileges=yes\n' >"$tmp/bare.service"
  { cat "$tmp/bare.service"; directives "$HARDENING"; } >"$tmp/hardened.service"
  row "common/hardening.conf (+ DynamicUser=, NoNewPrivileges=)" "$tmp/hardened.service"
  row "control: DynamicUser=, NoNewPrivileges= only (must be over)" "$tmp/bare.service" over
else
  echo "units_security.sh: $HARDENING missing" >&2
  fails=$((fails + 1))
fi
for s in "${skipped[@]}"; do
  printf '  %-62s %s\n' "$s" "not scored: runs podman, which needs privileges"
done
echo "${#units[@]} units scored, ${#skipped[@]} not scored, $fails failed"
[ "$fails" = 0 ]
