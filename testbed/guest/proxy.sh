#!/bin/sh
# Runs the vRGW proxy on the management address (respawned by init).
addr=$(cat /run/vrgw-mgmt 2>/dev/null)
if [ -z "$addr" ]; then
  sleep 60
  exit 1
fi
exec /usr/bin/vrgw-proxy --listen "$addr:8730" --secret-file /run/vrgw-secret \
  --state-dir /var/lib/vrgw-proxy --run-dir /run/vrgw-proxy --lan-if lan --wan-if wan \
  --instance-id "$(cat /proc/sys/kernel/hostname)" --reboot-command reboot
