#!/bin/sh
# busybox udhcpc hook: address and default route from the lease, nothing else. Used for the vRGW's
# WAN (inside the guest) and for the homes (testbed); with $TB_LEASE set, the lease is also
# recorded there as JSON (testbed/status and the tests read it).
case "$1" in
  deconfig)
    ip -4 addr flush dev "$interface"
    ;;
  bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    if [ -n "$router" ]; then
      ip route replace default via "${router%% *}" dev "$interface"
    fi
    if [ -n "$TB_LEASE" ]; then
      mac=$(cat "/sys/class/net/$interface/address")
      printf '{"ip": "%s", "mask": "%s", "router": "%s", "serverid": "%s", "lease": "%s", "dns": "%s", "mac": "%s", "time": %s}\n' \
        "$ip" "${mask:-}" "${router:-}" "${serverid:-}" "${lease:-}" "${dns:-}" "$mac" "$(date +%s)" >"$TB_LEASE.new"
      mv "$TB_LEASE.new" "$TB_LEASE"
    fi
    ;;
esac
exit 0
