"""Provisioning through the NBI, as an OSS would: the template, the subscribers' instances and
web-form accounts, each host's pool; and where each subscriber's vRGW runs, as the hosts report
it."""

import os

from . import daemons, nbi, sh
from .naming import SVLAN, cvlan, device, flavor_of, host, hosts_up


TEMPLATE_NAME = "vrgw-small"
# 128 MiB: Debian's kernel (at least 96 MiB to boot) plus our initramfs, unpacked into RAM while
# its compressed copy is still there (7.0 MiB, 16.3 MiB unpacked). At 104 MiB a guest once
# panicked while unpacking it ("System is deadlocked on memory"; CI, 2026-12-07): the figures in
# docs/results.md measured before then were at 104 MiB.
GUEST_MEMORY_KIB = 131072
# The container flavor: the same image's files as its root (rootfs/), the host's kernel; the
# memory is its cgroup's limit (the proxy, dnsmasq and busybox use about 10 MiB).
CT_TEMPLATE_NAME = "vrgw-ct"
CT_MEMORY_KIB = 65536


def inventory(api, instances=True):
    """(templates, pools, instances) of the host `api` manages, each by row number. Without
    `instances`, their table is not read (with it, every vRGW's data model comes along: on a host
    of hundreds more than one CWMP message carries, which the agent refuses with 9004)."""
    v = api.get([nbi.VIRT] if instances else [nbi.VIRT + "Template.", nbi.VIRT + "Pool."])
    return (nbi.rows(v, nbi.VIRT + "Template."), nbi.rows(v, nbi.VIRT + "Pool."),
            nbi.rows(v, nbi.VIRT + "Instance.") if instances else {})


def template(api, flavor, img, templates=None):
    """The row of the template of `flavor` ("vm" or "container") on the host `api` manages, made
    when missing."""
    if templates is None:
        templates = inventory(api)[0]
    name = TEMPLATE_NAME if flavor == "vm" else CT_TEMPLATE_NAME
    t = next((n for n, r in templates.items() if r.get("Name") == name), None)
    if t is None:
        image, memory = (img, GUEST_MEMORY_KIB) if flavor == "vm" else (os.path.join(img, "rootfs"), CT_MEMORY_KIB)
        t = api.add(nbi.VIRT + "Template.", [("Name", name), ("Image", image),
                                             ("Flavor", "VM" if flavor == "vm" else "Container"),
                                             ("MemoryKiB", str(memory), "xsd:unsignedInt"),
                                             ("VCPUs", "1", "xsd:unsignedInt")])
        sh.say("NBI: template %d %s (%s, %s, %d KiB)" % (t, name, flavor, image, memory))
        templates[t] = {"Name": name}
    return t


def provision(api, img, homes, pool_size, elsewhere=(), resize=True, flavor="vm"):
    """Templates, subscribers home-1..home-`homes` (those not served by another host, `elsewhere`)
    and a pool per template on the host `api` manages (an existing pool keeps its size unless
    `resize`). Each home's vRGW is a VM or a container as `flavor` says (naming.flavor_of); a host
    of `mixed` gets both templates and both pools."""
    templates, pools, instances = inventory(api)
    kinds = ["vm", "container"] if flavor == "mixed" else [flavor]
    trefs = {f: "%sTemplate.%d" % (nbi.VIRT, template(api, f, img, templates)) for f in kinds}
    by_sub = {r.get("Subscriber"): n for n, r in instances.items()}
    for k in range(1, homes + 1):
        sub = "home-%d" % k
        if sub in by_sub or sub in elsewhere:
            continue
        f = flavor_of(k, flavor, homes)
        sh.progress("NBI: provisioning subscriber", k, homes, "%s on S-VLAN %d / C-VLAN %d (%s)" % (
            sub, SVLAN, cvlan(k), "VM" if f == "vm" else "container"))
        by_sub[sub] = api.add(nbi.VIRT + "Instance.", [("Template", trefs[f]), ("Subscriber", sub),
                                                        ("SVLAN", str(SVLAN), "xsd:unsignedInt"),
                                                        ("CVLAN", str(cvlan(k)), "xsd:unsignedInt")])
    # Each subscriber's account on the customer web form (password kept in run/, mode 0600).
    for k in range(1, homes + 1):
        sub = "home-%d" % k
        s, v = api.call("PUT", "/subscribers/" + sub, {"password": portal_password(k)})
        if s not in (200, 201):
            raise sh.Failed("NBI: web-form account for %s: HTTP %s %s" % (sub, s, v))
    for f, tref in trefs.items():
        p = next((n for n, r in pools.items() if r.get("Template", "").rstrip(".") == tref), None)
        if p is None:
            p = api.add(nbi.VIRT + "Pool.", [("Template", tref), ("Enable", "true", "xsd:boolean"),
                                             ("TargetSize", str(pool_size), "xsd:unsignedInt")])
            sh.say("NBI: pool %d of %d suspended %s (fills in the background)" % (
                p, pool_size, "VMs" if f == "vm" else "containers"))
        elif resize and pools[p].get("TargetSize") != str(pool_size):
            api.set([("%sPool.%d.TargetSize" % (nbi.VIRT, p), str(pool_size), "xsd:unsignedInt")])
    return {k: by_sub.get("home-%d" % k) for k in range(1, homes + 1)}


def portal_password(home):
    return daemons.secret("portal-home-%d" % home, 9)


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
