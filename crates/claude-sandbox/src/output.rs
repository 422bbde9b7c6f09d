use clap::ValueEnum;

/// `-o`: how a command prints objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OutputFormat {
    #[default]
    Yaml,
    Json,
}
