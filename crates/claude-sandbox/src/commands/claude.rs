use claude_sandbox_core::remote::Session;

use super::session;
use crate::{
    cli::{ClaudeArgs, GlobalArgs},
    error::{Error, Exit},
};

pub async fn run(args: &ClaudeArgs, global: &GlobalArgs) -> Result<Exit, Error> {
    let (_, pod) = session::running_pod(global, &args.sandbox.name).await?;
    let command: Vec<String> = std::iter::once("claude".to_owned())
        .chain(args.args.iter().cloned())
        .collect();
    session::run(&pod, Session::default(), &command, true).await
}
