//! Golden vectors: an accidental change to an encoding or a hash fails here.

use timecoin_primitives::{
    Address, AddressPayload, Amount, Block, BlockHash, BlockHeader, Encode, Hash256, Network, OutPoint, SecretKey,
    Transaction, TxId, TxInput, TxOutput, merkle_root, signature_message,
};

fn key(n: u8) -> SecretKey {
    SecretKey::from_seed([n; 32])
}

fn sample_tx() -> Transaction {
    let owner = key(1);
    let mut tx = Transaction {
        version: 1,
        inputs: vec![TxInput {
            prevout: OutPoint {
                txid: TxId(Hash256([0xab; 32])),
                index: 3,
            },
            public_key: owner.public_key(),
            signature: Default::default(),
        }],
        outputs: vec![
            TxOutput {
                amount: "12.5".parse().unwrap_or_default(),
                address: AddressPayload::from_public_key(&key(2).public_key()),
            },
            TxOutput {
                amount: Amount::from_units(99_000),
                address: AddressPayload::from_public_key(&owner.public_key()),
            },
        ],
        lock_time: 0,
        memo: b"golden".to_vec(),
    };
    let message = signature_message(
        &BlockHash(Hash256([0x11; 32])),
        &tx.txid(),
        &[Amount::from_units(1_300_000_000)],
    );
    tx.inputs[0].signature = owner.sign(&message.0);
    tx
}

#[test]
fn address_vector() {
    let address = Address::from_public_key(Network::Mainnet, &key(1).public_key());
    assert_eq!(address.to_string(), GOLDEN_ADDRESS);
}

#[test]
fn transaction_vectors() {
    let tx = sample_tx();
    assert_eq!(hex::encode(tx.to_bytes()), GOLDEN_TX_HEX);
    assert_eq!(tx.txid().to_string(), GOLDEN_TXID);
    assert_eq!(tx.witness_hash().to_string(), GOLDEN_WITNESS_HASH);
}

#[test]
fn block_vector() {
    let tx = sample_tx();
    let header = BlockHeader {
        version: 1,
        height: 7,
        prev_hash: BlockHash(Hash256([0x22; 32])),
        timestamp_ms: 1_790_000_000_000,
        merkle_root: merkle_root(&[tx.txid()]),
        proposer: key(3).public_key(),
        masternode_set_hash: Hash256([0x33; 32]),
    };
    let block = Block {
        header,
        transactions: vec![tx],
    };
    assert_eq!(block.hash().to_string(), GOLDEN_BLOCK_HASH);
}

const GOLDEN_ADDRESS: &str = "time190a2vp0flspn8qkwntp7a5qv26aasjxq0ceffv9cwc685sq53hlq43hj35";
const GOLDEN_TX_HEX: &str = "010001abababababababababababababababababababababababababababababababab030000008a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c50b5eb92faf726da0fc28f3ffb5b51f04dd9e88ee0ffe1f548776dbe503ce95669cc852c037aebd3ba5b55342e8b89c6c4299f55e4a8d3f9a807b9a5069a040202807c814a000000000570dd7e06a454d6f0d8e8fa3d6b6335ad5c8bb6009a6393bd8147d62975f792b8820100000000002bfaa605e9fc033382ce9ac3eed00c56bbd848c07e3294b0b876347a40148dfe000000000000000006676f6c64656e";
const GOLDEN_TXID: &str = "c57c5a4f21166ab4b4dfe66e4ab56241d85390830648302acc731a6f7cf27a99";
const GOLDEN_WITNESS_HASH: &str = "3c699a6b942860fe82325e6166a812a9be7cb0887aa838e79cb45be77798283f";
const GOLDEN_BLOCK_HASH: &str = "4ef3db4438edd52fd9bdf7eda854d4f48d7b7f1b411274d8480c61a802250e14";
