//! Hostile peers and a Byzantine masternode against real `timed` processes: the honest
//! nodes keep finalizing, agree, stay bounded and ban the offenders.

use super::*;

/// A peer of the right network that misbehaves, driven from this test with the network
/// crate's own transport.
#[test]
fn a_hostile_peer_is_disconnected_and_banned_while_the_network_finalizes() {
    use timecoin_network::{Message, connect};
    use timecoin_primitives::{BlockHash, Encode, Equivocation, Hash256, SecretKey, SignedVote, Vote, VoteKind};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    let mut net = Localnet::running(3);
    let genesis = net.genesis();
    let hello = net.stranger_hello();
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], net.p2p_port(0)));
    let operator = net.key(2, "masternode.key");
    // Evidence travels only if a block could record it: an offence at a height already
    // finalized, within the evidence window.
    let offence = net.top();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // The friend stays connected until its message arrived (closing a socket with unread
    // data resets it, and the reset can discard what was sent just before).
    let _friend = runtime.block_on(async {
        let dial = |seed: u8| async move {
            let stream = TcpStream::connect(address).await.unwrap();
            connect(
                stream,
                &SecretKey::from_seed([seed; 32]),
                true,
                &hello,
                8_000_000,
                DEADLINE,
            )
            .await
            .map(|(secure, _)| secure)
        };
        // Reads until the node closes the connection; returns how many messages came first.
        let drain = |mut secure: timecoin_network::SecureStream<TcpStream>| async move {
            let mut received = 0;
            while tokio::time::timeout(DEADLINE, secure.receive()).await.unwrap().is_ok() {
                received += 1;
            }
            received
        };

        // Garbage instead of a handshake: the node hangs up.
        let mut raw = TcpStream::connect(address).await.unwrap();
        let _ = raw.write_all(&[0xAB; 4_096]).await;
        let mut buffer = [0u8; 64];
        let read = tokio::time::timeout(DEADLINE, raw.read(&mut buffer)).await.unwrap();
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "the node kept a garbage connection open"
        );

        // An undecodable message, an oversize frame, a flood of pings: each gets the peer
        // dropped, and banned, so that coming back with the same identity is refused at
        // once (no message at all, where an admitted peer gets votes every second).
        let mut undecodable = dial(1).await.unwrap();
        undecodable.send(&[0xff, 1, 2, 3]).await.unwrap();
        drain(undecodable).await;

        let mut oversize = dial(2).await.unwrap();
        let _ = oversize.send(&vec![0; 3_000_000]).await;
        drain(oversize).await;

        let mut flooder = dial(3).await.unwrap();
        for nonce in 0..2_000 {
            if flooder.send(&Message::Ping(nonce).to_bytes()).await.is_err() {
                break;
            }
        }
        drain(flooder).await;

        for seed in 1..=3 {
            let again = dial(seed).await;
            if let Ok(again) = again {
                assert_eq!(drain(again).await, 0, "peer {seed} was let back in");
            }
        }
        // A well-behaved peer is still served, and what it proves travels on: evidence that
        // node 2 voted twice, sent to node 0, reaches node 1.
        let mut friend = dial(4).await.unwrap();
        assert!(tokio::time::timeout(DEADLINE, friend.receive()).await.unwrap().is_ok());
        let vote = |n: u8| {
            SignedVote::sign(
                Vote {
                    chain: genesis.hash(),
                    height: offence,
                    round: 0,
                    kind: VoteKind::Prevote,
                    block: Some(BlockHash(Hash256([n; 32]))),
                },
                &operator,
            )
        };
        // Votes at the very end of the height and round ranges (unsigned by any masternode):
        // ignored, with no arithmetic on them overflowing.
        for height in [u64::MAX, u64::MAX - 1] {
            let far = SignedVote::sign(
                Vote {
                    chain: genesis.hash(),
                    height,
                    round: u32::MAX,
                    kind: VoteKind::Precommit,
                    block: None,
                },
                &SecretKey::from_seed([77; 32]),
            );
            friend.send(&Message::Vote(far).to_bytes()).await.unwrap();
        }
        let evidence = Equivocation::new(vote(1), vote(2)).unwrap();
        friend
            .send(&Message::Evidence(Box::new(evidence)).to_bytes())
            .await
            .unwrap();
        friend
    });
    let relayed = net.wait_for_event(1, |e| e["message"] == "equivocation evidence received");
    assert_eq!(
        relayed["masternode"],
        serde_json::json!(operator.public_key().to_string())
    );
    let top = net.top();
    net.wait_until(&[0, 1, 2], top + 3);
}

#[test]
fn a_masternode_registers_on_chain_votes_leaves_and_a_double_signing_twin_is_banned() {
    // Four genesis masternodes and a fifth node that is not in the genesis.
    let mut net = Localnet::init_with_spare(4, 1);
    for node in 0..5 {
        net.start(node);
    }
    net.wait_until(&[0, 1, 2, 3, 4], 2);
    // A light client follows nodes 0 and 1 through every set change below.
    let light = super::light::LightClient::start(
        &net,
        &net.path().join("light"),
        &[super::light::spec(&net, 0), super::light::spec(&net, 1)],
    );
    let fifth = net.key(4, "masternode.key").public_key().to_string();
    let status = result(net.rpc(4, "masternodestatus", serde_json::json!([])));
    assert_eq!(status["status"], "not registered", "{status}");
    // A registration carries the operator key's proof, so another node's wallet cannot
    // register it.
    let service = format!("127.0.0.1:{}", net.p2p_port(4));
    let foreign = net.rpc(0, "masternoderegister", serde_json::json!(["bronze", fifth, service]));
    assert_eq!(foreign["error"]["code"], -8, "{foreign}");
    // Its own wallet gets the Bronze collateral and its fees from node 0's.
    let address = result(net.rpc(4, "getnewaddress", serde_json::json!([])));
    let funding = result(net.rpc(0, "sendtoaddress", serde_json::json!([address, 1_001])));
    let waited = result(net.rpc(4, "waitfortransaction", serde_json::json!([funding, 120])));
    assert_eq!(waited["finalized"], true, "{waited}");
    net.wait_until(&[4], waited["height"].as_u64().unwrap());

    // Its own wallet registers it with Bronze collateral.
    let id = result(net.rpc(4, "masternoderegister", serde_json::json!(["bronze", fifth, service])));
    let id = id.as_str().unwrap().to_owned();
    let list = net.wait_for_rpc(0, "masternodelist", serde_json::json!([]), |list| {
        listed(list, &fifth).is_some_and(|m| m["status"] == "active")
    });
    let entry = listed(&list, &fifth).unwrap();
    assert_eq!(entry["id"], id.as_str());
    assert_eq!(entry["tier"], "bronze");
    assert_eq!(entry["power"], 1);
    assert_eq!(entry["address"], service.as_str());
    let collateral = entry["collateral"].as_str().unwrap().to_owned();
    assert!(collateral.starts_with(&format!("{id}:")), "{collateral}");

    // The collateral is locked in the wallet that paid it.
    let balances = result(net.rpc(4, "getbalances", serde_json::json!([])));
    assert_eq!(balances["mine"]["locked"], serde_json::json!(1000.0), "{balances}");
    let locked = result(net.rpc(4, "listlockedcollaterals", serde_json::json!([])));
    assert_eq!(locked[0]["outpoint"], collateral.as_str(), "{locked}");
    assert_eq!(locked[0]["masternode"], id.as_str());

    // It votes: its precommit appears in a commit certificate, and it says it is active.
    let signed_height = {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let height = net.top();
            let commit = net.rpc(0, "getcommit", serde_json::json!([height]));
            let signers = commit["result"]["signatures"].as_array().cloned().unwrap_or_default();
            if signers.iter().any(|s| s["masternode"] == fifth.as_str()) {
                break height;
            }
            assert!(
                Instant::now() < deadline,
                "the fifth masternode never signed a certificate"
            );
            net.watch_for(Duration::from_millis(200));
        }
    };
    let status = result(net.rpc(4, "masternodestatus", serde_json::json!([])));
    assert_eq!(status["status"], "active", "{status}");

    // It revokes (signed by its operator key, paid by its own wallet). Its collateral unlocks
    // once evidence of its last votes can no longer enter a block (20 blocks later on a local
    // network); spending it then deregisters it.
    let revocation = result(net.rpc(4, "masternoderevoke", serde_json::json!([])));
    let revoked = result(net.rpc(4, "waitfortransaction", serde_json::json!([revocation, 120])));
    let from = revoked["height"].as_u64().unwrap() + 20;
    let early = net.rpc(4, "masternodeunlock", serde_json::json!([id]));
    assert!(!early["error"].is_null(), "{early}");
    net.wait_until(&[4], from - 1);
    net.wait_for_rpc(4, "masternodeunlock", serde_json::json!([id]), |answer| {
        answer["result"].is_string()
    });
    net.wait_for_rpc(4, "masternodelist", serde_json::json!([]), |list| {
        listed(list, &fifth).is_none()
    });
    let balances = result(net.rpc(4, "getbalances", serde_json::json!([])));
    assert_eq!(balances["mine"]["locked"], serde_json::json!(0.0), "{balances}");

    // A twin of node 3 (same operator key, another host) double-signs; the evidence lands
    // in a block and the masternode is banned.
    let third = net.key(3, "masternode.key").public_key().to_string();
    assert!(net.terminate(3));
    let twin = net.twin_of(3);
    net.start(3);
    net.start(twin);
    let recorded = net.wait_for_event(0, |event| {
        event["message"] == "evidence recorded: masternode banned" && event["masternode"] == third.as_str()
    });
    assert_eq!(recorded["masternode"], third.as_str());
    let list = result(net.rpc(0, "masternodelist", serde_json::json!([])));
    let banned = list
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["operator"] == third.as_str())
        .unwrap();
    assert_eq!(banned["status"], "banned", "{banned}");
    assert_eq!(banned["power"], 0);
    assert!(banned["banneduntil"].as_u64().is_some());

    // The other three go on without it: later certificates lack its key.
    let after = net.top() + 3;
    net.wait_until(&[0, 1, 2], after);
    let commit = result(net.rpc(0, "getcommit", serde_json::json!([after])));
    let signers: Vec<&str> = commit["signatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["masternode"].as_str().unwrap())
        .collect();
    assert!(!signers.contains(&third.as_str()) && signers.len() == 3, "{signers:?}");
    assert!(after > signed_height);

    // Every node agrees on every block, and so on the chain state each header names (the
    // UTXO-set commitment and the masternode list after its parent).
    let heights: Vec<u64> = (0..=after).collect();
    for node in [1, 2, 4] {
        net.wait_until(&[node], after);
    }
    for height in heights {
        let hashes: Vec<serde_json::Value> = [0, 1, 2, 4]
            .iter()
            .map(|node| {
                result(net.rpc(
                    *node,
                    "getblockheader",
                    serde_json::json!([result(net.rpc(*node, "getblockhash", serde_json::json!([height])))]),
                ))
            })
            .map(|header| serde_json::json!([header["hash"], header["statehash"]]))
            .collect();
        assert!(hashes.windows(2).all(|w| w[0] == w[1]), "height {height}: {hashes:?}");
    }

    // A payment after three set changes (the fifth joined, left, the third was banned) is
    // proven final to a verifier holding only the genesis file.
    let payee = result(net.rpc(1, "getnewaddress", serde_json::json!([])));
    let txid = result(net.rpc(0, "sendtoaddress", serde_json::json!([payee, 1])));
    let waited = result(net.rpc(0, "waitfortransaction", serde_json::json!([txid, 120])));
    assert_eq!(waited["finalized"], true, "{waited}");
    net.wait_until(&[1], waited["height"].as_u64().unwrap());
    super::proofs::a_proof_verifies_offline_across_set_changes(&net, txid.as_str().unwrap());

    // The light client followed block by block across the changes, and checks the proof
    // against the block it verified.
    let height = waited["height"].as_u64().unwrap();
    light.checks_the_proof_of(&mut net, &txid, height);
    let info = light.client.call("getlightinfo", serde_json::json!([])).unwrap();
    assert!(info["conflict"].is_null(), "{info}");
    assert_eq!(info["lowestheader"], 1, "it holds every header: {info}");
}

#[test]
fn floods_of_connections_slow_handshakes_and_invalid_signatures_do_not_stop_finalization() {
    use timecoin_network::{Message, connect};
    use timecoin_primitives::{Encode, SecretKey};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    // Node 0 takes at most 8 peers (4 of them inbound); it gets ten times that many
    // connections of each kind.
    const LIMIT: usize = 8;
    let mut net = Localnet::init(3);
    let text = std::fs::read_to_string(net.config(0)).unwrap();
    std::fs::write(
        net.config(0),
        text.replace(
            "[network]\n",
            &format!("[network]\nmax_peers = {LIMIT}\nmax_outbound = {}\n", LIMIT / 2),
        ),
    )
    .unwrap();
    for node in 0..3 {
        net.start(node);
    }
    net.wait_until(&[0, 1, 2], 2);
    let hello = net.stranger_hello();
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], net.p2p_port(0)));
    let mut bad = net.payment();
    bad.inputs[0].signature.0[0] ^= 1;
    let runtime = tokio::runtime::Runtime::new().unwrap();

    // A peer relaying transactions whose signature is invalid is cut off and banned. It
    // reads what the node sends meanwhile (a peer that does not is dropped as slow).
    runtime.block_on(async move {
        let stream = TcpStream::connect(address).await.unwrap();
        let key = SecretKey::from_seed([251; 32]);
        let (secure, _) = connect(stream, &key, true, &hello, 8_000_000, DEADLINE).await.unwrap();
        let (mut reader, mut writer) = secure.into_split();
        let drained =
            tokio::spawn(
                async move { while tokio::time::timeout(DEADLINE, reader.receive()).await.unwrap().is_ok() {} },
            );
        for _ in 0..200 {
            let message = Message::Transactions(vec![bad.clone()]).to_bytes();
            if writer.send(&message).await.is_err() {
                break;
            }
        }
        drained.await.unwrap();
    });
    // Slow-loris: connections that send one byte of a handshake and stall.
    let stalled: Vec<_> = (0..10 * LIMIT)
        .map(|_| {
            runtime.spawn(async move {
                let mut stream = TcpStream::connect(address).await.ok()?;
                stream.write_all(&[0]).await.ok()?;
                let mut buffer = [0u8; 16];
                // The node must hang up (its handshake time-out), not wait forever.
                let read = tokio::time::timeout(DEADLINE, stream.read(&mut buffer)).await;
                Some(matches!(read, Ok(Ok(0) | Err(_))))
            })
        })
        .collect();
    // Complete handshakes with fresh identities, each staying connected a while.
    let joiners: Vec<_> = (0..10 * LIMIT)
        .map(|i| {
            runtime.spawn(async move {
                let stream = TcpStream::connect(address).await.ok()?;
                let key = SecretKey::from_seed([(i % 250) as u8 + 1; 32]);
                let (mut secure, _) = connect(stream, &key, true, &hello, 8_000_000, DEADLINE).await.ok()?;
                let _ = tokio::time::timeout(Duration::from_secs(5), secure.receive()).await;
                Some(())
            })
        })
        .collect();
    // Meanwhile the network goes on finalizing.
    let from = net.top();
    net.wait_until(&[0, 1, 2], from + 5);
    let hung_up = stalled
        .into_iter()
        .filter_map(|task| runtime.block_on(task).unwrap())
        .filter(|closed| *closed)
        .count();
    assert_eq!(hung_up, 10 * LIMIT, "every stalled handshake is closed by the node");
    for task in joiners {
        runtime.block_on(task).unwrap();
    }
    // It kept its masternode links through the churn, and goes on.
    let peers = result(net.rpc(0, "getpeerinfo", serde_json::json!([])));
    let masternodes = peers
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["masternode"] == true)
        .count();
    assert_eq!(masternodes, 2, "{peers}");
    let banned = result(net.rpc(0, "listbanned", serde_json::json!([])));
    assert!(!banned.as_array().unwrap().is_empty(), "the liar is banned: {banned}");
    let now = net.top();
    net.wait_until(&[0, 1, 2], now + 2);
}

/// One masternode of four is replaced by the attacker, which runs every Byzantine behaviour
/// at once with its operator key (a quarter of the power: votes for far heights, double
/// votes, equivocating proposals, forged signatures), beside attacker peers without a key
/// (swapped proposal bodies, floods of foreign votes, requests never read, every inbound slot
/// from one address, a registration and a richer spend of its collateral). The three honest
/// masternodes keep finalizing and agree on every hash (the harness fails on a conflict),
/// never build a block the pair breaks, their memory stays bounded, and they cut off and ban
/// the offenders.
#[test]
fn three_honest_masternodes_finalize_while_the_fourth_and_keyless_peers_attack() {
    use timecoin_attacker::{Attacker, Behaviour, Report};
    use timecoin_primitives::Encode;
    use tokio_util::sync::CancellationToken;

    let mut net = Localnet::init(4);
    for node in 0..3 {
        net.start(node);
    }
    net.wait_until(&[0, 1, 2], 2);
    // A payment, so that a block carries a signature for the swapped bodies to alter; it
    // funds the poison pair the keyless attackers relay.
    let (funding, registration, spend) = net.poison_pair();
    let registration_id = registration.txid();
    let sent = net.rpc(
        0,
        "sendrawtransaction",
        serde_json::json!([hex::encode(funding.to_bytes())]),
    );
    assert!(sent["error"].is_null(), "{sent}");
    let funded = result(net.rpc(
        0,
        "waitfortransaction",
        serde_json::json!([funding.txid().to_string(), 120]),
    ));
    assert_eq!(funded["finalized"], true, "{funded}");
    // Each of the pair is valid alone.
    for tx in [&registration, &spend] {
        let alone = result(net.rpc(
            0,
            "testmempoolaccept",
            serde_json::json!([[hex::encode(tx.to_bytes())]]),
        ));
        assert_eq!(alone[0]["allowed"], true, "{alone}");
    }
    let masternode = Attacker {
        hello: net.stranger_hello(),
        operator: Some(net.key(3, "masternode.key")),
        targets: (0..3)
            .map(|node| std::net::SocketAddr::from(([127, 0, 0, 1], net.p2p_port(node))))
            .collect(),
        max_frame: 8_000_000,
        poison: Vec::new(),
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let cancel = CancellationToken::new();
    let spawn = |attacker: Attacker, behaviours: Vec<Behaviour>| {
        let cancel = cancel.clone();
        runtime.spawn(async move { attacker.run(&behaviours, cancel).await })
    };
    // The poison pair goes first, from its own keyless attacker: the slot-holding behaviour
    // below fills every inbound slot loopback has, and a connection opened after it would
    // could wait for one until the test ends (on a loaded machine the spend was once never
    // finalized, which is how it would look).
    let poisoner = Attacker {
        operator: None,
        poison: vec![registration.clone(), spend.clone()],
        ..masternode.clone()
    };
    let poisoning = spawn(poisoner, vec![Behaviour::PoisonPairs]);
    let deadline = Instant::now() + DEADLINE;
    while net.rpc(0, "getrawtransaction", serde_json::json!([spend.txid().to_string()]))["error"].is_object() {
        assert!(
            Instant::now() < deadline,
            "the poison pair's spend never reached node 0"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let keyless = Attacker {
        operator: None,
        ..masternode.clone()
    };
    let attacks = [masternode, keyless].map(|attacker| spawn(attacker, Behaviour::ALL.to_vec()));
    // The double-signer's evidence is recorded: the masternode is banned on chain.
    let evidence = net.wait_for_event(0, |e| e["message"] == "evidence recorded: masternode banned");
    assert_eq!(
        evidence["masternode"],
        serde_json::json!(net.key(3, "masternode.key").public_key().to_string())
    );
    let start = net.top();
    net.wait_until(&[0, 1, 2], start + 8);
    for node in 0..3 {
        let pid = net.children[node].as_ref().unwrap().id();
        let peak = peak_rss(pid);
        assert!(peak < 1 << 30, "node {node} peaked at {peak} bytes under attack");
    }
    // Each honest node bans an offender. The attack goes on until all have: which node an
    // attacker's offences reach first varies, and 8 blocks were sometimes too few for one.
    for node in 0..3 {
        let deadline = Instant::now() + DEADLINE;
        while result(net.rpc(node, "listbanned", serde_json::json!([])))
            .as_array()
            .unwrap()
            .is_empty()
        {
            assert!(Instant::now() < deadline, "node {node} banned nobody");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    cancel.cancel();
    for attack in attacks {
        let report = runtime.block_on(attack).unwrap();
        assert!(Report::get(&report.sent) > 0, "{report:?}");
        assert!(Report::get(&report.cut_off) > 0, "nobody was cut off: {report:?}");
    }
    let poisoned = runtime.block_on(poisoning).unwrap();
    assert!(Report::get(&poisoned.sent) > 0, "{poisoned:?}");
    // Of the poison pair one was pending at a time, and the richer spend was finalized.
    let spent = result(net.rpc(
        0,
        "waitfortransaction",
        serde_json::json!([spend.txid().to_string(), 120]),
    ));
    if spent["finalized"] != true {
        let mut states = String::new();
        for node in 0..3 {
            for tx in [&registration_id, &spend.txid()] {
                let seen = net.rpc(node, "getrawtransaction", serde_json::json!([tx.to_string(), true]));
                let pooled = net.rpc(node, "getmempoolentry", serde_json::json!([tx.to_string()]));
                states.push_str(&format!("node {node} {tx}: {seen} / {pooled}\n"));
            }
        }
        panic!("the spend was not finalized: {spent}\n{states}{}", net.stderr_tails());
    }
    let now = net.top();
    net.wait_until(&[0, 1, 2], now + 2);
}
