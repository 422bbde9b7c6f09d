//! `GET|POST /portForward/{ns}/{pod}`: a WebSocket (kube-rs; `ports=` in the query, data on
//! channel 2i and errors on 2i+1 for the i-th port, each channel opened by the port as 2 bytes
//! little-endian), or a plain `Upgrade: SPDY/3.1` with `X-Stream-Protocol-Version:
//! portforward.k8s.io` (kubectl, after its WebSocket attempt with `SPDY/3.1+portforward.k8s.io`
//! is refused here) handed to [`crate::spdy`].

use std::sync::Arc;

use futures::{SinkExt, StreamExt, future::join_all, stream::SplitStream};
use hyper::{
    Request, Response, StatusCode,
    body::Incoming,
    header::{HeaderName, HeaderValue, UPGRADE},
};
use tokio::{io::AsyncWriteExt, net::tcp::OwnedWriteHalf, sync::mpsc};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use super::{
    query::Query,
    upgrade::{
        WebSocket, accept_websocket, choose_protocol, switch_protocols, tokens, wants_upgrade_to,
    },
    ws_channels::{close, copy_out, frame, write_out},
};
use crate::{
    http_server::{Body, text},
    pod_runtime::PodRuntime,
};

/// WebSocket subprotocols with the kubelet's port-forward framing (kube-rs offers `v5.channel.k8s.io,
/// v4.channel.k8s.io` and settles for v4, as with a real kubelet).
const WEBSOCKET_PROTOCOLS: [&str; 3] =
    ["v4.channel.k8s.io", "channel.k8s.io", "portforward.k8s.io"];
const SPDY: &str = "SPDY/3.1";
const STREAM_PROTOCOL_HEADER: HeaderName = HeaderName::from_static("x-stream-protocol-version");
const PORT_FORWARD_PROTOCOL: &str = "portforward.k8s.io";
const QUEUE: usize = 8;
const MAX_PORTS: usize = 128;

pub(super) fn handle(
    request: Request<Incoming>,
    pod: Arc<PodRuntime>,
    shutdown: &CancellationToken,
) -> Response<Body> {
    if wants_upgrade_to(&request, "websocket") {
        let ports = match ports(&Query::of(request.uri())) {
            Ok(ports) => ports,
            Err(message) => return text(StatusCode::BAD_REQUEST, message),
        };
        // kubectl's `SPDY/3.1+portforward.k8s.io` ends here, with a 400 it falls back from.
        let protocol = match choose_protocol(&request, &WEBSOCKET_PROTOCOLS) {
            Ok(protocol) => protocol,
            Err(response) => return *response,
        };
        let ticket = pod.open_session();
        return accept_websocket(request, protocol, shutdown, ticket, move |socket| {
            websocket_session(socket, ports, pod)
        });
    }
    if wants_upgrade_to(&request, SPDY) {
        if !tokens(request.headers(), &STREAM_PROTOCOL_HEADER).any(|p| p == PORT_FORWARD_PROTOCOL) {
            return text(
                StatusCode::BAD_REQUEST,
                format!(
                    "unable to upgrade: {STREAM_PROTOCOL_HEADER} must offer {PORT_FORWARD_PROTOCOL}"
                ),
            );
        }
        let headers = vec![
            (UPGRADE, HeaderValue::from_static(SPDY)),
            (
                STREAM_PROTOCOL_HEADER,
                HeaderValue::from_static(PORT_FORWARD_PROTOCOL),
            ),
        ];
        let ticket = pod.open_session();
        return switch_protocols(request, headers, shutdown, ticket, move |io| async move {
            let dial = move |port| {
                let pod = pod.clone();
                async move { pod.dial(port).await }
            };
            if let Err(error) = crate::spdy::serve_port_forward(io, dial).await {
                tracing::warn!(%error, "SPDY port-forward");
            }
        });
    }
    text(
        StatusCode::BAD_REQUEST,
        "port forwarding needs an upgrade to a WebSocket or to SPDY/3.1",
    )
}

/// The ports to forward: query parameter `port`, as the API server passes kube-rs's `ports` on
/// (and `ports`, as kube-rs sends it to the API server); repeated, comma-separated, or both.
fn ports(query: &Query) -> Result<Vec<u16>, String> {
    let ports = query
        .all("port")
        .chain(query.all("ports"))
        .flat_map(|value| value.split(','))
        .map(|port| match port.trim().parse::<u16>() {
            Ok(port) if port > 0 => Ok(port),
            _ => Err(format!("invalid port {port:?}")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if ports.is_empty() {
        return Err("query parameter \"port\" is required".to_owned());
    }
    // Two channels per port, numbered by one byte.
    if ports.len() > MAX_PORTS {
        return Err(format!(
            "at most {MAX_PORTS} ports can be forwarded at once"
        ));
    }
    Ok(ports)
}

/// Forwards each requested port over its pair of channels until every target connection has
/// ended, the client goes away, or the pod does.
async fn websocket_session(socket: WebSocket, ports: Vec<u16>, pod: Arc<PodRuntime>) {
    let (mut sink, mut incoming) = socket.split();
    for (index, port) in ports.iter().enumerate() {
        let data = channel(index);
        for channel in [data, data + 1] {
            if sink
                .send(frame(channel, &port.to_le_bytes()))
                .await
                .is_err()
            {
                return;
            }
        }
    }
    let (queue, queued) = mpsc::channel(QUEUE);
    let mut writers = Vec::with_capacity(ports.len());
    let mut readers = Vec::new();
    for (index, port) in ports.iter().enumerate() {
        match pod.dial(*port).await {
            Ok(stream) => {
                let (read, write) = stream.into_split();
                readers.push(copy_out(channel(index), read, queue.clone()));
                writers.push(Some(write));
            }
            Err(error) => {
                writers.push(None);
                if sink
                    .send(frame(channel(index) + 1, error.to_string().as_bytes()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
    drop(queue);
    let forwarded = async { tokio::join!(join_all(readers), write_out(&mut sink, queued)) };
    tokio::select! {
        _ = forwarded => {}
        () = pump_to_targets(&mut incoming, writers) => return,
        () = pod.stopped() => {}
    }
    close(sink, incoming).await;
}

/// The data channel of the `index`-th port.
fn channel(index: usize) -> u8 {
    u8::try_from(2 * index).expect("at most MAX_PORTS ports")
}

/// Writes the client's data to the target of its channel; returns when the client is gone.
async fn pump_to_targets(
    incoming: &mut SplitStream<WebSocket>,
    mut writers: Vec<Option<OwnedWriteHalf>>,
) {
    while let Some(message) = incoming.next().await {
        let data = match message {
            Ok(Message::Binary(data)) => data,
            Ok(Message::Close(_)) | Err(_) => return,
            Ok(_) => continue,
        };
        let Some((&channel, payload)) = data.split_first() else {
            continue;
        };
        let index = usize::from(channel / 2);
        if channel % 2 == 0
            && let Some(slot) = writers.get_mut(index)
            && let Some(writer) = slot
            && writer.write_all(payload).await.is_err()
        {
            *slot = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &str) -> Result<Vec<u16>, String> {
        ports(&Query::of(
            &format!("/portForward/ns/pod?{query}").parse().unwrap(),
        ))
    }

    #[test]
    fn ports_come_as_the_api_server_or_kube_rs_sends_them() {
        assert_eq!(parse("port=8080&port=2222"), Ok(vec![8080, 2222]));
        assert_eq!(parse("ports=8080%2C2222"), Ok(vec![8080, 2222]));
        assert_eq!(parse("port=1,2&ports=3"), Ok(vec![1, 2, 3]));
        assert!(parse("").unwrap_err().contains("\"port\" is required"));
        assert!(parse("port=0").is_err() && parse("port=http").is_err());
        let many: Vec<String> = (1..=129).map(|p| p.to_string()).collect();
        assert!(parse(&format!("port={}", many.join(","))).is_err());
    }
}
