//! Stopping a chaos run on SIGINT or SIGTERM: a flag the run's loops and sleeps check, so
//! that the runner still stops its nodes and removes its namespaces on the way out.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Set when the runner gets SIGINT or SIGTERM: the run stops at once, and stops its nodes and
/// removes its namespaces on the way out.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

pub(crate) fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// Sleeps until `until`, or fails when the runner is interrupted.
pub(crate) fn sleep_until(until: Instant) -> Result<()> {
    loop {
        if interrupted() {
            bail!("interrupted");
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// Sets [`INTERRUPTED`] on SIGINT or SIGTERM, from a thread of its own.
pub(crate) fn watch() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal watcher")?;
    let (mut interrupt, mut terminate) = runtime.block_on(async {
        Ok::<_, std::io::Error>((signal(SignalKind::interrupt())?, signal(SignalKind::terminate())?))
    })?;
    std::thread::spawn(move || {
        runtime.block_on(async {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        });
        println!("interrupted: stopping the nodes and removing the namespaces…");
        INTERRUPTED.store(true, Ordering::Relaxed);
    });
    Ok(())
}
