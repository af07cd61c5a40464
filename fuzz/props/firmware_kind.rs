//! The property of the fuzz target `firmware_kind`: telling what a file a Download brought to a
//! virtual CWMP device is (`hypervisor_agent::firmware::kind`), before anything changes. Input:
//! the file. Included with `#[path]` by the target and by `hypervisor-agent/tests/fuzz_replay.rs`.
#![allow(dead_code)]

use hypervisor_agent::firmware::{kind, Kind};

/// Checks the property on one input; panics when it does not hold. Returns whether the file
/// was taken as a firmware image. A disk image is a qcow2 header of version 2 or 3; an
/// initramfs is gzip whose content opens with a newc header; the answer is the same twice.
pub fn check_firmware_kind(data: &[u8]) -> bool {
    let k = kind(data);
    assert_eq!(kind(data), k, "read twice, read differently");
    match k {
        Ok(Kind::Disk) => {
            assert!(data.starts_with(b"QFI\xfb"), "a disk image without the qcow2 magic");
            assert!(matches!(data.get(4..8), Some([0, 0, 0, 2 | 3])), "a qcow2 version other than 2 or 3");
            true
        }
        Ok(Kind::Initramfs) => {
            assert!(data.starts_with(&[0x1f, 0x8b]), "an initramfs that is not gzip");
            true
        }
        Err(_) => false,
    }
}
