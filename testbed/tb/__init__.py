"""The testbed on one machine: the data center (ACS, hypervisor agents, each host a libvirtd with
QEMU, Open vSwitch), the access network (an access node taking each host's Q-in-Q trunk) and the
homes (one network namespace each), plus an "internet" namespace behind the vRGWs' WAN side.

```
 tb-inet netns (100.64.0.1, DHCP for WANs, iperf3)
     │ veth tb-inet
 tb-wan (Linux bridge) ── WAN NIC of every vRGW
 tb-mgmt (Linux bridge, 10.99.0.1/16 on the host) ── management NIC of every vRGW ── agents
 vRGW LAN NICs ── tbh1-sS (access port, tag C) ── tbh1-trunk ── uplink tbh1-up   [the agent's, Open vSwitch]
                                                                    ║ veth: 802.1ad S over 802.1Q C
 tb-an (trunk side, tunnel port tag S) ── tb-an-sS (home port, access tag C) ── veth ── tb-homeN netns
```

Layout, each module importing only those above it:
- `sh`: running commands, progress, Debian packages.
- `naming`: the names of everything the testbed makes, and its files.
- `nbi`: the ACS's NBI as an OSS uses it.
- `daemons`: processes tracked by pid files; the ACS and the hypervisor agents.
- `plumbing`: bridges, veths, namespaces, the internet namespace, the access node and the trunks.
- `homenet`: the homes' namespaces, DHCP leases and pings.
- `services`: packages, Open vSwitch, each host's libvirtd.
- `image`: the vRGW guest image.
- `provisioning`: template, subscribers and pools through the NBI; where each vRGW runs.
- `status`, `bringup`, `teardown`: testbed/status, testbed/up, testbed/down.
- `migrate`, `probe`, `measure`, `plot`: migrations and measurements on a running testbed.
"""
