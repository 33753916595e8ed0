//! Fuzzes `engine::wire`: arbitrary bytes, fed in arbitrary chunks to the handshake and message
//! decoder; whatever decodes must re-encode to exactly the bytes it came from, and chunking must
//! not change the outcome. Extended payloads go through the BEP 10 / BEP 9 decoders too.
//!
//! Input layout: `[flags, piece_count_byte, chunk_seed, stream...]`.
#![no_main]

use floodgate_engine::wire::{
    Bitfield, Decoder, DecoderConfig, ExtendedHandshake, Handshake, Message, MetadataMessage, WireError,
};
use libfuzzer_sys::fuzz_target;

/// Everything one pass over the stream produced.
#[derive(Debug, PartialEq)]
struct Outcome {
    handshake: Option<Handshake>,
    messages: Vec<Message>,
    error: Option<WireError>,
}

/// Decodes `stream` fed in chunks whose sizes come from `seed` (all at once if `seed` is None).
fn run(config: DecoderConfig, with_handshake: bool, stream: &[u8], seed: Option<u8>) -> Outcome {
    let mut d = Decoder::new(config);
    let mut out = Outcome { handshake: None, messages: Vec::new(), error: None };
    let mut rest = stream;
    let mut state = u32::from(seed.unwrap_or(0)) | 1;
    let mut fed_all = false;
    while !fed_all {
        let n = match seed {
            None => rest.len(),
            Some(_) => {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state % 97) as usize
            }
        };
        let (chunk, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        fed_all = rest.is_empty();
        d.buffer_mut().extend_from_slice(chunk);
        if with_handshake && out.handshake.is_none() {
            match d.handshake() {
                Ok(Some(hs)) => out.handshake = Some(hs),
                Ok(None) => continue,
                Err(e) => {
                    out.error = Some(e);
                    return out;
                }
            }
        }
        loop {
            match d.next() {
                Ok(Some(m)) => out.messages.push(m),
                Ok(None) => break,
                Err(e) => {
                    out.error = Some(e);
                    return out;
                }
            }
        }
    }
    out
}

fn check_extended(m: &Message, piece_count: Option<u32>) {
    match m {
        Message::Extended { id: 0, payload } => {
            if let Ok(hs) = ExtendedHandshake::decode(payload) {
                let Message::Extended { payload: again, .. } = hs.to_message() else { unreachable!() };
                assert_eq!(ExtendedHandshake::decode(&again), Ok(hs));
            }
        }
        Message::Extended { id, payload } => {
            if let Ok(mm) = MetadataMessage::decode(payload) {
                let Message::Extended { payload: again, .. } = mm.to_message(*id) else { unreachable!() };
                assert_eq!(MetadataMessage::decode(&again), Ok(mm));
            }
        }
        Message::Bitfield(bytes) => {
            if let Some(n) = piece_count {
                let bf = Bitfield::new(bytes.clone(), n).expect("decoder validated the bitfield");
                assert_eq!(bf.count_ones() as usize, bf.iter_ones().count());
                assert_eq!(bf.into_bytes(), *bytes);
            }
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let [flags, count, seed, stream @ ..] = data else { return };
    let mut config = DecoderConfig::default();
    if flags & 1 != 0 {
        config.piece_count = Some(u32::from(*count) * 3);
    }
    if flags & 2 != 0 {
        config.max_block_len = 64;
        config.max_bitfield_len = 8;
        config.max_extended_len = 300;
        config.max_unknown_len = 16;
    }
    let with_handshake = flags & 4 != 0;

    let whole = run(config, with_handshake, stream, None);
    let chunked = run(config, with_handshake, stream, Some(*seed));
    assert_eq!(whole, chunked, "chunking changed the outcome");

    // Re-encoding reproduces the input prefix byte for byte.
    let mut encoded = Vec::new();
    if let Some(hs) = &whole.handshake {
        hs.encode(&mut encoded);
    }
    for m in &whole.messages {
        m.encode(&mut encoded);
        check_extended(m, config.piece_count);
    }
    assert_eq!(encoded.as_slice(), stream.get(..encoded.len()).expect("encoded more than was read"));
    if whole.error.is_none() {
        // Whatever is left over is an incomplete message (or an incomplete handshake).
        let mut d = Decoder::new(config);
        d.extend_from_slice(&encoded);
        if with_handshake {
            assert_eq!(d.handshake().ok().flatten(), whole.handshake);
        }
        for m in &whole.messages {
            assert_eq!(d.next().as_ref(), Ok(&Some(m.clone())));
        }
    }
});
