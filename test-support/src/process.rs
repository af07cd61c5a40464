//! Daemons as child processes: started with their arguments, environment and log file, their
//! `listening key=ADDR ...` first line read, SIGTERM and SIGKILL, killed when dropped.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A daemon's command line, before it runs.
pub struct Spawn {
    cmd: Command,
    log: Option<PathBuf>,
}

impl Spawn {
    /// The binary at `program` (for a crate's own binary, `env!("CARGO_BIN_EXE_<name>")` at the
    /// call site; for another crate's, [`workspace_binary`]).
    pub fn new(program: impl AsRef<OsStr>) -> Spawn {
        Spawn { cmd: Command::new(program), log: None }
    }

    /// One more argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Spawn {
        self.cmd.arg(arg);
        self
    }

    /// More arguments.
    pub fn args<I, S>(mut self, args: I) -> Spawn
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// `--config path`.
    pub fn config(self, path: &Path) -> Spawn {
        self.arg("--config").arg(path)
    }

    /// An environment variable.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Spawn {
        self.cmd.env(key, value);
        self
    }

    /// Stderr appended to `path` (created when missing); without it, stderr is discarded.
    pub fn log(mut self, path: impl Into<PathBuf>) -> Spawn {
        self.log = Some(path.into());
        self
    }

    fn stderr(&self) -> Stdio {
        match &self.log {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .unwrap_or_else(|e| panic!("log {}: {e}", path.display())),
            ),
            None => Stdio::null(),
        }
    }

    /// Starts it and waits for its first line on stdout, which must begin with `listening `
    /// (else this panics with the line and the log).
    pub fn start(mut self) -> Daemon {
        let stderr = self.stderr();
        let mut child = self
            .cmd
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("start {:?}: {e}", self.cmd.get_program()));
        let mut line = String::new();
        let read = child.stdout.take().map(|out| BufReader::new(out).read_line(&mut line));
        let mut daemon = Daemon { child, line: line.trim_end().to_string(), log: self.log };
        if !matches!(read, Some(Ok(_))) || !daemon.line.starts_with("listening ") {
            daemon.kill();
            panic!("{:?} said {:?}\n{}", self.cmd.get_program(), daemon.line, daemon.log());
        }
        daemon
    }

    /// Starts it without waiting for anything (stdout discarded): for a daemon that prints no
    /// `listening` line.
    pub fn spawn(mut self) -> Daemon {
        let stderr = self.stderr();
        let child = self
            .cmd
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("start {:?}: {e}", self.cmd.get_program()));
        Daemon { child, line: String::new(), log: self.log }
    }
}

/// A running daemon, SIGKILLed and reaped when dropped (a failed assertion included).
pub struct Daemon {
    child: Child,
    line: String,
    log: Option<PathBuf>,
}

impl Daemon {
    /// Its `listening ...` line (empty for one started with [`Spawn::spawn`]).
    pub fn listening(&self) -> &str {
        &self.line
    }

    /// The address its `listening` line gives as `key=ADDR`, if it names one (`portal=off` does not).
    pub fn try_addr(&self, key: &str) -> Option<SocketAddr> {
        self.line
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key).and_then(|rest| rest.strip_prefix('=')))
            .and_then(|a| a.parse().ok())
    }

    /// The address its `listening` line gives as `key=ADDR`; panics with the line when missing.
    pub fn addr(&self, key: &str) -> SocketAddr {
        self.try_addr(key).unwrap_or_else(|| panic!("no {key}= address in {:?}", self.line))
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// What it logged so far (empty without a log file).
    pub fn log(&self) -> String {
        self.log.as_deref().and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default()
    }

    /// SIGKILL, and reaped.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, without waiting (nothing is sent to one that has already exited).
    pub fn sigterm(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        }
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace`; how it exited when it did in time.
    pub fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        self.sigterm();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        None
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The binary `name` of this workspace, built next to the running test or bench binary (in the
/// same profile) when it is not there yet.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "-q", "-p", name, "--bin", name]);
        if dir.ends_with("release") {
            build.arg("--release");
        }
        assert!(build.status().is_ok_and(|s| s.success()) && path.exists(), "could not build {name}");
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Spawn {
        Spawn::new("sh").args(["-c", script])
    }

    #[test]
    fn the_listening_line_names_the_addresses() {
        let d = sh("echo 'listening cwmp=127.0.0.1:7547 nbi=[::1]:7557 portal=off'; exec sleep 30").start();
        assert_eq!(d.addr("cwmp"), "127.0.0.1:7547".parse().expect("addr"));
        assert_eq!(d.addr("nbi"), "[::1]:7557".parse().expect("addr"));
        assert_eq!(d.try_addr("portal"), None);
        assert_eq!(d.try_addr("cwm"), None, "a key is a whole word before '='");
    }

    #[test]
    fn a_daemon_is_killed_when_dropped() {
        let d = sh("echo listening x=127.0.0.1:1; exec sleep 30").start();
        let pid = d.id().to_string();
        drop(d);
        let alive = Command::new("kill").args(["-0", &pid]).stderr(Stdio::null()).status();
        assert!(alive.is_ok_and(|s| !s.success()), "pid {pid} still runs");
    }

    #[test]
    fn sigterm_ends_it_and_its_log_is_kept() {
        let dir = crate::TempDir::new("ts-process-term");
        let mut d = sh("echo started >&2; echo listening x=127.0.0.1:1; exec sleep 30").log(dir.join("log")).start();
        let status = d.terminate(Duration::from_secs(5)).expect("exited on SIGTERM");
        assert!(!status.success());
        assert_eq!(d.log(), "started\n");
    }

    #[test]
    #[should_panic(expected = "said \"\"")]
    fn a_daemon_that_exits_before_listening_fails_the_test() {
        sh("echo no >&2; exit 1").start();
    }
}
