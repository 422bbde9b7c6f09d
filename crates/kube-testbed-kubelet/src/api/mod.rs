//! The kubelet API the API server proxies to (REFERENCE §6): `GET /containerLogs/{ns}/{pod}/{container}`,
//! `GET|POST /exec/{ns}/{pod}/{container}` (WebSocket), `GET|POST /portForward/{ns}/{pod}` (WebSocket
//! or SPDY), `GET /healthz`; for tests, `POST /testbed/drop-streams/{ns}/{pod}` cuts the pod's exec
//! and port-forward sessions and answers `{"dropped": N}`; anything else is 404.

mod exec;
mod logs;
mod port_forward;
mod query;
mod upgrade;
mod ws_channels;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use hyper::{Method, Request, Response, StatusCode, body::Incoming};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::{
    http_server::{self, Body, respond, text},
    pod_runtime::{PodRegistry, PodRuntime},
};

/// What the handlers share.
#[derive(Debug, Clone)]
struct Context {
    pods: Arc<PodRegistry>,
    /// Cancelled when the server stops: ends the sessions and streams that outlive their request.
    shutdown: CancellationToken,
}

/// Serves the API on `listener` until dropped.
pub(crate) async fn serve(listener: TcpListener, tls: TlsAcceptor, pods: Arc<PodRegistry>) {
    let shutdown = CancellationToken::new();
    let _end_sessions = shutdown.clone().drop_guard();
    let context = Context { pods, shutdown };
    http_server::serve(listener, Some(tls), move |request| {
        route(request, context.clone())
    })
    .await;
}

async fn route(request: Request<Incoming>, context: Context) -> Response<Body> {
    let path = request.uri().path().to_owned();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = request.method().clone();
    let upgradable = method == Method::GET || method == Method::POST;
    match segments.as_slice() {
        ["healthz"] if method == Method::GET => text(StatusCode::OK, "ok"),
        ["containerLogs", namespace, pod, container] if method == Method::GET => {
            match context.pod(namespace, pod) {
                Ok(pod) => logs::handle(&request, pod, container, &context.shutdown).await,
                Err(response) => *response,
            }
        }
        ["exec", namespace, pod, container] if upgradable => match context.pod(namespace, pod) {
            Ok(pod) => exec::handle(request, pod, container, &context.shutdown),
            Err(response) => *response,
        },
        ["portForward", namespace, pod] if upgradable => match context.pod(namespace, pod) {
            Ok(pod) => port_forward::handle(request, pod, &context.shutdown),
            Err(response) => *response,
        },
        ["testbed", "drop-streams", namespace, pod] if method == Method::POST => {
            match context.pod(namespace, pod) {
                Ok(pod) => {
                    let dropped = pod.drop_sessions();
                    respond(
                        StatusCode::OK,
                        "application/json",
                        json!({ "dropped": dropped }).to_string(),
                    )
                }
                Err(response) => *response,
            }
        }
        _ => text(StatusCode::NOT_FOUND, "404 page not found\n"),
    }
}

impl Context {
    fn pod(&self, namespace: &str, name: &str) -> Result<Arc<PodRuntime>, Box<Response<Body>>> {
        self.pods.get(namespace, name).ok_or_else(|| {
            Box::new(text(
                StatusCode::NOT_FOUND,
                format!("pod \"{namespace}/{name}\" not found"),
            ))
        })
    }
}
