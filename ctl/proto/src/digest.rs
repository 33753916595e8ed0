//! [`Sha256Digest`]: the whole-file SHA-256 an operator gives with a distribution (64 hex
//! digits on the command line and in the API), checked before anything is parsed further.

use std::fmt;
use std::str::FromStr;

/// A SHA-256 digest (32 bytes). Parsed from 64 hex digits (either case); shown as lowercase hex.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sha256Digest([u8; 32]);

/// Why a string is not a SHA-256 digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestParseError {
    /// Not 64 characters long.
    #[error("a SHA-256 digest is 64 hex digits, got {0} characters")]
    Length(usize),
    /// A character that is not a hex digit, at this character position.
    #[error("a SHA-256 digest is 64 hex digits, found {found:?} at position {at}")]
    NotHex {
        /// Character position (0-based).
        at: usize,
        /// The offending character.
        found: char,
    },
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl Sha256Digest {
    /// Parses 64 hex digits (no prefix, no spaces).
    pub fn parse(s: &str) -> Result<Sha256Digest, DigestParseError> {
        if let Some((at, found)) = s.chars().enumerate().find(|(_, c)| !c.is_ascii_hexdigit()) {
            return Err(DigestParseError::NotHex { at, found });
        }
        // Only ASCII hex digits remain: bytes and characters coincide.
        let b = s.as_bytes();
        if b.len() != 64 {
            return Err(DigestParseError::Length(b.len()));
        }
        let mut out = [0u8; 32];
        for (i, pair) in b.chunks_exact(2).enumerate() {
            let (Some(hi), Some(lo)) = (hex_value(pair[0]), hex_value(pair[1])) else {
                return Err(DigestParseError::NotHex { at: 2 * i, found: char::from(pair[0]) });
            };
            out[i] = hi << 4 | lo;
        }
        Ok(Sha256Digest(out))
    }

    /// Parses an optional digest: `""` is none.
    pub fn parse_optional(s: &str) -> Result<Option<Sha256Digest>, DigestParseError> {
        if s.is_empty() {
            Ok(None)
        } else {
            Sha256Digest::parse(s).map(Some)
        }
    }

    /// The digest of these 32 bytes.
    pub const fn from_bytes(b: [u8; 32]) -> Sha256Digest {
        Sha256Digest(b)
    }

    /// The 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl FromStr for Sha256Digest {
    type Err = DigestParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Sha256Digest::parse(s)
    }
}

impl fmt::Display for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Sha256Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha256Digest({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_shows_lowercase() {
        let d = Sha256Digest::parse(&EMPTY.to_uppercase()).expect("uppercase parses");
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(d.as_bytes()[0], 0xe3);
        assert_eq!(Sha256Digest::parse_optional(""), Ok(None));
    }

    #[test]
    fn refuses_bad_input_with_the_reason() {
        assert_eq!(Sha256Digest::parse(&EMPTY[..63]), Err(DigestParseError::Length(63)));
        assert_eq!(Sha256Digest::parse(""), Err(DigestParseError::Length(0)));
        let bad = format!("{}g", &EMPTY[..63]);
        assert_eq!(Sha256Digest::parse(&bad), Err(DigestParseError::NotHex { at: 63, found: 'g' }));
        let multi = format!("é{}", &EMPTY[..63]);
        assert_eq!(Sha256Digest::parse(&multi), Err(DigestParseError::NotHex { at: 0, found: 'é' }));
        assert!(Sha256Digest::parse(&format!("0x{}", &EMPTY[..62])).is_err());
    }

    proptest! {
        #[test]
        fn display_parse_round_trip(bytes in any::<[u8; 32]>()) {
            let d = Sha256Digest::from_bytes(bytes);
            let s = d.to_string();
            prop_assert_eq!(s.len(), 64);
            prop_assert_eq!(Sha256Digest::parse(&s), Ok(d));
        }

        #[test]
        fn any_string_parses_only_if_it_is_64_hex_digits(s in "\\PC{0,70}") {
            let ok = s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
            let parsed = Sha256Digest::parse(&s);
            prop_assert_eq!(parsed.is_ok(), ok);
            if let Ok(d) = parsed {
                prop_assert_eq!(d.to_string(), s.to_ascii_lowercase());
            }
        }
    }
}
