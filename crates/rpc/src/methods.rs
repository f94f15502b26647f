//! The API's methods in one table ([`METHODS`]: names, parameters and help text), and
//! their implementations, one module per help category (`CATEGORIES`). The server answers
//! `help` from the table and checks at start that it serves exactly these methods (and a
//! test, that each module serves exactly its category's); clients (`time-cli`) use it to
//! turn command-line words into typed parameters and named parameters into positions.

mod address;
mod blockchain;
mod blockstats;
mod control;
mod masternode;
mod mempool;
mod network;
mod rawtransactions;
mod subscriptions;
mod util;
mod wallet;
mod wallet_history;
mod zmq;

use std::sync::Arc;
use std::time::Instant;

use jsonrpsee::core::RegisterMethodError;
use jsonrpsee::server::RpcModule;
use serde_json::Value;

use crate::backend::Backend;

/// How a parameter is written on a command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Sent as a JSON string whatever it looks like (hashes, hex, addresses).
    Text,
    /// Parsed as JSON (numbers, booleans, arrays, objects).
    Json,
}

/// One parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    /// Its name (for `-named` and help).
    pub name: &'static str,
    /// How it is written.
    pub kind: Kind,
    /// Whether it may be left out.
    pub optional: bool,
}

/// One method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Method {
    /// Its name.
    pub name: &'static str,
    /// The help category.
    pub category: &'static str,
    /// Its parameters, in order.
    pub params: &'static [Param],
    /// What it does and returns.
    pub help: &'static str,
}

const fn text(name: &'static str) -> Param {
    Param {
        name,
        kind: Kind::Text,
        optional: false,
    }
}

const fn json(name: &'static str) -> Param {
    Param {
        name,
        kind: Kind::Json,
        optional: false,
    }
}

const fn optional(param: Param) -> Param {
    Param {
        optional: true,
        ..param
    }
}

/// Every method the server serves.
pub const METHODS: &[Method] = &[
    Method {
        name: "getblockchaininfo",
        category: "Blockchain",
        params: &[],
        help: "The chain's state: chain, blocks, bestblockhash, time, mediantime, genesis, mempool.",
    },
    Method {
        name: "getblockcount",
        category: "Blockchain",
        params: &[],
        help: "The height of the last finalized block.",
    },
    Method {
        name: "getbestblockhash",
        category: "Blockchain",
        params: &[],
        help: "The hash of the last finalized block.",
    },
    Method {
        name: "getblockhash",
        category: "Blockchain",
        params: &[json("height")],
        help: "The hash of the block at a height.",
    },
    Method {
        name: "getblock",
        category: "Blockchain",
        params: &[text("blockhash"), optional(json("verbosity"))],
        help: "A block: hex (verbosity 0), an object with txids (1, the default) or with decoded transactions (2).",
    },
    Method {
        name: "getblockheader",
        category: "Blockchain",
        params: &[text("blockhash"), optional(json("verbose"))],
        help: "A block header as an object (verbose, the default) or hex.",
    },
    Method {
        name: "getblockstats",
        category: "Blockchain",
        params: &[json("hash_or_height"), optional(json("stats"))],
        help: "Bitcoin Core's statistics of a block (a height, or a hash as a JSON string), optionally only those named in stats: fees, fee rates and sizes of its transactions but the reward, in units and bytes.",
    },
    Method {
        name: "getcommit",
        category: "Blockchain",
        params: &[json("height")],
        help: "The commit certificate that finalized the block at a height: round, block hash and the precommit signatures.",
    },
    Method {
        name: "gettxout",
        category: "Blockchain",
        params: &[text("txid"), json("n"), optional(json("include_mempool"))],
        help: "An unspent output: bestblock, confirmations, value, address, coinbase; null if spent or unknown. With include_mempool (the default) waiting transactions count.",
    },
    Method {
        name: "gettxoutsetinfo",
        category: "Blockchain",
        params: &[],
        help: "The UTXO set: height, bestblock, txouts, total_amount and hash_serialized (its incremental commitment).",
    },
    Method {
        name: "getconsensusinfo",
        category: "Blockchain",
        params: &[],
        help: "The consensus engine's height, round and step, whether the node is syncing, the masternode set with voting power, the quorum and the last commit.",
    },
    Method {
        name: "waitfortransaction",
        category: "Blockchain",
        params: &[text("txid"), optional(json("timeout"))],
        help: "Waits up to timeout seconds (60 by default, at most 3600) for a transaction to be finalized: {txid, finalized, height}.",
    },
    Method {
        name: "getrawtransaction",
        category: "Rawtransactions",
        params: &[text("txid"), optional(json("verbose"))],
        help: "A transaction from the chain or the mempool: hex, or an object with blockhash and confirmations when verbose.",
    },
    Method {
        name: "sendrawtransaction",
        category: "Rawtransactions",
        params: &[text("hexstring")],
        help: "Submits a signed transaction (hex) to the mempool and relays it; returns its txid.",
    },
    Method {
        name: "decoderawtransaction",
        category: "Rawtransactions",
        params: &[text("hexstring")],
        help: "Decodes a transaction (hex) without looking at the chain.",
    },
    Method {
        name: "testmempoolaccept",
        category: "Rawtransactions",
        params: &[json("rawtxs")],
        help: "Whether the mempool would admit each transaction (a JSON array of hex, at most 25, each judged alone): [{txid, allowed, vsize, fees.base | reject-reason}].",
    },
    Method {
        name: "signrawtransactionwithkey",
        category: "Rawtransactions",
        params: &[
            text("hexstring"),
            json("privkeys"),
            optional(json("prevtxs")),
            optional(text("sighashtype")),
        ],
        help: "Signs the inputs whose coins the given keys (64 hex characters each) own: {hex, complete, errors}. prevtxs ([{txid, vout, address, amount}]) describes coins this node does not hold; time-cli -offline -genesis=HASH signs from them with no node.",
    },
    Method {
        name: "getrawmempool",
        category: "Mempool",
        params: &[],
        help: "The txids waiting in the mempool.",
    },
    Method {
        name: "getmempoolinfo",
        category: "Mempool",
        params: &[],
        help: "The mempool's size, bytes, memory usage, limits and minimum fee rate.",
    },
    Method {
        name: "getmempoolentry",
        category: "Mempool",
        params: &[text("txid")],
        help: "A waiting transaction: vsize, fees.base, time, ancestorcount, descendantcount.",
    },
    Method {
        name: "getnetworkinfo",
        category: "Network",
        params: &[],
        help: "The node's version, protocol version and connection counts.",
    },
    Method {
        name: "addnode",
        category: "Network",
        params: &[text("node"), text("command")],
        help: "Adds a peer address (IP:port) to the address book and dials it when a slot is free; command is add or onetry.",
    },
    Method {
        name: "getconnectioncount",
        category: "Network",
        params: &[],
        help: "The number of connected peers.",
    },
    Method {
        name: "getpeerinfo",
        category: "Network",
        params: &[],
        help: "One object per connected peer: id (its identity key), addr, inbound, startingheight, masternode.",
    },
    Method {
        name: "setban",
        category: "Network",
        params: &[text("target"), text("command"), optional(json("bantime"))],
        help: "Bans (command add, for bantime seconds, a day by default) or unbans (remove) a peer identity (64 hex) or address (IP:port); a banned peer is disconnected.",
    },
    Method {
        name: "listbanned",
        category: "Network",
        params: &[],
        help: "The bans in force: [{address (identity or IP:port), ban_remaining (seconds)}].",
    },
    Method {
        name: "masternodelist",
        category: "Masternode",
        params: &[],
        help: "The on-chain masternode list at the tip: for each masternode its id (registration txid), operator and owner keys, tier, status (pending, active, pose-banned, banned, revoked), voting power, collateral, reward and P2P addresses, registration height, last paid height, proof-of-service penalty, ban end, and whether this node is connected to it.",
    },
    Method {
        name: "masternodestatus",
        category: "Masternode",
        params: &[],
        help: "This node's masternode (found by its operator key) with the fields of masternodelist, or status \"not registered\".",
    },
    Method {
        name: "masternoderegister",
        category: "Masternode",
        params: &[
            text("tier"),
            text("operatorkey"),
            text("address"),
            optional(text("rewardaddress")),
        ],
        help: "Registers a masternode from the wallet: pays the tier's exact collateral (bronze 1000, silver 10000, gold 100000 TIME) to a new wallet address inside the registration itself, with new wallet keys as collateral and owner keys. operatorkey is this node's operator key (its masternodestatus): the registration carries the key's proof of possession, so it is made on the masternode's own node. address is its P2P IP:port. Returns the masternode id (the registration txid). It votes a fixed number of blocks after its block.",
    },
    Method {
        name: "masternodeupdate",
        category: "Masternode",
        params: &[
            text("id"),
            optional(text("operatorkey")),
            optional(text("address")),
            optional(text("rewardaddress")),
        ],
        help: "Changes a masternode's operator key, P2P address or reward address (unchanged when left out), signed by the owner key in this wallet; a new operator key must be this node's (it signs its proof of possession). Also re-announces a masternode excluded for missed service once its penalty has decayed to 0, or one revoked or whose ban ended. Returns the txid.",
    },
    Method {
        name: "masternoderevoke",
        category: "Masternode",
        params: &[optional(text("id"))],
        help: "Revokes this node's masternode (id defaults to it): signed by this node's operator key, paid from this wallet. It stops voting; its owner may re-announce it with masternodeupdate. Returns the txid.",
    },
    Method {
        name: "masternodeunlock",
        category: "Masternode",
        params: &[text("id"), optional(text("address"))],
        help: "Deregisters a masternode by spending its collateral (held by this wallet) to address, or to a new wallet address, less the fee. Only once it stopped voting (revoked, excluded or banned) a whole evidence window before, so evidence of its last votes can still ban it; refused while it serves, before then, and during a double-signing ban. Returns the txid.",
    },
    Method {
        name: "listlockedcollaterals",
        category: "Masternode",
        params: &[],
        help: "The wallet's coins locked as masternode collateral: outpoint, amount, masternode id, its status and ban end.",
    },
    Method {
        name: "validateaddress",
        category: "Util",
        params: &[text("address")],
        help: "Whether a string is a valid address of this node's network.",
    },
    Method {
        name: "verifymessage",
        category: "Util",
        params: &[text("address"), text("signature"), text("message")],
        help: "Whether signature (base64, as signmessage gives it: the public key, then the Ed25519 signature) shows that the holder of address signed message. -5 an invalid address, -3 malformed base64.",
    },
    Method {
        name: "estimatesmartfee",
        category: "Util",
        params: &[json("conf_target")],
        help: "{feerate (TIME per 1,000 bytes), blocks}: the rate a new transaction needs to be in one of the next conf_target blocks (1 to 1,008) as the mempool stands now: just above the lowest fee rate those blocks would take when more waits than they hold, else the lowest rate the mempool admits. It reads the pool's state, not a history of blocks, so it does not foresee transactions still to come.",
    },
    Method {
        name: "getnewaddress",
        category: "Wallet",
        params: &[],
        help: "A new receiving address of the wallet (works while locked, from the key pool).",
    },
    Method {
        name: "getrawchangeaddress",
        category: "Wallet",
        params: &[],
        help: "A new change address of the wallet.",
    },
    Method {
        name: "getbalance",
        category: "Wallet",
        params: &[],
        help: "The wallet's spendable balance: finalized coins not being spent.",
    },
    Method {
        name: "getbalances",
        category: "Wallet",
        params: &[],
        help: "The wallet's balances: mine.trusted (spendable), mine.untrusted_pending (waiting in the mempool), mine.locked (masternode collateral).",
    },
    Method {
        name: "listunspent",
        category: "Wallet",
        params: &[],
        help: "The wallet's spendable coins: txid, vout, address, amount, confirmations.",
    },
    Method {
        name: "listtransactions",
        category: "Wallet",
        params: &[
            optional(text("label")),
            optional(json("count")),
            optional(json("skip")),
            optional(json("include_watchonly")),
        ],
        help: "The wallet's latest entries, as Bitcoin Core lists them (count, 10 by default, after skipping skip; oldest first): one send entry per output paid out, one receive (or generate, for a masternode reward) per output to the wallet, change left out; each with address, category, amount, vout, fee (sends), confirmations, blockhash, blockheight, blockindex, blocktime, txid, time, timereceived and finalized. Transactions still in the mempool have 0 confirmations. The label must be \"*\" or left out. Watched addresses' entries (importaddress) only with include_watchonly, marked involvesWatchonly.",
    },
    Method {
        name: "listsinceblock",
        category: "Wallet",
        params: &[
            optional(text("blockhash")),
            optional(json("target_confirmations")),
            optional(json("include_watchonly")),
            optional(json("include_removed")),
            optional(json("include_change")),
        ],
        help: "The wallet's entries (as listtransactions gives them) in blocks after blockhash (all when it is left out or empty) and in the mempool, and lastblock: the hash to pass next time, the block target_confirmations (1 by default) below the wallet's tip. removed is always empty: a finalized block is never undone. Watched addresses' entries (importaddress) only with include_watchonly, marked involvesWatchonly.",
    },
    Method {
        name: "getreceivedbyaddress",
        category: "Wallet",
        params: &[text("address"), optional(json("minconf"))],
        help: "The TIME the wallet's address (or a watched one) received in transactions with at least minconf (1) confirmations, block rewards left out. -4 an address that is neither.",
    },
    Method {
        name: "listreceivedbyaddress",
        category: "Wallet",
        params: &[
            optional(json("minconf")),
            optional(json("include_empty")),
            optional(json("include_watchonly")),
            optional(text("address_filter")),
        ],
        help: "The wallet's receiving addresses (those getnewaddress handed out) that received in transactions with at least minconf (1) confirmations, block rewards left out; with include_empty those that received nothing too: [{address, amount, confirmations (of the most recent receipt), label (\"\"), txids}]. address_filter limits it to one address.",
    },
    Method {
        name: "gettransaction",
        category: "Wallet",
        params: &[text("txid"), optional(json("include_watchonly"))],
        help: "A wallet transaction, in a block or in the mempool: amount (net of the fee), fee, confirmations, blockhash, blockheight, blockindex, blocktime, txid, time, timereceived, finalized, details (its entries) and hex. A transaction of watched addresses alone (importaddress) only with include_watchonly.",
    },
    Method {
        name: "sendtoaddress",
        category: "Wallet",
        params: &[text("address"), json("amount")],
        help: "Pays amount TIME to address from finalized coins, with the network's fee and change back to the wallet; returns the txid.",
    },
    Method {
        name: "sendmany",
        category: "Wallet",
        params: &[text("dummy"), json("amounts")],
        help: "Pays several addresses in one transaction: amounts is {\"address\": TIME, ...}; the first parameter is ignored (\"\"), as in Bitcoin Core.",
    },
    Method {
        name: "createrawtransaction",
        category: "Wallet",
        params: &[json("inputs"), json("outputs"), optional(json("locktime"))],
        help: "An unsigned transaction (hex): inputs is [{\"txid\": hex, \"vout\": n}, ...], outputs is {\"address\": TIME, ...}.",
    },
    Method {
        name: "signrawtransactionwithwallet",
        category: "Wallet",
        params: &[text("hexstring")],
        help: "Signs the inputs that spend the wallet's coins: {hex, complete, errors}.",
    },
    Method {
        name: "walletpassphrase",
        category: "Wallet",
        params: &[text("passphrase"), json("timeout")],
        help: "Unlocks an encrypted wallet for timeout seconds.",
    },
    Method {
        name: "lockunspent",
        category: "Wallet",
        params: &[json("unlock"), optional(json("transactions"))],
        help: "Locks (unlock false) or unlocks (true) the wallet's coins [{txid, vout}] out of coin selection and listunspent (in memory: a restart unlocks them); unlock true with no list unlocks all. -8 a coin that is not the wallet's, or not locked when unlocking, or locked already. Locked coins still count in getbalance, as Bitcoin Core counts them.",
    },
    Method {
        name: "listlockunspent",
        category: "Wallet",
        params: &[],
        help: "The coins lockunspent locked: [{txid, vout}].",
    },
    Method {
        name: "signmessage",
        category: "Wallet",
        params: &[text("address"), text("message")],
        help: "Signs message with the wallet's key for address: base64 of the public key and the Ed25519 signature of the message's SignedMessage-domain hash (verifymessage checks it). -8 an address that is not the wallet's, -13 a locked wallet.",
    },
    Method {
        name: "walletlock",
        category: "Wallet",
        params: &[],
        help: "Locks an encrypted wallet now.",
    },
    Method {
        name: "importaddress",
        category: "Wallet",
        params: &[
            text("address"),
            optional(text("label")),
            optional(json("rescan")),
            optional(json("p2sh")),
        ],
        help: "Watches an address without its key: its coins appear in listunspent (spendable false) and getbalances (watchonly), its transactions in listtransactions and listsinceblock (involvesWatchonly), and are never spent. With rescan (default true) the chain is searched for its past first. The label is not kept (no labels here).",
    },
    Method {
        name: "backupwallet",
        category: "Wallet",
        params: &[text("destination")],
        help: "Writes a copy of the wallet file (sealed if the wallet is encrypted) to destination, mode 0600; a directory gets the file's own name, a relative path is taken from the data directory. Restore it by putting it in place of the wallet file with the node stopped.",
    },
    Method {
        name: "dumpmnemonic",
        category: "Wallet",
        params: &[],
        help: "The wallet's 24-word recovery phrase, to write down: whoever has it owns the coins (an encrypted wallet must be unlocked).",
    },
    Method {
        name: "encryptwallet",
        category: "Wallet",
        params: &[text("passphrase")],
        help: "Encrypts the wallet file with a passphrase (Argon2id + XChaCha20-Poly1305) and locks it.",
    },
    Method {
        name: "getaddressbalance",
        category: "Addressindex",
        params: &[json("addresses")],
        help: "With the address index on ([index] address = true): {balance, balance_immature (0), balance_spendable, received} of the addresses ({\"addresses\": [...]} or one address), in units (Dash Core's duffs); -1 when the index is off.",
    },
    Method {
        name: "getaddressutxos",
        category: "Addressindex",
        params: &[json("addresses")],
        help: "With the address index on: the unspent outputs of the addresses, [{address, txid, outputIndex, satoshis, height}], oldest first (no script: TimeCoin outputs pay an address, not a script).",
    },
    Method {
        name: "getaddresstxids",
        category: "Addressindex",
        params: &[json("addresses")],
        help: "With the address index on: the txids that paid or spent from the addresses ({\"addresses\": [...], \"start\": h, \"end\": h} limits the heights), by height.",
    },
    Method {
        name: "getaddressdeltas",
        category: "Addressindex",
        params: &[json("addresses")],
        help: "With the address index on: each change of the addresses' balances, [{satoshis (negative when spent), txid, index, blockindex, height, address}], by height (start and end as getaddresstxids).",
    },
    Method {
        name: "getzmqnotifications",
        category: "Zmq",
        params: &[],
        help: "The ZMQ notifiers ([zmq] in the configuration): [{type (pubhashblock, pubhashtx, pubrawblock, pubrawtx, pubsequence), address}] (no hwm: a subscriber too slow to take a message misses it). Each message is the topic, the body and a 4-byte little-endian sequence number, as Bitcoin Core sends them.",
    },
    Method {
        name: "getmemoryinfo",
        category: "Control",
        params: &[],
        help: "The process's resident memory (rss, bytes) and the mempool's usage and limit.",
    },
    Method {
        name: "uptime",
        category: "Control",
        params: &[],
        help: "Seconds since the node started.",
    },
    Method {
        name: "stop",
        category: "Control",
        params: &[],
        help: "Stops the node gracefully.",
    },
    Method {
        name: "help",
        category: "Control",
        params: &[optional(text("command"))],
        help: "Lists the methods, or explains one.",
    },
    Method {
        name: "subscribeblocks",
        category: "Subscriptions",
        params: &[],
        help: "WebSocket only: notifies each finalized block as method block, {hash, height, time, time_ms, nTx}; returns the subscription id.",
    },
    Method {
        name: "unsubscribeblocks",
        category: "Subscriptions",
        params: &[json("subscription")],
        help: "WebSocket only: ends a subscribeblocks subscription.",
    },
    Method {
        name: "subscribetransactions",
        category: "Subscriptions",
        params: &[],
        help: "WebSocket only: notifies each transaction of each finalized block as method transaction, {txid, blockhash, height, finalized}.",
    },
    Method {
        name: "unsubscribetransactions",
        category: "Subscriptions",
        params: &[json("subscription")],
        help: "WebSocket only: ends a subscribetransactions subscription.",
    },
    Method {
        name: "subscribeaddresses",
        category: "Subscriptions",
        params: &[json("addresses")],
        help: "WebSocket only: notifies finalized activity on up to 1,000 addresses as method address: {address, txid, blockhash, height, category receive (vout, amount) or send (vin)}.",
    },
    Method {
        name: "unsubscribeaddresses",
        category: "Subscriptions",
        params: &[json("subscription")],
        help: "WebSocket only: ends a subscribeaddresses subscription.",
    },
];

/// The method called `name`.
pub fn method(name: &str) -> Option<&'static Method> {
    METHODS.iter().find(|m| m.name == name)
}

impl Method {
    /// `name param1 ( param2 )`: optional parameters in parentheses.
    pub fn usage(&self) -> String {
        let mut line = self.name.to_owned();
        for param in self.params {
            if param.optional {
                line.push_str(&format!(" ( {} )", param.name));
            } else {
                line.push_str(&format!(" {}", param.name));
            }
        }
        line
    }

    /// Turns command-line words into the parameter array: `Json` parameters are parsed (a
    /// word that is not JSON is an error naming it), `Text` ones sent as strings. With
    /// `named`, each word is `name=value` and is put at its parameter's position.
    pub fn arguments(&self, words: &[String], named: bool) -> Result<Vec<Value>, String> {
        let convert = |param: &Param, word: &str| -> Result<Value, String> {
            match param.kind {
                Kind::Text => Ok(Value::String(word.to_owned())),
                Kind::Json => serde_json::from_str(word)
                    .map_err(|e| format!("parameter {}: {word:?} is not valid JSON ({e})", param.name)),
            }
        };
        if !named {
            if words.len() > self.params.len() {
                return Err(format!("too many parameters; usage: {}", self.usage()));
            }
            return words
                .iter()
                .zip(self.params)
                .map(|(word, param)| convert(param, word))
                .collect();
        }
        let mut values: Vec<Option<Value>> = vec![None; self.params.len()];
        for word in words {
            let (name, value) = word
                .split_once('=')
                .ok_or_else(|| format!("{word:?} is not name=value"))?;
            let index = self
                .params
                .iter()
                .position(|p| p.name == name)
                .ok_or_else(|| format!("unknown parameter {name}; usage: {}", self.usage()))?;
            if let (Some(slot), Some(param)) = (values.get_mut(index), self.params.get(index)) {
                *slot = Some(convert(param, value)?);
            }
        }
        // Trailing parameters left out are omitted; a gap before a given one is null.
        let last = values.iter().rposition(Option::is_some).map_or(0, |i| i + 1);
        Ok(values
            .into_iter()
            .take(last)
            .map(|v| v.unwrap_or(Value::Null))
            .collect())
    }
}

/// The text of `help`: every method by category, or one method's usage and description.
pub fn help(command: Option<&str>) -> Result<String, String> {
    match command {
        Some(name) => method(name)
            .map(|m| format!("{}\n\n{}", m.usage(), m.help))
            .ok_or_else(|| format!("help: unknown command: {name}")),
        None => {
            let mut text = String::new();
            let mut category = "";
            for m in METHODS {
                if m.category != category {
                    if !text.is_empty() {
                        text.push('\n');
                    }
                    text.push_str(&format!("== {} ==\n", m.category));
                    category = m.category;
                }
                text.push_str(&m.usage());
                text.push('\n');
            }
            Ok(text)
        }
    }
}

/// What every method sees: the backend and when the server started.
pub(crate) struct Context {
    backend: Arc<dyn Backend>,
    started: Instant,
}

/// What registers one category's methods.
type Register = fn(&mut RpcModule<Context>) -> Result<(), RegisterMethodError>;

/// Each help category of the table and the module serving its methods.
const CATEGORIES: [(&str, Register); 11] = [
    ("Blockchain", blockchain::register),
    ("Rawtransactions", rawtransactions::register),
    ("Mempool", mempool::register),
    ("Network", network::register),
    ("Masternode", masternode::register),
    ("Util", util::register),
    ("Wallet", wallet::register),
    ("Zmq", zmq::register),
    ("Addressindex", address::register),
    ("Control", control::register),
    ("Subscriptions", subscriptions::register),
];

/// The category served over a WebSocket only, on its own listener.
pub const WEBSOCKET_CATEGORY: &str = "Subscriptions";

/// The methods of the table, over `backend`: over HTTP every category but the WebSocket's
/// (`websocket` false), or the WebSocket's alone.
pub(crate) fn build(backend: Arc<dyn Backend>, websocket: bool) -> Result<RpcModule<Context>, RegisterMethodError> {
    let mut module = RpcModule::new(Context {
        backend,
        started: Instant::now(),
    });
    for (category, register) in CATEGORIES {
        if (category == WEBSOCKET_CATEGORY) == websocket {
            register(&mut module)?;
        }
    }
    Ok(module)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn words_become_typed_parameters() {
        let getblock = method("getblock").unwrap();
        let hash = "1".repeat(64);
        assert_eq!(
            getblock.arguments(&[hash.clone(), "2".into()], false).unwrap(),
            vec![json!(hash), json!(2)]
        );
        assert_eq!(
            getblock
                .arguments(&["verbosity=0".into(), format!("blockhash={hash}")], true)
                .unwrap(),
            vec![json!(hash), json!(0)]
        );
        assert!(getblock.arguments(&[hash.clone(), "two".into()], false).is_err());
        assert!(getblock.arguments(&["colour=red".into()], true).is_err());
        assert!(
            method("getblockcount")
                .unwrap()
                .arguments(&["1".into()], false)
                .is_err()
        );
    }

    #[test]
    fn each_category_is_listed_once_and_names_are_unique() {
        let mut seen: Vec<&str> = Vec::new();
        for pair in METHODS.windows(2) {
            if let [a, b] = pair
                && a.category != b.category
            {
                assert!(!seen.contains(&b.category), "{} is split", b.category);
                seen.push(a.category);
            }
        }
        let mut names: Vec<&str> = METHODS.iter().map(|m| m.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), METHODS.len());
    }

    #[test]
    fn help_lists_every_method_and_explains_one() {
        let all = help(None).unwrap();
        assert!(METHODS.iter().all(|m| all.contains(&m.usage())));
        assert!(
            help(Some("getblock"))
                .unwrap()
                .starts_with("getblock blockhash ( verbosity )")
        );
        assert!(help(Some("nope")).is_err());
    }

    #[cfg(feature = "test-stub")]
    #[test]
    fn each_category_module_serves_exactly_its_methods_of_the_table() {
        use timecoin_primitives::{BlockHash, Hash256};

        let backend: Arc<dyn Backend> = Arc::new(crate::stub::StubBackend::new(crate::ChainInfo {
            network: timecoin_primitives::Network::Local,
            blocks: 0,
            best_block: BlockHash(Hash256([0; 32])),
            time_ms: 0,
            genesis: BlockHash(Hash256([0; 32])),
            mempool_transactions: 0,
        }));
        for (category, register) in CATEGORIES {
            let mut module = RpcModule::new(Context {
                backend: backend.clone(),
                started: Instant::now(),
            });
            register(&mut module).unwrap();
            let mut served: Vec<&str> = module.method_names().collect();
            served.sort_unstable();
            let mut listed: Vec<&str> = METHODS
                .iter()
                .filter(|m| m.category == category)
                .map(|m| m.name)
                .collect();
            listed.sort_unstable();
            assert_eq!(served, listed, "{category}");
        }
    }
}
