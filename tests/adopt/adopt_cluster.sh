#!/bin/bash
# A Node cluster (a primary and 2 workers, each listen(PORT)) with
# libsockact-adopt.so, under the real systemd-socket-activate. In Node's
# default round-robin mode the primary binds (and adopts) and accepts, hands
# each connection to a worker and closes its own copy: only the kernel's view
# shows that the worker still serves it.
#   adopt_cluster.sh LIBRARY LAYOUT [SOCKACT_RUN]
# LAYOUT:
#   same     the manager's socket is on the port the cluster listens on
#   other    it is on another port (the single-fd rule); the workers check that
#            the port they got is the one they asked for
#   cycling  as same, under sockact-run --adopt: 20 requests around the idle
#            deadline, 0 failed, woken again each time
# same, other: the first request is answered (200); a 3 s request in flight
# when IDLE_TIMEOUT=1 passes completes; then the cluster exits by SIGTERM
# when idle and leaves no worker behind.
set -euo pipefail
LIB=$1
LAYOUT=$2
RUN=${3:-}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../support/adopt_lib.sh"
need curl
NODE=${SOCKACT_NODE:-/usr/bin/node}
[ -x "$NODE" ] || skip "no $NODE (apt-get install nodejs)"
[ "$LAYOUT" != cycling ] || [ -n "$RUN" ] || skip "sockact-run not built"

# A copy with a name of its own, to find the workers by.
APP=$E2E_TMP/cluster-$$.js
cp "$HERE/servers/node_cluster.js" "$APP"
get() { curl -sS -m "${2:-5}" -w ' status=%{http_code}' "http://127.0.0.1:$1${3:-/}" 2>&1 || true; }
workers() { pgrep -f "$APP" || true; }

P=$(free_port)
case $LAYOUT in
  same | other)
    Q=$P
    [ "$LAYOUT" = other ] && Q=$(free_port)
    activate cluster -l "127.0.0.1:$P" -E LD_PRELOAD="$LIB" -E SOCKACT_ADOPT_DEBUG=1 -E IDLE_TIMEOUT=1 -E PORT="$Q" \
      "$NODE" "$APP"
    out=$(get "$P")
    expect_contains "$LAYOUT: the first request is answered by a worker" "$out" "hello from node-cluster worker=" \
      "status=200"
    # A 3 s request: the primary hands it to a worker at once and closes its copy.
    t0=$(now_ms)
    out=$(get "$P" 8 /delay/3000)
    t_answer=$(now_ms)
    expect_contains "$LAYOUT: a 3 s request in flight across IDLE_TIMEOUT=1 completes" "$out" "delayed 3000 ms" \
      "status=200"
    [ $((t_answer - t0)) -ge 2900 ] && pass "$LAYOUT: it took $((t_answer - t0)) ms" ||
      fail "$LAYOUT: it ended after $((t_answer - t0)) ms"
    if wait_exit "$ACT_PID" 10; then
      [ "$RC" = 143 ] && pass "$LAYOUT: the primary exits by SIGTERM when idle" ||
        fail "$LAYOUT: exit status $RC, not 143 (SIGTERM)"
      [ $(($(now_ms) - t_answer)) -ge 900 ] && pass "$LAYOUT: not before IDLE_TIMEOUT" ||
        fail "$LAYOUT: exited $(($(now_ms) - t_answer)) ms after the answer"
    else
      fail "$LAYOUT: still running 10 s after the last answer"
    fi
    for _ in $(seq 40); do [ -z "$(workers)" ] && break; sleep 0.05; done
    [ -z "$(workers)" ] && pass "$LAYOUT: no worker left behind" || {
      fail "$LAYOUT: workers left: $(workers | tr '\n' ' ')"
      # shellcheck disable=SC2046  # one pid a word
      kill $(workers) 2>/dev/null || true
    }
    expect_contains "$LAYOUT: the primary adopted the socket; idle was decided from the kernel's view" \
      "$(cat "$ACT_LOG")" "adopted passed fd 3" "the kernel's view (sock_diag)" "sending SIGTERM"
    no_match_in_log "$LAYOUT: an error in the log" "$ACT_LOG" 'EADDRINUSE\|error:'
    ;;
  cycling)
    run_adopt -l "127.0.0.1:$P" -E IDLE_TIMEOUT=0.5 -E PORT="$P" -- "$NODE" "$APP"
    # Every fourth request takes 0.8 s: in flight across the deadline.
    cycle_request() { if [ $(($1 % 4)) = 0 ]; then get "$P" 5 /delay/800; else get "$P" 5 /; fi; }
    answer_id() { [[ $1 == *"status=200"* ]] && echo "${1#*worker=}" | cut -d' ' -f1; }
    cycle_requests 25 45 6 workers "worker(s)"  # 0.25-0.69 s apart
    no_match_in_log "cycling: an error in the log" "$E2E_TMP/run.log" 'bound none of them\|EADDRINUSE\|error:'
    ;;
  *)
    echo "unknown layout $LAYOUT" >&2
    exit 2
    ;;
esac
finish
