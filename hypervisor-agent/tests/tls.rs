//! The agent reaches an https ACS with rustls, trusting the CA given in `acs_ca_file`, and
//! refuses one whose certificate that CA did not sign. Loopback only.

use std::time::{Duration, Instant};

use test_support::acs::start_acs_tls;
use test_support::agent::{agent_config, start_agent};
use test_support::TempDir;

const AGENT_BIN: &str = env!("CARGO_BIN_EXE_hypervisor-agent");

#[test]
fn the_agent_informs_over_tls_and_refuses_an_unknown_certificate() {
    let dir = TempDir::new("hv-tls");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    std::fs::write(dir.join("acs.pem"), cert.cert.pem()).expect("cert");
    std::fs::write(dir.join("acs.key"), cert.key_pair.serialize_pem()).expect("key");
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
    std::fs::write(dir.join("other.pem"), other.cert.pem()).expect("cert");
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let (cwmp, nbi) = start_acs_tls(&rt, &dir, "host-tls", Some((&dir.join("acs.pem"), &dir.join("acs.key"))));
    let prefix = format!("ht{}", std::process::id() % 1000);
    let https = format!("https://localhost:{}/", cwmp.port());

    // A CA that did not sign the ACS's certificate: no session, a clear error in the log.
    let wrong = dir.join("wrong");
    std::fs::create_dir_all(&wrong).expect("dir");
    let configure = |at: &std::path::Path, ca: &std::path::Path| {
        let ca_line = format!("acs_ca_file = \"{}\"\n", ca.display());
        agent_config(at, "host-tls", cwmp, &prefix, "10.250.0.0/16", &ca_line);
        let toml = std::fs::read_to_string(at.join("agent.toml")).expect("toml");
        std::fs::write(at.join("agent.toml"), toml.replace(&format!("http://{cwmp}/"), &https)).expect("toml");
    };
    configure(&wrong, &dir.join("other.pem"));
    let mut agent = start_agent(AGENT_BIN, &wrong);
    let deadline = Instant::now() + Duration::from_secs(15);
    while !std::fs::read_to_string(wrong.join("agent.log")).unwrap_or_default().contains("session failed: ACS: TLS") {
        assert!(Instant::now() < deadline, "{}", std::fs::read_to_string(wrong.join("agent.log")).unwrap_or_default());
        std::thread::sleep(Duration::from_millis(100));
    }
    agent.kill();

    // The right CA: the agent bootstraps into the ACS over TLS.
    configure(&dir, &dir.join("acs.pem"));
    let agent = start_agent(AGENT_BIN, &dir);
    rt.block_on(nbi.wait_device("00A0B1-vRGW%2DHost-host%2Dtls", &dir.join("agent.log")));
    drop(agent);
    for br in ["trunk", "park"] {
        let _ =
            std::process::Command::new("ovs-vsctl").args(["--if-exists", "del-br", &format!("{prefix}-{br}")]).status();
    }
}
