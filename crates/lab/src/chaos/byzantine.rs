//! The byzantine fault: for a window, a node's process is replaced by the attacker
//! (`timecoin-attacker`), which signs with the node's own operator key and runs the seed's
//! behaviours against the other nodes, dialling them through the relay as the node's own
//! links do. When the window ends the attacker stops and the node starts again.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use anyhow::{Context, Result, anyhow};
use timecoin_attacker::{Attacker, Behaviour, Report};
use timecoin_chain::Genesis;
use timecoin_network::{Hello, PROTOCOL_VERSION};
use tokio_util::sync::CancellationToken;

/// A running attacker in a node's place.
pub(crate) struct Impostor {
    cancel: CancellationToken,
    thread: JoinHandle<Option<std::sync::Arc<Report>>>,
}

impl Impostor {
    /// Starts the attacker with the operator key in `node_dir`, against `targets`.
    pub(crate) fn start(
        node_dir: &Path,
        genesis: &Genesis,
        targets: Vec<SocketAddr>,
        behaviours: Vec<Behaviour>,
    ) -> Result<Impostor> {
        let operator = timecoin_node::keys::load(&node_dir.join("masternode.key"))?;
        let attacker = Attacker {
            hello: Hello {
                magic: genesis.params.magic,
                version: PROTOCOL_VERSION,
                genesis: genesis.hash(),
                best_height: 0,
                best_hash: genesis.hash(),
                listen_port: 0,
                masternode: false,
                lowest_height: 0,
            },
            operator: Some(operator),
            targets,
            max_frame: timecoin_node::daemon::max_frame(&genesis.params),
            poison: Vec::new(),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .context("starting the attacker's runtime")?;
        let cancel = CancellationToken::new();
        let stop = cancel.clone();
        let thread = std::thread::spawn(move || Some(runtime.block_on(attacker.run(&behaviours, stop))));
        Ok(Impostor { cancel, thread })
    }

    /// Stops the attacker; returns a line saying what it did.
    pub(crate) fn stop(self) -> Result<String> {
        self.cancel.cancel();
        let report = self
            .thread
            .join()
            .map_err(|_| anyhow!("the attacker's thread panicked"))?
            .ok_or_else(|| anyhow!("the attacker stopped early"))?;
        let get = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
        Ok(format!(
            "attacker stopped: {} connections, {} refused, {} messages sent, {} cut off",
            get(&report.connections),
            get(&report.refused),
            get(&report.sent),
            get(&report.cut_off)
        ))
    }
}
