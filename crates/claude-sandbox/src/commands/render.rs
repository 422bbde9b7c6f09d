use crate::{
    cli::RenderArgs,
    error::{Error, Exit},
    output::OutputFormat,
    terminal,
};

pub fn run(args: &RenderArgs, namespace: Option<&str>) -> Result<Exit, Error> {
    let config = args.sandbox.to_config(namespace)?;
    for warning in config.lint() {
        terminal::print_warning(format_args!("devcontainer.json {warning}"));
    }
    let rendered = claude_sandbox_kube::render(&config);
    let text = match args.output {
        OutputFormat::Yaml => rendered.to_yaml(),
        OutputFormat::Json => rendered.to_json() + "\n",
    };
    terminal::write_stdout(&text)?;
    Ok(Exit::Success)
}
