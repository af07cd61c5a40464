"""What a home sees during a migration: ICMP echo to its vRGW every 10 ms (lost replies, longest
gap) and a TCP connection through the vRGW's NAT to the internet namespace, a byte echoed every
10 ms (whether it survives, longest stall). Runs inside the home's network namespace:
`python3 -m tb.probe GATEWAY SERVER PORT SECONDS`; prints one JSON line when done (or on SIGTERM)."""

import json
import os
import select
import signal
import socket
import struct
import sys
import time

INTERVAL = 0.01


def checksum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def echo_request(ident, seq):
    head = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    payload = struct.pack("!d", time.monotonic())
    return struct.pack("!BBHHH", 8, 0, checksum(head + payload), ident, seq) + payload


def replies(icmp, ident, answered):
    """Records the sequence numbers of every echo reply of ours waiting on the socket."""
    try:
        while True:
            pkt = icmp.recv(2048)
            ihl = (pkt[0] & 0x0F) * 4
            t, _, _, pid, seq = struct.unpack("!BBHHH", pkt[ihl:ihl + 8])
            if t == 0 and pid == ident:
                answered.add(seq)
    except BlockingIOError:
        pass


def main():
    gw, server, port, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    icmp = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    icmp.setblocking(False)
    ident = os.getpid() & 0xFFFF
    tcp = socket.create_connection((server, port), timeout=5)
    tcp.setblocking(False)
    tcp.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sent, answered = 0, set()
    tcp_alive, tcp_error = True, ""
    tcp_sent, tcp_got = 0, 0
    last_echo = time.monotonic()
    tcp_stall = 0.0
    start = time.monotonic()
    next_tick = start
    while not stop["now"] and time.monotonic() - start < seconds:
        now = time.monotonic()
        if now >= next_tick:
            seq = sent & 0xFFFF
            try:
                icmp.sendto(echo_request(ident, seq), (gw, 0))
            except OSError:
                pass
            sent += 1
            if tcp_alive:
                try:
                    tcp_sent += tcp.send(b"x")
                except BlockingIOError:
                    pass
                except OSError as e:
                    tcp_alive, tcp_error = False, str(e)
            next_tick += INTERVAL
        r, _, _ = select.select([icmp] + ([tcp] if tcp_alive else []), [], [], max(0.0, next_tick - time.monotonic()))
        for s in r:
            if s is icmp:
                replies(icmp, ident, answered)
            else:
                try:
                    data = tcp.recv(4096)
                    if not data:
                        tcp_alive, tcp_error = False, "closed by the peer"
                    else:
                        tcp_got += len(data)
                        t = time.monotonic()
                        tcp_stall = max(tcp_stall, t - last_echo)
                        last_echo = t
                except BlockingIOError:
                    pass
                except OSError as e:
                    tcp_alive, tcp_error = False, str(e)
    # Late replies still count.
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        r, _, _ = select.select([icmp], [], [], 0.05)
        if r:
            replies(icmp, ident, answered)
    # Longest run of unanswered requests (sequence numbers wrap at 65536: runs are short).
    longest = run = 0
    for i in range(sent):
        if (i & 0xFFFF) in answered:
            run = 0
        else:
            run += 1
            longest = max(longest, run)
    # Survived: still open and still echoing at the end (not merely never reset).
    tcp_flowing = tcp_alive and time.monotonic() - last_echo < 1.5
    if tcp_alive and not tcp_flowing:
        tcp_error = "stalled since %.1f s before the end" % (time.monotonic() - last_echo)
    if tcp_alive:
        tcp_stall = max(tcp_stall, time.monotonic() - last_echo - 0.5)
    print(json.dumps({
        "pings_sent": sent, "pings_lost": sent - len([i for i in range(sent) if (i & 0xFFFF) in answered]),
        "longest_gap_ms": round(longest * INTERVAL * 1000), "tcp_survived": tcp_flowing,
        "tcp_error": tcp_error, "tcp_longest_stall_ms": round(tcp_stall * 1000), "tcp_bytes_echoed": tcp_got,
    }), flush=True)


if __name__ == "__main__":
    main()
