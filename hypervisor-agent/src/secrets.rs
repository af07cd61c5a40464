//! Files that hold secrets: created owner-only (0600, folders 0700), never world-readable for a
//! moment (the mode is given at creation, not set afterwards), and an existing one that is wider
//! tightened with a warning. The agent's store, each vRGW's proxy-secret file and disk overlays
//! are made through here; the configuration file (which holds `acs_password`) is the operator's,
//! so the agent only warns when group or others may read it ([`config_file_warning`]).

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

/// Mode of a file holding a secret.
pub const FILE_MODE: u32 = 0o600;
/// Mode of a folder of such files.
pub const DIR_MODE: u32 = 0o700;

/// Group and other permission bits.
const WIDE: u32 = 0o077;

/// Makes `path` exist as an owner-only file, tightening an existing one that group or others
/// may use (with a warning naming `what`). Nothing is written into it.
pub fn ensure_private_file(path: &Path, what: &str) -> io::Result<()> {
    match OpenOptions::new().write(true).create_new(true).mode(FILE_MODE).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => tighten(path, what),
        Err(e) => Err(e),
    }
}

/// Tightens `path` to 0600 when group or others have any permission on it, warning that it was
/// readable (`what` names it in the log). A missing file is no error.
pub fn tighten(path: &Path, what: &str) -> io::Result<()> {
    let mode = match std::fs::metadata(path) {
        Ok(m) => m.permissions().mode(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if mode & WIDE != 0 {
        tracing::warn!(
            file = %path.display(),
            mode = format!("{:o}", mode & 0o777),
            "{what} was open to group or others: made 0600"
        );
        std::fs::set_permissions(path, Permissions::from_mode(FILE_MODE))?;
    }
    Ok(())
}

/// Makes `dir` (and its parents) exist; `dir` itself owner-only (0700), tightened if it was not.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & WIDE != 0 {
        std::fs::set_permissions(dir, Permissions::from_mode(DIR_MODE))?;
    }
    Ok(())
}

/// Mode of a folder of secret files another user (QEMU's) must open by path: it may pass
/// through, not list; each file in it is owner-only.
pub const PASSABLE_DIR_MODE: u32 = 0o711;

/// Makes `dir` (and its parents) exist; `dir` itself 0711 ([`PASSABLE_DIR_MODE`]), narrowed if
/// it was wider.
pub fn passable_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(PASSABLE_DIR_MODE).create(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
    if mode & !PASSABLE_DIR_MODE != 0 {
        std::fs::set_permissions(dir, Permissions::from_mode(PASSABLE_DIR_MODE))?;
    }
    Ok(())
}

/// Writes `content` to `path` as an owner-only file, replacing what was there: written to a
/// temporary file created 0600 beside it, then renamed over it (a reader sees the old or the
/// new content, never a part, and never a wider file).
pub fn write_private(path: &Path, content: &[u8]) -> io::Result<()> {
    let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let tmp = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = OpenOptions::new().write(true).create_new(true).mode(FILE_MODE).open(&tmp)?;
    f.write_all(content)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// What to warn about the configuration file at `path` (it holds `acs_password` and
/// `cr_password`): `Some` when group or others may read it.
pub fn config_file_warning(path: &Path) -> Option<String> {
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o044 != 0).then(|| {
        format!(
            "{} is readable by {} (mode {:o}) and holds the agent's passwords: chmod 600 it",
            path.display(),
            match (mode & 0o040 != 0, mode & 0o004 != 0) {
                (true, true) => "group and others",
                (true, false) => "its group",
                _ => "others",
            },
            mode & 0o777
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("hv-secrets-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("scratch");
        d
    }

    #[test]
    fn files_are_made_owner_only_and_wide_ones_tightened() {
        let d = scratch("files");
        let f = d.join("store.db");
        ensure_private_file(&f, "the store").expect("create");
        assert_eq!(mode(&f), 0o600);
        std::fs::set_permissions(&f, Permissions::from_mode(0o644)).expect("widen");
        ensure_private_file(&f, "the store").expect("tighten");
        assert_eq!(mode(&f), 0o600);
        // One already private is left as it is (an owner-only 0400 stays 0400).
        std::fs::set_permissions(&f, Permissions::from_mode(0o400)).expect("narrow");
        ensure_private_file(&f, "the store").expect("keep");
        assert_eq!(mode(&f), 0o400);
        let s = d.join("sub/dir");
        private_dir(&s).expect("dir");
        assert_eq!(mode(&s), 0o700);
        std::fs::set_permissions(&s, Permissions::from_mode(0o755)).expect("widen");
        private_dir(&s).expect("dir again");
        assert_eq!(mode(&s), 0o700);
        let p = d.join("passable");
        passable_dir(&p).expect("passable");
        assert_eq!(mode(&p), 0o711);
        std::fs::set_permissions(&p, Permissions::from_mode(0o755)).expect("widen");
        passable_dir(&p).expect("again");
        assert_eq!(mode(&p), 0o711, "others may pass, not list");
        let secret = s.join("7");
        std::fs::write(&secret, b"old").expect("old");
        std::fs::set_permissions(&secret, Permissions::from_mode(0o644)).expect("widen");
        write_private(&secret, b"00112233").expect("write");
        assert_eq!((mode(&secret), std::fs::read(&secret).expect("read")), (0o600, b"00112233".to_vec()));
        assert_eq!(std::fs::read_dir(&s).expect("list").count(), 1, "no temporary file left");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_configuration_readable_by_others_is_reported() {
        let d = scratch("config");
        let c = d.join("agent.toml");
        std::fs::write(&c, "acs_password = \"x\"\n").expect("write");
        for (m, said) in [(0o600, None), (0o400, None), (0o640, Some("its group")), (0o604, Some("others"))] {
            std::fs::set_permissions(&c, Permissions::from_mode(m)).expect("chmod");
            let w = config_file_warning(&c);
            assert_eq!(w.as_deref().map(|w| said.is_some_and(|s| w.contains(s))), said.map(|_| true), "{m:o}: {w:?}");
        }
        std::fs::set_permissions(&c, Permissions::from_mode(0o644)).expect("chmod");
        assert!(config_file_warning(&c).is_some_and(|w| w.contains("group and others") && w.contains("644")));
        let _ = std::fs::remove_dir_all(&d);
    }
}
