//! Percent-encoding (RFC 3986), binary-safe: tracker queries (info-hashes, peer ids) and magnet links.

/// Appends `bytes` to `out` percent-encoded: unreserved characters (`A-Z a-z 0-9 - . _ ~`) stay
/// as they are, every other byte becomes `%XX` (upper-case hex).
pub fn percent_encode(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
}

/// Decodes a percent-encoded query component: `%XX` becomes a byte and `+` a space. `None` for a
/// `%` not followed by two hex digits.
pub fn percent_decode(s: &str) -> Option<Vec<u8>> {
    percent_decode_at(s).ok()
}

/// As [`percent_decode`], but a bad escape reports its byte position in `s`.
pub fn percent_decode_at(s: &str) -> Result<Vec<u8>, usize> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let digit = |k: usize| bytes.get(i + k).copied().and_then(hex_digit).ok_or(i);
                out.push(digit(1)? << 4 | digit(2)?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(out)
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_escapes_report_their_position() {
        assert_eq!(percent_decode_at("ab%4"), Err(2));
        assert_eq!(percent_decode_at("%zz"), Err(0));
        assert_eq!(percent_decode_at("a%41+b"), Ok(b"aA b".to_vec()));
    }
}
