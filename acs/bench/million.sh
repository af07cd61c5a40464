#!/usr/bin/env bash
# A million devices on PostgreSQL: bulk-loaded into a cluster of its own (SQL, not the wire),
# then one ACS node on it: its RSS idle, the database's size, and the time of GET /devices
# queries on a tag and on a parameter value, with the node's RSS after them.
#
#   acs/bench/million.sh [DEVICES]        # default 1000000; root or a user with PostgreSQL
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-1000000}
cargo build --quiet --release -p acs --bin acs
dir=$(mktemp -d /tmp/acs-million.XXXXXX)
chmod 711 "$dir"
port=55481
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
owner=()
[ "$(id -u)" = 0 ] && owner=(runuser -u postgres --)
url=$(scripts/start-postgres "$dir/pg" "$port")
acs_pid=""
cleanup() {
  [ -n "$acs_pid" ] && kill "$acs_pid" 2>/dev/null || true
  "${owner[@]}" "$bin/pg_ctl" -D "$dir/pg/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
psql_acs() { "${owner[@]}" "$bin/psql" -X -q -A -t -h "$dir/pg" -p "$port" -U vrgw -d acs -c "$1"; }
token=bench-token-0123456789
cat >"$dir/acs.toml" <<EOF
[store]
url = "$url"
password_file = "$dir/pg/password"
[nbi]
tokens = ["$token"]
EOF
chmod 600 "$dir/acs.toml"
# The schema, from the ACS itself; then the rows.
(target/release/acs --config "$dir/acs.toml" --db "$dir/acs.db" --cwmp-listen 127.0.0.1:0 --nbi-listen 127.0.0.1:0 \
  --portal-listen off >"$dir/out" 2>"$dir/log" &)
for _ in $(seq 100); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.1; done
pkill -f "acs --config $dir/acs.toml" || true
sleep 0.5
t0=$(date +%s.%N)
psql_acs "INSERT INTO devices (id, manufacturer, oui, product_class, serial_number, last_inform, tags, created)
  SELECT '00A0B1-SimCPE-m' || i, 'vRGW Project', '00A0B1', 'SimCPE', 'm' || i, 1700000000 + i,
         CASE WHEN i % 1000 = 0 THEN '[\"gold\"]' ELSE '[]' END, 1700000000
  FROM generate_series(1, $n) AS i;
  INSERT INTO params (device, name, type, value, updated)
  SELECT '00A0B1-SimCPE-m' || i, p.name, 'string', p.name || '-' || (i % 97), 1700000000
  FROM generate_series(1, $n) AS i,
       (VALUES ('Device.DeviceInfo.SoftwareVersion'), ('Device.DeviceInfo.ProvisioningCode'),
               ('Device.ManagementServer.ParameterKey')) AS p(name);
  ANALYZE;"
t1=$(date +%s.%N)
size=$(psql_acs "SELECT pg_size_pretty(pg_database_size('acs'))")
echo "loaded $n devices (3 cached values each) in $(python3 -c "print(round($t1 - $t0, 1))") s; database $size"
target/release/acs --config "$dir/acs.toml" --db "$dir/acs.db" --cwmp-listen 127.0.0.1:0 --nbi-listen 127.0.0.1:0 \
  --portal-listen off >"$dir/out" 2>"$dir/log" &
acs_pid=$!
for _ in $(seq 100); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.1; done
nbi=$(grep -o 'nbi=[0-9.:]*' "$dir/out" | cut -d= -f2)
rss() { awk '/VmRSS|VmHWM/ {printf "%s %s kB  ", $1, $2}' "/proc/$acs_pid/status"; echo; }
sleep 1
echo "ACS idle: $(rss)"
query() { # LABEL QUERY
  local q
  q=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$2")
  local out
  out=$(curl -s -o "$dir/body" -w '%{http_code} %{time_total}' -H "Authorization: Bearer $token" \
    "http://$nbi/devices?query=$q&projection=_id")
  echo "GET /devices?query=$2 ($1): HTTP ${out% *}, ${out#* } s, $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$dir/body" 2>/dev/null || echo '?') devices"
}
query "a tag" '{"_tags":"gold"}'
query "a parameter value" '{"Device.DeviceInfo.ProvisioningCode":"Device.DeviceInfo.ProvisioningCode-5"}'
echo "ACS after: $(rss)"
