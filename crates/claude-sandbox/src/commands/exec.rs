use super::session;
use crate::{
    cli::{ExecArgs, GlobalArgs},
    error::{Error, Exit},
};

pub async fn run(args: &ExecArgs, global: &GlobalArgs) -> Result<Exit, Error> {
    let session = session::session(&args.session)?;
    let (_, pod) = session::running_pod(global, &args.sandbox.name).await?;
    session::run(&pod, session, &args.command, false).await
}
