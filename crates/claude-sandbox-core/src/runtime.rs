use crate::string_enum::string_enum;

string_enum! {
    /// The container runtime the sandbox pod runs under.
    pub enum Runtime {
        /// The cluster's default runtime: no RuntimeClass.
        Runc => "runc",
        /// gVisor, RuntimeClass `gvisor`.
        Gvisor => "gvisor",
        /// Kata Containers with QEMU, RuntimeClass `kata-qemu`.
        Kata => "kata",
    }
}

impl Runtime {
    /// The RuntimeClass the pod names, if any.
    pub fn runtime_class(self) -> Option<&'static str> {
        match self {
            Self::Runc => None,
            Self::Gvisor => Some("gvisor"),
            Self::Kata => Some("kata-qemu"),
        }
    }
}
