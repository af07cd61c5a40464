//! The vRGW's data model: factory defaults, live values (uptime, memory), hosts from the dnsmasq
//! lease file, the checks that span several parameters, and the state file.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use cwmp::Value;
use datamodel::tree::Snapshot;
use datamodel::{Schema, Tree};
use serde::{Deserialize, Serialize};

pub use datamodel::rules::{flag, lan, prefix_len, text, POOL};
/// The hosts table, filled from dnsmasq's leases.
pub const HOSTS: &str = "Device.Hosts.Host.";

fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

/// A tree with the vRGW's factory configuration (see [`datamodel::factory::vrgw`]).
pub fn factory_defaults(instance_id: &str) -> Tree {
    datamodel::factory::vrgw(instance_id)
}

/// The guest image's release, one line, written by the image's build (testbed/tb/image.py).
pub const RELEASE_FILE: &str = "/etc/vrgw-release";

/// `SoftwareVersion`: the proxy's version, with the image's release as build metadata when
/// the image names one (`0.1.0+tb.2`): a firmware Download changes it.
pub fn software_version(release: Option<&str>) -> String {
    match release.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => format!("{}+{}", env!("CARGO_PKG_VERSION"), r.lines().next().unwrap_or(r)),
        None => env!("CARGO_PKG_VERSION").to_string(),
    }
}

/// Serves DeviceInfo's live values from the system.
pub fn install_live_values(t: &mut Tree) {
    let release = std::fs::read_to_string(RELEASE_FILE).ok();
    let _ = t.set_internal("Device.DeviceInfo.SoftwareVersion", s(&software_version(release.as_deref())));
    let _ = t.set_internal("Device.DeviceInfo.Manufacturer", s("vRGW Project"));
    let _ = t.set_internal("Device.DeviceInfo.ProductClass", s("vRGW"));
    t.bind_getter(
        "Device.DeviceInfo.UpTime",
        Arc::new(|_| {
            let up = std::fs::read_to_string("/proc/uptime").ok()?;
            let secs: f64 = up.split_whitespace().next()?.parse().ok()?;
            Some(Value::UnsignedInt(secs as u32))
        }),
    );
    for (param, field) in [("Total", "MemTotal:"), ("Free", "MemAvailable:")] {
        t.bind_getter(
            &format!("Device.DeviceInfo.MemoryStatus.{param}"),
            Arc::new(move |_| {
                let info = std::fs::read_to_string("/proc/meminfo").ok()?;
                let line = info.lines().find(|l| l.starts_with(field))?;
                let kib: u32 = line.split_whitespace().nth(1)?.parse().ok()?;
                Some(Value::UnsignedInt(kib))
            }),
        );
    }
}

/// One lease of the dnsmasq lease file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// When it ends (seconds since the epoch).
    pub expiry: u64,
    /// The client's MAC address, lower case.
    pub mac: String,
    /// The address leased.
    pub ip: String,
    /// The name the client gave, empty when none.
    pub hostname: String,
}

/// Parses dnsmasq's lease file (`expiry mac ip hostname client-id`, `*` for unknown).
pub fn parse_leases(text: &str) -> Vec<Lease> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 4 {
                return None;
            }
            Some(Lease {
                expiry: f[0].parse().ok()?,
                mac: f[1].to_ascii_lowercase(),
                ip: f[2].to_string(),
                hostname: if f[3] == "*" { String::new() } else { f[3].to_string() },
            })
        })
        .collect()
}

/// Makes Device.Hosts.Host match the leases: a host keeps its instance number while its lease
/// lasts; new hosts get new rows; gone ones are removed.
pub fn sync_hosts(t: &mut Tree, leases: &[Lease]) {
    let mut rows: BTreeMap<String, u32> = BTreeMap::new();
    for n in t.instances(HOSTS) {
        if let Some(Value::String(mac)) = t.value(&format!("{HOSTS}{n}.PhysAddress")) {
            rows.insert(mac, n);
        }
    }
    for (mac, n) in &rows {
        if !leases.iter().any(|l| &l.mac == mac) {
            let _ = t.delete_object_internal(&format!("{HOSTS}{n}."));
        }
    }
    for l in leases {
        let n = match rows.get(&l.mac) {
            Some(&n) => n,
            None => match t.add_object_internal(HOSTS) {
                Ok(n) => n,
                Err(_) => continue,
            },
        };
        let p = format!("{HOSTS}{n}.");
        let _ = t.set_internal(&format!("{p}PhysAddress"), s(&l.mac));
        let _ = t.set_internal(&format!("{p}IPAddress"), s(&l.ip));
        let _ = t.set_internal(&format!("{p}HostName"), s(&l.hostname));
        let _ = t.set_internal(&format!("{p}Active"), Value::Boolean(true));
        let _ = t.set_internal(&format!("{p}Layer3Interface"), s("Device.IP.Interface.1"));
        let _ = t.set_internal(&format!("{p}DHCPClient"), s("Device.DHCPv4.Server.Pool.1"));
    }
}

/// What the state file holds.
#[derive(Debug, Serialize, Deserialize)]
pub struct Persisted {
    /// Format version (1).
    pub version: u32,
    /// The ParameterKey of the last applied change.
    pub parameter_key: String,
    /// The configuration.
    pub tree: Snapshot,
}

/// Loads the state file; `Ok(None)` when there is none yet.
pub fn load(path: &Path) -> Result<Option<(Tree, String)>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let p: Persisted = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let tree = Tree::restore(Schema::vrgw(), p.tree).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Some((tree, p.parameter_key)))
}

/// Writes the state file atomically.
pub fn save(path: &Path, tree: &Tree, key: &str) -> std::io::Result<()> {
    let p = Persisted { version: 1, parameter_key: key.to_string(), tree: tree.snapshot() };
    let json = serde_json::to_vec_pretty(&p).map_err(std::io::Error::other)?;
    crate::files::write_atomic(path, &json)
}

#[cfg(test)]
mod tests {
    use super::software_version;

    #[test]
    fn the_software_version_names_the_images_release_when_it_has_one() {
        let v = env!("CARGO_PKG_VERSION");
        assert_eq!(software_version(None), v);
        assert_eq!(software_version(Some("  \n")), v);
        assert_eq!(software_version(Some("tb.2\n")), format!("{v}+tb.2"));
        assert_eq!(software_version(Some("tb.3\nsecond line\n")), format!("{v}+tb.3"));
    }
}
