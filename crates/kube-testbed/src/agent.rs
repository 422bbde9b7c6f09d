//! The simulated parts of a testbed, run together: the fake kubelet (with the Node pointing at it),
//! the simulated agent-sandbox controller and the volume provisioner. In process for the library;
//! in the detached `kube-testbed agent` process for the CLI.

use std::path::PathBuf;

use kube::Client;
use kube_testbed_kubelet::{Kubelet, KubeletConfig};

use crate::{error::Error, layout::Layout, node, provisioner};

/// The kubelet is bound and the Node registered; [`Agent::run`] does the rest.
pub(crate) struct Agent {
    client: Client,
    kubelet: Kubelet,
    volumes: PathBuf,
}

impl Agent {
    /// Binds the kubelet's API and registers the Node with its port.
    pub async fn start(client: Client, layout: &Layout, stand_ins: bool) -> Result<Self, Error> {
        let config = KubeletConfig {
            node_name: node::NODE_NAME.to_owned(),
            pods_dir: layout.pods(),
            stand_ins,
        };
        let kubelet = Kubelet::bind(config, client.clone()).await?;
        node::register(&client, kubelet.port()).await?;
        Ok(Self {
            client,
            kubelet,
            volumes: layout.volumes(),
        })
    }

    /// Runs until one part fails or the future is dropped.
    pub async fn run(self) -> Result<(), Error> {
        let Self {
            client,
            kubelet,
            volumes,
        } = self;
        tokio::select! {
            result = kubelet.run() => result.map_err(Error::from),
            result = kube_testbed_controller::run(client.clone()) => result.map_err(Error::from),
            result = provisioner::run(client, volumes) => result,
        }
    }
}
