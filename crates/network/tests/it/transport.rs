//! The transport and handshake over real loopback TCP connections.

use std::time::Duration;

use timecoin_network::{
    HandshakeError, Hello, PROTOCOL_VERSION, SecureStream, TransportError, connect, keeps_outbound,
};
use timecoin_primitives::{BlockHash, Encode, Hash256, SecretKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MAX_FRAME: usize = 2_100_000;
const TIMEOUT: Duration = Duration::from_secs(10);

fn hello(genesis: u8) -> Hello {
    Hello {
        magic: *b"TIML",
        version: PROTOCOL_VERSION,
        genesis: BlockHash(Hash256([genesis; 32])),
        best_height: 7,
        best_hash: BlockHash(Hash256([1; 32])),
        listen_port: 24200,
        masternode: true,
        lowest_height: 3,
    }
}

type Admitted = Result<(SecureStream<TcpStream>, Hello), HandshakeError>;

/// Connects a dialer and a listener with the given identities and hellos.
async fn pair(a: (&SecretKey, Hello), b: (&SecretKey, Hello), max_a: usize, max_b: usize) -> (Admitted, Admitted) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (b_key, b_hello) = (b.0.clone(), b.1);
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        connect(stream, &b_key, false, &b_hello, max_b, TIMEOUT).await
    });
    let stream = TcpStream::connect(address).await.unwrap();
    let dialer = connect(stream, a.0, true, &a.1, max_a, TIMEOUT).await;
    (dialer, server.await.unwrap())
}

#[tokio::test]
async fn peers_on_one_chain_authenticate_and_exchange_frames_of_any_size() {
    let (alice, bob) = (SecretKey::from_seed([1; 32]), SecretKey::from_seed([2; 32]));
    let (a, b) = pair((&alice, hello(5)), (&bob, hello(5)), MAX_FRAME, MAX_FRAME).await;
    let (mut a, b_hello_seen_by_a) = a.unwrap();
    let (mut b, a_hello_seen_by_b) = b.unwrap();
    assert_eq!(a.peer(), bob.public_key());
    assert_eq!(b.peer(), alice.public_key());
    assert_eq!((b_hello_seen_by_a, a_hello_seen_by_b), (hello(5), hello(5)));
    let big: Vec<u8> = (0..2_000_000u32).map(|i| (i % 251) as u8).collect();
    for frame in [Vec::new(), b"ping".to_vec(), vec![7; 65_519], vec![8; 65_520], big] {
        a.send(&frame).await.unwrap();
        assert_eq!(b.receive().await.unwrap(), frame);
        b.send(&frame).await.unwrap();
        assert_eq!(a.receive().await.unwrap(), frame);
    }
}

#[tokio::test]
async fn a_peer_of_another_genesis_or_network_is_refused_with_the_reason() {
    let (alice, bob) = (SecretKey::from_seed([1; 32]), SecretKey::from_seed([2; 32]));
    let (a, b) = pair((&alice, hello(5)), (&bob, hello(6)), MAX_FRAME, MAX_FRAME).await;
    for result in [a, b] {
        let error = result.unwrap_err();
        assert!(matches!(error, HandshakeError::WrongGenesis { .. }), "{error}");
        assert!(error.deserves_ban());
    }
    let mut testnet = hello(5);
    testnet.magic = *b"TIMT";
    let (a, _) = pair((&alice, hello(5)), (&bob, testnet), MAX_FRAME, MAX_FRAME).await;
    let error = a.unwrap_err();
    assert!(matches!(error, HandshakeError::WrongNetwork { .. }), "{error}");
    assert!(error.to_string().contains("another network"));
    let mut newer = hello(5);
    newer.version = PROTOCOL_VERSION + 1;
    let (a, _) = pair((&alice, hello(5)), (&bob, newer), MAX_FRAME, MAX_FRAME).await;
    assert!(matches!(a.unwrap_err(), HandshakeError::IncompatibleVersion { .. }));
}

#[tokio::test]
async fn a_version_1_peer_is_admitted_and_serves_every_block() {
    let (alice, bob) = (SecretKey::from_seed([1; 32]), SecretKey::from_seed([2; 32]));
    let mut older = hello(5);
    older.version = 1;
    // Its hello has no lowest height (83 bytes): it holds every block.
    assert_eq!(older.to_bytes().len(), 83);
    assert_eq!(hello(5).to_bytes().len(), 91);
    let (a, b) = pair((&alice, hello(5)), (&bob, older), MAX_FRAME, MAX_FRAME).await;
    let (_, theirs) = a.unwrap();
    assert_eq!((theirs.version, theirs.lowest_height), (1, 0));
    // And a version-1 hello's sender admits a version-2 peer.
    assert_eq!(b.unwrap().1.lowest_height, 3);
    // A node says version 2 only once it has a lowest height to say.
    let mut ours = hello(5);
    ours.set_lowest_height(0);
    assert_eq!((ours.version, ours.to_bytes().len()), (1, 83));
    ours.set_lowest_height(9);
    assert_eq!((ours.version, ours.to_bytes().len()), (PROTOCOL_VERSION, 91));
}

#[tokio::test]
async fn connecting_to_oneself_is_detected() {
    let alice = SecretKey::from_seed([1; 32]);
    let (a, b) = pair((&alice, hello(5)), (&alice, hello(5)), MAX_FRAME, MAX_FRAME).await;
    assert!(matches!(a.unwrap_err(), HandshakeError::SelfConnection));
    let error = b.unwrap_err();
    assert!(matches!(error, HandshakeError::SelfConnection), "{error}");
    assert!(!error.deserves_ban());
}

#[tokio::test]
async fn an_oversize_frame_is_refused_before_it_is_read() {
    let (alice, bob) = (SecretKey::from_seed([1; 32]), SecretKey::from_seed([2; 32]));
    // Bob accepts at most 100 kB; Alice is willing to send more.
    let (a, b) = pair((&alice, hello(5)), (&bob, hello(5)), MAX_FRAME, 100_000).await;
    let (mut a, _) = a.unwrap();
    let (mut b, _) = b.unwrap();
    a.send(&vec![0; 100_000]).await.unwrap();
    assert_eq!(b.receive().await.unwrap().len(), 100_000);
    a.send(&vec![0; 100_001]).await.unwrap();
    match b.receive().await {
        Err(TransportError::FrameTooLarge {
            size: 100_001,
            limit: 100_000,
        }) => {}
        other => panic!("expected FrameTooLarge, got {other:?}"),
    }
    // And a sender never sends more than its own limit.
    assert!(matches!(
        b.send(&vec![0; 100_001]).await,
        Err(TransportError::FrameTooLarge { .. })
    ));
}

/// A listener running the handshake within `timeout`; returns its address and its result.
async fn listening(timeout: Duration) -> (std::net::SocketAddr, tokio::task::JoinHandle<Admitted>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        connect(
            stream,
            &SecretKey::from_seed([2; 32]),
            false,
            &hello(5),
            MAX_FRAME,
            timeout,
        )
        .await
    });
    (address, server)
}

#[tokio::test]
async fn garbage_instead_of_a_handshake_is_an_error_not_a_crash() {
    // Too long for the first handshake message.
    let (address, server) = listening(TIMEOUT).await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(&[0, 200]).await.unwrap();
    stream.write_all(&[0x42; 200]).await.unwrap();
    let error = server.await.unwrap().unwrap_err();
    assert!(
        matches!(error, HandshakeError::Transport(TransportError::Malformed(_))),
        "{error}"
    );
    assert!(error.deserves_ban());

    // A first message of the right size, then a third that does not decrypt.
    let (address, server) = listening(TIMEOUT).await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(&[0, 32]).await.unwrap();
    stream.write_all(&[0x42; 32]).await.unwrap();
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await.unwrap();
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut reply).await.unwrap();
    stream.write_all(&[0, 64]).await.unwrap();
    stream.write_all(&[0x17; 64]).await.unwrap();
    let error = server.await.unwrap().unwrap_err();
    assert!(
        matches!(error, HandshakeError::Transport(TransportError::Noise(_))),
        "{error}"
    );
    assert!(error.deserves_ban());
}

#[tokio::test(start_paused = true)]
async fn a_silent_peer_times_out() {
    let (address, server) = listening(Duration::from_secs(5)).await;
    let _silent = TcpStream::connect(address).await.unwrap();
    let error = server.await.unwrap().unwrap_err();
    assert!(
        matches!(error, HandshakeError::Transport(TransportError::Timeout(_))),
        "{error}"
    );
}

#[test]
fn simultaneous_dials_resolve_to_the_same_single_connection_on_both_sides() {
    let (a, b) = (
        SecretKey::from_seed([1; 32]).public_key(),
        SecretKey::from_seed([2; 32]).public_key(),
    );
    // Exactly one of the two nodes keeps its outbound connection; the other keeps the
    // inbound one, which is that same connection.
    assert_ne!(keeps_outbound(&a, &b), keeps_outbound(&b, &a));
}
