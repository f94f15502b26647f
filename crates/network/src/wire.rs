//! The messages peers exchange, one per frame, in canonical encoding: a one-byte tag and the
//! fields. Decoding consumes the whole frame and refuses unknown tags and over-long lists.

use std::net::SocketAddr;

use timecoin_primitives::encoding::{Reader, compact_size_len, socket_addr_len, write_compact_size, write_socket_addr};
use timecoin_primitives::{
    Block, CommitCertificate, Decode, DecodeError, Encode, Equivocation, PublicKey, SignedProposal, SignedVote,
    Transaction, TxId,
};

/// Most addresses in one `Peers` message.
pub const MAX_ADDRESSES: usize = 1_000;
/// Most txids in one inventory or request.
pub const MAX_INVENTORY: usize = 5_000;
/// Most blocks asked for or sent at once.
pub const MAX_BLOCKS_PER_MESSAGE: usize = 100;

/// A message between peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// Liveness probe; the peer answers `Pong` with the same nonce.
    Ping(u64),
    /// Answer to `Ping`.
    Pong(u64),
    /// Asks for known peer addresses.
    GetPeers,
    /// Known peer addresses.
    Peers(Vec<SocketAddr>),
    /// Announces transactions by id.
    Inventory(Vec<TxId>),
    /// Asks for transactions by id.
    GetTransactions(Vec<TxId>),
    /// Transaction bodies.
    Transactions(Vec<Transaction>),
    /// A consensus proposal with the block it proposes.
    Proposal(Box<(SignedProposal, Block)>),
    /// A consensus vote.
    Vote(SignedVote),
    /// Proof of equivocation.
    Evidence(Box<Equivocation>),
    /// Asks for `count` finalized blocks from height `from`.
    GetBlocks {
        /// First height.
        from: u64,
        /// How many (at most [`MAX_BLOCKS_PER_MESSAGE`]).
        count: u32,
    },
    /// Finalized blocks, each with the certificate that finalized it, in height order.
    Blocks(Vec<(Block, CommitCertificate)>),
    /// Asks where the masternodes the peer knows of can be reached.
    GetMasternodes,
    /// Masternode identities with the address each was last reached at.
    Masternodes(Vec<(PublicKey, SocketAddr)>),
}

/// The rate-limit class of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageClass {
    /// Pings, peer exchange, masternode lists.
    Control,
    /// Transaction relay.
    Transactions,
    /// Proposals, votes, evidence.
    Consensus,
    /// Block sync.
    Sync,
}

impl Message {
    /// The message's rate-limit class.
    pub fn class(&self) -> MessageClass {
        match self {
            Message::Ping(_)
            | Message::Pong(_)
            | Message::GetPeers
            | Message::Peers(_)
            | Message::GetMasternodes
            | Message::Masternodes(_) => MessageClass::Control,
            Message::Inventory(_) | Message::GetTransactions(_) | Message::Transactions(_) => {
                MessageClass::Transactions
            }
            Message::Proposal(_) | Message::Vote(_) | Message::Evidence(_) => MessageClass::Consensus,
            Message::GetBlocks { .. } | Message::Blocks(_) => MessageClass::Sync,
        }
    }

    /// The name of the message an encoded frame holds, by its first byte (for metrics).
    pub fn name_of(frame: &[u8]) -> &'static str {
        match frame.first() {
            Some(1) => "ping",
            Some(2) => "pong",
            Some(3) => "getpeers",
            Some(4) => "peers",
            Some(5) => "inventory",
            Some(6) => "gettransactions",
            Some(7) => "transactions",
            Some(8) => "proposal",
            Some(9) => "vote",
            Some(10) => "evidence",
            Some(11) => "getblocks",
            Some(12) => "blocks",
            Some(13) => "getmasternodes",
            Some(14) => "masternodes",
            _ => "unknown",
        }
    }

    fn tag(&self) -> u8 {
        match self {
            Message::Ping(_) => 1,
            Message::Pong(_) => 2,
            Message::GetPeers => 3,
            Message::Peers(_) => 4,
            Message::Inventory(_) => 5,
            Message::GetTransactions(_) => 6,
            Message::Transactions(_) => 7,
            Message::Proposal(_) => 8,
            Message::Vote(_) => 9,
            Message::Evidence(_) => 10,
            Message::GetBlocks { .. } => 11,
            Message::Blocks(_) => 12,
            Message::GetMasternodes => 13,
            Message::Masternodes(_) => 14,
        }
    }
}

fn encode_address(address: &SocketAddr, out: &mut Vec<u8>) {
    write_socket_addr(out, address);
}

fn decode_address(reader: &mut Reader<'_>) -> Result<SocketAddr, DecodeError> {
    reader.read_socket_addr()
}

fn encode_list<T>(out: &mut Vec<u8>, items: &[T], encode: impl Fn(&T, &mut Vec<u8>)) {
    write_compact_size(out, items.len() as u64);
    for item in items {
        encode(item, out);
    }
}

fn decode_list<T>(
    reader: &mut Reader<'_>,
    field: &'static str,
    max: usize,
    min_item: usize,
    decode: impl Fn(&mut Reader<'_>) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let count = reader.read_count(field, max, min_item)?;
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        items.push(decode(reader)?);
    }
    Ok(items)
}

impl Encode for Message {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.push(self.tag());
        match self {
            Message::Ping(nonce) | Message::Pong(nonce) => out.extend_from_slice(&nonce.to_le_bytes()),
            Message::GetPeers | Message::GetMasternodes => {}
            Message::Peers(addresses) => encode_list(out, addresses, encode_address),
            Message::Inventory(ids) | Message::GetTransactions(ids) => encode_list(out, ids, |id, o| id.encode_to(o)),
            Message::Transactions(txs) => encode_list(out, txs, |tx, o| tx.encode_to(o)),
            Message::Proposal(boxed) => {
                boxed.0.encode_to(out);
                boxed.1.encode_to(out);
            }
            Message::Vote(vote) => vote.encode_to(out),
            Message::Evidence(evidence) => evidence.encode_to(out),
            Message::GetBlocks { from, count } => {
                out.extend_from_slice(&from.to_le_bytes());
                out.extend_from_slice(&count.to_le_bytes());
            }
            Message::Blocks(blocks) => encode_list(out, blocks, |(block, certificate), o| {
                block.encode_to(o);
                certificate.encode_to(o);
            }),
            Message::Masternodes(entries) => encode_list(out, entries, |(key, address), o| {
                key.encode_to(o);
                encode_address(address, o);
            }),
        }
    }

    fn encoded_len(&self) -> usize {
        let list = |n: usize, bytes: usize| compact_size_len(n as u64) + bytes;
        1 + match self {
            Message::Ping(_) | Message::Pong(_) => 8,
            Message::GetPeers | Message::GetMasternodes => 0,
            Message::Peers(addresses) => list(addresses.len(), addresses.iter().map(socket_addr_len).sum()),
            Message::Inventory(ids) | Message::GetTransactions(ids) => list(ids.len(), ids.len() * 32),
            Message::Transactions(txs) => list(txs.len(), txs.iter().map(Encode::encoded_len).sum()),
            Message::Proposal(boxed) => boxed.0.encoded_len() + boxed.1.encoded_len(),
            Message::Vote(vote) => vote.encoded_len(),
            Message::Evidence(evidence) => evidence.encoded_len(),
            Message::GetBlocks { .. } => 12,
            Message::Blocks(blocks) => list(
                blocks.len(),
                blocks.iter().map(|(b, c)| b.encoded_len() + c.encoded_len()).sum(),
            ),
            Message::Masternodes(entries) => list(
                entries.len(),
                entries.iter().map(|(_, a)| 32 + socket_addr_len(a)).sum(),
            ),
        }
    }
}

impl Decode for Message {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let message = match reader.read_u8()? {
            1 => Message::Ping(reader.read_u64()?),
            2 => Message::Pong(reader.read_u64()?),
            3 => Message::GetPeers,
            4 => Message::Peers(decode_list(reader, "addresses", MAX_ADDRESSES, 7, decode_address)?),
            5 => Message::Inventory(decode_list(reader, "inventory", MAX_INVENTORY, 32, TxId::decode_from)?),
            6 => Message::GetTransactions(decode_list(reader, "inventory", MAX_INVENTORY, 32, TxId::decode_from)?),
            7 => Message::Transactions(decode_list(
                reader,
                "transactions",
                MAX_INVENTORY,
                timecoin_primitives::transaction::MIN_TX_ENCODED_LEN,
                Transaction::decode_from,
            )?),
            8 => Message::Proposal(Box::new((
                SignedProposal::decode_from(reader)?,
                Block::decode_from(reader)?,
            ))),
            9 => Message::Vote(SignedVote::decode_from(reader)?),
            10 => Message::Evidence(Box::new(Equivocation::decode_from(reader)?)),
            11 => {
                let from = reader.read_u64()?;
                let count = reader.read_u32()?;
                if count as usize > MAX_BLOCKS_PER_MESSAGE {
                    return Err(DecodeError::TooLong {
                        field: "block request",
                        len: u64::from(count),
                        max: MAX_BLOCKS_PER_MESSAGE as u64,
                    });
                }
                Message::GetBlocks { from, count }
            }
            12 => Message::Blocks(decode_list(reader, "blocks", MAX_BLOCKS_PER_MESSAGE, 1, |r| {
                Ok((Block::decode_from(r)?, CommitCertificate::decode_from(r)?))
            })?),
            13 => Message::GetMasternodes,
            14 => Message::Masternodes(decode_list(reader, "masternodes", MAX_ADDRESSES, 39, |r| {
                Ok((PublicKey::decode_from(r)?, decode_address(r)?))
            })?),
            _ => {
                return Err(DecodeError::InvalidValue {
                    field: "message tag",
                    reason: "unknown message type",
                });
            }
        };
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_named_by_its_message() {
        assert_eq!(Message::name_of(&Message::Ping(1).to_bytes()), "ping");
        assert_eq!(Message::name_of(&Message::GetPeers.to_bytes()), "getpeers");
        assert_eq!(Message::name_of(&Message::GetMasternodes.to_bytes()), "getmasternodes");
        assert_eq!(
            Message::name_of(&Message::GetBlocks { from: 1, count: 2 }.to_bytes()),
            "getblocks"
        );
        assert_eq!(Message::name_of(&Message::Blocks(Vec::new()).to_bytes()), "blocks");
        assert_eq!(Message::name_of(&[]), "unknown");
        assert_eq!(Message::name_of(&[99]), "unknown");
    }
}
