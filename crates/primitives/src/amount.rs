//! Amounts of TIME in base units, with checked arithmetic only.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::encoding::{Decode, DecodeError, Encode, Reader};

/// An amount in base units. 1 TIME = [`Amount::COIN`] units.
///
/// There is no unchecked arithmetic: every operation that can overflow returns an `Option`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(u64);

/// Why a decimal string is not an amount of TIME.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseAmountError {
    /// The string is empty.
    #[error("empty amount")]
    Empty,
    /// A character other than a digit or one decimal point.
    #[error("invalid character {0:?} in amount; write a decimal number such as 12.5")]
    InvalidCharacter(char),
    /// More than 8 digits after the decimal point.
    #[error("too many decimal places: TIME has at most 8")]
    TooPrecise,
    /// A decimal point with no digit on one of its sides.
    #[error("a decimal point needs digits on both sides, as in 0.5")]
    MissingDigits,
    /// The amount is larger than the maximum amount.
    #[error("amount is larger than the maximum of {} TIME", Amount::MAX_MONEY.0 / Amount::COIN.0)]
    TooLarge,
}

impl Amount {
    /// Zero.
    pub const ZERO: Amount = Amount(0);
    /// One base unit.
    pub const ONE_UNIT: Amount = Amount(1);
    /// One TIME.
    pub const COIN: Amount = Amount(100_000_000);
    /// The largest amount any output or sum of outputs may hold: one billion TIME.
    pub const MAX_MONEY: Amount = Amount(1_000_000_000 * 100_000_000);

    /// An amount of `units` base units.
    pub const fn from_units(units: u64) -> Amount {
        Amount(units)
    }

    /// An amount of whole TIME, if it does not overflow.
    pub const fn from_time(time: u64) -> Option<Amount> {
        match time.checked_mul(Self::COIN.0) {
            Some(units) => Some(Amount(units)),
            None => None,
        }
    }

    /// The amount in base units.
    pub const fn units(self) -> u64 {
        self.0
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    /// `self - other`, or `None` if `other` is larger.
    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }

    /// `self * factor`, or `None` on overflow.
    pub fn checked_mul(self, factor: u64) -> Option<Amount> {
        self.0.checked_mul(factor).map(Amount)
    }

    /// Whether the amount is within `0..=MAX_MONEY`.
    pub fn is_in_range(self) -> bool {
        self <= Self::MAX_MONEY
    }

    /// The sum of amounts, or `None` on overflow.
    pub fn checked_sum<I: IntoIterator<Item = Amount>>(amounts: I) -> Option<Amount> {
        amounts.into_iter().try_fold(Amount::ZERO, Amount::checked_add)
    }
}

impl fmt::Display for Amount {
    /// Decimal TIME with trailing zeros trimmed: `12.5`, `1`, `0.00000001`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / Self::COIN.0;
        let frac = self.0 % Self::COIN.0;
        if frac == 0 {
            return write!(f, "{whole}");
        }
        let digits = format!("{frac:08}");
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self} TIME")
    }
}

impl FromStr for Amount {
    type Err = ParseAmountError;

    /// Parses a decimal TIME string such as `12.5`, with at most 8 decimal places.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(ParseAmountError::Empty);
        }
        if let Some(bad) = s.chars().find(|c| !c.is_ascii_digit() && *c != '.') {
            return Err(ParseAmountError::InvalidCharacter(bad));
        }
        let (whole, frac) = match s.split_once('.') {
            Some((whole, frac)) => {
                if let Some(bad) = frac.chars().find(|c| *c == '.') {
                    return Err(ParseAmountError::InvalidCharacter(bad));
                }
                (whole, frac)
            }
            None => (s, ""),
        };
        if whole.is_empty() || (s.contains('.') && frac.is_empty()) {
            return Err(ParseAmountError::MissingDigits);
        }
        if frac.len() > 8 {
            return Err(ParseAmountError::TooPrecise);
        }
        // Leading zeros are harmless; strip them so that a long run of them does not overflow.
        let whole = whole.trim_start_matches('0');
        if whole.len() > 19 {
            return Err(ParseAmountError::TooLarge);
        }
        let whole_units: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| ParseAmountError::TooLarge)?
        };
        let mut frac_units: u64 = 0;
        for digit in frac.bytes().chain(std::iter::repeat(b'0')).take(8) {
            frac_units = frac_units * 10 + u64::from(digit - b'0');
        }
        let units = whole_units
            .checked_mul(Self::COIN.0)
            .and_then(|u| u.checked_add(frac_units))
            .ok_or(ParseAmountError::TooLarge)?;
        let amount = Amount(units);
        if !amount.is_in_range() {
            return Err(ParseAmountError::TooLarge);
        }
        Ok(amount)
    }
}

impl Encode for Amount {
    fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.to_le_bytes());
    }
    fn encoded_len(&self) -> usize {
        8
    }
}

impl Decode for Amount {
    fn decode_from(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Amount(reader.read_u64()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_displays_decimal_time() {
        assert_eq!("12.5".parse::<Amount>(), Ok(Amount(1_250_000_000)));
        assert_eq!("0.00000001".parse::<Amount>(), Ok(Amount(1)));
        assert_eq!("007".parse::<Amount>(), Ok(Amount(700_000_000)));
        assert_eq!(Amount(1_250_000_000).to_string(), "12.5");
        assert_eq!(Amount(1).to_string(), "0.00000001");
        assert_eq!(Amount::COIN.to_string(), "1");
        assert_eq!(Amount::ZERO.to_string(), "0");
    }

    #[test]
    fn rejects_malformed_amounts_with_distinct_errors() {
        assert_eq!("".parse::<Amount>(), Err(ParseAmountError::Empty));
        assert_eq!("-1".parse::<Amount>(), Err(ParseAmountError::InvalidCharacter('-')));
        assert_eq!("1,5".parse::<Amount>(), Err(ParseAmountError::InvalidCharacter(',')));
        assert_eq!(" 1".parse::<Amount>(), Err(ParseAmountError::InvalidCharacter(' ')));
        assert_eq!("1.2.3".parse::<Amount>(), Err(ParseAmountError::InvalidCharacter('.')));
        assert_eq!("1.".parse::<Amount>(), Err(ParseAmountError::MissingDigits));
        assert_eq!(".5".parse::<Amount>(), Err(ParseAmountError::MissingDigits));
        assert_eq!("0.000000001".parse::<Amount>(), Err(ParseAmountError::TooPrecise));
        assert_eq!("1000000000.00000001".parse::<Amount>(), Err(ParseAmountError::TooLarge));
        assert_eq!(
            "99999999999999999999999".parse::<Amount>(),
            Err(ParseAmountError::TooLarge)
        );
        assert_eq!("1000000000".parse::<Amount>(), Ok(Amount::MAX_MONEY));
    }

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(Amount(u64::MAX).checked_add(Amount(1)), None);
        assert_eq!(Amount(1).checked_sub(Amount(2)), None);
        assert_eq!(Amount(u64::MAX).checked_mul(2), None);
        assert_eq!(Amount::checked_sum([Amount(u64::MAX), Amount(1)]), None);
        assert_eq!(Amount::checked_sum([Amount(2), Amount(3)]), Some(Amount(5)));
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(units in 0..=Amount::MAX_MONEY.0) {
            let amount = Amount(units);
            prop_assert_eq!(amount.to_string().parse::<Amount>(), Ok(amount));
        }

        #[test]
        fn encoding_round_trip(units: u64) {
            let amount = Amount(units);
            prop_assert_eq!(Amount::from_bytes(&amount.to_bytes()), Ok(amount));
        }
    }
}
