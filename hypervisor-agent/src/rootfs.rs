//! A container vRGW's root file system: the template's root directory, shared read-only by
//! every instance of it, under a writable layer of the instance's own (overlayfs), so that a
//! thousand containers share one base and each costs only what it wrote.
//!
//! A layer is a folder of its own (`DIR/upper`, `DIR/work`, and `DIR/root` where the overlay is
//! mounted and which the container gets as `/`), owner-only: what the vRGW writes (its proxy's
//! state, the subscriber's settings) lands in `upper`. The agent mounts it on the host, where
//! libvirt's LXC driver binds it into the container; a mount does not survive the host's
//! restart, so the agent mounts it again before the domain starts ([`mount`] is idempotent).
//! Mounting goes through util-linux's `mount` (this workspace has no `unsafe` for the syscall).

use std::path::{Path, PathBuf};
use std::process::Command;

/// A failed layer operation.
#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    /// A path overlayfs's options cannot carry (`,`, `:`, `\` or white space in it).
    #[error("{0}: overlayfs cannot take this path (no ',', ':', '\\' or white space)")]
    BadPath(String),
    /// The template's root is not a directory with the container's init.
    #[error("{0} is not a container root file system (no {init} in it)", init = crate::domain::CONTAINER_INIT)]
    NotARoot(String),
    /// A file-system operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// On what.
        path: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// `mount` or `umount` refused.
    #[error("{0}")]
    Mount(String),
}

type Result<T> = std::result::Result<T, RootfsError>;

/// The directory a layer's overlay is mounted on (the container's `/`).
pub fn root_of(layer: &Path) -> PathBuf {
    layer.join("root")
}

fn checked(p: &Path) -> Result<String> {
    let s = p.display().to_string();
    if s.chars().any(|c| matches!(c, ',' | ':' | '\\') || c.is_whitespace()) {
        return Err(RootfsError::BadPath(s));
    }
    Ok(s)
}

/// Whether `path` is a mount point (in this process's mount namespace).
pub fn is_mounted(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else { return false };
    let want = path.display().to_string();
    // The fifth field is the mount point, with space, tab, newline and backslash written in octal.
    text.lines().filter_map(|l| l.split(' ').nth(4)).any(|m| unescape(m) == want)
}

fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let b = field.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|d| (b'0'..=b'7').contains(d)) {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(char::from(v));
            i += 4;
        } else {
            out.push(char::from(b[i]));
            i += 1;
        }
    }
    out
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd.output().map_err(|source| RootfsError::Io { op: "running", path: what.to_string(), source })?;
    if out.status.success() {
        return Ok(());
    }
    Err(RootfsError::Mount(format!("{what}: {}", String::from_utf8_lossy(&out.stderr).trim())))
}

/// Makes `layer` (owner-only) over `base` and mounts it at [`root_of`]`(layer)`; nothing to do
/// when it is mounted already. `base` must hold the container's init.
pub fn mount(layer: &Path, base: &Path) -> Result<()> {
    let root = root_of(layer);
    if is_mounted(&root) {
        return Ok(());
    }
    let base_s = checked(base)?;
    if !base.join(crate::domain::CONTAINER_INIT.trim_start_matches('/')).exists() {
        return Err(RootfsError::NotARoot(base_s));
    }
    let io = |op: &'static str, p: &Path| {
        let path = p.display().to_string();
        move |source| RootfsError::Io { op, path, source }
    };
    std::fs::create_dir_all(layer).map_err(io("making", layer))?;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(layer, std::fs::Permissions::from_mode(0o700)).map_err(io("restricting", layer))?;
    let (upper, work) = (layer.join("upper"), layer.join("work"));
    for d in [&upper, &work, &root] {
        std::fs::create_dir_all(d).map_err(io("making", d))?;
    }
    let options = format!("lowerdir={base_s},upperdir={},workdir={}", checked(&upper)?, checked(&work)?);
    run(
        Command::new("mount").args(["-t", "overlay", "overlay", "-o", &options]).arg(&root),
        &format!("mounting the overlay at {}", root.display()),
    )
}

/// Unmounts `layer`'s overlay (if mounted) and removes the layer with everything written in it.
pub fn remove(layer: &Path) -> Result<()> {
    let root = root_of(layer);
    if is_mounted(&root) {
        run(Command::new("umount").arg(&root), &format!("unmounting {}", root.display()))?;
    }
    match std::fs::remove_dir_all(layer) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(RootfsError::Io { op: "removing", path: layer.display().to_string(), source: e })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn temp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rootfs-{tag}-{}", http_shell::random_hex(6)));
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    }

    /// A template's root in `dir` (`DIR/base`): the container's init, and `shared.txt`.
    pub(crate) fn base_in(dir: &Path) -> PathBuf {
        let base = dir.join("base");
        let init = base.join(crate::domain::CONTAINER_INIT.trim_start_matches('/'));
        std::fs::create_dir_all(init.parent().expect("parent")).expect("base");
        std::fs::write(&init, "#!/bin/sh\n").expect("init");
        std::fs::write(base.join("shared.txt"), "from the template\n").expect("file");
        base
    }

    #[test]
    fn layers_share_the_base_and_keep_their_writes() {
        let dir = temp("share");
        let base = base_in(&dir);
        let (a, b) = (dir.join("a"), dir.join("b"));
        mount(&a, &base).expect("mount a");
        mount(&b, &base).expect("mount b");
        mount(&a, &base).expect("mounting again is nothing");
        assert!(is_mounted(&root_of(&a)) && is_mounted(&root_of(&b)));
        // Both see the base; a write in one lands in its layer only, the base untouched.
        assert_eq!(std::fs::read_to_string(root_of(&b).join("shared.txt")).expect("read"), "from the template\n");
        std::fs::write(root_of(&a).join("shared.txt"), "changed in a\n").expect("write through a");
        assert_eq!(std::fs::read_to_string(base.join("shared.txt")).expect("base"), "from the template\n");
        assert_eq!(std::fs::read_to_string(root_of(&b).join("shared.txt")).expect("b"), "from the template\n");
        assert_eq!(std::fs::read_to_string(a.join("upper/shared.txt")).expect("upper"), "changed in a\n");
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&a).expect("layer").permissions().mode() & 0o777, 0o700);
        remove(&a).expect("remove a");
        assert!(!a.exists() && !is_mounted(&root_of(&a)));
        remove(&a).expect("removing twice is nothing");
        remove(&b).expect("remove b");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn refuses_what_is_not_a_root_or_cannot_be_an_option() {
        let dir = temp("refuse");
        let e = mount(&dir.join("x"), &dir.join("empty")).expect_err("no init there");
        assert!(matches!(e, RootfsError::NotARoot(_)), "{e}");
        assert!(!dir.join("x").exists(), "nothing made");
        let e = mount(&dir.join("y"), Path::new("/srv/a,upperdir=/etc")).expect_err("a comma");
        assert!(matches!(e, RootfsError::BadPath(_)), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(unescape("/a\\040b\\134c"), "/a b\\c");
    }
}
