"""The homes: each home's namespace plugged into the access node on its C-VLAN, its DHCP exchange
and lease, pings from it, and the record of the homes up made (homes.json)."""

import json
import os
import subprocess

from . import plumbing, sh
from .naming import HOMES_FILE, SVLAN, an_bridge, cvlan, home_ns, home_port


def home_up(home):
    """Home `home`'s namespace on the access node, on its C-VLAN, untagged."""
    ns, port = home_ns(home), home_port(home)
    plumbing.netns(ns)
    plumbing.veth(port, port + "x", ns, "eth0")
    plumbing.no_offload(port)
    plumbing.no_offload("eth0", netns=ns)
    sh.run(["ip", "link", "set", port, "up"])
    sh.run(["ip", "link", "set", "eth0", "up"], netns=ns)
    plumbing.ovs("--may-exist", "add-port", an_bridge(), port, "--", "set", "port", port, "tag=%d" % cvlan(home))
    # Let this C-VLAN through the access node's S-VLAN side.
    dn = "tb-an-s%d-dn" % SVLAN
    have = plumbing.ovs("get", "port", dn, "trunks").strip().strip("[]")
    vlans = sorted({int(v) for v in have.replace(",", " ").split() if v.isdigit()} | {cvlan(home)})
    plumbing.ovs("set", "port", dn, "trunks=" + ",".join(str(v) for v in vlans))


def lease_file(home):
    return os.path.join(sh.STATE, "homes", "home%d.lease" % home)


def dhcp(home, timeout=120):
    """One DHCP exchange from home `home` (busybox udhcpc; it configures eth0 and records the lease).
    Returns the lease {ip, router, serverid, lease, mac}, or None."""
    path = lease_file(home)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    script = os.path.join(sh.REPO, "testbed", "guest", "udhcpc.sh")
    tries = max(1, int(timeout / 3))
    p = subprocess.run(["ip", "netns", "exec", home_ns(home), "busybox", "udhcpc", "-i", "eth0", "-q", "-f", "-n",
                        "-t", str(tries), "-T", "3", "-A", "1", "-s", script],
                       env=dict(os.environ, TB_LEASE=path), capture_output=True, text=True, timeout=timeout + 30)
    if p.returncode != 0 or not os.path.exists(path):
        return None
    return read_lease(home)


def read_lease(home):
    try:
        return json.loads(sh.read(lease_file(home)))
    except (OSError, ValueError):
        return None


def home_mac(home):
    return sh.run(["cat", "/sys/class/net/eth0/address"], netns=home_ns(home)).strip()


def ping(home, addr, count=1, wait=1):
    return sh.ok(["busybox", "ping", "-c", str(count), "-W", str(wait), addr], netns=home_ns(home),
                 timeout=count * wait + 5)


def load_homes():
    try:
        return {int(k): v for k, v in json.loads(sh.read(HOMES_FILE)).items()}
    except (OSError, ValueError):
        return {}


def save_homes(h):
    os.makedirs(sh.STATE, exist_ok=True)
    with open(HOMES_FILE, "w") as f:
        json.dump(h, f, indent=1)
