//! `GET /containerLogs/{ns}/{pod}/{container}` with `follow`, `tailLines`, `timestamps`,
//! `sinceSeconds`, `sinceTime`, `limitBytes` and `previous`, as the kubelet serves them.

use std::{io::SeekFrom, sync::Arc};

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::{Request, Response, StatusCode, body::Frame, body::Incoming, header::CONTENT_TYPE};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use tokio::{
    fs::File,
    io::{AsyncReadExt, AsyncSeekExt},
    sync::{mpsc, watch},
};
use tokio_util::sync::CancellationToken;

use super::query::Query;
use crate::{
    container_log::{LogState, RunPhase, split_line},
    http_server::{Body, respond, text},
    pod_runtime::PodRuntime,
};

const CONTENT: &str = "text/plain";
/// Chunks queued for a slow follower before the follower waits.
const FOLLOW_QUEUE: usize = 16;

#[derive(Debug, Default, Clone, Copy)]
struct LogOptions {
    follow: bool,
    previous: bool,
    timestamps: bool,
    /// Only the last lines (negative: all, as the kubelet reads it).
    tail: Option<i64>,
    since: Option<Timestamp>,
    limit: Option<u64>,
}

impl LogOptions {
    fn parse(query: &Query) -> Result<Self, String> {
        let since_seconds = query.parsed::<i64>("sinceSeconds")?;
        let since_time = query.parsed::<Timestamp>("sinceTime")?;
        let since = match (since_seconds, since_time) {
            (Some(seconds), _) => Some(Timestamp::now() - SignedDuration::from_secs(seconds)),
            (None, time) => time,
        };
        Ok(Self {
            follow: query.flag(&["follow"]),
            previous: query.flag(&["previous"]),
            timestamps: query.flag(&["timestamps"]),
            tail: query.parsed("tailLines")?,
            since,
            limit: query.parsed("limitBytes")?,
        })
    }

    /// A stored line as the client asked for it, or `None` when it is older than `since`.
    fn render(&self, line: &str) -> Option<String> {
        let (time, text) = split_line(line).unwrap_or((Timestamp::UNIX_EPOCH, line));
        if self.since.is_some_and(|since| time < since) {
            return None;
        }
        Some(if self.timestamps {
            format!("{line}\n")
        } else {
            format!("{text}\n")
        })
    }
}

/// What is left of `limitBytes`.
struct Budget(Option<u64>);

impl Budget {
    /// The part of `bytes` within the budget.
    fn take<'a>(&mut self, bytes: &'a [u8]) -> &'a [u8] {
        match &mut self.0 {
            None => bytes,
            Some(left) => {
                let taken = bytes
                    .len()
                    .min(usize::try_from(*left).unwrap_or(usize::MAX));
                *left -= taken as u64;
                &bytes[..taken]
            }
        }
    }

    fn exhausted(&self) -> bool {
        self.0 == Some(0)
    }
}

pub(super) async fn handle(
    request: &Request<Incoming>,
    pod: Arc<PodRuntime>,
    container: &str,
    shutdown: &CancellationToken,
) -> Response<Body> {
    let options = match LogOptions::parse(&Query::of(request.uri())) {
        Ok(options) => options,
        Err(message) => return text(StatusCode::BAD_REQUEST, message),
    };
    let Some(runtime) = pod.container(container) else {
        return text(
            StatusCode::NOT_FOUND,
            format!(
                "container \"{container}\" in pod \"{}\" is not available",
                pod.name
            ),
        );
    };
    let log = &runtime.log;
    let states = log.subscribe();
    let state = states.borrow().clone();
    let path = if options.previous {
        log.previous_path()
    } else {
        log.current_path()
    };
    let file = match File::open(path).await {
        Ok(file) => file,
        Err(_) if options.previous => {
            let message = format!(
                "previous terminated container \"{container}\" in pod \"{}\" not found",
                pod.name
            );
            return text(StatusCode::BAD_REQUEST, message);
        }
        Err(_) => {
            let reason = match &state.phase {
                RunPhase::Waiting(reason) => reason.as_str(),
                _ => "ContainerCreating",
            };
            let message = format!(
                "container \"{container}\" in pod \"{}\" is waiting to start: {reason}",
                pod.name
            );
            return text(StatusCode::BAD_REQUEST, message);
        }
    };
    let (mut file, content) = match read_rest(file).await {
        Ok(read) => read,
        Err(error) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("reading the log: {error}"),
            );
        }
    };
    // Only complete lines now; a line still being written is read when following.
    let complete = content
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let mut budget = Budget(options.limit);
    let body = snapshot(&content[..complete], &options, &mut budget);
    let follow = options.follow && !options.previous && state.phase == RunPhase::Running;
    if !follow || budget.exhausted() {
        return respond(StatusCode::OK, CONTENT, body);
    }
    if let Err(error) = file.seek(SeekFrom::Start(complete as u64)).await {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading the log: {error}"),
        );
    }
    let (sender, mut receiver) = mpsc::channel(FOLLOW_QUEUE);
    if !body.is_empty() {
        let _ = sender.try_send(Bytes::from(body));
    }
    let follower = Follower {
        file,
        states,
        run: state.runs,
        // The tail was the snapshot's; every new line follows.
        options: LogOptions {
            tail: None,
            ..options
        },
        budget,
        sender,
    };
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = follower.run() => {}
            () = pod.stopped() => {}
            () = shutdown.cancelled() => {}
        }
    });
    let stream = futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
        .map(|bytes| Ok(Frame::data(bytes)));
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, CONTENT.parse().expect("valid content type"));
    response
}

async fn read_rest(mut file: File) -> std::io::Result<(File, Vec<u8>)> {
    let mut content = Vec::new();
    file.read_to_end(&mut content).await?;
    Ok((file, content))
}

/// The stored lines `content` as asked: the tail, then the lines since the given time, formatted,
/// within the byte limit.
fn snapshot(content: &[u8], options: &LogOptions, budget: &mut Budget) -> Vec<u8> {
    let content = String::from_utf8_lossy(content);
    let lines: Vec<&str> = content.lines().collect();
    let skip = match options.tail {
        Some(tail) if tail >= 0 => lines
            .len()
            .saturating_sub(usize::try_from(tail).unwrap_or(usize::MAX)),
        _ => 0,
    };
    let mut body = Vec::new();
    for line in lines[skip..].iter().filter_map(|line| options.render(line)) {
        body.extend_from_slice(budget.take(line.as_bytes()));
    }
    body
}

/// Streams the lines appended to a running container's log until that run ends, the client goes,
/// or the byte limit is reached.
struct Follower {
    file: File,
    states: watch::Receiver<LogState>,
    run: u32,
    options: LogOptions,
    budget: Budget,
    sender: mpsc::Sender<Bytes>,
}

impl Follower {
    async fn run(mut self) {
        let mut partial = Vec::new();
        loop {
            // Mark the state seen before reading, so an append after the read wakes us.
            let state = self.states.borrow_and_update().clone();
            let mut chunk = Vec::new();
            if self.file.read_to_end(&mut chunk).await.is_err() {
                return;
            }
            partial.extend_from_slice(&chunk);
            if let Some(end) = partial.iter().rposition(|b| *b == b'\n') {
                let lines: Vec<u8> = partial.drain(..=end).collect();
                let body = snapshot(&lines, &self.options, &mut self.budget);
                if !body.is_empty() && self.sender.send(Bytes::from(body)).await.is_err() {
                    return;
                }
                if self.budget.exhausted() {
                    return;
                }
            }
            if state.runs != self.run || state.phase != RunPhase::Running {
                return;
            }
            tokio::select! {
                changed = self.states.changed() => if changed.is_err() { return },
                () = self.sender.closed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored() -> String {
        [
            "2024-01-01T00:00:00.000000001Z one",
            "2024-01-01T00:00:10.000000000Z two",
            "2024-01-01T00:00:20.500000000Z three",
        ]
        .map(|line| format!("{line}\n"))
        .concat()
    }

    fn render(options: LogOptions) -> String {
        String::from_utf8(snapshot(
            stored().as_bytes(),
            &options,
            &mut Budget(options.limit),
        ))
        .unwrap()
    }

    #[test]
    fn snapshots_honour_tail_since_timestamps_and_limit() {
        assert_eq!(render(LogOptions::default()), "one\ntwo\nthree\n");
        assert_eq!(
            render(LogOptions {
                tail: Some(2),
                ..Default::default()
            }),
            "two\nthree\n"
        );
        assert_eq!(
            render(LogOptions {
                tail: Some(0),
                ..Default::default()
            }),
            ""
        );
        assert_eq!(
            render(LogOptions {
                tail: Some(-1),
                ..Default::default()
            }),
            "one\ntwo\nthree\n"
        );
        let since = "2024-01-01T00:00:05Z".parse().ok();
        assert_eq!(
            render(LogOptions {
                since,
                ..Default::default()
            }),
            "two\nthree\n"
        );
        assert_eq!(
            render(LogOptions {
                timestamps: true,
                tail: Some(1),
                ..Default::default()
            }),
            "2024-01-01T00:00:20.500000000Z three\n"
        );
        assert_eq!(
            render(LogOptions {
                limit: Some(6),
                ..Default::default()
            }),
            "one\ntw"
        );
    }
}
