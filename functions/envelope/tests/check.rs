//! `CiphertextCheck`: a message re-read from the bytes written, fed in
//! pieces of any size, proves it decrypts to the plaintext's digest; any
//! change to the bytes, a wrong key, a cut or an extra byte is refused.

mod common;

use aws_lc_rs::digest::{digest, SHA256};
use common::*;
use envelope::*;
use proptest::prelude::*;

fn check(message: &[u8], pieces: &[usize], key: &DataKey) -> Result<CheckedMessage, DecryptError> {
    let mut check = CiphertextCheck::new(key.clone(), Limits::default());
    let mut rest = message;
    for &n in pieces.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, tail) = rest.split_at(n.clamp(1, rest.len()));
        check.update(piece)?;
        rest = tail;
    }
    check.finish()
}

fn sha256(data: &[u8]) -> [u8; 32] {
    digest(&SHA256, data).as_ref().try_into().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_message_fed_in_any_pieces_proves_its_plaintext(
        len in 0usize..5000,
        frame in prop::sample::select(vec![1u32, 16, 100, 4096]),
        pieces in prop::collection::vec(1usize..3000, 1..8),
    ) {
        let data = plaintext(len);
        let message = encrypt(&data, frame);
        let checked = check(&message, &pieces, &key()).unwrap();
        prop_assert_eq!(checked.plaintext_len, len as u64);
        prop_assert_eq!(checked.plaintext_sha256, sha256(&data));
        prop_assert_eq!(checked.header.frame_length, frame);
    }

    #[test]
    fn any_flipped_bit_is_refused(len in 0usize..600, at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut message = encrypt(&plaintext(len), 64);
        let i = at.index(message.len());
        message[i] ^= 1 << bit;
        prop_assert!(check(&message, &[17, 4096], &key()).is_err(), "a flip at {} passed", i);
    }
}

#[test]
fn a_wrong_key_a_cut_or_an_extra_byte_is_refused() {
    let data = plaintext(1000);
    let message = encrypt(&data, 100);
    assert!(check(&message, &[1000], &key()).is_ok());
    let other = DataKey::from_slice(&[8u8; 32]).unwrap();
    assert!(matches!(check(&message, &[1000], &other), Err(DecryptError::Commitment | DecryptError::HeaderAuth)));
    for cut in [1, 20, message.len() / 2, message.len() - 1] {
        assert!(check(&message[..cut], &[64], &key()).is_err(), "cut at {cut} passed");
    }
    let mut longer = message.clone();
    longer.push(0);
    assert!(check(&longer, &[64], &key()).is_err());
}

#[test]
fn a_message_whose_frames_were_swapped_is_refused() {
    let message = encrypt(&plaintext(300), 100);
    let header_len = Header::parse(&message, &Limits::default()).unwrap().len;
    let frame = 100 + REGULAR_FRAME_OVERHEAD as usize;
    let mut swapped = message.clone();
    let (first, second) = (header_len..header_len + frame, header_len + frame..header_len + 2 * frame);
    swapped[first.clone()].copy_from_slice(&message[second.clone()]);
    swapped[second].copy_from_slice(&message[first]);
    assert!(matches!(check(&swapped, &[4096], &key()), Err(DecryptError::Sequence { .. })));
}
