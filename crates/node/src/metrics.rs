//! The Prometheus endpoint (`[metrics] enabled`, loopback by default): a recorder for the
//! `metrics` facade, and an HTTP server (hyper's HTTP/1 connection, one request a
//! connection), owned by the node's task tracker, that answers `GET /metrics` with the text
//! exposition format. Each connection has its own task, a deadline and one of a fixed number
//! of slots, so a client that sends or reads nothing delays no other scrape and idle
//! connections cannot pile up.
//!
//! Series (all prefixed `timecoin_`): `chain_height`, `blocks_finalized_total`,
//! `block_interval_seconds`, `block_apply_seconds`, `commit_latency_seconds`,
//! `votes_missed_total{masternode}`, `consensus_round`, `sync_behind`,
//! `sync_target_height`, `sync_blocks_applied_total`, `coins_cache_bytes`,
//! `coins_unflushed_blocks`, `mempool_transactions`,
//! `mempool_bytes`, `mempool_usage_bytes`, `peers`, `network_received_bytes_total{kind}`,
//! `network_sent_bytes_total{kind}`, `network_received_messages_total{kind}`,
//! `network_sent_messages_total{kind}`, `votes_relayed_total`, `votes_regossiped_total`,
//! and `stage_seconds{stage}` and `stage_cpu_seconds{stage}`:
//! the wall and CPU time of a transaction's stages (`admission`, `validation`, `proposal`,
//! `apply`) on the thread that ran them, which `timelab bench` breaks a node's CPU down by.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Buckets for durations, in seconds: 1 ms to 2 min.
const SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// Times one stage of a transaction's path through the node on the thread that runs it:
/// its wall time (`timecoin_stage_seconds{stage}`) and this thread's CPU time
/// (`timecoin_stage_cpu_seconds{stage}`). Signature batches inside a stage run on the
/// verification pool's threads (`verify-N`), whose CPU is not the stage's.
pub(crate) struct StageTimer {
    stage: &'static str,
    wall: Instant,
    cpu: Option<cpu_time::ThreadTime>,
}

impl StageTimer {
    pub(crate) fn start(stage: &'static str) -> StageTimer {
        StageTimer {
            stage,
            wall: Instant::now(),
            cpu: cpu_time::ThreadTime::try_now().ok(),
        }
    }

    /// Records the stage's times (on the thread that started it).
    pub(crate) fn finish(self) {
        metrics::histogram!("timecoin_stage_seconds", "stage" => self.stage).record(self.wall.elapsed().as_secs_f64());
        if let Some(elapsed) = self.cpu.and_then(|cpu| cpu.try_elapsed().ok()) {
            metrics::histogram!("timecoin_stage_cpu_seconds", "stage" => self.stage).record(elapsed.as_secs_f64());
        }
    }
}

/// Installs the process-wide recorder.
pub(crate) fn install() -> Result<PrometheusHandle> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS)
        .context("configuring metric buckets")?
        .install_recorder()
        .context("installing the metrics recorder")
}

/// How much the endpoint serves at once and for how long.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Connections served at once. One more is answered `503` and closed at once, so idle
    /// connections cannot pile up: each holds a file descriptor the node needs for peers.
    connections: usize,
    /// How long a client has to send its request and read the answer.
    timeout: Duration,
}

impl Limits {
    /// A Prometheus server or two, and a person with curl, fit several times over.
    const DEFAULT: Limits = Limits {
        connections: 16,
        timeout: Duration::from_secs(5),
    };
}

/// The most of a request hyper buffers (its line and headers): its smallest allowed buffer;
/// a scrape's request is a few dozen bytes.
const MAX_REQUEST_BYTES: usize = 8_192;

/// Serves `handle` on `listen` until `cancel`; returns the bound address.
pub(crate) async fn serve(
    listen: SocketAddr,
    handle: PrometheusHandle,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) -> Result<SocketAddr> {
    serve_with(listen, handle, cancel, tracker, Limits::DEFAULT).await
}

/// Each connection is answered by its own task, so a client that sends nothing or reads
/// nothing holds up no one else; it is dropped after `limits.timeout`.
async fn serve_with(
    listen: SocketAddr,
    handle: PrometheusHandle,
    cancel: CancellationToken,
    tracker: &TaskTracker,
    limits: Limits,
) -> Result<SocketAddr> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("serving metrics on {listen}"))?;
    let address = listener.local_addr()?;
    let connections = Arc::new(Semaphore::new(limits.connections));
    let connection_tracker = tracker.clone();
    tracker.spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = cancel.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors, most likely: wait rather than spin.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = connections.clone().try_acquire_owned() else {
                // Without waiting: a client that reads nothing must not hold this loop.
                let busy = response("503 Service Unavailable", "too many metrics connections; try again\n");
                let _ = stream.try_write(busy.as_bytes());
                continue;
            };
            let handle = handle.clone();
            let cancel = cancel.clone();
            connection_tracker.spawn(async move {
                let _permit = permit;
                tokio::select! {
                    () = cancel.cancelled() => {}
                    _ = tokio::time::timeout(limits.timeout, answer(stream, &handle)) => {}
                }
            });
        }
    });
    Ok(address)
}

/// Serves one request on `stream` with hyper (which parses it, bounds its headers and
/// closes the connection after the answer).
async fn answer(stream: TcpStream, handle: &PrometheusHandle) -> Result<(), hyper::Error> {
    let service = hyper::service::service_fn(|request: hyper::Request<hyper::body::Incoming>| {
        let scrape = request.method() == hyper::Method::GET
            && matches!(
                request.uri().path_and_query().map(|p| p.as_str()),
                Some("/metrics" | "/")
            );
        let (status, body) = if scrape {
            handle.run_upkeep();
            (hyper::StatusCode::OK, handle.render())
        } else {
            (
                hyper::StatusCode::NOT_FOUND,
                "not found: scrape GET /metrics\n".to_owned(),
            )
        };
        let mut response = hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from(body)));
        *response.status_mut() = status;
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(CONTENT_TYPE),
        );
        std::future::ready(Ok::<_, std::convert::Infallible>(response))
    });
    hyper::server::conn::http1::Builder::new()
        .keep_alive(false)
        .max_buf_size(MAX_REQUEST_BYTES)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .await
}

/// The text exposition format's media type.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// A whole answer written without a parser: for the connection refused when every slot is
/// taken.
fn response(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A scrape of `address` with `GET path`: the whole answer, or `None` if none came
    /// within `deadline`.
    async fn scrape(address: SocketAddr, path: &str, deadline: Duration) -> Option<String> {
        let exchange = async {
            let mut stream = TcpStream::connect(address).await.ok()?;
            let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n");
            stream.write_all(request.as_bytes()).await.ok()?;
            let mut answer = String::new();
            stream.read_to_string(&mut answer).await.ok()?;
            Some(answer)
        };
        tokio::time::timeout(deadline, exchange).await.ok().flatten()
    }

    async fn server(limits: Limits) -> (SocketAddr, CancellationToken, TaskTracker) {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || metrics::gauge!("timecoin_chain_height").set(7.0));
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let address = serve_with("127.0.0.1:0".parse().unwrap(), handle, cancel.clone(), &tracker, limits)
            .await
            .unwrap();
        (address, cancel, tracker)
    }

    #[tokio::test]
    async fn a_client_that_sends_nothing_does_not_hold_up_other_scrapes() {
        let (address, cancel, tracker) = server(Limits::DEFAULT).await;
        let _silent = TcpStream::connect(address).await.unwrap();
        // Well under the time a silent client is given.
        let answer = scrape(address, "/metrics", Duration::from_secs(2))
            .await
            .expect("a scrape is answered while another client sends nothing");
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/plain; version=0.0.4"),
            "{head}"
        );
        assert!(body.contains("timecoin_chain_height 7"), "{body}");
        cancel.cancel();
        tracker.close();
        tracker.wait().await;
    }

    #[tokio::test]
    async fn connections_beyond_the_limit_are_refused_at_once_and_silent_ones_time_out() {
        let limits = Limits {
            connections: 3,
            timeout: Duration::from_secs(1),
        };
        let (address, cancel, tracker) = server(limits).await;
        let started = tokio::time::Instant::now();
        let mut silent = Vec::new();
        for _ in 0..limits.connections {
            silent.push(TcpStream::connect(address).await.unwrap());
        }
        // The server accepts in order, so these three hold every slot.
        let mut refused = TcpStream::connect(address).await.unwrap();
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_millis(800), refused.read_to_string(&mut answer))
            .await
            .expect("a connection beyond the limit is answered at once")
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{answer}");

        // A silent client is closed after the timeout, and its slot serves scrapes again.
        let mut closed = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), silent[0].read_to_end(&mut closed))
            .await
            .expect("a silent client is dropped after the timeout")
            .unwrap();
        assert!(closed.is_empty() && started.elapsed() >= limits.timeout);
        let answer = scrape(address, "/metrics", Duration::from_secs(2)).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        cancel.cancel();
        tracker.close();
        tracker.wait().await;
    }

    #[tokio::test]
    async fn only_get_of_the_metrics_path_or_the_root_is_answered() {
        let (address, cancel, tracker) = server(Limits::DEFAULT).await;
        let deadline = Duration::from_secs(2);
        for path in ["/metrics", "/"] {
            let answer = scrape(address, path, deadline).await.unwrap();
            assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{path}: {answer}");
        }
        for path in ["/metricsx", "/metrics?x", "/health"] {
            let answer = scrape(address, path, deadline).await.unwrap();
            assert!(answer.starts_with("HTTP/1.1 404 Not Found\r\n"), "{path}: {answer}");
        }
        // A request split over several writes is read whole.
        let mut stream = TcpStream::connect(address).await.unwrap();
        for part in ["GET /met", "rics HTTP/1.1\r\nHo", "st: x\r\n", "\r\n"] {
            stream.write_all(part.as_bytes()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        cancel.cancel();
        tracker.close();
        tracker.wait().await;
    }
}
