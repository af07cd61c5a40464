"""How long a subscriber waits for a pooled vRGW, step by step (testbed/activation): from the
NBI's addObject to the first DHCP answer in the home, for either flavor.

The home asks all along: a prober in its namespace sends, every 10 ms on a raw socket (udhcpc's
shortest retry is a second), a DHCPDISCOVER and a DHCPREQUEST for an address of the default pool
as a client that rebooted (INIT-REBOOT), and notes the first answer to each: the REQUEST's (an
ACK or a NAK) is when the vRGW's DHCP server first answers; the DISCOVER's OFFER comes after
dnsmasq's check that the address is not in use (it pings it and waits 3 s for a reply,
`PING_WAIT` in its source), which a REQUEST does not wait for. The agent logs how long
its own steps took when it provisions from a pool (rebinding the LAN port on the switch,
redefining the domain, resuming it); the rest of the way to the agent (the ACS's task, the
connection request, the CWMP session up to the set that completes the row) is what remains
between the addObject and the agent's log line. Clocks: the prober and this script read
CLOCK_MONOTONIC, the agent's log is UTC wall clock, compared with this script's wall clock."""

import csv
import datetime
import os
import re
import subprocess
import time

from . import homenet, migrate, naming, nbi, provisioning, sh

PROBER = r"""
import os, random, socket, struct, sys, time
ifname, deadline = sys.argv[1], time.monotonic() + float(sys.argv[2])
mac = open("/sys/class/net/%s/address" % ifname).read().strip()
hw = bytes.fromhex(mac.replace(":", ""))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
s.bind((ifname, 0))
s.setblocking(False)
xid, xid2 = random.getrandbits(32), random.getrandbits(32)

def csum(b):
    if len(b) % 2:
        b += b"\0"
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while t >> 16:
        t = (t & 0xffff) + (t >> 16)
    return ~t & 0xffff

def frame(x, options):
    bootp = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, x, 0, 0x8000, bytes(4), bytes(4), bytes(4),
                        bytes(4), hw + bytes(10), bytes(64), bytes(128)) + bytes([99, 130, 83, 99]) + options + b"\xff"
    udp = struct.pack("!HHHH", 68, 67, 8 + len(bootp), 0) + bootp
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, bytes(4), b"\xff" * 4)
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    return b"\xff" * 6 + hw + b"\x08\x00" + ip + udp

discover = frame(xid, bytes([53, 1, 1]))
request = frame(xid2, bytes([53, 1, 3, 50, 4]) + socket.inet_aton(sys.argv[3]))
seen = {}
next_send = 0.0
while time.monotonic() < deadline:
    now = time.monotonic()
    if now >= next_send:
        if "answer" not in seen:
            s.send(request)
        s.send(discover)
        next_send = now + 0.01
    try:
        data = s.recv(2048)
    except BlockingIOError:
        time.sleep(0.001)
        continue
    p = data[14:]
    if len(p) < 28 or p[9] != 17:
        continue
    l4 = p[(p[0] & 15) * 4:]
    if struct.unpack("!H", l4[2:4])[0] != 68:
        continue
    b = l4[8:]
    if len(b) < 240 or struct.unpack("!I", b[4:8])[0] not in (xid, xid2):
        continue
    opts = b[240:]
    i = 0
    while i + 2 < len(opts) and opts[i] != 255:
        if opts[i] == 53:
            kind = {2: "offer", 5: "answer", 6: "answer"}.get(opts[i + 2])
            if kind and kind not in seen:
                seen[kind] = time.monotonic()
                print("%s %.6f %s" % (kind, seen[kind], socket.inet_ntoa(b[16:20])), flush=True)
            break
        i += 2 + opts[i + 1] if opts[i] != 0 else 1
    if len(seen) == 2:
        sys.exit(0)
print("none", flush=True)
sys.exit(1)
"""

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def prober(home, seconds, address="192.168.1.150"):
    """The prober, started in home `home`'s namespace; read its lines with `answers`."""
    return subprocess.Popen(["ip", "netns", "exec", naming.home_ns(home), "python3", "-c", PROBER, "eth0",
                             str(seconds), address], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def answers(p, timeout):
    """{"answer": monotonic time, "offer": monotonic time, "offered": address} the prober saw."""
    out, err = p.communicate(timeout=timeout)
    got = {}
    for line in out.splitlines():
        w = line.split()
        if len(w) == 3 and w[0] in ("offer", "answer"):
            got[w[0]] = float(w[1])
            if w[0] == "offer":
                got["offered"] = w[2]
    if p.returncode != 0 or "offer" not in got or "answer" not in got:
        raise sh.Failed("the home's prober saw no DHCP answer and offer: %s %s" % (out.strip(), err.strip()[-300:]))
    return got


def provisioned_line(instance, since_wall):
    """The agent's "provisioned from the pool" line for `instance` logged after `since_wall`:
    (wall time, {field: value})."""
    with open(os.path.join(naming.RUN, "agent.log"), errors="replace") as f:
        lines = f.read().splitlines()
    for line in reversed(lines):
        line = ANSI.sub("", line)
        if "provisioned from the pool" not in line:
            continue
        fields = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
        if fields.get("instance") != str(instance):
            continue
        stamp = datetime.datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%fZ")
        wall = stamp.replace(tzinfo=datetime.timezone.utc).timestamp()
        if wall >= since_wall:
            return wall, fields
    raise sh.Failed("no \"provisioned from the pool\" line for instance %d in the agent's log" % instance)


def template_and_pool(api, flavor):
    """(template ref, pool row) of `flavor`'s template on host 1."""
    templates, pools, _ = provisioning.inventory(api, instances=False)
    name = provisioning.TEMPLATE_NAME if flavor == "vm" else provisioning.CT_TEMPLATE_NAME
    t = next((n for n, r in templates.items() if r.get("Name") == name), None)
    if t is None:
        raise sh.Failed("host 1 has no template %s: testbed/up --flavor %s (or mixed) first" % (name, flavor))
    tref = "%sTemplate.%d" % (nbi.VIRT, t)
    p = next((n for n, r in pools.items() if r.get("Template", "").rstrip(".") == tref), None)
    if p is None:
        raise sh.Failed("host 1 has no pool of %s" % name)
    return tref, p


def measure(flavor="container", runs=5, out=None):
    """`runs` activations from a pool of `flavor`'s template on host 1; rows of seconds per step."""
    api = migrate.api()
    tref, pool = template_and_pool(api, flavor)
    pp = "%sPool.%d." % (nbi.VIRT, pool)
    home = max(homenet.load_homes() or {0: None}) + 1
    homenet.home_up(home)
    rows = []
    api.set([(pp + "TargetSize", "1", "xsd:unsignedInt")])
    try:
        for r in range(runs):
            sh.wait_for("a pooled %s ready" % flavor, lambda: migrate.pool_ready(1, name_of(flavor)) > 0, 900, 0.5)
            time.sleep(1.0)
            p = prober(home, 120)
            time.sleep(0.3)  # the prober runs before the clock starts
            t0, wall0 = time.monotonic(), time.time()
            n = api.add(nbi.VIRT + "Instance.", [("Template", tref), ("Subscriber", "activation-%d" % r),
                                                  ("SVLAN", str(naming.SVLAN), "xsd:unsignedInt"),
                                                  ("CVLAN", str(naming.cvlan(home)), "xsd:unsignedInt")])
            t_nbi = time.monotonic() - t0
            got = answers(p, 150)
            t_answer, t_offer = got["answer"], got["offer"]
            wall_done, f = provisioned_line(n, wall0 - 1)
            agent_ms = sum(float(f.get(k, "0")) for k in ("bind_ms", "define_ms", "resume_ms"))
            row = {
                "flavor": flavor, "run": r + 1,
                "acs_and_session_ms": round((wall_done - wall0) * 1000 - agent_ms, 1),
                "switch_ms": float(f.get("bind_ms", "nan")),
                "define_ms": float(f.get("define_ms", "nan")),
                "resume_ms": float(f.get("resume_ms", "nan")),
                "first_answer_ms": round((t_answer - t0) * 1000 - (wall_done - wall0) * 1000, 1),
                "add_to_answer_ms": round((t_answer - t0) * 1000, 1),
                "add_to_offer_ms": round((t_offer - t0) * 1000, 1),
                "nbi_task_ms": round(t_nbi * 1000, 1),
                "offered": got["offered"],
            }
            rows.append(row)
            sh.progress("activation", r + 1, runs, "%s: addObject to the first DHCP answer %.0f ms, to the offer "
                        "%.0f ms" % (flavor, row["add_to_answer_ms"], row["add_to_offer_ms"]))
            api.delete("%sInstance.%d." % (nbi.VIRT, n))
    finally:
        if out:
            os.makedirs(out, exist_ok=True)
            with open(os.path.join(out, "activation-%s.csv" % flavor), "w", newline="") as f:
                w = csv.DictWriter(f, ["flavor", "run", "acs_and_session_ms", "switch_ms", "define_ms", "resume_ms",
                                       "first_answer_ms", "add_to_answer_ms", "add_to_offer_ms", "nbi_task_ms",
                                       "offered"])
                w.writeheader()
                w.writerows(rows)
    return rows


def name_of(flavor):
    return provisioning.TEMPLATE_NAME if flavor == "vm" else provisioning.CT_TEMPLATE_NAME


def median(rows, key):
    xs = sorted(float(r[key]) for r in rows)
    if not xs:
        return float("nan")
    m = len(xs) // 2
    return xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2
