//! `timelab chaos --steady SECONDS`: the network at scale, with no fault. Every link through
//! the relay is delayed by `--latency-ms` each way, a light load of payments runs, and for
//! SECONDS the run measures:
//!
//! - the finality of every block on every node: from the block's timestamp (its proposer
//!   stamps it as it builds the proposal) to the node's `finalized` log line (JSON logs with
//!   microsecond timestamps; every node runs on this machine's one clock);
//! - the messages and bytes each node sent and received per height (its own Prometheus
//!   counters, scraped before and after);
//! - each node's CPU (cores used over the window) and peak resident memory (`/proc`).
//!
//! It checks what a chaos seed checks (agreement on every block and UTXO-set commitment, no
//! lost block) and that every node finalized every block of the window. It writes
//! `steady.json` and prints a summary.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;
use serde_json::{Value, json};
use timecoin_chain::Genesis;

use super::checks::final_checks;
use super::observe::Observer;
use super::options::Options;
use super::relay::Faults;
use super::seed::{Network, PACING, prepare_payments, submit_load};
use super::signals::interrupted;
use crate::bench::breakdown::{fetch, total};

/// Where each node serves its metrics, inside its own namespace.
const METRICS_PORT: u16 = 29_000;

/// Heights every node must reach before the window opens (links made, funding done).
const WARM_HEIGHTS: u64 = 3;

/// One node's figures over the window.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct NodeFigures {
    pub(crate) sent_messages_per_height: f64,
    pub(crate) received_messages_per_height: f64,
    pub(crate) sent_bytes_per_height: f64,
    pub(crate) received_bytes_per_height: f64,
    /// Votes it passed on to overlay links (the relay rule).
    pub(crate) relayed_votes_per_height: f64,
    pub(crate) cpu_cores: f64,
    pub(crate) peak_rss_bytes: u64,
    pub(crate) peers: u64,
}

/// What a steady run measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SteadyReport {
    pub(crate) nodes: usize,
    pub(crate) latency_ms: u64,
    pub(crate) rate: u64,
    pub(crate) seconds: f64,
    /// Heights finalized by every node in the window.
    pub(crate) heights: u64,
    pub(crate) first_height: u64,
    pub(crate) last_height: u64,
    /// Finality over every (node, block) of the window, in seconds.
    pub(crate) finality_p50_s: f64,
    pub(crate) finality_p99_s: f64,
    pub(crate) finality_max_s: f64,
    /// Mean seconds between blocks.
    pub(crate) block_interval_s: f64,
    pub(crate) transactions_in_blocks: usize,
    /// Bytes a node sent per height, by kind of message, and blocks served, pushed and
    /// applied by sync per height (means over the nodes).
    pub(crate) sent_bytes_per_height_by_kind: BTreeMap<String, f64>,
    /// Means over the nodes, then the largest node.
    pub(crate) mean: NodeFigures,
    pub(crate) max: NodeFigures,
    pub(crate) per_node: Vec<NodeFigures>,
    pub(crate) violations: Vec<String>,
}

/// A node's traffic counters at one moment: messages and bytes, sent and received, and
/// votes relayed; and the bytes it sent of each kind of message.
#[derive(Debug, Clone, Default)]
struct Traffic {
    totals: [f64; 5],
    sent_by_kind: BTreeMap<String, f64>,
}

fn traffic(address: SocketAddr) -> Result<Traffic> {
    let scrape = fetch(address)?;
    let get = |metric: &str| total(&scrape, metric, None);
    let mut sent_by_kind = BTreeMap::new();
    for sample in scrape
        .samples
        .iter()
        .filter(|s| s.metric == "timecoin_network_sent_bytes_total")
    {
        if let (Some(kind), prometheus_parse::Value::Counter(v)) = (sample.labels.get("kind"), &sample.value) {
            *sent_by_kind.entry(kind.to_owned()).or_insert(0.0) += v;
        }
    }
    // Why blocks were sent: served to a request, or pushed to a peer behind.
    for (name, metric) in [
        ("blocks served", "timecoin_blocks_served_total"),
        ("blocks pushed", "timecoin_blocks_pushed_total"),
        ("blocks applied by sync", "timecoin_sync_blocks_applied_total"),
    ] {
        sent_by_kind.insert(name.to_owned(), total(&scrape, metric, None));
    }
    Ok(Traffic {
        totals: [
            get("timecoin_network_sent_messages_total"),
            get("timecoin_network_received_messages_total"),
            get("timecoin_network_sent_bytes_total"),
            get("timecoin_network_received_bytes_total"),
            get("timecoin_votes_relayed_total"),
        ],
        sent_by_kind,
    })
}

/// Runs the steady measurement for `seconds` in `dir`.
pub(crate) fn run(options: &Options, seconds: u64, latency_ms: u64, dir: &Path) -> Result<SteadyReport> {
    let seed = options.seed.unwrap_or(1);
    let config = format!("{PACING}\n[metrics]\nenabled = true\nlisten = \"0.0.0.0:{METRICS_PORT}\"\n");
    let mut args = vec!["--log-format".to_owned(), "json".to_owned()];
    if options.verbose_nodes {
        args.push("-v".to_owned());
    }
    println!(
        "starting {} masternodes, every link {latency_ms} ms each way",
        options.nodes
    );
    let mut settings = String::new();
    if let Some(links) = options.masternode_peers {
        settings.push_str(&format!("masternode_peers = {links}\n"));
    }
    if let Some(outbound) = options.max_outbound {
        settings.push_str(&format!("max_outbound = {outbound}\n"));
    }
    let network = Network::start_with(options, seed, dir, &config, args, |text| {
        text.replacen("[network]\n", &format!("[network]\n{settings}"), 1)
    })?;
    let n = options.nodes;
    for from in 0..n {
        for to in 0..n {
            network.relay.set(
                from,
                to,
                Faults {
                    latency_ms,
                    ..Faults::default()
                },
            );
        }
    }
    let nodes = &network.nodes;
    let dirs = (0..n)
        .map(|k| nodes.dir(k).map(Path::to_path_buf))
        .collect::<Result<Vec<_>>>()?;
    let genesis = Genesis::from_toml(&std::fs::read_to_string(network.net.join("genesis.toml"))?)?;
    let payments = if options.rate > 0 {
        prepare_payments(
            &genesis,
            &network.net,
            nodes,
            options.rate.saturating_mul(seconds.saturating_add(60)),
        )?
    } else {
        Vec::new()
    };
    let heights_now = || -> Vec<u64> {
        (0..n)
            .map(|k| {
                nodes
                    .client(k)
                    .ok()
                    .and_then(|c| c.call("getblockcount", json!([])).ok())
                    .and_then(|v| v.as_u64())
                    .unwrap_or(0)
            })
            .collect()
    };
    let warm_deadline = Instant::now() + Duration::from_secs(120 + 2 * n as u64);
    while heights_now().iter().min().copied().unwrap_or(0) < WARM_HEIGHTS {
        if Instant::now() > warm_deadline || interrupted() {
            anyhow::bail!(
                "not every node reached height {WARM_HEIGHTS} (heights {:?})",
                heights_now()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let metrics: Vec<SocketAddr> = network
        .node_ips
        .iter()
        .map(|ip| SocketAddr::new(*ip, METRICS_PORT))
        .collect();
    let start = Instant::now();
    // Seldom: the observers cost CPU the nodes share, and the final checks read every chain.
    let observer = Observer::start(dirs.clone(), start, Duration::from_secs(5));
    let before_heights = heights_now();
    let before: Vec<Traffic> = metrics.iter().map(|a| traffic(*a)).collect::<Result<_>>()?;
    let cpu = nodes.cpu_mark();
    let up: Vec<AtomicBool> = (0..n).map(|_| AtomicBool::new(true)).collect();
    let stop = AtomicBool::new(false);
    let (submitted, accepted) = (AtomicU64::new(0), AtomicU64::new(0));
    let window = Duration::from_secs(seconds);
    let (after_heights, after, usage) = std::thread::scope(|scope| {
        scope.spawn(|| {
            submit_load(
                &dirs,
                &payments,
                options.rate,
                seed,
                &up,
                &stop,
                (&submitted, &accepted),
            )
        });
        let mut next_print = start;
        while start.elapsed() < window && !interrupted() {
            if Instant::now() >= next_print {
                let tips = observer.tips();
                println!(
                    "  {:>4.0} s  heights {}–{}",
                    start.elapsed().as_secs_f64(),
                    tips.iter().min().copied().unwrap_or(0),
                    tips.iter().max().copied().unwrap_or(0)
                );
                next_print += Duration::from_secs(30);
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let usage = nodes.usage_since(&cpu);
        let after_heights = heights_now();
        let after: Result<Vec<Traffic>> = metrics.iter().map(|a| traffic(*a)).collect();
        stop.store(true, Ordering::Relaxed);
        (after_heights, after, usage)
    });
    let after = after?;
    let elapsed = start.elapsed().as_secs_f64();
    let peers: Vec<u64> = (0..n)
        .map(|k| {
            nodes
                .client(k)
                .ok()
                .and_then(|c| c.call("getconnectioncount", json!([])).ok())
                .and_then(|v| v.as_u64())
                .unwrap_or(0)
        })
        .collect();
    let observed = observer.finish();
    let (_, mut violations) = final_checks(nodes, &observed, seed, network.lab.relay_ip())?;
    violations.extend(observed.violations.iter().cloned());
    let Network { mut nodes, .. } = network;
    nodes.stop();
    let first_height = before_heights.iter().max().copied().unwrap_or(0) + 1;
    let last_height = after_heights.iter().min().copied().unwrap_or(0);
    let heights = last_height.saturating_sub(first_height) + 1;
    let mut finality = Vec::new();
    let mut times = BTreeMap::new();
    for (k, dir) in dirs.iter().enumerate() {
        let log = finalized(&dir.join("timed.log"))?;
        for height in first_height..=last_height {
            match log.get(&height) {
                Some((at_ms, block_ms)) => {
                    finality.push(at_ms.saturating_sub(*block_ms) as f64 / 1e3);
                    times.entry(height).or_insert(*block_ms);
                }
                None => violations.push(format!("node{k} did not log finalizing height {height}")),
            }
        }
    }
    finality.sort_by(f64::total_cmp);
    let quantile = |q: f64| {
        finality
            .get(((finality.len() as f64 - 1.0) * q).round().max(0.0) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    let span_ms = match (times.first_key_value(), times.last_key_value()) {
        (Some((h0, t0)), Some((h1, t1))) if h1 > h0 => (t1 - t0) as f64 / (h1 - h0) as f64,
        _ => f64::NAN,
    };
    let per_height = heights.max(1) as f64;
    let per_node: Vec<NodeFigures> = (0..n)
        .map(|k| {
            let delta = |i: usize| {
                let a = after.get(k).and_then(|t| t.totals.get(i)).copied().unwrap_or(0.0);
                let b = before.get(k).and_then(|t| t.totals.get(i)).copied().unwrap_or(0.0);
                (a - b) / per_height
            };
            let use_ = usage.get(k);
            NodeFigures {
                sent_messages_per_height: delta(0),
                received_messages_per_height: delta(1),
                sent_bytes_per_height: delta(2),
                received_bytes_per_height: delta(3),
                relayed_votes_per_height: delta(4),
                cpu_cores: use_.map_or(0.0, |u| u.cpu_cores),
                peak_rss_bytes: use_.map_or(0, |u| u.peak_rss_bytes),
                peers: peers.get(k).copied().unwrap_or(0),
            }
        })
        .collect();
    // On the grid, masternodes not linked hear each other through relays: none means the
    // overlay was not exercised (or relaying is broken).
    let links = options.masternode_peers.unwrap_or(32);
    if n.saturating_sub(1) > links && per_node.iter().all(|f| f.relayed_votes_per_height == 0.0) {
        violations.push(format!(
            "no vote was relayed, though {n} masternodes with {links} links each are on the grid"
        ));
    }
    let mut by_kind: BTreeMap<String, f64> = BTreeMap::new();
    for (a, b) in after.iter().zip(&before) {
        for (kind, bytes) in &a.sent_by_kind {
            let earlier = b.sent_by_kind.get(kind).copied().unwrap_or(0.0);
            *by_kind.entry(kind.clone()).or_insert(0.0) += (bytes - earlier) / per_height / n.max(1) as f64;
        }
    }
    let report = SteadyReport {
        nodes: n,
        latency_ms,
        rate: options.rate,
        seconds: elapsed,
        heights,
        first_height,
        last_height,
        finality_p50_s: quantile(0.5),
        finality_p99_s: quantile(0.99),
        finality_max_s: finality.last().copied().unwrap_or(f64::NAN),
        block_interval_s: span_ms / 1e3,
        transactions_in_blocks: observed.transactions.len(),
        sent_bytes_per_height_by_kind: by_kind,
        mean: summarize(&per_node, |xs| xs.iter().sum::<f64>() / xs.len().max(1) as f64),
        max: summarize(&per_node, |xs| xs.iter().copied().fold(0.0, f64::max)),
        per_node,
        violations,
    };
    std::fs::write(dir.join("steady.json"), serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("writing {}", dir.join("steady.json").display()))?;
    Ok(report)
}

/// One figure over all nodes (`fold` of each field).
fn summarize(nodes: &[NodeFigures], fold: impl Fn(&[f64]) -> f64) -> NodeFigures {
    let field = |f: &dyn Fn(&NodeFigures) -> f64| fold(&nodes.iter().map(f).collect::<Vec<_>>());
    NodeFigures {
        sent_messages_per_height: field(&|x| x.sent_messages_per_height),
        received_messages_per_height: field(&|x| x.received_messages_per_height),
        sent_bytes_per_height: field(&|x| x.sent_bytes_per_height),
        received_bytes_per_height: field(&|x| x.received_bytes_per_height),
        relayed_votes_per_height: field(&|x| x.relayed_votes_per_height),
        cpu_cores: field(&|x| x.cpu_cores),
        peak_rss_bytes: field(&|x| x.peak_rss_bytes as f64) as u64,
        peers: field(&|x| x.peers as f64) as u64,
    }
}

/// Each height a node's JSON log says it finalized: when (milliseconds since the epoch) and
/// the block's own timestamp.
fn finalized(log: &Path) -> Result<BTreeMap<u64, (u64, u64)>> {
    let text = std::fs::read_to_string(log).with_context(|| format!("reading {}", log.display()))?;
    let mut heights = BTreeMap::new();
    for line in text.lines() {
        let Ok(event) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if event.get("message").and_then(Value::as_str) != Some("finalized") {
            continue;
        }
        let at = event.get("timestamp").and_then(Value::as_str).and_then(rfc3339_ms);
        let height = event.get("height").and_then(Value::as_u64);
        let block = event.get("block_time_ms").and_then(Value::as_u64);
        if let (Some(at), Some(height), Some(block)) = (at, height, block) {
            heights.entry(height).or_insert((at, block));
        }
    }
    Ok(heights)
}

/// Milliseconds since the epoch of a UTC timestamp `YYYY-MM-DDTHH:MM:SS[.fraction]Z`.
fn rfc3339_ms(text: &str) -> Option<u64> {
    let (date, time) = text.strip_suffix('Z')?.split_once('T')?;
    let mut date = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (date.next()??, date.next()??, date.next()??);
    let (hms, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let mut hms = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (hms.next()??, hms.next()??, hms.next()??);
    let millis: i64 = format!("{fraction:0<3}").get(..3)?.parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let ms = ((days * 86_400 + hh * 3_600 + mm * 60 + ss) * 1_000) + millis;
    u64::try_from(ms).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_read_as_milliseconds_since_the_epoch() {
        assert_eq!(rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_ms("1970-01-02T00:00:01.5Z"), Some(86_401_500));
        // `date -d 2026-12-07T23:10:01.123456Z +%s%3N`
        assert_eq!(rfc3339_ms("2026-12-07T23:10:01.123456Z"), Some(1_796_685_001_123));
        assert_eq!(rfc3339_ms("2024-02-29T12:00:00.000Z"), Some(1_709_208_000_000));
        assert_eq!(rfc3339_ms("not a time"), None);
    }

    #[test]
    fn finalized_heights_come_from_json_log_lines() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("timed.log");
        std::fs::write(
            &log,
            concat!(
                "{\"timestamp\":\"1970-01-01T00:00:02.250Z\",\"level\":\"INFO\",\"message\":\"finalized\",\"height\":7,\"block_time_ms\":2000}\n",
                "not json\n",
                "{\"timestamp\":\"1970-01-01T00:00:03Z\",\"level\":\"INFO\",\"message\":\"peer connected\"}\n",
            ),
        )
        .unwrap();
        let heights = finalized(&log).unwrap();
        assert_eq!(heights.get(&7), Some(&(2_250, 2_000)));
        assert_eq!(heights.len(), 1);
    }
}
