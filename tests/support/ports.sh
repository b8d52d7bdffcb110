# shellcheck shell=bash
# Loopback ports for the shell tests; sourced by tests/e2e/lib.sh and
# tests/systemd/harness.sh.

# unused_port USED: a loopback port that no TCP or UDP socket uses now and that
# is not one of the words in USED. Below the ephemeral range, so that no
# outgoing connection (of this or a parallel test) holds it by the time it is
# bound; random, so parallel tests differ.
unused_port() {
  local used=" ${1//$'\n'/ } " low p
  read -r low _ </proc/sys/net/ipv4/ip_local_port_range
  [ "$low" -gt 21000 ] || low=30000
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % (low - 20000)))
    [[ $used == *" $p "* ]] && continue
    if [ -z "$(ss -Hantu "sport = :$p" 2>/dev/null)" ]; then
      echo "$p"
      return 0
    fi
  done
  echo "no free port" >&2
  return 1
}

# wait_listening PORT [SECONDS]: until something listens on TCP PORT (1 after
# SECONDS, default 5).
wait_listening() {
  local i
  for i in $(seq $((${2:-5} * 20))); do
    [ -n "$(ss -Hltn "sport = :$1")" ] && return 0
    sleep 0.05
  done
  return 1
}
