#!/bin/bash
# A program that cannot run because of its interpreter is named as such:
# "#!/usr/bin/foo" missing, "#!/usr/bin/env foo" with no foo in PATH (the
# PATH the program gets), an interpreter that is not executable, an ELF
# whose dynamic loader is missing; before listening (127/126), and when the
# interpreter goes away after sockact-run started (the waiting client is reset).
# With --adopt, a statically linked program is named (LD_PRELOAD cannot work).
#   run_interpreter.sh SOCKACT_RUN
SOCKACT_RUN=$(realpath "$1")  # the script works in its own folder
. "$(dirname "$0")/run_lib.sh"
CLIENTS=$(realpath "$(dirname "$0")/clients.py")
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3) || skip "python3 not found"

# script FILE SHEBANG: an executable script.
script() {
  printf '%s\necho hello\n' "$2" >"$1"
  chmod 755 "$1"
}
# before_listening NAME: OUT has no "listening" line.
before_listening() {
  [[ $OUT != *"listening on"* ]] && pass "$1: found out before listening" || fail "$1: listened first: $OUT"
}

P=$(free_port)
cd "$E2E_TMP"

script app.sh '#!/usr/bin/no-such-interpreter-sockact'
expect_exit "missing interpreter" 127 timeout 5 "$SOCKACT_RUN" -l 127.0.0.1:$P -- ./app.sh
expect_contains "missing interpreter: named" "$OUT" "./app.sh: interpreter /usr/bin/no-such-interpreter-sockact not found"
before_listening "missing interpreter"

script env.sh '#!/usr/bin/env no-such-command-sockact'
expect_exit "#!/usr/bin/env with no such command" 127 timeout 5 "$SOCKACT_RUN" -l 127.0.0.1:$P -- ./env.sh
expect_contains "#!/usr/bin/env with no such command: named" "$OUT" \
  './env.sh: interpreter "no-such-command-sockact" (#!/usr/bin/env no-such-command-sockact) not found in PATH'
script env-s.sh '#!/usr/bin/env -S no-such-command-sockact --flag'
expect_exit "#!/usr/bin/env -S" 127 timeout 5 "$SOCKACT_RUN" -l 127.0.0.1:$P -- ./env-s.sh
expect_contains "#!/usr/bin/env -S: named" "$OUT" 'interpreter "no-such-command-sockact"'
# The PATH the program gets (-E PATH=...) is the one that counts.
mkdir -p bin
script bin/my-interpreter-sockact '#!/bin/sh'
script env-path.sh '#!/usr/bin/env my-interpreter-sockact'
expect_exit "#!/usr/bin/env without it in PATH" 127 timeout 5 "$SOCKACT_RUN" -l 127.0.0.1:$P -- ./env-path.sh
run_start env-path --inetd -E "PATH=$E2E_TMP/bin:$PATH" -l 127.0.0.1:$P -- ./env-path.sh
out=$("$PY" "$CLIENTS" wait "$P" 10)
expect_contains "#!/usr/bin/env with it in -E PATH: runs" "$out" "data hello"
kill -TERM "$RUN_PID"
wait_exit "$RUN_PID" 10 || true

printf 'not a program\n' >"$E2E_TMP/plain-file"
script not-exec.sh "#!$E2E_TMP/plain-file"
expect_exit "interpreter not executable" 126 timeout 5 "$SOCKACT_RUN" -l 127.0.0.1:$P -- ./not-exec.sh
expect_contains "interpreter not executable: named" "$OUT" "./not-exec.sh: interpreter $E2E_TMP/plain-file is not an executable file"

if command -v readelf >/dev/null 2>&1; then
  loader=$(readelf -l /bin/true 2>/dev/null | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
  if [ -n "$loader" ]; then
    missing=${loader%?}X
    "$PY" -c 'import sys; d = open("/bin/true", "rb").read(); open(sys.argv[3], "wb").write(d.replace(sys.argv[1].encode(), sys.argv[2].encode(), 1))' \
      "$loader" "$missing" "$E2E_TMP/foreign-true"
    chmod 755 foreign-true
    expect_exit "ELF interpreter missing" 127 timeout 5 "$SOCKACT_RUN" -l 127.0.0.1:$P -- ./foreign-true
    expect_contains "ELF interpreter missing: named" "$OUT" "./foreign-true: ELF interpreter $missing not found"
  fi
fi

# The interpreter goes after sockact-run started: exec fails at the first
# connection; reported the same way, the client is reset, exit 127.
cp /bin/sh "$E2E_TMP/vanishing-sh"
script late.sh "#!$E2E_TMP/vanishing-sh"
run_start late -l 127.0.0.1:$P -- ./late.sh
rm "$E2E_TMP/vanishing-sh"
out=$("$PY" "$CLIENTS" wait "$P" 10)
wait_exit "$RUN_PID" 10 && [ "$RC" = 127 ] && pass "interpreter gone later: exit 127" || fail "interpreter gone later: exit ${RC:-none}"
[[ $out == "reset after "* || $out == "eof after "* ]] && pass "interpreter gone later: the client learns at once ($out)" ||
  fail "interpreter gone later: the client got $out"
expect_contains "interpreter gone later: named" "$(cat "$RUN_LOG")" \
  "cannot run ./late.sh: interpreter $E2E_TMP/vanishing-sh not found"

# --adopt: a program LD_PRELOAD cannot reach (statically linked, directly or
# as the interpreter of a script) is named before the first client waits; a
# dynamically linked one is not.
if command -v gcc >/dev/null && printf 'int main(void) { return 0; }\n' >st.c && gcc -static -o static-app st.c 2>/dev/null; then
  : >fake-adopt.so
  script static.sh "#!$E2E_TMP/static-app"
  for prog in ./static-app ./static.sh; do
    OUT=$(timeout 1 "$SOCKACT_RUN" --adopt=./fake-adopt.so -l 127.0.0.1:$P -- "$prog" 2>&1 || true)
    expect_contains "--adopt with a static program ($prog): warned before listening" "${OUT%%listening on*}" \
      "is statically linked: no dynamic loader runs, so nothing reads LD_PRELOAD"
  done
  OUT=$(timeout 1 "$SOCKACT_RUN" --adopt=./fake-adopt.so -l 127.0.0.1:$P -- /bin/true 2>&1 || true)
  [[ $OUT != *"warning: --adopt"* ]] && pass "--adopt with a dynamic program: no warning" ||
    fail "--adopt with a dynamic program warned: $OUT"
else
  echo "note: no static gcc here; the --adopt static-program check is not run"
fi

# A missing program itself is still named as the program.
expect_exit "missing program" 127 timeout 5 "$SOCKACT_RUN" -l 127.0.0.1:$P -- ./no-such-app.sh
expect_contains "missing program: named" "$OUT" 'PROGRAM "./no-such-app.sh" not found'

finish
