"""Processes started detached and tracked by their pid files in run/ (alive, start, stop), and the
ones that are ours: the ACS and each host's hypervisor agent (built, configured, started), their
secrets, and the NBI handle of a running testbed."""

import os
import secrets
import signal
import socket
import subprocess
import time

from . import nbi, sh
from .naming import (
    CR_PORT, CWMP_PORT, MAX_HOSTS, MGMT_BRIDGE, NBI_PORT, OVERLAYS, PORTAL_PORT, RUN, WAN_BRIDGE, agent_name, device, host,
    host_uri, lxc_uri, mgmt_network, uplink_of)


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


def pid_state(pid):
    """A process's state letter (R, S, Z...), or None when there is no such process."""
    try:
        return sh.read("/proc/%d/stat" % pid).rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


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
    write_private(path, v + "\n")
    return v


def write_private(path, text):
    """Writes `text` to `path`, readable and writable by its owner only (mode 0600 whatever the
    umask, also when the file existed with a wider mode)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def kvm_usable():
    return os.environ.get("VRGW_TESTBED_KVM") == "1"


def stack_up(uplink_if=None, hosts=1):
    acs_bin, agent_bin = binaries()
    token = secret("nbi-token")
    if not pid_alive(os.path.join(RUN, "acs.pid")):
        for port in (CWMP_PORT, NBI_PORT, PORTAL_PORT):
            if not port_free(port):
                raise sh.Failed("port %d on 127.0.0.1 is taken by another program (scripts/run?); stop it and "
                                "run testbed/up again" % port)
    # Secrets go in a 0600 configuration file, never on a command line; each host's credential may
    # inform only as that host's DeviceId and as the virtual devices (vRGWs of subscribers the ACS
    # placed on it) it proxies.
    conf = ['[nbi]', 'tokens = ["%s"]' % token]
    for i in range(1, MAX_HOSTS + 1):
        conf += ['[[cwmp.cpe_credentials]]', 'username = "%s"' % host(i),
                 'password = "%s"' % secret("cpe-secret" if i == 1 else "cpe-secret-" + host(i), 12),
                 'device = "%s"' % device(i), 'proxies = "00A0B1-vRGW-"']
    # The hosts and the libvirt URIs their peers migrate through: the ACS hands a host only these.
    for i in range(1, MAX_HOSTS + 1):
        conf += ['[[hosts]]', 'device = "%s"' % device(i), 'migration_uri = "%s"' % host_uri(i)]
    acs_conf = os.path.join(RUN, "acs.toml")
    write_private(acs_conf, "\n".join(conf) + "\n")
    if daemon("acs", [acs_bin, "--config", acs_conf, "--db", os.path.join(RUN, "acs.db"),
                      "--cwmp-listen", "127.0.0.1:%d" % CWMP_PORT, "--nbi-listen", "127.0.0.1:%d" % NBI_PORT,
                      "--portal-listen", "127.0.0.1:%d" % PORTAL_PORT],
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
    write_private(conf, "\n".join([
        'acs_url = "http://127.0.0.1:%d/"' % CWMP_PORT,
        'acs_username = "%s"' % host(i),
        'acs_password = "%s"' % secret("cpe-secret" if i == 1 else "cpe-secret-" + host(i), 12),
        'cr_listen = "127.0.0.1:%d"' % (CR_PORT + i - 1),
        'cr_username = "acs"',
        'cr_password = "%s"' % secret("cr-secret", 12),
        'db = "%s"' % os.path.join(RUN, name + ".db"),
        'agent_id = "%s"' % host(i),
        'libvirt = "%s"' % host_uri(i),
        # Container vRGWs on the same libvirtd's LXC driver.
        'lxc = "%s"' % lxc_uri(i),
        'migration_uri = "%s"' % host_uri(i),
        # QEMU runs as libvirt-qemu and libvirt does not chown (dynamic_ownership = 0): the
        # fw_cfg file that carries each vRGW's proxy secret is given to that user (still 0600).
        'secret_file_owner = "libvirt-qemu"',
        # Under the testbed's state directory, so that testbed/down removes them with the rest.
        'secret_dir = "%s"' % os.path.join(sh.STATE, "secrets", host(i)),
        # The peers this host's libvirt may be sent to: the testbed's other hosts, no one else.
        'migration_peers = [%s]' % ", ".join('"%s"' % host_uri(j) for j in range(1, MAX_HOSTS + 1) if j != i),
        'domain_type = "%s"' % ("kvm" if kvm_usable() else "qemu"),
        'vlan_backend = "ovs"',
        'ovs_prefix = "%s"' % host(i),
        'port_prefix = "%s"' % host(i),
        'trunk_uplink = "%s"' % (uplink_if or uplink_of(i)),
        'mgmt_bridge = "%s"' % MGMT_BRIDGE,
        'mgmt_network = "%s"' % mgmt_network(i),
        'wan_bridge = "%s"' % WAN_BRIDGE,
        'overlay_dir = "%s"' % os.path.join(OVERLAYS, host(i)),
        'download_dir = "%s"' % os.path.join(RUN, "downloads-" + host(i)),
        # Firmware downloaded to virtual devices: where QEMU's user can read it, as the images.
        'firmware_dir = "%s"' % os.path.join(sh.STATE, "firmware", host(i)),
        'console_log_dir = "%s"' % consoles,
        'periodic_inform_interval = 60',
    ]) + "\n")
    if daemon(name, [agent_bin, "--config", conf], "listening cr="):
        sh.say("hypervisor agent %s started (libvirt %s)" % (host(i), host_uri(i)))
    return nbi.Nbi("http://127.0.0.1:%d" % NBI_PORT, secret("nbi-token"), device(i))


def api_from_files(i=1):
    token = sh.read(os.path.join(RUN, "nbi-token")).strip()
    return nbi.Nbi("http://127.0.0.1:%d" % NBI_PORT, token, device(i))
