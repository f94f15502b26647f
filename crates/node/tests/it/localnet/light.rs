//! `timed light` against real nodes: it follows two of them, answers from what it verified,
//! and stops with evidence when a source proves a different final block.

use std::io::{Read, Write};
use std::net::TcpListener;

use timecoin_light::{CertifiedHeader, HeaderProof};
use timecoin_primitives::{BlockHeader, CommitCertificate, Decode, Encode};

use super::*;

/// A running `timed light` and its API.
pub(super) struct LightClient {
    child: Child,
    pub(super) client: timecoin_rpc::Client,
}

impl LightClient {
    /// Starts one following `sources` (`--node` specs), its cookie in `dir`.
    pub(super) fn start(net: &Localnet, dir: &Path, sources: &[String]) -> LightClient {
        let port = free_ports(1);
        let mut command = Command::new(env!("CARGO_BIN_EXE_timed"));
        command
            .args(["--log-format", "json", "--data-dir"])
            .arg(dir)
            .args([
                "light",
                "--poll-ms",
                "100",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--genesis",
            ])
            .arg(net.path().join("genesis.toml"));
        for source in sources {
            command.args(["--node", source]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.with_extension("stderr")).unwrap())
            .spawn()
            .unwrap();
        let cookie = dir.join(".cookie");
        let deadline = Instant::now() + DEADLINE;
        while !cookie.exists() {
            assert!(Instant::now() < deadline, "the light client never wrote its cookie");
            std::thread::sleep(Duration::from_millis(50));
        }
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        LightClient {
            child,
            client: timecoin_rpc::Client::with_cookie(address, &cookie).unwrap(),
        }
    }

    /// Polls `method` until `done` holds for its result, watching the nodes between polls.
    pub(super) fn wait_for(
        &self,
        net: &mut Localnet,
        method: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Ok(answer) = self.client.call(method, serde_json::json!([]))
                && done(&answer)
            {
                return answer;
            }
            assert!(
                Instant::now() < deadline,
                "the light client's {method} never reached the state wanted: {:?}",
                self.client.call("getlightinfo", serde_json::json!([]))
            );
            net.watch_for(Duration::from_millis(100));
        }
    }
}

impl LightClient {
    /// Waits until it verified `height`, then checks node 0's proof of `txid` (in that
    /// block) against the header it holds.
    pub(super) fn checks_the_proof_of(&self, net: &mut Localnet, txid: &serde_json::Value, height: u64) {
        self.wait_for(net, "getblockcount", |count| count.as_u64().unwrap() >= height);
        let proof = result(net.rpc(0, "gettxoutproof", serde_json::json!([[txid]])));
        assert_eq!(
            self.client
                .call("verifytxoutproof", serde_json::json!([proof]))
                .unwrap(),
            serde_json::json!([txid])
        );
    }
}

impl Drop for LightClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `--node` spec of `node`: its RPC address and cookie.
pub(super) fn spec(net: &Localnet, node: usize) -> String {
    format!(
        "127.0.0.1:{},cookie={}",
        net.rpc_port(node),
        net.path().join(format!("node{node}")).join(".cookie").display()
    )
}

/// A node that lies: it claims node 0's height, and proves, for any height asked, a block
/// other than node 0's there (same parent, a later timestamp), certified by every genesis
/// masternode's key in the round node 0's block was decided in. What it serves is what more than 1/3 of a set double-signing makes.
fn lying_node(net: &Localnet) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let genesis = net.genesis();
    let keys: Vec<_> = (0..3).map(|node| net.key(node, "masternode.key")).collect();
    let honest = {
        let cookie = net.path().join("node0").join(".cookie");
        timecoin_rpc::Client::with_cookie(std::net::SocketAddr::from(([127, 0, 0, 1], net.rpc_port(0))), &cookie)
            .unwrap()
    };
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            // One request a connection: read the headers, then the body they announce.
            let mut request = Vec::new();
            let mut buffer = [0u8; 4096];
            let body = loop {
                let Ok(read) = stream.read(&mut buffer) else { break None };
                if read == 0 {
                    break None;
                }
                request.extend_from_slice(&buffer[..read]);
                let text = String::from_utf8_lossy(&request).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        break Some(body.to_owned());
                    }
                }
            };
            let Some(body) = body else { continue };
            let request: serde_json::Value = serde_json::from_str(&body).unwrap();
            let result = match request["method"].as_str().unwrap() {
                "getblockcount" => honest.call("getblockcount", serde_json::json!([])).unwrap(),
                "getheaderproof" => {
                    let height = request["params"][0].as_u64().unwrap();
                    let hash = honest.call("getblockhash", serde_json::json!([height])).unwrap();
                    let hex_header = honest.call("getblockheader", serde_json::json!([hash, false])).unwrap();
                    let mut header =
                        BlockHeader::from_bytes(&hex::decode(hex_header.as_str().unwrap()).unwrap()).unwrap();
                    header.timestamp_ms += 1;
                    // In the honest block's round, so that each key's two precommits are an
                    // equivocation.
                    let round = honest.call("getcommit", serde_json::json!([height])).unwrap()["round"]
                        .as_u64()
                        .unwrap() as u32;
                    let signers: Vec<_> = keys.iter().collect();
                    let certificate = CommitCertificate::sign(&genesis.hash(), height, round, &header.hash(), &signers);
                    let proof = HeaderProof {
                        network: genesis.hash(),
                        headers: vec![CertifiedHeader {
                            header,
                            certificate,
                            set: None,
                        }],
                    };
                    serde_json::json!(hex::encode(proof.to_bytes()))
                }
                other => panic!("the light client called {other}"),
            };
            let answer = serde_json::json!({"jsonrpc": "2.0", "id": request["id"], "result": result}).to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    format!("{address},user=liar,password=liar")
}

#[test]
fn a_light_client_follows_two_nodes_verifies_a_payment_and_stops_at_a_forged_fork() {
    let mut net = Localnet::running(3);
    let light = LightClient::start(&net, &net.path().join("light"), &[spec(&net, 0), spec(&net, 1)]);

    // A payment, proven by node 0 from the genesis, is checked by the light client alone.
    let payee = result(net.rpc(1, "getnewaddress", serde_json::json!([])));
    let txid = result(net.rpc(0, "sendtoaddress", serde_json::json!([payee, 2])));
    let waited = result(net.rpc(0, "waitfortransaction", serde_json::json!([txid, 120])));
    let height = waited["height"].as_u64().unwrap();
    light.checks_the_proof_of(&mut net, &txid, height);
    // It holds the block's header, verified, equal to the node's.
    let hash = result(net.rpc(0, "getblockhash", serde_json::json!([height])));
    let ours = light.client.call("getblockheader", serde_json::json!([hash])).unwrap();
    let theirs = result(net.rpc(0, "getblockheader", serde_json::json!([hash])));
    for field in [
        "hash",
        "height",
        "merkleroot",
        "previousblockhash",
        "masternodesethash",
        "statehash",
    ] {
        assert_eq!(ours[field], theirs[field], "{field}");
    }
    let unknown = light
        .client
        .call("getblockheader", serde_json::json!(["00".repeat(32)]));
    assert!(
        matches!(unknown, Err(timecoin_rpc::ClientError::Rpc { code: -5, .. })),
        "{unknown:?}"
    );
    let info = light.client.call("getlightinfo", serde_json::json!([])).unwrap();
    assert_eq!(info["network"], serde_json::json!(net.genesis().hash().to_string()));
    assert_eq!(info["sources"].as_array().unwrap().len(), 2, "{info}");
    assert!(info["conflict"].is_null(), "{info}");
    assert!(
        info["headers"].as_u64().unwrap() >= height,
        "it holds every header: {info}"
    );

    // Node 0 and a source proving other blocks signed by the same keys: a conflict at the
    // first height, with each masternode's two precommits as evidence; it goes no further.
    let liar = lying_node(&net);
    let fooled = LightClient::start(&net, &net.path().join("light-2"), &[spec(&net, 0), liar]);
    let info = fooled.wait_for(&mut net, "getlightinfo", |info| !info["conflict"].is_null());
    let conflict = &info["conflict"];
    assert_eq!(conflict["height"], 1, "{conflict}");
    assert_ne!(conflict["first"]["hash"], conflict["second"]["hash"]);
    assert_eq!(conflict["doublesigners"].as_array().unwrap().len(), 3, "{conflict}");
    let evidence = conflict["evidence"].as_array().unwrap();
    assert_eq!(evidence.len(), 3, "{conflict}");
    for item in evidence {
        let item =
            timecoin_primitives::Equivocation::from_bytes(&hex::decode(item.as_str().unwrap()).unwrap()).unwrap();
        item.verify().unwrap();
    }
    assert_eq!(info["height"], 0, "{info}");
    let top = net.top();
    net.wait_until(&[0], top + 2);
    assert_eq!(
        fooled.client.call("getblockcount", serde_json::json!([])).unwrap(),
        serde_json::json!(0)
    );
}
