//! The sandbox model: what a Claude Code sandbox is, validated, with no Kubernetes types.
//!
//! `SandboxInput` is what a user says (flags, a config file); `SandboxConfig` is the validated
//! result that the Kubernetes layer renders. The bundled devcontainer assets and their lint live
//! here too, because they are data about the sandbox, not about the cluster.

pub mod assets;
mod ca_source;
mod claude_version;
mod code_server_auth;
mod config;
mod devcontainer_source;
pub mod envbuilder_log;
mod error;
mod git_source;
mod image;
mod input;
pub mod layout;
pub mod lint;
mod names;
mod quantity;
pub mod remote;
mod resources;
mod runtime;
mod sandbox_api_version;
mod secret_values;
mod string_enum;
mod user_name;
mod via;

pub use ca_source::{CaSource, CaSourceKind};
pub use claude_version::ClaudeCodeVersion;
pub use code_server_auth::CodeServerAuth;
pub use config::{DEFAULT_NAME, SandboxConfig};
pub use devcontainer_source::DevcontainerSource;
pub use error::{ConfigError, Field};
pub use git_source::GitSource;
pub use image::ImageRef;
pub use input::{ResourceInput, SandboxInput};
pub use names::{Namespace, ObjectName, SandboxName};
pub use quantity::Quantity;
pub use resources::{ResourceList, Resources};
pub use runtime::Runtime;
pub use sandbox_api_version::SandboxApiVersion;
pub use secret_values::{SecretValue, SecretValues};
pub use user_name::UserName;
pub use via::Via;
