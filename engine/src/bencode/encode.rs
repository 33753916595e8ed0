//! Streaming bencode encoding into a caller-owned buffer.

use super::value::{Kind, Value};

/// Why an [`Encoder`] could not produce valid bencode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The same key was written twice into one dictionary.
    #[error("duplicate dictionary key {key:?}")]
    DuplicateKey {
        /// The repeated key.
        key: Vec<u8>,
    },
}

/// Writes bencode values into a `Vec<u8>` owned by the caller.
///
/// Values are appended as they are written. Dictionaries are written through [`Encoder::dict`],
/// whose entries may be written in any order: they are put in sorted key order when the
/// dictionary closes (no extra work when they already were). The first error (a duplicate key)
/// is kept and reported by [`Encoder::finish`]; the bytes written after it are unspecified.
///
/// ```
/// use floodgate_engine::bencode::Encoder;
/// let mut out = Vec::new();
/// let mut enc = Encoder::new(&mut out);
/// enc.dict(|d| {
///     d.str(b"name", "a.iso");
///     d.int(b"length", 5);
/// });
/// enc.finish().unwrap();
/// assert_eq!(out, b"d6:lengthi5e4:name5:a.isoe");
/// ```
#[derive(Debug)]
pub struct Encoder<'o> {
    out: &'o mut Vec<u8>,
    error: Option<EncodeError>,
}

/// Writes the entries of one dictionary; handed out by [`Encoder::dict`].
#[derive(Debug)]
pub struct DictEncoder<'e, 'o> {
    enc: &'e mut Encoder<'o>,
    /// For each entry: offset of its key's length prefix, and of the key bytes' start and end.
    entries: Vec<EntryMark>,
    sorted: bool,
}

#[derive(Debug, Clone, Copy)]
struct EntryMark {
    start: usize,
    key_start: usize,
    key_end: usize,
}

impl<'o> Encoder<'o> {
    /// An encoder appending to `out`.
    pub fn new(out: &'o mut Vec<u8>) -> Self {
        Encoder { out, error: None }
    }

    /// Writes an integer.
    pub fn int(&mut self, v: i64) {
        self.out.push(b'i');
        if v < 0 {
            self.out.push(b'-');
        }
        write_decimal(self.out, v.unsigned_abs());
        self.out.push(b'e');
    }

    /// Writes a byte string.
    pub fn bytes(&mut self, b: &[u8]) {
        write_decimal(self.out, b.len() as u64);
        self.out.push(b':');
        self.out.extend_from_slice(b);
    }

    /// Writes a UTF-8 string as a byte string.
    pub fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    /// Copies an already encoded value verbatim (e.g. an `info` dictionary whose exact bytes
    /// must be kept). The caller vouches that `encoded` is exactly one valid value.
    pub fn raw(&mut self, encoded: &[u8]) {
        self.out.extend_from_slice(encoded);
    }

    /// Writes a decoded value in canonical form (see [`encode`]).
    pub fn value(&mut self, v: &Value<'_>) {
        match v.kind() {
            Kind::Int(i) => self.int(*i),
            Kind::Bytes(b) => self.bytes(b),
            Kind::List(items) => self.list(|l| items.iter().for_each(|item| l.value(item))),
            Kind::Dict(d) if d.is_sorted() => self.dict(|e| {
                for (k, val) in d.iter() {
                    e.entry(k, |w| w.value(val));
                }
            }),
            Kind::Dict(d) => {
                let mut entries: Vec<_> = d.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                self.dict(|e| {
                    for (k, val) in entries {
                        e.entry(k, |w| w.value(val));
                    }
                })
            }
        }
    }

    /// Writes a list whose items `f` writes.
    pub fn list(&mut self, f: impl FnOnce(&mut Self)) {
        self.out.push(b'l');
        f(self);
        self.out.push(b'e');
    }

    /// Writes a dictionary whose entries `f` writes, in any order.
    pub fn dict(&mut self, f: impl FnOnce(&mut DictEncoder<'_, 'o>)) {
        self.out.push(b'd');
        let body_start = self.out.len();
        let mut d = DictEncoder { enc: self, entries: Vec::new(), sorted: true };
        f(&mut d);
        let DictEncoder { entries, sorted, .. } = d;
        if !sorted {
            self.sort_entries(body_start, entries);
        }
        self.out.push(b'e');
    }

    /// Reorders the entries written since `body_start` by key.
    fn sort_entries(&mut self, body_start: usize, mut marks: Vec<EntryMark>) {
        let body = self.out.split_off(body_start);
        let ends: Vec<usize> = marks
            .iter()
            .skip(1)
            .map(|m| m.start)
            .chain(std::iter::once(self.out.len() + body.len()))
            .collect();
        let key =
            |m: &EntryMark| body.get(m.key_start - body_start..m.key_end - body_start).unwrap_or_default();
        let mut order: Vec<(EntryMark, usize)> = marks.drain(..).zip(ends).collect();
        order.sort_by(|a, b| key(&a.0).cmp(key(&b.0)));
        for pair in order.windows(2) {
            if let [(a, _), (b, _)] = pair {
                if key(a) == key(b) && self.error.is_none() {
                    self.error = Some(EncodeError::DuplicateKey { key: key(a).to_vec() });
                }
            }
        }
        for (mark, end) in order {
            let entry = body.get(mark.start - body_start..end - body_start).unwrap_or_default();
            self.out.extend_from_slice(entry);
        }
    }

    /// Ends encoding: `Ok` if everything written was valid bencode.
    pub fn finish(self) -> Result<(), EncodeError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl<'o> DictEncoder<'_, 'o> {
    /// Writes one entry: the key, then the value that `f` writes (exactly one value).
    pub fn entry(&mut self, key: &[u8], f: impl FnOnce(&mut Encoder<'o>)) {
        let start = self.enc.out.len();
        self.enc.bytes(key);
        let key_end = self.enc.out.len();
        let key_start = key_end - key.len();
        if let Some(prev) = self.entries.last() {
            let prev_key = self.enc.out.get(prev.key_start..prev.key_end).unwrap_or_default();
            if prev_key >= key {
                self.sorted = false;
            }
        }
        self.entries.push(EntryMark { start, key_start, key_end });
        f(self.enc);
    }

    /// Writes an integer entry.
    pub fn int(&mut self, key: &[u8], v: i64) {
        self.entry(key, |e| e.int(v));
    }

    /// Writes a byte-string entry.
    pub fn bytes(&mut self, key: &[u8], v: &[u8]) {
        self.entry(key, |e| e.bytes(v));
    }

    /// Writes a UTF-8 string entry.
    pub fn str(&mut self, key: &[u8], v: &str) {
        self.entry(key, |e| e.str(v));
    }
}

/// Appends `value` to `out` in canonical form: dictionary keys sorted. For a strictly decoded
/// value this reproduces [`Value::raw`] byte for byte.
pub fn encode(value: &Value<'_>, out: &mut Vec<u8>) {
    // A decoded value has no duplicate keys, so this encoder cannot fail.
    Encoder::new(out).value(value);
}

/// Appends the decimal digits of `n`.
fn write_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}
