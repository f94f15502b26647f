//! Finality proofs made by a running node and checked by `time-cli -offline` with only the
//! genesis file; and what a verifier refuses.

use timecoin_light::TxProof;
use timecoin_primitives::{Decode, Encode};

use super::*;

/// `time-cli -offline -genesisfile=… verifytxoutproof HEX`: the txids, or the error text.
fn verify_offline(genesis_file: &Path, proof: &str) -> Result<serde_json::Value, String> {
    let (ok, out, err) = time_cli(&[
        "-offline",
        &format!("-genesisfile={}", genesis_file.display()),
        "verifytxoutproof",
        proof,
    ]);
    if ok {
        Ok(serde_json::from_str(out.trim()).unwrap())
    } else {
        Err(err)
    }
}

/// Node 0 proves `txid` final; the proof carries a masternode set other than the
/// genesis's (the set changed before the block), verifies offline from the genesis file
/// alone and on another node; a stale set, a forged certificate and another network's
/// genesis are each refused.
pub(super) fn a_proof_verifies_offline_across_set_changes(net: &Localnet, txid: &str) {
    let genesis = net.genesis();
    let genesis_set = genesis.masternode_list().voting_set().clone();
    let genesis_file = net.path().join("genesis.toml");
    let proof = result(net.rpc(0, "gettxoutproof", serde_json::json!([[txid]])));
    let proof = proof.as_str().unwrap().to_owned();
    let decoded = TxProof::from_bytes(&hex::decode(&proof).unwrap()).unwrap();
    let carried: Vec<_> = decoded.headers.headers.iter().filter_map(|h| h.set.as_ref()).collect();
    assert!(
        carried.iter().any(|set| **set != genesis_set),
        "the proof carries no set change: {:?}",
        decoded
            .headers
            .headers
            .iter()
            .map(|h| h.header.height)
            .collect::<Vec<_>>()
    );

    assert_eq!(verify_offline(&genesis_file, &proof), Ok(serde_json::json!([txid])));
    assert_eq!(
        result(net.rpc(1, "verifytxoutproof", serde_json::json!([proof]))),
        serde_json::json!([txid])
    );

    // Without its set changes, the block names a set the genesis does not trust.
    let mut stale = decoded.clone();
    let mut last = stale.headers.headers.pop().unwrap();
    last.set = None;
    stale.headers.headers = vec![last];
    let refused = verify_offline(&genesis_file, &hex::encode(stale.to_bytes())).unwrap_err();
    assert!(refused.contains("names masternode set"), "{refused}");
    // A node holding the block checks only the branches against it: it knows the block
    // final. A transaction altered after proving is refused there too.
    assert_eq!(
        result(net.rpc(
            1,
            "verifytxoutproof",
            serde_json::json!([hex::encode(stale.to_bytes())])
        )),
        serde_json::json!([txid])
    );
    let mut altered = decoded.clone();
    altered.transactions[0].transaction.memo = b"altered".to_vec();
    let answer = net.rpc(
        1,
        "verifytxoutproof",
        serde_json::json!([hex::encode(altered.to_bytes())]),
    );
    assert_eq!(answer["error"]["code"], -5, "{answer}");

    // One signature of the block's certificate altered.
    let mut forged = decoded.clone();
    let last = forged.headers.headers.last_mut().unwrap();
    last.certificate.signatures[0].signature.0[5] ^= 1;
    let refused = verify_offline(&genesis_file, &hex::encode(forged.to_bytes())).unwrap_err();
    assert!(refused.contains("invalid signature"), "{refused}");

    // Another network's genesis (this one's, with another message).
    let other_file = net.path().join("other-genesis.toml");
    let text = std::fs::read_to_string(&genesis_file).unwrap();
    std::fs::write(&other_file, text.replace("timecoin localnet", "another localnet")).unwrap();
    let refused = verify_offline(&other_file, &proof).unwrap_err();
    assert!(refused.contains("is for the network of genesis"), "{refused}");
}
