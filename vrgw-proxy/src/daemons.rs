//! Applying rendered configurations to the real system. [`Daemons::check`] runs the daemons' own
//! checkers once (`dnsmasq --test`, `nft -c`) and gives a [`Checked`] configuration, the only
//! thing [`Daemons::apply`] takes: the LAN address (`ip`), the nftables ruleset (`nft -f`,
//! atomic), dnsmasq (a restart of the child it runs under this process) and the hostapd file. A
//! step that fails undoes the steps before it, so the previous working configuration keeps
//! serving. A dnsmasq left running by an earlier run of the proxy (killed or crashed before it
//! could stop its child) is found by its command line and stopped before a new one starts, so
//! there is never more than one.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use vrgw_proxy::files::write_atomic;
use vrgw_proxy::render::Rendered;

/// Where the daemons' files live and which programs to run.
#[derive(Debug, Clone)]
pub struct Paths {
    pub run_dir: PathBuf,
    pub lan_if: String,
    pub dnsmasq_bin: String,
    pub nft_bin: String,
    pub ip_bin: String,
    /// Do not touch the LAN interface's address (when something else owns it).
    pub manage_lan_address: bool,
}

impl Paths {
    pub fn dnsmasq_conf(&self) -> PathBuf {
        self.run_dir.join("dnsmasq.conf")
    }
    pub fn nft_conf(&self) -> PathBuf {
        self.run_dir.join("nftables.conf")
    }
    pub fn hostapd_conf(&self) -> PathBuf {
        self.run_dir.join("hostapd.conf")
    }
    pub fn pid_file(&self) -> PathBuf {
        self.run_dir.join("dnsmasq.pid")
    }
}

/// Why applying failed (after the rollback).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("the LAN address could not be set: {0}")]
    Lan(String),
    #[error("nftables refused the ruleset: {0}")]
    Nft(String),
    #[error("dnsmasq refused the configuration: {0}")]
    Dnsmasq(String),
    #[error("writing {0}: {1}")]
    Io(String, String),
}

/// A rendered configuration the daemons' own checkers accepted (made by [`Daemons::check`]
/// only), so a configuration is checked once and applied without being checked again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked(Rendered);

impl std::ops::Deref for Checked {
    type Target = Rendered;
    fn deref(&self) -> &Rendered {
        &self.0
    }
}

/// The configuration in force and the dnsmasq child.
pub struct Daemons {
    pub paths: Paths,
    applied: Option<Checked>,
    dnsmasq: Option<Child>,
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.stdin(Stdio::null()).output().map_err(|e| format!("{:?}: {e}", cmd.get_program()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

impl Daemons {
    pub fn new(paths: Paths) -> Daemons {
        Daemons { paths, applied: None, dnsmasq: None }
    }

    /// Whether dnsmasq is running.
    pub fn dnsmasq_running(&mut self) -> bool {
        matches!(self.dnsmasq.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Checks a rendered configuration with the daemons' own checkers (one `dnsmasq --test`,
    /// one `nft -c`), changing nothing.
    pub fn check(&self, r: Rendered) -> Result<Checked, ApplyError> {
        let dir = &self.paths.run_dir;
        std::fs::create_dir_all(dir).map_err(|e| ApplyError::Io(dir.display().to_string(), e.to_string()))?;
        let probe = dir.join(".dnsmasq.check.conf");
        write_atomic(&probe, r.dnsmasq.as_bytes())
            .map_err(|e| ApplyError::Io(probe.display().to_string(), e.to_string()))?;
        let res =
            run(Command::new(&self.paths.dnsmasq_bin).arg("--test").arg(format!("--conf-file={}", probe.display())));
        let _ = std::fs::remove_file(&probe);
        res.map_err(ApplyError::Dnsmasq)?;
        let probe = dir.join(".nftables.check.conf");
        write_atomic(&probe, r.nft.as_bytes())
            .map_err(|e| ApplyError::Io(probe.display().to_string(), e.to_string()))?;
        let res = run(Command::new(&self.paths.nft_bin).arg("-c").arg("-f").arg(&probe));
        let _ = std::fs::remove_file(&probe);
        res.map_err(ApplyError::Nft)?;
        Ok(Checked(r))
    }

    /// The configuration in force, if one was applied.
    pub fn applied(&self) -> Option<&Checked> {
        self.applied.as_ref()
    }

    /// Applies `r`, step by step; on failure the steps already taken are undone and the
    /// previous configuration is running again.
    pub fn apply(&mut self, r: &Checked) -> Result<(), ApplyError> {
        let old = self.applied.clone();
        let lan_changed = old.as_ref().map(|o| &o.lan) != Some(&r.lan);
        if lan_changed {
            self.set_lan(r.lan.as_deref()).map_err(ApplyError::Lan)?;
        }
        if old.as_ref().map(|o| &o.nft) != Some(&r.nft) {
            if let Err(e) = self.load_nft(&r.nft) {
                if lan_changed {
                    let _ = self.set_lan(old.as_ref().and_then(|o| o.lan.as_deref()));
                }
                return Err(ApplyError::Nft(e));
            }
        }
        if old.as_ref().map(|o| &o.dnsmasq) != Some(&r.dnsmasq) || lan_changed || !self.dnsmasq_running() {
            if let Err(e) = self.restart_dnsmasq(&r.dnsmasq) {
                tracing::warn!("dnsmasq refused the new configuration, restoring the previous one: {e}");
                if let Some(o) = &old {
                    if lan_changed {
                        let _ = self.set_lan(o.lan.as_deref());
                    }
                    let _ = self.load_nft(&o.nft);
                    if let Err(e2) = self.restart_dnsmasq(&o.dnsmasq) {
                        tracing::error!("the previous dnsmasq configuration does not start either: {e2}");
                    }
                }
                return Err(ApplyError::Dnsmasq(e));
            }
        }
        let hostapd = self.paths.hostapd_conf();
        write_atomic(&hostapd, r.hostapd.as_bytes())
            .map_err(|e| ApplyError::Io(hostapd.display().to_string(), e.to_string()))?;
        self.applied = Some(r.clone());
        Ok(())
    }

    fn set_lan(&self, cidr: Option<&str>) -> Result<(), String> {
        if !self.paths.manage_lan_address {
            return Ok(());
        }
        let dev = &self.paths.lan_if;
        run(Command::new(&self.paths.ip_bin).args(["link", "set", dev, "up"]))?;
        run(Command::new(&self.paths.ip_bin).args(["-4", "addr", "flush", "dev", dev]))?;
        if let Some(c) = cidr {
            run(Command::new(&self.paths.ip_bin).args(["addr", "add", c, "dev", dev]))?;
        }
        Ok(())
    }

    fn load_nft(&self, ruleset: &str) -> Result<(), String> {
        let path = self.paths.nft_conf();
        let next = self.paths.run_dir.join("nftables.conf.next");
        write_atomic(&next, ruleset.as_bytes()).map_err(|e| e.to_string())?;
        run(Command::new(&self.paths.nft_bin).arg("-f").arg(&next))?;
        std::fs::rename(&next, &path).map_err(|e| e.to_string())
    }

    fn stop_dnsmasq(&mut self) {
        if let Some(mut c) = self.dnsmasq.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn restart_dnsmasq(&mut self, conf: &str) -> Result<(), String> {
        // Absolute, so that a dnsmasq started by an earlier run is known by this argument
        // whatever directory either run started in.
        let path = std::path::absolute(self.paths.dnsmasq_conf()).map_err(|e| e.to_string())?;
        let next = self.paths.run_dir.join("dnsmasq.conf.next");
        write_atomic(&next, conf.as_bytes()).map_err(|e| e.to_string())?;
        std::fs::rename(&next, &path).map_err(|e| e.to_string())?;
        self.stop_dnsmasq();
        let conf_arg = format!("--conf-file={}", path.display());
        for pid in leftover_dnsmasq(Path::new("/proc"), &conf_arg) {
            tracing::warn!(
                pid,
                "stopping a dnsmasq an earlier run of the proxy left running with this configuration file"
            );
            stop_leftover(pid)?;
        }
        let mut child = Command::new(&self.paths.dnsmasq_bin)
            .arg("--keep-in-foreground")
            .arg("--log-facility=-")
            .arg(&conf_arg)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", self.paths.dnsmasq_bin))?;
        // dnsmasq fails at once when it cannot bind or read its files.
        for _ in 0..10 {
            std::thread::sleep(Duration::from_millis(20));
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                return Err(format!("dnsmasq exited ({status}): {}", err.trim()));
            }
        }
        // Drain its log so it never blocks on a full pipe.
        if let Some(err) = child.stderr.take() {
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                    tracing::info!(target: "dnsmasq", "{line}");
                }
            });
        }
        self.dnsmasq = Some(child);
        Ok(())
    }

    /// Stops dnsmasq (at exit).
    pub fn shutdown(&mut self) {
        self.stop_dnsmasq();
    }
}

impl Drop for Daemons {
    fn drop(&mut self) {
        self.stop_dnsmasq();
    }
}

/// The processes under `proc` (a procfs mount) whose command line holds the argument
/// `conf_arg` (`--conf-file=` and the absolute path of this proxy's dnsmasq.conf, which no other
/// program is given). Called when the proxy has no dnsmasq child of its own, so every one found
/// was left by an earlier run: a dnsmasq does not die with its parent, and one that kept running
/// would serve the old configuration beside the new one (DHCP sockets are bound with
/// `SO_REUSEPORT`) or keep the new one from binding its DNS port. The command line is read
/// rather than dnsmasq's pid file, whose number may since belong to another program.
pub fn leftover_dnsmasq(proc: &Path, conf_arg: &str) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir(proc) else { return Vec::new() };
    let mut found: Vec<i32> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|&pid| {
            std::fs::read(proc.join(pid.to_string()).join("cmdline"))
                .is_ok_and(|c| c.split(|&b| b == 0).any(|arg| arg == conf_arg.as_bytes()))
        })
        .collect();
    found.sort_unstable();
    found
}

/// Whether process `pid` is gone (or only a zombie waiting for its new parent to reap it).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

/// Stops a left-over dnsmasq: SIGTERM, then SIGKILL if it is still there after two seconds.
fn stop_leftover(pid: i32) -> Result<(), String> {
    for (signal, wait) in [(Signal::SIGTERM, Duration::from_secs(2)), (Signal::SIGKILL, Duration::from_secs(2))] {
        if gone(pid) {
            return Ok(());
        }
        if let Err(e) = kill(Pid::from_raw(pid), signal) {
            if e == nix::errno::Errno::ESRCH {
                return Ok(());
            }
            return Err(format!("stopping the dnsmasq left by an earlier run (pid {pid}): {e}"));
        }
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if gone(pid) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Err(format!("the dnsmasq left by an earlier run (pid {pid}) does not stop"))
}

/// The lease file dnsmasq writes.
pub fn lease_file(state_dir: &Path) -> PathBuf {
    state_dir.join("dnsmasq.leases")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A procfs look-alike: each process a directory with its NUL-separated command line.
    fn fake_proc(procs: &[(&str, &[&str])]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vrgw-proxy-proc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (pid, argv) in procs {
            let p = dir.join(pid);
            std::fs::create_dir_all(&p).unwrap_or_else(|e| panic!("{e}"));
            let mut cmdline = argv.join("\0");
            cmdline.push('\0');
            std::fs::write(p.join("cmdline"), cmdline).unwrap_or_else(|e| panic!("{e}"));
        }
        dir
    }

    #[test]
    fn only_a_dnsmasq_given_this_configuration_file_is_a_leftover() {
        let ours = "--conf-file=/run/vrgw-proxy/dnsmasq.conf";
        let dir = fake_proc(&[
            ("17", &["dnsmasq", "--keep-in-foreground", "--log-facility=-", ours]),
            ("23", &["dnsmasq", "--conf-file=/run/other/dnsmasq.conf"]),
            // A prefix of the path is not the path.
            ("31", &["dnsmasq", "--conf-file=/run/vrgw-proxy/dnsmasq.conf.next"]),
            ("42", &["sh", "-c", "echo --conf-file=/run/vrgw-proxy/dnsmasq.conf"]),
            ("5", &["/usr/sbin/dnsmasq", ours]),
            ("self", &["dnsmasq", ours]),
            ("99", &[]),
        ]);
        assert_eq!(leftover_dnsmasq(&dir, ours), vec![5, 17]);
        assert_eq!(leftover_dnsmasq(&dir.join("missing"), ours), Vec::<i32>::new());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
