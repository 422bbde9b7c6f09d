//! Requests to the fake kubelet's own API, found as the API server finds it: the Node's
//! InternalIP and `daemonEndpoints.kubeletEndpoint.Port`, over TLS without verification (its
//! certificate is self-signed, and the API server does not verify it either).

use k8s_openapi::api::core::v1::Node;
use kube::{Api, Client};
use serde::Deserialize;

use crate::{error::Error, node::NODE_NAME};

#[derive(Deserialize)]
struct Dropped {
    dropped: usize,
}

/// Cuts pod `namespace/pod`'s exec and port-forward sessions; returns how many there were.
pub(crate) async fn drop_streams(
    client: &Client,
    namespace: &str,
    pod: &str,
) -> Result<usize, Error> {
    let kubelet = kubelet_client(client).await?;
    let request = http::Request::post(format!("/testbed/drop-streams/{namespace}/{pod}"))
        .body(Vec::new())
        .map_err(|e| Error::KubeletApi(format!("building the request: {e}")))?;
    let answer = kubelet.request_text(request).await?;
    serde_json::from_str::<Dropped>(&answer)
        .map(|dropped| dropped.dropped)
        .map_err(|e| Error::KubeletApi(format!("unexpected answer {answer:?}: {e}")))
}

/// A client of the kubelet API of the testbed's node.
async fn kubelet_client(client: &Client) -> Result<Client, Error> {
    let node = Api::<Node>::all(client.clone()).get(NODE_NAME).await?;
    let status = node.status.unwrap_or_default();
    let address = status
        .addresses
        .unwrap_or_default()
        .into_iter()
        .find(|address| address.type_ == "InternalIP")
        .map(|address| address.address);
    let port = status
        .daemon_endpoints
        .and_then(|endpoints| endpoints.kubelet_endpoint)
        .map(|endpoint| endpoint.port);
    let (Some(address), Some(port)) = (address, port) else {
        return Err(Error::KubeletApi(format!(
            "Node {NODE_NAME} has no InternalIP address or kubelet port"
        )));
    };
    let url = format!("https://{address}:{port}")
        .parse()
        .map_err(|e| Error::KubeletApi(format!("the kubelet's address {address}:{port}: {e}")))?;
    let mut config = kube::Config::new(url);
    config.accept_invalid_certs = true;
    Ok(Client::try_from(config)?)
}
