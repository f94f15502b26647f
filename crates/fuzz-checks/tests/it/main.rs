//! Every fuzz target's corpus (`fuzz/corpus/TARGET`) and kept crash inputs
//! (`fuzz/regressions/TARGET`), and freshly made seeds, replayed through the same checks
//! the fuzzers ran.

use std::path::PathBuf;

use timecoin_primitives::Decode;

fn inputs(kind: &str, target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz")
        .join(kind)
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    entries
        .map(|entry| {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect()
}

#[test]
fn every_corpus_and_regression_input_passes_its_check() {
    let mut replayed = 0;
    for (target, check) in timecoin_fuzz_checks::TARGETS {
        let corpus = inputs("corpus", target);
        assert!(!corpus.is_empty(), "fuzz/corpus/{target} is empty");
        for (path, bytes) in corpus.into_iter().chain(inputs("regressions", target)) {
            let outcome = std::panic::catch_unwind(|| check(&bytes));
            assert!(outcome.is_ok(), "{target}: {} fails its check", path.display());
            replayed += 1;
        }
    }
    eprintln!("replayed {replayed} inputs");
}

#[test]
fn seeds_are_accepted_where_they_should_be() {
    // The seeds are real objects: each decodes (a check that returned early on a decode
    // error would make the fuzzers start from nothing).
    for (target, bytes) in timecoin_fuzz_checks::seeds() {
        let decoded = match target {
            "transaction" => timecoin_primitives::Transaction::from_bytes(&bytes).is_ok(),
            "block" => timecoin_primitives::Block::from_bytes(&bytes).is_ok(),
            "message" => timecoin_network::Message::from_bytes(&bytes).is_ok(),
            "masternode_list" => timecoin_chain::MasternodeList::from_bytes(&bytes).is_ok(),
            _ => true,
        };
        assert!(decoded, "a {target} seed does not decode");
    }
}
