//! What a port-forward stream asks for, read from its SYN_STREAM headers.
//!
//! kubectl opens two streams per forwarded connection, both carrying `streamtype` (`error` or
//! `data`), `port` and `requestid`; the two are paired by request id.

use super::header_block::HeaderBlock;

/// Which half of a forwarded connection a stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StreamKind {
    /// Server-to-client only: a non-empty message means the forward failed.
    Error,
    /// The forwarded bytes, both ways.
    Data,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct StreamRequest {
    pub(super) kind: StreamKind,
    pub(super) port: u16,
    pub(super) request_id: String,
}

impl StreamRequest {
    /// Validates the headers like the kubelet does; the error explains a rejection.
    pub(super) fn parse(stream_id: u32, headers: &HeaderBlock) -> Result<Self, String> {
        let port = headers.get("port").ok_or("\"port\" header is required")?;
        let port = match port.parse::<u16>() {
            Ok(0) => return Err(format!("port {port:?} must be > 0")),
            Ok(port) => port,
            Err(e) => return Err(format!("unable to parse {port:?} as a port: {e}")),
        };
        let kind = match headers.get("streamtype") {
            Some("error") => StreamKind::Error,
            Some("data") => StreamKind::Data,
            Some(other) => return Err(format!("invalid stream type {other:?}")),
            None => return Err("\"streamtype\" header is required".to_owned()),
        };
        let request_id = match headers.get("requestid") {
            Some(id) if !id.is_empty() => id.to_owned(),
            // Clients older than request ids open error then data stream back to back, so
            // their stream ids are consecutive odd numbers; the kubelet pairs them the same way.
            _ => match kind {
                StreamKind::Error => stream_id.to_string(),
                StreamKind::Data => stream_id.saturating_sub(2).to_string(),
            },
        };
        Ok(Self {
            kind,
            port,
            request_id,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderBlock {
        pairs
            .iter()
            .fold(HeaderBlock::default(), |block, (n, v)| block.with(n, v))
    }

    #[test]
    fn reads_kubectl_headers() {
        let block = headers(&[("streamtype", "data"), ("port", "8080"), ("requestid", "4")]);
        assert_eq!(
            StreamRequest::parse(9, &block),
            Ok(StreamRequest {
                kind: StreamKind::Data,
                port: 8080,
                request_id: "4".into()
            })
        );
    }

    #[test]
    fn pairs_old_clients_by_stream_id() {
        let error = headers(&[("streamtype", "error"), ("port", "80")]);
        let data = headers(&[("streamtype", "data"), ("port", "80")]);
        let error = StreamRequest::parse(5, &error).unwrap();
        let data = StreamRequest::parse(7, &data).unwrap();
        assert_eq!(error.request_id, "5");
        assert_eq!(data.request_id, "5");
    }

    #[test]
    fn rejects_bad_headers() {
        for bad in [
            headers(&[("streamtype", "data")]),
            headers(&[("streamtype", "data"), ("port", "0")]),
            headers(&[("streamtype", "data"), ("port", "70000")]),
            headers(&[("streamtype", "stdin"), ("port", "80")]),
            headers(&[("port", "80")]),
        ] {
            assert!(StreamRequest::parse(1, &bad).is_err(), "{bad:?}");
        }
    }
}
