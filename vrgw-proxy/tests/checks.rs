//! The proxy on loopback with `dnsmasq` and `nft` replaced by scripts that log every invocation
//! (and pretend to accept everything), leaving the LAN address alone: how often the daemons' own
//! checkers run (once per change), and the wire as Python's `xmlrpc.client` speaks it (what
//! docs/vrgw-proxy.md documents).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use proxy_api::{SetParams, ValidateParams, WireFault, WireValue};
use xmlrpc::Client;

const SECRET: &str = "test-secret-0123456789";
const POOL: &str = "Device.DHCPv4.Server.Pool.1.";

/// The proxy process and its folder; both gone on drop.
struct Bed {
    dir: PathBuf,
    proxy: Child,
    url: String,
}

impl Drop for Bed {
    fn drop(&mut self) {
        // SIGTERM, so the proxy stops its (pretend) dnsmasq.
        let _ = Command::new("kill").arg(self.proxy.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && !matches!(self.proxy.try_wait(), Ok(Some(_))) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.proxy.kill();
        let _ = self.proxy.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn script(path: &PathBuf, text: &str) {
    std::fs::write(path, text).expect("script");
    let ok = Command::new("chmod").arg("+x").arg(path).status().is_ok_and(|s| s.success());
    assert!(ok, "chmod {}", path.display());
}

impl Bed {
    fn start(tag: &str) -> Bed {
        let dir = std::env::temp_dir().join(format!("vrgw-proxy-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let log = dir.join("runs.log");
        script(
            &dir.join("dnsmasq"),
            &format!(
                "#!/bin/sh\necho \"dnsmasq $*\" >> {}\n[ \"$1\" = --test ] && exit 0\nexec sleep 120\n",
                log.display()
            ),
        );
        script(&dir.join("nft"), &format!("#!/bin/sh\necho \"nft $*\" >> {}\nexit 0\n", log.display()));
        std::fs::write(dir.join("secret"), SECRET).expect("secret");
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let d = |p: &str| dir.join(p).to_string_lossy().into_owned();
        let proxy = Command::new(env!("CARGO_BIN_EXE_vrgw-proxy"))
            .args(["--listen", &format!("127.0.0.1:{port}"), "--secret-file", &d("secret")])
            .args(["--state-dir", &d("state"), "--run-dir", &d("run"), "--lan-if", "lan0", "--wan-if", "wan0"])
            .args(["--dnsmasq", &d("dnsmasq"), "--nft", &d("nft"), "--no-lan-address"])
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(dir.join("proxy.log")).expect("log")))
            .spawn()
            .expect("start the proxy");
        Bed { dir, proxy, url: format!("http://vrgw:{SECRET}@127.0.0.1:{port}/RPC2") }
    }

    /// A started proxy that answers, a client of it, and a runtime to call it on.
    fn up(tag: &str) -> (Bed, Client, tokio::runtime::Runtime) {
        let bed = Bed::start(tag);
        let c = bed.client();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.call_typed::<_, proxy_api::Health>(proxy_api::HEALTH.name, ()).await.is_err() {
                assert!(Instant::now() < deadline, "the proxy did not come up");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        (bed, c, rt)
    }

    fn client(&self) -> Client {
        Client::new(&self.url).expect("client").with_timeout(Duration::from_secs(10))
    }

    /// The daemon programs run since the last call, and the log emptied.
    fn runs(&self) -> Vec<String> {
        let log = self.dir.join("runs.log");
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = std::fs::write(&log, "");
        text.lines().map(|l| l.split(" --conf-file").next().unwrap_or(l).to_string()).collect()
    }
}

fn value(name: &str, ty: &str, v: &str) -> WireValue {
    WireValue { name: name.into(), ty: Some(ty.into()), value: proxy_api::Lexical::String(v.into()) }
}

fn count(runs: &[String], prefix: &str) -> usize {
    runs.iter().filter(|r| r.starts_with(prefix)).count()
}

#[test]
fn each_change_is_checked_by_the_daemons_once_then_applied() {
    let (bed, c, rt) = Bed::up("checks");
    rt.block_on(async {
        let start = bed.runs();
        assert_eq!(count(&start, "dnsmasq --test"), 1, "at start: {start:?}");
        assert_eq!(count(&start, "nft -c"), 1, "at start: {start:?}");

        // set: one dnsmasq --test and one nft -c, then dnsmasq restarted (the ruleset did not
        // change, so nft is not loaded again).
        let set =
            SetParams { values: vec![value(&format!("{POOL}LeaseTime"), "int", "600")], parameter_key: "k1".into() };
        let r: i32 = c.call_typed(proxy_api::SET.name, &set).await.expect("set");
        assert_eq!(r, 0);
        let runs = bed.runs();
        assert_eq!(count(&runs, "dnsmasq --test"), 1, "{runs:?}");
        assert_eq!(count(&runs, "nft -c"), 1, "{runs:?}");
        assert_eq!(count(&runs, "dnsmasq --keep-in-foreground"), 1, "restarted once: {runs:?}");
        assert_eq!(runs.len(), 3, "{runs:?}");

        // try_set: the same, in the same one call.
        let set = SetParams {
            values: vec![value(&format!("{POOL}LeaseTime"), "unsignedInt", "900")],
            parameter_key: "k2".into(),
        };
        let refused: Vec<WireFault> = c.call_typed(proxy_api::TRY_SET.name, &set).await.expect("try_set");
        assert_eq!(refused, vec![]);
        let runs = bed.runs();
        assert_eq!(count(&runs, "dnsmasq --test"), 1, "{runs:?}");
        assert_eq!(count(&runs, "nft -c"), 1, "{runs:?}");
        assert_eq!(count(&runs, "dnsmasq --keep-in-foreground"), 1, "{runs:?}");
        assert!(std::fs::read_to_string(bed.dir.join("run/dnsmasq.conf")).expect("conf").contains(",900"));

        // A value the checks that span parameters refuse: named in the result, no daemon run.
        let set = SetParams {
            values: vec![value(&format!("{POOL}MinAddress"), "string", "192.168.1.250")],
            parameter_key: "k3".into(),
        };
        let refused: Vec<WireFault> = c.call_typed(proxy_api::TRY_SET.name, &set).await.expect("try_set");
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert_eq!((refused[0].name.as_str(), refused[0].code), (format!("{POOL}MinAddress").as_str(), 9007));
        assert_eq!(bed.runs(), Vec::<String>::new());

        // validate: one check of each, nothing applied.
        let v = ValidateParams { values: vec![value(&format!("{POOL}LeaseTime"), "int", "1200")] };
        let refused: Vec<WireFault> = c.call_typed(proxy_api::VALIDATE.name, &v).await.expect("validate");
        assert_eq!(refused, vec![]);
        let runs = bed.runs();
        assert_eq!((count(&runs, "dnsmasq --test"), count(&runs, "nft -c"), runs.len()), (1, 1, 2), "{runs:?}");
        let h: proxy_api::Health = c.call_typed(proxy_api::HEALTH.name, ()).await.expect("health");
        assert_eq!(h.parameter_key, "k2");
    });
}

/// What a Python caller sends and gets, method by method (printed by the script, one line each).
const PYTHON: &str = r#"
import sys, xmlrpc.client as x
p = x.ServerProxy(sys.argv[1])
pool = "Device.DHCPv4.Server.Pool.1."
def fault(call):
    try:
        call()
    except x.Fault as f:
        return f.faultCode
print(p.get([pool + "LeaseTime"]))
print(p.get(pool + "LeaseTime", pool + "Enable"))
print(p.set([{"name": pool + "LeaseTime", "value": 600}]))
print(p.set([{"name": pool + "LeaseTime", "value": "700", "type": "int"}], "k9"))
print(p.validate([{"name": pool + "MinAddress", "value": "192.168.1.250"}]))
print(p.try_set([{"name": pool + "LeaseTime", "value": "800", "type": "int"}], "k10"))
print([n for n in p.names(pool, True) if n["name"].endswith("LeaseTime")])
n = p.add_object("Device.NAT.PortMapping.", "pm")
print(n, p.delete_object("Device.NAT.PortMapping.%d." % n, "pm2"))
h = p.health()
print(sorted(h), h["parameter_key"])
print(p.system.methodSignature("try_set"))
print(fault(lambda: p.set([{"name": "Device.Nope", "value": "x"}])), fault(lambda: p.set([{"value": "x"}])),
      fault(lambda: p.set([{"name": pool + "LeaseTime", "value": "1", "type": "float"}])))
"#;

#[test]
fn python_clients_speak_the_documented_wire() {
    let bed = Bed::start("python");
    let c = bed.client();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(10);
        while c.call_typed::<_, proxy_api::Health>(proxy_api::HEALTH.name, proxy_api::NoParams).await.is_err() {
            assert!(Instant::now() < deadline, "the proxy did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    let out = Command::new("python3")
        .arg("-c")
        .arg(PYTHON)
        .arg(&bed.url)
        .output()
        .expect("python3 is needed for the interoperability tests");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = text.lines().collect();
    let lease = "{'name': 'Device.DHCPv4.Server.Pool.1.LeaseTime', 'type': 'int', 'value': '86400'}";
    let enable = "{'name': 'Device.DHCPv4.Server.Pool.1.Enable', 'type': 'boolean', 'value': 'true'}";
    assert_eq!(
        lines,
        vec![
            format!("[{lease}]").as_str(),
            format!("[{lease}, {enable}]").as_str(),
            "0",
            "0",
            "[{'name': 'Device.DHCPv4.Server.Pool.1.MinAddress', 'code': 9007, \
             'reason': 'MinAddress 192.168.1.250 is above MaxAddress 192.168.1.199'}]",
            "[]",
            "[{'name': 'Device.DHCPv4.Server.Pool.1.LeaseTime', 'writable': True}]",
            "1 0",
            "['dnsmasq_running', 'last_error', 'parameter_key', 'rss_kib', 'status', 'uptime', 'version'] pm2",
            "[['array', 'array', 'string']]",
            "9005 -32602 9006",
        ]
    );
}

/// A value that would add a directive to a daemon's file is refused in the check step: a fault
/// naming the parameter and why, no daemon's checker run, no file written.
#[test]
fn hostile_values_are_refused_before_any_daemon_runs() {
    let (bed, c, rt) = Bed::up("hostile");
    rt.block_on(async {
        let n: u32 = c
            .call_typed(
                proxy_api::ADD_OBJECT.name,
                &proxy_api::ObjectParams { path: "Device.NAT.PortMapping.".into(), parameter_key: "pm".into() },
            )
            .await
            .expect("add a port mapping");
        let _ = bed.runs();
        let conf = |f: &str| std::fs::read_to_string(bed.dir.join("run").join(f)).unwrap_or_default();
        let before = (conf("dnsmasq.conf"), conf("nftables.conf"), conf("hostapd.conf"));
        let pm = format!("Device.NAT.PortMapping.{n}.");
        for (name, ty, v, why) in [
            (format!("{POOL}DomainName"), "string", "home.lan\ndhcp-script=/tmp/x", "control character U+000A"),
            (format!("{POOL}DomainName"), "string", "home lan", "is not a host name"),
            (format!("{pm}RemoteHost"), "string", "198.51.100.7 accept", "one IPv4 address"),
            ("Device.WiFi.SSID.1.SSID".into(), "string", "wifi\u{1b}[2J", "control character U+001B"),
            (format!("{POOL}LeaseTime"), "int", "30", "at least 120 seconds"),
        ] {
            let set = SetParams { values: vec![value(&name, ty, v)], parameter_key: "bad".into() };
            let refused: Vec<WireFault> = c.call_typed(proxy_api::TRY_SET.name, &set).await.expect("try_set");
            assert_eq!(refused.len(), 1, "{name} = {v:?}: {refused:?}");
            assert_eq!((refused[0].name.as_str(), refused[0].code), (name.as_str(), 9007));
            assert!(refused[0].reason.contains(why), "{:?}", refused[0].reason);
            match c.call_typed::<_, i32>(proxy_api::SET.name, &set).await {
                Err(xmlrpc::Error::Fault(f)) => {
                    assert_eq!(f.code, 9007);
                    assert!(f.string.starts_with(&format!("{name}: ")) && f.string.contains(why), "{}", f.string);
                }
                other => panic!("{name} = {v:?} was not refused: {other:?}"),
            }
        }
        assert_eq!(bed.runs(), Vec::<String>::new(), "no daemon ran");
        assert_eq!((conf("dnsmasq.conf"), conf("nftables.conf"), conf("hostapd.conf")), before);
        let h: proxy_api::Health = c.call_typed(proxy_api::HEALTH.name, ()).await.expect("health");
        assert_eq!(h.parameter_key, "pm");
    });
}
