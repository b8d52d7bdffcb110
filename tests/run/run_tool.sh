#!/bin/bash
# sockact-run itself, with small programs: the environment PROGRAM gets
# (whole environment, -E, LISTEN_*, NOTIFY_SOCKET, WATCHDOG_*, REMOTE_*),
# --inetd, --datagram, unix and abstract sockets, the start limit, signals
# (forwarded; a second one kills; exit statuses), the watchdog, reaping of
# orphans (subreaper), --adopt, and the errors: bad address, port in use,
# missing or non-executable program, exec failing later.
#   run_tool.sh SOCKACT_RUN SOCKACT_INSPECT TEST_CLIENT
SOCKACT_RUN=$1
INSPECT=$2
CLIENT=$3
. "$(dirname "$0")/run_lib.sh"
need curl
need ss
need pgrep
need ps

# tcp_read PORT: connects, prints what the peer sends until it closes.
tcp_read() {
  local fd out
  exec {fd}<>"/dev/tcp/127.0.0.1/$1"
  out=$(timeout 5 cat <&$fd) || true
  exec {fd}>&-
  printf '%s' "$out"
}
# children: the processes whose parent is sockact-run, as "pid stat command".
children() { ps -o pid=,stat=,args= --ppid "$RUN_PID" 2>/dev/null || true; }
has_children() { [ -n "$(children)" ]; }

# ---- errors before listening: exit 2 (usage), 126/127 (program)
expect_exit "bad port" 2 "$SOCKACT_RUN" -l 127.0.0.1:99999 -- true
expect_contains "bad port quoted" "$OUT" 'bad address "127.0.0.1:99999"' 'port "99999"'
expect_exit "host name" 2 "$SOCKACT_RUN" -l localhost:80 -- true
expect_contains "host name quoted" "$OUT" '"localhost" is not an IPv4 address'
expect_exit "two addresses in one --listen" 2 "$SOCKACT_RUN" -l "127.0.0.1:1 127.0.0.1:2" -- true
expect_exit "unknown option" 2 "$SOCKACT_RUN" --bogus -l 1 -- true
expect_contains "unknown option named" "$OUT" '"--bogus"'
expect_exit "no --listen" 2 "$SOCKACT_RUN" -- true
expect_exit "bad --start-limit" 2 "$SOCKACT_RUN" --start-limit 5 -l 1 -- true
expect_exit "--start-limit 5/0" 2 "$SOCKACT_RUN" --start-limit 5/0 -l 1 -- true
expect_contains "--start-limit 5/0: says SECONDS is the problem" "$OUT" '"5/0": SECONDS must be more than 0'
expect_exit "bad --trigger-limit" 2 "$SOCKACT_RUN" --trigger-limit 20/-2 -l 1 -- true
expect_exit "--max-connections 010 (not octal 8)" 2 "$SOCKACT_RUN" -a --max-connections 010 -l 1 -- true
expect_exit "--max-connections without --accept" 2 "$SOCKACT_RUN" --max-connections 5 -l 1 -- true
expect_exit "bad --stop-timeout" 2 "$SOCKACT_RUN" --stop-timeout 1e3 -l 1 -- true
expect_contains "bad --stop-timeout quoted" "$OUT" '--stop-timeout "1e3"'
expect_exit "--accept with --datagram" 2 "$SOCKACT_RUN" -a -d -l 1 -- true
P=$(free_port)
expect_exit "missing program" 127 "$SOCKACT_RUN" -l 127.0.0.1:$P -- "$E2E_TMP/no-such-program"
expect_contains "missing program named" "$OUT" "\"$E2E_TMP/no-such-program\" not found"
[[ $OUT != *listening* ]] && pass "missing program: found out before listening" || fail "listened first: $OUT"
expect_exit "missing program in PATH" 127 "$SOCKACT_RUN" -l 127.0.0.1:$P -- no-such-program-sockact
expect_contains "missing program in PATH named" "$OUT" '"no-such-program-sockact" not found in PATH'
printf 'not a program\n' >"$E2E_TMP/not-executable"
chmod 644 "$E2E_TMP/not-executable"
expect_exit "not executable" 126 "$SOCKACT_RUN" -l 127.0.0.1:$P -- "$E2E_TMP/not-executable"
expect_exit "help" 0 "$SOCKACT_RUN" --help
expect_contains "help documents the exit statuses" "$OUT" "exit status:" "start limit" "126, 127"
expect_contains "help documents the limits and their defaults" "$OUT" "--max-connections N" "default 5/10" \
  "default 20/2" "--stop-timeout SECONDS" "(default 90"

# ---- port in use: exit 3, naming the address
run_start holder -l 127.0.0.1:$P -- true
expect_exit "port in use" 3 "$SOCKACT_RUN" -l 127.0.0.1:$P -- true
expect_contains "port in use: address and reason" "$OUT" "cannot listen on \"127.0.0.1:$P\"" "Address already in use"
kill -TERM "$RUN_PID"

# ---- the environment: --accept and --inetd, with a shell as the program
P=$(free_port)
export SOCKACT_RUN_TEST_MARK=inherited
run_start accept -a -l 127.0.0.1:$P -E FOO=bar --watchdog 30 -- sh -c \
  'echo "pid=$$ LISTEN_PID=$LISTEN_PID LISTEN_FDS=$LISTEN_FDS LISTEN_FDNAMES=$LISTEN_FDNAMES FOO=$FOO MARK=$SOCKACT_RUN_TEST_MARK WATCHDOG_USEC=$WATCHDOG_USEC WATCHDOG_PID=$WATCHDOG_PID REMOTE_ADDR=$REMOTE_ADDR NOTIFY_SOCKET=$NOTIFY_SOCKET" >&3'
out=$(tcp_read $P)
pid=${out#pid=}
pid=${pid%% *}
expect_contains "accept: LISTEN_* for the program's own pid, fd 3 the connection" "$out" "LISTEN_PID=$pid " \
  "LISTEN_FDS=1 " "LISTEN_FDNAMES=connection " "REMOTE_ADDR=127.0.0.1 "
expect_contains "accept: -E, the whole environment, WATCHDOG_*, NOTIFY_SOCKET" "$out" "FOO=bar " \
  "MARK=inherited " "WATCHDOG_USEC=30000000 WATCHDOG_PID=$pid " "NOTIFY_SOCKET=/"
notify=${out#*NOTIFY_SOCKET=}
kill -TERM "$RUN_PID"
wait_exit "$RUN_PID" 10 || true
[ ! -e "$notify" ] && [ ! -e "$(dirname "$notify")" ] && pass "NOTIFY_SOCKET and its folder removed at exit" ||
  fail "$notify left behind"
unset SOCKACT_RUN_TEST_MARK

P=$(free_port)
run_start inetd --inetd -l 127.0.0.1:$P -- sh -c 'read -r line; echo "got $line LISTEN_FDS=${LISTEN_FDS-unset}"'
out=$(printf 'hello\n' | curl -sS -m 5 telnet://127.0.0.1:$P 2>&1 || true)
expect_contains "inetd: the connection is stdin and stdout, no LISTEN_*" "$out" "got hello LISTEN_FDS=unset"
kill -TERM "$RUN_PID"

# ---- under a manager of its own (here another sockact-run): READY=1 once listening
P=$(free_port)
Q=$(free_port)
run_start outer -l 127.0.0.1:$P -- "$SOCKACT_RUN" -l 127.0.0.1:$Q -- true
exec {c}<>"/dev/tcp/127.0.0.1/$P"
wait_log 10 ': READY=1' && pass "an inner sockact-run tells its manager READY=1 once it listens" ||
  fail "no READY=1 from the inner sockact-run: $(cat "$RUN_LOG")"
exec {c}>&-
kill -TERM "$RUN_PID"
wait_exit "$RUN_PID" 10 && [ "$RC" = 0 ] && pass "SIGTERM through two sockact-runs: exit 0" || fail "exit ${RC:-none}"

# ---- socket kinds: datagram (the peer is shown), unix path, abstract
P=$(free_port)
run_start udp --datagram -l 127.0.0.1:$P -- "$INSPECT" --respond
out=$("$CLIENT" udp 127.0.0.1 $P ping || true)
expect_contains "datagram: UDP socket passed" "$out" "fd 3: inet datagram udp 127.0.0.1:$P"
wait_activations 1 10 || true
expect_contains "datagram: activation line with the sender" "$(cat "$RUN_LOG")" "woken by fd 3 \"unknown\" (127.0.0.1:$P), peer 127.0.0.1:"
kill -TERM "$RUN_PID"
SOCK=$E2E_TMP/app.sock
ABSTRACT=sockact-run-test-$$
run_start unix -l "$SOCK" -l "@$ABSTRACT" --fdname path:abstract -- "$INSPECT" --respond
out=$(curl -sS -m 5 --unix-socket "$SOCK" http://localhost/ || true)
expect_contains "unix path socket" "$out" "unix stream listening $SOCK" 'name="path"' "@$ABSTRACT"
out=$(curl -sS -m 5 --abstract-unix-socket "$ABSTRACT" http://localhost/ || true)
expect_contains "abstract socket" "$out" "unix stream listening @$ABSTRACT" 'name="abstract"'
kill -TERM "$RUN_PID"

# ---- start limit: a program that exits without accepting is started again
# at once for the waiting connection, until the limit stops sockact-run (4).
P=$(free_port)
run_start limit --start-limit=3/10 -l 127.0.0.1:$P -- true
exec {c}<>"/dev/tcp/127.0.0.1/$P"
if wait_exit "$RUN_PID" 10; then
  [ "$RC" = 4 ] && pass "start limit: exit 4" || fail "start limit: exit $RC"
else
  fail "start limit: sockact-run still running after 10 s"
fi
exec {c}>&-
expect_contains "start limit: says so" "$(cat "$RUN_LOG")" "start limit hit: PROGRAM was started 3 times within 10 s (--start-limit=3/10)"
[ "$(activations)" = 3 ] && pass "start limit: 3 activations reported" || fail "start limit: $(activations) activations"

# ---- exec failing after the start-up check: reported, exit 127
P=$(free_port)
cp "$(type -P true)" "$E2E_TMP/vanishing"
run_start vanish -l 127.0.0.1:$P -- "$E2E_TMP/vanishing"
rm "$E2E_TMP/vanishing"
exec {c}<>"/dev/tcp/127.0.0.1/$P"
wait_exit "$RUN_PID" 10 && [ "$RC" = 127 ] && pass "exec failure: exit 127" || fail "exec failure: exit ${RC:-none}"
exec {c}>&-
expect_contains "exec failure: reported" "$(cat "$RUN_LOG")" "cannot run $E2E_TMP/vanishing: No such file or directory"

# ---- signals
P=$(free_port)
run_start stubborn -l 127.0.0.1:$P -- sh -c 'trap "" TERM INT; exec sleep 30'
exec {c}<>"/dev/tcp/127.0.0.1/$P"
wait_until 10 has_children
kill -TERM "$RUN_PID"
sleep 0.5
kill -0 "$RUN_PID" 2>/dev/null && pass "SIGTERM forwarded; the program ignores it, sockact-run waits" ||
  fail "sockact-run exited on the first SIGTERM"
kill -TERM "$RUN_PID"
wait_exit "$RUN_PID" 10 && [ "$RC" = 137 ] && pass "second SIGTERM: SIGKILL, exit 137 (128+9)" ||
  fail "second SIGTERM: exit ${RC:-none}"
exec {c}>&-
expect_contains "second SIGTERM: reported" "$(cat "$RUN_LOG")" "sending SIGKILL" \
  "stopped: signal SIGKILL after SIGTERM from sockact-run"

P=$(free_port)
run_start sigint -l 127.0.0.1:$P -- sleep 30
exec {c}<>"/dev/tcp/127.0.0.1/$P"
wait_until 10 has_children
kill -INT "$RUN_PID"
wait_exit "$RUN_PID" 10 && [ "$RC" = 130 ] && pass "SIGINT: forwarded, the program's status: exit 130" ||
  fail "SIGINT: exit ${RC:-none}"
exec {c}>&-

# ---- watchdog: no pings, so SIGABRT
P=$(free_port)
run_start watchdog --watchdog 0.3 -l 127.0.0.1:$P -- sh -c 'ulimit -c 0; exec sleep 30'
exec {c}<>"/dev/tcp/127.0.0.1/$P"
wait_activations 1 10 || true
exec {c}>&-
expect_contains "watchdog: no WATCHDOG=1, SIGABRT" "$(cat "$RUN_LOG")" "no WATCHDOG=1 for 0.3 s: sending SIGABRT" \
  "stopped: signal SIGABRT, watchdog timeout"
kill -TERM "$RUN_PID"

# ---- orphans come to sockact-run (subreaper) and are reaped
P=$(free_port)
run_start reap -l 127.0.0.1:$P -- sh -c '(sleep 3 &); exec sleep 30'
exec {c}<>"/dev/tcp/127.0.0.1/$P"
orphan() { children | grep -q ' sleep 3$'; }
no_orphan() { ! orphan; }
wait_until 10 orphan
orphan && pass "orphan reparented to sockact-run: $(children | tr '\n' ';')" ||
  fail "orphan not reparented to sockact-run: $(children | tr '\n' ';')"
wait_until 10 no_orphan
sleep 0.2
[ "$(children | wc -l)" = 1 ] && [[ $(children) != *" Z"* ]] && pass "orphan reaped: $(children)" ||
  fail "zombie left: $(children | tr '\n' ';')"
exec {c}>&-
kill -TERM "$RUN_PID"

# ---- --adopt: found next to the executable or in ../lib; else an error
mkdir -p "$E2E_TMP/prefix/bin" "$E2E_TMP/prefix/lib"
cp "$SOCKACT_RUN" "$E2E_TMP/prefix/bin/sockact-run"
expect_exit "--adopt without the library" 2 "$E2E_TMP/prefix/bin/sockact-run" --adopt -l 1 -- true
expect_contains "--adopt without the library: says where it looked" "$OUT" \
  "libsockact-adopt.so is neither in $E2E_TMP/prefix/bin nor in $E2E_TMP/prefix/bin/../lib"
LIB=$(ldconfig -p 2>/dev/null | sed -n 's/^.*libutil\.so\.1 .*=> //p' | head -n 1)
if [ -n "$LIB" ]; then  # a harmless library (a glibc stub) stands in for libsockact-adopt.so
  cp "$LIB" "$E2E_TMP/prefix/lib/libsockact-adopt.so"
  P=$(free_port)
  SOCKACT_RUN=$E2E_TMP/prefix/bin/sockact-run LD_PRELOAD='' run_start adopt --adopt -a -l 127.0.0.1:$P -- sh -c 'echo "LD_PRELOAD=$LD_PRELOAD" >&3'
  out=$(tcp_read $P)
  expect_contains "--adopt: ../lib/libsockact-adopt.so preloaded" "$out" "LD_PRELOAD=$E2E_TMP/prefix/bin/../lib/libsockact-adopt.so"
  kill -TERM "$RUN_PID"
else
  echo "note: no libutil.so.1 to stand in for libsockact-adopt.so; the --adopt success case is not run"
fi

finish
