//! `ext(file, function, args...)`: GenieACS's extensions, here programs in a configured
//! directory. `ext("crm", "lookup", serial)` runs `<dir>/crm` with no arguments (nothing on
//! its command line), writes `{"function": "lookup", "args": ["..."]}` to its standard input and
//! takes the JSON its standard output holds when it exits with 0; anything else is the call's
//! fault, with the first line of its standard error. A program has `timeout` to answer and is
//! killed after; its environment is `PATH` alone. Results are kept for the session (as GenieACS
//! keeps them), so a script that runs again does not call again.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

/// The most an extension may write to its standard output.
pub const MAX_OUTPUT: usize = 1 << 20;

/// Where extensions are, and how long one may take.
#[derive(Debug, Clone)]
pub struct Extensions {
    /// The directory of the programs.
    pub dir: PathBuf,
    /// How long a call may take.
    pub timeout: Duration,
}

fn program(dir: &Path, file: &str) -> Result<PathBuf, String> {
    let ok = !file.is_empty()
        && file.len() <= 128
        && !file.starts_with('.')
        && file.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if !ok {
        return Err(format!("{file:?} is not an extension's name (A-Z a-z 0-9 _ - .)"));
    }
    // GenieACS names extensions by their file without `.js`.
    let path = dir.join(file);
    if path.is_file() {
        return Ok(path);
    }
    Err(format!("no extension {file} in {}", dir.display()))
}

impl Extensions {
    /// Runs one call: `call[0]` the program, `call[1]` the function, the rest its arguments.
    pub fn call(&self, call: &[String]) -> Result<Json, String> {
        let (file, function) = match call {
            [f, func, ..] => (f, func),
            _ => return Err("ext takes a file and a function".into()),
        };
        let path = program(&self.dir, file)?;
        let mut child = Command::new(&path)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .current_dir(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{file}: cannot start: {e}"))?;
        let input = json!({"function": function, "args": &call[2..]}).to_string();
        // Written, and the output read, by threads of their own: a program that reads nothing
        // or never closes its output does not hold the session past the deadline.
        if let Some(mut stdin) = child.stdin.take() {
            std::thread::spawn(move || {
                let _ = stdin.write_all(input.as_bytes());
            });
        }
        let (out_tx, out_rx) = std::sync::mpsc::channel();
        let mut stdout = child.stdout.take();
        std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(s) = stdout.as_mut() {
                let _ = s.take(MAX_OUTPUT as u64 + 1).read_to_end(&mut out);
            }
            let _ = out_tx.send(out);
        });
        let (err_tx, err_rx) = std::sync::mpsc::channel();
        let mut stderr = child.stderr.take();
        std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(s) = stderr.as_mut() {
                let _ = s.take(4096).read_to_end(&mut out);
            }
            let _ = err_tx.send(out);
        });
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break st,
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("{file}: no answer within {} ms", self.timeout.as_millis()));
                }
                Err(e) => return Err(format!("{file}: {e}")),
            }
        };
        // Whatever it started and left holding its output is not waited for past the deadline.
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(100));
        let out = out_rx
            .recv_timeout(left)
            .map_err(|_| format!("{file} {function}: its output stayed open after it exited"))?;
        let err = err_rx.recv_timeout(Duration::from_millis(100)).unwrap_or_default();
        if !status.success() {
            let first = String::from_utf8_lossy(&err).lines().next().unwrap_or("").trim().to_string();
            return Err(format!(
                "{file} {function}: {status}{}",
                if first.is_empty() { String::new() } else { format!(": {first}") }
            ));
        }
        if out.len() > MAX_OUTPUT {
            return Err(format!("{file} {function}: more than {MAX_OUTPUT} bytes of output"));
        }
        serde_json::from_slice(&out).map_err(|e| format!("{file} {function}: its output is not JSON ({e})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    #[test]
    fn a_program_answers_on_its_standard_output() {
        let dir = test_support::TempDir::new("acs-ext");
        script(dir.path(), "echo", "cat");
        script(dir.path(), "fail", "echo 'no such subscriber' >&2; exit 3");
        script(dir.path(), "slow", "sleep 5");
        script(dir.path(), "text", "echo not json");
        let ext = Extensions { dir: dir.path().to_path_buf(), timeout: Duration::from_millis(300) };
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            ext.call(&s(&["echo", "get", "SN1", "2"])),
            Ok(json!({"function": "get", "args": ["SN1", "2"]})),
            "the call on standard input, nothing on the command line"
        );
        let e = ext.call(&s(&["fail", "get"])).expect_err("exit 3");
        assert!(e.contains("no such subscriber"), "{e}");
        let t = Instant::now();
        assert!(ext.call(&s(&["slow", "get"])).expect_err("too slow").contains("no answer within 300 ms"));
        assert!(t.elapsed() < Duration::from_secs(3), "killed at its deadline");
        assert!(ext.call(&s(&["text", "get"])).expect_err("not JSON").contains("not JSON"));
        assert!(ext.call(&s(&["../echo", "get"])).expect_err("no path").contains("not an extension's name"));
        assert!(ext.call(&s(&["none", "get"])).expect_err("missing").contains("no extension none"));
    }
}
