//! The node's side of the JSON-RPC API: chain queries from the store, transactions into the
//! mempool and out to peers.

use std::sync::{Arc, Mutex};

use timecoin_chain::Genesis;
use timecoin_mempool::{Mempool, MempoolError};
use timecoin_network::NetworkHandle;
use timecoin_primitives::{Block, BlockHash, CommitCertificate, Transaction, TxId};
use timecoin_rpc::{Backend, ChainInfo, MempoolInfo, PeerSummary, RpcError, codes};
use timecoin_storage::Store;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Serves the API from the node's store and mempool.
pub(crate) struct NodeBackend {
    pub(crate) store: Arc<Store>,
    pub(crate) genesis: Arc<Genesis>,
    pub(crate) mempool: Arc<Mutex<Mempool>>,
    /// Transactions admitted here, for the host to relay.
    pub(crate) relay: mpsc::Sender<Transaction>,
    pub(crate) network: NetworkHandle,
    /// The runtime, to reach the network service from the blocking threads methods run on.
    pub(crate) runtime: tokio::runtime::Handle,
    /// Cancelled by `stop`.
    pub(crate) shutdown: CancellationToken,
}

fn internal(error: impl std::fmt::Display) -> RpcError {
    RpcError::new(codes::INTERNAL_ERROR, error.to_string())
}

impl NodeBackend {
    fn mempool(&self) -> Result<std::sync::MutexGuard<'_, Mempool>, RpcError> {
        self.mempool.lock().map_err(|_| internal("mempool lock poisoned"))
    }
}

impl Backend for NodeBackend {
    fn certificate(&self, height: u64) -> Result<Option<CommitCertificate>, RpcError> {
        self.store.certificate(height).map_err(internal)
    }

    fn mempool_txids(&self) -> Result<Vec<TxId>, RpcError> {
        Ok(self.mempool()?.txids())
    }

    fn mempool_info(&self) -> Result<MempoolInfo, RpcError> {
        let mut mempool = self.mempool()?;
        Ok(MempoolInfo {
            size: mempool.len(),
            bytes: mempool.total_size(),
            usage: mempool.usage(),
            max_usage: mempool.config().max_bytes,
            min_fee_rate: mempool.min_fee_rate(crate::host::now_ms()).0,
        })
    }

    fn peers(&self) -> Result<Vec<PeerSummary>, RpcError> {
        // Methods run on blocking threads, where waiting on the runtime is allowed.
        let peers = self.runtime.block_on(self.network.peers());
        Ok(peers
            .into_iter()
            .map(|p| PeerSummary {
                id: p.peer.to_string(),
                address: p.address,
                inbound: !p.outbound,
                starting_height: p.hello.best_height,
                masternode: p.hello.masternode,
            })
            .collect())
    }

    fn stop(&self) {
        self.shutdown.cancel();
    }

    fn chain_info(&self) -> Result<ChainInfo, RpcError> {
        let tip = self.store.tip().map_err(internal)?;
        let waiting = self.mempool()?.len();
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
        let result = self.mempool()?.add(tx.clone(), &snapshot, now);
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
