//! An authenticated, encrypted stream: Noise XX over any byte stream, each side's Ed25519
//! node identity bound to the session, and length-checked frames.
//!
//! Wire format: every Noise message travels as a 2-byte big-endian length and at most
//! 65,535 bytes (the Noise specification's framing). An application frame is one or more
//! Noise messages; the first plaintext starts with the frame's total length as a 4-byte
//! little-endian integer, which is checked against the maximum before anything is
//! allocated.

use std::time::Duration;

use snow::{HandshakeState, TransportState};
use thiserror::Error;
use timecoin_primitives::encoding::Reader;
use timecoin_primitives::{Decode, Domain, Encode, PublicKey, SecretKey, Signature};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The Noise protocol every connection uses.
pub const NOISE_PARAMS: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2s";
const NOISE_MAX_MESSAGE: usize = 65_535;
const NOISE_TAG: usize = 16;
const CHUNK_PLAINTEXT: usize = NOISE_MAX_MESSAGE - NOISE_TAG;
/// Bytes the identity proof takes: key and signature.
const IDENTITY_PROOF_LEN: usize = 32 + 64;

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
pub struct SecureStream<S> {
    stream: S,
    noise: TransportState,
    peer: PublicKey,
    max_frame: usize,
    buffer: Vec<u8>,
}

impl<S> std::fmt::Debug for SecureStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureStream").field("peer", &self.peer).finish()
    }
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

async fn write_noise_message<S: AsyncWrite + Unpin>(stream: &mut S, message: &[u8]) -> Result<(), TransportError> {
    let len = u16::try_from(message.len()).map_err(|_| TransportError::Malformed("noise message too long".into()))?;
    stream.write_all(&len.to_be_bytes()).await?;
    stream.write_all(message).await?;
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
    let noise = state.into_transport_mode()?;
    let mut secure = SecureStream {
        stream,
        noise,
        peer: PublicKey::default(),
        max_frame: max_frame.max(IDENTITY_PROOF_LEN),
        buffer: Vec::new(),
    };
    let mut proof = identity.public_key().to_bytes();
    identity.sign(&identity_message(&handshake_hash)).encode_to(&mut proof);
    secure.send(&proof).await?;
    let theirs = secure.receive().await?;
    secure.peer = verify_identity_proof(&handshake_hash, &theirs)?;
    Ok(secure)
}

impl<S: AsyncRead + AsyncWrite + Unpin> SecureStream<S> {
    /// The peer's proven node identity.
    pub fn peer(&self) -> PublicKey {
        self.peer
    }

    /// Sends one frame.
    pub async fn send(&mut self, frame: &[u8]) -> Result<(), TransportError> {
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
        let mut message = vec![0u8; NOISE_MAX_MESSAGE];
        for chunk in plaintext.chunks(CHUNK_PLAINTEXT) {
            let len = self.noise.write_message(chunk, &mut message)?;
            write_noise_message(&mut self.stream, message.get(..len).unwrap_or_default()).await?;
        }
        self.stream.flush().await?;
        Ok(())
    }

    /// Receives one frame. A frame announced above the limit is refused before it is read.
    pub async fn receive(&mut self) -> Result<Vec<u8>, TransportError> {
        let mut plaintext = vec![0u8; NOISE_MAX_MESSAGE];
        read_noise_message(&mut self.stream, &mut self.buffer).await?;
        let len = self.noise.read_message(&self.buffer, &mut plaintext)?;
        let first = plaintext.get(..len).unwrap_or_default();
        let (header, body) = first
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
        let mut frame = Vec::with_capacity(total);
        frame.extend_from_slice(body);
        while frame.len() < total {
            read_noise_message(&mut self.stream, &mut self.buffer).await?;
            let len = self.noise.read_message(&self.buffer, &mut plaintext)?;
            frame.extend_from_slice(plaintext.get(..len).unwrap_or_default());
        }
        if frame.len() != total {
            return Err(TransportError::Malformed(format!(
                "frame announced {total} bytes but carried {}",
                frame.len()
            )));
        }
        Ok(frame)
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
