//! Protocol upgrades: WebSocket (exec, port-forward) and plain `Upgrade: SPDY/3.1` (kubectl's
//! port-forward), handed to a session once hyper lets go of the connection.

use std::future::Future;

use hyper::{
    HeaderMap, Request, Response, StatusCode,
    body::Incoming,
    header::{
        CONNECTION, HeaderName, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
        SEC_WEBSOCKET_PROTOCOL, UPGRADE,
    },
    upgrade::Upgraded,
};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{handshake::derive_accept_key, protocol::Role},
};
use tokio_util::sync::CancellationToken;

use crate::{
    http_server::{Body, text},
    stream_sessions::SessionTicket,
};

pub(super) type UpgradedIo = TokioIo<Upgraded>;
pub(super) type WebSocket = WebSocketStream<UpgradedIo>;

/// The comma-separated tokens of every `name` header, trimmed.
pub(super) fn tokens<'a>(
    headers: &'a HeaderMap,
    name: &'a HeaderName,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|token| !token.is_empty())
}

/// Whether the request asks to upgrade to `protocol` (`websocket`, `SPDY/3.1`).
pub(super) fn wants_upgrade_to(request: &Request<Incoming>, protocol: &str) -> bool {
    let headers = request.headers();
    tokens(headers, &CONNECTION).any(|t| t.eq_ignore_ascii_case("upgrade"))
        && tokens(headers, &UPGRADE).any(|t| t.eq_ignore_ascii_case(protocol))
}

/// The first subprotocol the client offers that is `supported`; `Ok(None)` when it offers none
/// (the kubelet then uses its default framing); a 400 when it offers only others.
pub(super) fn choose_protocol(
    request: &Request<Incoming>,
    supported: &[&'static str],
) -> Result<Option<&'static str>, Box<Response<Body>>> {
    let offered: Vec<&str> = tokens(request.headers(), &SEC_WEBSOCKET_PROTOCOL).collect();
    if offered.is_empty() {
        return Ok(None);
    }
    offered
        .iter()
        .find_map(|offer| supported.iter().find(|s| *s == offer).copied())
        .map(Some)
        .ok_or_else(|| {
            Box::new(text(
                StatusCode::BAD_REQUEST,
                format!(
                    "unable to upgrade: unsupported subprotocols {offered:?}; supported: {supported:?}"
                ),
            ))
        })
}

/// Answers the WebSocket handshake (101 with `protocol`) and runs `session` on the connection.
pub(super) fn accept_websocket<S, F>(
    request: Request<Incoming>,
    protocol: Option<&str>,
    shutdown: &CancellationToken,
    ticket: SessionTicket,
    session: S,
) -> Response<Body>
where
    S: FnOnce(WebSocket) -> F + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let Some(key) = request.headers().get(SEC_WEBSOCKET_KEY) else {
        return text(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key");
    };
    let mut headers = vec![
        (UPGRADE, HeaderValue::from_static("websocket")),
        (
            SEC_WEBSOCKET_ACCEPT,
            derive_accept_key(key.as_bytes())
                .parse()
                .expect("base64 is a header value"),
        ),
    ];
    if let Some(protocol) = protocol {
        headers.push((
            SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_str(protocol).expect("known protocol"),
        ));
    }
    switch_protocols(request, headers, shutdown, ticket, move |io| async move {
        session(WebSocketStream::from_raw_socket(io, Role::Server, None).await).await;
    })
}

/// Answers 101 (`Connection: Upgrade` plus `headers`) and, once hyper hands the connection over,
/// runs `session` on it until it ends, the server stops or the pod's sessions are dropped (the
/// connection is then cut, without a goodbye, as when a kubelet restarts).
pub(super) fn switch_protocols<S, F>(
    request: Request<Incoming>,
    headers: Vec<(HeaderName, HeaderValue)>,
    shutdown: &CancellationToken,
    ticket: SessionTicket,
    session: S,
) -> Response<Body>
where
    S: FnOnce(UpgradedIo) -> F + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        match hyper::upgrade::on(request).await {
            Ok(upgraded) => tokio::select! {
                () = session(TokioIo::new(upgraded)) => {}
                () = shutdown.cancelled() => {}
                () = ticket.dropped() => tracing::debug!("session dropped on request"),
            },
            Err(error) => tracing::debug!(%error, "the connection was not upgraded"),
        }
    });
    let mut response = text(StatusCode::SWITCHING_PROTOCOLS, "");
    response.headers_mut().remove(hyper::header::CONTENT_TYPE);
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    for (name, value) in headers {
        response.headers_mut().insert(name, value);
    }
    response
}
