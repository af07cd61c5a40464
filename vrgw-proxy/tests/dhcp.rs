//! The proxy with real parts: it runs in a network namespace (the vRGW) with dnsmasq on a veth
//! toward a home namespace, where busybox udhcpc takes leases. Settings arrive over XML-RPC
//! from this test (through a management veth), exactly as the host agent will send them.
//! Needs root, iproute2, dnsmasq, busybox and nft (the README's test command installs them).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use xmlrpc::{Client, Error, Value};

const SECRET: &str = "test-secret-0123456789";

fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Namespaces, links, the proxy process and its files; all removed on drop.
struct Bed {
    vrgw: String,
    home: String,
    mgmt: String,
    addr: String,
    dir: PathBuf,
    proxy: Option<Child>,
}

impl Drop for Bed {
    fn drop(&mut self) {
        self.stop();
        // A dnsmasq a failed test left behind.
        for pid in self.dnsmasqs() {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
        let _ = Command::new("ip").args(["netns", "del", &self.vrgw]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.home]).status();
        let _ = Command::new("ip").args(["link", "del", &self.mgmt]).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Bed {
    fn new(tag: u8) -> Bed {
        let id = std::process::id() % 10000;
        let dir = std::env::temp_dir().join(format!("vrgw-proxy-test-{id}-{tag}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let bed = Bed {
            vrgw: format!("vpv{id}{tag}"),
            home: format!("vph{id}{tag}"),
            mgmt: format!("vpm{id}{tag}"),
            addr: format!("10.254.{}.2", 100 + tag),
            dir,
            proxy: None,
        };
        let ok = Command::new("ip").args(["netns", "add", &bed.vrgw]).status().is_ok_and(|s| s.success());
        assert!(ok, "creating a network namespace failed: this test needs root and iproute2");
        sh(&["ip", "netns", "add", &bed.home]);
        let peer = format!("{}p", bed.mgmt);
        sh(&["ip", "link", "add", &bed.mgmt, "type", "veth", "peer", "name", &peer]);
        sh(&["ip", "link", "set", &peer, "netns", &bed.vrgw]);
        sh(&["ip", "addr", "add", &format!("10.254.{}.1/30", 100 + tag), "dev", &bed.mgmt]);
        sh(&["ip", "link", "set", &bed.mgmt, "up"]);
        sh(&["ip", "-n", &bed.vrgw, "addr", "add", &format!("{}/30", bed.addr), "dev", &peer]);
        sh(&["ip", "-n", &bed.vrgw, "link", "set", &peer, "up"]);
        sh(&["ip", "-n", &bed.vrgw, "link", "set", "lo", "up"]);
        sh(&["ip", "-n", &bed.home, "link", "set", "lo", "up"]);
        sh(&["ip", "-n", &bed.vrgw, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns", &bed.home]);
        sh(&["ip", "-n", &bed.home, "link", "set", "eth0", "up"]);
        std::fs::write(bed.dir.join("secret"), SECRET).expect("secret");
        // A dnsmasq that refuses any configuration mentioning "refuse-me", to show rollback.
        let wrapper = bed.dir.join("dnsmasq-wrapper");
        std::fs::write(
            &wrapper,
            "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in --conf-file=*) f=\"${a#--conf-file=}\";; esac; done\n\
             if [ -n \"$f\" ] && grep -q refuse-me \"$f\" && [ \"$1\" != --test ]; then echo 'refusing this configuration' >&2; exit 3; fi\n\
             exec dnsmasq \"$@\"\n",
        )
        .expect("wrapper");
        sh(&["chmod", "+x", wrapper.to_str().unwrap_or_default()]);
        std::fs::write(bed.dir.join("udhcpc.sh"), "#!/bin/sh\ncase \"$1\" in bound|renew) echo \"LEASE $ip\";; esac\n")
            .expect("script");
        sh(&["chmod", "+x", bed.dir.join("udhcpc.sh").to_str().unwrap_or_default()]);
        bed
    }

    fn start(&mut self) {
        let d = |p: &str| self.dir.join(p).to_string_lossy().into_owned();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.vrgw, env!("CARGO_BIN_EXE_vrgw-proxy")])
            .args(["--listen", &format!("{}:8730", self.addr), "--secret-file", &d("secret")])
            .args(["--state-dir", &d("state"), "--run-dir", &d("run"), "--lan-if", "lan0", "--wan-if", "wan0"])
            .args(["--dnsmasq", &d("dnsmasq-wrapper"), "--reboot-command", "touch", &d("rebooted")])
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(self.dir.join("proxy.log")).expect("log")))
            .spawn()
            .expect("start the proxy");
        self.proxy = Some(child);
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.proxy.take() {
            // SIGTERM so the proxy stops its dnsmasq.
            let _ = Command::new("kill").arg(c.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGKILL, as a crash would: the proxy cannot stop its dnsmasq.
    fn kill_proxy(&mut self) {
        if let Some(mut c) = self.proxy.take() {
            c.kill().expect("SIGKILL the proxy");
            c.wait().expect("reap the proxy");
        }
    }

    /// The processes given this bed's dnsmasq configuration file, by their command lines.
    fn dnsmasqs(&self) -> Vec<u32> {
        let arg = format!("--conf-file={}", self.dir.join("run/dnsmasq.conf").display());
        let mut pids: Vec<u32> = std::fs::read_dir("/proc")
            .expect("/proc")
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse().ok()))
            .filter(|pid: &u32| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let zombie = stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z'));
                !zombie
                    && std::fs::read(format!("/proc/{pid}/cmdline"))
                        .is_ok_and(|c| c.split(|&b| b == 0).any(|a| a == arg.as_bytes()))
            })
            .collect();
        pids.sort_unstable();
        pids
    }

    fn client(&self, secret: &str) -> Client {
        Client::new(&format!("http://vrgw:{secret}@{}:8730/RPC2", self.addr))
            .expect("client")
            .with_timeout(Duration::from_secs(10))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("proxy.log")).unwrap_or_default()
    }

    /// A fresh DHCP client (new MAC) in the home; the address it got, if any.
    fn lease(&self, mac_tail: u8) -> Option<String> {
        let mac = format!("02:00:00:77:00:{mac_tail:02x}");
        sh(&["ip", "-n", &self.home, "link", "set", "eth0", "down"]);
        sh(&["ip", "-n", &self.home, "link", "set", "eth0", "address", &mac]);
        sh(&["ip", "-n", &self.home, "link", "set", "eth0", "up"]);
        let out = Command::new("ip")
            .args([
                "netns", "exec", &self.home, "busybox", "udhcpc", "-i", "eth0", "-n", "-q", "-f", "-t", "6", "-T", "1",
            ])
            .arg("-s")
            .arg(self.dir.join("udhcpc.sh"))
            .output()
            .expect("busybox udhcpc");
        String::from_utf8_lossy(&out.stdout).lines().find_map(|l| l.strip_prefix("LEASE ").map(str::to_string))
    }
}

fn pv(name: &str, value: Value) -> Value {
    Value::structure([("name", Value::String(name.into())), ("value", value)])
}

fn s(v: &str) -> Value {
    Value::String(v.into())
}

fn last_octet(ip: &str) -> u8 {
    ip.rsplit('.').next().and_then(|o| o.parse().ok()).unwrap_or(0)
}

async fn set(c: &Client, values: Vec<Value>, key: &str) -> Result<Value, Error> {
    c.call("set", &[Value::Array(values), s(key)]).await
}

async fn get1(c: &Client, path: &str) -> String {
    let v = c.call("get", &[Value::Array(vec![s(path)])]).await.unwrap_or_else(|e| panic!("get {path}: {e}"));
    v.as_array()
        .and_then(|a| a.first())
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_default()
}

fn fault(r: Result<Value, Error>) -> (i32, String) {
    match r {
        Err(Error::Fault(f)) => (f.code, f.string),
        other => panic!("expected a fault, got {other:?}"),
    }
}

async fn wait_healthy(c: &Client, bed: &Bed) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(h) = c.call("health", &[]).await {
            if h.get("dnsmasq_running") == Some(&Value::Bool(true)) {
                return;
            }
        }
        assert!(Instant::now() < deadline, "the proxy did not come up:\n{}", bed.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const POOL: &str = "Device.DHCPv4.Server.Pool.1.";

#[test]
fn settings_over_xmlrpc_reach_real_dnsmasq_and_nftables() {
    let mut bed = Bed::new(1);
    bed.start();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let c = bed.client(SECRET);
        wait_healthy(&c, &bed).await;

        // Only authenticated callers.
        match bed.client("wrong-secret-000000").call("health", &[]).await {
            Err(Error::Http(401, _)) => {}
            other => panic!("wrong secret: {other:?}"),
        }

        // The LAN and the pool, then a lease from that range.
        set(
            &c,
            vec![
                pv("Device.IP.Interface.1.IPv4Address.1.IPAddress", s("192.168.77.1")),
                pv(&format!("{POOL}MinAddress"), s("192.168.77.100")),
                pv(&format!("{POOL}MaxAddress"), s("192.168.77.110")),
                pv(&format!("{POOL}IPRouters"), s("192.168.77.1")),
                pv(&format!("{POOL}DNSServers"), s("192.168.77.1")),
                pv("Device.DNS.Relay.Enable", Value::Bool(false)),
            ],
            "lan-1",
        )
        .await
        .unwrap_or_else(|e| panic!("set LAN: {e}\n{}", bed.log()));
        assert!(sh(&["ip", "-n", &bed.vrgw, "-4", "addr", "show", "lan0"]).contains("192.168.77.1/24"));
        let first = bed.lease(1).unwrap_or_else(|| panic!("no lease\n{}", bed.log()));
        assert!((100..=110).contains(&last_octet(&first)), "{first}");

        // After a take-over (another vRGW had the address): the home's stale neighbour entry for
        // its gateway points at the real LAN MAC once the proxy announced it.
        let lan_mac = sh(&["ip", "netns", "exec", &bed.vrgw, "cat", "/sys/class/net/lan0/address"]).trim().to_string();
        sh(&[
            "ip",
            "-n",
            &bed.home,
            "neigh",
            "replace",
            "192.168.77.1",
            "lladdr",
            "02:00:00:00:00:99",
            "dev",
            "eth0",
            "nud",
            "reachable",
        ]);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let said = c.call("announce", &[]).await.unwrap_or_else(|e| panic!("announce: {e}\n{}", bed.log()));
        assert_eq!(said, s("192.168.77.1 on lan0"));
        let neigh = sh(&["ip", "-n", &bed.home, "neigh", "show", "192.168.77.1"]);
        assert!(neigh.contains(&lan_mac), "the home still has {neigh:?}, not {lan_mac}");

        // The lease shows up as a host.
        let hosts = c.call("get", &[Value::Array(vec![s("Device.Hosts.Host.")])]).await.expect("hosts");
        let text = format!("{hosts:?}");
        assert!(text.contains(&first) && text.contains("02:00:00:77:00:01"), "{text}");

        // A new range: the next client gets an address from it.
        set(
            &c,
            vec![
                pv(&format!("{POOL}MinAddress"), s("192.168.77.150")),
                pv(&format!("{POOL}MaxAddress"), s("192.168.77.160")),
            ],
            "range-2",
        )
        .await
        .expect("new range");
        let second = bed.lease(2).expect("lease from the new range");
        assert!((150..=160).contains(&last_octet(&second)), "{second}");

        // Refusals: each names the parameter and the reason, with the CWMP code, and changes nothing.
        let conf_before = std::fs::read_to_string(bed.dir.join("run/dnsmasq.conf")).expect("conf");
        // `validate` says the same without applying anything, a fault per parameter.
        let v = c
            .call(
                "validate",
                &[Value::Array(vec![
                    pv(&format!("{POOL}MinAddress"), s("192.168.77.170")),
                    pv("Device.WiFi.SSID.1.SSID", s("fine")),
                ])],
            )
            .await
            .expect("validate");
        let text = format!("{v:?}");
        assert!(text.contains("MinAddress") && text.contains("9007") && !text.contains("SSID.1.SSID"), "{text}");
        let ok = c
            .call("validate", &[Value::Array(vec![pv(&format!("{POOL}MinAddress"), s("192.168.77.152"))])])
            .await
            .expect("validate");
        assert_eq!(ok, Value::Array(vec![]));
        assert_eq!(get1(&c, &format!("{POOL}MinAddress")).await, "192.168.77.150", "validate applied nothing");
        let (code, msg) = fault(set(&c, vec![pv(&format!("{POOL}MinAddress"), s("192.168.77.170"))], "bad").await);
        assert_eq!(code, 9007);
        assert!(msg.contains("MinAddress 192.168.77.170 is above MaxAddress 192.168.77.160"), "{msg}");
        let (code, msg) = fault(set(&c, vec![pv(&format!("{POOL}MaxAddress"), s("10.0.0.5"))], "bad").await);
        assert_eq!(code, 9007);
        assert!(msg.contains("outside the LAN subnet 192.168.77.0/24"), "{msg}");
        let (code, msg) = fault(set(&c, vec![pv("Device.WiFi.SSID.1.SSID", s(&"é".repeat(20)))], "bad").await);
        assert_eq!(code, 9007);
        assert!(msg.contains("SSID is 40 bytes, at most 32"), "{msg}");
        let (code, msg) =
            fault(set(&c, vec![pv("Device.WiFi.AccessPoint.1.Security.KeyPassphrase", s("short"))], "bad").await);
        assert_eq!(code, 9007);
        assert!(msg.contains("KeyPassphrase") && msg.contains("8 to 63"), "{msg}");
        assert_eq!(fault(set(&c, vec![pv(&format!("{POOL}Nope"), s("x"))], "bad").await).0, 9005);
        assert_eq!(fault(set(&c, vec![pv(&format!("{POOL}LeaseTime"), Value::Bool(true))], "bad").await).0, 9006);
        assert_eq!(fault(set(&c, vec![pv(&format!("{POOL}Status"), s("Enabled"))], "bad").await).0, 9008);
        assert_eq!(std::fs::read_to_string(bed.dir.join("run/dnsmasq.conf")).expect("conf"), conf_before);
        assert_eq!(get1(&c, &format!("{POOL}MinAddress")).await, "192.168.77.150");
        let third = bed.lease(3).expect("still leasing");
        assert!((150..=160).contains(&last_octet(&third)), "{third}");

        // A configuration the daemon itself refuses is rolled back; the old one keeps serving.
        let (code, msg) = fault(set(&c, vec![pv(&format!("{POOL}DomainName"), s("refuse-me.lan"))], "bad").await);
        assert_eq!(code, 9002);
        assert!(msg.contains("dnsmasq refused") && msg.contains("previous configuration is still in force"), "{msg}");
        assert_eq!(get1(&c, &format!("{POOL}DomainName")).await, "home.lan");
        wait_healthy(&c, &bed).await;
        let fourth = bed.lease(4).expect("the previous configuration serves");
        assert!((150..=160).contains(&last_octet(&fourth)), "{fourth}");

        // NAT: a port mapping becomes a DNAT rule in the one atomically loaded table.
        let n = c.call("add_object", &[s("Device.NAT.PortMapping."), s("pm-1")]).await.expect("add");
        let pm = format!("Device.NAT.PortMapping.{}.", n.as_i64().unwrap_or(0));
        set(
            &c,
            vec![
                pv(&format!("{pm}Enable"), Value::Bool(true)),
                pv(&format!("{pm}ExternalPort"), Value::Int(8080)),
                pv(&format!("{pm}InternalPort"), Value::Int(80)),
                pv(&format!("{pm}Protocol"), s("TCP")),
                pv(&format!("{pm}InternalClient"), s("192.168.77.150")),
            ],
            "pm-2",
        )
        .await
        .expect("port mapping");
        let rules = sh(&["ip", "netns", "exec", &bed.vrgw, "nft", "list", "table", "inet", "vrgw"]);
        assert!(rules.contains("dnat ip to 192.168.77.150:80") && rules.contains("masquerade"), "{rules}");
        let hostapd = std::fs::read_to_string(bed.dir.join("run/hostapd.conf")).expect("hostapd conf");
        assert!(hostapd.contains("wpa=2") && hostapd.contains("wpa_passphrase="), "{hostapd}");

        // Reboot runs the configured command.
        assert_eq!(c.call("reboot", &[]).await.expect("reboot"), Value::Bool(true));
    });
    std::thread::sleep(Duration::from_millis(400));
    assert!(bed.dir.join("rebooted").exists(), "the reboot command ran");

    // Restart: the state persists and is applied again.
    bed.stop();
    bed.start();
    rt.block_on(async {
        let c = bed.client(SECRET);
        wait_healthy(&c, &bed).await;
        assert_eq!(get1(&c, &format!("{POOL}MinAddress")).await, "192.168.77.150");
        let h = c.call("health", &[]).await.expect("health");
        assert_eq!(h.get("parameter_key"), Some(&s("pm-2")));
        assert_eq!(h.get("status"), Some(&s("ok")), "{h:?}\n{}", bed.log());
        let fifth = bed.lease(5).expect("lease after restart");
        assert!((150..=160).contains(&last_octet(&fifth)), "{fifth}");
        let rules = sh(&["ip", "netns", "exec", &bed.vrgw, "nft", "list", "table", "inet", "vrgw"]);
        assert!(rules.contains("dnat ip to 192.168.77.150:80"), "{rules}");

        // Factory reset brings the factory pool back.
        c.call("factory_reset", &[]).await.expect("factory reset");
        assert_eq!(get1(&c, &format!("{POOL}MinAddress")).await, "192.168.1.100");
    });
    assert!(Path::new(&bed.dir.join("state/state.json")).exists());
}

/// A proxy killed with SIGKILL leaves its dnsmasq running (dnsmasq does not die with its
/// parent). The next start finds it by its configuration file and replaces it: afterwards
/// exactly one dnsmasq runs with that file, a new one, and it serves the new configuration.
#[test]
fn a_dnsmasq_left_by_a_killed_proxy_is_replaced_not_doubled() {
    let mut bed = Bed::new(2);
    bed.start();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let old = rt.block_on(async {
        let c = bed.client(SECRET);
        wait_healthy(&c, &bed).await;
        // No DNS on the LAN: a second dnsmasq could then bind beside the first (DHCP only,
        // SO_REUSEPORT) and both would answer.
        set(
            &c,
            vec![
                pv("Device.IP.Interface.1.IPv4Address.1.IPAddress", s("192.168.78.1")),
                pv(&format!("{POOL}MinAddress"), s("192.168.78.100")),
                pv(&format!("{POOL}MaxAddress"), s("192.168.78.110")),
                pv(&format!("{POOL}IPRouters"), s("192.168.78.1")),
                pv(&format!("{POOL}DNSServers"), s("192.168.78.1")),
                pv("Device.DNS.Relay.Enable", Value::Bool(false)),
            ],
            "before-crash",
        )
        .await
        .unwrap_or_else(|e| panic!("set: {e}\n{}", bed.log()));
        let first = bed.lease(1).unwrap_or_else(|| panic!("no lease\n{}", bed.log()));
        assert!((100..=110).contains(&last_octet(&first)), "{first}");
        let running = bed.dnsmasqs();
        assert_eq!(running.len(), 1, "{running:?}");
        running[0]
    });

    bed.kill_proxy();
    // The premise: the killed proxy's dnsmasq is still there.
    assert_eq!(bed.dnsmasqs(), vec![old], "the dnsmasq of the killed proxy");

    bed.start();
    rt.block_on(async {
        let c = bed.client(SECRET);
        wait_healthy(&c, &bed).await;
        let h = c.call("health", &[]).await.expect("health");
        assert_eq!(h.get("status"), Some(&s("ok")), "{h:?}\n{}", bed.log());
        let now = bed.dnsmasqs();
        assert_eq!(now.len(), 1, "dnsmasq processes with this configuration: {now:?}\n{}", bed.log());
        assert_ne!(now[0], old, "the left-over dnsmasq is still the one running");
        assert!(bed.log().contains(&format!("pid={old}")), "the replacement is logged:\n{}", bed.log());

        // A new configuration: the one dnsmasq serves it.
        set(
            &c,
            vec![
                pv(&format!("{POOL}MinAddress"), s("192.168.78.150")),
                pv(&format!("{POOL}MaxAddress"), s("192.168.78.160")),
            ],
            "after-crash",
        )
        .await
        .unwrap_or_else(|e| panic!("set: {e}\n{}", bed.log()));
        for tail in 2..5 {
            let got = bed.lease(tail).unwrap_or_else(|| panic!("no lease\n{}", bed.log()));
            assert!((150..=160).contains(&last_octet(&got)), "{got} is from the old range");
        }
        assert_eq!(bed.dnsmasqs().len(), 1);
    });
}
