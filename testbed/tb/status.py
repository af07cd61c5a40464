"""The status table (testbed/status, and the end of testbed/up): one row per home with its live
vRGW, each host's libvirt domains, and where the NBI, CWMP, web form and logs are."""

import os

from . import homenet, provisioning, sh
from .naming import CWMP_PORT, NBI_PORT, PORTAL_PORT, RUN, device, host, host_uri, hosts_up, lxc_uri


def domains_of(i, kinds=("vm", "container")):
    """Host i's domains and their states: its VMs (QEMU) and its containers (LXC)."""
    domains = {}
    for uri in [host_uri(i)] * ("vm" in kinds) + [lxc_uri(i)] * ("container" in kinds):
        for line in sh.run(["virsh", "-c", uri, "list", "--all"], check=False).splitlines()[2:]:
            f = line.split()
            if len(f) >= 3:
                domains[f[1]] = " ".join(f[2:])
    return domains


def status_rows(api=None):
    """One row per home: home, netns, host, instance, S/C VLAN, lease, vRGW state, management."""
    homes = homenet.load_homes()
    live = provisioning.where(api)
    domains = {}
    for i in range(1, hosts_up() + 1):
        domains.update(domains_of(i))
    out = []
    for k, h in sorted(homes.items()):
        i, n, r = live.get("home-%d" % k, (0, h["instance"], {}))
        lease = homenet.read_lease(k)
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
        for kind, uri in (("vm", host_uri(i)), ("container", lxc_uri(i))):
            mine = domains_of(i, (kind,))
            if mine or kind == "vm":
                print("%s on %s (%s): %s" % ("VMs" if kind == "vm" else "containers", host(i), uri.split("?")[0],
                                             ", ".join("%s (%s)" % (d, mine[d]) for d in sorted(mine)) or "none"))
    print("NBI:  http://127.0.0.1:%d  (token in %s)" % (NBI_PORT, os.path.join(RUN, "nbi-token")))
    for i in range(1, hosts_up() + 1):
        print("CWMP: http://127.0.0.1:%d  (hypervisor agent %s, device %s)" % (CWMP_PORT, host(i), device(i)))
    print("web:  http://127.0.0.1:%d  (customer web form: log in as home-K with the password in %s/portal-home-K)" % (
        PORTAL_PORT, RUN))
    print("logs: %s/{acs,agent*,libvirt-*}.log, vRGW consoles in %s/consoles/" % (RUN, RUN))
