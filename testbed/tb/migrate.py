"""Migrations on the testbed through the NBI, and what a home sees during them (tb/probe.py):
lost pings at 10 ms intervals from the home to its vRGW, and whether a TCP connection through the
vRGW's NAT survives. `testbed/migrate` runs one, or measures each mode repeatedly."""

import csv
import json
import os
import subprocess
import sys
import time
import urllib.parse

from . import daemons, homenet, naming, nbi, provisioning, sh

ECHO_PORT = 7999
MODES = ("live", "cold-image", "cold-context")
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

ECHO = r"""
import socket, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("%s", %d)); s.listen(64)
def serve(c):
    try:
        while True:
            d = c.recv(4096)
            if not d:
                break
            c.sendall(d)
    except OSError:
        pass
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


_ECHO = []


def echo_server():
    """A TCP echo server in the internet namespace (started once)."""
    pidfile = os.path.join(naming.RUN, "echo.pid")
    if daemons.pid_alive(pidfile):
        return
    p = subprocess.Popen(["ip", "netns", "exec", naming.INET_NS, sys.executable, "-c",
                          ECHO % (naming.INET_ADDR, ECHO_PORT)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    _ECHO.append(p)
    sh.write(pidfile, "%d\n" % p.pid)
    time.sleep(0.5)


def gateway(home):
    lease = homenet.read_lease(home)
    return lease["router"] if lease and lease.get("router") else "192.168.1.1"


def probe(home, seconds):
    """Starts the probe in the home's namespace; `finish(p)` gives its figures."""
    return subprocess.Popen(["ip", "netns", "exec", naming.home_ns(home), sys.executable, "-m", "tb.probe",
                             gateway(home), naming.INET_ADDR, str(ECHO_PORT), str(seconds)],
                            cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(p):
    p.terminate()
    out, err = p.communicate(timeout=30)
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise sh.Failed("the probe gave no figures: %s" % (err or out).strip()[-400:])


def api():
    return daemons.api_from_files(1)


def locate(home):
    """(host index, instance) of home `home`'s vRGW."""
    w = provisioning.where(api())
    got = w.get("home-%d" % home)
    if not got:
        raise sh.Failed("no host reports a vRGW for home-%d" % home)
    return got[0], got[1]


def template_name(host_index, n):
    """The Name of the template instance `n` of host `host_index` was made from."""
    a = daemons.api_from_files(host_index)
    v = a.get([nbi.VIRT + "Template.", "%sInstance.%d.Template" % (nbi.VIRT, n)], timeout_ms=15000)
    ref = v.get("%sInstance.%d.Template" % (nbi.VIRT, n), "").rstrip(".")
    return v.get(ref + ".Name", "")


def pool_ready(host_index, template=provisioning.TEMPLATE_NAME):
    """Suspended vRGWs ready in host `host_index`'s pool of the template named `template`."""
    a = daemons.api_from_files(host_index)
    try:
        v = a.get([nbi.VIRT + "Template.", nbi.VIRT + "Pool."], timeout_ms=15000)
        for k, r in nbi.rows(v, nbi.VIRT + "Pool.").items():
            if v.get(r.get("Template", "").rstrip(".") + ".Name") == template:
                return int(r.get("Ready", "0"))
    except (sh.Failed, OSError, ValueError):
        pass
    return 0


def migrate(home, to_host, mode, step_timeout=60, wait=300, on_step=None, wait_pool=True):
    """Moves home `home`'s vRGW to host `to_host` through the NBI; returns the migration record.
    Context-based: first waits (as an operator would) until the destination's pool has a
    suspended vRGW, unless `wait_pool` is false."""
    i, n = locate(home)
    if i == to_host:
        raise sh.Failed("home-%d's vRGW is on %s already" % (home, naming.host(i)))
    if mode == "cold-context" and wait_pool:
        t = template_name(i, n)
        sh.wait_for("a pooled vRGW (%s) on %s" % (t, naming.host(to_host)), lambda: pool_ready(to_host, t) > 0, 600, 2)
    a = api()
    s, v = a.call("POST", "/devices/%s/instances/%d/migrate" % (urllib.parse.quote(naming.device(i)), n),
                  {"target": naming.device(to_host), "mode": mode, "stepTimeout": step_timeout})
    if s != 202:
        raise sh.Failed("NBI refused the migration: HTTP %s %s" % (s, v))
    mid = v["_id"]
    end = time.monotonic() + wait
    seen = None
    while time.monotonic() < end:
        s, r = a.call("GET", "/migrations/" + mid)
        if s == 200:
            if on_step and r.get("step") != seen:
                seen = r.get("step")
                on_step(r)
            if r.get("status") != "running":
                return r
        time.sleep(0.1)
    raise sh.Failed("migration %s still running after %d s" % (mid, wait))


def measured(home, to_host, mode, settle=3.0):
    """One migration with the probe running around it: the record and the home's figures."""
    echo_server()
    p = probe(home, 600)
    time.sleep(settle)
    t0 = time.monotonic()
    try:
        rec = migrate(home, to_host, mode)
    finally:
        # Let a cold-started vRGW boot and the home's traffic come back before stopping.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not homenet.ping(home, gateway(home), 1, 1):
            pass
        time.sleep(settle)
        figures = finish(p)
    figures["wall_s"] = round(time.monotonic() - t0, 2)
    return rec, figures


def measure(runs=5, home=1, modes=MODES, out=None):
    """Each mode `runs` times, back and forth between host 1 and host 2; CSV and summary."""
    out = out or os.path.join(sh.REPO, "docs", "results")
    os.makedirs(out, exist_ok=True)
    rows = []
    for mode in modes:
        for r in range(1, runs + 1):
            i, _ = locate(home)
            to = 2 if i == 1 else 1
            sh.progress("migration " + mode, r, runs, "home-%d from %s to %s" % (home, naming.host(i), naming.host(to)))
            rec, f = measured(home, to, mode)
            rows.append({
                "mode": mode, "run": r, "from": naming.host(i), "to": naming.host(to), "status": rec.get("status"),
                "acs_total_ms": rec.get("total_ms"), "reported_downtime_ms": rec.get("downtime_ms"),
                "pings_sent": f["pings_sent"], "pings_lost": f["pings_lost"], "longest_gap_ms": f["longest_gap_ms"],
                "tcp_survived": f["tcp_survived"], "tcp_longest_stall_ms": f["tcp_longest_stall_ms"],
                "error": rec.get("error", ""),
            })
            sh.say("  %s: %s in %s ms, %s pings lost (longest gap %s ms), TCP %s" % (
                mode, rec.get("status"), rec.get("total_ms"), f["pings_lost"], f["longest_gap_ms"],
                "survived" if f["tcp_survived"] else "broken (%s)" % f["tcp_error"]))
    path = os.path.join(out, "migration.csv")
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)
    summary = summarize(rows)
    sh.write(os.path.join(out, "migration.md"), summary)
    return rows, summary


def med(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return "-"
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2


def summarize(rows):
    lines = ["| mode | runs (ok) | ACS total, ms: median (min-max) | downtime reported, ms: median | "
             "pings lost (10 ms): median (max) | longest gap, ms: median (max) | TCP survived |",
             "|---|---|---|---|---|---|---|"]
    for mode in MODES:
        rs = [r for r in rows if r["mode"] == mode]
        if not rs:
            continue
        ok = [r for r in rs if r["status"] == "completed"]
        tot = [r["acs_total_ms"] for r in ok]
        lines.append("| %s | %d (%d) | %s (%s-%s) | %s | %s (%s) | %s (%s) | %d of %d |" % (
            mode, len(rs), len(ok), med(tot), min(tot) if tot else "-", max(tot) if tot else "-",
            med([r["reported_downtime_ms"] for r in ok]), med([r["pings_lost"] for r in ok]),
            max([r["pings_lost"] for r in ok], default="-"), med([r["longest_gap_ms"] for r in ok]),
            max([r["longest_gap_ms"] for r in ok], default="-"), sum(1 for r in ok if r["tcp_survived"]), len(ok)))
    return "\n".join(lines) + "\n"
