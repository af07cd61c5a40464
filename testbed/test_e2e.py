#!/usr/bin/env python3
"""End to end on the testbed: four homes, two on vRGW VMs under libvirt/QEMU and two on vRGW
containers under libvirt LXC, Q-in-Q through Open vSwitch, two hosts, everything driven through the
ACS's NBI as an OSS would.

It runs testbed/down first and last (also when something fails), so it replaces a testbed that
was up. Needs root. `VRGW_TESTBED_PROFILE=debug` uses debug builds (scripts/test does).
"""

import csv
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tb import (  # noqa: E402
    bringup, daemons, homenet, image, migrate, naming, nbi, pki, plumbing, provisioning, services, sh, status,
    teardown)

INST = nbi.VIRT + "Instance."
HERE = os.path.dirname(os.path.abspath(__file__))


def in_range(ip, lo, hi):
    return ipaddress.ip_address(lo) <= ipaddress.ip_address(ip) <= ipaddress.ip_address(hi)


def read_csv(folder, name):
    with open(os.path.join(folder, name), newline="") as f:
        return list(csv.DictReader(f))


def leftovers():
    """What of the testbed's is still on the machine."""
    left = []
    left += [n for n in sh.run(["ip", "netns", "list"], check=False).split() if n.startswith("tb-")]
    for line in sh.run(["ip", "-o", "link", "show"], check=False).splitlines():
        name = line.split(":")[1].strip().split("@")[0]
        if name.startswith(("tb-", naming.HOST)):
            left.append(name)
    left += [b for b in sh.run(["ovs-vsctl", "list-br"], check=False).split() if b.startswith(("tb-", naming.HOST))]
    left += [d for d in sh.run(["virsh", "-c", naming.LIBVIRT, "list", "--all", "--name"], check=False).split()
             if d.startswith(naming.HOST + "-")]
    if os.path.exists(naming.PKI):
        left.append(naming.PKI)
    # Containers' roots and their controllers.
    with open("/proc/self/mountinfo") as f:
        left += [l.split()[4] for l in f if l.split()[4].startswith(naming.OVERLAYS)]
    left += ["libvirt_lxc %s" % p for p in sh.run(["pgrep", "-f", "libvirt_lxc"], check=False).split() if running(p)]
    for f in ["acs.pid"] + ["%s.pid" % naming.agent_name(i) for i in range(1, naming.MAX_HOSTS + 1)] + \
            ["libvirt-%s.pid" % naming.host(i) for i in range(1, naming.MAX_HOSTS + 1)]:
        if daemons.pid_alive(os.path.join(naming.RUN, f)):
            left.append(f)
    return left


def running(pid):
    """Whether process `pid` runs: not gone, not a zombie (an exited controller whose parent, a
    killed libvirtd, left it to init to reap: it holds nothing but its number)."""
    try:
        return sh.read("/proc/%s/stat" % pid).rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


HOMES = 4
# Each home and the other home of its flavor (1 and 2 on VMs, 3 and 4 on containers).
PAIR = {1: 2, 2: 1, 3: 4, 4: 3}


class Testbed(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        sh.need_root()
        teardown.down()
        cls.addClassCleanup(teardown.down)
        # Homes 1 and 2 on VMs, homes 3 and 4 on containers (mixed: a template and a pool of each
        # flavor on each host).
        cls.api = bringup.up(homes=HOMES, pool=1, lease_timeout=300, hosts=2, flavor="mixed")
        cls.inst = {k: h["instance"] for k, h in homenet.load_homes().items()}

    def hosts_of(self, home):
        """MAC addresses in vRGW `home`'s lease table, through the data model."""
        i = self.inst[home]
        v = self.api.get(["%s%d.Device.Hosts.Host." % (INST, i)])
        return {val.lower() for name, val in v.items() if name.endswith(".PhysAddress")}

    def test_0_libvirt_hosts_take_only_the_testbeds_client_certificate(self):
        """Each host's libvirtd: nothing on TCP, TLS only, and only a client certificate that the
        testbed's CA signed for the one allowed subject. A refused client reads no confirmation
        byte (libvirt sends 1 after it accepts a client's certificate)."""
        ca_cert = os.path.join(pki.ca_dir(), "cacert.pem")
        tmp = tempfile.mkdtemp(prefix="tb-rogue-")
        self.addCleanup(shutil.rmtree, tmp, True)
        # A client certificate with the allowed subject from another CA (it trusts the testbed's
        # CA for the server), and one from the testbed's CA with another subject.
        rogue_ca = pki.make_ca(os.path.join(tmp, "ca"), "/CN=not the testbed's CA")
        foreign = pki.client_into(os.path.join(tmp, "foreign"), rogue_ca, "/" + naming.CLIENT_DN, (ca_cert,))
        other_dn = pki.client_into(os.path.join(tmp, "other-dn"), pki.make_ca(pki.ca_dir()), "/CN=someone-else")
        for i in (1, 2):
            addr = naming.host_addr(i)
            # The agents' URI works.
            self.assertIn("QEMU", sh.run(["virsh", "-c", naming.host_uri(i), "version"], timeout=30))
            self.assertEqual(self.tls_confirmation(addr, naming.CLIENT_PKI, True), b"\x01")
            # Plain TCP: nothing listens.
            p = subprocess.run(["virsh", "-c", "qemu+tcp://%s/system" % addr, "list"], capture_output=True, text=True,
                               timeout=30)
            self.assertNotEqual(p.returncode, 0, p.stdout)
            self.assertIn("Connection refused", p.stderr)
            # TLS without a client certificate, with a foreign one, with another subject: the
            # handshake is refused or the connection closed without a confirmation.
            self.assertNotEqual(self.tls_confirmation(addr, naming.CLIENT_PKI, False), b"\x01")
            for folder in (foreign, other_dn):
                self.assertNotEqual(self.tls_confirmation(addr, folder, True), b"\x01", folder)
                p = subprocess.run(["virsh", "-c", "qemu+tls://%s/system?pkipath=%s" % (addr, folder), "list"],
                                   capture_output=True, text=True, timeout=30)
                self.assertNotEqual(p.returncode, 0, (folder, p.stdout))
                # Refused by the server after the handshake, not by the client's own checks.
                self.assertIn("TLS confirmation", p.stderr, folder)

    @staticmethod
    def tls_confirmation(addr, folder, with_cert):
        """The first byte libvirtd sends a TLS client holding `folder`'s certificates (none
        unless `with_cert`): b"\\x01" when it accepts the client, b"" or an error when not."""
        ctx = ssl.create_default_context(cafile=os.path.join(folder, "cacert.pem"))
        if with_cert:
            ctx.load_cert_chain(os.path.join(folder, "clientcert.pem"), os.path.join(folder, "clientkey.pem"))
        try:
            with socket.create_connection((addr, naming.LIBVIRT_TLS_PORT), timeout=10) as s:
                with ctx.wrap_socket(s, server_hostname=addr) as t:
                    return t.recv(1)
        except (OSError, ssl.SSLError) as e:
            return repr(e).encode()

    def test_1_each_home_gets_its_lease_from_its_own_vrgw_over_qinq(self):
        macs = {k: homenet.home_mac(k) for k in PAIR}
        for k in PAIR:
            lease = homenet.read_lease(k)
            self.assertIsNotNone(lease, "home %d has no lease" % k)
            self.assertEqual(lease["mac"], macs[k])
            self.assertTrue(in_range(lease["ip"], "192.168.1.100", "192.168.1.199"), lease)
            self.assertEqual(lease["router"], "192.168.1.1")
            hosts = self.hosts_of(k)
            self.assertIn(macs[k], hosts, "vRGW of home %d does not list it among its hosts" % k)
            self.assertNotIn(macs[PAIR[k]], hosts, "vRGW of home %d leased to home %d" % (k, PAIR[k]))
        # The trunk carries the home's frames with an 802.1ad outer tag (S-VLAN) over an 802.1Q
        # inner tag (its C-VLAN).
        cap = subprocess.Popen(["tcpdump", "-enli", naming.AN_TRUNK], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
        time.sleep(1)
        self.assertTrue(homenet.ping(2, "192.168.1.1", count=3))
        cap.terminate()
        out, _ = cap.communicate(timeout=20)
        self.assertIn("ethertype 802.1Q-QinQ (0x88a8), length", out)
        self.assertIn("vlan %d, p 0, ethertype 802.1Q (0x8100), vlan %d," % (naming.SVLAN, naming.cvlan(2)), out)

    def test_2_homes_reach_the_internet_through_their_vrgws_nat(self):
        # The internet namespace has no route to 192.168.1.0/24: only NAT brings replies back.
        self.assertNotIn("192.168.1.", sh.run(["ip", "route"], netns=naming.INET_NS))
        for k in PAIR:
            # A vRGW serves its LAN as soon as its proxy runs; its WAN lease may come a little later.
            sh.wait_for("home %d reaching the internet" % k, lambda: homenet.ping(k, naming.INET_ADDR, wait=2), 30, 0.5)

    def test_3_homes_cannot_reach_each_other(self):
        ips = {k: homenet.read_lease(k)["ip"] for k in PAIR}
        for k in (1, 3):
            self.assertTrue(homenet.ping(k, "192.168.1.1"), "control: home %d reaches its own vRGW" % k)
        # VM to VM, VM to container, container to VM, container to container.
        for a, b in ((1, 2), (2, 1), (1, 3), (3, 1), (3, 4), (4, 3)):
            self.assertFalse(homenet.ping(a, ips[b], count=2), "home %d reached home %d's address" % (a, b))

    def test_4_a_pool_change_through_the_nbi_shows_in_that_homes_next_lease_only(self):
        before2 = homenet.read_lease(2)["ip"]
        pool = "%s%d.Device.DHCPv4.Server.Pool.1." % (INST, self.inst[1])
        self.api.set([(pool + "MinAddress", "192.168.1.50"), (pool + "MaxAddress", "192.168.1.59")])
        got = self.api.get([pool + "MinAddress", pool + "MaxAddress"])
        self.assertEqual(got[pool + "MaxAddress"], "192.168.1.59")
        lease1 = homenet.dhcp(1, timeout=60)
        self.assertIsNotNone(lease1, "home 1 got no lease after the change")
        self.assertTrue(in_range(lease1["ip"], "192.168.1.50", "192.168.1.59"), lease1)
        lease2 = homenet.dhcp(2, timeout=60)
        self.assertIsNotNone(lease2)
        self.assertTrue(in_range(lease2["ip"], "192.168.1.100", "192.168.1.199"), lease2)
        self.assertEqual(lease2["ip"], before2, "home 2 keeps its address")

    def test_4b_a_vrgw_managed_as_a_virtual_device_is_configured_by_its_own_device_id(self):
        """Home 2's vRGW managed as a CWMP device of its own too (TR-069 Annex J.2 beside J.3): it
        bootstraps under its subscriber's DeviceId with ProxierInfo naming its host, and a pool set
        through that DeviceId (no host path in sight) shows in home 2's next lease."""
        row = "%s%d." % (INST, self.inst[2])
        sub = self.api.get([row + "Subscriber"])[row + "Subscriber"]
        self.api.set([(row + "ManagementMode", "Both")])
        vd = nbi.Nbi(self.api.base, self.api.token, naming.device_id("00A0B1", "vRGW", sub))
        sh.wait_for("the vRGW registering as a device of its own", vd.device_known, 60)
        pool = "Device.DHCPv4.Server.Pool.1."
        proxier = "Device.DeviceInfo.ProxierInfo.SerialNumber"
        try:
            vd.set([(pool + "MinAddress", "192.168.1.60"), (pool + "MaxAddress", "192.168.1.69")])
            got = vd.get([pool + "MaxAddress", proxier, "Device.DeviceInfo.SerialNumber"])
            self.assertEqual(got[pool + "MaxAddress"], "192.168.1.69")
            self.assertEqual(got["Device.DeviceInfo.SerialNumber"], sub)
            self.assertEqual(got[proxier], naming.host(1))
            lease = homenet.dhcp(2, timeout=60)
            self.assertIsNotNone(lease, "home 2 got no lease after the change")
            self.assertTrue(in_range(lease["ip"], "192.168.1.60", "192.168.1.69"), lease)
            # The subscriber's web-form settings now go to their virtual device.
            s, subs = self.api.call("GET", "/subscribers")
            self.assertEqual(s, 200)
            self.assertEqual([x.get("gateway") for x in subs if x["_id"] == sub], [vd.device])
            # A firmware Download to that DeviceId: the vRGW is rebuilt from the new image (its
            # SoftwareVersion names the new release) and keeps its settings (the pool above).
            version = "Device.DeviceInfo.SoftwareVersion"
            self.assertTrue(vd.get([version])[version].endswith("+tb.1"), "the image's own release")
            fw = image.firmware_variant(image.image_dir(), "tb.2")
            self.assertEqual(vd.put_file("vrgw-tb.2.img", fw, "1 Firmware Upgrade Image", "00A0B1", "vRGW"), 200)
            vd.task({"name": "download", "file": "vrgw-tb.2.img"}, timeout_ms=180000)

            def running_tb2():
                try:
                    return vd.get([version]).get(version, "").endswith("+tb.2")
                except sh.Failed:
                    return False  # its session came while the vRGW restarted
            sh.wait_for("the vRGW answering on its new firmware", running_tb2, 120, 2)
            lease = homenet.dhcp(2, timeout=90)
            self.assertIsNotNone(lease, "home 2 got no lease from the rebuilt vRGW")
            self.assertTrue(in_range(lease["ip"], "192.168.1.60", "192.168.1.69"), lease)
        finally:
            # Back as it was, for the tests after this one: embedded only, settings through the host.
            vd.set([(pool + "MinAddress", "192.168.1.100"), (pool + "MaxAddress", "192.168.1.199")])
            self.api.set([(row + "ManagementMode", "Embedded")])
            self.api.call("PUT", "/subscribers/" + sub, {"gateway": None})
        lease = homenet.dhcp(2, timeout=60)
        self.assertIsNotNone(lease)
        self.assertTrue(in_range(lease["ip"], "192.168.1.100", "192.168.1.199"), lease)

    def test_5_a_vrgw_suspended_through_the_data_model_stops_answering_until_resumed(self):
        i = self.inst[1]
        self.api.set([("%s%d.RequestedState" % (INST, i), "Suspended")])
        self.assertEqual(self.api.get(["%s%d.Status" % (INST, i)])["%s%d.Status" % (INST, i)], "Suspended")
        self.assertFalse(homenet.ping(1, "192.168.1.1", count=3), "a suspended vRGW answered")
        self.assertTrue(homenet.ping(2, "192.168.1.1"), "the other home's vRGW keeps answering")
        self.api.set([("%s%d.RequestedState" % (INST, i), "Running")])
        sh.wait_for("home 1's vRGW answering again", lambda: homenet.ping(1, "192.168.1.1"), 30, 0.5)
        self.assertEqual(self.api.get(["%s%d.Status" % (INST, i)])["%s%d.Status" % (INST, i)], "Running")

    def test_5c_a_container_vrgw_serves_its_home_as_a_vm_does(self):
        """Home 3's vRGW is a container (its template's Flavor is Container: libvirt's LXC driver,
        the same image's files as its root, the host's kernel), managed through the same data
        model: its lease over Q-in-Q, a DHCP change through the NBI, suspend and resume, a live
        migration refused with the reason, cold image-based and context-based migrations that
        keep its settings."""
        i = self.inst[3]
        row = "%s%d." % (INST, i)
        dom = self.api.get([row + "Domain"])[row + "Domain"]
        self.assertEqual(status.domains_of(1, ("container",)).get(dom), "running")
        self.assertNotIn(dom, status.domains_of(1, ("vm",)))
        # Its limits: the template's memory as its cgroup's, and its process limit (which libvirt's
        # XML cannot say: the agent writes it).
        cg = [d for d in os.listdir("/sys/fs/cgroup/memory/machine") if d.endswith("-%s.libvirt-lxc" % dom)]
        self.assertEqual(len(cg), 1, cg)
        self.assertEqual(sh.read("/sys/fs/cgroup/pids/vrgw/%s/pids.max" % dom).strip(), "256")
        inside = sh.read("/sys/fs/cgroup/pids/vrgw/%s/cgroup.procs" % dom).split()
        self.assertEqual(sorted(inside), sorted(sh.read("/sys/fs/cgroup/memory/machine/%s/cgroup.procs" % cg[0]).split()))
        self.assertGreaterEqual(len(inside), 3, "init, the proxy, dnsmasq")
        limit = sh.read("/sys/fs/cgroup/memory/machine/%s/memory.limit_in_bytes" % cg[0]).strip()
        self.assertEqual(int(limit), provisioning.CT_MEMORY_KIB * 1024)
        mac = homenet.home_mac(3)
        lease = homenet.read_lease(3)
        self.assertIsNotNone(lease, "home 3 has no lease")
        self.assertEqual(lease["mac"], mac)
        self.assertTrue(in_range(lease["ip"], "192.168.1.100", "192.168.1.199"), lease)
        hosts = self.hosts_of(3)
        self.assertIn(mac, hosts)
        self.assertNotIn(homenet.home_mac(1), hosts)
        self.assertTrue(homenet.ping(3, naming.INET_ADDR, wait=2), "home 3 reaches the internet through its NAT")
        # A DHCP change through the NBI shows in its next lease, and not in the other container's.
        before4 = homenet.read_lease(4)["ip"]
        pool = row + "Device.DHCPv4.Server.Pool.1."
        self.api.set([(pool + "MinAddress", "192.168.1.70"), (pool + "MaxAddress", "192.168.1.79")])
        lease = homenet.dhcp(3, timeout=60)
        self.assertIsNotNone(lease, "home 3 got no lease after the change")
        self.assertTrue(in_range(lease["ip"], "192.168.1.70", "192.168.1.79"), lease)
        lease4 = homenet.dhcp(4, timeout=60)
        self.assertIsNotNone(lease4, "home 4 got no lease")
        self.assertEqual(lease4["ip"], before4, "home 4 keeps its address")
        # Suspended (frozen) and resumed through the data model.
        self.api.set([(row + "RequestedState", "Suspended")])
        self.assertEqual(self.api.get([row + "Status"])[row + "Status"], "Suspended")
        self.assertEqual(status.domains_of(1, ("container",)).get(dom), "paused")
        self.assertFalse(homenet.ping(3, "192.168.1.1", count=3), "a suspended container answered")
        self.api.set([(row + "RequestedState", "Running")])
        sh.wait_for("home 3's vRGW answering again", lambda: homenet.ping(3, "192.168.1.1"), 30, 0.5)
        # Live: refused with the reason, and it stays where it runs.
        rec = migrate.migrate(3, 2, "live")
        self.assertEqual(rec["status"], "failed", rec)
        self.assertIn("cannot migrate live", rec.get("error", ""), rec)
        self.assert_one_place(3, 1)
        # Cold, image-based to host 2, then context-based back: the settings travel.
        rec = migrate.migrate(3, 2, "cold-image")
        self.assertEqual(rec["status"], "completed", rec)
        n2 = self.assert_one_place(3, 2)
        moved = "%s%d.Device.DHCPv4.Server.Pool.1." % (INST, n2)
        on2 = nbi.Nbi(self.api.base, self.api.token, naming.device(2))
        self.assertEqual(on2.get([moved + "MaxAddress"])[moved + "MaxAddress"], "192.168.1.79")
        self.assertTrue(in_range(homenet.read_lease(3)["ip"], "192.168.1.70", "192.168.1.79"))
        rec = migrate.migrate(3, 1, "cold-context")
        self.assertEqual(rec["status"], "completed", rec)
        n1 = self.assert_one_place(3, 1)
        self.assertTrue(in_range(homenet.read_lease(3)["ip"], "192.168.1.70", "192.168.1.79"))
        back = "%s%d." % (INST, n1)
        dom = self.api.get([back + "Domain"])[back + "Domain"]
        self.assertEqual(status.domains_of(1, ("container",)).get(dom), "running")
        self.inst[3] = n1

    def test_6_a_subscriber_changes_pool_and_ssid_on_the_web_form(self):
        # Playwright (npm) drives Debian's Chromium through the form; then the change is checked
        # where it lands: the home's next lease, and the vRGW's data model through the NBI.
        here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "portal-test")
        if not os.path.isdir(os.path.join(here, "node_modules", "playwright-core")):
            sh.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=here, timeout=600)
        shots = os.environ.get("VRGW_PORTAL_SHOTS", "")
        env = dict(os.environ, PORTAL="http://127.0.0.1:%d" % naming.PORTAL_PORT, USERNAME="home-1",
                   PASSWORD=provisioning.portal_password(1), POOL_MIN="192.168.1.60", POOL_MAX="192.168.1.69",
                   SSID="home-1-via-web", SHOTS=shots)
        p = subprocess.run(["node", "portal.mjs"], cwd=here, env=env, capture_output=True, text=True, timeout=300)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        lease = homenet.dhcp(1, timeout=60)
        self.assertIsNotNone(lease)
        self.assertTrue(in_range(lease["ip"], "192.168.1.60", "192.168.1.69"), lease)
        ssid = "%s%d.Device.WiFi.SSID.1.SSID" % (INST, self.inst[1])
        self.assertEqual(self.api.get([ssid])[ssid], "home-1-via-web")
        other = "%s%d.Device.WiFi.SSID.1.SSID" % (INST, self.inst[2])
        self.assertNotEqual(self.api.get([other])[other], "home-1-via-web")

    def test_7_the_measurement_runs_short_and_writes_its_tables_and_plots(self):
        out = tempfile.mkdtemp(prefix="tb-measure-")
        self.addCleanup(shutil.rmtree, out, True)
        p = subprocess.run([os.path.join(HERE, "measure"), "--n", "1,2", "--duration", "3", "--mgmt-runs", "1",
                            "--pool-fill", "2", "--out", out], capture_output=True, text=True, timeout=1800)
        self.assertEqual(p.returncode, 0, p.stdout[-3000:] + p.stderr[-3000:])
        flows = read_csv(out, "flows.csv")
        for profile in ("average", "high"):
            for n, homes in ((1, {1}), (2, {1, 2})):
                got = [r for r in flows if r["profile"] == profile and int(r["n"]) == n]
                self.assertEqual({(int(r["home"]), r["service"]) for r in got},
                                 {(h, s) for h in homes for s in ("internet", "telephony", "sdtv", "hdtv")})
                for r in got:
                    # A flow either carried traffic or says why not (iperf3 itself can give up
                    # when two TCG guests saturate two cores).
                    self.assertTrue(float(r["mbps"]) > 0 or r["error"], r)
                    if r["service"] != "internet" and not r["error"]:
                        self.assertNotEqual(r["loss_percent"], "", r)
        carried = [r for r in flows if float(r["mbps"]) > 0]
        self.assertGreaterEqual(len(carried), 0.75 * len(flows), flows)
        # Full-size TCP segments cross the Q-in-Q trunk (two tags over a 1500-byte packet).
        self.assertTrue(any(r["service"] == "internet" and float(r["mbps"]) > 1 for r in flows), flows)
        host = read_csv(out, "host.csv")
        self.assertEqual(len(host), 4)
        self.assertTrue(all(0 < float(r["host_cpu_percent"]) <= 100 for r in host), host)
        vms = read_csv(out, "vrgw.csv")
        self.assertEqual(len(vms), 2 * (1 + 2), vms)
        self.assertTrue(all(int(r["memory_kib"]) > 50000 for r in vms), vms)
        mgmt = {r["measure"]: r for r in read_csv(out, "management.csv")}
        for m in ("add_to_first_lease_cold", "add_to_first_lease_pool", "set_to_new_range_served", "fill_pool_2"):
            self.assertGreater(float(mgmt[m]["seconds"]), 0, m)
        for m in ("agent_rss_kib", "acs_rss_kib", "proxy_rss_kib", "proxy_dnsmasq_rss_kib"):
            self.assertGreater(int(mgmt[m]["detail"]), 0, m)
        for png in ("throughput-average", "throughput-high", "loss-average", "host-cpu", "vrgw-cpu", "vrgw-memory"):
            with open(os.path.join(out, png + ".png"), "rb") as f:
                self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n", png)

    # ------------------------------------------------------------ migration between two hosts

    def assert_one_place(self, home, host):
        """Home `home`'s vRGW is reported by exactly `host`, runs there, and serves the home."""
        w = provisioning.where(self.api)
        self.assertEqual(w.get("home-%d" % home, (None,))[0], host, w)
        reported = [i for i in (1, 2) for sub, (j, _, _) in w.items() if sub == "home-%d" % home and j == i]
        self.assertEqual(reported, [host])
        _, n, row = w["home-%d" % home]
        self.assertEqual(row.get("Status"), "Running", row)
        self.assertEqual(status.domains_of(host).get(row.get("Domain")), "running", (row, status.domains_of(host)))
        self.assertTrue(homenet.ping(home, migrate.gateway(home), 3, 2), "home %d cannot reach its vRGW" % home)
        lease = homenet.dhcp(home, timeout=30)
        self.assertIsNotNone(lease, "no lease for home %d from its vRGW on %s" % (home, naming.host(host)))
        return n

    def ssid(self, host, n):
        a = nbi.Nbi(self.api.base, self.api.token, naming.device(host))
        key = "%s%d.Device.WiFi.SSID.1.SSID" % (INST, n)
        return a.get([key])[key]

    def test_7m1_live_migration_keeps_the_home_connected(self):
        i, n = migrate.locate(1)
        self.assertEqual(i, 1)
        ssid = self.ssid(1, n)
        rec, f = migrate.measured(1, 2, "live")
        self.assertEqual(rec["status"], "completed", rec)
        self.assertTrue(f["tcp_survived"], f)
        self.assertLess(f["longest_gap_ms"], 3000, f)
        m = self.assert_one_place(1, 2)
        self.assertEqual(self.ssid(2, m), ssid, "the configuration did not travel")
        self.assert_one_place(2, 1)

    def test_7m2_cold_image_and_cold_context_move_it_with_its_settings(self):
        i, n = migrate.locate(1)
        ssid = self.ssid(i, n)
        rec, f = migrate.measured(1, 1 if i == 2 else 2, "cold-image")
        self.assertEqual(rec["status"], "completed", rec)
        i2 = 1 if i == 2 else 2
        m = self.assert_one_place(1, i2)
        self.assertEqual(self.ssid(i2, m), ssid)
        # Context-based: a pooled vRGW on the other host takes the configuration: the
        # subscriber's web-form profile (the ACS applies it again) and what the operator set
        # (copied from the running vRGW).
        lease_time = "%s%d.Device.DHCPv4.Server.Pool.1.LeaseTime" % (INST, m)
        nbi.Nbi(self.api.base, self.api.token, naming.device(i2)).set([(lease_time, "7260", "xsd:int")])
        rec, f = migrate.measured(1, i, "cold-context")
        self.assertEqual(rec["status"], "completed", rec)
        self.assertGreater(rec.get("copied_parameters", 0), 0, rec)
        k = self.assert_one_place(1, i)
        self.assertEqual(self.ssid(i, k), ssid)
        key = "%s%d.Device.DHCPv4.Server.Pool.1.LeaseTime" % (INST, k)
        self.assertEqual(nbi.Nbi(self.api.base, self.api.token, naming.device(i)).get([key])[key], "7260")
        self.assert_one_place(2, 1)

    def test_7m3_failures_leave_the_vrgw_where_it_ran(self):
        i, _ = migrate.locate(1)
        other = 1 if i == 2 else 2
        a = nbi.Nbi(self.api.base, self.api.token, naming.device(other))
        pool = "%sPool.1.TargetSize" % nbi.VIRT
        # Destination pool empty.
        a.set([(pool, "0", "xsd:unsignedInt")])
        sh.wait_for("the pool of %s drained" % naming.host(other),
                    lambda: a.get(["%sPool.1.Ready" % nbi.VIRT])["%sPool.1.Ready" % nbi.VIRT] == "0", 120, 1)
        rec = migrate.migrate(1, other, "cold-context", wait_pool=False)
        self.assertEqual(rec["status"], "failed", rec)
        self.assertIn("pool is empty", rec.get("error", ""))
        self.assert_one_place(1, i)
        a.set([(pool, "1", "xsd:unsignedInt")])
        # Destination unreachable: its agent is down; the step times out and nothing runs later.
        daemons.kill(os.path.join(naming.RUN, naming.agent_name(other) + ".pid"), naming.agent_name(other))
        rec = migrate.migrate(1, other, "live", step_timeout=5)
        self.assertEqual(rec["status"], "failed", rec)
        self.assertIn("did not answer", rec.get("error", ""))
        daemons.agent_up(other)
        nbi.wait_device(a)
        self.assert_one_place(1, i)
        # The source's agent killed once the migration reached it, started again 2 s later.
        killed = {}
        agent_bin = daemons.binaries()[1]

        def on_step(r):
            if r.get("step") == "starting at the source" and not killed:
                pid = daemons.pid_alive(os.path.join(naming.RUN, naming.agent_name(i) + ".pid"))
                os.kill(pid, signal.SIGKILL)
                killed["at"] = time.monotonic()

        def restart():
            while not killed:
                time.sleep(0.05)
            time.sleep(2)
            daemons.agent_up(i, agent_bin)
        t = threading.Thread(target=restart)
        t.start()
        rec = migrate.migrate(1, other, "live", on_step=on_step)
        t.join()
        self.assertTrue(killed, rec)
        self.assertIn(rec["status"], ("completed", "failed"), rec)
        where = other if rec["status"] == "completed" else i
        self.assert_one_place(1, where)
        self.assert_one_place(2, 1)

    def test_7m4_a_migration_that_asks_for_tls_sends_qemus_stream_in_tls(self):
        """Each host's QEMUs have certificates of the testbed's CA (qemu.conf's
        migrate_tls_x509_cert_dir, the source's client certificate checked): a live migration
        asked for with VIR_MIGRATE_TLS (virsh --tls here; the agent does not ask for it) opens
        QEMU's stream to the destination's migration ports with a TLS handshake record. Without
        --tls the stream starts with QEMU's own header and this capture sees nothing."""
        img = image.image_dir()
        xml = ("<domain type='qemu'><name>tb-tlstest</name><memory unit='MiB'>96</memory><vcpu>1</vcpu>"
               "<os><type arch='x86_64' machine='pc'>hvm</type><kernel>%s</kernel><initrd>%s</initrd>"
               "<cmdline>console=ttyS0 quiet</cmdline></os><devices><serial type='pty'/></devices></domain>"
               % (os.path.join(img, "vmlinuz"), os.path.join(img, "initrd.img")))
        with tempfile.NamedTemporaryFile("w", suffix=".xml") as f:
            f.write(xml)
            f.flush()
            sh.run(["virsh", "-c", naming.host_uri(1), "create", f.name])
        for i in (1, 2):
            self.addCleanup(sh.run, ["virsh", "-c", naming.host_uri(i), "destroy", "tb-tlstest"], False)
        lo, hi = 49152 + 32, 49152 + 64 - 1     # host 2's migration_port_min..max (tb/services.py)
        pcap = tempfile.NamedTemporaryFile(suffix=".pcap")
        self.addCleanup(pcap.close)
        cap = subprocess.Popen(
            ["tcpdump", "-i", "lo", "-nn", "-c", "1", "-w", pcap.name,
             "dst host %s and dst portrange %d-%d and tcp[((tcp[12]&0xf0)>>2):2] = 0x1603" % (
                 naming.host_addr(2), lo, hi)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.addCleanup(cap.stderr.close)
        self.addCleanup(lambda: cap.poll() is None and cap.kill())
        self.assertIn("listening on", cap.stderr.readline())
        sh.run(["virsh", "-c", naming.host_uri(1), "migrate", "--live", "--p2p", "--tls", "tb-tlstest",
                naming.host_uri(2), "--migrateuri", "tcp://" + naming.host_addr(2)], timeout=120)
        self.assertIn("tb-tlstest", sh.run(["virsh", "-c", naming.host_uri(2), "list", "--name"]))
        try:
            self.assertEqual(cap.wait(timeout=10), 0, cap.stderr.read())
        except subprocess.TimeoutExpired:
            self.fail("no TLS handshake on QEMU's migration stream to %s" % naming.host(2))

    def test_8_up_again_keeps_what_is_there(self):
        """A second up provisions nothing again, on any host: each home keeps its one vRGW where
        it runs (home 1's may be on host 2 after test_7m3's migration completed)."""
        def subscribers():
            rows = []
            for i in (1, 2):
                a = nbi.Nbi(self.api.base, self.api.token, naming.device(i))
                for n, r in provisioning.inventory(a)[2].items():
                    if r.get("Subscriber") and r.get("Status") != "Migrated":
                        rows.append((r["Subscriber"], i, n))
            return sorted(rows)
        before = subscribers()
        self.assertEqual([sub for sub, _, _ in before], ["home-%d" % k for k in PAIR], before)
        bringup.up(homes=HOMES, pool=1, lease_timeout=120, flavor="mixed")
        self.assertEqual(subscribers(), before, "a second up provisioned or moved a home again")

    def test_9_down_removes_everything_also_after_a_partial_up(self):
        teardown.down()
        self.assertEqual(leftovers(), [])
        # A partial up (as one that failed half-way), then down.
        services.start_services()
        plumbing.network_up()
        homenet.home_up(1)
        self.assertNotEqual(leftovers(), [])
        teardown.down()
        self.assertEqual(leftovers(), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
