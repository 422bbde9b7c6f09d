use crate::string_enum::string_enum;

string_enum! {
    /// How code-server asks for a login.
    pub enum CodeServerAuth {
        /// No login: the IDE is reached only through a port-forward or tunnel.
        None => "none",
        /// A password from the sandbox Secret's `CODE_SERVER_PASSWORD` key.
        Password => "password",
    }
}
