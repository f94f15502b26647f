use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use timecoin_network::{
    BanTarget, Hello, Message, NetworkConfig, NetworkEvent, NetworkHandle, Offense, PROTOCOL_VERSION, RateConfig,
    connect, start,
};
use timecoin_primitives::{BlockHash, Encode, Hash256, PublicKey, SecretKey};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const DEADLINE: Duration = Duration::from_secs(20);

fn hello(genesis: u8) -> Hello {
    Hello {
        magic: *b"TIML",
        version: PROTOCOL_VERSION,
        genesis: BlockHash(Hash256([genesis; 32])),
        best_height: 0,
        best_hash: BlockHash::default(),
        listen_port: 0,
        masternode: false,
        lowest_height: 0,
    }
}

struct Node {
    key: SecretKey,
    handle: NetworkHandle,
    events: mpsc::Receiver<NetworkEvent>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    _hello: watch::Sender<Hello>,
    /// Events that arrived while waiting for another one.
    backlog: VecDeque<NetworkEvent>,
}

impl Node {
    async fn start(seed: u8, genesis: u8, configure: impl FnOnce(&mut NetworkConfig)) -> Node {
        let key = SecretKey::from_seed([seed; 32]);
        let mut config = NetworkConfig::new("127.0.0.1:0".parse().unwrap());
        config.dial_interval = Duration::from_millis(100);
        configure(&mut config);
        let (hello_tx, hello_rx) = watch::channel(hello(genesis));
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let (handle, events) = start(config, key.clone(), hello_rx, cancel.clone(), &tracker)
            .await
            .unwrap();
        // Advertise the real listening port, as the node will.
        hello_tx.send_modify(|h| h.listen_port = handle.local_address().port());
        Node {
            key,
            handle,
            events,
            cancel,
            tracker,
            _hello: hello_tx,
            backlog: VecDeque::new(),
        }
    }

    /// A node that introduces itself as a masternode.
    async fn start_masternode(seed: u8, configure: impl FnOnce(&mut NetworkConfig)) -> Node {
        let node = Node::start(seed, 5, configure).await;
        node._hello.send_modify(|h| h.masternode = true);
        node
    }

    fn id(&self) -> PublicKey {
        self.key.public_key()
    }

    fn address(&self) -> SocketAddr {
        self.handle.local_address()
    }

    /// The first event matching `wanted`, within the deadline; others are kept for later.
    async fn expect(&mut self, wanted: impl Fn(&NetworkEvent) -> bool) -> NetworkEvent {
        if let Some(index) = self.backlog.iter().position(&wanted) {
            return self.backlog.remove(index).expect("index is in range");
        }
        let (events, backlog) = (&mut self.events, &mut self.backlog);
        let found = tokio::time::timeout(DEADLINE, async {
            loop {
                match events.recv().await {
                    Some(event) if wanted(&event) => return event,
                    Some(event) => backlog.push_back(event),
                    None => panic!("the service stopped"),
                }
            }
        })
        .await;
        found.expect("event within the deadline")
    }

    async fn connected_to(&mut self, peer: PublicKey) {
        self.expect(|e| matches!(e, NetworkEvent::Connected { peer: p, .. } if *p == peer))
            .await;
    }

    async fn shutdown(self) {
        self.cancel.cancel();
        self.tracker.close();
        tokio::time::timeout(DEADLINE, self.tracker.wait())
            .await
            .expect("every task stops on cancel");
    }
}

#[tokio::test]
async fn bootstrapped_nodes_connect_and_messages_reach_every_peer() {
    let mut a = Node::start(1, 5, |_| {}).await;
    let a_address = a.address();
    let mut b = Node::start(2, 5, |c| c.bootstrap = vec![a_address]).await;
    let mut c = Node::start(3, 5, |c| c.bootstrap = vec![a_address]).await;
    b.connected_to(a.id()).await;
    c.connected_to(a.id()).await;
    a.connected_to(b.id()).await;
    a.connected_to(c.id()).await;
    assert_eq!(a.handle.peers().await.len(), 2);

    let inventory = Message::Inventory(Vec::new());
    a.handle.broadcast(&inventory).await;
    for node in [&mut b, &mut c] {
        let from = a.id();
        node.expect(|e| matches!(e, NetworkEvent::Message { peer, message } if *peer == from && *message == inventory))
            .await;
    }
    let from = b.id();
    let request = Message::GetBlocks { from: 1, count: 1 };
    b.handle.send(a.id(), &request).await;
    a.expect(|e| matches!(e, NetworkEvent::Message { peer, message } if *peer == from && *message == request))
        .await;

    // Shutting B down is seen by A, and every task of B stops.
    let b_id = b.id();
    b.shutdown().await;
    a.expect(|e| matches!(e, NetworkEvent::Disconnected { peer, .. } if *peer == b_id))
        .await;
    a.shutdown().await;
    c.shutdown().await;
}

#[tokio::test]
async fn a_node_of_another_genesis_is_refused_with_the_reason_and_not_dialled_again() {
    let mut a = Node::start(1, 5, |_| {}).await;
    let a_address = a.address();
    let mut stranger = Node::start(2, 6, |c| c.bootstrap = vec![a_address]).await;
    let friend = Node::start(3, 5, |c| c.bootstrap = vec![a_address]).await;
    let refused = a
        .expect(|e| matches!(e, NetworkEvent::Refused { reason, .. } if reason.contains("genesis")))
        .await;
    assert!(matches!(refused, NetworkEvent::Refused { .. }));
    // The stranger saw the same reason, and bans the address it dialled.
    stranger
        .expect(|e| matches!(e, NetworkEvent::Refused { address, reason, banned: true } if *address == a_address && reason.contains("genesis")))
        .await;
    a.connected_to(friend.id()).await;
    let peers = a.handle.peers().await;
    assert_eq!(peers.iter().map(|p| p.peer).collect::<Vec<_>>(), vec![friend.id()]);
    // With dials every 100 ms, a second attempt would show within a second; none comes.
    let retried = tokio::time::timeout(
        Duration::from_secs(1),
        stranger.expect(|e| matches!(e, NetworkEvent::Refused { .. })),
    )
    .await;
    assert!(retried.is_err(), "the banned address was dialled again");
    for node in [a, stranger, friend] {
        node.shutdown().await;
    }
}

/// Connects a bare client (no service) to `node` with identity `seed`.
async fn client(node: &Node, seed: u8) -> Result<timecoin_network::SecureStream<TcpStream>, String> {
    let stream = TcpStream::connect(node.address()).await.map_err(|e| e.to_string())?;
    connect(
        stream,
        &SecretKey::from_seed([seed; 32]),
        true,
        &hello(5),
        2_100_000,
        DEADLINE,
    )
    .await
    .map(|(secure, _)| secure)
    .map_err(|e| e.to_string())
}

#[tokio::test]
async fn a_flooding_peer_is_disconnected_and_banned_while_others_stay() {
    let mut a = Node::start(1, 5, |c| {
        c.rates = RateConfig {
            control: (1, 10),
            ..RateConfig::default()
        }
    })
    .await;
    let a_address = a.address();
    let friend = Node::start(3, 5, |c| c.bootstrap = vec![a_address]).await;
    a.connected_to(friend.id()).await;
    let mut flooder = client(&a, 9).await.unwrap();
    let flooder_id = SecretKey::from_seed([9; 32]).public_key();
    a.connected_to(flooder_id).await;
    for _ in 0..200 {
        if flooder.send(&Message::GetPeers.to_bytes()).await.is_err() {
            break;
        }
    }
    let event = a
        .expect(|e| matches!(e, NetworkEvent::Disconnected { peer, .. } if *peer == flooder_id))
        .await;
    assert!(
        matches!(&event, NetworkEvent::Disconnected { reason, .. } if reason.contains("rate")),
        "{event:?}"
    );
    // Banned: it cannot come back, while the friend is still connected.
    let mut again = client(&a, 9).await.unwrap();
    let _ = again.send(&Message::GetPeers.to_bytes()).await;
    assert!(again.receive().await.is_err(), "a banned peer is dropped");
    assert_eq!(
        a.handle.peers().await.iter().map(|p| p.peer).collect::<Vec<_>>(),
        vec![friend.id()]
    );
    a.shutdown().await;
    friend.shutdown().await;
}

#[tokio::test]
async fn garbage_and_oversize_frames_get_the_sender_banned() {
    let mut a = Node::start(1, 5, |c| c.max_frame = 10_000).await;
    let mut garbage = client(&a, 7).await.unwrap();
    let garbage_id = SecretKey::from_seed([7; 32]).public_key();
    a.connected_to(garbage_id).await;
    garbage.send(&[0xff, 1, 2, 3]).await.unwrap();
    let event = a
        .expect(|e| matches!(e, NetworkEvent::Disconnected { peer, .. } if *peer == garbage_id))
        .await;
    assert!(
        matches!(&event, NetworkEvent::Disconnected { reason, .. } if reason.contains("undecodable")),
        "{event:?}"
    );

    let stream = TcpStream::connect(a.address()).await.unwrap();
    let (mut big, _) = connect(
        stream,
        &SecretKey::from_seed([8; 32]),
        true,
        &hello(5),
        100_000,
        DEADLINE,
    )
    .await
    .unwrap();
    let big_id = SecretKey::from_seed([8; 32]).public_key();
    a.connected_to(big_id).await;
    big.send(&vec![0; 50_000]).await.unwrap();
    let event = a
        .expect(|e| matches!(e, NetworkEvent::Disconnected { peer, .. } if *peer == big_id))
        .await;
    assert!(
        matches!(&event, NetworkEvent::Disconnected { reason, .. } if reason.contains("limit")),
        "{event:?}"
    );
    a.shutdown().await;
}

#[tokio::test]
async fn a_full_node_evicts_the_newest_inbound_peer_but_never_a_masternode() {
    let mut a = Node::start(1, 5, |c| c.max_inbound = 2).await;
    let id = |seed: u8| SecretKey::from_seed([seed; 32]).public_key();
    a.handle.set_masternodes([id(2)]).await;
    let _masternode = client(&a, 2).await.unwrap();
    a.connected_to(id(2)).await;
    let _second = client(&a, 3).await.unwrap();
    a.connected_to(id(3)).await;
    // Full: a newcomer takes the place of the newest ordinary peer, not the masternode's.
    let _third = client(&a, 4).await.unwrap();
    a.connected_to(id(4)).await;
    let event = a.expect(|e| matches!(e, NetworkEvent::Disconnected { .. })).await;
    assert!(
        matches!(&event, NetworkEvent::Disconnected { peer, reason } if *peer == id(3) && reason.contains("evicted")),
        "{event:?}"
    );
    let mut peers: Vec<PublicKey> = a.handle.peers().await.into_iter().map(|p| p.peer).collect();
    peers.sort();
    let mut expected = vec![id(2), id(4)];
    expected.sort();
    assert_eq!(peers, expected);
    a.shutdown().await;
}

#[tokio::test]
async fn peers_learn_of_each_other_through_peer_exchange() {
    let mut hub = Node::start(1, 5, |_| {}).await;
    let hub_address = hub.address();
    let mut b = Node::start(2, 5, |c| c.bootstrap = vec![hub_address]).await;
    hub.connected_to(b.id()).await;
    // C knows only the hub, and finds B through the hub's `Peers` answer.
    let mut c = Node::start(3, 5, |c| c.bootstrap = vec![hub_address]).await;
    c.connected_to(b.id()).await;
    b.connected_to(c.id()).await;
    for node in [hub, b, c] {
        node.shutdown().await;
    }
}

#[tokio::test]
async fn the_address_book_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("peers.txt");
    let mut a = Node::start(1, 5, |_| {}).await;
    let a_address = a.address();
    let b = Node::start(2, 5, |c| {
        c.bootstrap = vec![a_address];
        c.address_book = Some(book.clone());
    })
    .await;
    a.connected_to(b.id()).await;
    b.shutdown().await;
    let text = std::fs::read_to_string(&book).unwrap();
    assert!(text.contains(&format!("{a_address} {}", a.id())), "{text}");
    // Restarted without bootstrap peers, B dials the address it remembers.
    let b = Node::start(2, 5, |c| c.address_book = Some(book.clone())).await;
    a.connected_to(b.id()).await;
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn masternodes_find_each_other_and_evict_ordinary_peers_to_link_up() {
    let id = |seed: u8| SecretKey::from_seed([seed; 32]).public_key();
    let masternodes = [id(11), id(12), id(13)];
    // An ordinary hub, which knows the set but holds no masternode key.
    let hub = Node::start(1, 5, |_| {}).await;
    hub.handle.set_masternodes(masternodes).await;
    let hub_address = hub.address();
    let mut nodes = Vec::new();
    for seed in [11, 12, 13] {
        let node = Node::start_masternode(seed, |c| {
            c.bootstrap = vec![hub_address];
            // One outbound slot, taken by the hub: only masternode links can be added.
            c.max_outbound = 1;
        })
        .await;
        node.handle.set_masternodes(masternodes).await;
        nodes.push(node);
    }
    for node in &mut nodes {
        for other in masternodes {
            if other != node.id() {
                node.connected_to(other).await;
            }
        }
    }
    hub.shutdown().await;
    for node in nodes {
        node.shutdown().await;
    }
}

#[tokio::test]
async fn two_nodes_dialling_each_other_end_with_one_connection() {
    let mut a = Node::start(1, 5, |_| {}).await;
    let a_address = a.address();
    let mut b = Node::start(2, 5, |c| c.bootstrap = vec![a_address]).await;
    b.connected_to(a.id()).await;
    a.connected_to(b.id()).await;
    // Now A also dials B, as if both had been started with each other as bootstrap.
    let b_address = b.address();
    let mut a2 = Node::start(1, 5, |c| c.bootstrap = vec![b_address]).await;
    // A second instance with A's key is a different process with the same identity; B keeps
    // exactly one connection for that identity.
    a2.connected_to(b.id()).await;
    let peers = b.handle.peers().await;
    assert_eq!(peers.iter().filter(|p| p.peer == a.id()).count(), 1);
    for node in [a, a2, b] {
        node.shutdown().await;
    }
}

#[tokio::test]
async fn unsolicited_answers_and_offenses_the_node_reports_get_a_peer_banned() {
    let mut a = Node::start(1, 5, |_| {}).await;
    let id = |seed: u8| SecretKey::from_seed([seed; 32]).public_key();
    // Five `Peers` answers nobody asked for (20 points each) reach the ban threshold.
    let mut chatty = client(&a, 2).await.unwrap();
    a.connected_to(id(2)).await;
    for _ in 0..5 {
        chatty.send(&Message::Peers(Vec::new()).to_bytes()).await.unwrap();
    }
    let event = a
        .expect(|e| matches!(e, NetworkEvent::Disconnected { peer, .. } if *peer == id(2)))
        .await;
    assert!(
        matches!(&event, NetworkEvent::Disconnected { reason, .. } if reason.contains("nobody asked")),
        "{event:?}"
    );
    // The node finds ten invalid transactions from another peer (10 points each).
    let _relayer = client(&a, 3).await.unwrap();
    a.connected_to(id(3)).await;
    for _ in 0..9 {
        a.handle.report(id(3), Offense::InvalidTransaction).await;
    }
    assert_eq!(a.handle.peers().await.len(), 1, "below the threshold the peer stays");
    a.handle.report(id(3), Offense::InvalidTransaction).await;
    a.expect(|e| matches!(e, NetworkEvent::Disconnected { peer, .. } if *peer == id(3)))
        .await;
    // Both are banned: they are dropped right after the handshake.
    for seed in [2, 3] {
        let mut again = client(&a, seed).await.unwrap();
        assert!(again.receive().await.is_err(), "peer {seed} came back");
    }
    a.shutdown().await;
}

#[tokio::test]
async fn operator_bans_drop_peers_and_can_be_lifted() {
    let mut a = Node::start(1, 5, |_| {}).await;
    let a_address = a.address();
    let mut b = Node::start(2, 5, |c| c.bootstrap = vec![a_address]).await;
    a.connected_to(b.id()).await;
    a.handle
        .ban(BanTarget::Identity(b.id()), Duration::from_secs(600))
        .await;
    let b_id = b.id();
    a.expect(
        |e| matches!(e, NetworkEvent::Disconnected { peer, reason } if *peer == b_id && reason.contains("banned")),
    )
    .await;
    let bans = a.handle.bans().await;
    assert!(
        bans.iter()
            .any(|(target, left)| *target == BanTarget::Identity(b_id) && left.as_secs() > 590)
    );
    assert!(a.handle.unban(BanTarget::Identity(b_id)).await);
    assert!(!a.handle.unban(BanTarget::Identity(b_id)).await, "already lifted");
    // B keeps dialling A and gets back in.
    a.connected_to(b_id).await;
    // An address ban: B, dialled at its listening address by A, is not dialled.
    b.handle
        .ban(BanTarget::Address(a_address), Duration::from_secs(600))
        .await;
    let a_id = a.id();
    b.expect(|e| matches!(e, NetworkEvent::Disconnected { peer, .. } if *peer == a_id))
        .await;
    assert_eq!(b.handle.bans().await.len(), 1);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn one_address_cannot_take_every_inbound_slot() {
    let mut a = Node::start(1, 5, |c| c.max_inbound_per_ip = 3).await;
    // Ten identities from one address, each completing its handshake in turn (one address
    // has at most one handshake in flight here, so a refused one is tried again).
    let mut held = Vec::new();
    for seed in 10..20u8 {
        for _ in 0..100 {
            if let Ok(stream) = client(&a, seed).await {
                held.push(stream);
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    assert_eq!(held.len(), 10, "every handshake completes in turn");
    // Another address still gets in; once it has, every earlier arrival was decided.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let stream = socket.connect(a.address()).await.unwrap();
    let other = SecretKey::from_seed([30; 32]);
    let (_other, _) = connect(stream, &other, true, &hello(5), 2_100_000, DEADLINE)
        .await
        .unwrap();
    a.connected_to(other.public_key()).await;
    let peers = a.handle.peers().await;
    let from_one = peers
        .iter()
        .filter(|p| p.address.ip().to_string() == "127.0.0.1")
        .count();
    assert_eq!(from_one, 3, "{peers:?}");
    assert_eq!(peers.len(), 4);
    a.shutdown().await;
}
