use clap::ValueEnum;
use serde::Serialize;

/// `-o`: how a command prints objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OutputFormat {
    #[default]
    Yaml,
    Json,
}

impl OutputFormat {
    pub fn serialize(self, value: &impl Serialize) -> String {
        match self {
            Self::Yaml => serde_saphyr::to_string(value).expect("reports serialize to YAML"),
            Self::Json => {
                serde_json::to_string_pretty(value).expect("reports serialize to JSON") + "\n"
            }
        }
    }
}
