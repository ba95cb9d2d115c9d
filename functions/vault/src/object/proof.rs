//! Proof that what is stored decrypts to what was read, before the
//! plaintext is deleted, without a second download and without KMS Decrypt
//! (the ingest role wraps and never unwraps).

use std::sync::{Arc, Mutex};

use aws_lc_rs::digest::{Context, SHA256};
use envelope::{CiphertextCheck, EncryptedDataKey};

use crate::ports::objects::UploadCheck;

/// The plaintext as it was read: its length and SHA-256.
pub type PlaintextDigest = (u64, [u8; 32]);

/// Digests the plaintext as it is read.
pub struct PlaintextDigester {
    context: Context,
    len: u64,
}

impl PlaintextDigester {
    pub fn new() -> Self {
        Self { context: Context::new(&SHA256), len: 0 }
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.context.update(bytes);
        self.len += bytes.len() as u64;
    }

    pub fn finish(self) -> PlaintextDigest {
        (self.len, self.context.finish().as_ref().try_into().expect("SHA-256 is 32 bytes"))
    }
}

impl Default for PlaintextDigester {
    fn default() -> Self {
        Self::new()
    }
}

/// The vault upload's [`UploadCheck`]: sees the ciphertext exactly as it is
/// hashed and sent, re-reads it with the data key (header parsed from those
/// bytes and authenticated, every frame opened before it leaves), and lets
/// the object be stored only when
/// - the message is whole (final frame, nothing after it),
/// - its header carries exactly the wrapped data keys the keyring made, for
///   the configured keys (a KMS ciphertext and an RSA-OAEP wrap cannot be
///   traced back to the data key without the unwrapping key, which this
///   role does not have: the check is that the keyring's own output, and
///   nothing else, is what is written),
/// - and its plaintext has the length and SHA-256 of the plaintext read.
pub struct DecryptionProof {
    check: Option<CiphertextCheck>,
    encrypted_data_keys: Vec<EncryptedDataKey>,
    read: Arc<Mutex<Option<PlaintextDigest>>>,
}

impl DecryptionProof {
    /// A proof for a message being written; give the plaintext's digest to
    /// the returned cell once it has all been read, before the upload is
    /// finished.
    pub fn new(
        check: CiphertextCheck,
        encrypted_data_keys: Vec<EncryptedDataKey>,
    ) -> (Self, Arc<Mutex<Option<PlaintextDigest>>>) {
        let read = Arc::new(Mutex::new(None));
        (Self { check: Some(check), encrypted_data_keys, read: read.clone() }, read)
    }
}

impl UploadCheck for DecryptionProof {
    fn part(&mut self, bytes: &[u8]) -> Result<(), String> {
        let check = self.check.as_mut().ok_or("bytes after the check finished")?;
        check.update(bytes).map_err(|e| format!("the ciphertext does not decrypt: {e}"))
    }

    fn finish(&mut self) -> Result<(), String> {
        let check = self.check.take().ok_or("the check finished twice")?;
        let checked = check.finish().map_err(|e| format!("the ciphertext does not decrypt: {e}"))?;
        if checked.header.encrypted_data_keys != self.encrypted_data_keys {
            return Err("the written header carries other wrapped data keys than the keyring made".into());
        }
        let read = self
            .read
            .lock()
            .map_err(|_| "the plaintext digest was poisoned")?
            .take()
            .ok_or("the plaintext was not read to its end")?;
        if (checked.plaintext_len, checked.plaintext_sha256) != read {
            return Err(format!(
                "the ciphertext decrypts to {} bytes with SHA-256 {}, the plaintext read was {} bytes with SHA-256 {}",
                checked.plaintext_len,
                hex::encode(checked.plaintext_sha256),
                read.0,
                hex::encode(read.1)
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use envelope::{DataKey, EncryptingWriter, EncryptionContext, Limits, MessageEncryptor, MessageSpec};

    use super::*;

    fn edk(arn: &str) -> EncryptedDataKey {
        EncryptedDataKey {
            provider_id: "aws-kms".into(),
            provider_info: arn.as_bytes().to_vec(),
            ciphertext: vec![9; 40],
        }
    }

    /// A message of `plaintext` under a fresh data key wrapped as `written`,
    /// and a proof that expects `expected` wrapped keys.
    fn prove(
        plaintext: &[u8],
        written: Vec<EncryptedDataKey>,
        expected: Vec<EncryptedDataKey>,
        read: Option<&[u8]>,
    ) -> Result<(), String> {
        let key = DataKey::generate();
        let spec = MessageSpec {
            data_key: &key,
            encryption_context: EncryptionContext::from_iter([("org", "acme")]),
            encrypted_data_keys: written,
            frame_length: 64,
        };
        let mut w = EncryptingWriter::new(Vec::new(), MessageEncryptor::new(spec).unwrap()).unwrap();
        w.write_all(plaintext).unwrap();
        let message = w.finish().unwrap();
        let (mut proof, cell) = DecryptionProof::new(CiphertextCheck::new(key, Limits::default()), expected);
        if let Some(read) = read {
            let mut d = PlaintextDigester::new();
            d.update(read);
            *cell.lock().unwrap() = Some(d.finish());
        }
        for part in message.chunks(100) {
            proof.part(part)?;
        }
        proof.finish()
    }

    #[test]
    fn a_message_that_decrypts_to_what_was_read_with_the_keyrings_keys_is_proven() {
        let data = vec![5u8; 1000];
        prove(&data, vec![edk("a"), edk("b")], vec![edk("a"), edk("b")], Some(&data)).unwrap();
    }

    #[test]
    fn other_wrapped_keys_in_the_written_header_are_refused() {
        let data = vec![5u8; 300];
        let e = prove(&data, vec![edk("a")], vec![edk("a"), edk("b")], Some(&data)).unwrap_err();
        assert!(e.contains("other wrapped data keys"), "{e}");
        let e = prove(&data, vec![edk("b"), edk("a")], vec![edk("a"), edk("b")], Some(&data)).unwrap_err();
        assert!(e.contains("other wrapped data keys"), "{e}");
    }

    #[test]
    fn a_message_of_other_plaintext_or_of_plaintext_not_read_to_its_end_is_refused() {
        let data = vec![5u8; 300];
        let mut other = data.clone();
        other[299] = 6;
        let e = prove(&data, vec![edk("a")], vec![edk("a")], Some(&other)).unwrap_err();
        assert!(e.contains("the plaintext read was 300 bytes"), "{e}");
        let e = prove(&data, vec![edk("a")], vec![edk("a")], Some(&data[..299])).unwrap_err();
        assert!(e.contains("decrypts to 300 bytes"), "{e}");
        let e = prove(&data, vec![edk("a")], vec![edk("a")], None).unwrap_err();
        assert!(e.contains("not read to its end"), "{e}");
    }
}
