#!/bin/sh
# vRGW guest start-up: file systems, modules, interfaces, WAN address.
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /run /tmp /var/lib/vrgw-proxy /var/run
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs tmpfs /tmp
hostname vrgw

# Kernel modules, in dependency order (written by the image builder).
while read -r m; do
  insmod "/lib/modules/$m" || echo "rc: insmod $m failed"
done </etc/modules.order

# The host tells us our management address on the kernel command line (and as an SMBIOS OEM
# string, which this image does not need); both are public on the host (QEMU's argv).
mgmt=""
for w in $(cat /proc/cmdline); do
  case "$w" in
    vrgw.mgmt=*) mgmt="${w#vrgw.mgmt=}" ;;
  esac
done
[ -n "$mgmt" ] || echo "rc: no vrgw.mgmt= on the kernel command line; the host cannot manage this vRGW"

# NIC roles come from the MAC address the host gave: last octet 0 management, 1 LAN, 2 WAN.
for dev in /sys/class/net/*; do
  name="${dev##*/}"
  [ "$name" = lo ] && continue
  mac=$(cat "$dev/address")
  case "${mac##*:}" in
    00) role=mgmt ;;
    01) role=lan ;;
    02) role=wan ;;
    *) continue ;;
  esac
  ip link set "$name" name "$role"
done
ip link set lo up
for d in mgmt lan wan; do ip link set "$d" up 2>/dev/null || echo "rc: no $d interface"; done
[ -n "$mgmt" ] && ip addr add "$mgmt" dev mgmt
echo 1 >/proc/sys/net/ipv4/ip_forward

umask 077
echo "${mgmt%/*}" >/run/vrgw-mgmt
# The proxy's secret: a QEMU fw_cfg entry whose content the host keeps in a file only root reads
# there; here sysfs lets only root read it too (qemu_fw_cfg, loaded above).
fwcfg=/sys/firmware/qemu_fw_cfg/by_name/opt/org.vrgw/secret/raw
if [ -r "$fwcfg" ]; then
  cat "$fwcfg" >/run/vrgw-secret
else
  echo "rc: no fw_cfg entry opt/org.vrgw/secret; the proxy has no secret and will not start"
fi
umask 022

# WAN: an address from the access provider's DHCP server; keep renewing in the background.
udhcpc -i wan -b -S -t 5 -T 2 -A 2 -s /etc/udhcpc.sh -x hostname:vrgw >/dev/null 2>&1
echo "rc: vRGW up (management ${mgmt:-none})"
