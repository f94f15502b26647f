//! What masternode transactions claim (a masternode, an operator key, a collateral output,
//! a service address): two pooled transactions may not claim the same, since no block could
//! hold both.

use timecoin_primitives::{OutPoint, Transaction, TxId};

/// What a masternode transaction claims: two pool transactions may not claim the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Claim {
    Masternode(TxId),
    Operator(timecoin_primitives::PublicKey),
    Collateral(OutPoint),
    Service(std::net::SocketAddr),
}

pub(super) fn claims(tx: &Transaction, txid: TxId) -> Vec<Claim> {
    use timecoin_primitives::Payload;
    match &tx.payload {
        None => Vec::new(),
        Some(Payload::Register(r)) => vec![
            Claim::Operator(r.operator),
            Claim::Collateral(r.collateral_outpoint(txid)),
            Claim::Service(r.service),
        ],
        Some(Payload::Update(u)) => vec![
            Claim::Masternode(u.masternode),
            Claim::Operator(u.operator),
            Claim::Service(u.service),
        ],
        Some(Payload::Revoke(r)) => vec![Claim::Masternode(r.masternode)],
        Some(Payload::Unlock(u)) => vec![Claim::Masternode(u.masternode)],
    }
}
