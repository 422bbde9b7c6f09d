//! `proxy`: stdin and stdout carried to a port in the sandbox, for ssh's ProxyCommand.

use super::tunnel_args;
use crate::{
    cli::{GlobalArgs, ProxyArgs},
    error::{Error, Exit},
};

pub async fn run(args: &ProxyArgs, global: &GlobalArgs) -> Result<Exit, Error> {
    let (_, tunnel) = tunnel_args::open(global, &args.name, args.port, &args.tunnel).await?;
    let mut stdio = tokio::io::join(tokio::io::stdin(), tokio::io::stdout());
    tunnel.carry(&mut stdio).await?;
    Ok(Exit::Success)
}
