//! An HTTP server with code-server's shape: `GET /healthz` → 200 `{"status":"alive"}`, `GET /` → 200 HTML.

use hyper::{Method, Request, Response, StatusCode, body::Incoming};
use tokio_util::sync::CancellationToken;

use super::CODE_SERVER_PORT;
use crate::{
    error::Error,
    http_server::{self, Body, respond, text},
    network::PodNetwork,
};

const PAGE: &str = "<!doctype html>\n<html><head><title>code-server</title></head>\
<body><p>kube-testbed stand-in for code-server</p></body></html>\n";

/// Starts the server in the pod's network until `stop` is cancelled; returns its port there.
pub(super) async fn start(network: &PodNetwork, stop: CancellationToken) -> Result<u16, Error> {
    let listener = network
        .listen(CODE_SERVER_PORT)
        .await
        .map_err(|e| Error::io("binding the code-server stand-in", e))?;
    let port = listener
        .local_addr()
        .map_err(|e| Error::io("reading the code-server stand-in's port", e))?
        .port();
    tokio::spawn(async move {
        tokio::select! {
            () = http_server::serve(listener, None, handle) => {}
            () = stop.cancelled() => {}
        }
    });
    Ok(port)
}

async fn handle(request: Request<Incoming>) -> Response<Body> {
    match (request.method(), request.uri().path()) {
        (&Method::GET, "/healthz") => {
            respond(StatusCode::OK, "application/json", r#"{"status":"alive"}"#)
        }
        (&Method::GET, "/") => respond(StatusCode::OK, "text/html; charset=utf-8", PAGE),
        _ => text(StatusCode::NOT_FOUND, "404 page not found\n"),
    }
}
