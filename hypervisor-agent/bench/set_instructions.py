#!/usr/bin/env python3
"""Instructions per end-to-end SetParameterValues of one DHCP parameter on one running vRGW.

NBI -> ACS -> CWMP session -> hypervisor agent -> XML-RPC -> vrgw-proxy -> dnsmasq's checker,
nft's checker, new configuration, dnsmasq restarted. Every process of the path (the ACS, the agent,
the proxy and every program the proxy starts: `dnsmasq --test`, `nft`, the restarted dnsmasq) runs
under valgrind's callgrind; counters are zeroed after one warm-up set, SETS sets run, and counters
are dumped; the instructions of every process in that window are summed and divided by SETS.
Valgrind counts instructions, so the figure repeats on a noisy VM where wall-clock time does not.
A dnsmasq that the proxy stops with SIGKILL leaves no profile, so each restarted dnsmasq counts
only for the part of its life inside the window that it is still running at the dump.

usage: hypervisor-agent/bench/set_instructions.py   (root, valgrind, Open vSwitch running, dnsmasq,
nft; builds the release binaries first; SETS=5 by default)
"""

import glob
import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VIRT = "Device.X_VRGW-ORG_Virtualization."
AGENT = "host-instr"
DEVICE = "00A0B1-vRGW%2DHost-host%2Dinstr"  # the ACS's id of agent host-instr (each part escaped)
TAG = os.getpid() % 1000
NS = f"hi{TAG}n"
BR = f"hib{TAG}"
PREFIX = f"hi{TAG}"
SETS = int(os.environ.get("SETS", "5"))


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def callgrind(out, *cmd, children=False):
    vg = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/cg.%p"]
    if children:
        vg.append("--trace-children=yes")
    return vg + list(cmd)


class Bed:
    """The processes and network pieces, removed in any case."""

    def __init__(self, d):
        self.d = d
        self.procs = []

    def close(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        sh("pkill", "-f", f"valgrind.*{self.d}", check=False)
        sh("ip", "netns", "del", NS, check=False)
        sh("ip", "link", "del", BR, check=False)
        for br in ["trunk", "park", "s600"]:
            sh("ovs-vsctl", "--if-exists", "del-br", f"{PREFIX}-{br}", check=False)


def nbi(port, token, method, path, body=None, timeout=600):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:  # not listening yet
        return 0, str(e)


def wait(what, pred, secs):
    end = time.time() + secs
    while time.time() < end:
        if pred():
            return
        time.sleep(0.3)
    sys.exit(f"set_instructions: timed out waiting for {what}")


def task(port, token, body):
    path = f"/devices/{urllib.parse.quote(DEVICE, safe='')}/tasks?connection_request&timeout=300000"
    s, v = nbi(port, token, "POST", path, body)
    if s != 200 or not isinstance(v, dict) or v.get("status") != "done":
        sys.exit(f"set_instructions: task {body['name']} answered {s} {v}")
    return v


def totals(files):
    """Instructions by program (its name and its checking flag, if any), from callgrind's files."""
    by = {}
    for f in files:
        cmd, n = "", None
        with open(f, errors="replace") as fh:
            for line in fh:
                if line.startswith("cmd:"):
                    words = line.split()[1:]
                    cmd = " ".join([os.path.basename(words[0])] + [w for w in words[1:3] if w in ("--test", "-c")])
                m = re.match(r"(?:summary|totals): (\d+)", line)
                if m:
                    n = int(m.group(1))
                    break
        if n is not None:
            count, total = by.get(cmd, (0, 0))
            by[cmd] = (count + 1, total + n)
    return by


def main():
    subprocess.run(["cargo", "build", "-q", "--release", "-p", "acs", "-p", "hypervisor-agent", "-p", "vrgw-proxy"],
                   cwd=ROOT, check=True)
    rel = os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release")
    d = tempfile.mkdtemp(prefix="set-instr-")
    os.chmod(d, 0o700)
    cg = os.path.join(d, "cg")
    os.mkdir(cg)
    bed = Bed(d)
    try:
        run(bed, d, cg, rel)
    finally:
        bed.close()
        if os.environ.get("KEEP"):
            print("kept", d)
        else:
            subprocess.run(["rm", "-rf", d])


def run(bed, d, cg, rel):
    token = os.urandom(16).hex()
    acs_port, nbi_port = 17600 + TAG % 100, 17700 + TAG % 100
    cfg = os.path.join(d, "acs.toml")
    fd = os.open(cfg, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, f"""[cwmp]
listen = "127.0.0.1:{acs_port}"
[[cwmp.cpe_credentials]]
username = "{AGENT}"
password = "host-{token}"
device = "{DEVICE}"
[nbi]
listen = "127.0.0.1:{nbi_port}"
tokens = ["{token}"]
[store]
db = "{d}/acs.db"
[portal]
listen = "off"
""".encode())
    os.close(fd)
    log = open(os.path.join(d, "acs.log"), "w")
    bed.procs.append(subprocess.Popen(callgrind(cg, f"{rel}/acs", "--config", cfg), stdout=log, stderr=log))
    wait("the ACS", lambda: nbi(nbi_port, token, "GET", "/devices", timeout=2)[0] == 200, 120)

    agent_cfg = os.path.join(d, "agent.toml")
    fd = os.open(agent_cfg, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, f"""acs_url = "http://127.0.0.1:{acs_port}/"
acs_username = "{AGENT}"
acs_password = "host-{token}"
cr_listen = "127.0.0.1:0"
cr_username = "acs"
cr_password = "cr-{token}"
db = "{d}/agent.db"
agent_id = "{AGENT}"
libvirt = "test:///default"
ovs_prefix = "{PREFIX}"
port_prefix = "{PREFIX}"
mgmt_network = "10.248.0.0/16"
overlay_dir = "{d}/overlays"
download_dir = "{d}/downloads"
""".encode())
    os.close(fd)
    alog = open(os.path.join(d, "agent.log"), "w")
    bed.procs.append(subprocess.Popen(callgrind(cg, f"{rel}/hypervisor-agent", "--config", agent_cfg),
                                      stdout=subprocess.DEVNULL, stderr=alog, env={**os.environ, "RUST_LOG": "info"}))
    q = urllib.parse.quote(json.dumps({"_id": DEVICE}))
    wait("the agent's Inform", lambda: nbi(nbi_port, token, "GET", f"/devices?query={q}", timeout=5)[1] not in ([], None),
         300)
    v = task(nbi_port, token, {"name": "addObject", "objectName": f"{VIRT}Template.",
                               "parameterValues": [["Image", "/var/lib/vrgw/images/small"]]})
    template = f"{VIRT}Template.{v['result']['instance']}"
    task(nbi_port, token, {"name": "addObject", "objectName": f"{VIRT}Instance.",
                           "parameterValues": [["Template", template], ["SVLAN", "600", "xsd:unsignedInt"],
                                               ["CVLAN", "1", "xsd:unsignedInt"]]})

    # The vRGW "boots": a namespace with its management address and its proxy (as in the
    # fleet_proxies bench).
    con = sqlite3.connect(os.path.join(d, "agent.db"))
    inst, addr, secret = con.execute("SELECT instance, mgmt_address, secret FROM slots WHERE instance IS NOT NULL").fetchone()
    con.close()
    ip = addr.split("/")[0]
    sh("ip", "link", "add", BR, "type", "bridge")
    sh("ip", "addr", "add", "10.248.0.1/16", "dev", BR)
    sh("ip", "link", "set", BR, "up")
    sh("ip", "netns", "add", NS)
    sh("ip", "link", "add", f"hi{TAG}v", "type", "veth", "peer", "name", "eth0", "netns", NS)
    sh("ip", "link", "set", f"hi{TAG}v", "master", BR, "up")
    sh("ip", "-n", NS, "addr", "add", f"{ip}/16", "dev", "eth0")
    for dev in ["eth0", "lo"]:
        sh("ip", "-n", NS, "link", "set", dev, "up")
    sh("ip", "-n", NS, "link", "add", "lan0", "type", "veth", "peer", "name", "home0")
    sh("ip", "-n", NS, "link", "set", "home0", "up")
    vd = os.path.join(d, "vrgw")
    os.mkdir(vd, 0o700)
    fd = os.open(os.path.join(vd, "secret"), os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, secret.encode())
    os.close(fd)
    plog = open(os.path.join(vd, "proxy.log"), "w")
    bed.procs.append(subprocess.Popen(
        ["ip", "netns", "exec", NS] + callgrind(cg, f"{rel}/vrgw-proxy", "--listen", f"{ip}:8730", "--secret-file",
                                                f"{vd}/secret", "--state-dir", f"{vd}/state", "--run-dir", f"{vd}/run",
                                                "--lan-if", "lan0", "--wan-if", "wan0", "--instance-id", f"f{inst}",
                                                children=True),
        stdout=subprocess.DEVNULL, stderr=plog))
    ssid = "".join(f"{b:02x}" for b in f"vrgw-{inst}".encode())
    conf = os.path.join(vd, "run", "hostapd.conf")
    wait("the profile pushed to the proxy",
         lambda: os.path.exists(conf) and f"ssid2={ssid}\n" in open(conf).read(), 600)

    name = f"{VIRT}Instance.{inst}.Device.DHCPv4.Server.Pool.1.LeaseTime"

    def set_once(i):
        task(nbi_port, token, {"name": "setParameterValues", "parameterValues": [[name, str(7200 + i), "xsd:int"]]})
        dconf = open(os.path.join(vd, "run", "dnsmasq.conf")).read()
        if f",{7200 + i}" not in dconf:
            sys.exit(f"set_instructions: dnsmasq's configuration lacks the lease time {7200 + i}:\n{dconf}")

    set_once(0)
    time.sleep(2)
    before = set(glob.glob(os.path.join(cg, "*")))
    subprocess.run(["callgrind_control", "-z"], check=True, capture_output=True)
    t0 = time.time()
    for i in range(1, SETS + 1):
        set_once(i)
    time.sleep(1)
    subprocess.run(["callgrind_control", "-d"], check=True, capture_output=True)
    time.sleep(2)
    window = [f for f in glob.glob(os.path.join(cg, "*")) if f not in before]
    by = totals(window)
    n = sum(total for _, total in by.values())
    print(f"{SETS} sets in {time.time() - t0:.1f} s under callgrind; {len(window)} profiles")
    for cmd, (count, total) in sorted(by.items(), key=lambda kv: -kv[1][1]):
        print(f"  {cmd:<36} {count / SETS:5.1f} runs per set  {total // SETS:>14,} instructions per set")
    print(f"instructions per end-to-end SetParameterValues of one DHCP parameter: {n // SETS:,}")


if __name__ == "__main__":
    main()
