//! Networks and bech32m addresses.
//!
//! An address is the bech32m encoding of a 32-byte payload, the [`Domain::Address`] hash of a
//! public key, under a human-readable part that names the network. A transaction output
//! holds only the payload; the network is implied by the chain.

use std::fmt;
use std::str::FromStr;

use bech32::primitives::decode::{CheckedHrpstring, CheckedHrpstringError};
use bech32::{Bech32m, Hrp};
use thiserror::Error;

use crate::encoding::{Decode, DecodeError, Encode, Reader};
use crate::hash::Domain;
use crate::keys::PublicKey;

/// The networks a node can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Network {
    /// The production network.
    Mainnet,
    /// The public test network.
    Testnet,
    /// A private network on one machine or a lab, for development.
    Local,
}

impl Network {
    /// Every network.
    pub const ALL: [Network; 3] = [Network::Mainnet, Network::Testnet, Network::Local];

    /// The human-readable part of this network's addresses.
    pub const fn hrp(self) -> &'static str {
        match self {
            Network::Mainnet => "time",
            Network::Testnet => "timet",
            Network::Local => "timelocal",
        }
    }

    /// The lower-case name used in config files and on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Network::Mainnet => "mainnet",
            Network::Testnet => "testnet",
            Network::Local => "local",
        }
    }

    /// A one-byte code used where a network is encoded.
    pub const fn code(self) -> u8 {
        match self {
            Network::Mainnet => 0,
            Network::Testnet => 1,
            Network::Local => 2,
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The string names no network.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown network {0:?}; expected mainnet, testnet or local")]
pub struct UnknownNetwork(pub String);

impl FromStr for Network {
    type Err = UnknownNetwork;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Network::ALL
            .into_iter()
            .find(|n| n.name() == s)
            .ok_or_else(|| UnknownNetwork(s.to_owned()))
    }
}

/// The 32 bytes an output pays to: the hash of the owner's public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct AddressPayload(pub [u8; 32]);

impl AddressPayload {
    /// The payload of the address owned by `key`.
    pub fn from_public_key(key: &PublicKey) -> Self {
        AddressPayload(Domain::Address.hash(&key.0).0)
    }
}

impl fmt::Debug for AddressPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AddressPayload({})", hex::encode(self.0))
    }
}

impl Encode for AddressPayload {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
    }
    fn encoded_len(&self) -> usize {
        32
    }
}

impl Decode for AddressPayload {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(AddressPayload(reader.read_array()?))
    }
}

/// An address: a payload on a network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Address {
    /// The network whose prefix the address carries.
    pub network: Network,
    /// What outputs paying to the address hold.
    pub payload: AddressPayload,
}

/// Why a string is not an address of the expected network.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AddressError {
    /// The address belongs to another network.
    #[error("address is for {found}, not {expected}")]
    WrongNetwork {
        /// The network the caller expects.
        expected: Network,
        /// The network the prefix names.
        found: Network,
    },
    /// The prefix names no TimeCoin network.
    #[error("unknown address prefix {0:?}; TimeCoin addresses start with time1, timet1 or timelocal1")]
    UnknownPrefix(String),
    /// The checksum does not match: the address was mistyped or truncated.
    #[error("address checksum is wrong; check the address for typing errors")]
    BadChecksum,
    /// The payload is not 32 bytes.
    #[error("address payload is {0} bytes, expected 32")]
    WrongLength(usize),
    /// The string is not bech32m at all.
    #[error("not a bech32m address: {0}")]
    Malformed(String),
}

impl Address {
    /// The address owned by `key` on `network`.
    pub fn from_public_key(network: Network, key: &PublicKey) -> Self {
        Address {
            network,
            payload: AddressPayload::from_public_key(key),
        }
    }

    /// Parses an address and checks that it belongs to `expected`.
    pub fn parse_for(s: &str, expected: Network) -> Result<Self, AddressError> {
        let address: Address = s.parse()?;
        if address.network != expected {
            return Err(AddressError::WrongNetwork {
                expected,
                found: address.network,
            });
        }
        Ok(address)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hrp = Hrp::parse_unchecked(self.network.hrp());
        match bech32::encode::<Bech32m>(hrp, &self.payload.0) {
            Ok(text) => f.write_str(&text),
            // Unreachable for a 32-byte payload and our short prefixes, which are far below
            // bech32's length limit; never panic in Display.
            Err(_) => Err(fmt::Error),
        }
    }
}

impl FromStr for Address {
    type Err = AddressError;

    /// Parses an address of any TimeCoin network. Use [`Address::parse_for`] to require one.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let checked = CheckedHrpstring::new::<Bech32m>(s).map_err(|e| match e {
            CheckedHrpstringError::Checksum(_) => AddressError::BadChecksum,
            other => AddressError::Malformed(other.to_string()),
        })?;
        let hrp = checked.hrp().to_lowercase();
        let network = Network::ALL
            .into_iter()
            .find(|n| n.hrp() == hrp)
            .ok_or(AddressError::UnknownPrefix(hrp))?;
        let bytes: Vec<u8> = checked.byte_iter().collect();
        let payload: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| AddressError::WrongLength(bytes.len()))?;
        let address = Address {
            network,
            payload: AddressPayload(payload),
        };
        // Non-zero padding bits or extra data characters decode to the same bytes; only the
        // canonical spelling is an address.
        if address.to_string() != s.to_lowercase() {
            return Err(AddressError::Malformed("non-canonical encoding".to_owned()));
        }
        Ok(address)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::SecretKey;

    fn sample() -> Address {
        Address::from_public_key(Network::Mainnet, &SecretKey::from_seed([3; 32]).public_key())
    }

    #[test]
    fn round_trips_on_every_network() {
        for network in Network::ALL {
            let address = Address { network, ..sample() };
            let text = address.to_string();
            assert!(text.starts_with(&format!("{}1", network.hrp())));
            assert_eq!(Address::parse_for(&text, network), Ok(address));
            assert_eq!(Address::parse_for(&text.to_uppercase(), network), Ok(address));
        }
    }

    #[test]
    fn rejects_wrong_network_checksum_and_length_distinctly() {
        let text = sample().to_string();
        assert_eq!(
            Address::parse_for(&text, Network::Testnet),
            Err(AddressError::WrongNetwork {
                expected: Network::Testnet,
                found: Network::Mainnet
            })
        );
        let typo_text = {
            let mut t = text.clone();
            let c = if t.ends_with('q') { 'p' } else { 'q' };
            t.pop();
            t.push(c);
            t
        };
        assert_eq!(typo_text.parse::<Address>(), Err(AddressError::BadChecksum));

        let short = bech32::encode::<Bech32m>(Hrp::parse_unchecked("time"), &[1u8; 20]).unwrap_or_default();
        assert_eq!(short.parse::<Address>(), Err(AddressError::WrongLength(20)));

        let other = bech32::encode::<Bech32m>(Hrp::parse_unchecked("bc"), &[1u8; 32]).unwrap_or_default();
        assert_eq!(other.parse::<Address>(), Err(AddressError::UnknownPrefix("bc".into())));

        // bech32 (not bech32m) checksums are refused.
        let legacy = bech32::encode::<bech32::Bech32>(Hrp::parse_unchecked("time"), &[1u8; 32]).unwrap_or_default();
        assert_eq!(legacy.parse::<Address>(), Err(AddressError::BadChecksum));
        assert!(matches!(
            "not an address".parse::<Address>(),
            Err(AddressError::Malformed(_))
        ));
    }

    #[test]
    fn network_names_parse() {
        for n in Network::ALL {
            assert_eq!(n.name().parse::<Network>(), Ok(n));
        }
        assert!("regtest".parse::<Network>().is_err());
    }
}
