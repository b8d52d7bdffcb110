#!/bin/sh
# overlap-restart.sh [UNIT]: restarts UNIT (default overlap-http), a
# socket-activated service run as two instances that share one socket
# (UNIT@blue and UNIT@green, see overlap-http@.service), without a pause:
#   1. the instance that is not running starts, with the binary as it is now;
#      `systemctl start` returns at its READY=1 (Type=notify); both serve;
#   2. the old instance is stopped without waiting (--no-block): SIGTERM, it
#      closes its copy of the socket at once and finishes what it received.
# A new build that fails before READY=1 is stopped (no Restart= loop) and the
# old instance serves on; the exit status is 1. With neither instance running
# (idle), nothing is started: the next connection starts UNIT@blue, from the
# binary as it is then. Install the new binary first, by a rename (not a copy
# over the running file). A restart while the previous old instance still
# drains waits for that drain when it is the instance to start.
set -eu
unit=${1:-overlap-http}
if systemctl -q is-active "$unit@blue.service"; then
  old=blue new=green
elif systemctl -q is-active "$unit@green.service"; then
  old=green new=blue
else
  echo "$unit: no instance runs; the next connection starts $unit@blue"
  exit 0
fi
if ! systemctl start "$unit@$new.service"; then
  systemctl stop "$unit@$new.service" || true
  systemctl reset-failed "$unit@$new.service" 2>/dev/null || true
  echo "$unit: $unit@$new did not start (journalctl -u $unit@$new); $unit@$old serves on" >&2
  exit 1
fi
systemctl stop --no-block "$unit@$old.service"
echo "$unit: $unit@$new serves; $unit@$old drains"
