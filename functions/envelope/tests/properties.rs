//! Property tests: round trips, ranges, and a parser that never panics.

mod common;
use std::io::Read;

use common::*;
use envelope::*;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn round_trip_over_sizes_and_frame_lengths(len in 0usize..20_000, frame_length in 1u32..5_000) {
        let data = plaintext(len);
        let msg = encrypt(&data, frame_length);
        prop_assert_eq!(decrypt(&msg).unwrap(), data);
    }

    #[test]
    fn a_range_decrypts_to_the_slice_of_the_plaintext(
        len in 1usize..30_000,
        frame_length in 1u32..4_096,
        a in any::<u64>(),
        b in any::<u64>(),
    ) {
        let data = plaintext(len);
        let msg = encrypt(&data, frame_length);
        let (start, end) = { let x = a % len as u64; let y = b % len as u64; (x.min(y), x.max(y) + 1) };
        let (out, span) = decrypt_range(&msg, start, end).unwrap();
        prop_assert_eq!(&out[..], &data[start as usize..end as usize]);
        prop_assert_eq!(decrypt_range_in_place(&msg, start, end).unwrap(), out);
        // The covering frames, and no more.
        let f = u64::from(frame_length);
        prop_assert!(u64::from(span.last_sequence - span.first_sequence) <= (end - start - 1) / f + 1);
    }

    #[test]
    fn a_span_read_batch_by_batch_gives_the_same_bytes(
        len in 0usize..30_000,
        frame_length in 1u32..4_096,
        a in any::<u64>(),
        b in any::<u64>(),
        max_batch in 1u64..20_000,
        whole in any::<bool>(),
    ) {
        let data = plaintext(len);
        let msg = encrypt(&data, frame_length);
        let header = Header::parse(&msg, &Limits::default()).unwrap();
        let layout = BodyLayout::new(&header, msg.len() as u64).unwrap();
        // What a catalog that kept the sizes knows, before reading the header.
        prop_assert_eq!(Some(layout), BodyLayout::for_plaintext(header.len as u64, frame_length, len as u64));
        prop_assert_eq!(layout.body_len() + header.len as u64, msg.len() as u64);
        let span = if whole || len == 0 {
            layout.whole()
        } else {
            let (x, y) = (a % len as u64, b % len as u64);
            layout.span(x.min(y)..x.max(y) + 1).unwrap()
        };
        let opener = header.opener(&key()).unwrap();
        let (mut out, mut ciphertext_end, mut plaintext_end) = (Vec::new(), span.ciphertext.start, span.plaintext.start);
        for batch in layout.batches(&span, max_batch) {
            // Contiguous, whole frames, within the bound unless a single frame.
            prop_assert_eq!(batch.ciphertext.start, ciphertext_end);
            prop_assert_eq!(batch.plaintext.start, plaintext_end);
            prop_assert!(batch.ciphertext.end - batch.ciphertext.start <= max_batch || batch.first_sequence == batch.last_sequence);
            ciphertext_end = batch.ciphertext.end;
            plaintext_end = batch.plaintext.end;
            let mut frames = msg[batch.ciphertext.start as usize..batch.ciphertext.end as usize].to_vec();
            let mut plain = Vec::new();
            for frame in opener.open_in_place(&layout, &batch, &mut frames) {
                plain.extend_from_slice(frame.unwrap());
            }
            let skip = batch.skip as usize;
            out.extend_from_slice(&plain[skip..skip + batch.len() as usize]);
        }
        prop_assert_eq!(ciphertext_end, span.ciphertext.end);
        prop_assert_eq!(plaintext_end, span.plaintext.end);
        prop_assert_eq!(&out[..], &data[span.plaintext.start as usize..span.plaintext.end as usize]);
    }

    #[test]
    fn the_parser_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Header::parse(&bytes, &Limits::default());
        prop_assert!(decrypt(&bytes).is_err());
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_prefix_never_panic(
        cut in 0usize..400,
        tail in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let msg = encrypt(&plaintext(300), 64);
        let cut = cut.min(msg.len());
        let mixed = [&msg[..cut], &tail[..]].concat();
        if mixed != msg {
            prop_assert!(decrypt(&mixed).is_err());
        }
    }

    #[test]
    fn a_flipped_bit_never_decrypts(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let data = plaintext(1_000);
        let msg = encrypt(&data, 128);
        let mut bad = msg.clone();
        let i = pos.index(bad.len());
        bad[i] ^= 1 << bit;
        prop_assert!(decrypt(&bad).is_err());
    }

    #[test]
    fn reads_of_any_size_give_the_same_plaintext(len in 0usize..5_000, chunk in 1usize..700) {
        let data = plaintext(len);
        let msg = encrypt(&data, 333);
        let mut reader = PendingMessage::read_header(&msg[..], &Limits::default()).unwrap().decrypt(&key()).unwrap();
        let mut out = Vec::new();
        let mut buf = vec![0u8; chunk];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 { break; }
            out.extend_from_slice(&buf[..n]);
        }
        prop_assert!(reader.is_complete());
        prop_assert_eq!(out, data);
    }
}
