#!/usr/bin/python3
"""Draws the measurement figures from the CSV files `tb/measure.py` writes, in the manner of the
original paper's figures 6 to 9: throughput per home against the number of vRGWs (one figure per
profile, with the profile's requirement as a line), host CPU, per-vRGW CPU, memory per vRGW.

Run with Debian's Python (`/usr/bin/python3`, package python3-matplotlib): plot.py DIR."""
import csv
import os
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SERVICES = ["internet", "telephony", "sdtv", "hdtv"]
LABELS = {"internet": "Internet (TCP)", "telephony": "Telephony (UDP)", "sdtv": "SDTV (UDP)", "hdtv": "HDTV (UDP)"}


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main(d):
    flows = rows(os.path.join(d, "flows.csv"))
    host = rows(os.path.join(d, "host.csv"))
    vrgw = rows(os.path.join(d, "vrgw.csv"))
    made = []
    for profile in sorted({r["profile"] for r in flows}):
        fr = [r for r in flows if r["profile"] == profile]
        ns = sorted({int(r["n"]) for r in fr})
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for s in SERVICES:
            mean = [statistics.mean(float(r["mbps"]) for r in fr if int(r["n"]) == n and r["service"] == s) for n in ns]
            line, = ax.plot(ns, mean, marker="o", label=LABELS[s])
            req = float(next(r["required_mbps"] for r in fr if r["service"] == s))
            ax.axhline(req, color=line.get_color(), linestyle=":", linewidth=1)
        total = [statistics.mean(sum(float(r["mbps"]) for r in fr if int(r["n"]) == n and r["home"] == h)
                                 for h in {r["home"] for r in fr if int(r["n"]) == n}) for n in ns]
        line, = ax.plot(ns, total, marker="s", color="black", label="total per home")
        need = sum(float(next(r["required_mbps"] for r in fr if r["service"] == s)) for s in SERVICES)
        ax.axhline(need, color="black", linestyle="--", linewidth=1, label="profile requirement (%.1f Mbit/s)" % need)
        ax.set_xlabel("number of vRGWs")
        ax.set_ylabel("downstream throughput per home (Mbit/s)")
        ax.set_title("Throughput per home, %s user (dotted: each service's rate)" % profile)
        ax.set_xticks(ns)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        p = os.path.join(d, "throughput-%s.png" % profile)
        fig.savefig(p, dpi=110)
        plt.close(fig)
        made.append(p)
        # UDP loss.
        fig, ax = plt.subplots(figsize=(7, 3.6))
        for s in SERVICES[1:]:
            loss = [max(float(r["loss_percent"] or 0) for r in fr if int(r["n"]) == n and r["service"] == s) for n in ns]
            ax.plot(ns, loss, marker="o", label=LABELS[s])
        ax.set_xlabel("number of vRGWs")
        ax.set_ylabel("worst UDP loss of any home (%)")
        ax.set_title("UDP loss, %s user" % profile)
        ax.set_xticks(ns)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        p = os.path.join(d, "loss-%s.png" % profile)
        fig.savefig(p, dpi=110)
        plt.close(fig)
        made.append(p)
    for what, data, col, ylabel, name in [
        ("Host CPU", host, "host_cpu_percent", "host CPU busy (% of all cores)", "host-cpu.png"),
        ("CPU per vRGW", vrgw, "cpu_percent_of_one_core", "CPU per vRGW (% of one core, mean)", "vrgw-cpu.png"),
        ("Memory per vRGW", vrgw, "qemu_rss_kib", "QEMU resident memory per vRGW (MiB, mean)", "vrgw-memory.png"),
    ]:
        fig, ax = plt.subplots(figsize=(7, 3.6))
        for profile in sorted({r["profile"] for r in data}):
            pr = [r for r in data if r["profile"] == profile]
            ns = sorted({int(r["n"]) for r in pr})
            scale = 1 / 1024 if col == "qemu_rss_kib" else 1
            ys = [statistics.mean(float(r[col]) * scale for r in pr if int(r["n"]) == n) for n in ns]
            ax.plot(ns, ys, marker="o", label="%s user" % profile)
            ax.set_xticks(ns)
        ax.set_xlabel("number of vRGWs")
        ax.set_ylabel(ylabel)
        ax.set_title(what)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        p = os.path.join(d, name)
        fig.savefig(p, dpi=110)
        plt.close(fig)
        made.append(p)
    for p in made:
        print(p)


if __name__ == "__main__":
    main(sys.argv[1])
