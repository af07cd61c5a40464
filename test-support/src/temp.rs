//! Temp dirs named after the test and the process, removed when dropped unless the test failed.

use std::ops::Deref;
use std::path::{Path, PathBuf};

/// A fresh directory `$TMPDIR/<name>-<pid>`: removed when dropped, or, when the thread is
/// panicking (a failed test), kept and its path printed so the logs in it can be read.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Empties (or creates) `$TMPDIR/<name>-<pid>`.
    pub fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        TempDir { path }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.path
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("logs kept in {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Writes a file that holds secrets, mode 0600 from its creation; the error names the file.
pub fn try_write_secret(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_when_dropped_and_fresh_when_made() {
        let dir = TempDir::new("ts-temp");
        std::fs::write(dir.join("f"), "x").expect("write");
        let again = TempDir::new("ts-temp");
        assert!(!again.join("f").exists(), "made empty");
        let path = again.path().to_path_buf();
        drop(again);
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn kept_when_the_test_panics() {
        let path = std::thread::spawn(|| {
            let dir = TempDir::new("ts-temp-panic");
            let path = dir.path().to_path_buf();
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                let _dir = dir;
                panic!("a failed assertion");
            }));
            path
        })
        .join()
        .expect("thread");
        assert!(path.exists());
        let _ = std::fs::remove_dir_all(&path);
    }
}
