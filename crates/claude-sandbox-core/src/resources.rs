use crate::{
    error::{ConfigError, Field},
    input::ResourceInput,
    quantity::Quantity,
};

/// Compute resources of one kind (requests or limits). Every field is set after validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceList {
    pub cpu: Quantity,
    pub memory: Quantity,
    pub ephemeral_storage: Quantity,
}

/// The sandbox container's requests and limits. envbuilder builds the image inside the container,
/// so ephemeral storage matters as much as memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Resources {
    pub requests: ResourceList,
    pub limits: ResourceList,
}

const REQUESTS: Field = Field::new("--requests", "requests");
const LIMITS: Field = Field::new("--limits", "limits");

impl ResourceList {
    fn from_input(
        field: Field,
        input: &ResourceInput,
        defaults: [&str; 3],
    ) -> Result<Self, ConfigError> {
        let pick = |given: &Option<String>, default: &str| {
            Quantity::parse(field, given.as_deref().unwrap_or(default))
        };
        Ok(Self {
            cpu: pick(&input.cpu, defaults[0])?,
            memory: pick(&input.memory, defaults[1])?,
            ephemeral_storage: pick(&input.ephemeral_storage, defaults[2])?,
        })
    }

    /// (name as Kubernetes spells it, quantity), in a stable order.
    pub fn entries(&self) -> [(&'static str, &Quantity); 3] {
        [
            ("cpu", &self.cpu),
            ("memory", &self.memory),
            ("ephemeral-storage", &self.ephemeral_storage),
        ]
    }
}

impl Resources {
    pub const DEFAULT_REQUESTS: [&'static str; 3] = ["1", "4Gi", "8Gi"];
    pub const DEFAULT_LIMITS: [&'static str; 3] = ["4", "8Gi", "16Gi"];

    pub(crate) fn from_input(
        requests: &ResourceInput,
        limits: &ResourceInput,
    ) -> Result<Self, ConfigError> {
        let resources = Self {
            requests: ResourceList::from_input(REQUESTS, requests, Self::DEFAULT_REQUESTS)?,
            limits: ResourceList::from_input(LIMITS, limits, Self::DEFAULT_LIMITS)?,
        };
        for ((name, request), (_, limit)) in resources
            .requests
            .entries()
            .into_iter()
            .zip(resources.limits.entries())
        {
            if request > limit {
                return Err(ConfigError::invalid(
                    REQUESTS,
                    format!("{name}={request}"),
                    format!("is more than the limit {name}={limit}"),
                    format!("lower the request or raise the limit with --limits {name}=…"),
                ));
            }
            if request.value() == 0.0 && name != "ephemeral-storage" {
                return Err(ConfigError::invalid(
                    REQUESTS,
                    format!("{name}={request}"),
                    "is zero",
                    "request a positive amount",
                ));
            }
        }
        Ok(resources)
    }
}
