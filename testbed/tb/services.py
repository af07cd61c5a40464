"""The machine's services the testbed runs on: its Debian packages, Open vSwitch, and each host's
libvirtd and virtlogd (in a mount namespace of their own, started and stopped here); the machine's
own libvirtd for the guest image's boot test."""

import os
import shutil
import signal
import subprocess

from . import daemons, pki, plumbing, sh
from .naming import OVERLAYS, RUN, host, host_addr, host_dir, host_uri, lxc_uri


PACKAGES = [
    ("ovs-vsctl", "openvswitch-switch"), ("virsh", "libvirt-clients"), ("libvirtd", "libvirt-daemon-system"),
    ("/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so", "libvirt-daemon-driver-qemu"),
    # Container vRGWs (--flavor container|mixed): libvirt's LXC driver in the same libvirtd.
    ("/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_lxc.so", "libvirt-daemon-driver-lxc"),
    ("qemu-system-x86_64", "qemu-system-x86"), ("busybox", "busybox"), ("dnsmasq", "dnsmasq-base"),
    ("nft", "nftables"), ("ip", "iproute2"), ("ethtool", "ethtool"), ("iperf3", "iperf3"), ("tcpdump", "tcpdump"), ("chromium", "chromium"),
    ("pkg-config", "pkg-config"), ("/usr/include/libvirt/libvirt.h", "libvirt-dev"), ("readelf", "binutils"),
    ("python3", "python3"), ("openssl", "openssl"),
]


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
    # Limits a host of many container vRGWs outgrows (the agent warns at its start below what it
    # wants; docs/containers.md): each one's dnsmasq takes an inotify instance of root's, and
    # Debian's default of 128 stops the 120-odd-th; a broadcast on the management bridge is queued
    # once per port on one CPU's backlog (default 1,000: at a thousand vRGWs the last ports miss
    # the host's ARP requests); the host keeps an ARP entry per vRGW it calls (default at most
    # 1,024).
    for name, value, why in [
            ("fs.inotify.max_user_instances", 8192, "container vRGWs' dnsmasq take one each"),
            ("net.core.netdev_max_backlog", 16384, "a broadcast is queued once per bridge port"),
            ("net.ipv4.neigh.default.gc_thresh1", 4096, "an ARP entry per vRGW the host calls"),
            ("net.ipv4.neigh.default.gc_thresh2", 8192, "an ARP entry per vRGW the host calls"),
            ("net.ipv4.neigh.default.gc_thresh3", 16384, "an ARP entry per vRGW the host calls")]:
        path = "/proc/sys/" + name.replace(".", "/")
        if int(sh.read(path).strip()) < value:
            sh.run(["sysctl", "-q", "-w", "%s=%d" % (name, value)])
            sh.say("%s = %d (%s)" % (name, value, why))
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
        plumbing.dc_network(hosts)
    for i in range(1, hosts + 1):
        libvirt_up(i)


def system_libvirtd():
    """The machine's own libvirtd (qemu:///system), for the image's boot test only."""
    if not sh.ok(["virsh", "-c", "qemu:///system", "version"], timeout=15):
        if not sh.ok(["pgrep", "-x", "virtlogd"]):
            sh.run(["virtlogd", "-d"])
        if not sh.ok(["pgrep", "-x", "libvirtd"]):
            sh.run(["libvirtd", "-d"])
        sh.wait_for("libvirtd answering on qemu:///system",
                    lambda: sh.ok(["virsh", "-c", "qemu:///system", "version"], timeout=10), 60, 0.5)


def shared_overlays():
    """The folder of the hosts' container layers as a shared mount: the overlay an agent mounts
    there for a container's root propagates into its libvirtd's mount namespace (a slave of it),
    where the LXC driver binds it into the container. (On a host with systemd, where / is shared
    and the agent and libvirtd see the same mounts, nothing like this is needed.)"""
    os.makedirs(OVERLAYS, exist_ok=True)
    if not is_mount_point(OVERLAYS):
        sh.run(["mount", "--bind", OVERLAYS, OVERLAYS])
    sh.run(["mount", "--make-shared", OVERLAYS])


def is_mount_point(path):
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def unmount_overlays():
    """Every mount under the hosts' layers folder (containers' roots), deepest first, then the
    folder's own."""
    with open("/proc/self/mountinfo") as f:
        points = [l.split()[4] for l in f if l.split()[4] == OVERLAYS or l.split()[4].startswith(OVERLAYS + "/")]
    for p in sorted(set(points), key=len, reverse=True):
        sh.run(["umount", "-l", p], check=False)
    if points:
        sh.say("unmounted %d container roots and the layers folder" % (len(set(points)) - 1))
    # The process limits' cgroups the agents made for their containers (empty once they stopped).
    pids = "/sys/fs/cgroup/pids/vrgw"
    for d in os.listdir(pids) if os.path.isdir(pids) else []:
        if d.startswith("tbh"):
            try:
                os.rmdir(os.path.join(pids, d))
            except OSError:
                pass


def libvirt_up(i):
    """Host i's own libvirtd and virtlogd: a mount namespace in which libvirt's configuration,
    state, cache, log and run folders are private (the design brief's recipe), listening for
    peers on the host's address (TCP without authentication: the testbed's loopback-only data
    center; production hosts use TLS or SASL). All hosts share the network namespace: Open
    vSwitch's userspace datapath, one daemon, opens the taps there."""
    uri, addr = host_uri(i), host_addr(i)
    pidfile = os.path.join(RUN, "libvirt-%s.pid" % host(i))
    if daemons.pid_alive(pidfile) and sh.ok(["virsh", "-c", uri, "version"], timeout=10):
        return
    pki.ensure(i)
    d = host_dir(i)
    for sub in ("etc", "lib", "cache", "log", "ovs"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    etc = os.path.join(d, "etc")
    if not os.path.exists(os.path.join(etc, "qemu.conf")):
        sh.run(["cp", "-a", "/etc/libvirt/.", etc])
        shutil.rmtree(os.path.join(etc, "qemu", "networks", "autostart"), ignore_errors=True)
        with open(os.path.join(etc, "qemu.conf"), "a") as f:
            # Two daemons, the same image files: no ownership changes on them.
            f.write('\n# vRGW testbed host %s\nmigration_address = "%s"\nmigration_port_min = %d\n'
                    'migration_port_max = %d\ndynamic_ownership = 0\nremember_owner = 0\n'
                    % (host(i), addr, 49152 + 32 * (i - 1), 49152 + 32 * i - 1))
            # A migration asked for with VIR_MIGRATE_TLS runs QEMU's stream over TLS with the
            # testbed's certificates, the source's client certificate checked.
            f.write('migrate_tls_x509_cert_dir = "%s"\nmigrate_tls_x509_verify = 1\n' % pki.qemu_pki(i))
    sh.write(os.path.join(etc, "libvirtd.conf"), pki.libvirtd_conf(i))
    shared_overlays()
    # In the namespace: mounts private but the layers folder (a slave of the host's, see
    # shared_overlays); the cgroup v2 mount of the hybrid layout out of sight, which libvirt's LXC
    # driver cannot use ("Unable to create directory /sys/fs/cgroup/unified"; design brief §4).
    script = (
        "mount --make-rslave / && "
        "{{ ! mountpoint -q /sys/fs/cgroup/unified || umount -l /sys/fs/cgroup/unified; }} && "
        "mount --bind /run/openvswitch {d}/ovs && mount -t tmpfs tmpfs /run && "
        "mkdir -p /run/openvswitch /run/libvirt && mount --bind {d}/ovs /run/openvswitch && "
        "mount --bind {d}/etc /etc/libvirt && mount --bind {d}/lib /var/lib/libvirt && "
        "mount --bind {d}/cache /var/cache/libvirt && mount --bind {d}/log /var/log/libvirt && "
        "virtlogd -d && libvirtd -d --listen && exec sleep infinity").format(d=d)
    os.makedirs(RUN, mode=0o700, exist_ok=True)
    os.chmod(RUN, 0o700)  # it holds secrets (tokens, configuration files, databases)
    with open(os.path.join(RUN, "libvirt-%s.log" % host(i)), "a") as log:
        p = subprocess.Popen(["unshare", "-m", "--propagation", "unchanged", "sh", "-c", script], stdout=log,
                             stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    sh.write(pidfile, "%d\n" % p.pid)
    sh.wait_for("libvirtd of %s answering on %s" % (host(i), uri),
                lambda: p.poll() is None and sh.ok(["virsh", "-c", uri, "version"], timeout=10), 60, 0.5)
    sh.say("host %s: libvirtd on %s (own mount namespace, state in %s)" % (host(i), uri, d))


def lxc_controllers_gone(i):
    """Host i's containers' controllers (`libvirt_lxc --name HOST-…`, in mount namespaces of their
    own) exit a moment after `virsh destroy` returns: waited for, and killed after 10 s."""
    def mine():
        out = sh.run(["pgrep", "-f", "libvirt_lxc --name %s-" % host(i)], check=False).split()
        return [int(p) for p in out if p.isdigit() and daemons.pid_state(int(p)) not in (None, "Z")]
    try:
        sh.wait_for("the containers of %s stopping" % host(i), lambda: not mine(), 10, 0.2)
    except sh.Failed:
        for p in mine():
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        sh.say("host %s: killed container controllers that outlived their containers" % host(i))


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
    pid = daemons.pid_alive(pidfile)
    if not pid:
        return
    for uri in (host_uri(i), lxc_uri(i)):
        if sh.ok(["virsh", "-c", uri, "version"], timeout=10):
            names = sh.run(["virsh", "-c", uri, "list", "--all", "--name"], check=False).split()
            nvram = " --nvram" if uri.startswith("qemu") else ""
            # A container is frozen first: libvirt kills a frozen one's processes at once, a
            # running one's 1.6 s after asking them to end (its init takes 2 s to).
            freeze = "" if uri.startswith("qemu") else "suspend %s; "
            # One virsh (one TLS connection) per hundred domains: a thousand containers go in
            # seconds, not in a thousand handshakes.
            for k in range(0, len(names), 100):
                cmds = "; ".join((freeze % n if freeze else "") + "destroy %s; undefine %s%s" % (n, n, nvram)
                                 for n in names[k:k + 100])
                sh.run(["virsh", "-c", uri, cmds], check=False, timeout=600)
            if names:
                sh.say("host %s: removed %d %s" % (host(i), len(names),
                                                   "domains" if uri.startswith("qemu") else "containers"))
    for p in mount_ns_pids(pid) + [pid]:
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    lxc_controllers_gone(i)
    os.unlink(pidfile)
    sh.say("host %s: stopped its libvirtd" % host(i))
