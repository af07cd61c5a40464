"""The vRGW guest image: Debian's kernel and a busybox initramfs with dnsmasq, nft and our static
vrgw-proxy, built from Debian packages only.

The packages are fetched with `apt-get download` (nothing is installed on the host), unpacked into a
staging tree, and only what the guest runs is copied out of it: the kernel, the modules the guest
loads (virtio networking, nftables NAT) in dependency order, and each program with the shared
libraries its ELF headers name. The initramfs is a newc cpio written here with fixed owners and
times and sorted names, so the same packages and proxy give the same bytes (the manifest records
the package versions and the SHA-256 of the result).
"""

import glob
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import stat
import time

from . import sh

KERNEL_META = "linux-image-amd64"
# What the guest loads: QEMU's fw_cfg in sysfs (the proxy's secret comes that way, readable by root
# only), virtio networking, then nftables with NAT and conntrack.
MODULES = ["qemu_fw_cfg", "virtio_net", "virtio_pci", "nf_tables", "nft_chain_nat", "nft_masq", "nft_nat", "nft_ct",
           "nft_reject_inet", "nf_conntrack"]
# ethtool: a container vRGW turns transmit checksum offload off on its veth NICs (container-init).
PROGRAMS = {"/usr/sbin/dnsmasq": "dnsmasq-base", "/usr/sbin/nft": "nftables", "/sbin/ethtool": "ethtool"}
GUEST = os.path.join(sh.REPO, "testbed", "guest")
LIBDIRS = ["lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "lib", "usr/lib"]


def slurp(path):
    with open(path, "rb") as f:
        return f.read()


def image_dir(name="vrgw-small"):
    return os.path.join(sh.STATE, "images", name)


def kernel_package():
    out = sh.run(["apt-cache", "depends", KERNEL_META])
    m = re.search(r"Depends: (linux-image-[0-9][^\s]*-amd64)", out)
    if not m:
        raise sh.Failed("apt-cache does not know %s; run apt-get update" % KERNEL_META)
    return m.group(1)


def closure(roots):
    """The packages `roots` need, recursively (libraries only besides the roots)."""
    out = sh.run(["apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
                  "--no-breaks", "--no-replaces", "--no-enhances"] + roots)
    pkgs = set(roots)
    for line in out.splitlines():
        if line.startswith((" ", "<")):
            continue
        name = line.strip()
        if name.startswith("lib") or name == "gcc-12-base":
            pkgs.add(name)
    return sorted(pkgs)


def download(pkgs, cache):
    """Fetches the .deb of each package into `cache` (kept between builds); returns the paths."""
    os.makedirs(cache, exist_ok=True)
    os.chmod(cache, 0o755)
    want = [p for p in pkgs if not glob.glob(os.path.join(cache, p + "_*.deb"))]
    if want:
        sh.say("downloading %d Debian packages" % len(want))
        try:
            sh.run(["apt-get", "download"] + want, timeout=1800, cwd=cache)
        except sh.Failed:
            sh.run(["apt-get", "update", "-qq"], timeout=600)
            sh.run(["apt-get", "download"] + want, timeout=1800, cwd=cache)
    debs = {}
    for p in pkgs:
        found = sorted(glob.glob(os.path.join(cache, p + "_*.deb")))
        if not found:
            raise sh.Failed("apt-get download %s left no .deb in %s" % (p, cache))
        debs[p] = found[-1]
    return debs


def needed(path):
    out = sh.run(["readelf", "-d", path])
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out)


def interpreter(path):
    out = sh.run(["readelf", "-l", path])
    m = re.search(r"Requesting program interpreter: ([^\]]+)\]", out)
    return m.group(1) if m else None


def find_lib(stage, name):
    for d in LIBDIRS:
        p = os.path.join(stage, d, name)
        if os.path.exists(p):
            return p
    return None


class Cpio:
    """A newc cpio archive with fixed owners and times."""

    def __init__(self):
        self.entries = {}

    def add_file(self, path, data, mode=0o644):
        self.entries[path.lstrip("/")] = (stat.S_IFREG | mode, data)

    def add_dir(self, path, mode=0o755):
        self.entries[path.lstrip("/")] = (stat.S_IFDIR | mode, b"")

    def add_symlink(self, path, target):
        self.entries[path.lstrip("/")] = (stat.S_IFLNK | 0o777, target.encode())

    def unpack(self, root, skip=None):
        """Writes the entries as files under `root` (owners: the caller's, root here), those
        under `skip` left out."""
        for name in sorted(self.entries):
            if skip and name.startswith(skip):
                continue
            mode, data = self.entries[name]
            path = os.path.join(root, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if stat.S_ISDIR(mode):
                os.makedirs(path, exist_ok=True)
                os.chmod(path, stat.S_IMODE(mode))
            elif stat.S_ISLNK(mode):
                os.symlink(data.decode(), path)
            else:
                with open(path, "wb") as f:
                    f.write(data)
                os.chmod(path, stat.S_IMODE(mode))

    def bytes(self):
        # Every parent directory exists.
        for p in list(self.entries):
            parts = p.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                self.entries.setdefault("/".join(parts[:i]), (stat.S_IFDIR | 0o755, b""))
        out = io.BytesIO()
        ino = 1
        for name in sorted(self.entries) + ["TRAILER!!!"]:
            mode, data = self.entries.get(name, (0, b""))
            raw = name.encode() + b"\0"
            hdr = "070701" + "".join("%08X" % v for v in (
                ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(raw), 0))
            out.write(hdr.encode() + raw)
            out.write(b"\0" * (-(110 + len(raw)) % 4))
            out.write(data)
            out.write(b"\0" * (-len(data) % 4))
            ino += 1
        return out.getvalue()


def build_proxy():
    """The static vrgw-proxy (scripts/build-proxy-static); returns its path."""
    out = sh.run([os.path.join(sh.REPO, "scripts", "build-proxy-static")], timeout=1800, cwd=sh.REPO)
    return os.path.join(sh.REPO, out.strip().splitlines()[-1])


def build(name="vrgw-small", force=False):
    """Builds (or reuses) the guest image; returns its directory (vmlinuz, initrd.img,
    manifest.json)."""
    out_dir = image_dir(name)
    proxy = build_proxy()
    proxy_sum = hashlib.sha256(slurp(proxy)).hexdigest()
    guest_sum = hashlib.sha256(b"".join(slurp(os.path.join(GUEST, f))
                                        for f in sorted(os.listdir(GUEST)))).hexdigest()
    manifest_path = os.path.join(out_dir, "manifest.json")
    if not force and os.path.exists(manifest_path):
        try:
            m = json.loads(sh.read(manifest_path))
            if m.get("proxy_sha256") == proxy_sum and m.get("guest_sha256") == guest_sum and \
                    os.path.exists(os.path.join(out_dir, "initrd.img")) and \
                    os.path.exists(os.path.join(out_dir, "rootfs", "sbin", "vrgw-container-init")):
                return out_dir
        except ValueError:
            pass
    t0 = time.monotonic()
    sh.install([("apt-get", "apt"), ("readelf", "binutils"), ("depmod", "kmod"), ("dpkg-deb", "dpkg")])
    kpkg = kernel_package()
    kver = kpkg[len("linux-image-"):]
    pkgs = closure(sorted(set(PROGRAMS.values()))) + [kpkg, "busybox-static"]
    cache = os.path.join(sh.STATE, "cache", "debs")
    debs = download(pkgs, cache)
    stage = os.path.join(sh.STATE, "cache", "stage")
    shutil.rmtree(stage, ignore_errors=True)
    os.makedirs(stage)
    sh.say("unpacking %d packages" % len(debs))
    versions = {}
    for p, deb in sorted(debs.items()):
        sh.run(["dpkg-deb", "-x", deb, stage], timeout=300)
        versions[p] = sh.run(["dpkg-deb", "-f", deb, "Version"]).strip()

    cpio = Cpio()
    for d in ["bin", "sbin", "usr/bin", "usr/sbin", "proc", "sys", "dev", "run", "tmp", "etc", "root",
              "var/lib", "lib64"]:
        cpio.add_dir(d)
    cpio.add_file("bin/busybox", slurp(os.path.join(stage, "bin/busybox")), 0o755)
    applets = sh.run([os.path.join(stage, "bin/busybox"), "--list-full"]).split()
    for a in applets:
        if a not in ("bin/busybox", "linuxrc"):
            cpio.add_symlink(a, "/bin/busybox")
    cpio.add_symlink("init", "/bin/busybox")

    # Programs and their libraries.
    libs = {}

    def add_libs(elf):
        for n in needed(elf):
            if n in libs:
                continue
            p = find_lib(stage, n)
            if p is None:
                raise sh.Failed("%s needs %s, which no downloaded package has" % (os.path.basename(elf), n))
            libs[n] = os.path.realpath(p)
            add_libs(libs[n])

    for prog in PROGRAMS:
        src = os.path.join(stage, prog.lstrip("/"))
        cpio.add_file(prog, slurp(src), 0o755)
        add_libs(src)
        interp = interpreter(src)
        if interp:
            base = os.path.basename(interp)
            libs.setdefault(base, os.path.realpath(os.path.join(stage, interp.lstrip("/"))))
            if interp != "/lib/x86_64-linux-gnu/" + base:
                cpio.add_symlink(interp, "/lib/x86_64-linux-gnu/" + base)
    for n, p in libs.items():
        cpio.add_file("lib/x86_64-linux-gnu/" + n, slurp(p), 0o755)
    cpio.add_file("usr/bin/vrgw-proxy", slurp(proxy), 0o755)

    # Modules, dependencies first.
    moddir = os.path.join(stage, "lib/modules", kver)
    sh.run(["depmod", "-b", stage, kver], timeout=300)
    deps = {}
    for line in sh.read(os.path.join(moddir, "modules.dep")).splitlines():
        mod, _, rest = line.partition(":")
        deps[mod] = rest.split()
    by_name = {os.path.basename(m)[:-3].replace("-", "_"): m for m in deps}
    aliases = {}
    for line in sh.read(os.path.join(moddir, "modules.alias")).splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "alias":
            aliases.setdefault(parts[1], []).append(parts[2].replace("-", "_"))
    order = []

    def soft_pre(m):
        """Modules named by `softdep pre:` (e.g. libcrc32c needs a crc32c implementation)."""
        out = sh.run(["modinfo", "-F", "softdep", os.path.join(moddir, m)])
        names = []
        for part in out.split("post:")[0].split("pre:")[1:]:
            names += part.split()
        for n in names:
            cands = [n.replace("-", "_")] if n.replace("-", "_") in by_name else sorted(
                aliases.get("crypto-" + n, []) + aliases.get(n, []), key=lambda c: not c.endswith("_generic"))
            if cands and cands[0] in by_name:
                yield by_name[cands[0]]

    def visit(m):
        if m in order:
            return
        for d in list(soft_pre(m)) + deps[m]:
            visit(d)
        order.append(m)

    for name_ in MODULES:
        if name_ not in by_name:
            raise sh.Failed("kernel %s has no module %s" % (kver, name_))
        visit(by_name[name_])
    for m in order:
        cpio.add_file("lib/modules/" + os.path.basename(m), slurp(os.path.join(moddir, m)))
    cpio.add_file("etc/modules.order", "".join(os.path.basename(m) + "\n" for m in order).encode())

    # Our init scripts and the files the daemons expect.
    for f, dest, mode in [("inittab", "etc/inittab", 0o644), ("rc.sh", "etc/rc.sh", 0o755),
                          ("proxy.sh", "etc/proxy.sh", 0o755), ("udhcpc.sh", "etc/udhcpc.sh", 0o755),
                          # The same image is a container vRGW's root (rootfs/, below).
                          ("container-init", "sbin/vrgw-container-init", 0o755),
                          ("container-inittab", "etc/container-inittab", 0o644),
                          # The image's release: the proxy's SoftwareVersion names it.
                          ("vrgw-release", "etc/vrgw-release", 0o644)]:
        cpio.add_file(dest, slurp(os.path.join(GUEST, f)), mode)
    cpio.add_file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
    cpio.add_file("etc/group", b"root:x:0:\nnogroup:x:65534:\n")
    cpio.add_file("etc/hosts", b"127.0.0.1 localhost vrgw\n")
    cpio.add_file("etc/resolv.conf", b"")

    os.makedirs(out_dir, exist_ok=True)
    os.chmod(out_dir, 0o755)
    raw = cpio.bytes()
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0) as z:
        z.write(raw)
    initrd = buf.getvalue()
    tmp = os.path.join(out_dir, "initrd.img.new")
    with open(tmp, "wb") as f:
        f.write(initrd)
    os.chmod(tmp, 0o644)
    os.replace(tmp, os.path.join(out_dir, "initrd.img"))
    # The container flavor's root: the same files, unpacked (the kernel's modules are the host's).
    rootfs_tmp = os.path.join(out_dir, "rootfs.new")
    shutil.rmtree(rootfs_tmp, ignore_errors=True)
    cpio.unpack(rootfs_tmp, skip="lib/modules/")
    old_rootfs = os.path.join(out_dir, "rootfs.old")
    shutil.rmtree(old_rootfs, ignore_errors=True)
    if os.path.exists(os.path.join(out_dir, "rootfs")):
        # Containers running over it keep the old one until they stop.
        os.rename(os.path.join(out_dir, "rootfs"), old_rootfs)
    os.rename(rootfs_tmp, os.path.join(out_dir, "rootfs"))
    shutil.copyfile(os.path.join(stage, "boot", "vmlinuz-" + kver), os.path.join(out_dir, "vmlinuz"))
    os.chmod(os.path.join(out_dir, "vmlinuz"), 0o644)
    manifest = {
        "kernel": kver,
        "packages": versions,
        "modules": [os.path.basename(m) for m in order],
        "proxy_sha256": proxy_sum,
        "guest_sha256": guest_sum,
        "initrd_sha256": hashlib.sha256(initrd).hexdigest(),
        "initrd_bytes": len(initrd),
        "vmlinuz_bytes": os.path.getsize(os.path.join(out_dir, "vmlinuz")),
        "uncompressed_bytes": len(raw),
        "build_seconds": round(time.monotonic() - t0, 1),
    }
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
    shutil.rmtree(stage, ignore_errors=True)
    sh.say("guest image %s: kernel %s, initramfs %.1f MiB (%.1f MiB unpacked), %d modules" % (
        out_dir, kver, len(initrd) / 2**20, len(raw) / 2**20, len(order)))
    return out_dir


def firmware_variant(out_dir, release):
    """A firmware image for a Download: the image's initramfs with another release, as the kernel
    reads it (a second gzip'd newc archive after the first: its files replace the first's). The
    bytes."""
    extra = Cpio()
    extra.add_file("etc/vrgw-release", (release + "\n").encode())
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0) as z:
        z.write(extra.bytes())
    return slurp(os.path.join(out_dir, "initrd.img")) + buf.getvalue()


def measure_boot(out_dir, runs=3, memory_kib=131072):
    """Boots the image `runs` times under libvirt (qemu:///system, TCG unless VRGW_TESTBED_KVM=1)
    on a bridge of its own and times `virsh create` to the proxy accepting connections; also
    reads QEMU's resident memory once booted. Returns {"boot_s": [...], "qemu_rss_kib": [...]}."""
    import socket
    import subprocess
    bridge, host_addr, guest = "tb-boot", "10.98.0.1/24", "10.98.0.2"
    if not sh.ok(["ip", "link", "show", bridge]):
        sh.run(["ip", "link", "add", bridge, "type", "bridge"])
        sh.run(["ip", "addr", "add", host_addr, "dev", bridge])
    sh.run(["ip", "link", "set", bridge, "up"])
    kind = "kvm" if os.environ.get("VRGW_TESTBED_KVM") == "1" else "qemu"
    tcg = "" if kind == "kvm" else "<features><tcg><tb-cache unit='MiB'>16</tb-cache></tcg></features>"
    xml = ("<domain type='%s'><name>tb-boot</name><memory unit='KiB'>%d</memory><vcpu>1</vcpu>"
           "<os><type arch='x86_64'>hvm</type><kernel>%s/vmlinuz</kernel><initrd>%s/initrd.img</initrd>"
           "<cmdline>console=ttyS0 quiet vrgw.mgmt=%s/24</cmdline></os>%s"
           # A throw-away secret for the boot test, given as a string (the agent gives a file).
           "<sysinfo type='fwcfg'><entry name='opt/org.vrgw/secret'>%s</entry></sysinfo><devices>"
           "<interface type='bridge'><source bridge='%s'/><mac address='02:62:00:00:00:00'/>"
           "<model type='virtio'/><driver><host csum='off'/><guest csum='off'/></driver></interface>"
           "<serial type='pty'/><console type='pty'/></devices></domain>") % (
        kind, memory_kib, out_dir, out_dir, guest, tcg, "0" * 32, bridge)
    path = os.path.join(sh.STATE, "boot-test.xml")
    with open(path, "w") as f:
        f.write(xml)
    res = {"boot_s": [], "qemu_rss_kib": []}
    try:
        for i in range(runs):
            sh.run(["virsh", "-c", "qemu:///system", "destroy", "tb-boot"], check=False)
            t0 = time.monotonic()
            sh.run(["virsh", "-c", "qemu:///system", "create", path])

            def answers():
                try:
                    socket.create_connection((guest, 8730), timeout=0.3).close()
                    return True
                except OSError:
                    return False
            sh.wait_for("the test guest's proxy", answers, 120, 0.1)
            res["boot_s"].append(round(time.monotonic() - t0, 2))
            pid = sh.run(["pgrep", "-f", "guest=tb-boot,"]).split()[0]
            for line in sh.read("/proc/%s/status" % pid).splitlines():
                if line.startswith("VmRSS:"):
                    res["qemu_rss_kib"].append(int(line.split()[1]))
            sh.progress("boot", i + 1, runs, "%.1f s to a serving proxy" % res["boot_s"][-1])
    finally:
        subprocess.run(["virsh", "-c", "qemu:///system", "destroy", "tb-boot"], capture_output=True)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
    return res
