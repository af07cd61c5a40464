#!/bin/sh
# Instructions the ACS executes per session, counted by callgrind (repeatable on a noisy VM, unlike
# wall-clock rates): the release `acs` binary under valgrind, a 20-parameter refresh preset on every
# 2 PERIODIC, and 20 simulated CPEs (`cwmp-sim`) running sessions back to back for SECS seconds
# after a 5-second warm-up; start-up and warm-up are dumped apart and not counted per session.
# With STORE=postgres the ACS runs on a PostgreSQL cluster of its own (scripts/start-postgres, in
# the same temporary directory, stopped at the end); the database's own work is not counted here
# (docs/benchmarks.md gives its statements, rows and WAL per session).
# usage: [STORE=postgres] [SECS=30] acs/bench/instructions.sh   (needs valgrind, curl, python3; builds first)
set -eu
cd "$(dirname "$0")/../.."
cargo build -q --release -p acs
D=$(mktemp -d)
PG_CTL=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)/pg_ctl
stop_pg() {
    if [ -f "$D/pg/data/PG_VERSION" ]; then
        if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$PG_CTL" -D "$D/pg/data" -m fast stop >/dev/null 2>&1 || true
        else "$PG_CTL" -D "$D/pg/data" -m fast stop >/dev/null 2>&1 || true; fi
    fi
}
trap 'pkill -INT -f "callgrind.*$D" 2>/dev/null || true; stop_pg; rm -rf "$D"' EXIT
# Secrets in 0600 files, never on a command line: the NBI token and the simulated CPEs' credential
# (any DeviceId of cwmp-sim's product class).
umask 077
cat >"$D/acs.toml" <<EOF
[nbi]
tokens = ["bench-token-0123456789"]
[[cwmp.cpe_credentials]]
username = "cpe"
password = "cpe-bench-secret"
device_prefix = "00A0B1-SimCPE-"
EOF
echo "cpe:cpe-bench-secret" >"$D/cpe-credentials"
if [ "${STORE:-sqlite}" = postgres ]; then
    chmod 711 "$D" # the cluster's user (postgres, when run as root) reaches its folder, lists none
    URL=$(scripts/start-postgres "$D/pg" 17560)
    printf '[store]\nurl = "%s"\npassword_file = "%s"\n' "$URL" "$D/pg/password" >>"$D/acs.toml"
fi
valgrind --tool=callgrind --fair-sched=yes --callgrind-out-file="$D/cg.out" target/release/acs --config "$D/acs.toml" \
    --cwmp-listen 127.0.0.1:17547 --nbi-listen 127.0.0.1:17557 --portal-listen off --db "$D/acs.db" >"$D/acs.log" 2>&1 &
VG=$!
for _ in $(seq 1 100); do
    curl -s -o /dev/null http://127.0.0.1:17557/ && break
    sleep 0.2
done
PRESET=$(python3 -c "
import json
d = ['Manufacturer', 'ManufacturerOUI', 'ProductClass', 'SerialNumber', 'SoftwareVersion', 'HardwareVersion',
     'UpTime', 'ModelName', 'Description', 'ProvisioningCode']
m = ['URL', 'PeriodicInformEnable', 'PeriodicInformInterval', 'ParameterKey', 'ConnectionRequestURL',
     'ConnectionRequestUsername', 'Username', 'PeriodicInformTime', 'CWMPRetryMinimumWaitInterval',
     'CWMPRetryIntervalMultiplier']
names = ['Device.DeviceInfo.' + x for x in d] + ['Device.ManagementServer.' + x for x in m]
print(json.dumps({'events': {'2 PERIODIC': True}, 'configurations': [{'type': 'refresh', 'names': names}]}))")
curl -sf -o /dev/null -X PUT -H "Authorization: Bearer bench-token-0123456789" -d "$PRESET" http://127.0.0.1:17557/presets/refresh
SIM="target/release/cwmp-sim --acs http://127.0.0.1:17547/ --credentials-file $D/cpe-credentials --count ${CPES:-20}"
# A warm-up (every device registered, statements prepared, caches filled), then a dump: the
# second dump holds the measured window alone.
$SIM --duration-secs 5 >/dev/null
callgrind_control -d "$VG" >/dev/null 2>&1
SESSIONS=$($SIM --duration-secs "${SECS:-30}" | tail -1)
callgrind_control -d "$VG" >/dev/null 2>&1
echo "$SESSIONS"
pkill -INT -f "callgrind.*$D"
for _ in $(seq 1 100); do
    grep -q "refs:" "$D/acs.log" && break
    sleep 0.2
done
N=$(echo "$SESSIONS" | awk '{print $1}')
[ "$N" -gt 0 ] || { echo "no session completed; the ACS said:" >&2; tail -20 "$D/acs.log" >&2; exit 1; }
IR=$(grep "refs:" "$D/acs.log" | awk '{gsub(",", "", $NF); print $NF}')
[ -z "${KEEP:-}" ] || cp "$D"/cg.out* "$KEEP"/ # KEEP=FILE: the measured window's profile, for callgrind_annotate
WINDOW=$(awk '/^summary:/ {print $2}' "$D/cg.out.2")
echo "ACS instructions (${STORE:-sqlite}): $IR in all (start-up, warm-up, $N measured sessions);" \
    "$WINDOW in the measured window: $((WINDOW / N)) per session"
