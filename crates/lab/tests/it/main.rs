//! Runs the `timelab` binary, which starts `timed` processes (built beside it by
//! `cargo test --workspace`).

use std::path::Path;
use std::process::Command;

use timecoin_test_utils::free_ports;

/// `timelab`, starting the `timed` built beside it.
fn timelab() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_timelab"));
    let timed = Path::new(env!("CARGO_BIN_EXE_timelab")).with_file_name("timed");
    assert!(
        timed.exists(),
        "{} is missing: run the tests with `cargo test --workspace`, which builds it",
        timed.display()
    );
    command.env("TIMED", timed);
    command
}

/// `timelab bench` on a small load: every payment it submits is finalized and accounted for in
/// the report, the wiped node replays them, and the chart is a PNG of the documented size.
#[test]
fn the_benchmark_finalizes_and_accounts_for_every_payment_it_submits() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bench");
    let base = free_ports(8);
    let output = timelab()
        .args([
            "bench",
            "--nodes",
            "4",
            "--rate",
            "400",
            "--duration",
            "5",
            "--batch",
            "50",
        ])
        .args(["--base-port", &base.to_string(), "--dir", out.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{text}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let number = |path: &str| report.pointer(path).and_then(serde_json::Value::as_f64).unwrap_or(-1.0);
    for field in ["/submitted", "/accepted", "/finalized", "/latency_ms/count"] {
        assert_eq!(number(field), 2_000.0, "{field} in {report:#}");
    }
    assert_eq!(number("/not_finalized"), 0.0);
    assert!(number("/latency_ms/p50") > 0.0 && number("/latency_ms/p50") <= number("/latency_ms/max"));
    assert!(number("/finalized_tx_per_second") > 0.0);
    assert!(number("/signature_verification/batched_all_cores") > number("/signature_verification/single_one_core"));
    let seconds = report["per_second"].as_array().unwrap();
    let total = |field: &str| seconds.iter().map(|s| s[field].as_u64().unwrap()).sum::<u64>();
    assert_eq!((total("submitted"), total("finalized")), (2_000, 2_000));
    let nodes = report["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 4);
    assert!(
        nodes.iter().all(|n| n["peak_rss_bytes"].as_u64().unwrap() > 0),
        "{report:#}"
    );
    // The wiped node replayed the payments and the fan-out that funded them.
    assert!(number("/catch_up/transactions") > 2_000.0, "{report:#}");
    let chart = std::fs::read(out.join("chart.png")).unwrap();
    assert_eq!(&chart[..8], b"\x89PNG\r\n\x1a\n");
    let dimension = |at: usize| u32::from_be_bytes(chart[at..at + 4].try_into().unwrap());
    assert_eq!((dimension(16), dimension(20)), (1_000, 1_050));

    // A directory the benchmark did not write is never cleared.
    let foreign = dir.path().join("mine");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("keep.txt"), "data").unwrap();
    let output = timelab()
        .args(["bench", "--duration", "1", "--dir", foreign.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && err.contains("was not written by `timelab bench`"),
        "{err}"
    );
    assert!(foreign.join("keep.txt").exists());
}
