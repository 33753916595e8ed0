//! The strict, limit-checked bencode decoder.

use super::value::{Dict, Kind, Value};

/// Bounds on what the decoder accepts, so hostile input cannot exhaust stack or memory.
///
/// The defaults follow libtorrent's `bdecode` (depth 100, 2,000,000 tokens) and cap the input at
/// 64 MiB and any one byte string at 32 MiB (a 1.6-million-piece `pieces` string).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Deepest nesting of lists and dictionaries; 0 allows none. The decoder recurses once per
    /// level, so keep this modest.
    pub max_depth: usize,
    /// Most values in the whole input (dictionary keys count too).
    pub max_items: usize,
    /// Longest input accepted.
    pub max_input_len: usize,
    /// Longest single byte string accepted.
    pub max_bytes_len: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_depth: 100,
            max_items: 2_000_000,
            max_input_len: 64 << 20,
            max_bytes_len: 32 << 20,
        }
    }
}

/// How dictionary key order is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum KeyOrder {
    /// Keys must be in strictly ascending byte order, as BEP 3 requires.
    #[default]
    Sorted,
    /// Keys may come in any order; duplicate keys are still rejected.
    Any,
}

/// Why bytes are not (acceptable) bencode. Every variant carries the byte offset in the input
/// where the problem was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input ended in the middle of a value (or was empty).
    #[error("unexpected end of input at byte {offset}")]
    UnexpectedEof {
        /// Offset where more input was needed.
        offset: usize,
    },
    /// A byte that cannot appear here (e.g. a value starting with `x`, a letter inside an integer).
    #[error("unexpected byte 0x{byte:02x} at byte {offset}")]
    InvalidByte {
        /// Offset of the byte.
        offset: usize,
        /// The byte found.
        byte: u8,
    },
    /// An integer with no digits (`ie`, `i-e`).
    #[error("integer without digits at byte {offset}")]
    MissingDigits {
        /// Offset of the integer's `i`.
        offset: usize,
    },
    /// An integer or string length with a leading zero (`i03e`, `03:abc`).
    #[error("leading zero at byte {offset}")]
    LeadingZero {
        /// Offset of the integer or length.
        offset: usize,
    },
    /// The integer `i-0e`, which is not canonical.
    #[error("negative zero at byte {offset}")]
    NegativeZero {
        /// Offset of the integer's `i`.
        offset: usize,
    },
    /// An integer outside the range of `i64`.
    #[error("integer overflows i64 at byte {offset}")]
    IntOverflow {
        /// Offset of the integer's `i`.
        offset: usize,
    },
    /// A string length that does not fit a `usize`.
    #[error("string length overflows at byte {offset}")]
    LengthOverflow {
        /// Offset of the length.
        offset: usize,
    },
    /// A dictionary key that is not a byte string.
    #[error("dictionary key is not a byte string at byte {offset}")]
    KeyNotBytes {
        /// Offset of the offending key.
        offset: usize,
    },
    /// A dictionary key not greater than the key before it (strict mode only).
    #[error("dictionary keys out of order at byte {offset}")]
    UnsortedKeys {
        /// Offset of the out-of-order key.
        offset: usize,
    },
    /// The same key twice in one dictionary.
    #[error("duplicate dictionary key at byte {offset}")]
    DuplicateKey {
        /// Offset of the second occurrence.
        offset: usize,
    },
    /// Lists and dictionaries nested deeper than [`DecodeLimits::max_depth`].
    #[error("nesting deeper than {limit} at byte {offset}")]
    TooDeep {
        /// Offset of the container that went too deep.
        offset: usize,
        /// The limit in force.
        limit: usize,
    },
    /// More values than [`DecodeLimits::max_items`].
    #[error("more than {limit} values at byte {offset}")]
    TooManyItems {
        /// Offset of the value that went over.
        offset: usize,
        /// The limit in force.
        limit: usize,
    },
    /// A byte string longer than [`DecodeLimits::max_bytes_len`].
    #[error("byte string of {len} bytes at byte {offset} exceeds {limit}")]
    BytesTooLong {
        /// Offset of the string's length prefix.
        offset: usize,
        /// The length it claimed.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// Input longer than [`DecodeLimits::max_input_len`].
    #[error("input of {len} bytes exceeds {limit}")]
    InputTooLong {
        /// Always 0: the whole input is too long.
        offset: usize,
        /// The input length.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// Bytes left over after the single top-level value.
    #[error("trailing bytes after the value at byte {offset}")]
    TrailingBytes {
        /// Offset of the first trailing byte.
        offset: usize,
    },
}

impl DecodeError {
    /// The byte offset in the input where the problem was found.
    pub fn offset(&self) -> usize {
        match *self {
            DecodeError::UnexpectedEof { offset }
            | DecodeError::InvalidByte { offset, .. }
            | DecodeError::MissingDigits { offset }
            | DecodeError::LeadingZero { offset }
            | DecodeError::NegativeZero { offset }
            | DecodeError::IntOverflow { offset }
            | DecodeError::LengthOverflow { offset }
            | DecodeError::KeyNotBytes { offset }
            | DecodeError::UnsortedKeys { offset }
            | DecodeError::DuplicateKey { offset }
            | DecodeError::TooDeep { offset, .. }
            | DecodeError::TooManyItems { offset, .. }
            | DecodeError::BytesTooLong { offset, .. }
            | DecodeError::InputTooLong { offset, .. }
            | DecodeError::TrailingBytes { offset } => offset,
        }
    }
}

/// Decodes exactly one value filling all of `input`, strictly and with default limits.
pub fn decode(input: &[u8]) -> Result<Value<'_>, DecodeError> {
    decode_with(input, &DecodeLimits::default(), KeyOrder::Sorted)
}

/// Decodes exactly one value filling all of `input`, with the given limits and key-order rule.
pub fn decode_with<'a>(
    input: &'a [u8],
    limits: &DecodeLimits,
    order: KeyOrder,
) -> Result<Value<'a>, DecodeError> {
    let (value, used) = decode_prefix(input, limits, order)?;
    if used != input.len() {
        return Err(DecodeError::TrailingBytes { offset: used });
    }
    Ok(value)
}

/// Decodes one value from the start of `input` and returns it with the number of bytes it took;
/// whatever follows is left alone (BEP 9 metadata messages put raw data after a dictionary).
pub fn decode_prefix<'a>(
    input: &'a [u8],
    limits: &DecodeLimits,
    order: KeyOrder,
) -> Result<(Value<'a>, usize), DecodeError> {
    if input.len() > limits.max_input_len {
        return Err(DecodeError::InputTooLong { offset: 0, len: input.len(), limit: limits.max_input_len });
    }
    let mut d = Decoder { input, pos: 0, items: 0, limits, order };
    let value = d.value(0)?;
    Ok((value, d.pos))
}

/// Cursor over the input. Invariant: `pos <= input.len()`.
struct Decoder<'a, 'l> {
    input: &'a [u8],
    pos: usize,
    items: usize,
    limits: &'l DecodeLimits,
    order: KeyOrder,
}

impl<'a> Decoder<'a, '_> {
    fn peek(&self) -> Result<u8, DecodeError> {
        self.input.get(self.pos).copied().ok_or(DecodeError::UnexpectedEof { offset: self.pos })
    }

    /// The input from `start` to the cursor.
    fn since(&self, start: usize) -> &'a [u8] {
        self.input.get(start..self.pos).unwrap_or_default()
    }

    fn count_item(&mut self) -> Result<(), DecodeError> {
        self.items += 1;
        if self.items > self.limits.max_items {
            return Err(DecodeError::TooManyItems { offset: self.pos, limit: self.limits.max_items });
        }
        Ok(())
    }

    /// Decodes one value; `depth` is the number of containers around it.
    fn value(&mut self, depth: usize) -> Result<Value<'a>, DecodeError> {
        let start = self.pos;
        self.count_item()?;
        let kind = match self.peek()? {
            b'i' => Kind::Int(self.int()?),
            b'0'..=b'9' => Kind::Bytes(self.bytes()?),
            b'l' => {
                self.enter(depth)?;
                let mut items = Vec::new();
                while self.peek()? != b'e' {
                    items.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Kind::List(items)
            }
            b'd' => {
                self.enter(depth)?;
                Kind::Dict(self.dict_body(depth)?)
            }
            byte => return Err(DecodeError::InvalidByte { offset: start, byte }),
        };
        Ok(Value { raw: self.since(start), kind })
    }

    /// Steps over a container's opening byte after checking the depth limit.
    fn enter(&mut self, depth: usize) -> Result<(), DecodeError> {
        if depth >= self.limits.max_depth {
            return Err(DecodeError::TooDeep { offset: self.pos, limit: self.limits.max_depth });
        }
        self.pos += 1;
        Ok(())
    }

    /// The entries of a dictionary whose `d` has been consumed, through its `e`.
    fn dict_body(&mut self, depth: usize) -> Result<Dict<'a>, DecodeError> {
        let mut entries: Vec<(&'a [u8], Value<'a>)> = Vec::new();
        // Offsets of the keys, needed only to report a duplicate found late in `KeyOrder::Any`.
        let mut key_offsets: Vec<usize> = Vec::new();
        let mut sorted = true;
        loop {
            let key_start = self.pos;
            match self.peek()? {
                b'e' => break,
                b'0'..=b'9' => {}
                _ => return Err(DecodeError::KeyNotBytes { offset: key_start }),
            }
            self.count_item()?;
            let key = self.bytes()?;
            if let Some((prev, _)) = entries.last() {
                if key == *prev {
                    return Err(DecodeError::DuplicateKey { offset: key_start });
                }
                if key < *prev {
                    if self.order == KeyOrder::Sorted {
                        return Err(DecodeError::UnsortedKeys { offset: key_start });
                    }
                    sorted = false;
                }
            }
            if self.order == KeyOrder::Any {
                key_offsets.push(key_start);
            }
            let value = self.value(depth + 1)?;
            entries.push((key, value));
        }
        self.pos += 1;
        if !sorted {
            check_unique(&entries, &key_offsets)?;
        }
        Ok(Dict { entries })
    }

    /// A byte string starting at the cursor (its length prefix).
    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let start = self.pos;
        let mut len: usize = 0;
        loop {
            match self.peek()? {
                d @ b'0'..=b'9' => {
                    if len == 0 && self.pos > start {
                        return Err(DecodeError::LeadingZero { offset: start });
                    }
                    len = len
                        .checked_mul(10)
                        .and_then(|l| l.checked_add(usize::from(d - b'0')))
                        .ok_or(DecodeError::LengthOverflow { offset: start })?;
                    self.pos += 1;
                }
                b':' if self.pos > start => break,
                byte => return Err(DecodeError::InvalidByte { offset: self.pos, byte }),
            }
        }
        self.pos += 1;
        if len > self.limits.max_bytes_len {
            return Err(DecodeError::BytesTooLong { offset: start, len, limit: self.limits.max_bytes_len });
        }
        let end = self.pos.checked_add(len).filter(|&e| e <= self.input.len());
        let end = end.ok_or(DecodeError::UnexpectedEof { offset: self.input.len() })?;
        let data = self.input.get(self.pos..end).ok_or(DecodeError::UnexpectedEof { offset: self.pos })?;
        self.pos = end;
        Ok(data)
    }

    /// An integer starting at the cursor (its `i`).
    fn int(&mut self) -> Result<i64, DecodeError> {
        let start = self.pos;
        self.pos += 1;
        let negative = self.peek()? == b'-';
        if negative {
            self.pos += 1;
        }
        let digits_start = self.pos;
        let mut value: i64 = 0;
        loop {
            match self.peek()? {
                d @ b'0'..=b'9' => {
                    if value == 0 && self.pos > digits_start {
                        return Err(DecodeError::LeadingZero { offset: start });
                    }
                    let digit = i64::from(d - b'0');
                    value = value
                        .checked_mul(10)
                        .and_then(|v| if negative { v.checked_sub(digit) } else { v.checked_add(digit) })
                        .ok_or(DecodeError::IntOverflow { offset: start })?;
                    self.pos += 1;
                }
                b'e' => break,
                byte => return Err(DecodeError::InvalidByte { offset: self.pos, byte }),
            }
        }
        if self.pos == digits_start {
            return Err(DecodeError::MissingDigits { offset: start });
        }
        if negative && value == 0 {
            return Err(DecodeError::NegativeZero { offset: start });
        }
        self.pos += 1;
        Ok(value)
    }
}

/// Rejects duplicate keys in a dictionary whose keys were not in order.
fn check_unique(entries: &[(&[u8], Value<'_>)], key_offsets: &[usize]) -> Result<(), DecodeError> {
    let mut keys: Vec<(&[u8], usize)> =
        entries.iter().zip(key_offsets.iter()).map(|((k, _), &off)| (*k, off)).collect();
    keys.sort_unstable();
    for pair in keys.windows(2) {
        if let [(a, _), (b, off)] = pair {
            if a == b {
                return Err(DecodeError::DuplicateKey { offset: *off });
            }
        }
    }
    Ok(())
}
