//! The decoded bencode tree.

/// One decoded bencode value, borrowing from the input it was decoded from.
///
/// Values are made only by the decoder, so [`Value::raw`] is always the exact span of input
/// bytes the value was read from (for a strictly decoded value this is also its canonical
/// encoding). Equality compares structure and raw bytes, not where the bytes live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value<'a> {
    pub(super) raw: &'a [u8],
    pub(super) kind: Kind<'a>,
}

/// What a [`Value`] is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind<'a> {
    /// An integer (`i42e`).
    Int(i64),
    /// A byte string (`4:spam`), borrowed from the input.
    Bytes(&'a [u8]),
    /// A list (`l...e`).
    List(Vec<Value<'a>>),
    /// A dictionary (`d...e`).
    Dict(Dict<'a>),
}

/// A decoded dictionary: its entries in input order, keys unique.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Dict<'a> {
    pub(super) entries: Vec<(&'a [u8], Value<'a>)>,
}

impl<'a> Value<'a> {
    /// The exact bytes this value was decoded from.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// What this value is.
    pub fn kind(&self) -> &Kind<'a> {
        &self.kind
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self.kind {
            Kind::Int(i) => Some(i),
            _ => None,
        }
    }

    /// The byte string, if this is one.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self.kind {
            Kind::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The byte string as UTF-8, if this is a byte string holding valid UTF-8.
    pub fn as_str(&self) -> Option<&'a str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }

    /// The list items, if this is a list.
    pub fn as_list(&self) -> Option<&[Value<'a>]> {
        match &self.kind {
            Kind::List(items) => Some(items),
            _ => None,
        }
    }

    /// The dictionary, if this is one.
    pub fn as_dict(&self) -> Option<&Dict<'a>> {
        match &self.kind {
            Kind::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// A short name of the kind, for error messages: `"int"`, `"bytes"`, `"list"` or `"dict"`.
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::Int(_) => "int",
            Kind::Bytes(_) => "bytes",
            Kind::List(_) => "list",
            Kind::Dict(_) => "dict",
        }
    }
}

impl<'a> Dict<'a> {
    /// The value under `key`, if present.
    pub fn get(&self, key: &[u8]) -> Option<&Value<'a>> {
        self.entries.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The entries in the order they appeared in the input.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&'a [u8], &Value<'a>)> + '_ {
        self.entries.iter().map(|(k, v)| (*k, v))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the dictionary has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the keys appear in strictly ascending byte order (always true for a strictly
    /// decoded dictionary).
    pub fn is_sorted(&self) -> bool {
        self.entries.windows(2).all(|w| match w {
            [(a, _), (b, _)] => a < b,
            _ => true,
        })
    }
}
