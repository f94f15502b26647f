//! What the fuzz targets (in `fuzz/`, run with cargo-fuzz) check, and what CI replays their
//! corpora through: each function takes the bytes an attacker controls — a peer's frame or
//! message, a transaction or block, an RPC request body, a damaged database value — and
//! panics only when the code under test misbehaves: a panic inside it, or an accepted
//! encoding that does not round-trip (`encode(decode(b)) == b`).
//!
//! The chain state the checks run against is a small real chain built once
//! ([`timecoin_test_utils::ChainBuilder`]), and the RPC checks call the real methods over it.

use std::sync::{Arc, LazyLock};

use timecoin_chain::{MasternodeList, check_block, check_transaction, check_tx_stateless};
use timecoin_network::{FrameAssembler, Message};
use timecoin_primitives::{Block, Decode, Encode, Transaction};
use timecoin_rpc::stub::StubBackend;
use timecoin_rpc::{ChainInfo, Dispatcher, TxOutInfo};
use timecoin_test_utils::ChainBuilder;

/// A check: panics when the code under test mishandles the input.
pub type Check = fn(&[u8]);

/// The fuzz targets, by name: each is a directory of `fuzz/corpus` and `fuzz/regressions`.
pub const TARGETS: [(&str, Check); 6] = [
    ("transaction", transaction),
    ("block", block),
    ("message", message),
    ("frame", frame),
    ("masternode_list", masternode_list),
    ("rpc_request", rpc_request),
];

/// A chain of a few blocks of payments, built once, with its blocks.
struct Fixture {
    chain: ChainBuilder,
    blocks: Vec<Block>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
        let mut chain = ChainBuilder::new(20);
        let mut blocks = vec![chain.genesis.block.clone()];
        for _ in 0..3 {
            blocks.push(chain.next_payment_block(3));
        }
        Fixture { chain, blocks }
    });
    &FIXTURE
}

fn chain() -> &'static ChainBuilder {
    &fixture().chain
}

/// Asserts that `value` encodes back to exactly `data`.
fn round_trips<T: Encode>(value: &T, data: &[u8]) {
    assert_eq!(
        value.encoded_len(),
        data.len(),
        "encoded length differs from the input's"
    );
    assert!(value.to_bytes() == data, "an accepted encoding does not round-trip");
}

/// A transaction as a peer or `sendrawtransaction` delivers it: decoded, then judged by
/// every chain rule against the fixture chain.
pub fn transaction(data: &[u8]) {
    let Ok(tx) = Transaction::from_bytes(data) else { return };
    round_trips(&tx, data);
    let chain = chain();
    let _ = check_tx_stateless(&tx, data.len(), chain.params());
    let _ = check_transaction(&tx, &chain.view(), &chain.tx_context());
}

/// A block as sync delivers it: decoded, then checked on top of the fixture chain.
pub fn block(data: &[u8]) {
    let Ok(block) = Block::from_bytes(data) else { return };
    round_trips(&block, data);
    let chain = chain();
    let _ = block.hash();
    let _ = check_block(
        &block,
        &chain.view(),
        &chain.block_context(chain.tip.timestamp_ms + 60_000),
    );
}

/// A peer message (one frame's content).
pub fn message(data: &[u8]) {
    let Ok(message) = Message::from_bytes(data) else { return };
    round_trips(&message, data);
    let _ = message.class();
}

/// Noise plaintexts carrying one frame: the input is a sequence of chunks, each a length
/// byte and that many bytes; the assembler (limit 4,096 bytes) must refuse or complete the
/// frame without ever holding more than the limit, and a completed frame is a message.
pub fn frame(data: &[u8]) {
    const LIMIT: usize = 4_096;
    let mut assembler = FrameAssembler::new(LIMIT);
    let mut rest = data;
    while let Some((&len, tail)) = rest.split_first() {
        let (chunk, after) = tail.split_at(usize::from(len).min(tail.len()));
        rest = after;
        match assembler.push(chunk) {
            Ok(None) => continue,
            Ok(Some(frame)) => {
                assert!(frame.len() <= LIMIT, "a frame over the limit was assembled");
                message(&frame);
                return;
            }
            Err(_) => return,
        }
    }
}

/// The masternode list as the store keeps it, from a damaged or hostile database: decoded,
/// then moved past the fixture chain's next block.
pub fn masternode_list(data: &[u8]) {
    let Ok(list) = MasternodeList::from_bytes(data) else {
        return;
    };
    round_trips(&list, data);
    let chain = chain();
    let mut next = list.clone();
    next.apply_block(&chain.build_block(Vec::new()), chain.params());
    let _ = next.hash();
}

/// An RPC request body, after authentication: normalized and dispatched to the real methods
/// over the fixture chain. An answer must be JSON.
pub fn rpc_request(data: &[u8]) {
    static RUNTIME: LazyLock<Option<tokio::runtime::Runtime>> =
        LazyLock::new(|| tokio::runtime::Builder::new_current_thread().enable_all().build().ok());
    static DISPATCHER: LazyLock<Option<Dispatcher>> =
        LazyLock::new(|| Dispatcher::new(Arc::new(rpc_backend(fixture()))).ok());
    let (Some(runtime), Some(dispatcher)) = (RUNTIME.as_ref(), DISPATCHER.as_ref()) else {
        panic!("the RPC fixture could not be built");
    };
    if let Some(answer) = runtime.block_on(dispatcher.call(data)) {
        assert!(
            serde_json::from_str::<serde_json::Value>(&answer).is_ok(),
            "the answer is not JSON: {answer}"
        );
    }
}

/// The fixture chain as the RPC methods see it: its blocks, certificates and unspent
/// outputs, and a mempool that admits nothing (each transaction is judged by the chain
/// rules and refused or reported valid).
fn rpc_backend(fixture: &'static Fixture) -> StubBackend {
    let chain = &fixture.chain;
    let mut backend = StubBackend::new(ChainInfo {
        network: chain.params().network,
        blocks: chain.tip.height,
        best_block: chain.tip.hash,
        time_ms: chain.tip.timestamp_ms,
        genesis: chain.genesis_hash(),
        mempool_transactions: 0,
    });
    backend.hashes = fixture.blocks.iter().map(Block::hash).collect();
    backend.blocks = fixture.blocks.clone();
    backend.certificates = fixture
        .blocks
        .iter()
        .filter(|block| block.header.height > 0)
        .map(|block| (block.header.height, chain.certify(block)))
        .collect();
    backend.utxos = chain
        .utxos
        .iter()
        .map(|(outpoint, utxo)| {
            let info = TxOutInfo {
                value: utxo.output.amount.units(),
                address: utxo.output.address,
                height: Some(utxo.height),
                reward: utxo.is_reward,
            };
            (*outpoint, info)
        })
        .collect();
    backend.mempool_info.min_fee_rate = chain.params().min_fee_rate.0;
    backend.judge = Box::new(|tx| {
        check_transaction(tx, &chain.view(), &chain.tx_context())
            .map(|checked| (checked.size, checked.fee.units()))
            .map_err(|error| error.code().to_owned())
    });
    backend
}

/// Seed inputs for every target, made from real objects of the fixture chain.
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let chain = chain();
    let mut seeds = Vec::new();
    let mut builder = chain.clone();
    let payment = builder.payments(1).remove(0);
    seeds.push(("transaction", payment.to_bytes()));
    let registration = builder.registration(
        timecoin_primitives::Tier::Bronze,
        &timecoin_test_utils::key("operator", 0),
        std::net::SocketAddr::from(([127, 0, 0, 1], 24_200)),
    );
    seeds.push(("transaction", registration.to_bytes()));
    let block = builder.build_block(vec![payment.clone()]);
    seeds.push(("block", block.to_bytes()));
    for message in [
        Message::Ping(7),
        Message::Transactions(vec![payment.clone()]),
        Message::Inventory(vec![payment.txid()]),
        Message::GetBlocks { from: 1, count: 10 },
        Message::Peers(vec![
            "127.0.0.1:24200".parse().unwrap_or_else(|_| unreachable_address()),
        ]),
        Message::Blocks(vec![(block.clone(), chain.certify(&block))]),
    ] {
        let bytes = message.to_bytes();
        let mut framed = Vec::new();
        let mut plaintext = u32::try_from(bytes.len()).unwrap_or(0).to_le_bytes().to_vec();
        plaintext.extend_from_slice(&bytes);
        for chunk in plaintext.chunks(200) {
            framed.push(u8::try_from(chunk.len()).unwrap_or(0));
            framed.extend_from_slice(chunk);
        }
        seeds.push(("frame", framed));
        seeds.push(("message", bytes));
    }
    builder.apply(&builder.build_block(vec![registration]));
    seeds.push(("masternode_list", builder.list.to_bytes()));
    let hash = chain.tip.hash.to_string();
    for body in [
        r#"{"jsonrpc":"2.0","id":1,"method":"getblockchaininfo","params":[]}"#.to_owned(),
        format!(r#"{{"id":2,"method":"getblock","params":["{hash}",2]}}"#),
        r#"{"jsonrpc":"2.0","id":3,"method":"getblockhash","params":[1]}"#.to_owned(),
        format!(
            r#"{{"jsonrpc":"2.0","id":4,"method":"sendrawtransaction","params":["{}"]}}"#,
            payment_hex(&payment)
        ),
        r#"{"jsonrpc":"2.0","id":5,"method":"gettxout","params":["00",0]}"#.to_owned(),
        r#"{"jsonrpc":"2.0","id":6,"method":"masternoderegister","params":["bronze","ab","1.2.3.4:5"]}"#.to_owned(),
    ] {
        seeds.push(("rpc_request", body.into_bytes()));
    }
    seeds
}

fn payment_hex(tx: &Transaction) -> String {
    tx.to_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

fn unreachable_address() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 1))
}
