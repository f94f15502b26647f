//! Where a node's time goes under load: the CPU each node spent per finalized payment, in
//! microseconds and in units of one batched signature verification measured in the same run,
//! split into the signature verification pool's threads (read from `/proc`), the CPU of each
//! stage of a payment's path on the thread that ran it, from the node's own
//! `timecoin_stage_cpu_seconds` histograms (scraped from its Prometheus endpoint before and
//! after the load, parsed by the `prometheus-parse` crate), and the rest.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use serde::Serialize;

/// The stages a node times (`crates/node/src/metrics.rs`).
pub(crate) const STAGES: &[&str] = &["admission", "validation", "proposal", "apply"];

/// Each stage's busy seconds in one node at one moment, in [`STAGES`] order.
#[derive(Debug, Clone, Default)]
pub(crate) struct StageMark(Vec<f64>);

/// The metrics a node serves at `address`, parsed.
pub(crate) fn fetch(address: SocketAddr) -> Result<prometheus_parse::Scrape> {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .build(),
    );
    let body = agent
        .get(format!("http://{address}/metrics"))
        .call()
        .with_context(|| format!("scraping metrics from {address}"))?
        .body_mut()
        .read_to_string()
        .with_context(|| format!("reading metrics from {address}"))?;
    prometheus_parse::Scrape::parse(body.lines().map(|line| Ok(line.to_owned())))
        .with_context(|| format!("parsing metrics from {address}"))
}

/// The sum of `metric`'s samples (counters, gauges or untyped) whose labels include `label`.
pub(crate) fn total(scrape: &prometheus_parse::Scrape, metric: &str, label: Option<(&str, &str)>) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Untyped(v)
            | prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v) => v,
            _ => 0.0,
        })
        .sum()
}

/// Reads node metrics at `address`.
pub(crate) fn scrape(address: SocketAddr) -> Result<StageMark> {
    let scrape = fetch(address)?;
    Ok(StageMark(
        STAGES
            .iter()
            .map(|stage| total(&scrape, "timecoin_stage_cpu_seconds_sum", Some(("stage", stage))))
            .collect(),
    ))
}

/// Scrapes every node.
pub(crate) fn scrape_all(addresses: &[SocketAddr]) -> Result<Vec<StageMark>> {
    addresses.iter().map(|a| scrape(*a)).collect()
}

/// One stage's share of a payment's cost, averaged over the nodes.
#[derive(Debug, Serialize)]
pub(crate) struct Stage {
    pub(crate) stage: String,
    /// CPU microseconds per finalized payment per node.
    pub(crate) us_per_tx: f64,
    /// The same in batched signature verifications.
    pub(crate) verifications_per_tx: f64,
}

/// The cost of a finalized payment in one node, averaged over the nodes.
#[derive(Debug, Serialize)]
pub(crate) struct Breakdown {
    /// One batched verification on one core, in microseconds (this run's measurement).
    pub(crate) verification_us: f64,
    /// CPU microseconds each node spent per finalized payment.
    pub(crate) cpu_us_per_tx: f64,
    /// The same in batched verifications (the target: at most 2.5).
    pub(crate) cpu_per_tx_in_verifications: f64,
    /// `signatures` (the verification pool's threads), the CPU of each timed stage on its own
    /// thread, then `other`: the CPU none of them accounts for (network, JSON-RPC,
    /// consensus, relay, the runtime).
    pub(crate) stages: Vec<Stage>,
}

impl Breakdown {
    /// From each node's CPU seconds (in all, and on its verification threads), stage marks
    /// before and after the load, the payments finalized meanwhile, and one batched
    /// verification's microseconds.
    pub(crate) fn new(
        cpu_seconds: &[f64],
        verify_seconds: &[f64],
        before: &[StageMark],
        after: &[StageMark],
        finalized: usize,
        verification_us: f64,
    ) -> Result<Breakdown> {
        let nodes = cpu_seconds.len();
        if nodes == 0 || before.len() != nodes || after.len() != nodes || finalized == 0 {
            return Err(anyhow!("no load to break down"));
        }
        let per_tx_us = |seconds: f64| seconds * 1e6 / finalized as f64 / nodes as f64;
        let units = |us: f64| us / verification_us.max(1e-9);
        let cpu_us_per_tx = per_tx_us(cpu_seconds.iter().sum());
        let stage = |name: &str, us_per_tx: f64| Stage {
            stage: name.to_owned(),
            us_per_tx,
            verifications_per_tx: units(us_per_tx),
        };
        let mut stages = vec![stage("signatures", per_tx_us(verify_seconds.iter().sum()))];
        stages.extend(STAGES.iter().enumerate().map(|(k, name)| {
            let seconds: f64 = before
                .iter()
                .zip(after)
                .map(|(b, a)| a.0.get(k).copied().unwrap_or(0.0) - b.0.get(k).copied().unwrap_or(0.0))
                .sum();
            stage(name, per_tx_us(seconds.max(0.0)))
        }));
        let other = (cpu_us_per_tx - stages.iter().map(|s| s.us_per_tx).sum::<f64>()).max(0.0);
        stages.push(stage("other", other));
        Ok(Breakdown {
            verification_us,
            cpu_us_per_tx,
            cpu_per_tx_in_verifications: units(cpu_us_per_tx),
            stages,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_breakdown_divides_each_node_s_time_by_the_payments_and_the_verification_cost() {
        // Two nodes, 1,000 payments, 20 µs a verification: node CPU 0.1 s and 0.3 s is
        // 200 µs a payment a node, 10 verifications.
        let before = vec![StageMark(vec![1.0, 0.0, 0.0, 0.5]); 2];
        let after = vec![
            StageMark(vec![1.02, 0.0, 0.0, 0.54]),
            StageMark(vec![1.06, 0.0, 0.0, 0.5]),
        ];
        let b = Breakdown::new(&[0.1, 0.3], &[0.02, 0.02], &before, &after, 1_000, 20.0).unwrap();
        assert!((b.cpu_us_per_tx - 200.0).abs() < 1e-6, "{b:?}");
        assert!((b.cpu_per_tx_in_verifications - 10.0).abs() < 1e-6);
        let us = |name: &str| b.stages.iter().find(|s| s.stage == name).unwrap().us_per_tx;
        assert!((us("signatures") - 20.0).abs() < 1e-6, "{b:?}");
        assert!((us("admission") - 40.0).abs() < 1e-6, "{b:?}");
        assert!((us("apply") - 20.0).abs() < 1e-6);
        assert!((us("other") - 120.0).abs() < 1e-6);
        assert!(Breakdown::new(&[0.1], &[0.0], &before, &after, 1_000, 20.0).is_err());
        assert!(Breakdown::new(&[0.1, 0.3], &[0.0, 0.0], &before, &after, 0, 20.0).is_err());
    }

    #[test]
    fn a_scrape_reads_the_stage_sums_of_the_node_s_exposition() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request).unwrap();
            let body = "# TYPE timecoin_stage_cpu_seconds histogram\n\
                        timecoin_stage_cpu_seconds_bucket{stage=\"apply\",le=\"+Inf\"} 3\n\
                        timecoin_stage_cpu_seconds_sum{stage=\"apply\"} 0.75\n\
                        timecoin_stage_cpu_seconds_count{stage=\"apply\"} 3\n\
                        timecoin_stage_seconds_sum{stage=\"validation\"} 9.5\n\
                        timecoin_stage_cpu_seconds_sum{stage=\"admission\"} 2.5\n";
            write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
        });
        let mark = scrape(address).unwrap();
        server.join().unwrap();
        assert_eq!(mark.0, vec![2.5, 0.0, 0.0, 0.75]);
    }
}
