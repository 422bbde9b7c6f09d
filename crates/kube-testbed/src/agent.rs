//! The simulated parts of a testbed, run together: the fake kubelet (with the Node pointing at it;
//! not on a real node),
//! the simulated agent-sandbox controller and the volume provisioner. In process for the library;
//! in the detached `kube-testbed agent` process for the CLI.

use std::path::PathBuf;

use kube::Client;
use kube_testbed_kubelet::{Kubelet, KubeletConfig};

use crate::{error::Error, layout::Layout, node, options::NodeKind, provisioner};

/// The kubelet is bound and the Node registered; [`Agent::run`] does the rest.
pub(crate) struct Agent {
    client: Client,
    /// The fake kubelet; `None` on a real node, whose kubelet is a process of its own.
    kubelet: Option<Kubelet>,
    volumes: PathBuf,
}

impl Agent {
    /// Binds the fake kubelet's API and registers the Node with its port (on a simulated node).
    pub async fn start(
        client: Client,
        layout: &Layout,
        stand_ins: bool,
        node_kind: NodeKind,
    ) -> Result<Self, Error> {
        let kubelet = match node_kind {
            NodeKind::Simulated => {
                let config = KubeletConfig {
                    node_name: node::NODE_NAME.to_owned(),
                    pods_dir: layout.pods(),
                    stand_ins,
                };
                let kubelet = Kubelet::bind(config, client.clone()).await?;
                node::register(&client, kubelet.port()).await?;
                Some(kubelet)
            }
            NodeKind::Real => None,
        };
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
        let kubelet = async {
            match kubelet {
                Some(kubelet) => kubelet.run().await.map_err(Error::from),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = kubelet => result,
            result = kube_testbed_controller::run(client.clone()) => result.map_err(Error::from),
            result = provisioner::run(client, volumes) => result,
        }
    }
}
