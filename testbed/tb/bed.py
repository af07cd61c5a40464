"""The testbed on one machine: the data center (ACS, one hypervisor agent, libvirt with QEMU, Open
vSwitch), the access network (an access node taking the host's Q-in-Q trunk) and the homes (one
network namespace each), plus an "internet" namespace behind the vRGWs' WAN side.

```
 tb-inet netns (100.64.0.1, DHCP for WANs, iperf3)
     │ veth tb-inet
 tb-wan (Linux bridge) ── WAN NIC of every vRGW
 tbh1-mgmt (Linux bridge, 10.99.0.1/16 on the host) ── management NIC of every vRGW ── agent
 vRGW LAN NICs ── tbh1-sS (access port, tag C) ── tbh1-trunk ── uplink tbh1-up   [the agent's, Open vSwitch]
                                                                    ║ veth: 802.1ad S over 802.1Q C
 tb-an (trunk side, tunnel port tag S) ── tb-an-sS (home port, access tag C) ── veth ── tb-homeN netns
```

Everything the testbed makes is named `tb…` (interfaces, bridges, namespaces, domains), so `down`
finds it all; its files live under $VRGW_TESTBED_DIR (default /var/lib/vrgw-testbed).
"""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time

from . import image, nbi, sh

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
TEMPLATE_NAME = "vrgw-small"
GUEST_MEMORY_KIB = 106496           # 104 MiB: Debian's kernel plus our 14.6 MiB initramfs
DEVICE = "00A0B1-vRGW-Host-" + HOST
RUN = os.path.join(sh.STATE, "run")
HOMES_FILE = os.path.join(sh.STATE, "homes.json")
HOSTS_FILE = os.path.join(sh.STATE, "hosts-up")
MAX_HOSTS = 4


def host(i):
    """Host i's name: agent id, switch and port prefix."""
    return "tbh%d" % i


def host_addr(i):
    return "10.98.0.%d" % i


def host_uri(i):
    """Host i's libvirtd (its own, in a mount namespace of its own, on its own address)."""
    return "qemu+tcp://%s/system" % host_addr(i)


def device(i):
    return "00A0B1-vRGW-Host-" + host(i)


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


def hosts_up():
    try:
        return max(1, min(MAX_HOSTS, int(sh.read(HOSTS_FILE).strip())))
    except (OSError, ValueError):
        return 1


LIBVIRT = host_uri(1)

PACKAGES = [
    ("ovs-vsctl", "openvswitch-switch"), ("virsh", "libvirt-clients"), ("libvirtd", "libvirt-daemon-system"),
    ("/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so", "libvirt-daemon-driver-qemu"),
    ("qemu-system-x86_64", "qemu-system-x86"), ("busybox", "busybox"), ("dnsmasq", "dnsmasq-base"),
    ("nft", "nftables"), ("ip", "iproute2"), ("ethtool", "ethtool"), ("iperf3", "iperf3"), ("tcpdump", "tcpdump"), ("chromium", "chromium"),
    ("pkg-config", "pkg-config"), ("/usr/include/libvirt/libvirt.h", "libvirt-dev"), ("readelf", "binutils"),
    ("python3", "python3"),
]


def cvlan(home):
    return 10 + home


def home_ns(home):
    return "tb-home%d" % home


def home_port(home):
    return "tb-home%d" % home


def an_bridge(svlan=SVLAN):
    return "tb-an-s%d" % svlan


# ---------------------------------------------------------------- services


def install():
    sh.install(PACKAGES)
    # qemu-img must match qemu-system (Debian's qemu-utils from backports conflicts with it).
    if shutil.which("qemu-img") is None:
        v = sh.run(["apt-cache", "policy", "qemu-system-x86"])
        ver = [l.split()[1] for l in v.splitlines() if "Installed:" in l]
        sh.say("installing qemu-utils " + (ver[0] if ver else ""))
        sh.run(["apt-get", "install", "-y", "--no-install-recommends", "--allow-downgrades",
                "qemu-utils=" + ver[0] if ver else "qemu-utils"], timeout=900,
               env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def start_services(hosts=1):
    """Open vSwitch, and each host's libvirtd and virtlogd."""
    sh.run([os.path.join(sh.REPO, "scripts", "start-ovs")], timeout=60)
    # Without udev, /dev/kvm stays root-only; libvirt then decides KVM "vanished" and probes QEMU
    # again on every domain start (about 50 s each). Give it the group udev would.
    if os.path.exists("/dev/kvm"):
        st = os.stat("/dev/kvm")
        if st.st_mode & 0o060 != 0o060:
            try:
                import grp
                os.chown("/dev/kvm", 0, grp.getgrnam("kvm").gr_gid)
                os.chmod("/dev/kvm", 0o660)
                sh.say("/dev/kvm: group kvm, mode 0660 (as udev sets it)")
            except (KeyError, OSError) as e:
                sh.say("/dev/kvm left as it is: %s" % e)
    if hosts:
        dc_network(hosts)
    for i in range(1, hosts + 1):
        libvirt_up(i)


def dc_network(hosts):
    """The hosts' own addresses, on a bridge of the data center's."""
    linux_bridge(DC_BRIDGE, host_addr(1) + "/24")
    for i in range(2, hosts + 1):
        if host_addr(i) + "/" not in sh.run(["ip", "-o", "addr", "show", "dev", DC_BRIDGE]):
            sh.run(["ip", "addr", "add", host_addr(i) + "/24", "dev", DC_BRIDGE])


def system_libvirtd():
    """The machine's own libvirtd (qemu:///system), for the image's boot test only."""
    if not sh.ok(["virsh", "-c", "qemu:///system", "version"], timeout=15):
        if not sh.ok(["pgrep", "-x", "virtlogd"]):
            sh.run(["virtlogd", "-d"])
        if not sh.ok(["pgrep", "-x", "libvirtd"]):
            sh.run(["libvirtd", "-d"])
        sh.wait_for("libvirtd answering on qemu:///system",
                    lambda: sh.ok(["virsh", "-c", "qemu:///system", "version"], timeout=10), 60, 0.5)


def host_dir(i):
    return os.path.join(sh.STATE, "hosts", host(i))


def libvirt_up(i):
    """Host i's own libvirtd and virtlogd: a mount namespace in which libvirt's configuration,
    state, cache, log and run folders are private (the design brief's recipe), listening for
    peers on the host's address (TCP without authentication: the testbed's loopback-only data
    center; production hosts use TLS or SASL). All hosts share the network namespace: Open
    vSwitch's userspace datapath, one daemon, opens the taps there."""
    uri, addr = host_uri(i), host_addr(i)
    pidfile = os.path.join(RUN, "libvirt-%s.pid" % host(i))
    if pid_alive(pidfile) and sh.ok(["virsh", "-c", uri, "version"], timeout=10):
        return
    d = host_dir(i)
    for sub in ("etc", "lib", "cache", "log", "ovs"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    etc = os.path.join(d, "etc")
    if not os.path.exists(os.path.join(etc, "qemu.conf")):
        sh.run(["cp", "-a", "/etc/libvirt/.", etc])
        shutil.rmtree(os.path.join(etc, "qemu", "networks", "autostart"), ignore_errors=True)
        sh.write(os.path.join(etc, "libvirtd.conf"),
                 'listen_tls = 0\nlisten_tcp = 1\nauth_tcp = "none"\nlisten_addr = "%s"\n' % addr)
        with open(os.path.join(etc, "qemu.conf"), "a") as f:
            # Two daemons, the same image files: no ownership changes on them.
            f.write('\n# vRGW testbed host %s\nmigration_address = "%s"\nmigration_port_min = %d\n'
                    'migration_port_max = %d\ndynamic_ownership = 0\nremember_owner = 0\n'
                    % (host(i), addr, 49152 + 32 * (i - 1), 49152 + 32 * i - 1))
    script = (
        "mount --bind /run/openvswitch {d}/ovs && mount -t tmpfs tmpfs /run && "
        "mkdir -p /run/openvswitch /run/libvirt && mount --bind {d}/ovs /run/openvswitch && "
        "mount --bind {d}/etc /etc/libvirt && mount --bind {d}/lib /var/lib/libvirt && "
        "mount --bind {d}/cache /var/cache/libvirt && mount --bind {d}/log /var/log/libvirt && "
        "virtlogd -d && libvirtd -d --listen && exec sleep infinity").format(d=d)
    os.makedirs(RUN, exist_ok=True)
    with open(os.path.join(RUN, "libvirt-%s.log" % host(i)), "a") as log:
        p = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c", script], stdout=log,
                             stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    sh.write(pidfile, "%d\n" % p.pid)
    sh.wait_for("libvirtd of %s answering on %s" % (host(i), uri),
                lambda: p.poll() is None and sh.ok(["virsh", "-c", uri, "version"], timeout=10), 60, 0.5)
    sh.say("host %s: libvirtd on %s (own mount namespace, state in %s)" % (host(i), uri, d))


def mount_ns_pids(pid):
    """Every process in the mount namespace of `pid` (its libvirtd, virtlogd and QEMUs)."""
    try:
        ns = os.readlink("/proc/%d/ns/mnt" % pid)
    except OSError:
        return []
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit() and int(p) != pid:
            try:
                if os.readlink("/proc/%s/ns/mnt" % p) == ns:
                    out.append(int(p))
            except OSError:
                pass
    return out


def libvirt_down(i):
    """Host i's domains, then its libvirtd, virtlogd and namespace."""
    pidfile = os.path.join(RUN, "libvirt-%s.pid" % host(i))
    pid = pid_alive(pidfile)
    if not pid:
        return
    uri = host_uri(i)
    if sh.ok(["virsh", "-c", uri, "version"], timeout=10):
        names = sh.run(["virsh", "-c", uri, "list", "--all", "--name"], check=False).split()
        for n in names:
            sh.run(["virsh", "-c", uri, "destroy", n], check=False)
            sh.run(["virsh", "-c", uri, "undefine", n, "--nvram"], check=False)
        if names:
            sh.say("host %s: removed %d domains" % (host(i), len(names)))
    for p in mount_ns_pids(pid) + [pid]:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    os.unlink(pidfile)
    sh.say("host %s: stopped its libvirtd" % host(i))


def kvm_usable():
    return os.environ.get("VRGW_TESTBED_KVM") == "1"


# ---------------------------------------------------------------- network


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
    os.makedirs(RUN, exist_ok=True)
    if not pid_alive(os.path.join(RUN, "inet-dnsmasq.pid")):
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


def home_up(home):
    """Home `home`'s namespace on the access node, on its C-VLAN, untagged."""
    ns, port = home_ns(home), home_port(home)
    netns(ns)
    veth(port, port + "x", ns, "eth0")
    no_offload(port)
    no_offload("eth0", netns=ns)
    sh.run(["ip", "link", "set", port, "up"])
    sh.run(["ip", "link", "set", "eth0", "up"], netns=ns)
    ovs("--may-exist", "add-port", an_bridge(), port, "--", "set", "port", port, "tag=%d" % cvlan(home))
    # Let this C-VLAN through the access node's S-VLAN side.
    dn = "tb-an-s%d-dn" % SVLAN
    have = ovs("get", "port", dn, "trunks").strip().strip("[]")
    vlans = sorted({int(v) for v in have.replace(",", " ").split() if v.isdigit()} | {cvlan(home)})
    ovs("set", "port", dn, "trunks=" + ",".join(str(v) for v in vlans))


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


# ---------------------------------------------------------------- processes


def pid_alive(pidfile):
    try:
        pid = int(sh.read(pidfile).strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    # A killed child of this process stays a zombie until reaped: that is not alive.
    try:
        if sh.read("/proc/%d/stat" % pid).rsplit(")", 1)[1].split()[0] == "Z":
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            return None
    except (OSError, IndexError):
        return None
    return pid


def port_free(port):
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def binaries():
    profile = os.environ.get("VRGW_TESTBED_PROFILE", "release")
    args = ["cargo", "build", "--quiet", "-p", "acs", "--bin", "acs", "-p", "hypervisor-agent", "--bin",
            "hypervisor-agent"]
    if profile == "release":
        args.append("--release")
    sh.say("building the ACS and the hypervisor agent (%s)" % profile)
    sh.run(args, timeout=3600, cwd=sh.REPO)
    d = os.path.join(sh.REPO, "target", "release" if profile == "release" else "debug")
    return os.path.join(d, "acs"), os.path.join(d, "hypervisor-agent")


def secret(name, nbytes=16):
    path = os.path.join(RUN, name)
    try:
        v = sh.read(path).strip()
        if v:
            return v
    except OSError:
        pass
    v = secrets.token_hex(nbytes)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.write(fd, (v + "\n").encode())
    os.close(fd)
    return v


def daemon(name, args, ready_line):
    """Starts `args` detached (its own session; stdout and stderr in RUN/NAME.out and NAME.log),
    unless RUN/NAME.pid names a live process; waits for `ready_line` on its stdout."""
    pidfile = os.path.join(RUN, name + ".pid")
    if pid_alive(pidfile):
        return False
    out, log = os.path.join(RUN, name + ".out"), os.path.join(RUN, name + ".log")
    with open(out, "w") as o, open(log, "a") as l:
        p = subprocess.Popen(args, stdout=o, stderr=l, stdin=subprocess.DEVNULL, start_new_session=True)
    sh.write(pidfile, "%d\n" % p.pid)

    def ready():
        if p.poll() is not None:
            raise sh.Failed("%s exited (%s) at start; see %s" % (name, p.returncode, log))
        return ready_line in sh.read(out)
    sh.wait_for(name + " starting", ready, 60)
    return True


def stack_up(uplink_if=None, hosts=1):
    acs_bin, agent_bin = binaries()
    token = secret("nbi-token")
    cr = secret("cr-secret", 12)
    if not pid_alive(os.path.join(RUN, "acs.pid")):
        for port in (CWMP_PORT, NBI_PORT, PORTAL_PORT):
            if not port_free(port):
                raise sh.Failed("port %d on 127.0.0.1 is taken by another program (scripts/run?); stop it and "
                                "run testbed/up again" % port)
    creds = []
    for i in range(1, MAX_HOSTS + 1):
        creds += ["--cpe-credentials", "%s:%s" % (host(i), secret("cpe-secret" if i == 1 else "cpe-secret-" + host(i), 12))]
    if daemon("acs", [acs_bin, "--db", os.path.join(RUN, "acs.db"), "--cwmp-listen", "127.0.0.1:%d" % CWMP_PORT,
                      "--nbi-listen", "127.0.0.1:%d" % NBI_PORT, "--nbi-token", token] + creds +
              ["--cr-credentials", "acs:" + cr, "--portal-listen", "127.0.0.1:%d" % PORTAL_PORT],
              "listening cwmp="):
        sh.say("ACS started (CWMP 127.0.0.1:%d, NBI 127.0.0.1:%d, web form 127.0.0.1:%d)" % (
            CWMP_PORT, NBI_PORT, PORTAL_PORT))
    apis = [agent_up(i, agent_bin, uplink_if if i == 1 else None) for i in range(1, hosts + 1)]
    for a in apis:
        nbi.wait_device(a)
    return apis[0]


def agent_up(i, agent_bin=None, uplink_if=None):
    """Host i's hypervisor agent (started unless it runs); its NBI handle."""
    if agent_bin is None:
        agent_bin = binaries()[1]
    name = agent_name(i)
    conf = os.path.join(RUN, name + ".toml")
    consoles = os.path.join(RUN, "consoles")
    os.makedirs(consoles, exist_ok=True)
    with open(conf, "w") as f:
        f.write("\n".join([
            'acs_url = "http://127.0.0.1:%d/"' % CWMP_PORT,
            'acs_username = "%s"' % host(i),
            'acs_password = "%s"' % secret("cpe-secret" if i == 1 else "cpe-secret-" + host(i), 12),
            'cr_listen = "127.0.0.1:%d"' % (CR_PORT + i - 1),
            'cr_username = "acs"',
            'cr_password = "%s"' % secret("cr-secret", 12),
            'db = "%s"' % os.path.join(RUN, name + ".db"),
            'agent_id = "%s"' % host(i),
            'libvirt = "%s"' % host_uri(i),
            'migration_uri = "%s"' % host_uri(i),
            'domain_type = "%s"' % ("kvm" if kvm_usable() else "qemu"),
            'vlan_backend = "ovs"',
            'ovs_prefix = "%s"' % host(i),
            'port_prefix = "%s"' % host(i),
            'trunk_uplink = "%s"' % (uplink_if or uplink_of(i)),
            'mgmt_bridge = "%s"' % MGMT_BRIDGE,
            'mgmt_network = "%s"' % mgmt_network(i),
            'wan_bridge = "%s"' % WAN_BRIDGE,
            'overlay_dir = "%s"' % os.path.join(sh.STATE, "overlays", host(i)),
            'download_dir = "%s"' % os.path.join(RUN, "downloads-" + host(i)),
            'console_log_dir = "%s"' % consoles,
            'periodic_inform_interval = 60',
        ]) + "\n")
    if daemon(name, [agent_bin, "--config", conf], "listening cr="):
        sh.say("hypervisor agent %s started (libvirt %s)" % (host(i), host_uri(i)))
    return nbi.Nbi("http://127.0.0.1:%d" % NBI_PORT, secret("nbi-token"), device(i))


# ---------------------------------------------------------------- provisioning through the NBI


def inventory(api):
    v = api.get([nbi.VIRT])
    return (nbi.rows(v, nbi.VIRT + "Template."), nbi.rows(v, nbi.VIRT + "Pool."),
            nbi.rows(v, nbi.VIRT + "Instance."))


def provision(api, img, homes, pool_size, elsewhere=(), resize=True):
    """Template, subscribers home-1..home-`homes` (those not served by another host, `elsewhere`)
    and the pool on the host `api` manages (an existing pool keeps its size unless `resize`)."""
    templates, pools, instances = inventory(api)
    t = next((n for n, r in templates.items() if r.get("Name") == TEMPLATE_NAME), None)
    if t is None:
        t = api.add(nbi.VIRT + "Template.", [("Name", TEMPLATE_NAME), ("Image", img),
                                             ("MemoryKiB", str(GUEST_MEMORY_KIB), "xsd:unsignedInt"),
                                             ("VCPUs", "1", "xsd:unsignedInt")])
        sh.say("NBI: template %d (%s, %d KiB)" % (t, img, GUEST_MEMORY_KIB))
    tref = "%sTemplate.%d" % (nbi.VIRT, t)
    by_sub = {r.get("Subscriber"): n for n, r in instances.items()}
    for k in range(1, homes + 1):
        sub = "home-%d" % k
        if sub in by_sub or sub in elsewhere:
            continue
        sh.progress("NBI: provisioning subscriber", k, homes, "%s on S-VLAN %d / C-VLAN %d" % (sub, SVLAN, cvlan(k)))
        by_sub[sub] = api.add(nbi.VIRT + "Instance.", [("Template", tref), ("Subscriber", sub),
                                                        ("SVLAN", str(SVLAN), "xsd:unsignedInt"),
                                                        ("CVLAN", str(cvlan(k)), "xsd:unsignedInt")])
    # Each subscriber's account on the customer web form (password kept in run/, mode 0600).
    for k in range(1, homes + 1):
        sub = "home-%d" % k
        s, v = api.call("PUT", "/subscribers/" + sub, {"password": portal_password(k)})
        if s not in (200, 201):
            raise sh.Failed("NBI: web-form account for %s: HTTP %s %s" % (sub, s, v))
    p = next((n for n, r in pools.items() if r.get("Template", "").rstrip(".") == tref), None)
    if p is None:
        p = api.add(nbi.VIRT + "Pool.", [("Template", tref), ("Enable", "true", "xsd:boolean"),
                                         ("TargetSize", str(pool_size), "xsd:unsignedInt")])
        sh.say("NBI: pool %d of %d suspended vRGWs (fills in the background)" % (p, pool_size))
    elif resize and pools[p].get("TargetSize") != str(pool_size):
        api.set([("%sPool.%d.TargetSize" % (nbi.VIRT, p), str(pool_size), "xsd:unsignedInt")])
    return {k: by_sub.get("home-%d" % k) for k in range(1, homes + 1)}


def portal_password(home):
    return secret("portal-home-%d" % home, 9)


# ---------------------------------------------------------------- the whole thing


def load_homes():
    try:
        return {int(k): v for k, v in json.loads(sh.read(HOMES_FILE)).items()}
    except (OSError, ValueError):
        return {}


def save_homes(h):
    os.makedirs(sh.STATE, exist_ok=True)
    with open(HOMES_FILE, "w") as f:
        json.dump(h, f, indent=1)


def up(homes=3, pool=2, lease_timeout=240, uplink=None, hosts=1):
    """Everything, in order; with a real trunk NIC (`uplink`), no emulated access node or homes:
    the subscribers are provisioned and real homes behind the real access node lease. With
    `hosts` > 1, more virtualization hosts (each a libvirtd and an agent of its own, a trunk to
    the same access node) with the same template and a pool each; the homes start on host 1."""
    sh.need_root()
    if not 1 <= hosts <= MAX_HOSTS:
        raise sh.Failed("--hosts is 1 to %d" % MAX_HOSTS)
    if uplink and hosts > 1:
        raise sh.Failed("--uplink takes one host: the other hosts' trunks would need NICs of their own")
    hosts = max(hosts, hosts_up() if os.path.exists(HOSTS_FILE) else 1)
    os.makedirs(sh.STATE, exist_ok=True)
    sh.write(HOSTS_FILE, "%d\n" % hosts)
    t0 = time.monotonic()
    sh.say("step 1/6: Debian packages")
    install()
    sh.say("step 2/6: services (Open vSwitch, libvirt)")
    start_services(hosts)
    sh.say("step 3/6: guest image")
    img = image.build()
    sh.say("step 4/6: network")
    network_up(uplink, hosts)
    sh.say("step 5/6: ACS and hypervisor agent" + ("s" if hosts > 1 else ""))
    api = stack_up(uplink, hosts)
    sh.say("step 6/6: subscribers through the NBI, homes, leases")
    moved = {sub: (i, n) for sub, (i, n, _) in where(api).items() if i != 1}
    instances = provision(api, img, homes, pool, moved)
    for sub, (i, n) in moved.items():
        if sub.startswith("home-") and sub[5:].isdigit():
            instances[int(sub[5:])] = n
    for i in range(2, hosts + 1):
        # Their pools keep the size they were given (a re-run for host 1's pool leaves them).
        provision(agent_up(i), img, 0, pool, resize=False)
    known = load_homes()
    for k in range(1, homes + 1):
        if not uplink:
            home_up(k)
        known[k] = {"instance": instances[k], "svlan": SVLAN, "cvlan": cvlan(k),
                    "netns": "-" if uplink else home_ns(k)}
    save_homes(known)
    for i in range(1, hosts + 1):
        if not uplink and ovs("--if-exists", "get", "interface", uplink_of(i), "name").strip():
            # The agent added the trunk's host end to its bridge; Open vSwitch sizes its buffers by
            # the interface's MTU.
            ovs("set", "interface", uplink_of(i), "mtu_request=%d" % TRUNK_MTU)
    if uplink:
        sh.say("subscribers home-1..home-%d are on S-VLAN %d, C-VLANs %d..%d of %s; their homes lease from "
               "the real access network" % (homes, SVLAN, cvlan(1), cvlan(homes), uplink))
        return api
    pending = list(range(1, homes + 1))
    end = time.monotonic() + lease_timeout
    done = 0
    while pending and time.monotonic() < end:
        k = pending.pop(0)
        lease = dhcp(k, timeout=15)
        if lease:
            done += 1
            sh.progress("leases", done, homes, "home %d got %s from its vRGW" % (k, lease["ip"]))
        else:
            pending.append(k)
    if pending:
        raise sh.Failed("no DHCP lease for home(s) %s within %d s; see %s/agent.log and the vRGW consoles in "
                        "%s/consoles/" % (", ".join(map(str, pending)), lease_timeout, RUN, RUN))
    sh.say("up in %.0f s" % (time.monotonic() - t0))
    return api


def api_from_files(i=1):
    token = sh.read(os.path.join(RUN, "nbi-token")).strip()
    return nbi.Nbi("http://127.0.0.1:%d" % NBI_PORT, token, device(i))


def where(api=None):
    """Each subscriber's vRGW as the hosts report it: {subscriber: (host index, instance, row)}."""
    out = {}
    if api is None:
        return out
    for i in range(1, hosts_up() + 1):
        a = nbi.Nbi(api.base, api.token, device(i))
        try:
            v = a.get([nbi.VIRT + "Instance."], timeout_ms=15000)
        except (sh.Failed, OSError) as e:
            sh.say("the ACS could not reach the agent of %s: %s" % (host(i), e))
            continue
        for n, r in nbi.rows(v, nbi.VIRT + "Instance.").items():
            if r.get("Subscriber") and r.get("Status") != "Migrated":
                out[r["Subscriber"]] = (i, n, r)
    return out


def domains_of(i):
    domains = {}
    for line in sh.run(["virsh", "-c", host_uri(i), "list", "--all"], check=False).splitlines()[2:]:
        f = line.split()
        if len(f) >= 3:
            domains[f[1]] = " ".join(f[2:])
    return domains


def status_rows(api=None):
    """One row per home: home, netns, host, instance, S/C VLAN, lease, vRGW state, management."""
    homes = load_homes()
    live = where(api)
    domains = {}
    for i in range(1, hosts_up() + 1):
        domains.update(domains_of(i))
    out = []
    for k, h in sorted(homes.items()):
        i, n, r = live.get("home-%d" % k, (0, h["instance"], {}))
        lease = read_lease(k)
        out.append({
            "home": k, "netns": h["netns"], "host": host(i) if i else "?", "instance": n,
            "svlan": h["svlan"], "cvlan": h["cvlan"],
            "lease": lease["ip"] if lease else "-",
            "status": r.get("Status", "?"), "mgmt": r.get("ManagementAddress", "-"),
        })
    return out, domains


def print_status(api=None):
    rows, domains = status_rows(api)
    fmt = "%-5s %-10s %-6s %-8s %-11s %-16s %-10s %s"
    print(fmt % ("home", "netns", "host", "instance", "S/C VLAN", "lease", "vRGW", "management"))
    for r in rows:
        print(fmt % (r["home"], r["netns"], r["host"], r["instance"], "%d/%d" % (r["svlan"], r["cvlan"]), r["lease"],
                     r["status"], r["mgmt"]))
    for i in range(1, hosts_up() + 1):
        mine = {d: st for d, st in domains_of(i).items()}
        print("domains on %s (%s): %s" % (host(i), host_uri(i),
                                          ", ".join("%s (%s)" % (d, mine[d]) for d in sorted(mine)) or "none"))
    print("NBI:  http://127.0.0.1:%d  (token in %s)" % (NBI_PORT, os.path.join(RUN, "nbi-token")))
    for i in range(1, hosts_up() + 1):
        print("CWMP: http://127.0.0.1:%d  (hypervisor agent %s, device %s)" % (CWMP_PORT, host(i), device(i)))
    print("web:  http://127.0.0.1:%d  (customer web form: log in as home-K with the password in %s/portal-home-K)" % (
        PORTAL_PORT, RUN))
    print("logs: %s/{acs,agent*,libvirt-*}.log, vRGW consoles in %s/consoles/" % (RUN, RUN))


def kill(pidfile, name):
    pid = pid_alive(pidfile)
    if pid:
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            if not pid_alive(pidfile):
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
        sh.say("stopped %s (pid %d)" % (name, pid))
    try:
        os.unlink(pidfile)
    except FileNotFoundError:
        pass


def down(purge=False):
    """Removes everything the testbed made. Safe to run any time, also after a failed up."""
    sh.need_root()
    for name in [agent_name(i) for i in range(1, MAX_HOSTS + 1)] + ["acs", "inet-dnsmasq"]:
        kill(os.path.join(RUN, name + ".pid"), name)
    # Homes' DHCP clients and anything else left in the testbed's namespaces.
    namespaces = [n for n in sh.run(["ip", "netns", "list"], check=False).split() if n.startswith("tb-")]
    for ns in namespaces:
        for pid in sh.run(["ip", "netns", "pids", ns], check=False).split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass
    for i in range(1, MAX_HOSTS + 1):
        libvirt_down(i)
    shutil.rmtree(os.path.join(sh.STATE, "hosts"), ignore_errors=True)
    for ns in namespaces:
        sh.run(["ip", "netns", "del", ns], check=False)
    if namespaces:
        sh.say("removed namespaces " + " ".join(namespaces))
    if shutil.which("ovs-vsctl") and sh.ok(["ovs-vsctl", "--timeout=5", "show"]):
        bridges = [b for b in ovs("list-br").split() if b.startswith(("tb-",) + tuple(host(i) + "-" for i in range(1, MAX_HOSTS + 1)))]
        for b in bridges:
            ovs("--if-exists", "del-br", b)
        if bridges:
            sh.say("removed Open vSwitch bridges " + " ".join(bridges))
    links = []
    for line in sh.run(["ip", "-o", "link", "show"], check=False).splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name.startswith(("tb-",) + tuple(host(i) for i in range(1, MAX_HOSTS + 1))):
            links.append(name)
    for name in links:
        sh.run(["ip", "link", "del", name], check=False)
    if links:
        sh.say("removed interfaces " + " ".join(links))
    # The logs of the last runs stay (the three latest, in last-logs/TIME/).
    last = os.path.join(sh.STATE, "last-logs", time.strftime("%Y%m%d-%H%M%S"))
    if os.path.isdir(RUN) and any(f.endswith(".log") for f in os.listdir(RUN)):
        kept = sorted(os.listdir(os.path.dirname(last))) if os.path.isdir(os.path.dirname(last)) else []
        for old in kept[:-2]:
            shutil.rmtree(os.path.join(os.path.dirname(last), old), ignore_errors=True)
        os.makedirs(last, exist_ok=True)
        for f in os.listdir(RUN):
            if f.endswith(".log"):
                shutil.copy2(os.path.join(RUN, f), last)
        if os.path.isdir(os.path.join(RUN, "consoles")):
            shutil.copytree(os.path.join(RUN, "consoles"), os.path.join(last, "consoles"), dirs_exist_ok=True)
        sh.say("kept the logs of this run in " + last)
    for d in ("run", "homes", "overlays", "images"):
        shutil.rmtree(os.path.join(sh.STATE, d), ignore_errors=True)
    try:
        os.unlink(HOMES_FILE)
    except FileNotFoundError:
        pass
    try:
        os.unlink(HOSTS_FILE)
    except FileNotFoundError:
        pass
    if purge:
        shutil.rmtree(sh.STATE, ignore_errors=True)
        sh.say("removed %s (downloaded packages too)" % sh.STATE)
    else:
        sh.say("kept the downloaded Debian packages in %s/cache (testbed/down --purge removes them)" % sh.STATE)
