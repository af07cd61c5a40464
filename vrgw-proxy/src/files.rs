//! Atomic file replacement: temporary file, fsync, rename, fsync of the directory.

use std::io::Write;
use std::path::Path;

/// Replaces `path` with `data` so that a crash leaves either the old or the new file.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp"));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_whole_files() {
        let dir = std::env::temp_dir().join(format!("vrgw-files-{}", std::process::id()));
        let p = dir.join("a.conf");
        super::write_atomic(&p, b"one").expect("write");
        super::write_atomic(&p, b"two").expect("rewrite");
        assert_eq!(std::fs::read(&p).expect("read"), b"two");
        assert!(!dir.join(".a.conf.tmp").exists());
        let _ = std::fs::remove_dir_all(dir);
    }
}
