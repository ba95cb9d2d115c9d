#![allow(dead_code)]
//! Helpers shared by the envelope tests: a fixed data key wrapped by a dummy
//! provider (key wrapping is not this crate's business).

use std::io::{Read, Write};

use envelope::*;

pub fn key() -> DataKey {
    DataKey::from_slice(&[7u8; 32]).unwrap()
}

pub fn context() -> EncryptionContext {
    [("org", "acme"), ("recording_type", "calls"), ("recording_id", "r-1"), ("content_type", "audio/wav")]
        .into_iter()
        .collect()
}

pub fn edk() -> EncryptedDataKey {
    EncryptedDataKey { provider_id: "test".into(), provider_info: b"key-1".to_vec(), ciphertext: vec![1, 2, 3, 4] }
}

pub fn plaintext(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8).collect()
}

pub fn encrypt_with(data: &[u8], frame_length: u32, key: &DataKey) -> Vec<u8> {
    let enc = MessageEncryptor::new(MessageSpec {
        data_key: key,
        encryption_context: context(),
        encrypted_data_keys: vec![edk()],
        frame_length,
    })
    .unwrap();
    let mut w = EncryptingWriter::new(Vec::new(), enc).unwrap();
    // Odd-sized writes exercise the buffering.
    for chunk in data.chunks(1000) {
        w.write_all(chunk).unwrap();
    }
    w.finish().unwrap()
}

pub fn encrypt(data: &[u8], frame_length: u32) -> Vec<u8> {
    encrypt_with(data, frame_length, &key())
}

pub fn decrypt(message: &[u8]) -> Result<Vec<u8>, DecryptError> {
    decrypt_with(message, &key())
}

pub fn decrypt_with(message: &[u8], key: &DataKey) -> Result<Vec<u8>, DecryptError> {
    let pending = PendingMessage::read_header(message, &Limits::default())?;
    let mut reader = pending.decrypt(key)?;
    let mut out = Vec::new();
    reader.read_to_end(&mut out).map_err(DecryptError::from_io)?;
    Ok(out)
}

/// Decrypts a range the way playback does: parse the header, compute the
/// layout from the total length, read only the covering frames.
pub fn decrypt_range(message: &[u8], start: u64, end: u64) -> Result<(Vec<u8>, FrameSpan), DecryptError> {
    let header = Header::parse(message, &Limits::default())?;
    let layout = BodyLayout::new(&header, message.len() as u64)?;
    let span = layout.span(start..end)?;
    let opener = header.opener(&key())?;
    let frames = &message[span.ciphertext.start as usize..span.ciphertext.end as usize];
    let mut out = Vec::new();
    RangeReader::new(frames, opener, layout, &span).read_to_end(&mut out).map_err(DecryptError::from_io)?;
    Ok((out, span))
}

/// The same range through [`FrameOpener::open_in_place`]: the covering frames
/// copied out of the message once, then decrypted where they lie.
pub fn decrypt_range_in_place(message: &[u8], start: u64, end: u64) -> Result<Vec<u8>, DecryptError> {
    let header = Header::parse(message, &Limits::default())?;
    let layout = BodyLayout::new(&header, message.len() as u64)?;
    let span = layout.span(start..end)?;
    let opener = header.opener(&key())?;
    let mut frames = message[span.ciphertext.start as usize..span.ciphertext.end as usize].to_vec();
    let mut whole = Vec::new();
    for frame in opener.open_in_place(&layout, &span, &mut frames) {
        whole.extend_from_slice(frame?);
    }
    let skip = span.skip as usize;
    Ok(whole[skip..skip + span.len() as usize].to_vec())
}
