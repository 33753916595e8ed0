//! The chunked transfer coding (RFC 9112 §7.1), sans-IO: decodes a complete chunked body from
//! the bytes read so far, bounded, for small documents whose server does not send a length
//! (trackers behind some proxies). The Range fetcher never takes chunked bodies.

/// Why a chunked body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkedError {
    /// A chunk size line or the CRLF after a chunk is malformed.
    #[error("malformed chunked body: {0}")]
    Malformed(&'static str),
    /// The decoded body would be larger than allowed.
    #[error("chunked body larger than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
}

/// Decodes the complete chunked body at the start of `raw`: `Ok(None)` if more bytes are needed,
/// else the body and how many bytes of `raw` it took (trailers included and skipped). A body of
/// more than `max_body` bytes is refused as soon as a chunk size says so.
pub fn dechunk(raw: &[u8], max_body: usize) -> Result<Option<(Vec<u8>, usize)>, ChunkedError> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let Some(line_end) = find_crlf(raw.get(pos..).unwrap_or_default()) else { return Ok(None) };
        let line = raw.get(pos..pos + line_end).unwrap_or_default();
        let size_text = line.split(|b| *b == b';').next().unwrap_or_default();
        let size_text = std::str::from_utf8(size_text).map_err(|_| ChunkedError::Malformed("chunk size"))?;
        let size_text = size_text.trim();
        if size_text.is_empty() || !size_text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ChunkedError::Malformed("chunk size"));
        }
        let size = usize::from_str_radix(size_text, 16).map_err(|_| ChunkedError::Malformed("chunk size"))?;
        pos += line_end + 2;
        if size == 0 {
            // Trailer section: lines until an empty one.
            loop {
                let Some(end) = find_crlf(raw.get(pos..).unwrap_or_default()) else { return Ok(None) };
                pos += end + 2;
                if end == 0 {
                    return Ok(Some((body, pos)));
                }
            }
        }
        if size > max_body.saturating_sub(body.len()) {
            return Err(ChunkedError::TooLarge { limit: max_body });
        }
        let Some(data) = raw.get(pos..pos + size) else { return Ok(None) };
        body.extend_from_slice(data);
        pos += size;
        match raw.get(pos..).unwrap_or_default() {
            [] | [b'\r'] => return Ok(None),
            [b'\r', b'\n', ..] => pos += 2,
            _ => return Err(ChunkedError::Malformed("chunk not followed by CRLF")),
        }
    }
}

fn find_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn chunked_bodies() {
        let raw = b"3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: v\r\n\r\nNEXT";
        assert_eq!(dechunk(raw, 100).unwrap(), Some((b"abcde".to_vec(), raw.len() - 4)));
        assert_eq!(dechunk(b"0\r\n\r\n", 100).unwrap(), Some((Vec::new(), 5)));
        assert_eq!(dechunk(b"3\r\nabc\r\n", 100).unwrap(), None);
        assert_eq!(dechunk(b"3\r\nabc\r", 100).unwrap(), None);
        assert_eq!(dechunk(b"3\r\nab", 100).unwrap(), None);
        assert_eq!(dechunk(b"3\r\nabc\r\n0\r\n", 100).unwrap(), None, "trailer section not ended");
        assert!(dechunk(b"zz\r\n", 100).is_err());
        assert!(dechunk(b"+3\r\nabc\r\n0\r\n\r\n", 100).is_err());
        assert!(dechunk(b"\r\n", 100).is_err());
        assert!(dechunk(b"3\r\nabcXX", 100).is_err());
        assert!(dechunk(b"3\r\nabcX", 100).is_err());
        assert_eq!(dechunk(b"ffffffff\r\n", 100), Err(ChunkedError::TooLarge { limit: 100 }));
        assert_eq!(dechunk(b"ffffffffffffffffffffffff\r\n", 100), Err(ChunkedError::Malformed("chunk size")));
        // The limit is on the whole body, not on one chunk.
        assert_eq!(
            dechunk(b"3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n", 5),
            Err(ChunkedError::TooLarge { limit: 5 })
        );
    }

    proptest! {
        #[test]
        fn hostile_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = dechunk(&body, 128);
        }

        #[test]
        fn any_chunking_decodes_to_the_data(
            data in proptest::collection::vec(any::<u8>(), 0..300),
            cuts in proptest::collection::vec(1usize..40, 0..20),
        ) {
            let mut raw = Vec::new();
            let mut rest = &data[..];
            for cut in cuts.iter().chain(std::iter::repeat(&64)) {
                if rest.is_empty() {
                    break;
                }
                let (chunk, tail) = rest.split_at((*cut).min(rest.len()));
                raw.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                raw.extend_from_slice(chunk);
                raw.extend_from_slice(b"\r\n");
                rest = tail;
            }
            raw.extend_from_slice(b"0\r\n\r\n");
            prop_assert_eq!(dechunk(&raw, 300).unwrap(), Some((data.clone(), raw.len())));
            // Every strict prefix needs more bytes.
            for end in 0..raw.len() {
                prop_assert_eq!(dechunk(&raw[..end], 300).unwrap(), None, "prefix {}", end);
            }
        }
    }
}
