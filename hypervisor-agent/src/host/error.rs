//! Why an operation of the host failed, grouped by who is at fault, and the one mapping of each
//! to the CWMP fault the ACS is answered with ([`HostError::fault`]).
//!
//! | who / what                                             | variant                          | fault |
//! |--------------------------------------------------------|----------------------------------|-------|
//! | the agent's store, libvirt, the switch, a proxy, a peer host, images, container roots, threads | `State`, `Libvirt`, `Switch`, `Proxy`, `Peer`, `Image`, `Rootfs`, `Io`, `DomainMissing`, `NoSlot` | 9002 |
//! | a SetParameterValues refused whole (each parameter named) | `InvalidArguments`            | 9003  |
//! | no capacity for it (an empty pool)                     | `ResourcesExceeded`              | 9004  |
//! | a path that names nothing                              | `NotFound`                       | 9005  |
//! | a value that cannot be used                            | `InvalidValue`                   | 9007  |
//! | a request denied in the current state                  | `Refused`                        | 9001  |
//! | the data model's own refusal                           | `DataModel`                      | its code |

use cwmp::{Fault, FaultCode, ParameterFault};

use crate::compute::ComputeError;
use crate::state::StateError;
use crate::vlan::VlanError;

/// Why an operation of the host failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// The agent's store (SQLite, or a stored snapshot that does not restore).
    #[error(transparent)]
    State(#[from] StateError),
    /// This host's libvirt failed `op`.
    #[error("{op}: {source}")]
    Libvirt {
        /// What was asked of libvirt.
        op: &'static str,
        /// What libvirt said.
        source: ComputeError,
    },
    /// A domain the agent's records name is not in libvirt.
    #[error("domain {0} is missing")]
    DomainMissing(String),
    /// The switch failed `op`.
    #[error("{op}: {source}")]
    Switch {
        /// What was asked of the switch.
        op: &'static str,
        /// What it said.
        source: VlanError,
    },
    /// A vRGW's proxy cannot be reached or addressed.
    #[error("{0}")]
    Proxy(String),
    /// Another host's libvirt (a migration's `role`: source host or destination) did not answer.
    #[error("the {role}'s hypervisor: {source}")]
    Peer {
        /// Which side of the migration.
        role: &'static str,
        /// What its libvirt said.
        source: ComputeError,
    },
    /// An instance's disk image could not be made (`qemu-img`).
    #[error("qemu-img: {0}")]
    Image(String),
    /// A container's root file system could not be made, mounted or removed.
    #[error("the container's root file system: {0}")]
    Rootfs(#[from] crate::rootfs::RootfsError),
    /// The operating system refused `op` (a folder, a process, a thread).
    #[error("{op}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The agent has no slot (domain record) where it expected one for this instance.
    #[error("instance {0} has no slot here")]
    NoSlot(u32),
    /// A SetParameterValues refused whole: `refused` (each an [`HostError::InvalidValue`] or
    /// [`HostError::NotFound`]) of `total` parameters; nothing was changed.
    #[error("{} of {total} parameters refused; nothing was changed", refused.len())]
    InvalidArguments {
        /// How many parameters the request set.
        total: usize,
        /// The refused ones, each naming its parameter.
        refused: Vec<HostError>,
    },
    /// Parameter `name` cannot take its value.
    #[error("{reason}")]
    InvalidValue {
        /// The full path of the parameter.
        name: String,
        /// Why not.
        reason: String,
    },
    /// No object or parameter at this path.
    #[error("{0} does not exist")]
    NotFound(String),
    /// Not enough of something to do it (an empty pool).
    #[error("{0}")]
    ResourcesExceeded(String),
    /// Denied in the current state (an instance being migrated, a migration command out of turn).
    #[error("{0}")]
    Refused(String),
    /// The data model refused the request with this fault.
    #[error("{}", .0.string)]
    DataModel(Fault),
}

impl HostError {
    /// The CWMP fault code of this error: the one place that decides it.
    pub fn code(&self) -> FaultCode {
        match self {
            HostError::State(_)
            | HostError::Libvirt { .. }
            | HostError::DomainMissing(_)
            | HostError::Switch { .. }
            | HostError::Proxy(_)
            | HostError::Peer { .. }
            | HostError::Image(_)
            | HostError::Rootfs(_)
            | HostError::Io { .. }
            | HostError::NoSlot(_) => FaultCode::InternalError,
            HostError::InvalidArguments { .. } => FaultCode::InvalidArguments,
            HostError::ResourcesExceeded(_) => FaultCode::ResourcesExceeded,
            HostError::NotFound(_) => FaultCode::InvalidParameterName,
            HostError::InvalidValue { .. } => FaultCode::InvalidParameterValue,
            HostError::Refused(_) => FaultCode::RequestDenied,
            HostError::DataModel(f) => f.code,
        }
    }

    /// The fault the ACS is answered with: [`HostError::code`] and the error's text; a
    /// refused SetParameterValues names each refused parameter with its own code; the data
    /// model's own fault is passed on as it is.
    pub fn fault(&self) -> Fault {
        if let HostError::DataModel(f) = self {
            return f.clone();
        }
        let mut fault = Fault::with_string(self.code(), self.to_string());
        if let HostError::InvalidArguments { refused, .. } = self {
            fault.set_parameter_values_faults = refused
                .iter()
                .map(|e| {
                    let named = if let HostError::InvalidValue { name, .. } | HostError::NotFound(name) = e {
                        name.as_str()
                    } else {
                        ""
                    };
                    ParameterFault { parameter_name: named.to_string(), code: e.code(), string: e.to_string() }
                })
                .collect();
        }
        fault
    }
}

impl From<HostError> for Fault {
    fn from(e: HostError) -> Fault {
        e.fault()
    }
}

/// Names the operation a libvirt or switch call was for, making its error a [`HostError`].
pub(super) trait During<T> {
    /// The error of `op`, blamed on whoever failed it.
    fn during(self, op: &'static str) -> Result<T, HostError>;
}

impl<T> During<T> for Result<T, ComputeError> {
    fn during(self, op: &'static str) -> Result<T, HostError> {
        self.map_err(|source| HostError::Libvirt { op, source })
    }
}

impl<T> During<T> for Result<T, VlanError> {
    fn during(self, op: &'static str) -> Result<T, HostError> {
        self.map_err(|source| HostError::Switch { op, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One error of each variant and the fault code it is answered with.
    #[test]
    fn every_error_maps_to_its_fault() {
        let libvirt = ComputeError::Libvirt("down".into());
        let io = || std::io::Error::other("no");
        let cases: Vec<(HostError, u32)> = vec![
            (HostError::State(StateError::Model("bad".into())), 9002),
            (HostError::Libvirt { op: "define", source: libvirt.clone() }, 9002),
            (HostError::DomainMissing("d".into()), 9002),
            (HostError::Switch { op: "bind", source: VlanError::BadId(0) }, 9002),
            (HostError::Proxy("unreachable".into()), 9002),
            (HostError::Peer { role: "source host", source: libvirt }, 9002),
            (HostError::Image("failed".into()), 9002),
            (HostError::Io { op: "starting a thread", source: io() }, 9002),
            (HostError::NoSlot(3), 9002),
            (HostError::InvalidArguments { total: 1, refused: Vec::new() }, 9003),
            (HostError::ResourcesExceeded("the pool is empty".into()), 9004),
            (HostError::NotFound("Device.X.".into()), 9005),
            (HostError::InvalidValue { name: "Device.X".into(), reason: "no".into() }, 9007),
            (HostError::Refused("not now".into()), 9001),
            (HostError::DataModel(Fault::new(FaultCode::NonWritableParameter)), 9008),
        ];
        for (e, code) in cases {
            let f = e.fault();
            assert_eq!((f.code.code(), f.string.as_str()), (code, e.to_string().as_str()), "{e:?}");
        }
    }

    #[test]
    fn a_refused_set_names_each_parameter_with_its_code() {
        let e = HostError::InvalidArguments {
            total: 3,
            refused: vec![
                HostError::InvalidValue { name: "Device.A".into(), reason: "too big".into() },
                HostError::NotFound("Device.B".into()),
            ],
        };
        let f = e.fault();
        assert_eq!(f.code, FaultCode::InvalidArguments);
        assert_eq!(f.string, "2 of 3 parameters refused; nothing was changed");
        let named: Vec<(&str, u32, &str)> = f
            .set_parameter_values_faults
            .iter()
            .map(|p| (p.parameter_name.as_str(), p.code.code(), p.string.as_str()))
            .collect();
        assert_eq!(named, vec![("Device.A", 9007, "too big"), ("Device.B", 9005, "Device.B does not exist")]);
    }
}
