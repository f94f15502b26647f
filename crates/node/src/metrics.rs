//! The Prometheus endpoint (`[metrics] enabled`, loopback by default): a recorder for the
//! `metrics` facade, and a small HTTP server, owned by the node's task tracker, that answers
//! `GET /metrics` with the text exposition format.
//!
//! Series (all prefixed `timecoin_`): `chain_height`, `blocks_finalized_total`,
//! `block_interval_seconds`, `block_apply_seconds`, `commit_latency_seconds`,
//! `votes_missed_total{masternode}`, `consensus_round`, `sync_behind`,
//! `sync_target_height`, `sync_blocks_applied_total`, `mempool_transactions`,
//! `mempool_bytes`, `mempool_usage_bytes`, `peers`, `network_received_bytes_total`,
//! `network_sent_bytes_total`.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Buckets for durations, in seconds: 1 ms to 2 min.
const SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// Installs the process-wide recorder.
pub(crate) fn install() -> Result<PrometheusHandle> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS)
        .context("configuring metric buckets")?
        .install_recorder()
        .context("installing the metrics recorder")
}

/// Serves `handle` on `listen` until `cancel`; returns the bound address.
pub(crate) async fn serve(
    listen: SocketAddr,
    handle: PrometheusHandle,
    cancel: CancellationToken,
    tracker: &TaskTracker,
) -> Result<SocketAddr> {
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("serving metrics on {listen}"))?;
    let address = listener.local_addr()?;
    tracker.spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = cancel.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            if let Ok((stream, _)) = accepted {
                // One scrape at a time: a scrape is cheap, and this bounds the work a caller
                // can cause.
                let _ = tokio::time::timeout(Duration::from_secs(5), answer(stream, &handle)).await;
            }
        }
    });
    Ok(address)
}

async fn answer(mut stream: TcpStream, handle: &PrometheusHandle) -> std::io::Result<()> {
    let mut request = [0u8; 2_048];
    let read = stream.read(&mut request).await?;
    let head = String::from_utf8_lossy(request.get(..read).unwrap_or_default());
    let (status, body) = if head.starts_with("GET /metrics ") || head.starts_with("GET / ") {
        handle.run_upkeep();
        ("200 OK", handle.render())
    } else {
        ("404 Not Found", "not found: scrape GET /metrics\n".to_owned())
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
