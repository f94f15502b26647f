//! `timed light`: a light client. It trusts only a genesis file, follows the finalized
//! headers of two or more nodes through their finality proofs (`getheaderproof`), checks
//! each proof itself (`timecoin-light`), cross-checks the nodes against each other, and
//! answers `getblockheader` and `verifytxoutproof` from what it verified
//! (`timecoin_rpc::light`).
//!
//! It follows the highest height two sources claim: far behind, it jumps there with one
//! skipping proof; then it takes each block, so that it holds every header since. A block is
//! trusted once two sources' proofs of it verify; two nodes proving different final blocks
//! at one height stop it with the evidence (`getlightinfo` shows it, the log says it).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use timecoin_chain::Genesis;
use timecoin_light::{Advance, Follower, HeaderProof, TrustedState};
use timecoin_primitives::Decode;
use timecoin_rpc::light::{LightState, SourceStatus, conflict_json, serve_light};
use timecoin_rpc::{Client, Credentials};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// Further behind than this, the client jumps ahead in one proof.
const SKIP_ABOVE: u64 = 100;
/// Sources whose proofs of a block must verify and agree before the block is trusted.
const AGREEING: usize = 2;

/// What `timed light` is told.
#[derive(Debug, Clone)]
pub struct LightOptions {
    /// The network's genesis file.
    pub genesis: PathBuf,
    /// The nodes to follow: `ADDRESS[,cookie=PATH][,user=USER,password=PASSWORD]`.
    pub nodes: Vec<String>,
    /// Where its API listens.
    pub listen: SocketAddr,
    /// Where its cookie is written (default: `light` in the network's default data
    /// directory).
    pub data_dir: Option<PathBuf>,
    /// How many recent verified headers it holds.
    pub keep: usize,
    /// How long it waits between polls when caught up.
    pub poll: Duration,
}

/// A node it follows.
struct Source {
    name: String,
    client: Client,
}

/// `ADDRESS[,cookie=PATH][,user=USER,password=PASSWORD]` as a client.
fn source(spec: &str) -> Result<Source> {
    let mut parts = spec.split(',');
    let address: SocketAddr = parts
        .next()
        .unwrap_or_default()
        .parse()
        .with_context(|| format!("--node {spec}: expected ADDRESS:PORT first"))?;
    let (mut cookie, mut user, mut password) = (None, None, None);
    for part in parts {
        match part.split_once('=') {
            Some(("cookie", path)) => cookie = Some(PathBuf::from(path)),
            Some(("user", value)) => user = Some(value.to_owned()),
            Some(("password", value)) => password = Some(value.to_owned()),
            _ => bail!("--node {spec}: {part:?} is not cookie=PATH, user=USER or password=PASSWORD"),
        }
    }
    let client = match (cookie, user, password) {
        (Some(path), None, None) => Client::with_cookie(address, &path)
            .with_context(|| format!("--node {spec}: reading the cookie {}", path.display()))?,
        (None, Some(user), Some(password)) => Client::new(address, &user, &password),
        _ => bail!("--node {spec}: give cookie=PATH, or user=USER and password=PASSWORD"),
    };
    Ok(Source {
        name: address.to_string(),
        client: client.timeout(Duration::from_secs(30)),
    })
}

fn lock(state: &Mutex<LightState>) -> std::sync::MutexGuard<'_, LightState> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs the light client until a signal stops it.
pub fn run(options: LightOptions) -> Result<()> {
    let text =
        std::fs::read_to_string(&options.genesis).with_context(|| format!("reading {}", options.genesis.display()))?;
    let genesis = Genesis::from_toml(&text).with_context(|| format!("genesis file {}", options.genesis.display()))?;
    if options.nodes.len() < 2 {
        bail!("give --node at least twice: a light client cross-checks what one node proves against another");
    }
    let sources = options
        .nodes
        .iter()
        .map(|spec| source(spec))
        .collect::<Result<Vec<_>>>()?;
    let mut names: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    if names.windows(2).any(|w| matches!(w, [a, b] if a == b)) {
        bail!("a --node address is given twice: each source must be another node, or the cross-check means nothing");
    }
    let data_dir = options
        .data_dir
        .clone()
        .unwrap_or_else(|| crate::daemon::default_data_dir(genesis.params.network).join("light"));
    std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let cookie_path = data_dir.join(".cookie");
    let cookie = timecoin_rpc::auth::random_password();
    timecoin_rpc::auth::write_cookie(&cookie_path, &cookie)
        .with_context(|| format!("writing {}", cookie_path.display()))?;
    let state = Arc::new(Mutex::new(LightState {
        follower: Follower::new(TrustedState::from_genesis(&genesis), options.keep, AGREEING),
        sources: sources
            .iter()
            .map(|s| SourceStatus {
                name: s.name.clone(),
                ..SourceStatus::default()
            })
            .collect(),
    }));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = runtime.block_on(async {
        let (address, server) = serve_light(
            options.listen,
            Arc::clone(&state),
            Credentials::new(Some(cookie), vec![]),
        )
        .await
        .with_context(|| format!("listening on {}", options.listen))?;
        info!(%address, cookie = %cookie_path.display(), network = %genesis.hash(), "light client API listening");
        let stop = CancellationToken::new();
        let following = {
            let (state, stop) = (Arc::clone(&state), stop.clone());
            tokio::task::spawn_blocking(move || follow(&state, &sources, &stop, options.poll))
        };
        let reason = wait_for_signal().await;
        info!(reason, "stopping");
        stop.cancel();
        if server.stop().is_ok() {
            server.stopped().await;
        }
        following.await.map_err(|e| anyhow!("the follower failed: {e}"))
    });
    let _ = std::fs::remove_file(&cookie_path);
    result
}

async fn wait_for_signal() -> &'static str {
    #[cfg(unix)]
    {
        if let Ok(mut terminate) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            return tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            };
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    "SIGINT"
}

/// Follows the sources until `stop`: steps while it advances, waits `poll` when it does not.
fn follow(state: &Mutex<LightState>, sources: &[Source], stop: &CancellationToken, poll: Duration) {
    while !stop.is_cancelled() {
        if !step(state, sources) {
            // Wakes early when stopped.
            let deadline = std::time::Instant::now() + poll;
            while !stop.is_cancelled() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50).min(poll));
            }
        }
    }
}

fn call(source: &Source, method: &str, params: Value) -> Result<Value, String> {
    source.client.call(method, params).map_err(|e| format!("{method}: {e}"))
}

/// One round: every source's height, then a proof of the next block from each source that
/// has it, verified and cross-checked. Returns whether the trusted height moved.
fn step(state: &Mutex<LightState>, sources: &[Source]) -> bool {
    let heights: Vec<Result<u64, String>> = sources
        .iter()
        .map(|source| {
            call(source, "getblockcount", json!([]))
                .and_then(|v| v.as_u64().ok_or_else(|| format!("getblockcount answered {v}")))
        })
        .collect();
    let trusted = {
        let mut state = lock(state);
        for (status, height) in state.sources.iter_mut().zip(&heights) {
            match height {
                Ok(height) => {
                    status.height = Some(*height);
                    status.error = None;
                }
                Err(e) => status.error = Some(e.clone()),
            }
        }
        if state.follower.conflict().is_some() {
            return false;
        }
        state.follower.trusted().clone()
    };
    // The highest height at least two sources claim: one source claiming more (a lie costs
    // nothing) neither drives nor stalls the client.
    let mut claimed: Vec<u64> = heights.iter().filter_map(|h| h.as_ref().ok()).copied().collect();
    claimed.sort_unstable_by(|a, b| b.cmp(a));
    let Some(best) = claimed.get(AGREEING - 1).copied() else {
        return false;
    };
    if best <= trusted.height {
        return false;
    }
    let next = if best - trusted.height > SKIP_ABOVE {
        best
    } else {
        trusted.height + 1
    };
    let mut proofs = Vec::new();
    let mut failures = Vec::new();
    for (source, height) in sources.iter().zip(&heights) {
        if !matches!(height, Ok(h) if *h >= next) {
            continue;
        }
        let proof = call(source, "getheaderproof", json!([next, trusted.height])).and_then(|v| {
            let text = v.as_str().ok_or_else(|| format!("getheaderproof answered {v}"))?;
            let bytes = hex::decode(text).map_err(|e| format!("getheaderproof: not hex: {e}"))?;
            HeaderProof::from_bytes(&bytes).map_err(|e| format!("getheaderproof: {e}"))
        });
        match proof {
            Ok(proof) => proofs.push((source.name.clone(), proof)),
            Err(e) => failures.push((source.name.clone(), e)),
        }
    }
    if proofs.is_empty() {
        record(state, failures);
        return false;
    }
    // Verification runs under the lock; the API waits for it (a few certificates a step).
    let outcome = lock(state).follower.advance(next, proofs, &mut rand::rng());
    match outcome {
        Advance::Trusted { height, refused } => {
            info!(height, "verified final block");
            failures.extend(
                refused
                    .into_iter()
                    .map(|(name, e)| (name, format!("its proof failed: {e}"))),
            );
            record(state, failures);
            true
        }
        Advance::Refused(refused) | Advance::Unconfirmed { refused, .. } => {
            failures.extend(
                refused
                    .into_iter()
                    .map(|(name, e)| (name, format!("its proof failed: {e}"))),
            );
            record(state, failures);
            false
        }
        Advance::Conflict(conflict) => {
            error!(
                height = conflict.height,
                first = %conflict.first.0,
                second = %conflict.second.0,
                evidence = %conflict_json(&conflict),
                "two final blocks at one height: following stopped"
            );
            false
        }
    }
}

/// Notes each source's failure in the state and the log.
fn record(state: &Mutex<LightState>, failures: Vec<(String, String)>) {
    let mut state = lock(state);
    for (name, error) in failures {
        warn!(source = %name, %error, "source failed");
        if let Some(status) = state.sources.iter_mut().find(|s| s.name == name) {
            status.error = Some(error);
        }
    }
}
