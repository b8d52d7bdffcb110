#!/bin/bash
# Lints unit files offline with `systemd-analyze verify`.
# usage: verify_units.sh [--map FROM=TO]... DIR...
#
# Verifies every *.socket and *.service in the DIRs in one call, so that each socket
# finds its service. Fails when verify fails or prints anything: verify exits 0 on
# unknown keys and sections and bad values, which it only reports as warnings.
#
# verify fails on Exec*= commands that do not exist or are not executable (except
# with the "-" prefix). Units that name their installed path, e.g.
# ExecStart=/usr/local/bin/sockact-inspect, can be checked before installation with
# --map /usr/local/bin/sockact-inspect=/path/to/build/sockact-inspect: the units are
# then verified from a temporary copy in which FROM is replaced by TO on Exec*= lines.
#
# verify writes below /run/systemd, so it runs in a private mount namespace with a
# tmpfs on /run (as root; otherwise in a user namespace too, where one is allowed).
# Exit status: 0 clean, 1 findings or usage error, 77 cannot run here.
set -euo pipefail

maps=()
dirs=()
while [ $# -gt 0 ]; do
  case $1 in
    --map)
      [[ ${2:-} == /*=/* ]] || { echo "verify_units.sh: --map wants FROM=TO, absolute paths" >&2; exit 1; }
      maps+=("$2")
      shift 2
      ;;
    --map=*) set -- --map "${1#--map=}" "${@:2}" ;;
    -*) echo "usage: verify_units.sh [--map FROM=TO]... DIR..." >&2; exit 1 ;;
    *) dirs+=("$1"); shift ;;
  esac
done
[ ${#dirs[@]} -gt 0 ] || { echo "usage: verify_units.sh [--map FROM=TO]... DIR..." >&2; exit 1; }
command -v systemd-analyze >/dev/null || { echo "SKIP: systemd-analyze not found"; exit 77; }
ns=(unshare --mount)
[ "$(id -u)" = 0 ] || ns=(unshare --map-root-user --mount)
"${ns[@]}" true 2>/dev/null || { echo "SKIP: cannot create a mount namespace (${ns[*]})"; exit 77; }

tmp=$(mktemp -d /tmp/sockact-verify.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# map FROM TO FILE: FROM replaced by TO on the Exec*= lines of FILE. Literally: awk's
# index(), not a regex; ENVIRON, since -v would interpret backslashes.
map() {
  FROM=$1 TO=$2 awk '
    /^[ \t]*Exec[A-Za-z]*=/ {
      out = ""
      while ((i = index($0, ENVIRON["FROM"])) > 0) {
        out = out substr($0, 1, i - 1) ENVIRON["TO"]
        $0 = substr($0, i + length(ENVIRON["FROM"]))
      }
      $0 = out $0
    }
    { print }' "$3" >"$3.new"
  mv "$3.new" "$3"
}

# Each DIR is copied whole when mapping, so that drop-in dirs and units that the
# verified ones refer to are found next to them as before.
if [ ${#maps[@]} -gt 0 ]; then
  for i in "${!dirs[@]}"; do
    mkdir "$tmp/$i"
    cp -R "${dirs[i]}/." "$tmp/$i/"
    dirs[i]=$tmp/$i
  done
  while IFS= read -r -d '' f; do
    for m in "${maps[@]}"; do map "${m%%=*}" "${m#*=}" "$f"; done
  done < <(find "$tmp" -type f \( -name '*.socket' -o -name '*.service' -o -name '*.conf' \) -print0)
fi

units=()
for d in "${dirs[@]}"; do
  while IFS= read -r -d '' f; do units+=("$f"); done \
    < <(find "$d" -maxdepth 1 -type f \( -name '*.socket' -o -name '*.service' \) -print0 | sort -z)
done
[ ${#units[@]} -gt 0 ] || { echo "verify_units.sh: no *.socket or *.service in: ${dirs[*]}" >&2; exit 1; }

rc=0
out=$("${ns[@]}" sh -c 'mount -t tmpfs tmpfs /run && exec systemd-analyze verify --man=no "$@"' sh \
  "${units[@]}" 2>&1) || rc=$?
names=$(printf '%s\n' "${units[@]##*/}" | tr '\n' ' ')
if [ "$rc" = 0 ] && [ -z "$out" ]; then
  echo "verify_units.sh: clean: $names"
  exit 0
fi
echo "verify_units.sh: findings (exit status $rc) for: $names"
printf '%s\n' "$out" | sed 's/^/  /'
exit 1
