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
        ("Memory per vRGW", vrgw, "memory_kib", "memory per vRGW (MiB, mean): QEMU RSS or container cgroup",
         "vrgw-memory.png"),
    ]:
        fig, ax = plt.subplots(figsize=(7, 3.6))
        for profile in sorted({r["profile"] for r in data}):
            pr = [r for r in data if r["profile"] == profile]
            ns = sorted({int(r["n"]) for r in pr})
            scale = 1 / 1024 if col == "memory_kib" else 1
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
    made.append(summary(d, flows, host, vrgw))
    for p in made:
        print(p)


def summary(d, flows, host, vrgw):
    """summary.md: the tables docs/results.md shows, computed from the CSV files."""
    out = ["| N | profile | per home, mean (Mbit/s) | min home | needed | Internet TCP mean | UDP services at rate* | worst UDP loss | host CPU | CPU per vRGW | memory per vRGW |",
           "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for profile in sorted({r["profile"] for r in flows}):
        for n in sorted({int(r["n"]) for r in flows if r["profile"] == profile}):
            fr = [r for r in flows if r["profile"] == profile and int(r["n"]) == n]
            homes = sorted({r["home"] for r in fr})
            per = [sum(float(r["mbps"]) for r in fr if r["home"] == h) for h in homes]
            need = sum(float(next(r["required_mbps"] for r in fr if r["service"] == s)) for s in SERVICES)
            tcp = statistics.mean(float(r["mbps"]) for r in fr if r["service"] == "internet")
            udp = [r for r in fr if r["service"] != "internet"]
            at_rate = sum(1 for r in udp if float(r["mbps"]) >= 0.95 * float(r["required_mbps"]))
            loss = max((float(r["loss_percent"] or 0) for r in udp), default=0)
            failed = sum(1 for r in fr if r["error"])
            hc = next((r["host_cpu_percent"] for r in host if r["profile"] == profile and int(r["n"]) == n), "")
            vr = [r for r in vrgw if r["profile"] == profile and int(r["n"]) == n]
            cpu = statistics.mean(float(r["cpu_percent_of_one_core"]) for r in vr) if vr else 0
            rss = statistics.mean(int(r["memory_kib"]) for r in vr) / 1024 if vr else 0
            out.append("| %d | %s | %.1f | %.1f | %.1f | %.1f | %d/%d%s | %.1f %% | %s %% | %.0f %% | %.0f MiB |" % (
                n, profile, statistics.mean(per), min(per), need, tcp, at_rate, len(udp),
                " (%d flows failed)" % failed if failed else "", loss, hc, cpu, rss))
    out.append("")
    out.append("*UDP flows that reached at least 95 % of their rate.")
    mg = os.path.join(d, "management.csv")
    if os.path.exists(mg):
        m = rows(mg)
        out += ["", "| management timing | runs | median (s) | min (s) | max (s) |", "| --- | --- | --- | --- | --- |"]
        for what in sorted({r["measure"] for r in m if r["seconds"]}):
            xs = [float(r["seconds"]) for r in m if r["measure"] == what and r["seconds"]]
            out.append("| %s | %d | %.2f | %.2f | %.2f |" % (what, len(xs), statistics.median(xs), min(xs), max(xs)))
        out += ["", "| memory | resident |", "| --- | --- |"]
        for r in m:
            if not r["seconds"]:
                if r["measure"] in ("qemu_rss_kib", "container_memory_kib"):
                    name, kib = r["detail"].split()
                    out.append("| %s of %s | %.1f MiB |" % ("QEMU" if r["measure"] == "qemu_rss_kib" else "container",
                                                          name, int(kib) / 1024))
                else:
                    out.append("| %s | %.1f MiB |" % (r["measure"].replace("_rss_kib", ""), int(r["detail"]) / 1024))
    p = os.path.join(d, "summary.md")
    with open(p, "w") as f:
        f.write("\n".join(out) + "\n")
    return p


if __name__ == "__main__":
    main(sys.argv[1])
