#!/bin/bash
# libsockact-adopt.so preloaded into a wrapper that execs the server, under the
# real systemd-socket-activate: the wrapper adopts nothing and execs, so the
# fds, LISTEN_* and the library go on to the server in the same process.
#   adopt_exec.sh LIBRARY SHIM CASE [SOCKACT_RUN]
# SHIM is tests/adopt/exec_shim.c built (a compiled shim that execv()s).
# CASE, each: the first request is answered (200), the server exits when idle
# (SIGTERM, IDLE_TIMEOUT=1) and the log shows the hand-over.
#   bash     a bash script that execs python3 -m http.server
#   sh       sh -c 'exec node server.js'
#   env      env node server.js
#   shim     a compiled shim that execv()s python3
#   mise     mise's shim for a system-installed node (skips without mise:
#            SOCKACT_MISE, or .cache/npm/node_modules/@jdxcode/mise-linux-x64)
#   pyenv    pyenv's shim for python3 (skips without a pyenv: PYENV_ROOT, ~/.pyenv)
#   fork     a wrapper that starts the server as a child (no exec): the warning
#            names that case and the fix; so does the server's own error when
#            only the server has the library
#   cycling  sockact-run --adopt with sh -c 'exec node server.js': 20 requests
#            around the idle deadline, 0 failed, woken again each time
set -euo pipefail
LIB=$1
SHIM=$2
CASE=$3
RUN=${4:-}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
. "$HERE/../support/adopt_lib.sh"
need curl
NODE=${SOCKACT_NODE:-/usr/bin/node}
PY=/usr/bin/python3
case $CASE in
  bash | shim | fork) [ -x "$PY" ] || skip "no $PY" ;;
  sh | env | cycling) [ -x "$NODE" ] || skip "no $NODE (apt-get install nodejs)" ;;
esac
[ "$CASE" != cycling ] || [ -n "$RUN" ] || skip "sockact-run not built"

WWW=$E2E_TMP/www
mkdir -p "$WWW"
echo "hello from python" >"$WWW/index.html"
cp "$HERE/servers/node_server.js" "$E2E_TMP/server.js"
# The system's programs, not a version manager's shims from the caller's PATH.
SYS_PATH=/usr/local/bin:/usr/bin:/bin

get() { curl -sS -m 5 -w ' status=%{http_code}' "http://127.0.0.1:$1/" 2>&1 || true; }

# served NAME PORT WANT ARGS...: the program ARGS under systemd-socket-activate
# on 127.0.0.1:PORT with the library preloaded: answered, exits when idle, and
# the wrapper handed the fds on.
served() {
  local name=$1 port=$2 want=$3
  shift 3
  cd "$WWW"
  activate "$name" -l "127.0.0.1:$port" -E LD_PRELOAD="$LIB" -E SOCKACT_ADOPT_DEBUG=1 -E IDLE_TIMEOUT=1 "$@"
  cd - >/dev/null
  local out t_answer
  out=$(get "$port")
  t_answer=$(now_ms)
  expect_contains "$name: the first request is answered through the wrapper" "$out" "status=200" "$want"
  if wait_exit "$ACT_PID" 10; then
    [ "$RC" = 143 ] && pass "$name: exits by SIGTERM when idle" || fail "$name: exit status $RC, not 143 (SIGTERM)"
    [ $(($(now_ms) - t_answer)) -ge 900 ] && pass "$name: not before IDLE_TIMEOUT" ||
      fail "$name: exited $(($(now_ms) - t_answer)) ms after the answer"
  else
    fail "$name: still running 10 s after the answer"
  fi
  expect_contains "$name: the wrapper adopted nothing and handed the fds on; the server adopted them" \
    "$(cat "$ACT_LOG")" "nothing adopted in this process; its 1 passed fd(s), LISTEN_* and LD_PRELOAD go on" \
    "adopted passed fd 3" "sending SIGTERM"
  if grep -q 'bound none of them\|error:' "$ACT_LOG"; then
    fail "$name: a warning or an error in the log:"
    sed 's/^/    | /' "$ACT_LOG"
  else
    pass "$name: no warning, no error"
  fi
}

P=$(free_port)
Q=$(free_port)
case $CASE in
  bash)
    printf '#!/bin/bash\n# picks the interpreter, then becomes it\nexec python3 -m http.server --bind 127.0.0.1 %s\n' "$P" \
      >"$E2E_TMP/app.sh"
    chmod +x "$E2E_TMP/app.sh"
    served bash "$P" "hello from python" -E PATH="$SYS_PATH" "$E2E_TMP/app.sh"
    ;;
  sh)
    # node's own child (started before its bind) sees neither LD_PRELOAD nor LISTEN_FDS.
    served sh "$P" "child-env=unset/unset" -E PATH="$SYS_PATH" -E PORT="$Q" sh -c "exec node '$E2E_TMP/server.js'"
    ;;
  env)
    served env "$P" "child-env=unset/unset" -E PATH="$SYS_PATH" -E PORT="$Q" env node "$E2E_TMP/server.js"
    ;;
  shim)
    served shim "$P" "hello from python" -E PATH="$SYS_PATH" "$SHIM" "$PY" -m http.server --bind 127.0.0.1 "$P"
    ;;
  mise)
    MISE=${SOCKACT_MISE:-$ROOT/.cache/npm/node_modules/@jdxcode/mise-linux-x64/bin/mise}
    [ -x "$MISE" ] || skip "no mise at $MISE (npm install @jdxcode/mise-linux-x64 into .cache/npm, or set SOCKACT_MISE)"
    [ -x "$NODE" ] || skip "no $NODE"
    # mise with data and config of its own, offline, and the system's node
    # "installed" as a version of its own: its shim resolves and execs it.
    M=$E2E_TMP/mise
    version=$("$NODE" --version)
    version=${version#v}
    mkdir -p "$M/data/installs/node" "$M/node/bin" "$M/project"
    ln -s "$NODE" "$M/node/bin/node"
    ln -s "$M/node" "$M/data/installs/node/$version"
    printf '[tools]\nnode = "%s"\n' "$version" >"$M/project/mise.toml"
    mise_env=(MISE_DATA_DIR="$M/data" MISE_CONFIG_DIR="$M/config" MISE_CACHE_DIR="$M/cache" MISE_STATE_DIR="$M/state"
      MISE_OFFLINE=1 MISE_YES=1)
    (cd "$M/project" && env "${mise_env[@]}" "$MISE" trust >/dev/null 2>&1 && env "${mise_env[@]}" "$MISE" reshim) ||
      skip "mise cannot set up a shim here"
    [ -e "$M/data/shims/node" ] || skip "mise made no shim for the system's node"
    activate_args=()
    for v in "${mise_env[@]}"; do activate_args+=(-E "$v"); done
    WWW=$M/project served mise "$P" "child-env=unset/unset" "${activate_args[@]}" -E PATH="$M/data/shims:$SYS_PATH" \
      -E PORT="$Q" "$M/data/shims/node" "$E2E_TMP/server.js"
    ;;
  pyenv)
    PYENV_ROOT=${PYENV_ROOT:-$HOME/.pyenv}
    [ -x "$PYENV_ROOT/shims/python3" ] || skip "no pyenv shim at $PYENV_ROOT/shims/python3"
    PATH="$PYENV_ROOT/shims:$PYENV_ROOT/bin:$SYS_PATH" python3 -c 'import http.server' 2>/dev/null ||
      skip "pyenv's python3 does not run here"
    served pyenv "$P" "hello from python" -E PATH="$PYENV_ROOT/shims:$PYENV_ROOT/bin:$SYS_PATH" \
      -E PYENV_ROOT="$PYENV_ROOT" -E HOME="$HOME" python3 -m http.server --bind 127.0.0.1 "$P"
    ;;
  fork)
    # The library in the wrapper, which starts the server as a child: the fds
    # stay with the wrapper, and its warning says why and what to do.
    printf '#!/bin/bash\npython3 -m http.server --bind 127.0.0.1 %s\n' "$Q" >"$E2E_TMP/app.sh"
    chmod +x "$E2E_TMP/app.sh"
    cd "$WWW"
    activate fork -l "127.0.0.1:$P" -E LD_PRELOAD="$LIB" -E PATH="$SYS_PATH" "$E2E_TMP/app.sh"
    cd - >/dev/null
    exec {c}<>"/dev/tcp/127.0.0.1/$P"  # starts it
    for _ in $(seq 100); do grep -q 'likely cause' "$ACT_LOG" && break; sleep 0.05; done
    exec {c}>&-
    kids=$(pgrep -P "$ACT_PID" || true)
    kill "$ACT_PID" $kids 2>/dev/null || true
    wait_exit "$ACT_PID" 5 || true
    expect_contains "fork: the wrapper's warning names the case, the child and the fix" "$(cat "$ACT_LOG")" \
      "but the program has bound none of them 3 s after start" \
      "likely cause: this process started process" "(python3 -m http.server --bind 127.0.0.1 $Q)" \
      "a wrapper that starts the server as a child instead of exec'ing it" "Make the wrapper exec the server"
    # The library in the server only, behind a shell without exec: the
    # server's error says the same.
    P=$(free_port)
    activate fork-child -l "127.0.0.1:$P" sh -c "LD_PRELOAD='$LIB' '$PY' -c 'import time; time.sleep(1)'; exit \$?"
    exec {c}<>"/dev/tcp/127.0.0.1/$P"
    wait_exit "$ACT_PID" 10 || true
    exec {c}>&-
    expect_contains "fork: the server's error, when only it has the library, names the case and the fix" \
      "$(cat "$ACT_LOG")" "is meant for process" \
      "this looks like a wrapper that starts the server as a child instead of exec'ing it" \
      "Make the wrapper exec the server"
    ;;
  cycling)
    # sockact-run starts sh -c 'exec node ...' on each connection after an idle
    # exit; requests land before, at and after the 0.5 s idle deadline.
    run_adopt -l "127.0.0.1:$P" -E IDLE_TIMEOUT=0.5 -E PORT="$Q" -E PATH="$SYS_PATH" -- \
      sh -c "exec node '$E2E_TMP/server.js'"
    cycle_request() { get "$P"; }
    answer_id() { [[ $1 == *"status=200"* && $1 == *"child-env=unset/unset"* ]] && echo "${1#*pid=}" | cut -d' ' -f1; }
    cycle_requests 30 50 4 processes "process(es)"  # 0.30-0.79 s apart: around the deadline, plus node's start
    no_match_in_log "cycling: a warning or an error in the log" "$E2E_TMP/run.log" 'bound none of them\|error:'
    ;;
  *)
    echo "unknown case $CASE" >&2
    exit 2
    ;;
esac
finish
