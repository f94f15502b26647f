//! `timelab scaling-chart`: the chart in `docs/SCALING.md`, drawn from what the measurements
//! wrote — the simulator's CSV (`simulate --wan … --csv FILE`) and the `steady.json` of each
//! process run (`timelab chaos --steady …`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use serde_json::Value;

use crate::bench::chart::{Area, Canvas, Series, color};

/// What to draw from, and where.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Options {
    /// The simulator's CSV.
    #[arg(long)]
    sim: PathBuf,
    /// Directories of steady runs (each holding `steady.json`).
    #[arg(long, num_args = 1..)]
    steady: Vec<PathBuf>,
    /// The PNG to write.
    #[arg(long, default_value = "docs/scaling.png")]
    out: PathBuf,
}

/// One row of figures: validators, then the named columns.
fn sim_rows(path: &Path) -> Result<Vec<Vec<(String, f64)>>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines
        .next()
        .ok_or_else(|| anyhow!("{} is empty", path.display()))?
        .split(',')
        .collect();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            header
                .iter()
                .zip(line.split(','))
                .map(|(name, value)| Ok(((*name).to_owned(), value.trim().parse::<f64>()?)))
                .collect::<Result<Vec<_>>>()
        })
        .collect()
}

/// The number at `path` in a steady run's report.
fn number(report: &Value, path: &[&str]) -> Option<f64> {
    path.iter().try_fold(report, |v, key| v.get(key))?.as_f64()
}

fn column(row: &[(String, f64)], name: &str) -> f64 {
    row.iter().find(|(n, _)| n == name).map_or(0.0, |(_, v)| *v)
}

/// Draws the chart.
pub(crate) fn run(options: &Options) -> Result<()> {
    let sim = sim_rows(&options.sim)?;
    let mut steady: Vec<Value> = options
        .steady
        .iter()
        .map(|dir| {
            let path = dir.join("steady.json");
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            Ok(serde_json::from_str(&text)?)
        })
        .collect::<Result<_>>()?;
    steady.sort_by_key(|v| v.get("nodes").and_then(Value::as_u64).unwrap_or(0));
    let sim_series = |name: &str, scale: f64| -> Vec<(f64, f64)> {
        sim.iter()
            .map(|row| (column(row, "validators"), column(row, name) * scale))
            .collect()
    };
    let process_series = |pick: &dyn Fn(&Value) -> Option<f64>| -> Vec<(f64, f64)> {
        steady
            .iter()
            .filter_map(|v| Some((number(v, &["nodes"])?, pick(v)?)))
            .collect()
    };
    let mut canvas = Canvas::new(1_000, 800);
    canvas.lines(
        Area {
            x: 0,
            y: 0,
            width: 1_000,
            height: 400,
        },
        "Commit latency (s) by masternodes",
        "masternodes",
        &[
            Series {
                name: "simulated p50",
                color: color(0),
                points: sim_series("p50_ms", 1e-3),
            },
            Series {
                name: "simulated p99",
                color: color(1),
                points: sim_series("p99_ms", 1e-3),
            },
            Series {
                name: "processes p50",
                color: color(2),
                points: process_series(&|v| number(v, &["finality_p50_s"])),
            },
            Series {
                name: "processes p99",
                color: color(3),
                points: process_series(&|v| number(v, &["finality_p99_s"])),
            },
        ],
    )?;
    canvas.lines(
        Area {
            x: 0,
            y: 400,
            width: 1_000,
            height: 400,
        },
        "Messages received per node per height",
        "masternodes",
        &[
            Series {
                name: "simulated (consensus only)",
                color: color(0),
                points: sim_series("msgs_received_per_height_node", 1.0),
            },
            Series {
                name: "processes (all traffic)",
                color: color(2),
                points: process_series(&|v| number(v, &["mean", "received_messages_per_height"])),
            },
        ],
    )?;
    canvas.save(&options.out)?;
    println!("wrote {}", options.out.display());
    Ok(())
}
