//! Serving a fixed chain over real HTTP on loopback: authentication, Bitcoin Core-style
//! requests and batches, limits, and the utility methods.

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Value, json};
use timecoin_primitives::{BlockHash, Hash256, Network, TxId};
use timecoin_rpc::auth::{COOKIE_USER, basic_header};
use timecoin_rpc::stub::StubBackend;
use timecoin_rpc::{
    ChainInfo, Client, ClientError, Credentials, RpcAuth, RpcServer, ServeOptions, codes, methods, serve,
};

/// A chain of 7 blocks (block `h` hashes to `[h; 32]`), as far as the API can tell, with
/// one transaction waiting.
pub(crate) fn fixed() -> StubBackend {
    let mut backend = StubBackend::new(ChainInfo {
        network: Network::Local,
        blocks: 7,
        best_block: BlockHash(Hash256([7; 32])),
        time_ms: 1_790_000_000_000,
        genesis: BlockHash(Hash256([0; 32])),
        mempool_transactions: 0,
    });
    backend.hashes = (0..=7u8).map(|height| BlockHash(Hash256([height; 32]))).collect();
    backend.mempool = vec![TxId(Hash256([9; 32]))];
    backend.mempool_info.size = 1;
    backend.mempool_info.bytes = 200;
    backend.mempool_info.usage = 1_000;
    backend
}

pub(crate) struct Served {
    runtime: tokio::runtime::Runtime,
    server: Option<RpcServer>,
    pub(crate) cookie: String,
}

impl Served {
    fn start(configure: impl FnOnce(&mut ServeOptions)) -> Served {
        Served::serving(fixed(), configure)
    }

    /// Serves `backend` on loopback with the cookie and the `rpcauth` user alice.
    pub(crate) fn serving(backend: StubBackend, configure: impl FnOnce(&mut ServeOptions)) -> Served {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let cookie = timecoin_rpc::auth::random_password();
        let alice: RpcAuth = RpcAuth::generate("alice", "wonderland").parse().unwrap();
        let mut options = ServeOptions::new(Credentials::new(Some(cookie.clone()), vec![alice]));
        configure(&mut options);
        let server = runtime
            .block_on(serve("127.0.0.1:0".parse().unwrap(), Arc::new(backend), options))
            .unwrap();
        Served {
            runtime,
            server: Some(server),
            cookie,
        }
    }

    pub(crate) fn address(&self) -> SocketAddr {
        self.server.as_ref().unwrap().address
    }

    pub(crate) fn client(&self) -> Client {
        Client::new(self.address(), COOKIE_USER, &self.cookie)
    }

    /// Posts `body` with the cookie over a raw HTTP exchange: the status and the body.
    pub(crate) fn exchange(&self, body: &str) -> (u16, String) {
        let authorization = basic_header(COOKIE_USER, &self.cookie);
        raw(
            self.address(),
            &format!("POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {authorization}\r\n"),
            body.as_bytes(),
        )
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.stop());
        }
    }
}

/// A raw HTTP exchange: the status code and the body.
fn raw(address: SocketAddr, head: &str, body: &[u8]) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    write!(
        stream,
        "{head}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    let _ = stream.write_all(body);
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = answer.split_whitespace().nth(1).unwrap_or("0").parse().unwrap();
    (
        status,
        answer
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default(),
    )
}

#[test]
fn only_the_cookie_and_rpcauth_users_get_in() {
    let served = Served::start(|_| {});
    assert_eq!(served.client().call("getblockcount", json!([])).unwrap(), json!(7));
    let alice = Client::new(served.address(), "alice", "wonderland");
    assert_eq!(alice.call("getblockcount", json!([])).unwrap(), json!(7));
    for (user, password) in [
        ("alice", "Wonderland"),
        (COOKIE_USER, "guess"),
        ("mallory", "wonderland"),
    ] {
        let client = Client::new(served.address(), user, password);
        assert!(matches!(
            client.call("getblockcount", json!([])),
            Err(ClientError::Unauthorized)
        ));
    }
    // No credentials at all: 401 with a Basic challenge, as Bitcoin Core answers.
    let (status, _) = raw(
        served.address(),
        "POST / HTTP/1.1\r\nHost: x\r\n",
        br#"{"jsonrpc":"2.0","id":1,"method":"getblockcount"}"#,
    );
    assert_eq!(status, 401);
}

#[test]
fn bitcoin_core_style_requests_and_batches_are_answered() {
    let served = Served::start(|_| {});
    let client = served.client();
    // JSON-RPC 1.0 style, as bitcoin-cli and python-bitcoinrpc send it.
    let answer: Value = serde_json::from_str(
        &client
            .post(r#"{"version":"1.1","method":"getblockhash","params":[3],"id":"x"}"#)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(answer["result"], json!(hex::encode([3u8; 32])));
    assert_eq!(answer["id"], json!("x"));
    let batch: Value = serde_json::from_str(
        &client
            .post(
                r#"[{"method":"getblockcount","id":1},{"jsonrpc":"2.0","method":"getblockhash","params":[99],"id":2}]"#,
            )
            .unwrap(),
    )
    .unwrap();
    let answers = batch.as_array().unwrap();
    assert_eq!(answers.len(), 2);
    let by_id = |id: i64| answers.iter().find(|a| a["id"] == json!(id)).unwrap();
    assert_eq!(by_id(1)["result"], json!(7));
    assert_eq!(by_id(2)["error"]["code"], json!(codes::INVALID_PARAMETER));
    // The typed client's batch gives each call's outcome in the order asked.
    let outcomes = client
        .call_batch(&[
            ("getblockhash", json!([99])),
            ("getblockcount", json!([])),
            ("getblockhash", json!([3])),
        ])
        .unwrap();
    assert!(matches!(&outcomes[0], Err(ClientError::Rpc { code, .. }) if *code == i64::from(codes::INVALID_PARAMETER)));
    assert_eq!(outcomes[1].as_ref().unwrap(), &json!(7));
    assert_eq!(outcomes[2].as_ref().unwrap(), &json!(hex::encode([3u8; 32])));
    // Runs of sendrawtransaction calls run together, the others in turn; the answers keep
    // the order asked.
    let outcomes = client
        .call_batch(&[
            ("sendrawtransaction", json!(["zz"])),
            ("getblockcount", json!([])),
            ("sendrawtransaction", json!(["zz"])),
            ("sendrawtransaction", json!(["00"])),
            ("getblockhash", json!([3])),
        ])
        .unwrap();
    let refused = |i: usize| matches!(&outcomes[i], Err(ClientError::Rpc { code: -22, .. }));
    assert!(refused(0) && refused(2) && refused(3), "{outcomes:?}");
    assert_eq!(outcomes[1].as_ref().unwrap(), &json!(7));
    assert_eq!(outcomes[4].as_ref().unwrap(), &json!(hex::encode([3u8; 32])));
}

#[test]
fn malformed_and_oversized_requests_get_errors_not_crashes() {
    let served = Served::start(|options| {
        options.max_body = 10_000;
        options.max_batch = 3;
    });
    let client = served.client();
    let (status, parse) = served.exchange("{not json");
    assert_eq!(status, 500);
    assert_eq!(
        serde_json::from_str::<Value>(&parse).unwrap()["error"]["code"],
        json!(-32700)
    );
    assert!(matches!(
        client.call("nosuchmethod", json!([])),
        Err(ClientError::Rpc { code: -32601, .. })
    ));
    assert!(matches!(
        client.call("getblockhash", json!(["three"])),
        Err(ClientError::Rpc { code: -8, .. })
    ));
    assert!(matches!(
        client.call("sendrawtransaction", json!(["zz"])),
        Err(ClientError::Rpc { code: -22, .. })
    ));
    let batch = format!("[{}]", [r#"{"method":"getblockcount","id":1}"#; 4].join(","));
    let too_many: Value = serde_json::from_str(&client.post(&batch).unwrap()).unwrap();
    assert!(too_many["error"]["code"].is_i64(), "{too_many}");
    let calls = vec![("getblockcount", json!([])); 4];
    // A batch refused as a whole comes back as the server's JSON-RPC error.
    assert!(matches!(client.call_batch(&calls), Err(ClientError::Rpc { .. })));
    let huge = format!(r#"{{"method":"getblockcount","id":1,"pad":"{}"}}"#, "x".repeat(20_000));
    assert!(matches!(client.post(&huge), Err(ClientError::Http { status: 413, .. })));
    // The server is still there.
    assert_eq!(client.call("getblockcount", json!([])).unwrap(), json!(7));
    let authorization = basic_header(COOKIE_USER, &served.cookie);
    let (status, body) = raw(
        served.address(),
        &format!("POST / HTTP/1.1\r\nHost: x\r\nAuthorization: {authorization}\r\n"),
        &[0xff, 0xfe, 0x00],
    );
    // As Bitcoin Core answers any body that is not JSON.
    assert_eq!(status, 500, "bytes that are not UTF-8 are not JSON");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"]["code"],
        json!(-32700)
    );
    assert_eq!(client.call("getblockcount", json!([])).unwrap(), json!(7));
}

#[test]
fn help_covers_every_method_and_utilities_answer() {
    let served = Served::start(|_| {});
    let client = served.client();
    let help = client.call("help", json!([])).unwrap();
    for method in methods::METHODS {
        assert!(help.as_str().unwrap().contains(&method.usage()), "{}", method.name);
    }
    let one = client.call("help", json!(["getblockhash"])).unwrap();
    assert!(one.as_str().unwrap().starts_with("getblockhash height"), "{one}");
    assert_eq!(
        client.call("getrawmempool", json!([])).unwrap(),
        json!([hex::encode([9u8; 32])])
    );
    assert_eq!(client.call("getmempoolinfo", json!([])).unwrap()["size"], json!(1));
    assert_eq!(client.call("getconnectioncount", json!([])).unwrap(), json!(0));
    let local = timecoin_primitives::Address::from_public_key(
        Network::Local,
        &timecoin_primitives::SecretKey::from_seed([1; 32]).public_key(),
    );
    assert_eq!(
        client.call("validateaddress", json!([local.to_string()])).unwrap()["isvalid"],
        json!(true)
    );
    let mainnet = timecoin_primitives::Address {
        network: Network::Mainnet,
        ..local
    };
    let answer = client.call("validateaddress", json!([mainnet.to_string()])).unwrap();
    assert_eq!(answer["isvalid"], json!(false), "{answer}");
    assert!(matches!(
        client.call("getcommit", json!([3])),
        Err(ClientError::Rpc { code: -5, .. })
    ));
    assert!(client.call("uptime", json!([])).unwrap().is_u64());
}
