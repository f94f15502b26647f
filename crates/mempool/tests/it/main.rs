//! Integration tests of the mempool.

mod admission;
mod collateral;
mod limits;
mod template;

use timecoin_chain::Utxo;
use timecoin_mempool::{Mempool, MempoolConfig};
use timecoin_primitives::{Amount, OutPoint, Transaction, TxOutput};
use timecoin_test_utils::ChainBuilder;

/// The clock the tests run at.
pub const NOW: u64 = 1_800_000_000_000;

/// An empty pool at the builder's tip.
pub fn pool(chain: &ChainBuilder, config: MempoolConfig) -> Mempool {
    Mempool::new(chain.params().clone(), chain.genesis_hash(), config, chain.tip.height)
}

/// A transaction spending `inputs` into `outputs` equal outputs back to the first input's
/// owner, paying exactly `fee` units.
pub fn tx_with_fee(chain: &ChainBuilder, inputs: &[(OutPoint, Utxo)], outputs: usize, fee: u64) -> Transaction {
    let total: u64 = inputs.iter().map(|(_, u)| u.output.amount.units()).sum();
    let each = (total - fee) / outputs as u64;
    let mut outs: Vec<TxOutput> = (0..outputs)
        .map(|_| TxOutput {
            amount: Amount::from_units(each),
            address: inputs[0].1.output.address,
        })
        .collect();
    outs[0].amount = Amount::from_units(total - fee - each * (outputs as u64 - 1));
    chain.spend(inputs, outs)
}

/// Output `index` of a pooled (unconfirmed) transaction, as a child would spend it.
pub fn output_of(tx: &Transaction, index: u32) -> (OutPoint, Utxo) {
    (
        OutPoint { txid: tx.txid(), index },
        Utxo {
            output: tx.outputs[index as usize],
            height: 1,
            is_reward: false,
        },
    )
}
