//! # fuzz-harness: what each fuzz target runs, and what it must never see
//!
//! One function per target, each taking the fuzzer's bytes. A target returns
//! quietly on input it refuses; it panics (a finding) when an invariant
//! breaks. `fuzz/libfuzzer/fuzz_targets/*.rs` hand them to libFuzzer; `tests/corpus.rs`
//! replays the checked-in corpora as plain tests in `make test`.
//!
//! Messages are decrypted under [`FUZZ_KEY`], whatever their encrypted data
//! keys say: the seeds (`examples/seeds.rs`) are real messages sealed under
//! it, so mutations reach past the header into the frames.

use std::io::Read;

use aws_lc_rs::digest::{digest, SHA256};
use envelope::{BodyLayout, CiphertextCheck, DataKey, Header, Limits, PendingMessage, RangeReader};
use inbound::kms_event::parse_event;
use inbound::range::ByteRange;
use inbound::s3_event::{self, decode_event_key, encode_event_key, Record};

/// The data key every fuzzed message is decrypted with.
pub const FUZZ_KEY: [u8; 32] = [0x42; 32];

/// A target's body.
pub type Target = fn(&[u8]);

/// The targets by name, as `fuzz/corpus/<name>` and `cargo fuzz run <name>` call them.
pub const TARGETS: &[(&str, Target)] = &[
    ("header", header),
    ("decrypt_stream", decrypt_stream),
    ("decrypt_range", decrypt_range),
    ("range_header", range_header),
    ("s3_event", s3_event),
    ("kms_event", kms_event),
];

fn key() -> DataKey {
    DataKey::from_slice(&FUZZ_KEY).expect("32 bytes")
}

/// The header parser: whatever parses serialises, and the serialised header
/// parses back to the same header of the same length.
pub fn header(data: &[u8]) {
    let limits = Limits::default();
    let Ok(parsed) = Header::parse(data, &limits) else { return };
    assert!(parsed.len <= data.len(), "a header longer than its input");
    let bytes = parsed.to_bytes().expect("a parsed header serialises");
    let again = Header::parse(&bytes, &limits).expect("a serialised header parses");
    assert_eq!(again.len, bytes.len());
    assert!(again == Header { len: again.len, ..parsed.clone() }, "the header changed on a round trip");
}

/// Decrypts a whole message under [`FUZZ_KEY`]; `None` when it is refused anywhere.
pub fn decrypt_whole(message: &[u8]) -> Option<Vec<u8>> {
    let pending = PendingMessage::read_header(message, &Limits::default()).ok()?;
    let mut reader = pending.decrypt(&key()).ok()?;
    let mut out = Vec::new();
    reader.read_to_end(&mut out).ok()?;
    assert!(reader.is_complete(), "a message read to its end without its final frame");
    Some(out)
}

/// The streaming decryptor: never panics, and what it releases is a whole,
/// authenticated message whose length the framing predicts. The ingest
/// proof (`CiphertextCheck`, fed the same bytes in pieces) agrees with it:
/// what the check proves, the decryptor decrypts to the same digest, and a
/// message that decrypts with nothing after it passes the check.
pub fn decrypt_stream(data: &[u8]) {
    let whole = decrypt_whole(data);
    let mut check = CiphertextCheck::new(key(), Limits::default());
    let (first, rest) = data.split_at(data.len() / 3);
    let checked = check.update(first).and_then(|()| check.update(rest)).and_then(|()| check.finish());
    if let Ok(proof) = &checked {
        let plaintext = whole.as_ref().expect("the check proved a message the decryptor refuses");
        assert_eq!(proof.plaintext_len, plaintext.len() as u64);
        assert_eq!(
            &proof.plaintext_sha256[..],
            digest(&SHA256, plaintext).as_ref(),
            "the check and the decryptor disagree"
        );
    }
    let Some(plaintext) = whole else { return };
    let header = Header::parse(data, &Limits::default()).expect("it decrypted");
    if BodyLayout::new(&header, data.len() as u64).is_ok_and(|l| l.plaintext_len() == plaintext.len() as u64) {
        assert!(checked.is_ok(), "a message that decrypts, with nothing after it, fails the check: {checked:?}");
    }
    // Trailing bytes after the final frame are not part of the message.
    let layouts: Vec<u64> = (header.len..=data.len())
        .filter_map(|end| BodyLayout::new(&header, end as u64).ok())
        .map(|l| l.plaintext_len())
        .collect();
    assert!(layouts.contains(&(plaintext.len() as u64)), "released {} bytes no framing predicts", plaintext.len());
}

/// Ranged decryption: the first 16 bytes choose a range, the rest is the
/// message. A range read from the covering frames alone equals the same
/// bytes of the whole message whenever the whole message decrypts.
pub fn decrypt_range(data: &[u8]) {
    if data.len() < 16 {
        return;
    }
    let (choice, message) = data.split_at(16);
    let a = u64::from_le_bytes(choice[..8].try_into().expect("8 bytes"));
    let b = u64::from_le_bytes(choice[8..].try_into().expect("8 bytes"));
    let Ok(header) = Header::parse(message, &Limits::default()) else { return };
    let Ok(layout) = BodyLayout::new(&header, message.len() as u64) else { return };
    let Ok(opener) = header.opener(&key()) else { return };
    let len = layout.plaintext_len();
    let start = a % (len + 1);
    let end = start + b % (len - start + 1);
    let Ok(span) = layout.span(start..end) else { return };
    assert_eq!(span.plaintext, start..end);
    assert!(span.ciphertext.end <= message.len() as u64, "a span past the message's end");
    let mut ranged = Vec::new();
    let from = &message[span.ciphertext.start as usize..span.ciphertext.end as usize];
    let ranged_ok = RangeReader::new(from, opener, layout, &span).read_to_end(&mut ranged).is_ok();
    if let Some(whole) = decrypt_whole(message) {
        assert!(ranged_ok, "a range of a message that decrypts whole was refused");
        assert_eq!(ranged, whole[start as usize..end as usize], "a range differs from the whole message's bytes");
    }
    if ranged_ok {
        assert_eq!(ranged.len() as u64, end - start);
    }
}

/// The HTTP `Range` parser: a range that resolves lies inside the
/// representation, is not empty and is no longer than the cap.
pub fn range_header(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(range) = ByteRange::parse(text) else { return };
    for len in [0, 1, 17, 65_536, u64::MAX] {
        for cap in [1, 4096, u64::MAX] {
            if let Some(r) = range.resolve(len, cap) {
                assert!(r.start < r.end && r.end <= len, "{text:?} against {len}: {r:?}");
                assert!(r.end - r.start <= cap, "{text:?} past the cap {cap}: {r:?}");
            }
        }
    }
}

/// S3 event notifications: an object announced has a key S3 allows and an
/// ETag, and S3's key encoding round-trips.
pub fn s3_event(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        assert_eq!(decode_event_key(&encode_event_key(text)).as_deref(), Ok(text), "key encoding round trip");
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let Ok(records) = s3_event::parse(&value) else { return };
    for record in records {
        if let Record::Object(announced) = record {
            assert!(!announced.key.is_empty() && announced.key.len() <= 1024);
            assert!(!announced.key.ends_with('/'), "a folder marker announced as an object");
            assert!(!announced.etag.is_empty() && !announced.etag.contains('"'));
            assert_ne!(announced.version.as_deref(), Some("null"));
        }
    }
}

/// KMS events from EventBridge: read or refused, never a panic.
pub fn kms_event(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let _ = parse_event(&value);
}
