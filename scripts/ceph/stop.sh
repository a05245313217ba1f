#!/usr/bin/env bash
# Stops the cluster scripts/ceph/start.sh started in DIR (by the process ids it recorded) and removes
# DIR, unless --keep is given (to read its logs).
#
#   scripts/ceph/stop.sh DIR [--keep]
set -uo pipefail

dir="${1:?usage: stop.sh DIR [--keep]}"
keep="${2:-}"
[ -d "$dir/run" ] || { echo "ceph: $dir is not a cluster directory" >&2; exit 2; }

pids=()
for name in rgw osd mon; do
  file="$dir/run/$name.pid.start"
  [ -f "$file" ] || continue
  pid="$(cat "$file")"
  # Only a process still running the daemon this script started (the id may have been reused).
  if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$dir/ceph.conf"; then
    kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
  fi
done
# Bounded wait for them to exit; a daemon that ignores TERM gets KILL.
for _ in $(seq 1 50); do
  alive=()
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive+=("$pid"); done
  [ ${#alive[@]} -eq 0 ] && break
  sleep 0.1
done
for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null; done
if [ "$keep" != "--keep" ]; then rm -rf "$dir"; fi
exit 0
