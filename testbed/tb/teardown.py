"""Tearing the testbed down (testbed/down): its processes, domains, namespaces, bridges, interfaces
and state go; the three latest runs' logs stay."""

import os
import shutil
import signal
import time

from . import daemons, plumbing, services, sh
from .naming import HOMES_FILE, HOSTS_FILE, MAX_HOSTS, PKI, RUN, agent_name, host


def down(purge=False):
    """Removes everything the testbed made. Safe to run any time, also after a failed up."""
    sh.need_root()
    for name in [agent_name(i) for i in range(1, MAX_HOSTS + 1)] + ["acs", "inet-dnsmasq"]:
        daemons.kill(os.path.join(RUN, name + ".pid"), name)
    # Homes' DHCP clients and anything else left in the testbed's namespaces.
    namespaces = [n for n in sh.run(["ip", "netns", "list"], check=False).split() if n.startswith("tb-")]
    for ns in namespaces:
        for pid in sh.run(["ip", "netns", "pids", ns], check=False).split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass
    for i in range(1, MAX_HOSTS + 1):
        services.libvirt_down(i)
    services.unmount_overlays()
    shutil.rmtree(os.path.join(sh.STATE, "hosts"), ignore_errors=True)
    if os.path.isdir(PKI):
        # The CA's key goes with the testbed that made it; the next up makes a new CA.
        shutil.rmtree(PKI, ignore_errors=True)
        sh.say("removed the testbed's CA and certificates (%s)" % PKI)
    for ns in namespaces:
        sh.run(["ip", "netns", "del", ns], check=False)
    if namespaces:
        sh.say("removed namespaces " + " ".join(namespaces))
    if shutil.which("ovs-vsctl") and sh.ok(["ovs-vsctl", "--timeout=5", "show"]):
        bridges = [b for b in plumbing.ovs("list-br").split() if b.startswith(("tb-",) + tuple(host(i) + "-" for i in range(1, MAX_HOSTS + 1)))]
        for b in bridges:
            plumbing.ovs("--if-exists", "del-br", b)
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
    # Container controllers still exiting (each host's were waited for; a last look for all).
    for i in range(1, MAX_HOSTS + 1):
        services.lxc_controllers_gone(i)
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
    for d in ("run", "homes", "overlays", "images", "firmware", "secrets"):
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
