//! Golden vectors: an accidental change to an encoding or a hash fails here.

use timecoin_primitives::{
    Address, AddressPayload, Amount, Block, BlockHash, BlockHeader, Encode, Hash256, Network, OutPoint, Payload,
    Registration, SecretKey, Tier, Transaction, TxId, TxInput, TxOutput, payload_signature_message, signature_message,
    transactions_root,
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
        payload: None,
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
        merkle_root: transactions_root(std::slice::from_ref(&tx)),
        proposer: key(3).public_key(),
        masternode_set_hash: Hash256([0x33; 32]),
        state_hash: Hash256([0x44; 32]),
        last_commit_hash: Hash256([0x55; 32]),
        evidence_hash: Hash256([0x66; 32]),
    };
    let block = Block {
        header,
        transactions: vec![tx],
        last_commit: None,
        evidence: Vec::new(),
    };
    assert_eq!(block.hash().to_string(), GOLDEN_BLOCK_HASH);
}

#[test]
fn registration_vector() {
    let mut tx = sample_tx();
    tx.version = Transaction::VERSION_SPECIAL;
    tx.payload = Some(Payload::Register(Registration {
        tier: Tier::Bronze,
        collateral: OutPoint {
            txid: TxId::default(),
            index: 0,
        },
        collateral_key: key(2).public_key(),
        owner: key(4).public_key(),
        operator: key(5).public_key(),
        reward_address: AddressPayload::from_public_key(&key(6).public_key()),
        service: "192.0.2.7:24000".parse().unwrap(),
        operator_proof: Default::default(),
        signature: Default::default(),
    }));
    let genesis = BlockHash(Hash256([0x11; 32]));
    let txid = tx.txid();
    let message = payload_signature_message(&genesis, &txid);
    if let Some(Payload::Register(r)) = tx.payload.as_mut() {
        let proof = r.operator_proof_message(&genesis, txid);
        assert_eq!(proof.to_string(), GOLDEN_OPERATOR_PROOF_MESSAGE);
        r.operator_proof = key(5).sign(&proof.0);
        r.signature = key(2).sign(&message.0);
    }
    assert_eq!(tx.txid().to_string(), GOLDEN_REGISTRATION_TXID);
    assert_eq!(hex::encode(tx.to_bytes()), GOLDEN_REGISTRATION_HEX);
}

const GOLDEN_ADDRESS: &str = "time190a2vp0flspn8qkwntp7a5qv26aasjxq0ceffv9cwc685sq53hlq43hj35";
const GOLDEN_TX_HEX: &str = "010001abababababababababababababababababababababababababababababababab030000008a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c50b5eb92faf726da0fc28f3ffb5b51f04dd9e88ee0ffe1f548776dbe503ce95669cc852c037aebd3ba5b55342e8b89c6c4299f55e4a8d3f9a807b9a5069a040202807c814a000000000570dd7e06a454d6f0d8e8fa3d6b6335ad5c8bb6009a6393bd8147d62975f792b8820100000000002bfaa605e9fc033382ce9ac3eed00c56bbd848c07e3294b0b876347a40148dfe000000000000000006676f6c64656e";
const GOLDEN_TXID: &str = "c57c5a4f21166ab4b4dfe66e4ab56241d85390830648302acc731a6f7cf27a99";
const GOLDEN_WITNESS_HASH: &str = "3c699a6b942860fe82325e6166a812a9be7cb0887aa838e79cb45be77798283f";
const GOLDEN_BLOCK_HASH: &str = "93fde8609e59f5f49b279007215eb8205759ac1c8caeee082e62687d4f9ae4ca";
// The registration carries its operator key's proof since the proof of possession rule: its
// bytes gained the 64-byte proof before the payload signature; its txid, which leaves both
// out, did not change.
const GOLDEN_REGISTRATION_TXID: &str = "369f07b3a10b87c751247787d8164539e88e23854cd0f74d4a0182bfaf413c1b";
const GOLDEN_REGISTRATION_HEX: &str = "020001abababababababababababababababababababababababababababababababab030000008a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c50b5eb92faf726da0fc28f3ffb5b51f04dd9e88ee0ffe1f548776dbe503ce95669cc852c037aebd3ba5b55342e8b89c6c4299f55e4a8d3f9a807b9a5069a040202807c814a000000000570dd7e06a454d6f0d8e8fa3d6b6335ad5c8bb6009a6393bd8147d62975f792b8820100000000002bfaa605e9fc033382ce9ac3eed00c56bbd848c07e3294b0b876347a40148dfe000000000000000006676f6c64656e01010000000000000000000000000000000000000000000000000000000000000000000000008139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394ca93ac1705187071d67b83c7ff0efe8108e8ec4530575d7726879333dbdabe7c6e7a1cdd29b0b78fd13af4c5598feff4ef2a97166e3ca6f2e4fbfccd80505bf1b8c98e58ea6f878e847a4203bbeb41649828e0332e9a1742d96b41348cf5e6c804c0000207c05df693ec1362048ef8b4a206730735b300258cbe9de324b4c916340539cdc727836bc3070fba6c906b8255a5c9f3528c72b318560227aa69684c9b248d2894db07e61ec0b7c0614e8c2a7fd9e3b8c91cbdcf77fa3b3743cf19fa58a518d17247c042361f5865dbc0823948c62bd966a149c1424b8561f5768aa5ee77fccc08ba0f";
const GOLDEN_OPERATOR_PROOF_MESSAGE: &str = "38820a5b25897c7e232c16aaa8470e455c28761df8c5b2b64c8855a6aff7a23a";
