//! The RPC methods' view of the fixture chain: its blocks, certificates, UTXO set and a
//! mempool that admits nothing (each transaction is judged by the chain rules and refused
//! or reported valid).

use std::net::SocketAddr;

use timecoin_chain::check_transaction;
use timecoin_primitives::{Block, BlockHash, CommitCertificate, OutPoint, Transaction, TxId};
use timecoin_rpc::{
    Backend, ChainInfo, ConsensusStatus, MasternodeSummary, MempoolEntry, MempoolInfo, PeerSummary, Pending, RpcError,
    TxOutInfo, UtxoSetSummary, codes,
};
use timecoin_test_utils::ChainBuilder;

pub(crate) struct ChainBackend {
    chain: ChainBuilder,
    blocks: Vec<Block>,
}

impl ChainBackend {
    pub(crate) fn new(chain: ChainBuilder, blocks: Vec<Block>) -> ChainBackend {
        ChainBackend { chain, blocks }
    }

    fn tip(&self) -> u64 {
        self.chain.tip.height
    }
}

impl Backend for ChainBackend {
    fn txout(&self, outpoint: &OutPoint, _include_mempool: bool) -> Result<Option<TxOutInfo>, RpcError> {
        Ok(self.chain.utxos.get(outpoint).map(|utxo| TxOutInfo {
            value: utxo.output.amount.units(),
            address: utxo.output.address,
            height: Some(utxo.height),
            reward: utxo.is_reward,
        }))
    }
    fn utxo_set(&self) -> Result<UtxoSetSummary, RpcError> {
        Err(RpcError::new(codes::INTERNAL_ERROR, "the fixture keeps no commitment"))
    }
    fn transaction(&self, txid: &TxId) -> Result<Option<(Transaction, Option<u64>)>, RpcError> {
        Ok(self.blocks.iter().find_map(|block| {
            block
                .transactions
                .iter()
                .find(|tx| tx.txid() == *txid)
                .map(|tx| (tx.clone(), Some(block.header.height)))
        }))
    }
    fn mempool_entry(&self, _txid: &TxId) -> Result<Option<MempoolEntry>, RpcError> {
        Ok(None)
    }
    fn add_node(&self, _address: SocketAddr) {}
    fn wait_for_transaction(&self, _txid: &TxId, _timeout: std::time::Duration) -> Result<Option<u64>, RpcError> {
        Ok(None)
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
    fn test_accept(&self, tx: &Transaction) -> Result<Result<(usize, u64), String>, RpcError> {
        Ok(check_transaction(tx, &self.chain.view(), &self.chain.tx_context())
            .map(|checked| (checked.size, checked.fee.units()))
            .map_err(|e| e.code().to_owned()))
    }
    fn ban(&self, _target: &str, _seconds: u64) -> Result<(), RpcError> {
        Ok(())
    }
    fn unban(&self, _target: &str) -> Result<bool, RpcError> {
        Ok(false)
    }
    fn bans(&self) -> Vec<(String, u64)> {
        Vec::new()
    }
    fn certificate(&self, height: u64) -> Result<Option<CommitCertificate>, RpcError> {
        Ok(self
            .blocks
            .get(usize::try_from(height).unwrap_or(usize::MAX))
            .filter(|_| height > 0)
            .map(|block| self.chain.certify(block)))
    }
    fn mempool_txids(&self) -> Result<Vec<TxId>, RpcError> {
        Ok(Vec::new())
    }
    fn mempool_info(&self) -> Result<MempoolInfo, RpcError> {
        Ok(MempoolInfo {
            size: 0,
            bytes: 0,
            usage: 0,
            max_usage: 300 << 20,
            min_fee_rate: self.chain.params().min_fee_rate.0,
        })
    }
    fn peers(&self) -> Result<Vec<PeerSummary>, RpcError> {
        Ok(Vec::new())
    }
    fn stop(&self) {}
    fn chain_info(&self) -> Result<ChainInfo, RpcError> {
        Ok(ChainInfo {
            network: self.chain.params().network,
            blocks: self.tip(),
            best_block: self.chain.tip.hash,
            time_ms: self.chain.tip.timestamp_ms,
            genesis: self.chain.genesis_hash(),
            mempool_transactions: 0,
        })
    }
    fn block_hash(&self, height: u64) -> Result<Option<BlockHash>, RpcError> {
        Ok(self
            .blocks
            .get(usize::try_from(height).unwrap_or(usize::MAX))
            .map(Block::hash))
    }
    fn block(&self, hash: &BlockHash) -> Result<Option<(Block, u64)>, RpcError> {
        Ok(self
            .blocks
            .iter()
            .find(|b| b.hash() == *hash)
            .map(|b| (b.clone(), self.tip())))
    }
    fn submit_transaction(&self, tx: Transaction) -> Pending<TxId> {
        let verdict = match check_transaction(&tx, &self.chain.view(), &self.chain.tx_context()) {
            Ok(checked) => Ok(checked.txid),
            Err(e) => Err(RpcError::new(codes::VERIFY_REJECTED, e.code())),
        };
        Box::pin(std::future::ready(verdict))
    }
}
