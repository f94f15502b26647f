//! The API's methods in one table ([`METHODS`], in `table`: names, parameters and help text), and
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
mod proofs;
mod rawtransactions;
mod subscriptions;
mod table;
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

pub use table::METHODS;

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

pub(super) const fn text(name: &'static str) -> Param {
    Param {
        name,
        kind: Kind::Text,
        optional: false,
    }
}

pub(super) const fn json(name: &'static str) -> Param {
    Param {
        name,
        kind: Kind::Json,
        optional: false,
    }
}

pub(super) const fn optional(param: Param) -> Param {
    Param {
        optional: true,
        ..param
    }
}

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
