//! What a chaos seed leaves behind: its `report.json` and its `heights.png` chart.

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use super::observe::Observed;
use super::schedule::Event;
use super::seed::WARM_UP;
use crate::bench::chart::{self, Area, Canvas, Series};

/// One seed's outcome, as written to its `report.json`.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) seed: u64,
    pub(crate) nodes: usize,
    pub(crate) rate: u64,
    pub(crate) schedule: Vec<String>,
    pub(crate) timeline: Vec<(f64, String)>,
    pub(crate) submitted: u64,
    pub(crate) accepted: u64,
    /// Transactions the nodes' APIs reported in blocks.
    pub(crate) reported_in_blocks: usize,
    /// Each node's height at the end.
    pub(crate) heights: Vec<u64>,
    /// Seconds from the last heal until every node had the new common height.
    pub(crate) recovery_s: Option<f64>,
    pub(crate) violations: Vec<String>,
}

/// A node's heights as points to draw: the first and last answer at each height (the
/// observers ask ten times a second, mostly between blocks, and the answers in between lie on
/// the line joining those two), and a wiped node's fall to its new height, drawn vertical at
/// its first answer after the wipe.
fn steps(heights: &[(f64, u64)]) -> Vec<(f64, f64)> {
    let mut points = Vec::new();
    let mut last: Option<u64> = None;
    for (i, &(t, h)) in heights.iter().enumerate() {
        let next = heights.get(i + 1).map(|&(_, h)| h);
        if last == Some(h) && next == Some(h) {
            continue;
        }
        if let Some(previous) = last
            && h < previous
        {
            points.push((t, previous as f64));
        }
        points.push((t, h as f64));
        last = Some(h);
    }
    points
}

/// `heights.png`: each node's height over time, and below it when each node was under a
/// fault (a raised line per node).
pub(crate) fn draw_heights(path: &Path, observed: &Observed, report: &Report, events: &[Event]) -> Result<()> {
    let names: Vec<String> = (0..report.nodes).map(|k| format!("node{k}")).collect();
    let mut canvas = Canvas::new(1_000, 700);
    let series: Vec<Series<'_>> = observed
        .heights
        .iter()
        .enumerate()
        .map(|(k, points)| Series {
            name: names.get(k).map_or("", String::as_str),
            color: chart::color(k),
            points: steps(points),
        })
        .collect();
    canvas.lines(
        Area {
            x: 0,
            y: 0,
            width: 1_000,
            height: 400,
        },
        &format!("Height per node, seed {}", report.seed),
        "seconds since the load started",
        &series,
    )?;
    // The chaos starts after the warm-up; the observers' clock starts with the load.
    let offset = WARM_UP.as_secs_f64();
    let end = observed
        .heights
        .iter()
        .flat_map(|p| p.last().map(|(t, _)| *t))
        .fold(0.0_f64, f64::max);
    let faults: Vec<Series<'_>> = (0..report.nodes)
        .map(|k| {
            let base = k as f64;
            let mut points = vec![(0.0, base)];
            let mut spans: Vec<(f64, f64)> = events
                .iter()
                .filter(|e| e.fault.nodes().contains(&k))
                .map(|e| (offset + e.start_ms as f64 / 1e3, offset + e.end_ms() as f64 / 1e3))
                .collect();
            spans.sort_by(|a, b| a.0.total_cmp(&b.0));
            for (from, to) in spans {
                points.extend([(from, base), (from, base + 0.7), (to, base + 0.7), (to, base)]);
            }
            points.push((end, base));
            Series {
                name: names.get(k).map_or("", String::as_str),
                color: chart::color(k),
                points,
            }
        })
        .collect();
    canvas.lines(
        Area {
            x: 0,
            y: 400,
            width: 1_000,
            height: 300,
        },
        "Faults (a node's line is raised while it is under one)",
        "seconds since the load started",
        &faults,
    )?;
    canvas.save(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};

    #[test]
    fn a_height_line_keeps_the_ends_of_each_height_and_drops_a_wipe_vertically() {
        let answers = [
            (0.0, 1),
            (0.1, 1),
            (0.2, 1),
            (0.3, 2),
            (0.4, 0),
            (0.5, 0),
            (0.6, 0),
            (0.7, 0),
        ];
        assert_eq!(
            steps(&answers),
            vec![(0.0, 1.0), (0.2, 1.0), (0.3, 2.0), (0.4, 2.0), (0.4, 0.0), (0.7, 0.0)]
        );
        assert!(steps(&[]).is_empty());
    }

    #[test]
    fn the_heights_chart_is_a_png_of_its_size() {
        let nodes = 4u32;
        let heights = (0..nodes)
            .map(|k| {
                (0..600u32)
                    .map(|i| (f64::from(i) / 10.0, u64::from(i / 5 + k)))
                    .collect()
            })
            .collect();
        let observed = Observed {
            heights,
            hashes: BTreeMap::new(),
            commitments: BTreeMap::new(),
            transactions: HashMap::new(),
            violations: Vec::new(),
        };
        let report = Report {
            seed: 1,
            nodes: 4,
            rate: 100,
            schedule: Vec::new(),
            timeline: Vec::new(),
            submitted: 0,
            accepted: 0,
            reported_in_blocks: 0,
            heights: vec![120; 4],
            recovery_s: Some(1.0),
            violations: Vec::new(),
        };
        let events = super::super::schedule::plan(1, nodes as usize, super::super::schedule::KINDS.len());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("heights.png");
        draw_heights(&path, &observed, &report, &events).unwrap();
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let reader = decoder.read_info().unwrap();
        assert_eq!((reader.info().width, reader.info().height), (1_000, 700));
    }
}
