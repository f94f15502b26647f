//! The node's side of the JSON-RPC API: chain queries from the store, transactions into the
//! mempool and out to peers.

use std::sync::{Arc, Mutex};

use timecoin_chain::Genesis;
use timecoin_mempool::{Mempool, MempoolError};
use timecoin_primitives::{Block, BlockHash, Transaction, TxId};
use timecoin_rpc::{Backend, ChainInfo, RpcError, codes};
use timecoin_storage::Store;
use tokio::sync::mpsc;

/// Serves the API from the node's store and mempool.
pub(crate) struct NodeBackend {
    pub(crate) store: Arc<Store>,
    pub(crate) genesis: Arc<Genesis>,
    pub(crate) mempool: Arc<Mutex<Mempool>>,
    /// Transactions admitted here, for the host to relay.
    pub(crate) relay: mpsc::Sender<Transaction>,
}

fn internal(error: impl std::fmt::Display) -> RpcError {
    RpcError::new(codes::INTERNAL_ERROR, error.to_string())
}

impl Backend for NodeBackend {
    fn chain_info(&self) -> Result<ChainInfo, RpcError> {
        let tip = self.store.tip().map_err(internal)?;
        let waiting = self
            .mempool
            .lock()
            .map_err(|_| internal("mempool lock poisoned"))?
            .len();
        Ok(ChainInfo {
            network: self.genesis.params.network,
            blocks: tip.height,
            best_block: tip.hash,
            time_ms: tip.timestamp_ms,
            genesis: self.genesis.hash(),
            mempool_transactions: waiting,
        })
    }

    fn block_hash(&self, height: u64) -> Result<Option<BlockHash>, RpcError> {
        Ok(self.store.block_by_height(height).map_err(internal)?.map(|b| b.hash()))
    }

    fn block(&self, hash: &BlockHash) -> Result<Option<(Block, u64)>, RpcError> {
        let block = self.store.block_by_hash(hash).map_err(internal)?;
        Ok(block.map(|b| {
            let height = b.header.height;
            (b, height)
        }))
    }

    fn submit_transaction(&self, tx: Transaction) -> Result<TxId, RpcError> {
        let txid = tx.txid();
        if self.store.tx_location(&txid).map_err(internal)?.is_some() {
            return Err(RpcError::new(
                codes::VERIFY_ALREADY_IN_CHAIN,
                "Transaction already in block chain",
            ));
        }
        let snapshot = self.store.snapshot().map_err(internal)?;
        let now = crate::host::now_ms();
        let result =
            self.mempool
                .lock()
                .map_err(|_| internal("mempool lock poisoned"))?
                .add(tx.clone(), &snapshot, now);
        match result {
            Ok(txid) => {
                // The host relays it; if its queue is full, peers still get it in a block.
                let _ = self.relay.try_send(tx);
                Ok(txid)
            }
            Err(MempoolError::AlreadyInPool(txid)) => Ok(txid),
            Err(error) => Err(RpcError::new(
                codes::VERIFY_REJECTED,
                format!("{}: {error}", error.code()),
            )),
        }
    }
}
