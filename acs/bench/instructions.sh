#!/bin/sh
# Instructions the ACS executes per session, counted by callgrind (repeatable on a noisy VM, unlike
# wall-clock rates): the release `acs` binary under valgrind, a 20-parameter refresh preset on every
# 2 PERIODIC, and 20 simulated CPEs (`cwmp-sim`) running sessions back to back for SECS seconds.
# usage: acs/bench/instructions.sh        (needs valgrind, curl, python3; builds first)
set -eu
cd "$(dirname "$0")/../.."
cargo build -q --release -p acs
D=$(mktemp -d)
trap 'pkill -INT -f "callgrind.*$D" 2>/dev/null || true; rm -rf "$D"' EXIT
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
valgrind --tool=callgrind --callgrind-out-file="$D/cg.out" target/release/acs --config "$D/acs.toml" \
    --cwmp-listen 127.0.0.1:17547 --nbi-listen 127.0.0.1:17557 --portal-listen off --db "$D/acs.db" >"$D/acs.log" 2>&1 &
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
SESSIONS=$(target/release/cwmp-sim --acs http://127.0.0.1:17547/ --credentials-file "$D/cpe-credentials" --count 20 \
    --duration-secs "${SECS:-30}" | tail -1)
echo "$SESSIONS"
pkill -INT -f "callgrind.*$D"
for _ in $(seq 1 100); do
    grep -q "refs:" "$D/acs.log" && break
    sleep 0.2
done
N=$(echo "$SESSIONS" | awk '{print $1}')
IR=$(grep "refs:" "$D/acs.log" | awk '{gsub(",", "", $NF); print $NF}')
echo "ACS instructions: $IR in $N sessions (start-up included): $((IR / N)) per session"
