use super::session;
use crate::{
    cli::{GlobalArgs, ShellArgs},
    error::{Error, Exit},
};

pub async fn run(args: &ShellArgs, global: &GlobalArgs) -> Result<Exit, Error> {
    let session = session::session(&args.session)?;
    let (_, pod) = session::running_pod(global, &args.sandbox.name).await?;
    session::run(&pod, session, &[], true).await
}
