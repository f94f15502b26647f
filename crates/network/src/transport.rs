//! An authenticated, encrypted stream: Noise XX over any byte stream, each side's Ed25519
//! node identity bound to the session, and length-checked frames.
//!
//! Wire format: every Noise message travels as a 2-byte big-endian length and at most
//! 65,535 bytes (the Noise specification's framing). An application frame is one or more
//! Noise messages; the first plaintext starts with the frame's total length as a 4-byte
//! little-endian integer, which is checked against the maximum before anything is
//! allocated.

use std::time::Duration;

use std::sync::Arc;

use snow::{HandshakeState, StatelessTransportState};
use thiserror::Error;
use timecoin_primitives::encoding::Reader;
use timecoin_primitives::{Decode, Domain, Encode, PublicKey, SecretKey, Signature};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};

/// The Noise protocol every connection uses.
pub const NOISE_PARAMS: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";
const NOISE_MAX_MESSAGE: usize = 65_535;
const NOISE_TAG: usize = 16;
const CHUNK_PLAINTEXT: usize = NOISE_MAX_MESSAGE - NOISE_TAG;
/// Bytes the identity proof takes: key and signature.
const IDENTITY_PROOF_LEN: usize = 32 + 64;
/// Bytes a connection reads ahead.
const READ_BUFFER: usize = 16 * 1024;
/// A write buffer grown past this (by a block) is let go after its frame.
const KEPT_WRITE_BUFFER: usize = 256 * 1024;

/// Why a connection failed or was closed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The socket failed or closed.
    #[error("connection i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The Noise handshake or a decryption failed: the peer is not speaking our protocol,
    /// or the bytes were tampered with.
    #[error("noise: {0}")]
    Noise(String),
    /// The peer's identity proof does not verify.
    #[error("the peer's identity proof is invalid")]
    BadIdentity,
    /// The peer announced a frame larger than the limit.
    #[error("frame of {size} bytes exceeds the limit of {limit}")]
    FrameTooLarge {
        /// Announced size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A frame's content is malformed.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// The peer took too long.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
}

impl From<snow::Error> for TransportError {
    fn from(error: snow::Error) -> Self {
        TransportError::Noise(error.to_string())
    }
}

/// An encrypted stream whose peer proved it holds the Ed25519 key [`SecureStream::peer`].
/// It can be split into a reading and a writing half for separate tasks.
pub struct SecureStream<S> {
    reader: SecureReader<ReadHalf<S>>,
    writer: SecureWriter<WriteHalf<S>>,
    peer: PublicKey,
}

impl<S> std::fmt::Debug for SecureStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureStream").field("peer", &self.peer).finish()
    }
}

/// The receiving half of a [`SecureStream`].
pub struct SecureReader<R> {
    /// Buffered: a frame's length and body, and the frames behind it, in few reads.
    inner: tokio::io::BufReader<R>,
    noise: Arc<StatelessTransportState>,
    nonce: u64,
    max_frame: usize,
    buffer: Vec<u8>,
    plaintext: Vec<u8>,
}

/// The sending half of a [`SecureStream`].
pub struct SecureWriter<W> {
    inner: W,
    noise: Arc<StatelessTransportState>,
    nonce: u64,
    max_frame: usize,
    message: Vec<u8>,
    /// One frame's Noise messages, written at once.
    out: Vec<u8>,
}

impl<R> std::fmt::Debug for SecureReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureReader").field("nonce", &self.nonce).finish()
    }
}

impl<W> std::fmt::Debug for SecureWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureWriter").field("nonce", &self.nonce).finish()
    }
}

fn next_nonce(nonce: &mut u64) -> Result<u64, TransportError> {
    let current = *nonce;
    *nonce = nonce
        .checked_add(1)
        .ok_or_else(|| TransportError::Noise("nonce exhausted".into()))?;
    Ok(current)
}

/// The message a node signs to bind its identity to one Noise session.
fn identity_message(handshake_hash: &[u8]) -> [u8; 32] {
    Domain::PeerIdentity.hash(handshake_hash).0
}

/// Checks a peer's identity proof against the session's handshake hash.
pub fn verify_identity_proof(handshake_hash: &[u8], proof: &[u8]) -> Result<PublicKey, TransportError> {
    let mut reader = Reader::new(proof);
    let key = PublicKey::decode_from(&mut reader).map_err(|_| TransportError::BadIdentity)?;
    let signature = Signature::decode_from(&mut reader).map_err(|_| TransportError::BadIdentity)?;
    reader.finish().map_err(|_| TransportError::BadIdentity)?;
    key.verify(&identity_message(handshake_hash), &signature)
        .map_err(|_| TransportError::BadIdentity)?;
    Ok(key)
}

/// Appends `message` with its length prefix to `out`.
fn frame_noise_message(out: &mut Vec<u8>, message: &[u8]) -> Result<(), TransportError> {
    let len = u16::try_from(message.len()).map_err(|_| TransportError::Malformed("noise message too long".into()))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(message);
    Ok(())
}

/// Writes `message` with its length prefix in one write: two writes would be two segments,
/// and the second could wait on the first's acknowledgement.
async fn write_noise_message<S: AsyncWrite + Unpin>(stream: &mut S, message: &[u8]) -> Result<(), TransportError> {
    let mut out = Vec::with_capacity(message.len() + 2);
    frame_noise_message(&mut out, message)?;
    stream.write_all(&out).await?;
    Ok(())
}

async fn read_noise_message<S: AsyncRead + Unpin>(stream: &mut S, buffer: &mut Vec<u8>) -> Result<(), TransportError> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    buffer.resize(usize::from(u16::from_be_bytes(len)), 0);
    stream.read_exact(buffer).await?;
    Ok(())
}

/// Runs the Noise XX handshake and the identity exchange, as the dialing side when
/// `initiator`, within `timeout`.
pub async fn secure<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    identity: &SecretKey,
    initiator: bool,
    max_frame: usize,
    timeout: Duration,
) -> Result<SecureStream<S>, TransportError> {
    match tokio::time::timeout(timeout, handshake(stream, identity, initiator, max_frame)).await {
        Ok(result) => result,
        Err(_) => Err(TransportError::Timeout(timeout)),
    }
}

async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    identity: &SecretKey,
    initiator: bool,
    max_frame: usize,
) -> Result<SecureStream<S>, TransportError> {
    let params = NOISE_PARAMS
        .parse()
        .map_err(|e: snow::Error| TransportError::Noise(e.to_string()))?;
    let builder = snow::Builder::new(params);
    // A fresh static Noise key per connection: the durable identity is the Ed25519 key,
    // bound to the session below.
    let keypair = builder.generate_keypair()?;
    let builder = builder.local_private_key(&keypair.private)?;
    let mut state: HandshakeState = if initiator {
        builder.build_initiator()?
    } else {
        builder.build_responder()?
    };
    let mut message = vec![0u8; NOISE_MAX_MESSAGE];
    let mut incoming = Vec::new();
    let mut payload = vec![0u8; NOISE_MAX_MESSAGE];
    while !state.is_handshake_finished() {
        if state.is_my_turn() {
            let len = state.write_message(&[], &mut message)?;
            write_noise_message(&mut stream, message.get(..len).unwrap_or_default()).await?;
        } else {
            read_noise_message(&mut stream, &mut incoming).await?;
            if state.read_message(&incoming, &mut payload)? != 0 {
                return Err(TransportError::Malformed("unexpected handshake payload".into()));
            }
        }
    }
    let handshake_hash = state.get_handshake_hash().to_vec();
    let noise = Arc::new(state.into_stateless_transport_mode()?);
    let (read, write) = tokio::io::split(stream);
    let max_frame = max_frame.max(IDENTITY_PROOF_LEN);
    let mut secure = SecureStream {
        reader: SecureReader {
            inner: tokio::io::BufReader::with_capacity(READ_BUFFER, read),
            noise: Arc::clone(&noise),
            nonce: 0,
            max_frame,
            buffer: Vec::new(),
            plaintext: vec![0u8; NOISE_MAX_MESSAGE],
        },
        writer: SecureWriter {
            inner: write,
            noise,
            nonce: 0,
            max_frame,
            message: vec![0u8; NOISE_MAX_MESSAGE],
            out: Vec::new(),
        },
        peer: PublicKey::default(),
    };
    let mut proof = identity.public_key().to_bytes();
    identity.sign(&identity_message(&handshake_hash)).encode_to(&mut proof);
    secure.send(&proof).await?;
    let theirs = secure.receive().await?;
    secure.peer = verify_identity_proof(&handshake_hash, &theirs)?;
    Ok(secure)
}

impl<S: AsyncRead + AsyncWrite> SecureStream<S> {
    /// The peer's proven node identity.
    pub fn peer(&self) -> PublicKey {
        self.peer
    }

    /// Sends one frame.
    pub async fn send(&mut self, frame: &[u8]) -> Result<(), TransportError> {
        self.writer.send(frame).await
    }

    /// Receives one frame.
    pub async fn receive(&mut self) -> Result<Vec<u8>, TransportError> {
        self.reader.receive().await
    }

    /// The two halves, for a reading and a writing task.
    pub fn into_split(self) -> (SecureReader<ReadHalf<S>>, SecureWriter<WriteHalf<S>>) {
        (self.reader, self.writer)
    }
}

impl<W: AsyncWrite + Unpin> SecureWriter<W> {
    /// Sends one frame.
    pub async fn send(&mut self, frame: &[u8]) -> Result<(), TransportError> {
        self.send_all(&[frame]).await
    }

    /// Sends frames in order, in one write: a burst of votes to a peer goes out in as few
    /// segments as the bytes need, and no frame waits on another's acknowledgement.
    pub async fn send_all(&mut self, frames: &[&[u8]]) -> Result<(), TransportError> {
        self.out.clear();
        for frame in frames {
            self.seal(frame)?;
        }
        self.inner.write_all(&self.out).await?;
        self.inner.flush().await?;
        if self.out.capacity() > KEPT_WRITE_BUFFER {
            self.out = Vec::new();
        }
        Ok(())
    }

    /// Appends `frame`'s Noise messages (length, then the frame, in chunks) to the output.
    fn seal(&mut self, frame: &[u8]) -> Result<(), TransportError> {
        if frame.len() > self.max_frame {
            return Err(TransportError::FrameTooLarge {
                size: frame.len(),
                limit: self.max_frame,
            });
        }
        let total = u32::try_from(frame.len()).map_err(|_| TransportError::FrameTooLarge {
            size: frame.len(),
            limit: self.max_frame,
        })?;
        let mut plaintext = total.to_le_bytes().to_vec();
        plaintext.extend_from_slice(frame);
        for chunk in plaintext.chunks(CHUNK_PLAINTEXT) {
            let nonce = next_nonce(&mut self.nonce)?;
            let len = self.noise.write_message(nonce, chunk, &mut self.message)?;
            frame_noise_message(&mut self.out, self.message.get(..len).unwrap_or_default())?;
        }
        Ok(())
    }
}

impl<R: AsyncRead + Unpin> SecureReader<R> {
    async fn read_chunk(&mut self) -> Result<usize, TransportError> {
        read_noise_message(&mut self.inner, &mut self.buffer).await?;
        let nonce = next_nonce(&mut self.nonce)?;
        Ok(self.noise.read_message(nonce, &self.buffer, &mut self.plaintext)?)
    }

    /// Receives one frame. A frame announced above the limit is refused before it is read.
    pub async fn receive(&mut self) -> Result<Vec<u8>, TransportError> {
        let mut frame = FrameAssembler::new(self.max_frame);
        loop {
            let len = self.read_chunk().await?;
            if let Some(done) = frame.push(self.plaintext.get(..len).unwrap_or_default())? {
                return Ok(done);
            }
        }
    }
}

/// Puts a frame together from the plaintexts of the Noise messages that carry it: the first
/// starts with the frame's length (4 bytes, little-endian), which is checked against the
/// limit before anything is kept. Pure, so that a fuzzer can drive it with any chunks.
#[derive(Debug)]
pub struct FrameAssembler {
    max_frame: usize,
    total: Option<usize>,
    frame: Vec<u8>,
}

impl FrameAssembler {
    /// An assembler of one frame of at most `max_frame` bytes.
    pub fn new(max_frame: usize) -> FrameAssembler {
        FrameAssembler {
            max_frame,
            total: None,
            frame: Vec::new(),
        }
    }

    /// Adds one chunk; returns the frame once it is complete.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Option<Vec<u8>>, TransportError> {
        let total = match self.total {
            Some(total) => {
                self.frame.extend_from_slice(chunk);
                total
            }
            None => {
                let (header, body) = chunk
                    .split_at_checked(4)
                    .ok_or_else(|| TransportError::Malformed("short frame header".into()))?;
                let mut size = [0u8; 4];
                size.copy_from_slice(header);
                let total = usize::try_from(u32::from_le_bytes(size)).unwrap_or(usize::MAX);
                if total > self.max_frame {
                    return Err(TransportError::FrameTooLarge {
                        size: total,
                        limit: self.max_frame,
                    });
                }
                self.total = Some(total);
                self.frame = Vec::with_capacity(total);
                self.frame.extend_from_slice(body);
                total
            }
        };
        match self.frame.len().cmp(&total) {
            std::cmp::Ordering::Less => Ok(None),
            std::cmp::Ordering::Equal => Ok(Some(std::mem::take(&mut self.frame))),
            std::cmp::Ordering::Greater => Err(TransportError::Malformed(format!(
                "frame announced {total} bytes but carried {}",
                self.frame.len()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_proof_is_bound_to_its_session() {
        let key = SecretKey::from_seed([3; 32]);
        let mut proof = key.public_key().to_bytes();
        key.sign(&identity_message(b"session one")).encode_to(&mut proof);
        assert_eq!(
            verify_identity_proof(b"session one", &proof).ok(),
            Some(key.public_key())
        );
        // Replayed into another session, or altered, it fails.
        assert!(matches!(
            verify_identity_proof(b"session two", &proof),
            Err(TransportError::BadIdentity)
        ));
        let mut altered = proof.clone();
        altered[40] ^= 1;
        assert!(matches!(
            verify_identity_proof(b"session one", &altered),
            Err(TransportError::BadIdentity)
        ));
        assert!(matches!(
            verify_identity_proof(b"session one", &proof[..50]),
            Err(TransportError::BadIdentity)
        ));
    }
}
