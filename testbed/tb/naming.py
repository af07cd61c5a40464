"""The names of everything the testbed makes: hosts (agent ids, devices, libvirt URIs, addresses),
bridges, trunks, namespaces, ports, VLANs, and its files. Everything is named `tb…` (interfaces,
bridges, namespaces, domains), so teardown finds it all; the files live under $VRGW_TESTBED_DIR
(default /var/lib/vrgw-testbed)."""

import os

from . import sh


HOST = "tbh1"                       # agent id, switch prefix, port prefix of host 1
SVLAN = 100
MGMT_BRIDGE = "tb-mgmt"             # the data center's management network, shared by the hosts
MGMT_HOST_ADDR = "10.99.0.1/16"
MGMT_NETWORK = "10.99.0.0/16"
WAN_BRIDGE = "tb-wan"
DC_BRIDGE = "tb-dc"                 # the hosts' own addresses (libvirtd, migrations)
INET_NS = "tb-inet"
INET_ADDR = "100.64.0.1"
AN = "tb-an"                        # access node, trunk side
UPLINK = HOST + "-up"               # host end of the trunk
AN_TRUNK = "tb-an-" + HOST          # access-node end of the trunk
CWMP_PORT, CR_PORT, NBI_PORT, PORTAL_PORT = 7547, 7548, 7557, 8080
TRUNK_MTU = 1600                    # room for the second (802.1ad) tag, and then some
RUN = os.path.join(sh.STATE, "run")
HOMES_FILE = os.path.join(sh.STATE, "homes.json")
HOSTS_FILE = os.path.join(sh.STATE, "hosts-up")
PKI = os.path.join(sh.STATE, "pki")                 # the CA and the certificates (tb/pki.py)
CLIENT_PKI = os.path.join(PKI, "client")            # every client's (agents, virsh, libvirtd as migration source)
CLIENT_DN = "CN=vrgw-testbed-libvirt-client"        # the one client subject the hosts' libvirtd accept
LIBVIRT_TLS_PORT = 16514
MAX_HOSTS = 4


def device_id(oui, product_class, serial_number):
    """The ACS's id of a device (cwmp::DeviceId::key, GenieACS's too): each part with every byte
    of a character other than A-Z, a-z, 0-9 and _ written as %XX."""
    def esc(part):
        return "".join(c if (c.isascii() and c.isalnum()) or c == "_" else
                       "".join("%%%02X" % b for b in c.encode()) for c in part)
    return "-".join(esc(p) for p in ([oui, product_class] if product_class else [oui]) + [serial_number])


DEVICE = device_id("00A0B1", "vRGW-Host", HOST)


def host(i):
    """Host i's name: agent id, switch and port prefix."""
    return "tbh%d" % i


def host_addr(i):
    return "10.98.0.%d" % i


def host_uri(i):
    """Host i's libvirtd (its own, in a mount namespace of its own, on its own address), over TLS
    with the testbed's client certificate. The same string is the agent's `libvirt`, its
    `migration_uri`, its peers' `migration_peers` entry and the ACS's `[[hosts]]` registration,
    and the source libvirtd of a peer-to-peer migration opens it (the folder is visible in every
    host's mount namespace)."""
    return "qemu+tls://%s/system?pkipath=%s" % (host_addr(i), CLIENT_PKI)


def lxc_uri(i):
    """Host i's LXC driver: the same libvirtd as host_uri(i), its containers."""
    return "lxc" + host_uri(i)[len("qemu"):]


FLAVORS = ("vm", "container", "mixed")
OVERLAYS = os.path.join(sh.STATE, "overlays")  # each host's disk overlays and container layers


def flavor_of(home, flavor, homes):
    """The flavor of home `home`'s vRGW: `mixed` gives the first half of the homes VMs and the
    rest containers (of three homes, home 3 is a container)."""
    if flavor == "mixed":
        return "vm" if home <= (homes + 1) // 2 else "container"
    return flavor


def device(i):
    """Host i's agent as the ACS names it: 00A0B1-vRGW%2DHost-tbh<i>."""
    return device_id("00A0B1", "vRGW-Host", host(i))


def uplink_of(i):
    return host(i) + "-up"


def an_trunk(i):
    return "tb-an-" + host(i)


def mgmt_network(i):
    """Each host numbers its vRGWs' management addresses in its own part of the shared /16 (a
    migrated vRGW keeps its address)."""
    return "10.99.%d.0/16" % ((i - 1) * 64)


def agent_name(i):
    return "agent" if i == 1 else "agent-" + host(i)


def host_dir(i):
    return os.path.join(sh.STATE, "hosts", host(i))


def hosts_up():
    try:
        return max(1, min(MAX_HOSTS, int(sh.read(HOSTS_FILE).strip())))
    except (OSError, ValueError):
        return 1


LIBVIRT = host_uri(1)


def cvlan(home):
    return 10 + home


def home_ns(home):
    return "tb-home%d" % home


def home_port(home):
    return "tb-home%d" % home


def an_bridge(svlan=SVLAN):
    return "tb-an-s%d" % svlan
