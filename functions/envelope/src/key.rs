//! The plaintext data key and the keys derived from it.

use aws_lc_rs::aead::{LessSafeKey, UnboundKey, AES_256_GCM};
use aws_lc_rs::hkdf::{KeyType, Salt, HKDF_SHA512};
use zeroize::{Zeroize, Zeroizing};

use crate::suite::COMMIT_KEY_UNSIGNED;

/// Length in bytes of a data key, a derived key and a commitment key.
pub const KEY_LEN: usize = 32;

/// A plaintext data key. Zeroized on drop; its `Debug` shows no key bytes.
#[derive(Clone)]
pub struct DataKey(Zeroizing<[u8; KEY_LEN]>);

impl DataKey {
    /// A fresh random data key.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        aws_lc_rs::rand::fill(bytes.as_mut()).expect("the system random generator is available");
        Self(bytes)
    }

    /// A data key from its bytes; `None` unless exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; KEY_LEN] = bytes.try_into().ok()?;
        Some(Self(Zeroizing::new(arr)))
    }

    /// The key bytes, for wrapping. Keep copies in `Zeroizing` buffers.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

struct Len(usize);
impl KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// The per-message keys derived from a data key and a message id.
pub(crate) struct MessageKeys {
    pub(crate) aead: LessSafeKey,
    pub(crate) commitment: [u8; KEY_LEN],
}

impl MessageKeys {
    /// HKDF-SHA512 with salt = message id: the encryption key (info = suite id
    /// || "DERIVEKEY") and the commitment key (info = "COMMITKEY").
    pub(crate) fn derive(data_key: &DataKey, message_id: &[u8; 32]) -> Self {
        let prk = Salt::new(HKDF_SHA512, message_id).extract(data_key.expose());
        let mut enc = Zeroizing::new([0u8; KEY_LEN]);
        let info: &[u8] = &[&COMMIT_KEY_UNSIGNED.to_be_bytes()[..], b"DERIVEKEY"].concat();
        prk.expand(&[info], Len(KEY_LEN))
            .and_then(|okm| okm.fill(enc.as_mut()))
            .expect("HKDF-SHA512 can expand 32 bytes");
        let mut commitment = [0u8; KEY_LEN];
        prk.expand(&[b"COMMITKEY"], Len(KEY_LEN))
            .and_then(|okm| okm.fill(&mut commitment))
            .expect("HKDF-SHA512 can expand 32 bytes");
        let aead = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, enc.as_ref()).expect("32-byte AES-256 key"));
        enc.zeroize();
        Self { aead, commitment }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_key_bytes() {
        let key = DataKey::from_slice(&[0xab; 32]).unwrap();
        let shown = format!("{key:?}");
        assert!(!shown.contains("ab") && !shown.contains("171"), "{shown}");
    }

    #[test]
    fn from_slice_requires_32_bytes() {
        assert!(DataKey::from_slice(&[0; 31]).is_none());
        assert!(DataKey::from_slice(&[0; 33]).is_none());
    }
}
