//! Tampering: every kind of modification fails with a typed error, and no
//! plaintext of a frame that did not authenticate is ever released.

mod common;
use std::io::Read;

use common::*;
use envelope::*;

const F: usize = 256;

fn message() -> (Vec<u8>, Vec<u8>) {
    let data = plaintext(4 * F + 10);
    (encrypt(&data, F as u32), data)
}

/// Reads as much plaintext as the reader releases before it fails, both
/// through reads smaller than a frame (plaintext buffered in the reader) and
/// through reads that take whole frames (decrypted straight into the
/// caller's buffer): the two must release the same.
fn released(msg: &[u8]) -> (Vec<u8>, Option<DecryptError>) {
    let small = released_in(msg, 97);
    let whole = released_in(msg, 4 * F);
    assert_eq!(small.0, whole.0, "both read paths release the same plaintext");
    assert_eq!(format!("{:?}", small.1), format!("{:?}", whole.1), "and fail the same way");
    small
}

fn released_in(msg: &[u8], read_size: usize) -> (Vec<u8>, Option<DecryptError>) {
    let pending = match PendingMessage::read_header(msg, &Limits::default()) {
        Ok(p) => p,
        Err(e) => return (Vec::new(), Some(e)),
    };
    let mut reader = match pending.decrypt(&key()) {
        Ok(r) => r,
        Err(e) => return (Vec::new(), Some(e)),
    };
    let mut out = Vec::new();
    let mut buf = vec![0u8; read_size];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return (out, None),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (out, Some(DecryptError::from_io(e))),
        }
    }
}

/// What [`FrameOpener::open_in_place`] yields over the whole body before it
/// fails, and the bytes it leaves where the failing frame was.
fn released_in_place(msg: &[u8]) -> (Vec<u8>, Option<DecryptError>) {
    let header = Header::parse(msg, &Limits::default()).unwrap();
    let layout = match BodyLayout::new(&header, msg.len() as u64) {
        Ok(l) => l,
        Err(e) => return (Vec::new(), Some(e)),
    };
    let span = layout.whole();
    let opener = header.opener(&key()).unwrap();
    let mut body = msg[header.len..].to_vec();
    let mut out = Vec::new();
    for frame in opener.open_in_place(&layout, &span, &mut body) {
        match frame {
            Ok(plain) => out.extend_from_slice(plain),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

fn header_len(msg: &[u8]) -> usize {
    Header::parse(msg, &Limits::default()).unwrap().len
}

fn frame_start(msg: &[u8], index: usize) -> usize {
    header_len(msg) + index * (F + REGULAR_FRAME_OVERHEAD as usize)
}

#[test]
fn a_flipped_bit_anywhere_in_the_header_is_refused_before_any_plaintext() {
    let (msg, _) = message();
    for pos in 0..header_len(&msg) {
        for bit in [0, 7] {
            let mut bad = msg.clone();
            bad[pos] ^= 1 << bit;
            let (out, err) = released(&bad);
            assert!(out.is_empty(), "byte {pos} bit {bit} released plaintext");
            assert!(err.is_some(), "byte {pos} bit {bit} decrypted");
        }
    }
}

fn flip_header_field(offset_from: impl Fn(&Header, &[u8]) -> usize) -> DecryptError {
    let (msg, _) = message();
    let header = Header::parse(&msg, &Limits::default()).unwrap();
    let mut bad = msg.clone();
    bad[offset_from(&header, &msg)] ^= 0x01;
    let (out, err) = released(&bad);
    assert!(out.is_empty());
    err.expect("tampered header must fail")
}

#[test]
fn a_flipped_version_is_not_a_message() {
    let e = flip_header_field(|_, _| 0);
    assert!(matches!(e, DecryptError::Header(HeaderError::NotAMessage(3))), "{e:?}");
    assert_eq!(e.code(), "not_a_message");
}

#[test]
fn a_flipped_suite_id_is_an_unsupported_suite() {
    let e = flip_header_field(|_, _| 2);
    assert!(matches!(e, DecryptError::Header(HeaderError::UnsupportedSuite { id: 0x0479, .. })), "{e:?}");
}

#[test]
fn a_flipped_message_id_breaks_the_key_commitment() {
    assert!(matches!(flip_header_field(|_, _| 10), DecryptError::Commitment));
}

#[test]
fn a_flipped_context_byte_fails_the_header_tag() {
    // Inside the value of the first pair: still well-formed, not authentic.
    let e = flip_header_field(|h, _| {
        let first_key = h.encryption_context.iter().next().unwrap().0;
        37 + 2 + 2 + first_key.len() + 2
    });
    assert!(matches!(e, DecryptError::HeaderAuth), "{e:?}");
}

#[test]
fn a_flipped_encrypted_data_key_fails_the_header_tag() {
    let e = flip_header_field(|h, msg| {
        let ct = &h.encrypted_data_keys[0].ciphertext;
        let pos = msg[..h.len].windows(ct.len()).position(|w| w == ct.as_slice()).unwrap();
        pos + 1
    });
    assert!(matches!(e, DecryptError::HeaderAuth), "{e:?}");
}

#[test]
fn a_flipped_content_type_is_refused() {
    let e = flip_header_field(|h, _| h.len - 16 - 32 - 4 - 1);
    assert!(matches!(e, DecryptError::Header(HeaderError::UnsupportedContentType(3))), "{e:?}");
}

#[test]
fn a_flipped_frame_length_fails_the_header_tag() {
    let e = flip_header_field(|h, _| h.len - 16 - 32 - 1);
    assert!(matches!(e, DecryptError::HeaderAuth), "{e:?}");
}

#[test]
fn a_flipped_commitment_is_refused() {
    assert!(matches!(flip_header_field(|h, _| h.len - 20), DecryptError::Commitment));
}

#[test]
fn a_flipped_header_tag_is_refused() {
    assert!(matches!(flip_header_field(|h, _| h.len - 1), DecryptError::HeaderAuth));
}

#[test]
fn a_flipped_bit_in_frame_content_releases_only_the_frames_before_it() {
    let (msg, data) = message();
    for frame in 0..4 {
        let mut bad = msg.clone();
        bad[frame_start(&msg, frame) + 16 + 3] ^= 0x80;
        let (out, err) = released(&bad);
        assert_eq!(out, &data[..frame * F], "frame {frame}");
        assert!(matches!(err, Some(DecryptError::FrameAuth { sequence }) if sequence == frame as u32 + 1));
    }
}

#[test]
fn a_flipped_frame_tag_is_refused() {
    let (msg, data) = message();
    let mut bad = msg.clone();
    bad[frame_start(&msg, 2) - 1] ^= 0x01; // last tag byte of frame 2
    let (out, err) = released(&bad);
    assert_eq!(out, &data[..F]);
    assert!(matches!(err, Some(DecryptError::FrameAuth { sequence: 2 })));
}

#[test]
fn a_flipped_bit_in_the_final_frame_releases_none_of_it() {
    let (msg, data) = message();
    let mut bad = msg.clone();
    let last = bad.len() - 20;
    bad[last] ^= 0x01;
    let (out, err) = released(&bad);
    assert_eq!(out, &data[..4 * F]);
    assert!(matches!(err, Some(DecryptError::FrameAuth { sequence: 5 })));
}

#[test]
fn a_flipped_final_frame_length_is_refused() {
    let (msg, _) = message();
    let mut bad = msg.clone();
    // marker(4) seq(4) iv(12) then the length.
    let pos = frame_start(&msg, 4) + 4 + 4 + 12 + 3;
    bad[pos] ^= 0x01;
    let (_, err) = released(&bad);
    assert!(err.is_some());
}

#[test]
fn a_modified_iv_is_refused() {
    let (msg, _) = message();
    let mut bad = msg.clone();
    bad[frame_start(&msg, 1) + 4] ^= 0x01;
    let (_, err) = released(&bad);
    assert!(matches!(err, Some(DecryptError::MalformedFrame { sequence: 2, .. })));
}

#[test]
fn truncation_at_every_frame_boundary_is_refused() {
    let (msg, data) = message();
    for frame in 0..=4 {
        let cut = frame_start(&msg, frame);
        let (out, err) = released(&msg[..cut]);
        assert!(matches!(err, Some(DecryptError::Truncated)), "cut at frame {frame}: {err:?}");
        assert_eq!(out, &data[..frame * F]);
    }
}

#[test]
fn truncation_inside_a_frame_or_the_header_is_refused() {
    let (msg, _) = message();
    for cut in [1, 50, header_len(&msg) - 1, frame_start(&msg, 1) + 7, msg.len() - 1] {
        let (_, err) = released(&msg[..cut]);
        assert!(err.is_some(), "cut at {cut}");
    }
}

#[test]
fn a_missing_final_frame_is_refused() {
    let (msg, data) = message();
    let (out, err) = released(&msg[..frame_start(&msg, 4)]);
    assert!(matches!(err, Some(DecryptError::Truncated)));
    assert_eq!(out, &data[..4 * F]);
}

#[test]
fn reordered_frames_are_refused() {
    let (msg, data) = message();
    let (a, b, c) = (frame_start(&msg, 1), frame_start(&msg, 2), frame_start(&msg, 3));
    let bad = [&msg[..a], &msg[b..c], &msg[a..b], &msg[c..]].concat();
    let (out, err) = released(&bad);
    assert_eq!(out, &data[..F]);
    assert!(matches!(err, Some(DecryptError::Sequence { expected: 2, found: 3 })));
}

#[test]
fn duplicated_frames_are_refused() {
    let (msg, _) = message();
    let (a, b) = (frame_start(&msg, 1), frame_start(&msg, 2));
    let bad = [&msg[..b], &msg[a..b], &msg[b..]].concat();
    let (_, err) = released(&bad);
    assert!(matches!(err, Some(DecryptError::Sequence { expected: 3, found: 2 })));
}

#[test]
fn trailing_bytes_are_refused_before_the_final_frame_is_released() {
    let (msg, data) = message();
    let bad = [&msg[..], b"x"].concat();
    let (out, err) = released(&bad);
    assert!(matches!(err, Some(DecryptError::TrailingData)));
    assert_eq!(out, &data[..4 * F]);
}

#[test]
fn the_wrong_data_key_fails_the_commitment() {
    let (msg, _) = message();
    let wrong = DataKey::from_slice(&[9u8; 32]).unwrap();
    assert!(matches!(decrypt_with(&msg, &wrong), Err(DecryptError::Commitment)));
}

#[test]
fn a_swapped_body_from_another_message_is_refused() {
    let (a, _) = message();
    let (b, _) = message();
    let mixed = [&a[..header_len(&a)], &b[header_len(&b)..]].concat();
    let (out, err) = released(&mixed);
    assert!(out.is_empty());
    assert!(matches!(err, Some(DecryptError::FrameAuth { sequence: 1 })));
}

#[test]
fn a_ranged_read_of_a_tampered_frame_releases_nothing() {
    let (msg, _) = message();
    let mut bad = msg.clone();
    bad[frame_start(&msg, 2) + 20] ^= 0x04;
    let r = decrypt_range(&bad, 2 * F as u64, 2 * F as u64 + 10);
    assert!(matches!(r, Err(DecryptError::FrameAuth { sequence: 3 })));
}

#[test]
fn a_ranged_read_finds_a_regular_frame_where_the_final_one_belongs() {
    // Without its final frame, the message's length still fits a layout (three
    // regular frames and a shorter final one), but the frame found where the
    // final one belongs is a regular frame.
    let (msg, _) = message();
    let cut = &msg[..frame_start(&msg, 4)];
    let header = Header::parse(cut, &Limits::default()).unwrap();
    let layout = BodyLayout::new(&header, cut.len() as u64).unwrap();
    let last = layout.plaintext_len() - 1;
    let r = decrypt_range(cut, last, last + 1);
    assert!(matches!(r, Err(DecryptError::MalformedFrame { sequence: 4, .. })), "{r:?}");
}

#[test]
fn a_version_1_message_is_refused_by_name() {
    let mut msg = message().0;
    msg[0] = 0x01;
    let e = decrypt(&msg).unwrap_err();
    assert!(e.to_string().contains("format version 1 (0x01)"), "{e}");
    assert!(!e.to_string().contains("not an AWS Encryption SDK message"), "{e}");
    assert_eq!(e.code(), "unsupported");
}

#[test]
fn a_signed_suite_is_refused_by_name() {
    let mut msg = message().0;
    msg[1..3].copy_from_slice(&0x0578u16.to_be_bytes());
    let e = decrypt(&msg).unwrap_err();
    assert!(e.to_string().contains("0x0578") && e.to_string().contains("signed"), "{e}");
}

#[test]
fn limits_bound_data_keys_context_and_frame_length() {
    let (msg, _) = message();
    let strict = Limits { max_encrypted_data_keys: 0, ..Limits::default() };
    assert!(matches!(Header::parse(&msg, &strict), Err(HeaderError::TooManyDataKeys { count: 1, limit: 0 })));
    let strict = Limits { max_context_len: 8, ..Limits::default() };
    assert!(matches!(Header::parse(&msg, &strict), Err(HeaderError::ContextTooLarge { limit: 8, .. })));
    let strict = Limits { max_frame_length: 128, ..Limits::default() };
    assert!(matches!(Header::parse(&msg, &strict), Err(HeaderError::FrameLength { len: 256, limit: 128 })));
    let strict = Limits { max_header_len: 60, ..Limits::default() };
    assert!(matches!(
        PendingMessage::read_header(&msg[..], &strict).err().unwrap(),
        DecryptError::Header(HeaderError::HeaderTooLarge { limit: 60 })
    ));
}

#[test]
fn a_read_straight_into_the_callers_buffer_leaves_nothing_of_a_failed_frame() {
    let (msg, data) = message();
    let mut bad = msg.clone();
    bad[frame_start(&msg, 1) + 16 + 3] ^= 0x80;
    let mut reader = PendingMessage::read_header(&bad[..], &Limits::default()).unwrap().decrypt(&key()).unwrap();
    let mut buf = vec![0xAAu8; F];
    assert_eq!(reader.read(&mut buf).unwrap(), F);
    assert_eq!(buf, &data[..F]);
    let err = DecryptError::from_io(reader.read(&mut buf).unwrap_err());
    assert!(matches!(err, DecryptError::FrameAuth { sequence: 2 }));
    assert!(buf.iter().all(|&b| b == 0), "the failed frame's bytes were wiped from the caller's buffer");
    assert!(reader.read(&mut buf).is_err(), "and the reader stays failed");
}

#[test]
fn frames_opened_in_place_stop_at_the_first_tampered_frame_and_wipe_it() {
    let (msg, data) = message();
    let (out, err) = released_in_place(&msg);
    assert!(err.is_none() && out == data);
    for frame in 0..5 {
        let mut bad = msg.clone();
        let at = if frame == 4 { bad.len() - 20 } else { frame_start(&msg, frame) + 16 + 3 };
        bad[at] ^= 0x80;
        let (out, err) = released_in_place(&bad);
        assert_eq!(out, &data[..frame * F], "frame {frame}");
        assert!(matches!(err, Some(DecryptError::FrameAuth { sequence }) if sequence == frame as u32 + 1));
    }
    // The wiped frame: decrypt in place by hand and look at the bytes.
    let mut bad = msg.clone();
    bad[frame_start(&msg, 1) + 20] ^= 0x01;
    let header = Header::parse(&bad, &Limits::default()).unwrap();
    let layout = BodyLayout::new(&header, bad.len() as u64).unwrap();
    let span = layout.whole();
    let opener = header.opener(&key()).unwrap();
    let mut body = bad[header.len..].to_vec();
    let results: Vec<bool> = opener.open_in_place(&layout, &span, &mut body).map(|r| r.is_ok()).collect();
    assert_eq!(results, [true, false], "nothing is yielded after the failure");
    let second = F + REGULAR_FRAME_OVERHEAD as usize;
    assert!(body[second + 16..2 * second].iter().all(|&b| b == 0));
}

#[test]
fn frames_opened_in_place_refuse_trailing_and_missing_bytes() {
    let (msg, data) = message();
    let long = [&msg[..], b"x"].concat();
    let (out, err) = released_in_place(&long);
    // One more byte is a different total length: the layout no longer fits
    // the frame length, or the last frame is misread. Either way nothing
    // past the genuine frames is released and an error is given.
    assert!(err.is_some());
    assert!(data.starts_with(&out));
    let short = &msg[..msg.len() - 1];
    let (out, err) = released_in_place(short);
    assert!(err.is_some());
    assert!(data.starts_with(&out) && out.len() < data.len());
}

#[test]
fn frames_opened_in_place_include_an_empty_final_frame_and_miss_it_when_cut() {
    let data = plaintext(3 * F);
    let msg = encrypt(&data, F as u32);
    let (out, err) = released_in_place(&msg);
    assert!(err.is_none() && out == data);
    // Without its (empty) final frame the message is a different length,
    // which the layout reads as a shorter final frame that fails.
    let cut = &msg[..msg.len() - FINAL_FRAME_OVERHEAD as usize];
    let (out, err) = released_in_place(cut);
    assert!(err.is_some());
    assert!(out.len() < data.len());
}
