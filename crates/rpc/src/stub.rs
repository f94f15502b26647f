//! A backend over fixed data, for tests and fuzzing (feature `test-stub`): a chain of
//! known block hashes, some blocks, certificates and unspent outputs, a mempool whose
//! admission is decided by a [`Judge`], no peers, no masternodes and no wallet.
//!
//! It changes nothing after it is built: submitted transactions are judged and forgotten.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use timecoin_primitives::{Block, BlockHash, CommitCertificate, OutPoint, Transaction, TxId, TxOutput};

use crate::backend::{ChainBackend, MempoolBackend, NetworkBackend, Pending, WalletBackend};
use crate::codes;
use crate::dto::{
    ChainInfo, ConsensusStatus, MasternodeSummary, MempoolEntry, MempoolInfo, PeerSummary, TxOutInfo, UtxoSetSummary,
};
use crate::error::RpcError;

/// Whether the mempool would admit a transaction: its size and fee in units, or the reason
/// code it is refused with.
pub type Judge = Box<dyn Fn(&Transaction) -> Result<(usize, u64), String> + Send + Sync>;

/// A backend answering from the data in its fields.
pub struct StubBackend {
    /// The chain's state, as `getblockchaininfo` reports it.
    pub chain: ChainInfo,
    /// The hash of each block, by height.
    pub hashes: Vec<BlockHash>,
    /// The blocks whose contents are known (any of the chain's).
    pub blocks: Vec<Block>,
    /// Commit certificates, by height.
    pub certificates: BTreeMap<u64, CommitCertificate>,
    /// The unspent outputs.
    pub utxos: HashMap<OutPoint, TxOutInfo>,
    /// The txids in the mempool.
    pub mempool: Vec<TxId>,
    /// The mempool's state.
    pub mempool_info: MempoolInfo,
    /// Judges `testmempoolaccept` and `sendrawtransaction`.
    pub judge: Judge,
    /// How many times `stop` was called (shared, so that a test keeps a handle).
    pub stops: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl StubBackend {
    /// A backend reporting `chain` and knowing nothing else: no blocks or outputs, an empty
    /// mempool that refuses every transaction as spending missing inputs.
    pub fn new(chain: ChainInfo) -> StubBackend {
        StubBackend {
            chain,
            hashes: Vec::new(),
            blocks: Vec::new(),
            certificates: BTreeMap::new(),
            utxos: HashMap::new(),
            mempool: Vec::new(),
            mempool_info: MempoolInfo {
                size: 0,
                bytes: 0,
                usage: 0,
                max_usage: 300 << 20,
                min_fee_rate: 1_000,
            },
            judge: Box::new(|_| Err("bad-txns-inputs-missingorspent".to_owned())),
            stops: std::sync::Arc::default(),
        }
    }

    /// The known transaction `txid` and the height of its block.
    fn find_transaction(&self, txid: &TxId) -> Option<(&Transaction, u64)> {
        self.blocks.iter().find_map(|block| {
            block
                .transactions
                .iter()
                .find(|tx| tx.txid() == *txid)
                .map(|tx| (tx, block.header.height))
        })
    }
}

impl ChainBackend for StubBackend {
    fn chain_info(&self) -> Result<ChainInfo, RpcError> {
        Ok(self.chain.clone())
    }
    fn block_hash(&self, height: u64) -> Result<Option<BlockHash>, RpcError> {
        Ok(usize::try_from(height)
            .ok()
            .and_then(|index| self.hashes.get(index))
            .copied())
    }
    fn block(&self, hash: &BlockHash) -> Result<Option<(Block, u64)>, RpcError> {
        Ok(self
            .blocks
            .iter()
            .find(|block| block.hash() == *hash)
            .map(|block| (block.clone(), block.header.height)))
    }
    fn certificate(&self, height: u64) -> Result<Option<CommitCertificate>, RpcError> {
        Ok(self.certificates.get(&height).cloned())
    }
    /// The stub keeps no undo data.
    fn spent_coins(&self, _height: u64) -> Result<Option<Vec<TxOutput>>, RpcError> {
        Ok(None)
    }
    fn transaction(&self, txid: &TxId) -> Result<Option<(Transaction, Option<u64>)>, RpcError> {
        Ok(self
            .find_transaction(txid)
            .map(|(tx, height)| (tx.clone(), Some(height))))
    }
    fn wait_for_transaction(&self, txid: &TxId, _timeout: Duration) -> Result<Option<u64>, RpcError> {
        Ok(self.find_transaction(txid).map(|(_, height)| height))
    }
    fn txout(&self, outpoint: &OutPoint, _include_mempool: bool) -> Result<Option<TxOutInfo>, RpcError> {
        Ok(self.utxos.get(outpoint).cloned())
    }
    fn utxo_set(&self) -> Result<UtxoSetSummary, RpcError> {
        Err(RpcError::new(
            codes::INTERNAL_ERROR,
            "the test backend keeps no UTXO set commitment",
        ))
    }
    fn masternodes(&self) -> Result<Vec<MasternodeSummary>, RpcError> {
        Ok(Vec::new())
    }
    fn own_masternode(&self) -> Option<String> {
        None
    }
    fn consensus(&self) -> ConsensusStatus {
        ConsensusStatus::default()
    }
}

impl MempoolBackend for StubBackend {
    fn mempool_txids(&self) -> Result<Vec<TxId>, RpcError> {
        Ok(self.mempool.clone())
    }
    fn mempool_info(&self) -> Result<MempoolInfo, RpcError> {
        Ok(self.mempool_info.clone())
    }
    fn mempool_entry(&self, _txid: &TxId) -> Result<Option<MempoolEntry>, RpcError> {
        Ok(None)
    }
    fn test_accept(&self, tx: &Transaction) -> Result<Result<(usize, u64), String>, RpcError> {
        Ok((self.judge)(tx))
    }
    fn submit_transaction(&self, tx: Transaction) -> Pending<TxId> {
        let verdict = match (self.judge)(&tx) {
            Ok(_) => Ok(tx.txid()),
            Err(reason) => Err(RpcError::new(codes::VERIFY_REJECTED, reason)),
        };
        Box::pin(std::future::ready(verdict))
    }
}

impl NetworkBackend for StubBackend {
    fn peers(&self) -> Result<Vec<PeerSummary>, RpcError> {
        Ok(Vec::new())
    }
    fn add_node(&self, _address: SocketAddr) {}
    fn ban(&self, _target: &str, _seconds: u64) -> Result<(), RpcError> {
        Ok(())
    }
    fn unban(&self, _target: &str) -> Result<bool, RpcError> {
        Ok(false)
    }
    fn bans(&self) -> Vec<(String, u64)> {
        Vec::new()
    }
    fn stop(&self) {
        self.stops.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// No wallet: every wallet method answers so.
impl WalletBackend for StubBackend {}
