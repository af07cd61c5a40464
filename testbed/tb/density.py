"""Many idle container vRGWs on one host (testbed/density): subscribers added through the NBI in
bulk (tasks queued, then one connection request: the ACS runs them in one session), each a running
container vRGW with its proxy, dnsmasq and three NICs on the switch, no traffic; at each stage
what the vRGWs' processes hold (PSS), the CPU of the host and of the agent, libvirtd and Open
vSwitch at rest, and a GetParameterValues of the whole host through the NBI (every vRGW's data
model, through its proxy: in one request, which a large host refuses with 9004, and in pages of
PAGE instances as an OSS reads a large host). The host's memory per vRGW is MemAvailable's fall
from before the first subscriber was added, per vRGW (processes, page tables, sockets, veths,
namespaces, all of it). At the end every subscriber it added is deleted the same way (unless
keep). A run that stopped half-way is taken up again: the subscribers it added are counted
first, and the memory before is read once they are deleted."""

import csv
import json
import os
import time
import urllib.parse

from . import activation, homenet, migrate, naming, nbi, sh
from . import measure as meter

CVLAN_BASE = 100                    # subscriber k of this run is on C-VLAN 100 + k (homes use 11..)


def meminfo(key="MemAvailable"):
    for line in sh.read("/proc/meminfo").splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def proc_ticks(pid):
    try:
        f = sh.read("/proc/%d/stat" % pid).rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])
    except (OSError, IndexError, ValueError):
        return 0


def pids_named(name):
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if sh.read("/proc/%s/comm" % p).strip() == name:
                    out.append(int(p))
            except OSError:
                pass
    return out


def pss_kib(pid):
    try:
        for line in sh.read("/proc/%d/smaps_rollup" % pid).splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def container_pss():
    """PSS (KiB) of every container's processes and of their libvirt_lxc controllers."""
    controllers = pids_named("libvirt_lxc")
    inside = []
    for c in controllers:
        try:
            kids = sh.read("/proc/%d/task/%d/children" % (c, c)).split()
        except OSError:
            kids = []
        stack = [int(k) for k in kids]
        while stack:
            p = stack.pop()
            inside.append(p)
            try:
                stack += [int(k) for k in sh.read("/proc/%d/task/%d/children" % (p, p)).split()]
            except OSError:
                pass
    return sum(pss_kib(p) for p in controllers), sum(pss_kib(p) for p in inside), len(controllers)


def queue(api, body):
    s, v = api.call("POST", "/devices/%s/tasks" % urllib.parse.quote(api.device), body, timeout=60)
    if s not in (200, 202):
        raise sh.Failed("NBI: queuing %s: HTTP %s %s" % (body.get("name"), s, v))


def pending(api):
    """Tasks of the host still queued or running; a task that faulted fails the run."""
    query = {"device": api.device}
    s, v = api.call("GET", "/tasks?query=" + urllib.parse.quote(json.dumps(query)), timeout=120)
    if s != 200 or not isinstance(v, list):
        return -1
    faulted = [t for t in v if t.get("fault")]
    if faulted:
        raise sh.Failed("a queued task faulted: %s" % json.dumps(faulted[0])[:600])
    return len(v)


def running_containers():
    out = sh.run(["virsh", "-c", naming.lxc_uri(1), "list", "--state-running", "--name"], check=False)
    return len([n for n in out.split() if n.startswith(naming.host(1) + "-")])


def ovs_ports():
    """Ports on the host's Open vSwitch bridges (the vRGWs' LAN NICs: their management and WAN
    NICs are on Linux bridges)."""
    bridges = sh.run(["ovs-vsctl", "list-br"], check=False).split()
    return sum(len(sh.run(["ovs-vsctl", "list-ports", b], check=False).split()) for b in bridges)


def add_subscribers(api, tref, start, count):
    """Subscribers density-START+1 .. START+COUNT, queued as tasks, then run in one session."""
    for k in range(start + 1, start + count + 1):
        queue(api, {"name": "addObject", "objectName": nbi.VIRT + "Instance.",
                    "parameterValues": [["Template", tref], ["Subscriber", "density-%d" % k],
                                        ["SVLAN", str(naming.SVLAN), "xsd:unsignedInt"],
                                        ["CVLAN", str(CVLAN_BASE + k), "xsd:unsignedInt"]]})
    t0 = time.monotonic()
    wake(api)
    sh.wait_for("%d subscribers' vRGWs running" % (start + count),
                lambda: pending(api) == 0 and running_containers() >= start + count, 7200, 5)
    return time.monotonic() - t0


def wake(api):
    """One connection request: the agent's session runs the queue. (A session under way, a
    periodic one say, takes the queued tasks as well; then this request waits, and that is fine.)"""
    try:
        api.call("POST", "/devices/%s/tasks?connection_request&timeout=3000" % urllib.parse.quote(api.device),
                 {"name": "getParameterValues", "parameterNames": ["Device.DeviceInfo.UpTime"]}, timeout=60)
    except OSError as e:
        sh.say("the connection request's task did not come back within 60 s (%s); the queue runs anyway" % e)


def ours(api):
    """The instances a density run added: every instance of host 1 but the homes', from the
    agent's store (a GetParameterValues of the Instance table would bring every vRGW's data
    model along: at 500 vRGWs more than the ACS takes in one message)."""
    import sqlite3
    homes = {h["instance"] for h in homenet.load_homes().values()}
    db = sqlite3.connect(os.path.join(naming.RUN, "agent.db"))
    try:
        rows = db.execute("SELECT instance FROM slots WHERE usage = 'assigned' AND instance IS NOT NULL").fetchall()
    finally:
        db.close()
    return {n: n for (n,) in rows if n not in homes}


def remove_all(api):
    """Deletes every subscriber a density run added, in bulk; seconds it took."""
    mine = ours(api)
    for n in sorted(mine.values()):
        queue(api, {"name": "deleteObject", "objectName": "%sInstance.%d." % (nbi.VIRT, n)})
    t0 = time.monotonic()
    wake(api)
    sh.wait_for("%d subscribers deleted" % len(mine), lambda: pending(api) == 0 and not ours(api), 7200, 5)
    return time.monotonic() - t0, len(mine)


def at_rest(seconds=30):
    """Host, agent, libvirtd and ovs-vswitchd CPU (per cent of one core) over `seconds`."""
    agent = int(sh.read(os.path.join(naming.RUN, "agent.pid")).strip())
    procs = {"agent": [agent], "libvirtd": pids_named("libvirtd"), "ovs-vswitchd": pids_named("ovs-vswitchd"),
             "libvirt_lxc": pids_named("libvirt_lxc")}
    b0, t0 = meter.cpu_times()
    p0 = {k: sum(proc_ticks(p) for p in v) for k, v in procs.items()}
    w0 = time.monotonic()
    time.sleep(seconds)
    b1, t1 = meter.cpu_times()
    dt = time.monotonic() - w0
    hz = os.sysconf("SC_CLK_TCK")
    out = {"host_cpu_percent": round(100.0 * (b1 - b0) / max(1, t1 - t0), 1)}
    for k, v in procs.items():
        out[k + "_cpu_percent"] = round(100.0 * (sum(proc_ticks(p) for p in v) - p0[k]) / hz / dt, 1)
    return out


PAGE = 25                           # instances per GetParameterValues when the host is read in pages


def whole_host_gpv(api, limit=900):
    """GetParameterValues of `Device.` in one request: (seconds, parameters, None), or (seconds,
    0, the fault's message) when the agent refused it (9004: an answer larger than one message
    may carry). The ACS retries a 9004 later (GenieACS's transient faults): the task is deleted
    once it has faulted."""
    body = {"name": "getParameterValues", "parameterNames": ["Device."]}
    t0 = time.monotonic()
    # A short wait for the connection request: the task is then followed until it is done or
    # faulted (the NBI's own wait would go on through the ACS's retries of a 9004).
    path = "/devices/%s/tasks?connection_request&timeout=5000" % urllib.parse.quote(api.device)
    s, v = api.call("POST", path, body, timeout=120)
    while True:
        if not isinstance(v, dict):
            raise sh.Failed("NBI: the whole host's read: HTTP %s %s" % (s, v))
        if v.get("status") == "done":
            return time.monotonic() - t0, len((v.get("result") or {}).get("parameters", [])), None
        if v.get("fault"):
            secs = time.monotonic() - t0
            api.call("DELETE", "/tasks/%s" % v["_id"], None, timeout=60)
            f = v["fault"]
            return secs, 0, "%s %s" % (f.get("code", ""), f.get("message", ""))
        if time.monotonic() - t0 > limit:
            raise sh.Failed("the whole host's read did not end within %d s: %s" % (limit, json.dumps(v)[:300]))
        time.sleep(1)
        state = api.task_state(v.get("_id"))
        if state is None:
            raise sh.Failed("the whole host's read: task %s is gone" % v.get("_id"))
        v = state


def paged_host_gpv(api):
    """The whole host read as an OSS would read a large one: `Device.` but the instance table in
    one request, then the instances PAGE at a time (each with its vRGW's whole data model, read
    from its proxy). Seconds, parameters, requests."""
    import sqlite3
    db = sqlite3.connect(os.path.join(naming.RUN, "agent.db"))
    try:
        instances = sorted(n for (n,) in db.execute(
            "SELECT instance FROM slots WHERE usage = 'assigned' AND instance IS NOT NULL"))
    finally:
        db.close()
    t0 = time.monotonic()
    params, requests = 0, 0
    top = ["Device.%s" % p for p in ("DeviceInfo.", "ManagementServer.", "Ethernet.")]
    top.append(nbi.VIRT + "Template.")
    top.append(nbi.VIRT + "Pool.")
    pages = [top] + [["%sInstance.%d." % (nbi.VIRT, n) for n in instances[k:k + PAGE]]
                     for k in range(0, len(instances), PAGE)]
    for names in pages:
        r = api.task({"name": "getParameterValues", "parameterNames": names}, timeout_ms=600000)
        params += len(r.get("parameters", []))
        requests += 1
    return time.monotonic() - t0, params, requests


def measure(stages=(100, 1000), out=None, rest=30, keep=False):
    api = migrate.api()
    tref, pool = activation.template_and_pool(api, "container")
    api.set([("%sPool.%d.TargetSize" % (nbi.VIRT, pool), "0", "xsd:unsignedInt")])
    sh.wait_for("the container pool empty", lambda: migrate.pool_ready(1, activation.name_of("container")) == 0,
                300, 1)
    have = len(ours(api))
    base_running = running_containers() - have  # the homes' own vRGWs
    if have:
        sh.say("taking up a run that stopped: %d of its subscribers are there" % have)
    # The host's memory without the run's vRGWs (a run taken up again measures it after
    # removing them: below).
    base = None if have else meminfo()
    rows = []
    for n in [s for s in stages if s >= have] or [have]:
        secs = add_subscribers(api, tref, have, n - have) if n > have else 0.0
        have = n
        time.sleep(20)  # their proxies up, their profiles pushed
        ctl, inside, count = container_pss()
        row = {"vrgws": n, "add_seconds": round(secs, 1), "mem_available_kib": meminfo(),
               "pss_per_container_kib": round(inside / max(1, count)),
               "pss_per_controller_kib": round(ctl / max(1, count)),
               "containers_running": running_containers() - base_running,
               "agent_rss_kib": meter.process_rss_kib(os.path.join(naming.RUN, "agent.pid")),
               "ovs_ports": ovs_ports(), "host_links": len(os.listdir("/sys/class/net"))}
        row.update(at_rest(rest))
        # Once the agent refused the one-request read (9004), a larger host is refused too: not
        # asked again (the ACS's retries of that fault take minutes of the run).
        earlier = next((r["gpv_refused"] for r in rows if r["gpv_refused"]), None)
        if earlier:
            gpv_s, params, refused = 0.0, 0, "not asked: refused with fewer vRGWs (%s)" % earlier
        else:
            gpv_s, params, refused = whole_host_gpv(api)
        # A refused read's time is the ACS's (its retries of a transient fault), not the agent's.
        row.update({"gpv_whole_host_seconds": "" if refused else round(gpv_s, 2), "gpv_parameters": params,
                    "gpv_refused": (refused or "")[:200]})
        paged_s, paged_params, requests = paged_host_gpv(api)
        row.update({"gpv_paged_seconds": round(paged_s, 2), "gpv_paged_parameters": paged_params,
                    "gpv_paged_requests": requests})
        rows.append(row)
        sh.say("%d idle container vRGWs: %s" % (n, json.dumps(row)))
        write(out, rows)
    if keep:
        sh.say("the %d subscribers stay (--keep); testbed/down removes them" % have)
        if base is None:
            write(out, rows)
            return rows
        secs, count = None, 0
    else:
        secs, count = remove_all(api)
        time.sleep(20)
        if base is None:
            base = meminfo()
    for r in rows:
        r["host_mem_per_vrgw_kib"] = round((base - r["mem_available_kib"]) / r["vrgws"])
        r["delete_all_seconds"] = "" if secs is None else round(secs, 1)
    if secs is not None:
        sh.say("deleted %d subscribers in %.0f s" % (count, secs))
    sh.say("host memory per idle vRGW: %s KiB" % (
        ", ".join("%d at %d" % (r["host_mem_per_vrgw_kib"], r["vrgws"]) for r in rows)))
    write(out, rows)
    return rows


def write(out, rows):
    if out and rows:
        os.makedirs(out, exist_ok=True)
        keys = list(dict.fromkeys(k for r in rows for k in r))
        with open(os.path.join(out, "density.csv"), "w", newline="") as f:
            w = csv.DictWriter(f, keys)
            w.writeheader()
            w.writerows(rows)

