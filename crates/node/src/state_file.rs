//! Joining by chain state: `dumptxoutset` writes the UTXO set and masternode list at the tip
//! with the finality proof of the next block (whose header names the state's hash), and
//! `timed load-state` makes a new node's store from such a file, trusting only the genesis:
//! the proof verifies from the genesis set (`timecoin-light`), the next header extends the
//! file's tip block and names exactly the loaded state, and the tip's certificate verifies
//! under the set the loaded list says signed it. The node then follows the chain from there.

use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use timecoin_chain::Genesis;
use timecoin_light::{ChainSource, HeaderProof, TrustedState, prove_header, verify_headers};
use timecoin_primitives::{BlockHeader, CommitCertificate, Decode, Encode, MasternodeSet};
use timecoin_storage::{LoadedState, StateFileInfo, StorageError, Store};

use crate::daemon::{Overrides, load_setup};

/// How long `dumptxoutset` waits for the block after the dumped one to be final.
pub(crate) const NEXT_BLOCK_WAIT: Duration = Duration::from_secs(300);

/// The store as a proof's source.
pub(crate) struct StoreSource<'a>(pub(crate) &'a Store);

impl ChainSource for StoreSource<'_> {
    type Error = StorageError;
    fn set_changes(&self, after: u64, upto: u64) -> Result<Vec<(u64, MasternodeSet)>, StorageError> {
        self.0.voting_set_changes(after, upto)
    }
    fn certified_header(&self, height: u64) -> Result<(BlockHeader, CommitCertificate), StorageError> {
        let missing = || StorageError::Refused(format!("block {height} is not final here"));
        let header = self.0.header(height)?.ok_or_else(missing)?;
        let certificate = self.0.certificate(height)?.ok_or_else(missing)?;
        Ok((header, certificate))
    }
}

/// Writes the chain state at the tip to `path` (which must not exist), then, once the next
/// block is final (waiting with `wait_for_height`, at most [`NEXT_BLOCK_WAIT`]), its proof.
pub(crate) fn dump(
    store: &Store,
    genesis: &Genesis,
    path: &Path,
    wait_for_height: impl FnOnce(u64, Duration) -> bool,
) -> Result<StateFileInfo> {
    if path.exists() {
        bail!("{} already exists; move it out of the way first", path.display());
    }
    let partial = path.with_extension("incomplete");
    // Another dump's file, or one a crash left: not this call's to remove.
    let file = std::fs::File::create_new(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let written = (|| -> Result<StateFileInfo> {
        let mut out = BufWriter::new(file);
        let info = store.dump_chain_state(&mut out)?;
        let next = info.tip.height + 1;
        if !wait_for_height(next, NEXT_BLOCK_WAIT) {
            bail!(
                "block {next} was not final within {} s; its certificate is what proves the dumped state",
                NEXT_BLOCK_WAIT.as_secs()
            );
        }
        let proof = prove_header(&StoreSource(store), &TrustedState::from_genesis(genesis), next)
            .map_err(|e| anyhow::anyhow!("proving block {next}: {e}"))?;
        timecoin_storage::Store::finish_state_file(&mut out, &proof.to_bytes())?;
        out.flush().context("writing the chain state")?;
        out.get_ref().sync_all().context("writing the chain state")?;
        Ok(info)
    })();
    match written {
        Ok(info) => {
            std::fs::rename(&partial, path).with_context(|| format!("renaming to {}", path.display()))?;
            Ok(info)
        }
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            Err(error)
        }
    }
}

/// Checks a loaded state against its trailer, the proof of the next block, from `genesis`.
fn check(genesis: &Genesis, loaded: &LoadedState<'_>) -> Result<(), String> {
    let proof = HeaderProof::from_bytes(loaded.trailer).map_err(|e| format!("the proof does not decode: {e}"))?;
    let trusted = verify_headers(&TrustedState::from_genesis(genesis), &proof, &mut rand::rng())
        .map_err(|e| format!("the proof does not verify: {e}"))?;
    let next = proof.target().map(|t| t.header).ok_or("the proof is empty")?;
    let tip = &loaded.block.header;
    if !loaded.block.matches_header() {
        return Err(format!(
            "the tip block's body is not the one its header {} names",
            loaded.block.hash()
        ));
    }
    if Some(trusted.height) != tip.height.checked_add(1) || next.prev_hash != loaded.block.hash() {
        return Err(format!(
            "the proof is of block {} extending {}, not of the block after the file's tip {} at {}",
            trusted.height,
            next.prev_hash,
            loaded.block.hash(),
            tip.height
        ));
    }
    if next.state_hash != loaded.state_hash {
        return Err(format!(
            "the final block {} names state {}, but the file holds state {}",
            trusted.height, next.state_hash, loaded.state_hash
        ));
    }
    loaded
        .certificate
        .verify(
            &genesis.hash(),
            tip.height,
            &loaded.block.hash(),
            loaded.list.signers(),
            rand::rng(),
        )
        .map_err(|e| format!("the tip's certificate does not verify: {e}"))
}

/// `timed load-state FILE`: makes the node's store from a chain-state file.
pub fn load(overrides: &Overrides, file: &Path) -> Result<()> {
    let (_, data_dir, genesis) = load_setup(overrides)?;
    std::fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let started = Instant::now();
    let input = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let store_path: PathBuf = data_dir.join("chain.redb");
    let (store, info) = Store::create_from_chain_state(&store_path, &genesis, &mut BufReader::new(input), |loaded| {
        check(&genesis, loaded)
    })
    .with_context(|| format!("loading {}", file.display()))?;
    drop(store);
    println!(
        "loaded the chain state at block {} ({}): {} coins, commitment {}, proven final from the genesis, in {:.1} s; start the node to follow the chain from there",
        info.tip.height,
        info.tip.hash,
        info.coins,
        info.commitment,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
