//! The agent binary and the files that hold secrets: its store made owner-only (an existing
//! world-readable one tightened, with a warning), a configuration file that group or others may
//! read reported at every start (it holds acs_password), and the open-file limit raised above
//! what its listener and its vRGWs' proxies may hold open. libvirt's test driver, loopback only.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use test_support::acs::start_acs;
use test_support::agent::agent_config;
use test_support::Spawn;
use test_support::TempDir;

const AGENT_BIN: &str = env!("CARGO_BIN_EXE_hypervisor-agent");
const AGENT: &str = "host-secrets";

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
}

fn chmod(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod");
}

/// `--check-config` on a file others may read warns (and still passes); on an owner-only one it
/// says nothing of the kind.
#[test]
fn a_configuration_file_others_may_read_is_reported() {
    let dir = TempDir::new("hv-secrets-config");
    agent_config(&dir, AGENT, "127.0.0.1:9".parse().expect("addr"), "hs", "10.251.0.0/16", "");
    let config = dir.join("agent.toml");
    assert_eq!(mode(&config), 0o600, "test-support writes it owner-only");
    let check = || {
        let out = Command::new(AGENT_BIN).arg("--config").arg(&config).arg("--check-config").output().expect("run");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert_eq!(check(), "");
    chmod(&config, 0o644);
    let said = check();
    assert!(said.contains("readable by group and others (mode 644)") && said.contains("chmod 600"), "{said}");
    chmod(&config, 0o640);
    assert!(check().contains("readable by its group"));
}

/// The running agent: a store left world-readable (as an older agent made it) is tightened
/// and the log says so; the configuration's mode is warned about, not changed; the open-file
/// limit is above the connection-request cap (256) plus 4,096 proxy connections.
#[test]
fn the_store_is_tightened_and_the_open_file_limit_raised() {
    let dir = TempDir::new("hv-secrets-run");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (cwmp, nbi) = start_acs(&rt, &dir, AGENT);
    agent_config(&dir, AGENT, cwmp, "hs", "10.251.0.0/16", "");
    let db = dir.join("agent.db");
    std::fs::write(&db, b"").expect("empty store");
    chmod(&db, 0o644);
    chmod(&dir.join("agent.toml"), 0o604);
    // Started with the common default soft limit of 1,024 open files (hard 8,192, so that
    // raising it needs no privilege).
    let agent = Spawn::new("prlimit")
        .args(["--nofile=1024:8192", "--"])
        .arg(AGENT_BIN)
        .config(&dir.join("agent.toml"))
        .env("RUST_LOG", "info")
        .log(dir.join("agent.log"))
        .start();
    assert!(agent.try_addr("cr").is_some(), "agent said {:?}\n{}", agent.listening(), agent.log());
    let log = dir.join("agent.log");
    rt.block_on(nbi.wait_device("00A0B1-vRGW%2DHost-host%2Dsecrets", &log));
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(mode(&db), 0o600, "{text}");
    assert!(text.contains("the agent's store was open to group or others: made 0600"), "{text}");
    assert!(text.contains("readable by others (mode 604)"), "{text}");
    assert_eq!(mode(&dir.join("agent.toml")), 0o604, "the operator's file is not changed");

    let limits = std::fs::read_to_string(format!("/proc/{}/limits", agent.id())).expect("limits");
    let soft = |text: &str| -> u64 {
        let line = text.lines().find(|l| l.starts_with("Max open files")).expect("open files line");
        line.split_whitespace().nth(3).and_then(|v| v.parse().ok()).expect("soft limit")
    };
    // Raised to the connection-request cap (256) plus 4,096 proxy connections plus 256.
    assert_eq!(soft(&limits), 256 + 4096 + 256, "{limits}");
    drop(agent);
}
