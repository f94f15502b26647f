//! Summaries of what the benchmark measured: percentiles and per-second series.

use serde::Serialize;

/// The nearest-rank percentile `q` (0–100) of `sorted` (ascending); 0 when empty.
///
/// Exact, over every sample, so that a reported percentile is a latency some payment had. A
/// bucketed histogram (HdrHistogram) would report the upper edge of a value's bucket instead,
/// up to 0.1% above it at three significant digits, to bound memory; the lab keeps every
/// latency for the chart anyway, so it would save nothing here.
pub(crate) fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied().unwrap_or(0.0)
}

/// Count, mean and the usual percentiles of a sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub(crate) struct Summary {
    pub(crate) count: usize,
    pub(crate) mean: f64,
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
}

impl Summary {
    /// Summarizes `values` (in any order).
    pub(crate) fn of(values: &[f64]) -> Summary {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        if sorted.is_empty() {
            return Summary::default();
        }
        Summary {
            count: sorted.len(),
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
            p50: percentile(&sorted, 50.0),
            p90: percentile(&sorted, 90.0),
            p99: percentile(&sorted, 99.0),
            max: sorted.last().copied().unwrap_or(0.0),
        }
    }
}

/// One second of the run: what was submitted and finalized in it, and the finality latency
/// of what was finalized.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub(crate) struct Second {
    /// Seconds since submission started.
    pub(crate) second: u64,
    pub(crate) submitted: u64,
    pub(crate) finalized: u64,
    pub(crate) latency_p50_ms: f64,
    pub(crate) latency_p99_ms: f64,
}

/// Per-second series from `(seconds since start, value)` events: `submitted` are submission
/// times, `finalized` pairs a finalization time with its latency in milliseconds.
pub(crate) fn per_second(submitted: &[f64], finalized: &[(f64, f64)]) -> Vec<Second> {
    let last = submitted
        .iter()
        .chain(finalized.iter().map(|(at, _)| at))
        .fold(0.0_f64, |a, b| a.max(*b));
    let seconds = last.floor() as usize + 1;
    let mut out: Vec<Second> = (0..seconds)
        .map(|s| Second {
            second: s as u64,
            ..Second::default()
        })
        .collect();
    let bucket = |at: f64| at.max(0.0).floor() as usize;
    for at in submitted {
        if let Some(second) = out.get_mut(bucket(*at)) {
            second.submitted += 1;
        }
    }
    let mut latencies: Vec<Vec<f64>> = vec![Vec::new(); seconds];
    for (at, latency) in finalized {
        if let Some(list) = latencies.get_mut(bucket(*at)) {
            list.push(*latency);
        }
    }
    for (second, mut list) in out.iter_mut().zip(latencies) {
        list.sort_by(f64::total_cmp);
        second.finalized = list.len() as u64;
        second.latency_p50_ms = percentile(&list, 50.0);
        second.latency_p99_ms = percentile(&list, 99.0);
    }
    out
}

/// `buckets` equal-width bins over `[0, upper)` counting `values` (the last bin also takes
/// everything at or above `upper`).
pub(crate) fn histogram(values: &[f64], upper: f64, buckets: usize) -> Vec<u64> {
    let mut counts = vec![0u64; buckets.max(1)];
    let width = upper / counts.len() as f64;
    let last = counts.len() - 1;
    for value in values {
        let index = if width > 0.0 {
            ((value / width).max(0.0) as usize).min(last)
        } else {
            last
        };
        if let Some(count) = counts.get_mut(index) {
            *count += 1;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        let summary = Summary::of(&values);
        assert_eq!(
            (summary.p50, summary.p90, summary.p99, summary.max),
            (50.0, 90.0, 99.0, 100.0)
        );
        assert_eq!(summary.count, 100);
        assert!((summary.mean - 50.5).abs() < 1e-9);
        assert_eq!(Summary::of(&[]), Summary::default());
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
    }

    #[test]
    fn events_fall_into_their_second() {
        let series = per_second(&[0.1, 0.9, 1.5], &[(1.2, 30.0), (1.8, 10.0), (3.0, 5.0)]);
        assert_eq!(series.len(), 4);
        assert_eq!(series[0].submitted, 2);
        assert_eq!(series[1].submitted, 1);
        assert_eq!(series[1].finalized, 2);
        assert_eq!((series[1].latency_p50_ms, series[1].latency_p99_ms), (10.0, 30.0));
        assert_eq!(series[2].finalized, 0);
        assert_eq!(series[3].finalized, 1);
    }

    #[test]
    fn a_histogram_counts_everything_once() {
        let counts = histogram(&[0.0, 9.9, 10.0, 55.0, 1_000.0], 100.0, 10);
        assert_eq!(counts, vec![2, 1, 0, 0, 0, 1, 0, 0, 0, 1]);
    }
}
