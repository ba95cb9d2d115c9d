//! An in-memory KMS for unit tests of code written against
//! [`KeyManagement`]: real AES-GCM and RSA-OAEP, key states, call counts.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeySize, OaepPrivateDecryptingKey, PrivateDecryptingKey, OAEP_SHA256_MGF1SHA256};
use envelope::{DataKey, EncryptionContext};
use zeroize::Zeroizing;

use crate::error::KeyError;
use crate::kms::{GeneratedDataKey, KeyDescription, KeyKind, KeyManagement, KeyState};

enum Material {
    Symmetric(LessSafeKey),
    Rsa(OaepPrivateDecryptingKey, Vec<u8>),
}

struct Key {
    material: Material,
    state: KeyState,
}

/// Counts of calls by operation name (`Decrypt`, `GenerateDataKey`, ...).
#[derive(Default)]
pub struct CallCounts(Mutex<HashMap<&'static str, usize>>);

impl CallCounts {
    fn add(&self, op: &'static str) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()).entry(op).or_default() += 1;
    }
    /// Calls of `op` so far.
    pub fn get(&self, op: &str) -> usize {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).get(op).copied().unwrap_or(0)
    }
}

/// An in-memory KMS.
#[derive(Default)]
pub struct MemoryKms {
    keys: Mutex<HashMap<String, Key>>,
    counter: AtomicUsize,
    /// Calls by operation.
    pub calls: CallCounts,
}

impl MemoryKms {
    /// A new, empty KMS.
    pub fn new() -> Self {
        Self::default()
    }

    fn next_arn(&self, region: &str) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("arn:aws:kms:{region}:111122223333:key/00000000-0000-0000-0000-{n:012}")
    }

    /// Creates a symmetric key in `region`, returns its ARN.
    pub fn create_symmetric(&self, region: &str) -> String {
        let arn = self.next_arn(region);
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).expect("random");
        let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &bytes).expect("key"));
        self.insert(&arn, Material::Symmetric(key));
        arn
    }

    /// Creates an RSA-2048 encryption key in `region`, returns its ARN.
    pub fn create_rsa(&self, region: &str) -> String {
        let arn = self.next_arn(region);
        let private = PrivateDecryptingKey::generate(KeySize::Rsa2048).expect("rsa");
        let der = private.public_key().as_der().expect("der").as_ref().to_vec();
        self.insert(&arn, Material::Rsa(OaepPrivateDecryptingKey::new(private).expect("oaep"), der));
        arn
    }

    fn insert(&self, arn: &str, material: Material) {
        self.keys.lock().unwrap().insert(arn.to_string(), Key { material, state: KeyState::Enabled });
    }

    /// Sets a key's state.
    pub fn set_state(&self, arn: &str, state: KeyState) {
        if let Some(k) = self.keys.lock().unwrap().get_mut(arn) {
            k.state = state;
        }
    }

    fn with_key<T>(&self, arn: &str, f: impl FnOnce(&Key) -> Result<T, KeyError>) -> Result<T, KeyError> {
        let keys = self.keys.lock().unwrap();
        let key = keys.get(arn).ok_or_else(|| KeyError::NotFound { key: arn.to_string() })?;
        f(key)
    }

    fn usable(arn: &str, key: &Key) -> Result<(), KeyError> {
        KeyDescription { arn: arn.to_string(), kind: KeyKind::Symmetric, state: key.state.clone() }.require_enabled()
    }

    fn aad(context: &EncryptionContext) -> Vec<u8> {
        context.serialize().unwrap_or_default()
    }

    fn seal(arn: &str, key: &Key, plaintext: &[u8], context: &EncryptionContext) -> Result<Vec<u8>, KeyError> {
        let Material::Symmetric(aead) = &key.material else {
            return Err(KeyError::Unsupported { key: arn.to_string(), detail: "not symmetric".into() });
        };
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).expect("random");
        let mut out = plaintext.to_vec();
        aead.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(Self::aad(context)), &mut out)
            .expect("seal");
        Ok([&nonce[..], &out].concat())
    }
}

impl KeyManagement for MemoryKms {
    async fn describe_key(&self, key_id: &str) -> Result<KeyDescription, KeyError> {
        self.calls.add("DescribeKey");
        self.with_key(key_id, |k| {
            let kind = match k.material {
                Material::Symmetric(_) => KeyKind::Symmetric,
                Material::Rsa(..) => KeyKind::Rsa,
            };
            Ok(KeyDescription { arn: key_id.to_string(), kind, state: k.state.clone() })
        })
    }

    async fn generate_data_key(
        &self,
        key_arn: &str,
        context: &EncryptionContext,
    ) -> Result<GeneratedDataKey, KeyError> {
        self.calls.add("GenerateDataKey");
        let data_key = DataKey::generate();
        let ciphertext = self.with_key(key_arn, |k| {
            Self::usable(key_arn, k)?;
            Self::seal(key_arn, k, data_key.expose(), context)
        })?;
        Ok(GeneratedDataKey { data_key, ciphertext, key_arn: key_arn.to_string() })
    }

    async fn wrap_data_key(
        &self,
        key_arn: &str,
        data_key: &DataKey,
        context: &EncryptionContext,
    ) -> Result<Vec<u8>, KeyError> {
        self.calls.add("Encrypt");
        self.with_key(key_arn, |k| {
            Self::usable(key_arn, k)?;
            Self::seal(key_arn, k, data_key.expose(), context)
        })
    }

    async fn unwrap_data_key(
        &self,
        key_arn: &str,
        ciphertext: &[u8],
        context: &EncryptionContext,
    ) -> Result<(Zeroizing<Vec<u8>>, String), KeyError> {
        self.calls.add("Decrypt");
        self.with_key(key_arn, |k| {
            Self::usable(key_arn, k)?;
            let Material::Symmetric(aead) = &k.material else {
                return Err(KeyError::Unsupported { key: key_arn.to_string(), detail: "not symmetric".into() });
            };
            let invalid = || KeyError::Integrity { detail: "InvalidCiphertextException".into() };
            if ciphertext.len() < NONCE_LEN {
                return Err(invalid());
            }
            let nonce: [u8; NONCE_LEN] = ciphertext[..NONCE_LEN].try_into().map_err(|_| invalid())?;
            let mut buf = Zeroizing::new(ciphertext[NONCE_LEN..].to_vec());
            let n = aead
                .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(Self::aad(context)), &mut buf)
                .map_err(|_| invalid())?
                .len();
            buf.truncate(n);
            Ok((buf, key_arn.to_string()))
        })
    }

    async fn rsa_decrypt(&self, key_arn: &str, ciphertext: &[u8]) -> Result<(Zeroizing<Vec<u8>>, String), KeyError> {
        self.calls.add("Decrypt");
        self.with_key(key_arn, |k| {
            Self::usable(key_arn, k)?;
            let Material::Rsa(private, _) = &k.material else {
                return Err(KeyError::Unsupported { key: key_arn.to_string(), detail: "not RSA".into() });
            };
            let mut out = Zeroizing::new(vec![0u8; 512]);
            let n = private
                .decrypt(&OAEP_SHA256_MGF1SHA256, ciphertext, &mut out, None)
                .map_err(|_| KeyError::Integrity { detail: "InvalidCiphertextException".into() })?
                .len();
            out.truncate(n);
            Ok((out, key_arn.to_string()))
        })
    }

    async fn public_key(&self, key_arn: &str) -> Result<Vec<u8>, KeyError> {
        self.calls.add("GetPublicKey");
        self.with_key(key_arn, |k| match &k.material {
            Material::Rsa(_, der) => Ok(der.clone()),
            Material::Symmetric(_) => {
                Err(KeyError::Unsupported { key: key_arn.to_string(), detail: "symmetric".into() })
            }
        })
    }
}
