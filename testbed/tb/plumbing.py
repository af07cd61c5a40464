"""The machine-level network: Linux and Open vSwitch bridges, veth pairs, namespaces, the data
center's bridges, the internet namespace with its DHCP server, the emulated access node and each
host's trunk to it."""

import os

from . import daemons, sh
from .naming import (
    AN, DC_BRIDGE, INET_ADDR, INET_NS, MGMT_BRIDGE, MGMT_HOST_ADDR, RUN, SVLAN, TRUNK_MTU, WAN_BRIDGE, an_bridge,
    an_trunk, host_addr, uplink_of)


def link_exists(name, netns=None):
    return sh.ok(["ip", "link", "show", name], netns=netns)


def no_offload(dev, netns=None):
    # Open vSwitch's userspace datapath never fills in offloaded checksums (design brief, 4).
    sh.run(["ethtool", "-K", dev, "tx", "off"], netns=netns)


def linux_bridge(name, addr=None):
    if not link_exists(name):
        sh.run(["ip", "link", "add", name, "type", "bridge"])
    if addr and addr not in sh.run(["ip", "-o", "addr", "show", "dev", name]):
        sh.run(["ip", "addr", "add", addr, "dev", name])
    sh.run(["ip", "link", "set", name, "up"])


def ovs(*args):
    return sh.run(["ovs-vsctl", "--timeout=10"] + list(args))


def ovs_bridge(name):
    ovs("--may-exist", "add-br", name, "--", "set", "bridge", name, "datapath_type=netdev")
    sh.run(["ip", "link", "set", name, "up"], check=False)


def veth(a, b, b_netns=None, b_name=None):
    """A veth pair a <-> b, b moved into `b_netns` (and renamed `b_name` there)."""
    if link_exists(a):
        return
    sh.run(["ip", "link", "add", a, "type", "veth", "peer", "name", b])
    if b_netns:
        sh.run(["ip", "link", "set", b, "netns", b_netns])
        if b_name:
            sh.run(["ip", "link", "set", b, "name", b_name], netns=b_netns)


def netns(name):
    if name not in sh.run(["ip", "netns", "list"]).split():
        sh.run(["ip", "netns", "add", name])
    sh.run(["ip", "link", "set", "lo", "up"], netns=name)


def dc_network(hosts):
    """The hosts' own addresses, on a bridge of the data center's."""
    linux_bridge(DC_BRIDGE, host_addr(1) + "/24")
    for i in range(2, hosts + 1):
        if host_addr(i) + "/" not in sh.run(["ip", "-o", "addr", "show", "dev", DC_BRIDGE]):
            sh.run(["ip", "addr", "add", host_addr(i) + "/24", "dev", DC_BRIDGE])


def network_up(uplink=None, hosts=1):
    """The hosts' bridges and the internet namespace; with no real `uplink`, also the emulated
    access node and a trunk to it from each host."""
    sh.say("network: management and WAN bridges, internet namespace" +
           (", trunk on %s" % uplink if uplink else ", access node, trunk"))
    linux_bridge(MGMT_BRIDGE, MGMT_HOST_ADDR)
    linux_bridge(WAN_BRIDGE)
    dc_network(hosts)
    # The internet: a namespace behind the vRGWs' WAN side, handing out WAN addresses.
    netns(INET_NS)
    veth("tb-inet", "tb-inet-in", INET_NS, "wan0")
    sh.run(["ip", "link", "set", "tb-inet", "master", WAN_BRIDGE])
    sh.run(["ip", "link", "set", "tb-inet", "up"])
    if INET_ADDR not in sh.run(["ip", "-o", "addr", "show", "dev", "wan0"], netns=INET_NS):
        sh.run(["ip", "addr", "add", INET_ADDR + "/16", "dev", "wan0"], netns=INET_NS)
    sh.run(["ip", "link", "set", "wan0", "up"], netns=INET_NS)
    os.makedirs(RUN, mode=0o700, exist_ok=True)
    os.chmod(RUN, 0o700)  # it holds secrets (tokens, configuration files, databases)
    if not daemons.pid_alive(os.path.join(RUN, "inet-dnsmasq.pid")):
        sh.run(["ip", "netns", "exec", INET_NS, "dnsmasq", "--interface=wan0", "--bind-interfaces", "--port=0",
                "--dhcp-range=100.64.1.1,100.64.255.254,255.255.0.0,12h", "--dhcp-authoritative",
                "--dhcp-leasefile=" + os.path.join(RUN, "inet-dnsmasq.leases"),
                "--pid-file=" + os.path.join(RUN, "inet-dnsmasq.pid"), "--log-facility=" +
                os.path.join(RUN, "inet-dnsmasq.log"), "--log-dhcp"])
    if uplink:
        if not link_exists(uplink):
            raise sh.Failed("--uplink %s: no such interface" % uplink)
        sh.run(["ip", "link", "set", uplink, "up"])
        return
    # The access node: trunk side (a trunk from each host) and the S-VLAN's subscriber side.
    ovs_bridge(AN)
    ovs_bridge(an_bridge())
    for i in range(1, hosts + 1):
        veth(uplink_of(i), an_trunk(i))
        for d in (uplink_of(i), an_trunk(i)):
            no_offload(d)
            # A full 1500-byte packet with two VLAN tags is a 1522-byte frame; the kernel lets one
            # tag over the MTU, not two, so full-size TCP segments would vanish on the trunk.
            sh.run(["ip", "link", "set", d, "mtu", str(TRUNK_MTU), "up"])
        ovs("--may-exist", "add-port", AN, an_trunk(i), "--", "set", "port", an_trunk(i), "trunks=%d" % SVLAN,
            "--", "set", "interface", an_trunk(i), "mtu_request=%d" % TRUNK_MTU)
    up, dn = "tb-an-s%d-up" % SVLAN, "tb-an-s%d-dn" % SVLAN
    ovs("--may-exist", "add-port", AN, up, "--", "set", "interface", up, "type=patch", "options:peer=" + dn,
        "--", "set", "port", up, "vlan_mode=dot1q-tunnel", "tag=%d" % SVLAN, "other_config:qinq-ethtype=802.1ad")
    ovs("--may-exist", "add-port", an_bridge(), dn, "--", "set", "interface", dn, "type=patch",
        "options:peer=" + up)
