#!/bin/bash
# libsockact-adopt.so under the real systemd-socket-activate, with adopt_probe,
# a server that knows nothing about activation: which bind() adopts which
# passed socket, the fd flags the program asked for, shutdown() suppressed,
# the manager's unix path kept, a clean environment for children, idle exit
# by SIGTERM, bad variables reported without a crash, the "nothing adopted"
# warning; and, without the library, the hang it fixes.
#   adopt_e2e.sh LIBRARY PROBE [SOCKACT_RUN]
# With SOCKACT_RUN (the build's tools/sockact-run, next to the library), also
# `sockact-run --adopt`: idle exit and wake-up without a service manager.
LIB=$1
PROBE=$2
RUN=${3:-}
. "$(dirname "$0")/../support/adopt_lib.sh"  # talk, run_adopt

# run NAME ACTIVATE_ARGS... -- PROBE_ARGS...: the probe under systemd-socket-activate with the library.
run() {
  local name=$1 args=()
  shift
  while [ "$1" != -- ]; do args+=("$1"); shift; done
  shift
  activate "$name" -E LD_PRELOAD="$LIB" -E SOCKACT_ADOPT_DEBUG=1 "${args[@]}" "$PROBE" serve "$@"
}
# answered TEXT ADDRESS WANT...: a connection to ADDRESS is answered, and the
# answer and the log hold each WANT.
answered() {
  local text=$1 out
  out=$(talk "$2")
  shift 2
  expect_contains "$text" "$out$(cat "$ACT_LOG")" "hello pid=" "$@"
}
wait_log() { for _ in $(seq 100); do grep -q "$1" "$ACT_LOG" && return 0; sleep 0.05; done; }
stop() { kill "$ACT_PID" 2>/dev/null || true; wait "$ACT_PID" 2>/dev/null || true; }

# 1. The exact IPv4 address; O_NONBLOCK and FD_CLOEXEC as the program asked; clean child environment.
P=$(free_port)
run exact -l 127.0.0.1:$P -- 127.0.0.1:$P -n -e
out=$(talk 127.0.0.1:$P)
expect_contains "exact address: answered" "$out" "hello pid="
expect_contains "exact address: adopted by that rule, nonblocking and close-on-exec as asked" "$(cat "$ACT_LOG")" \
  "adopted passed fd 3" "(rule: the same address)" "listen(" "manager's backlog is kept" \
  "probe: listening fd=" "on 127.0.0.1:$P nonblock=1 cloexec=1"
expect_contains "exact address: child sees no LD_PRELOAD and no LISTEN_*" "$(cat "$ACT_LOG")" \
  "probe child: LD_PRELOAD=unset LISTEN_FDS=unset LISTEN_PID=unset LISTEN_FDNAMES=unset"
stop

P=$(free_port)
run flags -l 127.0.0.1:$P -- 127.0.0.1:$P -k
answered "blocking, inheritable listener stays so" 127.0.0.1:$P "nonblock=0 cloexec=0"
stop

# 2. One fd passed: the first bind() adopts it whatever the address; an IPv6
#    socket may take an IPv4 one. getsockname() says what the program asked
#    for, as it would without the manager.
P=$(free_port) Q=$(free_port)
run single -l 127.0.0.1:$P -- "[::]:$Q"
answered "single fd: [::]:$Q adopts 127.0.0.1:$P; getsockname() reports [::]:$Q" 127.0.0.1:$P \
  "the address differs" "\"unknown\" 127.0.0.1:$P (rule:" "on [::]:$Q nonblock="
stop

# 3. Two named fds: the port alone picks one; SOCKACT_ADOPT maps a name to an address.
P1=$(free_port) P2=$(free_port)
run port -l 127.0.0.1:$P1 -l 127.0.0.1:$P2 --fdname=web:admin -- 0.0.0.0:$P2
answered "port alone: 0.0.0.0:$P2 adopts \"admin\"" 127.0.0.1:$P2 "\"admin\" 127.0.0.1:$P2 (rule: the same port)"
stop
P1=$(free_port) P2=$(free_port) Q=$(free_port)
run map -l 127.0.0.1:$P1 -l 127.0.0.1:$P2 --fdname=web:admin -E SOCKACT_ADOPT=admin=127.0.0.1:$((Q + 1)),web=127.0.0.1:$Q \
  -- 127.0.0.1:$Q
answered "SOCKACT_ADOPT: web=127.0.0.1:$Q adopts \"web\"" 127.0.0.1:$P1 "\"web\" 127.0.0.1:$P1 (rule: SOCKACT_ADOPT)"
stop
# Entries separated as the library's address lists (commas or white space); a
# NAME that no passed socket has is named at start.
P1=$(free_port) P2=$(free_port) Q=$(free_port)
run map-space -l 127.0.0.1:$P1 -l 127.0.0.1:$P2 --fdname=web:admin \
  -E "SOCKACT_ADOPT=admin=127.0.0.1:$((Q + 1)), web=127.0.0.1:$Q nosuch=127.0.0.1:$((Q + 2))" -- 127.0.0.1:$Q
answered "SOCKACT_ADOPT with ', ' and ' ' between entries: web still adopts; the unknown name is warned about" \
  127.0.0.1:$P1 "\"web\" 127.0.0.1:$P1 (rule: SOCKACT_ADOPT)" \
  'SOCKACT_ADOPT names "nosuch", which no passed socket is called (FileDescriptorName=; passed: "web" "admin")'
stop
# map_form NAME ADDRESS PASSED BIND: "web" (PASSED) and "admin" passed, so
# that no other rule takes the program's bind() to BIND; web=ADDRESS does.
map_form() {
  run "map-$1" -l "$3" -l "127.0.0.1:$(free_port)" --fdname=web:admin -E "SOCKACT_ADOPT=web=$2" -- "$4"
  answered "SOCKACT_ADOPT=web=$2: the program's bind() to $4 adopts \"web\"" "$3" "\"web\" $3 (rule: SOCKACT_ADOPT)"
  stop
}
P=$(free_port) Q=$(free_port)
map_form any "*:$Q" 127.0.0.1:$P 127.0.0.1:$Q
P=$(free_port) Q=$(free_port)
map_form v6 "[::]:$Q" 127.0.0.1:$P "[::]:$Q"
P=$(free_port) Q=$(free_port)
map_form port "$Q" 127.0.0.1:$P 0.0.0.0:$Q
map_form path "$E2E_TMP/program.sock" "$E2E_TMP/passed.sock" "$E2E_TMP/program.sock"
map_form abstract "@sockact-adopt-program-$$" "@sockact-adopt-passed-$$" "@sockact-adopt-program-$$"
P1=$(free_port) P2=$(free_port) Q=$(free_port)
run nomatch -l 127.0.0.1:$P1 -l 127.0.0.1:$P2 -- 127.0.0.1:$Q
exec {c}<>"/dev/tcp/127.0.0.1/$P1"  # starts it
wait_log "probe: listening"
out=$(talk 127.0.0.1:$Q)
exec {c}>&-
expect_contains "two fds, no rule fits: the program binds its own address" "$out$(cat "$ACT_LOG")" "hello pid=" \
  "no passed fd matches; binding it as asked" "on 127.0.0.1:$Q"
stop

# 4. IPv6, IPv4 via a v4-mapped IPv6 socket, unix paths, abstract sockets.
if [ -n "$(ip -6 addr show dev lo 2>/dev/null | grep '::1')" ]; then
  P=$(free_port)
  run v6 -l "[::1]:$P" -- "[::1]:$P"
  answered "IPv6: exact address" "[::1]:$P" "(rule: the same address)"
  stop
else
  echo "note: no ::1 on lo; IPv6 case not run"
fi
P1=$(free_port) P2=$(free_port)
run mapped -l 127.0.0.1:$P1 -l 0.0.0.0:$P2 -- 127.0.0.1:$P1 -6
answered "[::ffff:127.0.0.1]:$P1 adopts 127.0.0.1:$P1" 127.0.0.1:$P1 "(rule: the same address)"
stop
SOCK=$E2E_TMP/app.sock
run unix -l "$SOCK" -- "$SOCK" -u -x 1
answered "unix path: adopted; the program's unlink() of it refused" "$SOCK" \
  "unlink($SOCK): not removed" "probe: unlink($SOCK) = 0" "(rule: the same address)"
wait_exit "$ACT_PID" 5 || stop
[ -S "$SOCK" ] && pass "unix path: the manager's socket file is still there" || fail "unix path: socket file gone"
ABS=@sockact-adopt-test-$$
run abstract -l "$ABS" -- "$ABS"
answered "abstract socket: exact address" "$ABS" "(rule: the same address)"
stop

# 5. shutdown() of the adopted listener is suppressed: it goes on accepting.
P=$(free_port)
run shutdown -l 127.0.0.1:$P -- 127.0.0.1:$P -s 1
out=$(talk 127.0.0.1:$P)
out2=$(talk 127.0.0.1:$P)
expect_contains "shutdown(): suppressed, returns 0, the next connection is served" "$out2$(cat "$ACT_LOG")" \
  "hello pid=" "suppressed" "probe: shutdown(listener) = 0"

# 6. Idle exit: SIGTERM IDLE_TIMEOUT after the last connection closed; an open
#    (keep-alive) connection counts as activity.
P=$(free_port)
run idle -l 127.0.0.1:$P -E IDLE_TIMEOUT=1 -- 127.0.0.1:$P
t0=$(now_ms)
out=$(talk 127.0.0.1:$P 2000)
t_close=$(now_ms)
expect_contains "idle: answered" "$out" "hello pid="
# 143: ended by SIGTERM; 900: IDLE_TIMEOUT after the connection closed.
if expect_exit_after "idle, after the connection closed" 10 143 "$t_close" 900; then
  [ $((t_close - t0)) -ge 2000 ] && pass "idle: the 2 s connection (longer than IDLE_TIMEOUT) was not cut" ||
    fail "idle: the connection ended after $((t_close - t0)) ms"
else
  stop
fi
expect_contains "idle: reason logged" "$(cat "$ACT_LOG")" "sending SIGTERM"

# 7. Malformed variables: named on stderr, the program runs on.
P=$(free_port)
run bad -l 127.0.0.1:$P -E SOCKACT_ADOPT=web -E IDLE_TIMEOUT=-5 -- 127.0.0.1:$P
answered "malformed SOCKACT_ADOPT and IDLE_TIMEOUT: named, and it still serves" 127.0.0.1:$P \
  'SOCKACT_ADOPT="web": entry "web" is not NAME=ADDRESS' 'IDLE_TIMEOUT="-5" is not a number of seconds'
stop
P=$(free_port)
run bad-address -l 127.0.0.1:$P -E "SOCKACT_ADOPT=web=*:$P,admin=localhost:80" -- 127.0.0.1:$P
answered "SOCKACT_ADOPT with a bad address: the entry and why, and it still serves" 127.0.0.1:$P \
  "SOCKACT_ADOPT=\"web=*:$P,admin=localhost:80\": entry \"admin=localhost:80\" has a bad address: \"localhost\" is not an IPv4 address (ADDRESS is" \
  "; SOCKACT_ADOPT is ignored" "(rule: the same address)"
stop
# A long value is cut in the message, so that the entry and the reason still fit the line.
P=$(free_port)
long=$(printf 'n%.0s' $(seq 250))
run bad-long -l 127.0.0.1:$P -E "SOCKACT_ADOPT=$long=*:1,$long=*:2,$long=*:3,$long=*:4,web=localhost:80" -- 127.0.0.1:$P
answered "SOCKACT_ADOPT, 1 KB with a bad last entry: the message still says which and why" 127.0.0.1:$P \
  '...": entry "web=localhost:80" has a bad address: "localhost" is not an IPv4 address' "; SOCKACT_ADOPT is ignored"
stop

# 8. Nothing adopted: a warning once, about 3 s after start.
P=$(free_port)
activate warn -l 127.0.0.1:$P -E LD_PRELOAD="$LIB" "$PROBE" idle 5
exec {c}<>"/dev/tcp/127.0.0.1/$P"
wait_exit "$ACT_PID" 10 || stop
exec {c}>&-
expect_contains "nothing adopted: warned" "$(cat "$ACT_LOG")" "but the program has bound none of them 3 s after start"
[ "$(grep -c 'bound none of them' "$ACT_LOG")" = 1 ] && pass "nothing adopted: warned once" || fail "warned more than once"

# 9. Without the library: the program binds its own port and the activating
#    connection gets no answer. This is the failure the library fixes.
P=$(free_port)
Q=$(free_port)
activate without -l 127.0.0.1:$P "$PROBE" serve 127.0.0.1:$Q
out=$(talk 127.0.0.1:$P)
expect_contains "without the library: the connection hangs" "$out" "no answer from 127.0.0.1:$P within 3 s"
stop

# 10. sockact-run --adopt finds the library next to itself; idle exit, then woken again.
if [ -n "$RUN" ]; then
  P=$(free_port) Q=$(free_port)
  run_adopt -l 127.0.0.1:$P -E IDLE_TIMEOUT=0.5 -- "$PROBE" serve 127.0.0.1:$Q
  out=$(talk 127.0.0.1:$P)
  for _ in $(seq 100); do grep -q "activation 1:.*stopped: signal SIGTERM" "$E2E_TMP/run.log" && break; sleep 0.1; done
  out2=$(talk 127.0.0.1:$P)
  expect_contains "sockact-run --adopt: served, idle SIGTERM, woken again by another process" \
    "$out $out2$(cat "$E2E_TMP/run.log")" "hello pid=" "activation 1:" "stopped: signal SIGTERM"
  [ "${out%% fd=*}" != "${out2%% fd=*}" ] && pass "sockact-run --adopt: two processes ($out / $out2)" ||
    fail "sockact-run --adopt: the same process answered twice ($out / $out2)"
fi

# 11. A shell without exec between the manager and the program: LISTEN_PID is
#     the program's parent. Nothing adopted, and an error that says why and how
#     to opt in; with SOCKACT_ALLOW_PARENT_PID=1 the fd is adopted.
P=$(free_port)
activate parent -l 127.0.0.1:$P sh -c "LD_PRELOAD='$LIB' '$PROBE' idle 1; exit \$?"
exec {c}<>"/dev/tcp/127.0.0.1/$P"
wait_exit "$ACT_PID" 10 || stop
exec {c}>&-
expect_contains "LISTEN_PID of the parent: not adopted; the error names it and the way out" "$(cat "$ACT_LOG")" \
  "error: LISTEN_FDS=" "is meant for process" "nothing will be adopted" "hint: the process the manager started is our parent" \
  "SOCKACT_ALLOW_PARENT_PID=1"
P=$(free_port)
Q=$(free_port)
activate parent-allowed -l 127.0.0.1:$P \
  sh -c "SOCKACT_ALLOW_PARENT_PID=1 LD_PRELOAD='$LIB' '$PROBE' serve 127.0.0.1:$Q -x 1; exit \$?"
out=$(talk 127.0.0.1:$P)
expect_contains "LISTEN_PID of the parent, SOCKACT_ALLOW_PARENT_PID=1: adopted and answered" "$out" "hello pid="
wait_exit "$ACT_PID" 10 || stop
P=$(free_port)
activate parent-bad -l 127.0.0.1:$P -E SOCKACT_ALLOW_PARENT_PID=yes -E LD_PRELOAD="$LIB" "$PROBE" idle 1
exec {c}<>"/dev/tcp/127.0.0.1/$P"
wait_exit "$ACT_PID" 10 || stop
exec {c}>&-
expect_contains "SOCKACT_ALLOW_PARENT_PID=yes: named, ignored" "$(cat "$ACT_LOG")" \
  'SOCKACT_ALLOW_PARENT_PID="yes" is neither 1 (also take the fds when LISTEN_PID is our parent'"'"'s, as under podman run --init with tini) nor 0; ignored'

# 12. PID 1 of a PID namespace (a container's entry point, as Podman runs it,
#     with LISTEN_PID=1), SIGTERM at its default action: the kernel drops a
#     namespace init's own SIGTERM, so the idle exit must end it otherwise.
if [ "$(id -u)" = 0 ] && unshare --pid --fork true 2>/dev/null; then
  P=$(free_port)
  activate pid1 -l 127.0.0.1:$P unshare --pid --fork --kill-child sh -c \
    "export LISTEN_PID=1; exec env LD_PRELOAD='$LIB' IDLE_TIMEOUT=0.5 SOCKACT_ADOPT_DEBUG=1 '$PROBE' serve 127.0.0.1:$P"
  out=$(talk 127.0.0.1:$P)
  expect_contains "PID 1 of a PID namespace: adopted and answered" "$out" "hello pid=1 fd="
  if wait_exit "$ACT_PID" 10; then
    pass "PID 1 of a PID namespace: ended when idle"
  else
    fail "PID 1 of a PID namespace: still running 10 s after the last connection (IDLE_TIMEOUT=0.5)"
    stop
  fi
  expect_contains "PID 1: the log says why it exits rather than signals" "$(cat "$ACT_LOG")" \
    "PID 1 with SIGTERM at its default action would ignore it: exiting"
else
  echo "note: cannot create a PID namespace here (needs root); the PID 1 case is not run"
fi

finish
