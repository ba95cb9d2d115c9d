//! Round trips, layout and re-keying of the message format.

mod common;
use common::*;
use envelope::*;

const F: usize = 4096;

#[test]
fn round_trips_the_boundary_sizes() {
    for len in [0, 1, F - 1, F, F + 1, 3 * F + 17, 4 * F] {
        let data = plaintext(len);
        let msg = encrypt(&data, F as u32);
        assert_eq!(decrypt(&msg).unwrap(), data, "size {len}");
    }
}

#[test]
fn exact_multiple_of_the_frame_length_ends_with_an_empty_final_frame() {
    // The official Python SDK refuses a final frame as long as a frame.
    let msg = encrypt(&plaintext(2 * F), F as u32);
    let header = Header::parse(&msg, &Limits::default()).unwrap();
    let layout = BodyLayout::new(&header, msg.len() as u64).unwrap();
    assert_eq!((layout.regular_frames, layout.final_frame_len), (2, 0));
    assert_eq!(decrypt(&msg).unwrap(), plaintext(2 * F));
}

#[test]
fn a_full_final_frame_from_another_writer_is_accepted() {
    // The specification allows a full final frame; build one with the
    // sans-IO encryptor and read it back, whole and by range.
    let data = plaintext(2 * F);
    let mut enc = MessageEncryptor::new(MessageSpec {
        data_key: &key(),
        encryption_context: context(),
        encrypted_data_keys: vec![edk()],
        frame_length: F as u32,
    })
    .unwrap();
    let mut msg = enc.header_bytes().to_vec();
    enc.seal_frame(&data[..F], &mut msg).unwrap();
    enc.seal_final(&data[F..], &mut msg).unwrap();
    let header = Header::parse(&msg, &Limits::default()).unwrap();
    let layout = BodyLayout::new(&header, msg.len() as u64).unwrap();
    assert_eq!((layout.regular_frames, layout.final_frame_len), (1, F as u32));
    assert_eq!(decrypt(&msg).unwrap(), data);
    assert_eq!(decrypt_range(&msg, 2 * F as u64 - 1, 2 * F as u64).unwrap().0, &data[2 * F - 1..]);
}

#[test]
fn empty_plaintext_is_one_empty_final_frame() {
    let msg = encrypt(&[], F as u32);
    let header = Header::parse(&msg, &Limits::default()).unwrap();
    assert_eq!(msg.len() as u64, header.len as u64 + FINAL_FRAME_OVERHEAD);
    assert_eq!(BodyLayout::new(&header, msg.len() as u64).unwrap().plaintext_len(), 0);
}

#[test]
fn header_parse_and_serialize_are_inverse() {
    let msg = encrypt(b"hello", F as u32);
    let header = Header::parse(&msg, &Limits::default()).unwrap();
    assert_eq!(header.to_bytes().unwrap(), msg[..header.len]);
    assert_eq!(header.suite_id, 0x0478);
    assert_eq!(header.encryption_context, context());
    assert_eq!(header.encrypted_data_keys, vec![edk()]);
    assert_eq!(header.frame_length, F as u32);
}

#[test]
fn every_message_gets_a_fresh_message_id() {
    let a = Header::parse(&encrypt(b"x", 64), &Limits::default()).unwrap();
    let b = Header::parse(&encrypt(b"x", 64), &Limits::default()).unwrap();
    assert_ne!(a.message_id, b.message_id);
}

#[test]
fn layout_gives_plaintext_length_from_total_length() {
    for len in [0usize, 1, F - 1, F, F + 1, 5 * F + 3] {
        let msg = encrypt(&plaintext(len), F as u32);
        let header = Header::parse(&msg, &Limits::default()).unwrap();
        let layout = BodyLayout::new(&header, msg.len() as u64).unwrap();
        assert_eq!(layout.plaintext_len(), len as u64);
    }
}

#[test]
fn the_layout_recognises_its_final_frame_prefix_and_nothing_else() {
    for len in [0usize, F - 1, F, 3 * F + 5] {
        let msg = encrypt(&plaintext(len), F as u32);
        let header = Header::parse(&msg, &Limits::default()).unwrap();
        let layout = BodyLayout::new(&header, msg.len() as u64).unwrap();
        let at = layout.final_frame_offset() as usize;
        let prefix = &msg[at..at + FINAL_FRAME_PREFIX_LEN];
        assert!(layout.final_frame_matches(prefix), "size {len}");
        for i in 0..FINAL_FRAME_PREFIX_LEN {
            let mut bad = prefix.to_vec();
            bad[i] ^= 1;
            assert!(!layout.final_frame_matches(&bad), "size {len}, byte {i}");
        }
        assert!(!layout.final_frame_matches(&prefix[..FINAL_FRAME_PREFIX_LEN - 1]));
    }
}

#[test]
fn layout_refuses_lengths_no_framing_produces() {
    let msg = encrypt(&plaintext(3 * F), F as u32);
    let header = Header::parse(&msg, &Limits::default()).unwrap();
    // A final frame longer than a frame would be needed.
    let total = msg.len() as u64 + F as u64 + 1;
    assert!(matches!(BodyLayout::new(&header, total), Err(DecryptError::Length)));
    assert!(matches!(BodyLayout::new(&header, header.len as u64 + 3), Err(DecryptError::Length)));
}

#[test]
fn a_range_reads_only_the_frames_that_cover_it() {
    let data = plaintext(10 * F + 100);
    let msg = encrypt(&data, F as u32);
    // One byte inside frame 3.
    let (out, span) = decrypt_range(&msg, 2 * F as u64 + 5, 2 * F as u64 + 6).unwrap();
    assert_eq!(out, &data[2 * F + 5..2 * F + 6]);
    assert_eq!((span.first_sequence, span.last_sequence), (3, 3));
    assert_eq!(span.ciphertext.end - span.ciphertext.start, F as u64 + REGULAR_FRAME_OVERHEAD);
    // Crossing one boundary: two frames.
    let (out, span) = decrypt_range(&msg, F as u64 - 1, F as u64 + 1).unwrap();
    assert_eq!(out, &data[F - 1..F + 1]);
    assert_eq!((span.first_sequence, span.last_sequence), (1, 2));
    // The last byte lives in the final frame.
    let end = data.len() as u64;
    let (out, span) = decrypt_range(&msg, end - 1, end).unwrap();
    assert_eq!(out, &data[data.len() - 1..]);
    assert_eq!(span.last_sequence, 11);
}

#[test]
fn a_range_outside_the_plaintext_is_refused() {
    let msg = encrypt(&plaintext(100), F as u32);
    assert!(matches!(decrypt_range(&msg, 100, 101), Err(DecryptError::Range { len: 100, .. })));
    assert!(matches!(decrypt_range(&msg, 5, 5), Err(DecryptError::Range { .. })));
    assert!(matches!(decrypt_range(&encrypt(&[], 64), 0, 1), Err(DecryptError::Range { len: 0, .. })));
}

#[test]
fn the_same_data_key_never_seals_two_headers_under_one_derived_key() {
    // No API re-seals a header under an existing data key: each message
    // gets a fresh message id, hence its own derived key, and the header
    // tag's all-zero IV is never used twice under one key.
    let (a, b) = (encrypt(b"audio", F as u32), encrypt(b"audio", F as u32));
    let (ha, hb) = (Header::parse(&a, &Limits::default()).unwrap(), Header::parse(&b, &Limits::default()).unwrap());
    assert_ne!(ha.message_id, hb.message_id);
    assert_ne!(ha.commitment, hb.commitment, "a different derived key");
    assert_ne!(ha.auth_tag, hb.auth_tag);
}

#[test]
fn reading_the_header_consumes_no_body_bytes() {
    let msg = encrypt(&plaintext(F + 3), F as u32);
    let header = Header::parse(&msg, &Limits::default()).unwrap();
    let mut cursor = std::io::Cursor::new(&msg);
    let pending = PendingMessage::read_header(&mut cursor, &Limits::default()).unwrap();
    assert_eq!(pending.header(), &header);
    assert_eq!(cursor.position() as usize, header.len);
}

#[test]
fn refuses_an_encryption_context_with_reserved_keys() {
    let err = MessageEncryptor::new(MessageSpec {
        data_key: &key(),
        encryption_context: [("aws-crypto-public-key", "x")].into_iter().collect(),
        encrypted_data_keys: vec![edk()],
        frame_length: 64,
    })
    .err()
    .unwrap();
    assert!(matches!(err, EncryptError::ReservedContextKey(_)));
}

#[test]
fn refuses_zero_and_oversized_frame_lengths_and_no_data_keys() {
    for frame_length in [0, 16 * 1024 * 1024 + 1] {
        let r = MessageEncryptor::new(MessageSpec {
            data_key: &key(),
            encryption_context: context(),
            encrypted_data_keys: vec![edk()],
            frame_length,
        });
        assert!(matches!(r.err().unwrap(), EncryptError::FrameLength { .. }));
    }
    let r = MessageEncryptor::new(MessageSpec {
        data_key: &key(),
        encryption_context: context(),
        encrypted_data_keys: vec![],
        frame_length: 64,
    });
    assert!(matches!(r.err().unwrap(), EncryptError::DataKeys(_)));
}
