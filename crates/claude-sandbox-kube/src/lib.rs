//! The Kubernetes layer: the agent-sandbox resource types and the renderer that turns a
//! validated `SandboxConfig` into the typed objects that make up a sandbox.

pub mod labels;
mod render;
mod rendered;
pub mod sandbox;

pub use render::{bundled_assets_config_map_name, render};
pub use rendered::{RenderedSandbox, SandboxObject};
