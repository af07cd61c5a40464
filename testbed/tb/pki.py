"""The testbed's certificates for libvirt over TLS, made with openssl: a CA of its own, a server
certificate per host (its address 10.98.0.N as subject alternative name) and one client
certificate that the agents, virsh and each libvirtd (as the source of a peer-to-peer migration)
present. Each host's libvirtd accepts only a client certificate that this CA signed and whose
subject is CLIENT_DN. Everything lives in $VRGW_TESTBED_DIR/pki (mode 0700, keys 0600); testbed/down
removes it, so a CA key never outlives the testbed that made it.

```
pki/ca/cacert.pem, cakey.pem                 the CA
pki/client/cacert.pem, clientcert.pem, clientkey.pem   the client side (`?pkipath=` of every URI)
pki/tbhN/cacert.pem, servercert.pem, serverkey.pem     host N's libvirtd (its libvirtd.conf names them)
pki/tbhN/qemu/ca-cert.pem, server-*.pem, client-*.pem  host N's QEMUs, for a migration stream in TLS
```

QEMU runs as libvirt-qemu and reads its folder itself: pki/ and pki/tbhN/ are 0711 (passable,
not listable), pki/tbhN/qemu/ and its keys belong to group libvirt-qemu (0750, 0640).
"""

import grp
import os
import shutil
import tempfile

from . import sh
from .naming import CLIENT_DN, CLIENT_PKI, PKI, host, host_addr

DAYS = 3650
CA_DN = "/O=vRGW testbed/CN=vRGW testbed libvirt CA"

CA_EXT = ("basicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, cRLSign\n"
          "subjectKeyIdentifier = hash\n")
SERVER_EXT = ("basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature, keyEncipherment\n"
              "extendedKeyUsage = serverAuth\nsubjectAltName = IP:%s\n")
CLIENT_EXT = ("basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature, keyEncipherment\n"
              "extendedKeyUsage = clientAuth\n")


def ca_dir():
    return os.path.join(PKI, "ca")


def host_pki(i):
    """Host i's server side: the folder its libvirtd.conf points at."""
    return os.path.join(PKI, host(i))


def private_dir(path):
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)


def new_key(path):
    """An EC P-256 private key, created 0600 (never readable by others, not even for a moment)."""
    old = os.umask(0o077)
    try:
        sh.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path])
    finally:
        os.umask(old)
    os.chmod(path, 0o600)


def sign(key, subject, ext, out, ca_cert, ca_key):
    """A certificate for `key` with `subject` and the extensions `ext`, signed by the CA."""
    with tempfile.TemporaryDirectory(prefix="tb-pki-") as tmp:
        csr, extfile = os.path.join(tmp, "req.csr"), os.path.join(tmp, "ext.cnf")
        sh.write(extfile, ext)
        sh.run(["openssl", "req", "-new", "-key", key, "-subj", subject, "-out", csr])
        sh.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
                "-CAserial", os.path.join(tmp, "serial"), "-days", str(DAYS), "-sha256", "-extfile", extfile,
                "-out", out])


def make_ca(folder, subject=CA_DN):
    """A self-signed CA in `folder` (cacert.pem, cakey.pem); kept if it is there."""
    cert, key = os.path.join(folder, "cacert.pem"), os.path.join(folder, "cakey.pem")
    if os.path.exists(cert) and os.path.exists(key):
        return cert, key
    private_dir(folder)
    new_key(key)
    with tempfile.TemporaryDirectory(prefix="tb-pki-") as tmp:
        cnf = os.path.join(tmp, "ca.cnf")
        sh.write(cnf, "[req]\ndistinguished_name = dn\nx509_extensions = ca\nprompt = no\n[dn]\n[ca]\n" + CA_EXT)
        sh.run(["openssl", "req", "-x509", "-new", "-key", key, "-subj", subject, "-days", str(DAYS), "-sha256",
                "-config", cnf, "-out", cert])
    return cert, key


def client_into(folder, ca, dn, trust=()):
    """A client side in `folder` as libvirt's `pkipath` wants it: a client certificate with
    subject `dn` signed by `ca` ((cert, key)), and as cacert.pem `ca`'s certificate followed by
    those in `trust` (the client checks the server, and first its own certificate, against them).
    Tests use it to make clients the hosts must refuse."""
    private_dir(folder)
    key, cert = os.path.join(folder, "clientkey.pem"), os.path.join(folder, "clientcert.pem")
    new_key(key)
    sign(key, dn, CLIENT_EXT, cert, ca[0], ca[1])
    sh.write(os.path.join(folder, "cacert.pem"), "".join(sh.read(c) for c in (ca[0],) + tuple(trust)))
    return folder


def ensure(hosts):
    """The CA, the client side and the server sides of hosts 1..`hosts` (each kept if present)."""
    private_dir(PKI)
    os.chmod(PKI, 0o711)
    ca = make_ca(ca_dir())
    if not os.path.exists(os.path.join(CLIENT_PKI, "clientcert.pem")):
        client_into(CLIENT_PKI, ca, "/" + CLIENT_DN)
        sh.say("pki: CA and client certificate (%s) in %s" % (CLIENT_DN, PKI))
    for i in range(1, hosts + 1):
        d = host_pki(i)
        cert, key = os.path.join(d, "servercert.pem"), os.path.join(d, "serverkey.pem")
        if os.path.exists(cert):
            continue
        private_dir(d)
        new_key(key)
        sign(key, "/O=vRGW testbed/CN=%s" % host_addr(i), SERVER_EXT % host_addr(i), cert, ca[0], ca[1])
        shutil.copyfile(ca[0], os.path.join(d, "cacert.pem"))
        qemu_dir(i)
        sh.say("pki: server certificate of %s (IP %s)" % (host(i), host_addr(i)))


def qemu_pki(i):
    """Host i's QEMU certificates (qemu.conf's migrate_tls_x509_cert_dir)."""
    return os.path.join(host_pki(i), "qemu")


def qemu_dir(i):
    """Host i's QEMU folder in the names QEMU wants: its server certificate (a destination
    listens with it), the testbed's client certificate (a source presents it) and the CA,
    readable by group libvirt-qemu (QEMU's) and root only."""
    d, q = host_pki(i), qemu_pki(i)
    os.chmod(d, 0o711)
    gid = grp.getgrnam("libvirt-qemu").gr_gid
    old = os.umask(0o077)
    try:
        os.makedirs(q, mode=0o750, exist_ok=True)
        os.chown(q, 0, gid)
        os.chmod(q, 0o750)
        for src, dst in ((os.path.join(d, "cacert.pem"), "ca-cert.pem"),
                         (os.path.join(d, "servercert.pem"), "server-cert.pem"),
                         (os.path.join(d, "serverkey.pem"), "server-key.pem"),
                         (os.path.join(CLIENT_PKI, "clientcert.pem"), "client-cert.pem"),
                         (os.path.join(CLIENT_PKI, "clientkey.pem"), "client-key.pem")):
            out = os.path.join(q, dst)
            shutil.copyfile(src, out)
            os.chown(out, 0, gid)
            os.chmod(out, 0o640)
    finally:
        os.umask(old)


def libvirtd_conf(i):
    """Host i's libvirtd.conf: TLS only on its address, the client's certificate checked against
    the testbed's CA and its subject against the one allowed."""
    d = host_pki(i)
    return "\n".join([
        "# vRGW testbed host %s: TLS only, a client certificate of the testbed's CA required" % host(i),
        "listen_tls = 1",
        "listen_tcp = 0",
        'listen_addr = "%s"' % host_addr(i),
        'auth_tls = "none"',                    # the verified client certificate is the authentication
        "tls_no_verify_certificate = 0",
        'tls_allowed_dn_list = ["%s"]' % CLIENT_DN,
        'ca_file = "%s"' % os.path.join(d, "cacert.pem"),
        'cert_file = "%s"' % os.path.join(d, "servercert.pem"),
        'key_file = "%s"' % os.path.join(d, "serverkey.pem"),
    ]) + "\n"
