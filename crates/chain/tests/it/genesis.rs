use timecoin_chain::{Genesis, GenesisError};
use timecoin_primitives::{Amount, Network, Tier};
use timecoin_test_utils::genesis_toml;

fn coin(n: u64) -> Amount {
    Amount::from_time(n).unwrap()
}

#[test]
fn same_file_same_hash_and_any_change_changes_it() {
    let text = genesis_toml(4, Tier::Bronze, 3, coin(10));
    let a = Genesis::from_toml(&text).unwrap();
    let b = Genesis::from_toml(&text).unwrap();
    assert_eq!(a.hash(), b.hash());
    assert_eq!(a.block, b.block);
    assert_eq!(a.allocated(), coin(30));
    assert_eq!(a.params.network, Network::Local);

    let variants = [
        genesis_toml(4, Tier::Bronze, 3, coin(11)),
        genesis_toml(4, Tier::Silver, 3, coin(10)),
        genesis_toml(5, Tier::Bronze, 3, coin(10)),
        genesis_toml(4, Tier::Bronze, 2, coin(10)),
        text.replace("1790000000000", "1790000000001"),
        text.replace("test network", "test network!"),
    ];
    for v in variants {
        assert_ne!(Genesis::from_toml(&v).unwrap().hash(), a.hash());
    }
}

#[test]
fn masternode_order_in_the_file_does_not_matter() {
    let text = genesis_toml(3, Tier::Gold, 0, coin(1));
    let blocks: Vec<&str> = text.split("\n[[masternode]]").collect();
    let mut reordered = blocks[0].to_owned();
    for b in blocks[1..].iter().rev() {
        reordered.push_str("\n[[masternode]]");
        reordered.push_str(b);
    }
    assert_ne!(reordered, text);
    assert_eq!(
        Genesis::from_toml(&reordered).unwrap().hash(),
        Genesis::from_toml(&text).unwrap().hash()
    );
}

#[test]
fn bad_files_get_clear_errors() {
    let good = genesis_toml(3, Tier::Bronze, 1, coin(5));
    let unknown_key = good.replace("message =", "mesage =");
    let err = Genesis::from_toml(&unknown_key).unwrap_err();
    assert!(
        matches!(err, GenesisError::Toml(ref toml) if toml.to_string().contains("mesage")),
        "{err}"
    );
    // The toml crate's error (which names the key and the line) is the source, not repeated
    // in the message.
    let source = std::error::Error::source(&err).and_then(|s| s.downcast_ref::<toml::de::Error>());
    assert!(
        source.is_some_and(|toml| toml.to_string().contains("mesage")),
        "{source:?}"
    );
    assert!(!err.to_string().contains("mesage"), "{err}");

    let wrong_net = good.replace("network = \"local\"", "network = \"testnet\"");
    assert!(matches!(
        Genesis::from_toml(&wrong_net),
        Err(GenesisError::Address { .. })
    ));

    let bad_amount = good.replace("amount = \"5\"", "amount = \"5.000000001\"");
    assert!(matches!(
        Genesis::from_toml(&bad_amount),
        Err(GenesisError::Amount { index: 0, .. })
    ));
    let zero = good.replace("amount = \"5\"", "amount = \"0\"");
    assert!(matches!(
        Genesis::from_toml(&zero),
        Err(GenesisError::Amount { index: 0, .. })
    ));

    // A public network needs three voting masternodes; a local one (`timed --dev`) one.
    let mut too_few = String::from("network = \"testnet\"\ntimestamp_ms = 1\nmessage = \"m\"\n");
    for seed in 1..=2u8 {
        let key = timecoin_primitives::SecretKey::from_seed([seed; 32]).public_key();
        let reward = timecoin_primitives::Address::from_public_key(Network::Testnet, &key);
        too_few.push_str(&format!(
            "[[masternode]]\noperator_key = \"{key}\"\ntier = \"bronze\"\nreward_address = \"{reward}\"\n"
        ));
    }
    assert_eq!(
        Genesis::from_toml(&too_few),
        Err(GenesisError::TooFewMasternodes { found: 2, needed: 3 })
    );
    assert!(Genesis::from_toml(&genesis_toml(1, Tier::Bronze, 1, coin(5))).is_ok());
    let free = genesis_toml(3, Tier::Free, 1, coin(5));
    assert_eq!(
        Genesis::from_toml(&free),
        Err(GenesisError::TooFewMasternodes { found: 0, needed: 1 })
    );

    let first = good.find("[[masternode]]").unwrap();
    let dup = format!(
        "{good}\n{}",
        &good[first..good[first + 1..].find("[[masternode]]").unwrap() + first + 1]
    );
    assert!(
        matches!(Genesis::from_toml(&dup), Err(GenesisError::Masternode { .. })),
        "{dup}"
    );

    let bad_key = good.replacen("operator_key = \"", "operator_key = \"zz", 1);
    assert!(matches!(
        Genesis::from_toml(&bad_key),
        Err(GenesisError::Masternode { index: 0, .. })
    ));

    let long = good.replace("test network", &"x".repeat(300));
    assert!(matches!(
        Genesis::from_toml(&long),
        Err(GenesisError::MessageTooLong(300))
    ));
    assert!(matches!(
        Genesis::from_toml("network = \"moon\"\ntimestamp_ms = 1"),
        Err(GenesisError::Network(_))
    ));
}
