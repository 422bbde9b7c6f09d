//! The Kubernetes layer: the agent-sandbox resource types, the renderer that turns a validated
//! `SandboxConfig` into typed objects, and the cluster operations of the CLI's commands.

pub mod access;
pub mod agent_sandbox;
pub mod apply;
pub mod cluster;
pub mod diagnosis;
mod error;
pub mod exec;
pub mod labels;
pub mod manifest;
mod render;
mod rendered;
pub mod sandbox;
pub mod sandbox_pod;
pub mod sandbox_ref;
pub mod status;
pub mod tunnel;
pub mod wait;

pub use error::Error;
pub use render::{bundled_assets_config_map_name, render};
pub use rendered::{RenderedSandbox, SandboxObject};
