#!/usr/bin/env bash
# Starts a throwaway single-node Ceph cluster with an S3 gateway on 127.0.0.1, for tests and the bench:
# one monitor, one OSD on memstore (data in memory), one RADOS Gateway, in DIR (made if missing).
#
#   scripts/ceph/start.sh [DIR]     # default: a new temporary directory
#
# On success it writes DIR/env (shell syntax: S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
# AWS_REGION, CEPH_DIR), prints it, and exits 0 with the daemons running; scripts/ceph/stop.sh DIR
# stops them and removes DIR. It waits (bounded) until the gateway answers HTTP and a user exists.
# Needs Debian's ceph-mon, ceph-osd and radosgw; exits 3 saying so when they are missing.
set -euo pipefail

for tool in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph ceph-authtool; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "ceph: $tool is not installed (apt-get install --no-install-recommends ceph-mon ceph-osd radosgw)" >&2
    exit 3
  fi
done

dir="${1:-}"
if [ -z "$dir" ]; then dir="$(mktemp -d "${TMPDIR:-/tmp}/ferry-ceph-XXXXXX")"; fi
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
mkdir -p "$dir/run" "$dir/log" "$dir/mon/ceph-a" "$dir/osd/ceph-0" "$dir/rgw"

# A free TCP port on 127.0.0.1 (the kernel picks it; a race with another process is unlikely and
# shows as a daemon failing to bind, reported below).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
mon_port="$(free_port)"
rgw_port="$(free_port)"
fsid="$(cat /proc/sys/kernel/random/uuid)"
conf="$dir/ceph.conf"

cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = v2:127.0.0.1:$mon_port
public network = 127.0.0.1/32
auth cluster required = none
auth service required = none
auth client required = none
# With auth none the gateway otherwise loops on 'get_initial_auth_request returned -13'.
ms mon client mode = crc secure
run dir = $dir/run
admin socket = $dir/run/\$name.asok
log file = $dir/log/\$name.log
pid file = $dir/run/\$name.pid
keyring = $dir/keyring
mon data = $dir/mon/\$cluster-\$id
osd data = $dir/osd/\$cluster-\$id
osd objectstore = memstore
# The most the OSD keeps in memory (a cap, not an allocation): room for the bench's 1 GiB file.
memstore device bytes = 8589934592
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon pg warn min per osd = 0
osd crush chooseleaf type = 0
mon max pg per osd = 1000
# Keep the cluster from writing gigabytes of logs, and from waiting on a clock or a network.
debug ms = 0
debug rgw = 0
mon osd full ratio = 0.99
mon osd backfillfull ratio = 0.985
mon osd nearfull ratio = 0.98
osd max object name len = 460
osd max object namespace len = 64
[client.rgw.ferry]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port
rgw data = $dir/rgw
rgw dns name = 127.0.0.1
rgw enable usage log = false
rgw thread pool size = 64
# Deleted objects' data is freed by the gateway's garbage collector, by default two hours later:
# sooner, so that a cluster kept for many runs (FERRY_TEST_CEPH, FERRY_CEPH) does not fill its memory.
rgw gc obj min wait = 30
rgw gc processor period = 30
EOF

: >"$dir/keyring"
log() { echo "ceph: $*" >&2; }
fail() {
  log "$1"
  for f in "$dir"/log/*.log; do
    [ -f "$f" ] && { echo "--- $f (last lines)" >&2; tail -n 15 "$f" >&2; }
  done
  "$(dirname "$0")/stop.sh" "$dir" --keep >/dev/null 2>&1 || true
  exit 1
}

monmaptool --create --clobber --fsid "$fsid" --addv a "[v2:127.0.0.1:$mon_port]" "$dir/monmap" >/dev/null
ceph-mon -c "$conf" --mkfs -i a --monmap "$dir/monmap" >/dev/null 2>&1 || fail "ceph-mon --mkfs failed"
ceph-mon -c "$conf" -i a -f >>"$dir/log/mon.stdout" 2>&1 &
echo $! >"$dir/run/mon.pid.start"

# Bounded waits: each names what it waits for and gives up with the logs.
wait_for() {
  local what="$1" seconds="$2"
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then fail "gave up after ${seconds}s waiting for $what"; fi
    sleep 0.2
  done
}
ceph_cli() { timeout 20 ceph -c "$conf" --connect-timeout 10 "$@"; }

wait_for "the monitor" 60 ceph_cli mon stat
osd_uuid="$(cat /proc/sys/kernel/random/uuid)"
osd_id="$(ceph_cli osd new "$osd_uuid")"
[ "$osd_id" = 0 ] || fail "expected OSD id 0, got '$osd_id'"
ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >/dev/null 2>&1 || fail "ceph-osd --mkfs failed"
ceph-osd -c "$conf" -i 0 -f >>"$dir/log/osd.stdout" 2>&1 &
echo $! >"$dir/run/osd.pid.start"
wait_for "the OSD to be up" 90 bash -c "ceph -c '$conf' --connect-timeout 10 osd stat 2>/dev/null | grep -q '1 up'"

radosgw -c "$conf" -n client.rgw.ferry -f >>"$dir/log/rgw.stdout" 2>&1 &
echo $! >"$dir/run/rgw.pid.start"
wait_for "the gateway to answer HTTP on 127.0.0.1:$rgw_port" 120 \
  python3 -c "import urllib.request, urllib.error, sys
try: urllib.request.urlopen('http://127.0.0.1:$rgw_port/', timeout=2)
except urllib.error.HTTPError: pass"

access_key="FERRYTESTACCESSKEY01"
secret_key="$(head -c 30 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 40)"
wait_for "the S3 user to be created" 60 \
  timeout 30 radosgw-admin -c "$conf" user create --uid=ferry --display-name=ferry \
  --access-key="$access_key" --secret-key="$secret_key"

cat >"$dir/env" <<EOF
S3_ENDPOINT=http://127.0.0.1:$rgw_port
AWS_ACCESS_KEY_ID=$access_key
AWS_SECRET_ACCESS_KEY=$secret_key
AWS_REGION=us-east-1
CEPH_DIR=$dir
EOF
cat "$dir/env"
