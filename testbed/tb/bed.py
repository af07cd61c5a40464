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
MGMT_BRIDGE = HOST + "-mgmt"
MGMT_HOST_ADDR = "10.99.0.1/16"
MGMT_NETWORK = "10.99.0.0/16"
WAN_BRIDGE = "tb-wan"
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
LIBVIRT = "qemu:///system"

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


def start_services():
    """Open vSwitch, virtlogd and libvirtd, started here when no service manager runs them."""
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
    if not sh.ok(["virsh", "-c", LIBVIRT, "version"], timeout=15):
        if not sh.ok(["pgrep", "-x", "virtlogd"]):
            sh.run(["virtlogd", "-d"])
        if not sh.ok(["pgrep", "-x", "libvirtd"]):
            sh.run(["libvirtd", "-d"])
        sh.say("started virtlogd and libvirtd")
        sh.wait_for("libvirtd answering on " + LIBVIRT,
                    lambda: sh.ok(["virsh", "-c", LIBVIRT, "version"], timeout=10), 60, 0.5)


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


def network_up(uplink=None):
    """The host's bridges and the internet namespace; with no real `uplink`, also the emulated
    access node and the trunk to it."""
    sh.say("network: management and WAN bridges, internet namespace" +
           (", trunk on %s" % uplink if uplink else ", access node, trunk"))
    linux_bridge(MGMT_BRIDGE, MGMT_HOST_ADDR)
    linux_bridge(WAN_BRIDGE)
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
    # The trunk from the host to the access node.
    veth(UPLINK, AN_TRUNK)
    for d in (UPLINK, AN_TRUNK):
        no_offload(d)
        # A full 1500-byte packet with two VLAN tags is a 1522-byte frame; the kernel lets one
        # tag over the MTU, not two, so full-size TCP segments would vanish on the trunk.
        sh.run(["ip", "link", "set", d, "mtu", str(TRUNK_MTU), "up"])
    # The access node: trunk side and the S-VLAN's subscriber side.
    ovs_bridge(AN)
    ovs_bridge(an_bridge())
    ovs("--may-exist", "add-port", AN, AN_TRUNK, "--", "set", "port", AN_TRUNK, "trunks=%d" % SVLAN,
        "--", "set", "interface", AN_TRUNK, "mtu_request=%d" % TRUNK_MTU)
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
        return pid
    except (OSError, ValueError):
        return None


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


def stack_up(uplink=None):
    acs_bin, agent_bin = binaries()
    token = secret("nbi-token")
    cpe = secret("cpe-secret", 12)
    cr = secret("cr-secret", 12)
    if not pid_alive(os.path.join(RUN, "acs.pid")):
        for port in (CWMP_PORT, NBI_PORT, PORTAL_PORT):
            if not port_free(port):
                raise sh.Failed("port %d on 127.0.0.1 is taken by another program (scripts/run?); stop it and "
                                "run testbed/up again" % port)
    if daemon("acs", [acs_bin, "--db", os.path.join(RUN, "acs.db"), "--cwmp-listen", "127.0.0.1:%d" % CWMP_PORT,
                      "--nbi-listen", "127.0.0.1:%d" % NBI_PORT, "--nbi-token", token,
                      "--cpe-credentials", "%s:%s" % (HOST, cpe), "--cr-credentials", "acs:" + cr,
                      "--portal-listen", "127.0.0.1:%d" % PORTAL_PORT],
              "listening cwmp="):
        sh.say("ACS started (CWMP 127.0.0.1:%d, NBI 127.0.0.1:%d, web form 127.0.0.1:%d)" % (
            CWMP_PORT, NBI_PORT, PORTAL_PORT))
    conf = os.path.join(RUN, "agent.toml")
    with open(conf, "w") as f:
        f.write("\n".join([
            'acs_url = "http://127.0.0.1:%d/"' % CWMP_PORT,
            'acs_username = "%s"' % HOST,
            'acs_password = "%s"' % cpe,
            'cr_listen = "127.0.0.1:%d"' % CR_PORT,
            'cr_username = "acs"',
            'cr_password = "%s"' % cr,
            'db = "%s"' % os.path.join(RUN, "agent.db"),
            'agent_id = "%s"' % HOST,
            'libvirt = "%s"' % LIBVIRT,
            'domain_type = "%s"' % ("kvm" if kvm_usable() else "qemu"),
            'vlan_backend = "ovs"',
            'ovs_prefix = "%s"' % HOST,
            'port_prefix = "%s"' % HOST,
            'trunk_uplink = "%s"' % (uplink or UPLINK),
            'mgmt_bridge = "%s"' % MGMT_BRIDGE,
            'mgmt_network = "%s"' % MGMT_NETWORK,
            'wan_bridge = "%s"' % WAN_BRIDGE,
            'overlay_dir = "%s"' % os.path.join(sh.STATE, "overlays"),
            'download_dir = "%s"' % os.path.join(RUN, "downloads"),
            'periodic_inform_interval = 60',
        ]) + "\n")
    if daemon("agent", [agent_bin, "--config", conf], "listening cr="):
        sh.say("hypervisor agent %s started (libvirt %s)" % (HOST, LIBVIRT))
    api = nbi.Nbi("http://127.0.0.1:%d" % NBI_PORT, token, DEVICE)
    nbi.wait_device(api)
    return api


# ---------------------------------------------------------------- provisioning through the NBI


def inventory(api):
    v = api.get([nbi.VIRT])
    return (nbi.rows(v, nbi.VIRT + "Template."), nbi.rows(v, nbi.VIRT + "Pool."),
            nbi.rows(v, nbi.VIRT + "Instance."))


def provision(api, img, homes, pool_size):
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
        if sub in by_sub:
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
    elif pools[p].get("TargetSize") != str(pool_size):
        api.set([("%sPool.%d.TargetSize" % (nbi.VIRT, p), str(pool_size), "xsd:unsignedInt")])
    return {k: by_sub["home-%d" % k] for k in range(1, homes + 1)}


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


def up(homes=3, pool=2, lease_timeout=240, uplink=None):
    """Everything, in order; with a real trunk NIC (`uplink`), no emulated access node or homes:
    the subscribers are provisioned and real homes behind the real access node lease."""
    sh.need_root()
    t0 = time.monotonic()
    sh.say("step 1/6: Debian packages")
    install()
    sh.say("step 2/6: services (Open vSwitch, libvirt)")
    start_services()
    sh.say("step 3/6: guest image")
    img = image.build()
    sh.say("step 4/6: network")
    network_up(uplink)
    sh.say("step 5/6: ACS and hypervisor agent")
    api = stack_up(uplink)
    sh.say("step 6/6: subscribers through the NBI, homes, leases")
    instances = provision(api, img, homes, pool)
    known = load_homes()
    for k in range(1, homes + 1):
        if not uplink:
            home_up(k)
        known[k] = {"instance": instances[k], "svlan": SVLAN, "cvlan": cvlan(k),
                    "netns": "-" if uplink else home_ns(k)}
    save_homes(known)
    if not uplink and ovs("--if-exists", "get", "interface", UPLINK, "name").strip():
        # The agent added the trunk's host end to its bridge; Open vSwitch sizes its buffers by
        # the interface's MTU.
        ovs("set", "interface", UPLINK, "mtu_request=%d" % TRUNK_MTU)
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
                        "/var/log/libvirt/qemu/%s-*.console.log" % (", ".join(map(str, pending)), lease_timeout,
                                                                    RUN, HOST))
    sh.say("up in %.0f s" % (time.monotonic() - t0))
    return api


def api_from_files():
    token = sh.read(os.path.join(RUN, "nbi-token")).strip()
    return nbi.Nbi("http://127.0.0.1:%d" % NBI_PORT, token, DEVICE)


def status_rows(api=None):
    """One row per home: home, netns, instance, domain, S/C VLAN, lease, vRGW state."""
    homes = load_homes()
    live = {}
    if api is not None:
        try:
            v = api.get([nbi.VIRT + "Instance."], timeout_ms=15000)
            live = nbi.rows(v, nbi.VIRT + "Instance.")
        except (sh.Failed, OSError) as e:
            sh.say("the ACS could not reach the agent: %s" % e)
    domains = {}
    for line in sh.run(["virsh", "-c", LIBVIRT, "list", "--all"], check=False).splitlines()[2:]:
        f = line.split()
        if len(f) >= 3:
            domains[f[1]] = " ".join(f[2:])
    out = []
    for k, h in sorted(homes.items()):
        r = live.get(h["instance"], {})
        lease = read_lease(k)
        out.append({
            "home": k, "netns": h["netns"], "instance": h["instance"],
            "svlan": h["svlan"], "cvlan": h["cvlan"],
            "lease": lease["ip"] if lease else "-",
            "status": r.get("Status", "?"), "mgmt": r.get("ManagementAddress", "-"),
        })
    return out, domains


def print_status(api=None):
    rows, domains = status_rows(api)
    fmt = "%-5s %-10s %-8s %-11s %-16s %-10s %s"
    print(fmt % ("home", "netns", "instance", "S/C VLAN", "lease", "vRGW", "management"))
    for r in rows:
        print(fmt % (r["home"], r["netns"], r["instance"], "%d/%d" % (r["svlan"], r["cvlan"]), r["lease"], r["status"],
                     r["mgmt"]))
    pooled = [d for d in domains if d.startswith(HOST + "-")]
    print("domains of %s: %s" % (HOST, ", ".join("%s (%s)" % (d, domains[d]) for d in sorted(pooled)) or "none"))
    print("NBI:  http://127.0.0.1:%d  (token in %s)" % (NBI_PORT, os.path.join(RUN, "nbi-token")))
    print("CWMP: http://127.0.0.1:%d  (hypervisor agent %s, device %s)" % (CWMP_PORT, HOST, DEVICE))
    print("web:  http://127.0.0.1:%d  (customer web form: log in as home-K with the password in %s/portal-home-K)" % (
        PORTAL_PORT, RUN))
    print("logs: %s/{acs,agent}.log, /var/log/libvirt/qemu/%s-*.console.log" % (RUN, HOST))


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
    for name in ("agent", "acs", "inet-dnsmasq"):
        kill(os.path.join(RUN, name + ".pid"), name)
    # Homes' DHCP clients and anything else left in the testbed's namespaces.
    namespaces = [n for n in sh.run(["ip", "netns", "list"], check=False).split() if n.startswith("tb-")]
    for ns in namespaces:
        for pid in sh.run(["ip", "netns", "pids", ns], check=False).split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass
    if shutil.which("virsh") and sh.ok(["virsh", "-c", LIBVIRT, "version"], timeout=10):
        names = sh.run(["virsh", "-c", LIBVIRT, "list", "--all", "--name"], check=False).split()
        mine = [n for n in names if n.startswith(HOST + "-")]
        for n in mine:
            sh.run(["virsh", "-c", LIBVIRT, "destroy", n], check=False)
            sh.run(["virsh", "-c", LIBVIRT, "undefine", n, "--nvram"], check=False)
        if mine:
            sh.say("removed %d domains" % len(mine))
    for ns in namespaces:
        sh.run(["ip", "netns", "del", ns], check=False)
    if namespaces:
        sh.say("removed namespaces " + " ".join(namespaces))
    if shutil.which("ovs-vsctl") and sh.ok(["ovs-vsctl", "--timeout=5", "show"]):
        bridges = [b for b in ovs("list-br").split() if b.startswith(("tb-", HOST + "-"))]
        for b in bridges:
            ovs("--if-exists", "del-br", b)
        if bridges:
            sh.say("removed Open vSwitch bridges " + " ".join(bridges))
    links = []
    for line in sh.run(["ip", "-o", "link", "show"], check=False).splitlines():
        name = line.split(":")[1].strip().split("@")[0] if ":" in line else ""
        if name.startswith(("tb-", HOST)):
            links.append(name)
    for name in links:
        sh.run(["ip", "link", "del", name], check=False)
    if links:
        sh.say("removed interfaces " + " ".join(links))
    for d in ("run", "homes", "overlays", "images"):
        shutil.rmtree(os.path.join(sh.STATE, d), ignore_errors=True)
    try:
        os.unlink(HOMES_FILE)
    except FileNotFoundError:
        pass
    logs = [f for f in os.listdir("/var/log/libvirt/qemu")] if os.path.isdir("/var/log/libvirt/qemu") else []
    for f in logs:
        if f.startswith(HOST + "-"):
            os.unlink(os.path.join("/var/log/libvirt/qemu", f))
    if purge:
        shutil.rmtree(sh.STATE, ignore_errors=True)
        sh.say("removed %s (downloaded packages too)" % sh.STATE)
    else:
        sh.say("kept the downloaded Debian packages in %s/cache (testbed/down --purge removes them)" % sh.STATE)
