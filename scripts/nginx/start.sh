#!/usr/bin/env bash
# Starts nginx as a UDP load balancer on 127.0.0.1 in front of ferry servers, for tests and trials:
# the `stream` module, `hash $remote_addr$remote_port consistent` (each client's address and port go to
# one server; on a single host every client shares 127.0.0.1, so the port must be part of the hash).
#
#   scripts/nginx/start.sh DIR LISTEN_PORT UPSTREAM_PORT...   # LISTEN_PORT 0 = a free port
#
# Writes DIR/nginx.conf, runs nginx in the foreground of a background process (its id in
# DIR/nginx.pid.start), and prints the port it listens on. scripts/nginx/stop.sh DIR stops it.
# Needs Debian's nginx (or nginx-light) and libnginx-mod-stream; exits 3 saying so when missing.
set -euo pipefail

module=/usr/lib/nginx/modules/ngx_stream_module.so
if ! command -v nginx >/dev/null 2>&1 || [ ! -f "$module" ]; then
  echo "nginx: nginx with the stream module is not installed (apt-get install --no-install-recommends nginx libnginx-mod-stream)" >&2
  exit 3
fi
dir="${1:?usage: start.sh DIR LISTEN_PORT UPSTREAM_PORT...}"
port="${2:?usage: start.sh DIR LISTEN_PORT UPSTREAM_PORT...}"
shift 2
[ $# -gt 0 ] || { echo "nginx: name at least one upstream port" >&2; exit 2; }
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
if [ "$port" = 0 ]; then
  port="$(python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
fi

{
  echo "load_module $module;"
  echo "worker_processes 1;"
  echo "pid $dir/nginx.pid;"
  echo "error_log $dir/error.log warn;"
  echo "events { worker_connections 4096; }"
  echo "stream {"
  echo "  upstream ferry {"
  echo "    hash \$remote_addr\$remote_port consistent;"
  for upstream in "$@"; do echo "    server 127.0.0.1:$upstream;"; done
  echo "  }"
  echo "  server {"
  echo "    listen 127.0.0.1:$port udp;"
  echo "    proxy_pass ferry;"
  # A client's datagrams keep their server while it sends at least this often (ferry keeps sessions
  # alive well within it); after that the next datagram is hashed again.
  echo "    proxy_timeout 120s;"
  # ferry's datagrams reach 64 KiB on loopback (its largest blocks); nginx's 16k default would cut
  # them (the first of a client, and every one from a server), and a transfer would stall.
  echo "    preread_buffer_size 64k;"
  echo "    proxy_buffer_size 64k;"
  echo "  }"
  echo "}"
} >"$dir/nginx.conf"

nginx -t -q -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
# Its output goes to a file: a caller reading this script's output would otherwise wait for nginx.
nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" -g 'daemon off;' >>"$dir/nginx.out" 2>&1 &
echo $! >"$dir/nginx.pid.start"
# Bounded wait for nginx to bind the port (it writes its pid file once it has).
for _ in $(seq 1 100); do
  [ -s "$dir/nginx.pid" ] && break
  kill -0 "$(cat "$dir/nginx.pid.start")" 2>/dev/null || { echo "nginx: exited at start:" >&2; cat "$dir/error.log" >&2; exit 1; }
  sleep 0.1
done
[ -s "$dir/nginx.pid" ] || { echo "nginx: did not start in 10 s" >&2; exit 1; }
echo "$port"
