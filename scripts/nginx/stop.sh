#!/usr/bin/env bash
# Stops the nginx scripts/nginx/start.sh started in DIR (by the process id it recorded).
#
#   scripts/nginx/stop.sh DIR
set -uo pipefail
dir="${1:?usage: stop.sh DIR}"
file="$dir/nginx.pid.start"
[ -f "$file" ] || exit 0
pid="$(cat "$file")"
# Only the nginx this script started (the id may have been reused): its command line names DIR.
if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$dir/nginx.conf"; then
  kill -QUIT "$pid" 2>/dev/null
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
fi
rm -f "$file"
exit 0
