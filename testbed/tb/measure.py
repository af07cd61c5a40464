"""Reproduces the validation of the design we implement (Cruz et al.): per-home throughput and UDP
loss under the ITU triple-play profiles, host CPU, per-vRGW CPU and memory, against the number of
vRGWs; and the management plane's timings. Writes CSV files; `tb/plot.py` draws the figures.

Traffic is downstream, from the internet namespace through each vRGW (NAT) to its home, all homes
at once: iperf3 clients in the homes with `-R` (the server in the internet namespace sends), UDP at
the profile's rates for telephony (G.711-sized datagrams), SDTV and HDTV, and one TCP flow for
Internet: uncapped (as much as it gets), or with `cap_internet` paced at the profile's rate, so that
each home asks for its profile and no more.
"""

import csv
import json
import os
import statistics
import subprocess
import sys
import time

from . import bringup, daemons, homenet, image, naming, nbi, plumbing, provisioning, sh

# Downstream Mbit/s per service (design brief, section 1): Internet is the requirement the TCP
# flow is held to; the others are sent at that rate over UDP.
PROFILES = {
    "average": {"internet": 5.0, "telephony": 0.1, "sdtv": 3.0, "hdtv": 8.0},
    "high": {"internet": 10.0, "telephony": 0.1, "sdtv": 3.0, "hdtv": 16.0},
}
SERVICES = ["internet", "telephony", "sdtv", "hdtv"]
# UDP datagram sizes: a G.711 packet of 20 ms is 160 bytes of voice; video uses full frames.
DATAGRAM = {"telephony": 160, "sdtv": 1316, "hdtv": 1316}
BASE_PORT = 5201


def port(home, service):
    return BASE_PORT + (home - 1) * len(SERVICES) + SERVICES.index(service)


def cpu_times():
    """(busy, total) jiffies of the whole host."""
    f = sh.read("/proc/stat").splitlines()[0].split()[1:]
    v = [int(x) for x in f]
    idle = v[3] + v[4]
    return sum(v) - idle, sum(v)


def domain_stats():
    """{domain: (cpu_ns, memory_kib)} for the testbed's running domains: a VM's from libvirt
    (cpu.time, balloon.rss: the QEMU process's resident memory; /proc when libvirt does not say),
    a container's from its cgroups (cpuacct.usage; the memory cgroup's usage: what its processes
    hold and the page cache charged to it), as libvirt's LXC driver has no domain statistics."""
    out = container_stats()
    text = sh.run(["virsh", "-c", naming.LIBVIRT, "domstats", "--cpu-total", "--balloon", "--state"], check=False)
    name = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("Domain:"):
            name = line.split("'")[1]
        elif name and line.startswith("cpu.time="):
            out.setdefault(name, [0, 0])[0] = int(line.split("=")[1])
        elif name and line.startswith("balloon.rss="):
            out.setdefault(name, [0, 0])[1] = int(line.split("=")[1])
    for pid in sh.run(["pgrep", "-f", "qemu-system"], check=False).split():
        try:
            cmd = sh.read("/proc/%s/cmdline" % pid).split("\0")
            status = sh.read("/proc/%s/status" % pid)
        except OSError:
            continue
        guest = next((c.split("guest=")[1].split(",")[0] for c in cmd if c.startswith("guest=")), None)
        rss = next((int(l.split()[1]) for l in status.splitlines() if l.startswith("VmRSS:")), 0)
        if guest in out and not out[guest][1]:
            out[guest][1] = rss
    return {k: tuple(v) for k, v in out.items()}


def container_stats():
    out = {}
    root = "/sys/fs/cgroup/cpuacct/machine"
    for d in os.listdir(root) if os.path.isdir(root) else []:
        if not (d.startswith("lxc-") and d.endswith(".libvirt-lxc")):
            continue
        name = d[len("lxc-"):-len(".libvirt-lxc")].split("-", 1)[1]
        try:
            cpu = int(sh.read(os.path.join(root, d, "cpuacct.usage")).strip())
            mem = int(sh.read(os.path.join("/sys/fs/cgroup/memory/machine", d, "memory.usage_in_bytes")).strip())
        except (OSError, ValueError):
            continue
        out[name] = [cpu, mem // 1024]
    return out


def process_rss_kib(pidfile):
    pid = daemons.pid_alive(pidfile)
    if not pid:
        return 0
    for line in sh.read("/proc/%d/status" % pid).splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def run_traffic(homes, profile, duration, cap_internet=False):
    """One run: every service of every home at once for `duration` s (the Internet flow paced at
    the profile's rate when `cap_internet`). Returns per-flow rows and the host's and domains' CPU
    use."""
    rates = PROFILES[profile]
    servers = []
    for k in homes:
        for s in SERVICES:
            servers.append(subprocess.Popen(
                ["ip", "netns", "exec", naming.INET_NS, "iperf3", "-s", "-1", "-p", str(port(k, s))],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(0.5)
    d0, c0, t0 = domain_stats(), cpu_times(), time.monotonic()
    clients = {}
    for k in homes:
        for s in SERVICES:
            args = ["ip", "netns", "exec", naming.home_ns(k), "iperf3", "-c", naming.INET_ADDR, "-p", str(port(k, s)),
                    "-R", "-t", str(duration), "-J", "--connect-timeout", "5000"]
            if s != "internet":
                args += ["-u", "-b", "%gM" % rates[s], "-l", str(DATAGRAM[s])]
            elif cap_internet:
                args += ["-b", "%gM" % rates[s]]
            clients[(k, s)] = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = {}
    # One deadline for all: a client that hangs (its control connection starved) must not make
    # the others wait in turn.
    deadline = time.monotonic() + duration + 30
    for key, p in clients.items():
        try:
            out, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            err = "no result within %d s of the end of the run (killed)" % 30
            out = out or ""
        results[key] = (out, err)
    elapsed = time.monotonic() - t0
    c1, d1 = cpu_times(), domain_stats()
    # Servers whose client never came (or gave up) are still waiting: one grace period for all.
    grace = time.monotonic() + 3
    for p in servers:
        try:
            p.wait(timeout=max(0.1, grace - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    rows = []
    for (k, s), (out, err) in sorted(results.items()):
        mbps, loss, error = 0.0, None, ""
        try:
            j = json.loads(out)
            end = j.get("end", {})
            if "error" in j:
                error = j["error"]
            if s == "internet":
                mbps = end.get("sum_received", {}).get("bits_per_second", 0) / 1e6
            else:
                summ = end.get("sum_received") or end.get("sum") or {}
                mbps = summ.get("bits_per_second", 0) / 1e6
                loss = summ.get("lost_percent")
        except ValueError:
            error = (err or out).strip()[:200] or "no output"
        rows.append({"home": k, "service": s, "mbps": round(mbps, 3),
                     "required_mbps": rates[s], "loss_percent": "" if loss is None else round(loss, 3),
                     "error": error})
    busy = (c1[0] - c0[0]) / max(1, c1[1] - c0[1]) * 100.0
    per_vm = {}
    for name, (ns1, rss) in d1.items():
        ns0 = d0.get(name, (ns1, 0))[0]
        per_vm[name] = ((ns1 - ns0) / 1e9 / elapsed * 100.0, rss)
    return rows, busy, per_vm


def traffic(ns, profiles, duration, out_dir, progress=True, flavor="vm", cap_internet=False):
    """The data-plane experiment for each N in `ns`, the homes' vRGWs of `flavor`: CSV files in
    `out_dir`."""
    os.makedirs(out_dir, exist_ok=True)
    flows = open(os.path.join(out_dir, "flows.csv"), "w", newline="")
    hosts = open(os.path.join(out_dir, "host.csv"), "w", newline="")
    vms = open(os.path.join(out_dir, "vrgw.csv"), "w", newline="")
    fw = csv.DictWriter(flows, ["n", "profile", "home", "service", "mbps", "required_mbps", "loss_percent", "error"])
    hw = csv.DictWriter(hosts, ["n", "profile", "host_cpu_percent", "cores"])
    vw = csv.DictWriter(vms, ["n", "profile", "domain", "cpu_percent_of_one_core", "memory_kib"])
    for w in (fw, hw, vw):
        w.writeheader()
    total = len(ns) * len(profiles)
    i = 0
    try:
        for n in ns:
            bringup.up(homes=n, pool=0, lease_timeout=600, flavor=flavor)
            homes = list(range(1, n + 1))
            mine = {naming.HOST + "-%d" % s for s in slots_of(homes)}
            for profile in profiles:
                i += 1
                if progress:
                    sh.progress("traffic", i, total, "%d vRGWs, %s profile, %d s" % (n, profile, duration))
                rows, busy, per_vm = run_traffic(homes, profile, duration, cap_internet)
                for r in rows:
                    fw.writerow(dict(r, n=n, profile=profile))
                hw.writerow({"n": n, "profile": profile, "host_cpu_percent": round(busy, 1),
                             "cores": os.cpu_count()})
                for name, (cpu, rss) in sorted(per_vm.items()):
                    if name in mine:
                        vw.writerow({"n": n, "profile": profile, "domain": name,
                                     "cpu_percent_of_one_core": round(cpu, 1), "memory_kib": rss})
                for f in (flows, hosts, vms):
                    f.flush()
                worst = max((float(r["loss_percent"] or 0) for r in rows), default=0)
                got = statistics.mean(sum(r["mbps"] for r in rows if r["home"] == k) for k in homes)
                sh.say("  %d vRGWs %s: %.1f Mbit/s per home (needs %.1f), worst UDP loss %.1f %%, host CPU %.0f %%" % (
                    n, profile, got, sum(PROFILES[profile].values()), worst, busy))
    finally:
        for f in (flows, hosts, vms):
            f.close()


def slots_of(homes):
    """The slot numbers (domain suffixes) serving these homes, from the agent's store."""
    import sqlite3
    db = sqlite3.connect(os.path.join(naming.RUN, "agent.db"))
    try:
        instances = [homenet.load_homes()[k]["instance"] for k in homes]
        rows = db.execute("SELECT id, instance FROM slots WHERE usage = 'assigned'").fetchall()
        return [sid for sid, inst in rows if inst in instances]
    finally:
        db.close()


# ---------------------------------------------------------------- management plane


def first_lease_after_add(api, home, template_ref, from_pool, timeout=300):
    """Seconds from the NBI addObject of subscriber `home` to its first DHCP lease."""
    homenet.home_up(home)
    t0 = time.monotonic()
    inst = api.add(nbi.VIRT + "Instance.", [("Template", template_ref), ("Subscriber", "measure-%d" % home),
                                            ("SVLAN", str(naming.SVLAN), "xsd:unsignedInt"),
                                            ("CVLAN", str(naming.cvlan(home)), "xsd:unsignedInt")])
    end = t0 + timeout
    while time.monotonic() < end:
        if homenet.dhcp(home, timeout=3):
            return time.monotonic() - t0, inst
    raise sh.Failed("subscriber %d: no lease within %d s of addObject (%s)" % (
        home, timeout, "pool" if from_pool else "cold"))


def pool_state(api, pool):
    p = "%sPool.%d." % (nbi.VIRT, pool)
    v = api.get([p + "Ready", p + "Status"], timeout_ms=60000)
    return int(v[p + "Ready"]), v[p + "Status"]


def paused_domains(flavor="vm"):
    """The testbed's suspended domains of `flavor`, as libvirt sees them (a pool's booted vRGWs)."""
    uri = naming.LIBVIRT if flavor == "vm" else naming.lxc_uri(1)
    names = sh.run(["virsh", "-c", uri, "list", "--state-paused", "--name"], check=False).split()
    return [n for n in names if n.startswith(naming.HOST + "-")]


def wait_pool(api, pool, size, timeout=900, flavor="vm"):
    """Seconds until `size` pool domains are booted and suspended. Watched through libvirt, not
    the NBI: while many guests boot under TCG, asking the agent every second would only slow it."""
    t0 = time.monotonic()
    sh.wait_for("pool %d reaching %d booted vRGWs" % (pool, size), lambda: len(paused_domains(flavor)) >= size,
                timeout, 1.0)
    secs = time.monotonic() - t0
    sh.wait_for("pool %d reporting %d ready" % (pool, size), lambda: pool_state(api, pool)[0] >= size, 300, 5.0)
    return secs


def management(out_dir, runs=5, pool_fill=10, flavor="vm"):
    """Management-plane timings of `flavor`'s template, each over `runs` repetitions: CSV in
    `out_dir`."""
    api = daemons.api_from_files()
    templates, pools, _ = provisioning.inventory(api)
    name = provisioning.TEMPLATE_NAME if flavor == "vm" else provisioning.CT_TEMPLATE_NAME
    t = next(n for n, r in templates.items() if r.get("Name") == name)
    tref = "%sTemplate.%d" % (nbi.VIRT, t)
    pool = next(n for n, r in pools.items() if r.get("Template", "").rstrip(".") == tref)
    pp = "%sPool.%d." % (nbi.VIRT, pool)
    rows = []
    extra = max(homenet.load_homes()) + 1 if homenet.load_homes() else 1
    try:
        _management(api, pool, pp, tref, rows, extra, runs, pool_fill, flavor)
    finally:
        # What was measured is kept even when a later step fails.
        with open(os.path.join(out_dir, "management.csv"), "w", newline="") as f:
            w = csv.DictWriter(f, ["measure", "seconds", "detail"])
            w.writeheader()
            w.writerows(rows)
    return rows


def _management(api, pool, pp, tref, rows, extra, runs, pool_fill, flavor):

    def record(what, seconds, detail=""):
        rows.append({"measure": what, "seconds": round(seconds, 3), "detail": detail})
        sh.say("  %s: %.2f s %s" % (what, seconds, detail))

    for mode in ("cold", "pool"):
        for r in range(runs):
            api.set([(pp + "TargetSize", "1" if mode == "pool" else "0", "xsd:unsignedInt")])
            if mode == "pool":
                wait_pool(api, pool, 1, flavor=flavor)
            else:
                sh.wait_for("the pool empty", lambda: pool_state(api, pool)[0] == 0, 120, 1.0)
            sh.progress("management", r + 1, runs, "addObject to first lease, %s" % mode)
            secs, inst = first_lease_after_add(api, extra, tref, mode == "pool")
            record("add_to_first_lease_" + mode, secs)
            api.delete("%sInstance.%d." % (nbi.VIRT, inst))
    api.set([(pp + "TargetSize", "0", "xsd:unsignedInt")])
    # A DHCP pool change to the new range being served (home 1).
    inst1 = homenet.load_homes()[1]["instance"]
    dp = "%sInstance.%d.Device.DHCPv4.Server.Pool.1." % (nbi.VIRT, inst1)
    ranges = [("192.168.1.100", "192.168.1.149"), ("192.168.1.150", "192.168.1.199")]
    for r in range(runs):
        lo, hi = ranges[r % 2]
        sh.progress("management", r + 1, runs, "setParameterValues to the new range served")
        t0 = time.monotonic()
        api.set([(dp + "MinAddress", lo), (dp + "MaxAddress", hi)])
        while True:
            lease = homenet.dhcp(1, timeout=3)
            if lease and bed_in_range(lease["ip"], lo, hi):
                break
            if time.monotonic() - t0 > 120:
                raise sh.Failed("the new DHCP range was not served within 120 s")
        record("set_to_new_range_served", time.monotonic() - t0)
    # Filling a pool of `pool_fill` from empty.
    sh.wait_for("the pool empty", lambda: pool_state(api, pool)[0] == 0, 120, 1.0)
    api.set([(pp + "TargetSize", str(pool_fill), "xsd:unsignedInt")])
    record("fill_pool_%d" % pool_fill, wait_pool(api, pool, pool_fill, timeout=1800, flavor=flavor))
    # Memory: the agent, the ACS, each vRGW's QEMU (or container), the proxy inside a vRGW.
    rows.append({"measure": "agent_rss_kib", "seconds": "",
                 "detail": process_rss_kib(os.path.join(naming.RUN, "agent.pid"))})
    rows.append({"measure": "acs_rss_kib", "seconds": "", "detail": process_rss_kib(os.path.join(naming.RUN, "acs.pid"))})
    for name, (_, rss) in sorted(domain_stats().items()):
        rows.append({"measure": "qemu_rss_kib" if flavor == "vm" else "container_memory_kib", "seconds": "",
                     "detail": "%s %d" % (name, rss)})
    rss, dns = proxy_rss()
    rows.append({"measure": "proxy_rss_kib", "seconds": "", "detail": rss})
    rows.append({"measure": "proxy_dnsmasq_rss_kib", "seconds": "", "detail": dns})
    api.set([(pp + "TargetSize", "0", "xsd:unsignedInt")])


def bed_in_range(ip, lo, hi):
    import ipaddress
    return ipaddress.ip_address(lo) <= ipaddress.ip_address(ip) <= ipaddress.ip_address(hi)


def proxy_rss():
    """The guest's vrgw-proxy binary (static) run on the host in a namespace of its own, as it
    runs in the vRGW (factory configuration applied, dnsmasq started): its resident memory and
    its dnsmasq's, KiB."""
    import shutil
    import tempfile
    proxy = image.build_proxy()
    ns = "tb-proxy-rss"
    d = tempfile.mkdtemp(prefix="tb-proxy-rss-")
    plumbing.netns(ns)
    p = None
    try:
        sh.run(["ip", "link", "add", "lan", "netns", ns, "type", "veth", "peer", "name", "wan", "netns", ns])
        for dev in ("lan", "wan"):
            sh.run(["ip", "link", "set", dev, "up"], netns=ns)
        sh.write(os.path.join(d, "secret"), "0123456789abcdef0123\n")
        p = subprocess.Popen(["ip", "netns", "exec", ns, proxy, "--listen", "127.0.0.1:8730", "--secret-file",
                              os.path.join(d, "secret"), "--state-dir", os.path.join(d, "state"), "--run-dir",
                              os.path.join(d, "run"), "--lan-if", "lan", "--wan-if", "wan"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def serving():
            return sh.ok([sys.executable, "-c", "import socket; socket.create_connection(('127.0.0.1', 8730), 1)"],
                         netns=ns, timeout=5)
        sh.wait_for("the proxy serving in %s" % ns, serving, 30, 0.2)
        time.sleep(0.5)
        pids = sh.run(["ip", "netns", "pids", ns]).split()
        rss = {}
        for pid in pids:
            try:
                comm = sh.read("/proc/%s/comm" % pid).strip()
                kib = next(int(l.split()[1]) for l in sh.read("/proc/%s/status" % pid).splitlines()
                           if l.startswith("VmRSS:"))
            except (OSError, StopIteration):
                continue
            rss[comm] = rss.get(comm, 0) + kib
        return rss.get("vrgw-proxy", 0), rss.get("dnsmasq", 0)
    finally:
        if p:
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
        for pid in sh.run(["ip", "netns", "pids", ns], check=False).split():
            try:
                os.kill(int(pid), 9)
            except (OSError, ValueError):
                pass
        sh.run(["ip", "netns", "del", ns], check=False)
        shutil.rmtree(d, ignore_errors=True)
