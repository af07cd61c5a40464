//! Firmware images a Download brings to a virtual CWMP device ("1 Firmware Upgrade Image"):
//! what kind of image a file is, read from its content (never its name), and where the agent
//! keeps it. A vRGW's firmware is either a qcow2 disk image (a disk template's instances get
//! their overlay over it) or a gzip'd newc initramfs (a kernel template's instances boot it with
//! the template's kernel). Anything else is refused before anything changes.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The kinds of firmware image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A qcow2 disk image (version 2 or 3).
    Disk,
    /// A gzip'd newc cpio archive: an initramfs.
    Initramfs,
}

impl Kind {
    /// The file-name ending the agent stores it under; [`Kind::of_path`] reads it back.
    pub fn extension(self) -> &'static str {
        match self {
            Kind::Disk => "qcow2",
            Kind::Initramfs => "initrd.img",
        }
    }

    /// The kind of a stored firmware, by the ending [`store`] gave it.
    pub fn of_path(path: &str) -> Kind {
        if path.ends_with(".qcow2") {
            Kind::Disk
        } else {
            Kind::Initramfs
        }
    }
}

/// Why a file is not a firmware image.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotFirmware {
    /// Empty.
    #[error("the file is empty")]
    Empty,
    /// A qcow2 header of a version QEMU does not read.
    #[error("a qcow2 image of version {0} (2 or 3 expected)")]
    Qcow2Version(u32),
    /// gzip, but not an intact gzip stream of a newc cpio archive.
    #[error("gzip data that is not a newc cpio archive (an initramfs): {0}")]
    NotInitramfs(String),
    /// Neither.
    #[error("neither a qcow2 disk image nor a gzip'd newc initramfs (it starts with {0})")]
    Unknown(String),
    /// The downloaded file could not be read back.
    #[error("reading the file: {0}")]
    Unreadable(String),
}

const QCOW2_MAGIC: &[u8] = b"QFI\xfb";
const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const NEWC_MAGIC: &[u8] = b"070701";
/// A newc header: its magic and 13 fields of 8 hex digits.
const NEWC_HEADER: usize = 110;

/// What kind of firmware the file `r` reads is (a downloaded file, or bytes): only a qcow2
/// header is read of a disk image; a gzip stream is read through (its CRC checked), so a cut or
/// altered initramfs is refused here rather than at the guest's boot.
pub fn kind(mut r: impl Read) -> Result<Kind, NotFirmware> {
    let mut head = [0u8; 8];
    let mut got = 0;
    while got < head.len() {
        match r.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) => return Err(NotFirmware::Unreadable(e.to_string())),
        }
    }
    let head = &head[..got];
    if head.is_empty() {
        return Err(NotFirmware::Empty);
    }
    if head.starts_with(QCOW2_MAGIC) {
        let version = head.get(4..8).map_or(0, |v| u32::from_be_bytes([v[0], v[1], v[2], v[3]]));
        return match version {
            2 | 3 => Ok(Kind::Disk),
            v => Err(NotFirmware::Qcow2Version(v)),
        };
    }
    if head.starts_with(GZIP_MAGIC) {
        let mut gz = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(head.chain(r)));
        let mut header = [0u8; NEWC_HEADER];
        gz.read_exact(&mut header).map_err(|e| NotFirmware::NotInitramfs(e.to_string()))?;
        if !header.starts_with(NEWC_MAGIC) || !header[6..].iter().all(u8::is_ascii_hexdigit) {
            return Err(NotFirmware::NotInitramfs("no newc header at its start".into()));
        }
        std::io::copy(&mut gz, &mut std::io::sink()).map_err(|e| NotFirmware::NotInitramfs(e.to_string()))?;
        return Ok(Kind::Initramfs);
    }
    let start: String = head.iter().map(|b| format!("{b:02x}")).collect();
    Err(NotFirmware::Unknown(start))
}

/// Stores the downloaded file `part` (in `dir`) under its SHA-256 and kind (`HASH.qcow2`,
/// `HASH.initrd.img`; the same image downloaded twice is kept once), readable by QEMU's user
/// (an image is no secret, and `dir` is made 0755 for it to be reached); its path. The file is
/// hashed as it is read, never whole in memory, then renamed into place (or removed, when that
/// image is there already).
pub fn store(dir: &Path, part: &Path, kind: Kind) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    let mut f = std::fs::File::open(part)?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        ctx.update(&buf[..k]);
    }
    let hash: String = ctx.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let path = dir.join(format!("{hash}.{}", kind.extension()));
    if path.exists() {
        std::fs::remove_file(part)?;
    } else {
        std::fs::set_permissions(part, std::fs::Permissions::from_mode(0o644))?;
        std::fs::rename(part, &path)?;
    }
    Ok(path)
}

/// Images made for tests (here and in the agent's integration tests and the testbed's).
pub mod testing {
    use super::QCOW2_MAGIC;
    use std::io::Write as _;

    /// A gzip'd newc archive of one file (`init`, `content`) and the trailer.
    pub fn initramfs(content: &[u8]) -> Vec<u8> {
        let mut cpio = Vec::new();
        for (name, data, mode) in [("init", content, 0o100_755u32), ("TRAILER!!!", &b""[..], 0)] {
            let namesize = name.len() + 1;
            write!(
                cpio,
                "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
                1,
                mode,
                0,
                0,
                1,
                0,
                data.len(),
                0,
                0,
                0,
                0,
                namesize,
                0
            )
            .expect("header");
            cpio.extend_from_slice(name.as_bytes());
            cpio.push(0);
            while cpio.len() % 4 != 0 {
                cpio.push(0);
            }
            cpio.extend_from_slice(data);
            while cpio.len() % 4 != 0 {
                cpio.push(0);
            }
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&cpio).expect("gzip");
        gz.finish().expect("gzip")
    }

    /// `bytes` stored in `dir` as a downloaded image is ([`super::store`]); its path.
    pub fn stored(dir: &std::path::Path, bytes: &[u8], kind: super::Kind) -> std::path::PathBuf {
        std::fs::create_dir_all(dir).expect("firmware dir");
        let part = dir.join(".fetch-test.part");
        std::fs::write(&part, bytes).expect("part");
        super::store(dir, &part, kind).expect("stored")
    }

    /// The first bytes of a qcow2 image of `version`.
    pub fn qcow2(version: u32) -> Vec<u8> {
        let mut b = QCOW2_MAGIC.to_vec();
        b.extend_from_slice(&version.to_be_bytes());
        b.extend_from_slice(&[0; 96]);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{initramfs, qcow2, stored};
    use super::*;
    use std::io::Write as _;

    #[test]
    fn images_are_known_by_their_content_and_anything_else_is_refused_with_why() {
        assert_eq!(kind(&qcow2(3)[..]), Ok(Kind::Disk));
        assert_eq!(kind(&qcow2(2)[..]), Ok(Kind::Disk));
        assert_eq!(kind(&qcow2(4)[..]), Err(NotFirmware::Qcow2Version(4)));
        let initrd = initramfs(b"#!/bin/sh\necho v2\n");
        assert_eq!(kind(&initrd[..]), Ok(Kind::Initramfs));
        assert_eq!(kind(&b""[..]), Err(NotFirmware::Empty));
        assert_eq!(kind(&b"<html>404</html>"[..]), Err(NotFirmware::Unknown("3c68746d6c3e3430".into())));
        // Cut: the gzip stream ends early.
        assert!(matches!(kind(&initrd[..initrd.len() - 9]), Err(NotFirmware::NotInitramfs(_))));
        // gzip of something else.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&[b'x'; 200]).expect("gzip");
        let other = gz.finish().expect("gzip");
        assert_eq!(kind(&other[..]), Err(NotFirmware::NotInitramfs("no newc header at its start".into())));
    }

    #[test]
    fn a_downloaded_file_is_told_and_stored_without_being_read_whole() {
        let dir = std::env::temp_dir().join(format!("hv-fwfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let img = initramfs(b"v3");
        let part = dir.join(".fetch-1.part");
        std::fs::write(&part, &img).expect("part");
        let k = kind(std::fs::File::open(&part).expect("open")).expect("an initramfs");
        assert_eq!(k, Kind::Initramfs);
        let first = store(&dir, &part, k).expect("stored");
        assert!(!part.exists(), "renamed into place");
        // The same image again: the same name, kept once.
        let again = dir.join(".fetch-2.part");
        std::fs::write(&again, &img).expect("part");
        assert_eq!(store(&dir, &again, k).expect("stored"), first);
        assert!(!again.exists(), "a second copy is removed");
        assert_eq!(stored(&dir, &img, k), first);
        assert_eq!(std::fs::read_dir(&dir).expect("dir").count(), 1);
        // Short files.
        assert_eq!(kind(&b"QFI"[..]), Err(NotFirmware::Unknown("514649".into())));
        assert_eq!(kind(&b""[..]), Err(NotFirmware::Empty));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_image_is_stored_once_under_its_hash_and_kind() {
        let dir = std::env::temp_dir().join(format!("hv-fw-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let img = initramfs(b"v2");
        let a = stored(&dir, &img, Kind::Initramfs);
        let b = stored(&dir, &img, Kind::Initramfs);
        assert_eq!(a, b);
        assert!(a.display().to_string().ends_with(".initrd.img"));
        assert_eq!(Kind::of_path(&a.display().to_string()), Kind::Initramfs);
        assert_eq!(std::fs::read(&a).expect("read"), img);
        assert_eq!(std::fs::read_dir(&dir).expect("dir").count(), 1, "no part file left");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
