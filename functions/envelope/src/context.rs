//! The encryption context: authenticated, unencrypted key-value pairs that are
//! written into the header and sent to KMS with every call.

use std::collections::BTreeMap;

use crate::error::EncryptError;

/// The prefix the AWS Encryption SDK reserves for its own context keys.
pub const RESERVED_PREFIX: &str = "aws-crypto-";

/// An encryption context. Pairs are kept sorted by the UTF-8 bytes of their
/// keys, which is the order the message format serializes them in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EncryptionContext(BTreeMap<String, String>);

impl EncryptionContext {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a pair.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.0.insert(key.into(), value.into());
        self
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// Pairs in serialization order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The pairs as a map.
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// Checks that this context may be written by an encryptor: no reserved
    /// keys, and everything fits the header's 16-bit length fields.
    pub fn validate_for_encrypt(&self) -> Result<(), EncryptError> {
        if let Some(k) = self.0.keys().find(|k| k.starts_with(RESERVED_PREFIX)) {
            return Err(EncryptError::ReservedContextKey(k.clone()));
        }
        self.serialize().map(|_| ())
    }

    /// The serialized form used in the header's AAD and in the RSA keyring's
    /// digest: empty for an empty context, else pair count then each pair as
    /// length-prefixed key and value.
    pub fn serialize(&self) -> Result<Vec<u8>, EncryptError> {
        if self.0.is_empty() {
            return Ok(Vec::new());
        }
        let count = u16::try_from(self.0.len()).map_err(|_| EncryptError::ContextTooLarge("more than 65535 pairs"))?;
        let mut out = Vec::with_capacity(2 + self.0.iter().map(|(k, v)| 4 + k.len() + v.len()).sum::<usize>());
        out.extend_from_slice(&count.to_be_bytes());
        for (k, v) in &self.0 {
            for field in [k, v] {
                let len = u16::try_from(field.len())
                    .map_err(|_| EncryptError::ContextTooLarge("a key or value is longer than 65535 bytes"))?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(field.as_bytes());
            }
        }
        if out.len() > usize::from(u16::MAX) {
            return Err(EncryptError::ContextTooLarge("more than 65535 bytes serialized"));
        }
        Ok(out)
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for EncryptionContext {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(iter.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }
}

impl From<BTreeMap<String, String>> for EncryptionContext {
    fn from(map: BTreeMap<String, String>) -> Self {
        Self(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_context_serializes_to_nothing() {
        assert!(EncryptionContext::new().serialize().unwrap().is_empty());
    }

    #[test]
    fn pairs_serialize_sorted_by_utf8_bytes() {
        let ctx: EncryptionContext = [("b", "2"), ("a", "1"), ("\u{e9}", "3")].into_iter().collect();
        let bytes = ctx.serialize().unwrap();
        assert_eq!(
            bytes,
            [&[0, 3][..], &[0, 1, b'a', 0, 1, b'1'], &[0, 1, b'b', 0, 1, b'2'], &[0, 2, 0xc3, 0xa9, 0, 1, b'3']]
                .concat()
        );
    }

    #[test]
    fn reserved_prefix_is_refused_for_encryption() {
        let ctx: EncryptionContext = [("aws-crypto-public-key", "x")].into_iter().collect();
        assert_eq!(ctx.validate_for_encrypt(), Err(EncryptError::ReservedContextKey("aws-crypto-public-key".into())));
    }

    #[test]
    fn oversized_value_is_refused() {
        let ctx: EncryptionContext = [("k", "v".repeat(70_000))].into_iter().collect();
        assert!(matches!(ctx.serialize(), Err(EncryptError::ContextTooLarge(_))));
    }
}
