//! The binary's checks before it serves: `--validate`, a short secret, an unspecified address.

use std::process::Command;

fn proxy(dir: &std::path::Path, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vrgw-proxy"))
        .args(["--listen", "127.0.0.1:0", "--secret-file"])
        .arg(dir.join("secret"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--run-dir")
        .arg(dir.join("run"))
        .args(extra)
        .output()
        .expect("run vrgw-proxy")
}

#[test]
fn validate_checks_the_saved_configuration() {
    let dir = std::env::temp_dir().join(format!("vrgw-proxy-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("state")).expect("dir");
    std::fs::write(dir.join("secret"), "0123456789abcdef").expect("secret");

    let ok = proxy(&dir, &["--validate"]);
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{out}{}", String::from_utf8_lossy(&ok.stderr));
    assert!(out.contains("configuration valid") && out.contains("192.168.1.1/24"), "{out}");

    std::fs::write(dir.join("state/state.json"), "{\"version\":1,\"parameter_key\":\"\",\"tree\":{\"values\":{\"Device.Nope\":{\"type\":\"string\",\"value\":\"x\"}},\"tables\":{},\"written_once\":[]}}").expect("state");
    let bad = proxy(&dir, &["--validate"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("Device.Nope: not in the data model"));

    std::fs::write(dir.join("secret"), "short").expect("secret");
    let short = proxy(&dir, &["--validate"]);
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 16 characters"));

    std::fs::write(dir.join("secret"), "0123456789abcdef").expect("secret");
    let any = Command::new(env!("CARGO_BIN_EXE_vrgw-proxy"))
        .args(["--listen", "0.0.0.0:8730", "--secret-file"])
        .arg(dir.join("secret"))
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&any.stderr).contains("not an unspecified one"));
    let _ = std::fs::remove_dir_all(&dir);
}
