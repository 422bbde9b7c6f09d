use crate::string_enum::string_enum;

string_enum! {
    /// Which version of the agent-sandbox API the Sandbox is written for.
    pub enum SandboxApiVersion {
        /// agent-sandbox v1.0 and later (and v0.5.x, which serves both).
        V1beta1 => "v1beta1",
        /// agent-sandbox v0.1 to v0.5: `replicas` instead of `operatingMode`.
        V1alpha1 => "v1alpha1",
    }
}
