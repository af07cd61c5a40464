"""Bringing the testbed up (testbed/up), in order: packages, services, guest image, network, ACS and
agents, subscribers through the NBI, the homes' leases. Safe to run again."""

import os
import time

from . import daemons, homenet, image, plumbing, provisioning, services, sh
from .naming import FLAVORS, HOSTS_FILE, MAX_HOSTS, RUN, SVLAN, TRUNK_MTU, cvlan, home_ns, hosts_up, uplink_of


def up(homes=3, pool=2, lease_timeout=240, uplink=None, hosts=1, flavor="vm"):
    """Everything, in order; with a real trunk NIC (`uplink`), no emulated access node or homes:
    the subscribers are provisioned and real homes behind the real access node lease. With
    `hosts` > 1, more virtualization hosts (each a libvirtd and an agent of its own, a trunk to
    the same access node) with the same templates and a pool of each; the homes start on host 1.
    `flavor`: the homes' vRGWs are VMs, containers, or both (`mixed`: naming.flavor_of)."""
    if flavor not in FLAVORS:
        raise sh.Failed("--flavor is one of " + ", ".join(FLAVORS))
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
    services.install()
    sh.say("step 2/6: services (Open vSwitch, libvirt)")
    services.start_services(hosts)
    sh.say("step 3/6: guest image")
    img = image.build()
    sh.say("step 4/6: network")
    plumbing.network_up(uplink, hosts)
    sh.say("step 5/6: ACS and hypervisor agent" + ("s" if hosts > 1 else ""))
    api = daemons.stack_up(uplink, hosts)
    sh.say("step 6/6: subscribers through the NBI, homes, leases")
    moved = {sub: (i, n) for sub, (i, n, _) in provisioning.where(api).items() if i != 1}
    instances = provisioning.provision(api, img, homes, pool, moved, flavor=flavor)
    for sub, (i, n) in moved.items():
        if sub.startswith("home-") and sub[5:].isdigit():
            instances[int(sub[5:])] = n
    for i in range(2, hosts + 1):
        # Their pools keep the size they were given (a re-run for host 1's pool leaves them).
        provisioning.provision(daemons.agent_up(i), img, 0, pool, resize=False, flavor=flavor)
    known = homenet.load_homes()
    for k in range(1, homes + 1):
        if not uplink:
            homenet.home_up(k)
        known[k] = {"instance": instances[k], "svlan": SVLAN, "cvlan": cvlan(k),
                    "netns": "-" if uplink else home_ns(k)}
    homenet.save_homes(known)
    for i in range(1, hosts + 1):
        if not uplink and plumbing.ovs("--if-exists", "get", "interface", uplink_of(i), "name").strip():
            # The agent added the trunk's host end to its bridge; Open vSwitch sizes its buffers by
            # the interface's MTU.
            plumbing.ovs("set", "interface", uplink_of(i), "mtu_request=%d" % TRUNK_MTU)
    if uplink:
        sh.say("subscribers home-1..home-%d are on S-VLAN %d, C-VLANs %d..%d of %s; their homes lease from "
               "the real access network" % (homes, SVLAN, cvlan(1), cvlan(homes), uplink))
        return api
    pending = list(range(1, homes + 1))
    end = time.monotonic() + lease_timeout
    done = 0
    while pending and time.monotonic() < end:
        k = pending.pop(0)
        lease = homenet.dhcp(k, timeout=15)
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
