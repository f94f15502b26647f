//! The first message on every connection: who we are on which chain.

use std::time::Duration;

use thiserror::Error;
use timecoin_primitives::encoding::Reader;
use timecoin_primitives::{BlockHash, Decode, DecodeError, Encode, PublicKey, SecretKey};
use tokio::io::{AsyncRead, AsyncWrite};

use crate::transport::{SecureStream, TransportError, secure};

/// The protocol version this build speaks (2: the hello says the lowest block it serves).
pub const PROTOCOL_VERSION: u32 = 2;
/// The oldest version it accepts a peer of (1: a hello without the lowest block, which such
/// a peer, holding every block, does not need).
pub const OLDEST_PROTOCOL_VERSION: u32 = 1;

/// A node's introduction, sent by both sides right after the secure channel is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hello {
    /// The network's magic bytes.
    pub magic: [u8; 4],
    /// The protocol version.
    pub version: u32,
    /// The network's genesis hash.
    pub genesis: BlockHash,
    /// The sender's best height.
    pub best_height: u64,
    /// The sender's best block.
    pub best_hash: BlockHash,
    /// The port the sender accepts connections on (0: it does not).
    pub listen_port: u16,
    /// Whether the sender is a masternode.
    pub masternode: bool,
    /// The lowest height whose block the sender serves, past the genesis (0: all of them;
    /// above 1 once it pruned old blocks or started from a snapshot): peers do not ask it
    /// for blocks below.
    pub lowest_height: u64,
}

impl Hello {
    /// A version-1 hello's length; version 2 adds the lowest height.
    const V1_LEN: usize = 4 + 4 + 32 + 8 + 32 + 2 + 1;

    /// Says that the sender serves blocks from `lowest_height` (0: all), with the version
    /// that can say it: 1, which nodes of either version read, while it serves every block,
    /// so that a network upgrades one node at a time; 2 once it does not.
    pub fn set_lowest_height(&mut self, lowest_height: u64) {
        self.lowest_height = lowest_height;
        self.version = if lowest_height == 0 {
            OLDEST_PROTOCOL_VERSION
        } else {
            PROTOCOL_VERSION
        };
    }
}

impl Encode for Hello {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.magic);
        out.extend_from_slice(&self.version.to_le_bytes());
        self.genesis.encode_to(out);
        out.extend_from_slice(&self.best_height.to_le_bytes());
        self.best_hash.encode_to(out);
        out.extend_from_slice(&self.listen_port.to_le_bytes());
        out.push(u8::from(self.masternode));
        if self.version >= 2 {
            out.extend_from_slice(&self.lowest_height.to_le_bytes());
        }
    }
    fn encoded_len(&self) -> usize {
        Self::V1_LEN + if self.version >= 2 { 8 } else { 0 }
    }
}

impl Decode for Hello {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let magic = reader.read_array()?;
        let version = reader.read_u32()?;
        Ok(Hello {
            magic,
            version,
            genesis: BlockHash::decode_from(reader)?,
            best_height: reader.read_u64()?,
            best_hash: BlockHash::decode_from(reader)?,
            listen_port: reader.read_u16()?,
            masternode: match reader.read_u8()? {
                0 => false,
                1 => true,
                _ => {
                    return Err(DecodeError::InvalidValue {
                        field: "masternode flag",
                        reason: "expected 0 or 1",
                    });
                }
            },
            lowest_height: if version >= 2 { reader.read_u64()? } else { 0 },
        })
    }
}

/// Why a peer was not admitted.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The secure channel could not be set up.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The peer is on another network.
    #[error("peer {peer} is on another network (magic {theirs:02x?}, ours {ours:02x?})")]
    WrongNetwork {
        /// The peer's proven identity.
        peer: PublicKey,
        /// Our magic.
        ours: [u8; 4],
        /// Theirs.
        theirs: [u8; 4],
    },
    /// The peer follows another chain.
    #[error("peer {peer} has genesis {theirs}, ours is {ours}")]
    WrongGenesis {
        /// The peer's proven identity.
        peer: PublicKey,
        /// Our genesis.
        ours: BlockHash,
        /// Theirs.
        theirs: BlockHash,
    },
    /// The peer speaks a protocol version we do not.
    #[error("peer {peer} speaks protocol version {theirs}, we speak {ours}")]
    IncompatibleVersion {
        /// The peer's proven identity.
        peer: PublicKey,
        /// Ours.
        ours: u32,
        /// Theirs.
        theirs: u32,
    },
    /// We connected to ourselves.
    #[error("connected to ourselves")]
    SelfConnection,
    /// The peer's hello does not decode.
    #[error("peer {peer} sent a malformed hello: {error}")]
    Malformed {
        /// The peer's proven identity.
        peer: PublicKey,
        /// What is wrong with it.
        error: DecodeError,
    },
}

impl HandshakeError {
    /// Whether the peer should be banned for a while: it is on another network or chain, or
    /// sent garbage. Time-outs and closed sockets are not the peer's proven fault.
    pub fn deserves_ban(&self) -> bool {
        match self {
            HandshakeError::WrongNetwork { .. }
            | HandshakeError::WrongGenesis { .. }
            | HandshakeError::IncompatibleVersion { .. }
            | HandshakeError::Malformed { .. } => true,
            HandshakeError::Transport(error) => matches!(
                error,
                TransportError::Noise(_)
                    | TransportError::BadIdentity
                    | TransportError::FrameTooLarge { .. }
                    | TransportError::Malformed(_)
            ),
            HandshakeError::SelfConnection => false,
        }
    }

    /// The peer's identity, when the secure channel was up before the peer was refused.
    pub fn peer(&self) -> Option<PublicKey> {
        match self {
            HandshakeError::WrongNetwork { peer, .. }
            | HandshakeError::WrongGenesis { peer, .. }
            | HandshakeError::IncompatibleVersion { peer, .. }
            | HandshakeError::Malformed { peer, .. } => Some(*peer),
            HandshakeError::Transport(_) | HandshakeError::SelfConnection => None,
        }
    }
}

/// Sets up the secure channel, exchanges hellos and admits the peer only if it is on our
/// network and chain and speaks our version. The whole exchange must finish in `timeout`.
pub async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    identity: &SecretKey,
    initiator: bool,
    ours: &Hello,
    max_frame: usize,
    timeout: Duration,
) -> Result<(SecureStream<S>, Hello), HandshakeError> {
    let exchange = async {
        let mut secure = secure(stream, identity, initiator, max_frame, timeout).await?;
        if secure.peer() == identity.public_key() {
            return Err(HandshakeError::SelfConnection);
        }
        secure.send(&ours.to_bytes()).await?;
        let peer = secure.peer();
        let theirs =
            Hello::from_bytes(&secure.receive().await?).map_err(|error| HandshakeError::Malformed { peer, error })?;
        if theirs.magic != ours.magic {
            return Err(HandshakeError::WrongNetwork {
                peer,
                ours: ours.magic,
                theirs: theirs.magic,
            });
        }
        if theirs.genesis != ours.genesis {
            return Err(HandshakeError::WrongGenesis {
                peer,
                ours: ours.genesis,
                theirs: theirs.genesis,
            });
        }
        // The hello's version says what it holds, not all this build speaks (see
        // `Hello::set_lowest_height`): every version this build reads is admitted.
        if !(OLDEST_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&theirs.version) {
            return Err(HandshakeError::IncompatibleVersion {
                peer,
                ours: PROTOCOL_VERSION,
                theirs: theirs.version,
            });
        }
        Ok((secure, theirs))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(result) => result,
        Err(_) => Err(TransportError::Timeout(timeout).into()),
    }
}

/// When two nodes dial each other at once, both keep the connection dialled by the node
/// with the smaller identity key: from `local`'s side, whether to keep its outbound one.
pub fn keeps_outbound(local: &PublicKey, remote: &PublicKey) -> bool {
    local < remote
}
