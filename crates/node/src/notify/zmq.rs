//! The ZMQ publisher (`[zmq]`): Bitcoin Core's topics and framing, on the pure-Rust
//! `zeromq` crate's PUB sockets.
//!
//! Each message has three frames, as Bitcoin Core sends them: the topic, the body, and a
//! 4-byte little-endian sequence number that each topic counts on its own (a subscriber sees
//! a gap when it missed messages). Bodies: `hashblock` and `hashtx` the 32 bytes whose hex is
//! the hash the API shows; `rawblock` and `rawtx` the canonical encoding (`getblock HASH 0`,
//! `getrawtransaction TXID`); `sequence` the 32-byte hash, a label (`C` a block finalized,
//! `A` a transaction admitted to the mempool) and, after `A`, an 8-byte little-endian count
//! of the admissions published. No block is ever disconnected, so there is no `D`.
//!
//! Topics that name the same address share one socket. Sending never waits: a subscriber
//! whose queue is full misses the message (ZMQ's PUB rule), one that is gone is dropped.
//! The crate's sockets listen on Unix sockets in a private directory; the configured TCP
//! addresses are served by the guard (`guard.rs`), which lets only a subscriber's frames
//! through.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;

use anyhow::{Context, bail};
use bytes::Bytes;
use futures_util::FutureExt;
use serde::Deserialize;
use timecoin_primitives::{BlockHash, TxId};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};
use zeromq::{Socket, SocketSend, ZmqMessage};

/// `[zmq]`: where each topic is published (`tcp://IP:PORT`), as Bitcoin Core's
/// `-zmqpub<topic>` options; none by default.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ZmqSection {
    pub(crate) pubhashblock: Option<String>,
    pub(crate) pubhashtx: Option<String>,
    pub(crate) pubrawblock: Option<String>,
    pub(crate) pubrawtx: Option<String>,
    pub(crate) pubsequence: Option<String>,
}

/// The topics, in the order of their configuration keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Topic {
    HashBlock,
    HashTx,
    RawBlock,
    RawTx,
    Sequence,
}

impl Topic {
    fn name(self) -> &'static str {
        match self {
            Topic::HashBlock => "hashblock",
            Topic::HashTx => "hashtx",
            Topic::RawBlock => "rawblock",
            Topic::RawTx => "rawtx",
            Topic::Sequence => "sequence",
        }
    }
}

impl ZmqSection {
    /// Each configured topic and its address.
    fn topics(&self) -> Vec<(Topic, &str)> {
        [
            (Topic::HashBlock, &self.pubhashblock),
            (Topic::HashTx, &self.pubhashtx),
            (Topic::RawBlock, &self.pubrawblock),
            (Topic::RawTx, &self.pubrawtx),
            (Topic::Sequence, &self.pubsequence),
        ]
        .into_iter()
        .filter_map(|(topic, address)| address.as_deref().map(|a| (topic, a)))
        .collect()
    }

    /// Refuses an address that is not `tcp://IP:PORT`, naming its key.
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        for (topic, address) in self.topics() {
            parse_address(address).with_context(|| format!("[zmq] pub{}", topic.name()))?;
        }
        Ok(())
    }
}

/// `tcp://IP:PORT`, the one transport served.
fn parse_address(address: &str) -> anyhow::Result<SocketAddr> {
    let Some(rest) = address.strip_prefix("tcp://") else {
        bail!("{address:?} is not tcp://IP:PORT (the only transport served)");
    };
    rest.parse()
        .with_context(|| format!("{address:?} is not tcp://IP:PORT"))
}

/// One bound socket and the topics it carries.
struct Endpoint {
    address: String,
    socket: zeromq::PubSocket,
}

/// The bound sockets, and each topic's socket and sequence number.
pub(crate) struct Publisher {
    endpoints: Vec<Endpoint>,
    /// The private directory (0700) of the crate's Unix sockets, removed when dropped.
    _sockets: Option<tempfile::TempDir>,
    /// Each configured topic: the index of its endpoint, and its next sequence number.
    topics: BTreeMap<Topic, (usize, u32)>,
    /// Admissions published on `sequence` so far.
    admissions: u64,
}

impl Publisher {
    /// Binds a PUB socket for each distinct address of `config`, behind its guard (owned by
    /// `tracker`, stopped by `cancel`).
    pub(crate) async fn bind(
        config: &ZmqSection,
        cancel: &CancellationToken,
        tracker: &TaskTracker,
    ) -> anyhow::Result<Publisher> {
        config.validate()?;
        let topics = config.topics();
        let sockets = if topics.is_empty() {
            None
        } else {
            Some(
                tempfile::Builder::new()
                    .prefix("timed-zmq")
                    .tempdir()
                    .context("[zmq]: creating the directory of the publisher's sockets")?,
            )
        };
        let mut publisher = Publisher {
            endpoints: Vec::new(),
            _sockets: None,
            topics: BTreeMap::new(),
            admissions: 0,
        };
        for (topic, address) in topics {
            let index = match publisher.endpoints.iter().position(|e| e.address == address) {
                Some(index) => index,
                None => {
                    let key = format!("[zmq] pub{}", topic.name());
                    let directory = sockets.as_ref().map(|d| d.path()).unwrap_or(std::path::Path::new("."));
                    let inner = directory.join(format!("{}.sock", publisher.endpoints.len()));
                    let mut socket = zeromq::PubSocket::new();
                    socket
                        .bind(&format!("ipc://{}", inner.display()))
                        .await
                        .with_context(|| format!("{key}: binding {}", inner.display()))?;
                    let listener = tokio::net::TcpListener::bind(parse_address(address)?)
                        .await
                        .with_context(|| format!("{key}: binding {address}"))?;
                    super::guard::serve(listener, inner, cancel.clone(), tracker)
                        .with_context(|| format!("{key}: serving {address}"))?;
                    info!(address, "publishing ZMQ notifications");
                    publisher.endpoints.push(Endpoint {
                        address: address.to_owned(),
                        socket,
                    });
                    publisher.endpoints.len() - 1
                }
            };
            publisher.topics.insert(topic, (index, 0));
        }
        publisher._sockets = sockets;
        Ok(publisher)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.topics.is_empty()
    }

    /// Whether a transaction topic is published.
    pub(crate) fn wants_transactions(&self) -> bool {
        [Topic::HashTx, Topic::RawTx, Topic::Sequence]
            .iter()
            .any(|t| self.topics.contains_key(t))
    }

    /// `(type, address)` of each topic, as `getzmqnotifications` lists them.
    pub(crate) fn notifications(&self) -> Vec<(String, String)> {
        self.topics
            .iter()
            .filter_map(|(topic, (index, _))| {
                let endpoint = self.endpoints.get(*index)?;
                Some((format!("pub{}", topic.name()), endpoint.address.clone()))
            })
            .collect()
    }

    /// Sends `body` on `topic`, if published, with its sequence number.
    async fn publish(&mut self, topic: Topic, body: impl FnOnce() -> Vec<u8>) {
        let Some((index, sequence)) = self.topics.get_mut(&topic) else {
            return;
        };
        let Some(endpoint) = self.endpoints.get_mut(*index) else {
            return;
        };
        let mut message = ZmqMessage::from(Bytes::from_static(topic.name().as_bytes()));
        message.push_back(Bytes::from(body()));
        message.push_back(Bytes::copy_from_slice(&sequence.to_le_bytes()));
        *sequence = sequence.wrapping_add(1);
        // zeromq 0.4.1 panics on a send error other than a broken pipe or a full queue (an
        // unimplemented branch of its own): caught here, it closes this socket's topics,
        // not the notification task.
        match AssertUnwindSafe(endpoint.socket.send(message)).catch_unwind().await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => warn!(topic = topic.name(), %error, "a ZMQ notification could not be sent"),
            Err(_) => {
                error!(
                    address = endpoint.address,
                    "the ZMQ socket failed; its topics are no longer published"
                );
                let failed = *index;
                self.topics.retain(|_, (index, _)| *index != failed);
            }
        }
    }

    /// A transaction, admitted or finalized: `hashtx` and `rawtx`.
    pub(crate) async fn transaction(&mut self, txid: &TxId, raw: impl FnOnce() -> Vec<u8>) {
        self.publish(Topic::HashTx, || txid.0.0.to_vec()).await;
        self.publish(Topic::RawTx, raw).await;
    }

    /// A transaction admitted to the mempool: `sequence` with `A`.
    pub(crate) async fn admitted(&mut self, txid: &TxId) {
        let count = self.admissions;
        self.publish(Topic::Sequence, || {
            let mut body = txid.0.0.to_vec();
            body.push(b'A');
            body.extend_from_slice(&count.to_le_bytes());
            body
        })
        .await;
        self.admissions = self.admissions.wrapping_add(1);
    }

    /// A finalized block: `hashblock`, `rawblock` and `sequence` with `C`.
    pub(crate) async fn block(&mut self, hash: &BlockHash, raw: impl FnOnce() -> Vec<u8>) {
        self.publish(Topic::HashBlock, || hash.0.0.to_vec()).await;
        self.publish(Topic::RawBlock, raw).await;
        self.publish(Topic::Sequence, || {
            let mut body = hash.0.0.to_vec();
            body.push(b'C');
            body
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use timecoin_primitives::Hash256;
    use zeromq::{SocketRecv, SubSocket};

    use super::*;

    /// A loopback port nobody listens on, and its `tcp://` address.
    fn free_address() -> (u16, String) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        (port, format!("tcp://127.0.0.1:{port}"))
    }

    /// The topic, body and sequence number of a message.
    fn frames_of(message: &ZmqMessage) -> (Vec<u8>, Vec<u8>, u32) {
        let frames: Vec<Vec<u8>> = message.iter().map(|f| f.to_vec()).collect();
        assert_eq!(frames.len(), 3, "Bitcoin Core's framing: topic, body, sequence");
        let sequence = u32::from_le_bytes(frames[2].as_slice().try_into().unwrap());
        (frames[0].clone(), frames[1].clone(), sequence)
    }

    #[test]
    fn addresses_other_than_tcp_ip_port_are_refused_by_key() {
        let bad = ZmqSection {
            pubrawtx: Some("ipc:///tmp/x".to_owned()),
            ..ZmqSection::default()
        };
        let error = format!("{:#}", bad.validate().unwrap_err());
        assert!(error.starts_with("[zmq] pubrawtx"), "{error}");
        let host = ZmqSection {
            pubhashtx: Some("tcp://localhost:28332".to_owned()),
            ..ZmqSection::default()
        };
        assert!(host.validate().is_err());
    }

    #[tokio::test]
    async fn a_subscriber_that_never_reads_misses_messages_and_never_blocks_the_publisher() {
        let (_, address) = free_address();
        let config = ZmqSection {
            pubrawtx: Some(address.clone()),
            pubhashtx: Some(address.clone()),
            ..ZmqSection::default()
        };
        let (cancel, tracker) = (CancellationToken::new(), TaskTracker::new());
        let mut publisher = Publisher::bind(&config, &cancel, &tracker).await.unwrap();
        assert_eq!(
            publisher.notifications(),
            vec![
                ("pubhashtx".to_owned(), address.clone()),
                ("pubrawtx".to_owned(), address.clone())
            ]
        );
        let mut slow = SubSocket::new();
        slow.connect(&address).await.unwrap();
        slow.subscribe("rawtx").await.unwrap();
        let mut live = SubSocket::new();
        live.connect(&address).await.unwrap();
        live.subscribe("hashtx").await.unwrap();
        // A subscriber misses what was published before its subscription arrived: publish
        // until the live one hears something (and so the slow one is subscribed too).
        let probe = TxId(Hash256([1; 32]));
        loop {
            publisher.transaction(&probe, || vec![0; 8]).await;
            if let Ok(message) = tokio::time::timeout(Duration::from_millis(100), live.recv()).await {
                let (topic, body, _) = frames_of(&message.unwrap());
                assert_eq!((topic.as_slice(), body.as_slice()), (&b"hashtx"[..], &[1u8; 32][..]));
                break;
            }
        }
        // 64 MiB of rawtx to a subscriber that reads nothing: every send returns.
        let flood = TxId(Hash256([2; 32]));
        for i in 0..1_024u32 {
            publisher.transaction(&flood, || vec![i as u8; 64 * 1024]).await;
        }
        // The live subscriber still hears what comes next.
        let last = TxId(Hash256([3; 32]));
        loop {
            publisher.transaction(&last, || vec![0; 8]).await;
            let Ok(message) = tokio::time::timeout(Duration::from_millis(100), live.recv()).await else {
                continue;
            };
            if frames_of(&message.unwrap()).1 == [3u8; 32] {
                break;
            }
        }
        // The slow one got what the buffers held, in order, and missed the rest (a gap in
        // the sequence numbers).
        let sent = publisher.topics.get(&Topic::RawTx).map_or(0, |(_, sequence)| *sequence);
        let mut next = None;
        let mut received = 0u32;
        while let Ok(Ok(message)) = tokio::time::timeout(Duration::from_millis(500), slow.recv()).await {
            let (topic, _, sequence) = frames_of(&message);
            assert_eq!(topic, b"rawtx");
            assert!(next.is_none_or(|n| n <= sequence), "{sequence} after {next:?}");
            next = Some(sequence + 1);
            received += 1;
        }
        assert!(
            received < sent,
            "a subscriber that never read was sent all {sent} messages"
        );
    }

    /// ZMTP 3's greeting for the NULL mechanism, as a client sends it.
    fn greeting() -> Vec<u8> {
        let mut greeting = vec![0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 3, 0];
        let mut mechanism = b"NULL".to_vec();
        mechanism.resize(20, 0);
        greeting.extend(mechanism);
        greeting.push(0);
        greeting.resize(64, 0);
        greeting
    }

    #[tokio::test]
    async fn a_peer_announcing_a_huge_frame_is_cut_off_and_subscribers_go_on() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let (port, address) = free_address();
        let config = ZmqSection {
            pubhashtx: Some(address.clone()),
            ..ZmqSection::default()
        };
        let (cancel, tracker) = (CancellationToken::new(), TaskTracker::new());
        let mut publisher = Publisher::bind(&config, &cancel, &tracker).await.unwrap();
        // A frame of 1 TiB announced after the greeting: the crate behind the guard would
        // reserve that much and abort the process.
        let mut hostile = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        hostile.write_all(&greeting()).await.unwrap();
        hostile.write_all(&[0x02, 0, 0, 1, 0, 0, 0, 0, 0]).await.unwrap();
        let mut rest = Vec::new();
        // The guard closes it (whatever the publisher's greeting it got first).
        let read = tokio::time::timeout(Duration::from_secs(30), hostile.read_to_end(&mut rest)).await;
        assert!(matches!(read, Ok(Ok(_)) | Ok(Err(_))), "the connection was left open");
        // A greeting sent in two parts, as libzmq sends it (11 bytes, then the rest once the
        // other side's first bytes came), is passed on as it comes: the publisher answers
        // the first part.
        let mut staged = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        staged.write_all(&greeting()[..11]).await.unwrap();
        let mut answer = [0u8; 10];
        tokio::time::timeout(Duration::from_secs(30), staged.read_exact(&mut answer))
            .await
            .expect("the publisher's greeting before the subscriber's whole greeting")
            .unwrap();
        assert_eq!((answer[0], answer[9]), (0xff, 0x7f), "a ZMTP signature");
        // So does it a flood of small frames.
        let mut flood = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        flood.write_all(&greeting()).await.unwrap();
        let frames: Vec<u8> = (0..=super::super::guard::MAX_FRAMES)
            .flat_map(|_| [0x00u8, 0])
            .collect();
        let _ = flood.write_all(&frames).await;
        let read = tokio::time::timeout(Duration::from_secs(30), flood.read_to_end(&mut rest)).await;
        assert!(matches!(read, Ok(Ok(_)) | Ok(Err(_))), "the connection was left open");
        // A subscriber still hears what is published.
        let mut live = SubSocket::new();
        live.connect(&address).await.unwrap();
        live.subscribe("hashtx").await.unwrap();
        let probe = TxId(Hash256([9; 32]));
        loop {
            publisher.transaction(&probe, Vec::new).await;
            if let Ok(message) = tokio::time::timeout(Duration::from_millis(100), live.recv()).await {
                assert_eq!(frames_of(&message.unwrap()).1, [9u8; 32]);
                break;
            }
        }
        cancel.cancel();
    }
}
