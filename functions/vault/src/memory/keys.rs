//! The twin of the key ports ([`KeyManagement`], [`KeyInspection`]): real
//! AES-GCM and RSA-OAEP, key states, aliases and rotation facts, call counts,
//! and planned faults.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeySize, OaepPrivateDecryptingKey, PrivateDecryptingKey, OAEP_SHA256_MGF1SHA256};
use envelope::{DataKey, EncryptionContext};
use zeroize::Zeroizing;

use super::Faults;
use crate::ports::keys::{
    GeneratedDataKey, KeyDescription, KeyError, KeyFacts, KeyInspection, KeyKind, KeyManagement, KeyState,
    RotationFacts,
};

enum Material {
    Symmetric(LessSafeKey),
    Rsa(OaepPrivateDecryptingKey, Vec<u8>),
}

struct Key {
    material: Material,
    state: KeyState,
    aliases: Vec<String>,
    /// Unix seconds.
    created: i64,
    rotation_enabled: bool,
    last_rotation: Option<i64>,
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
    /// Planned faults, by operation (`GenerateDataKey`, `Decrypt`, ...).
    pub faults: Faults<KeyError>,
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

    /// Creates a symmetric multi-Region key in `primary` with a replica in
    /// each of `replicas` (the same key id and key material); returns their
    /// ARNs, the primary's first.
    pub fn create_multi_region(&self, primary: &str, replicas: &[&str]) -> Vec<String> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).expect("random");
        std::iter::once(primary)
            .chain(replicas.iter().copied())
            .map(|region| {
                let arn = format!("arn:aws:kms:{region}:111122223333:key/mrk-{n:032x}");
                let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &bytes).expect("key"));
                self.insert(&arn, Material::Symmetric(key));
                arn
            })
            .collect()
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
        let key = Key {
            material,
            state: KeyState::Enabled,
            aliases: Vec::new(),
            created: crate::time::unix_now() as i64,
            rotation_enabled: false,
            last_rotation: None,
        };
        self.keys.lock().unwrap().insert(arn.to_string(), key);
    }

    /// Gives a key an alias (`alias/...`).
    pub fn add_alias(&self, arn: &str, alias: &str) {
        if let Some(k) = self.keys.lock().unwrap().get_mut(arn) {
            k.aliases.push(alias.to_string());
        }
    }

    /// Sets when a key was created (Unix seconds) and its rotation: on or
    /// off, and when it was last rotated.
    pub fn set_rotation(&self, arn: &str, created: i64, enabled: bool, last_rotation: Option<i64>) {
        if let Some(k) = self.keys.lock().unwrap().get_mut(arn) {
            (k.created, k.rotation_enabled, k.last_rotation) = (created, enabled, last_rotation);
        }
    }

    /// Forgets a key, as KMS does once it is deleted.
    pub fn delete(&self, arn: &str) {
        self.keys.lock().unwrap().remove(arn);
    }

    /// A key's state, `None` when there is no such key.
    pub fn state(&self, arn: &str) -> Option<KeyState> {
        self.keys.lock().unwrap().get(arn).map(|k| k.state.clone())
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
        self.faults.before("DescribeKey").await?;
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
        self.faults.before("GenerateDataKey").await?;
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
        self.faults.before("Encrypt").await?;
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
        self.faults.before("Decrypt").await?;
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
        self.faults.before("Decrypt").await?;
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
        self.faults.before("GetPublicKey").await?;
        self.with_key(key_arn, |k| match &k.material {
            Material::Rsa(_, der) => Ok(der.clone()),
            Material::Symmetric(_) => {
                Err(KeyError::Unsupported { key: key_arn.to_string(), detail: "symmetric".into() })
            }
        })
    }
}

impl MemoryKms {
    fn kind_of(material: &Material) -> (&'static str, KeyKind) {
        match material {
            Material::Symmetric(_) => ("SYMMETRIC_DEFAULT", KeyKind::Symmetric),
            Material::Rsa(..) => ("RSA_2048", KeyKind::Rsa),
        }
    }
}

impl KeyInspection for MemoryKms {
    async fn key_facts(&self, key_arn: &str) -> Result<KeyFacts, KeyError> {
        self.calls.add("DescribeKey");
        self.faults.before("DescribeKey").await?;
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let Some(k) = keys.get(key_arn) else { return Ok(KeyFacts::default()) };
        Ok(KeyFacts {
            state: Some(k.state.clone()),
            deletion_date: (k.state == KeyState::PendingDeletion).then(|| crate::time::unix_now() as i64 + 30 * 86_400),
            aliases: k.aliases.clone(),
            spec: Some(Self::kind_of(&k.material).0.to_string()),
            error: None,
        })
    }

    async fn rotation_facts(&self, key_arn: &str) -> RotationFacts {
        self.calls.add("DescribeKey");
        let mut facts = RotationFacts { key_arn: key_arn.to_string(), ..Default::default() };
        if let Err(e) = self.faults.before("DescribeKey").await {
            facts.errors.push(format!("DescribeKey: {e}"));
            return facts;
        }
        let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let Some(k) = keys.get(key_arn) else {
            facts.missing = true;
            return facts;
        };
        facts.state = Some(k.state.clone());
        facts.spec = Some(Self::kind_of(&k.material).0.to_string());
        facts.origin = Some("AWS_KMS".into());
        facts.created = Some(k.created);
        facts.multi_region = Some(false);
        facts.key_usage = Some("ENCRYPT_DECRYPT".into());
        if facts.kms_rotates() {
            facts.rotation_enabled = Some(k.rotation_enabled);
            facts.rotation_period_days = k.rotation_enabled.then_some(365);
            facts.last_rotation = k.last_rotation;
            facts.last_rotation_type = k.last_rotation.map(|_| "AUTOMATIC".to_string());
        }
        facts
    }

    async fn cancel_key_deletion(&self, key_arn: &str) -> Result<(), KeyError> {
        self.calls.add("CancelKeyDeletion");
        self.faults.before("CancelKeyDeletion").await?;
        let mut keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let key = keys.get_mut(key_arn).ok_or_else(|| KeyError::NotFound { key: key_arn.to_string() })?;
        if key.state != KeyState::PendingDeletion {
            return Err(KeyError::InvalidState { key: key_arn.to_string(), state: "not pending deletion".into() });
        }
        key.state = KeyState::Disabled;
        Ok(())
    }
}
