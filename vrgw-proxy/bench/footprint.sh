#!/usr/bin/env bash
# Footprint of the vRGW proxy next to a Python standard-library XML-RPC proxy offering the same
# methods (bench/py_proxy.py): binary size, idle and loaded RSS, and `get` calls per second
# under wrk. Builds the static release binary first. Needs root (a network namespace), dnsmasq,
# nft, python3 and wrk (apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/build-proxy-static >/dev/null
bin=target/x86_64-unknown-linux-gnu/small/vrgw-proxy
ns=vrgwfp$$
dir=$(mktemp -d)
cleanup() { kill "${ours:-}" "${py:-}" 2>/dev/null || true; sleep 0.3; ip netns del "$ns" 2>/dev/null || true; rm -rf "$dir"; }
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add lan0 type veth peer name lanp
ip -n "$ns" link set lanp up
echo "bench-secret-0123456789" > "$dir/secret"
ip netns exec "$ns" "$bin" --listen 127.0.0.1:8730 --secret-file "$dir/secret" --state-dir "$dir/state" \
  --run-dir "$dir/run" --lan-if lan0 --wan-if wan0 2>"$dir/ours.log" &
ours=$!
sleep 1.5
rss() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
pid_ours=$(pgrep -f "$bin --listen 127.0.0.1:8730" | head -1)
ours_idle=$(rss "$pid_ours")
auth=$(printf 'vrgw:bench-secret-0123456789' | base64)
ip netns exec "$ns" python3 - "$dir/params.json" <<'PY'
import json, sys, xmlrpc.client
p = xmlrpc.client.ServerProxy("http://vrgw:bench-secret-0123456789@127.0.0.1:8730/")
json.dump(p.get(["Device."]), open(sys.argv[1], "w"))
PY
mkdir -p "$dir/pyrun"
ip netns exec "$ns" python3 vrgw-proxy/bench/py_proxy.py "$dir/params.json" "$dir/pyrun" > "$dir/py.port" &
py=$!
sleep 1
py_port=$(head -1 "$dir/py.port")
pid_py=$(pgrep -f "py_proxy.py $dir/params.json" | head -1)
py_idle=$(rss "$pid_py")
body=$(python3 -c 'import xmlrpc.client; print(xmlrpc.client.dumps((["Device.DHCPv4.Server.Pool.1."],), "get"), end="")')
cat > "$dir/ours.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "text/xml"
wrk.headers["Authorization"] = "Basic $auth"
wrk.body = [==[$body]==]
LUA
sed '/Authorization/d' "$dir/ours.lua" > "$dir/py.lua"
rate() { ip netns exec "$ns" wrk -t1 -c"$1" -d3s -s "$2" "$3" | awk '/Requests\/sec/ {print $2}'; }
o1=$(rate 1 "$dir/ours.lua" http://127.0.0.1:8730/RPC2); p1=$(rate 1 "$dir/py.lua" "http://127.0.0.1:$py_port/RPC2")
o8=$(rate 8 "$dir/ours.lua" http://127.0.0.1:8730/RPC2); p8=$(rate 8 "$dir/py.lua" "http://127.0.0.1:$py_port/RPC2")
printf '%-34s %14s %14s\n' "" "vrgw-proxy" "python stdlib"
printf '%-34s %14s %14s\n' "binary (bytes)" "$(stat -c %s "$bin")" "(interpreter)"
printf '%-34s %14s %14s\n' "idle RSS (KiB)" "$ours_idle" "$py_idle"
printf '%-34s %14s %14s\n' "RSS after load (KiB)" "$(rss "$pid_ours")" "$(rss "$pid_py")"
printf '%-34s %14s %14s\n' "get of a pool (27 values), 1 conn/s" "$o1" "$p1"
printf '%-34s %14s %14s\n' "get of a pool (27 values), 8 conn/s" "$o8" "$p8"
