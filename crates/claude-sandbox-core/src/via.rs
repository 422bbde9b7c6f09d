use crate::string_enum::string_enum;

string_enum! {
    /// How a tunnel reaches a port inside the sandbox.
    pub enum Via {
        /// Port-forward under gVisor (where the API server's port-forward fails), else port-forward
        /// with a switch to exec when it fails.
        Auto => "auto",
        /// The API server's port-forward.
        PortForward => "port-forward",
        /// A relay process in the container (bash /dev/tcp, socat or nc), over exec.
        Exec => "exec",
    }
}
