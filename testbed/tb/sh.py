"""Running commands, reporting progress, installing Debian packages: the plumbing every testbed
step shares. Standard library only."""

import os
import shutil
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STATE = os.environ.get("VRGW_TESTBED_DIR", "/var/lib/vrgw-testbed")


class Failed(Exception):
    """A step failed; the message says what and what to do."""


def say(msg):
    print("testbed: " + msg, flush=True)


def progress(step, i, n, what=""):
    """One line per item of a long step (`step 3/10: what`)."""
    print("testbed: %s %d/%d%s" % (step, i, n, (": " + what) if what else ""), flush=True)


def run(args, check=True, input=None, netns=None, timeout=120, env=None, cwd=None):
    """Runs a command; returns its stdout. A failure raises Failed with the command and its
    stderr."""
    if netns:
        args = ["ip", "netns", "exec", netns] + list(args)
    try:
        p = subprocess.run(args, input=input, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)
    except FileNotFoundError:
        raise Failed("%s: not installed" % args[0])
    except subprocess.TimeoutExpired:
        raise Failed("%s: no answer within %d s" % (" ".join(args), timeout))
    if check and p.returncode != 0:
        raise Failed("%s: exit %d: %s" % (" ".join(args), p.returncode, (p.stderr or p.stdout).strip()))
    return p.stdout


def ok(args, netns=None, timeout=30):
    """Whether a command succeeds (its output is dropped)."""
    if netns:
        args = ["ip", "netns", "exec", netns] + list(args)
    try:
        return subprocess.run(args, capture_output=True, timeout=timeout).returncode == 0
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False


def wait_for(what, check, timeout, interval=0.2):
    """Polls `check()` until it returns something true; raises Failed naming `what` after
    `timeout` seconds."""
    end = time.monotonic() + timeout
    while True:
        v = check()
        if v:
            return v
        if time.monotonic() > end:
            raise Failed("%s: not within %d s" % (what, timeout))
        time.sleep(interval)


_apt_updated = False


def install(packages):
    """Installs the Debian packages among `packages` ((command-or-path, package) pairs) whose
    command or file is missing, with one `apt-get update`."""
    global _apt_updated
    missing = []
    for probe, pkg in packages:
        present = os.path.exists(probe) if probe.startswith("/") else shutil.which(probe) is not None
        if not present and pkg not in missing:
            missing.append(pkg)
    if not missing:
        return
    if os.geteuid() != 0:
        raise Failed("these Debian packages are missing and only root can install them: " + " ".join(missing))
    say("installing " + " ".join(missing))
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if not _apt_updated:
        run(["apt-get", "update", "-qq"], timeout=600, env=env)
        _apt_updated = True
    run(["apt-get", "install", "-y", "--no-install-recommends"] + missing, timeout=1800, env=env)


def need_root():
    if os.geteuid() != 0:
        sys.exit("testbed: needs root (it creates namespaces, bridges and libvirt domains)")


def read(path):
    with open(path) as f:
        return f.read()


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
