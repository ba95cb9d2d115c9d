//! The keyrings: `aws-kms` (symmetric, through KMS) and `aws-kms-rsa`
//! (write-only: wrap locally with the key's public key, unwrap through KMS),
//! and messages wrapped under several keys at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest::{digest, SHA384};
use aws_lc_rs::rsa::{OaepPublicEncryptingKey, PublicEncryptingKey, OAEP_SHA256_MGF1SHA256};
use envelope::{DataKey, EncryptedDataKey, EncryptionContext, Header, KEY_LEN};

use crate::arn::{check_region, region_of, same_key, KmsArn};
use crate::errors::OperationError;
use crate::ports::keys::{KeyError, KeyKind, KeyManagement};

/// Provider id of the symmetric KMS keyring.
pub const PROVIDER_KMS: &str = "aws-kms";
/// Provider id of the KMS RSA keyring.
pub const PROVIDER_KMS_RSA: &str = "aws-kms-rsa";
const DIGEST_LEN: usize = 48;

/// A key that wraps the data key of new messages.
#[derive(Clone)]
pub enum WrappingKey {
    /// Symmetric KMS key: GenerateDataKey / Encrypt.
    Kms { arn: String },
    /// Asymmetric KMS key: wrapped locally, KMS sees no call.
    KmsRsa { arn: String, public_key: Arc<OaepPublicEncryptingKey> },
}

impl std::fmt::Debug for WrappingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Kms { arn } => write!(f, "Kms({arn})"),
            Self::KmsRsa { arn, .. } => write!(f, "KmsRsa({arn})"),
        }
    }
}

impl WrappingKey {
    /// The key ARN.
    pub fn arn(&self) -> &str {
        match self {
            Self::Kms { arn } | Self::KmsRsa { arn, .. } => arn,
        }
    }

    /// The keyring's provider id.
    pub fn provider_id(&self) -> &'static str {
        match self {
            Self::Kms { .. } => PROVIDER_KMS,
            Self::KmsRsa { .. } => PROVIDER_KMS_RSA,
        }
    }

    /// An RSA wrapping key from the DER public key KMS returned.
    pub fn rsa(arn: String, public_key_der: &[u8]) -> Result<Self, KeyError> {
        let unsupported = |detail: &str| KeyError::Unsupported { key: arn.clone(), detail: detail.to_string() };
        let pk = PublicEncryptingKey::from_der(public_key_der).map_err(|_| unsupported("the public key is not RSA"))?;
        let oaep = OaepPublicEncryptingKey::new(pk).map_err(|_| unsupported("the public key cannot do OAEP"))?;
        if oaep.max_plaintext_size(&OAEP_SHA256_MGF1SHA256) < DIGEST_LEN + KEY_LEN {
            return Err(unsupported("the RSA key is too small to wrap a data key"));
        }
        Ok(Self::KmsRsa { arn, public_key: Arc::new(oaep) })
    }
}

/// Looks each key up (DescribeKey; GetPublicKey for RSA keys) and checks it
/// can wrap new data keys: Enabled, a supported spec, and the first (the
/// primary) in `region`. The others are disaster-recovery keys and may be
/// anywhere. Aliases resolve to key ARNs.
pub async fn resolve_wrapping_keys<K: KeyManagement>(
    kms: &K,
    key_ids: &[String],
    region: &str,
) -> Result<Vec<WrappingKey>, KeyError> {
    if key_ids.is_empty() {
        return Err(KeyError::NoUsableKey { detail: "no wrapping key given".into() });
    }
    let mut keys = Vec::with_capacity(key_ids.len());
    for (i, id) in key_ids.iter().enumerate() {
        let key = describe_wrapping_key(kms, id, (i == 0).then_some(region)).await?;
        if keys.iter().any(|k: &WrappingKey| k.arn() == key.arn()) {
            continue;
        }
        keys.push(key);
    }
    Ok(keys)
}

/// Looks one key up (DescribeKey; GetPublicKey for an RSA key) and checks it
/// can wrap new data keys: Enabled, a supported spec, and in
/// `primary_region` when it is the primary.
pub async fn describe_wrapping_key<K: KeyManagement>(
    kms: &K,
    key_id: &str,
    primary_region: Option<&str>,
) -> Result<WrappingKey, KeyError> {
    if let Some(region) = primary_region {
        check_region(key_id, region)?;
    }
    let desc = kms.describe_key(key_id).await?;
    desc.require_enabled()?;
    if let Some(region) = primary_region {
        check_region(&desc.arn, region)?;
    }
    match desc.kind {
        KeyKind::Symmetric => Ok(WrappingKey::Kms { arn: desc.arn }),
        KeyKind::Rsa => {
            let der = kms.public_key(&desc.arn).await?;
            WrappingKey::rsa(desc.arn, &der)
        }
        KeyKind::Other(detail) => Err(KeyError::Unsupported { key: desc.arn, detail }),
    }
}

/// SHA-384 of the serialized context: what the `aws-kms-rsa` keyring binds
/// the wrapped data key to.
fn context_digest(context: &EncryptionContext) -> Result<aws_lc_rs::digest::Digest, KeyError> {
    let serialized = context
        .serialize()
        .map_err(|e| KeyError::Integrity { detail: format!("encryption context cannot be serialized: {e}") })?;
    Ok(digest(&SHA384, &serialized))
}

/// RSA plaintext of the `aws-kms-rsa` keyring: the context digest, then the
/// data key.
fn rsa_plaintext(context: &EncryptionContext, data_key: &DataKey) -> Result<zeroize::Zeroizing<Vec<u8>>, KeyError> {
    let mut plain = zeroize::Zeroizing::new(Vec::with_capacity(DIGEST_LEN + KEY_LEN));
    plain.extend_from_slice(context_digest(context)?.as_ref());
    plain.extend_from_slice(data_key.expose());
    Ok(plain)
}

fn wrap_rsa(
    arn: &str,
    pk: &OaepPublicEncryptingKey,
    context: &EncryptionContext,
    data_key: &DataKey,
) -> Result<Vec<u8>, KeyError> {
    let plain = rsa_plaintext(context, data_key)?;
    let mut out = vec![0u8; pk.ciphertext_size()];
    let n = pk
        .encrypt(&OAEP_SHA256_MGF1SHA256, &plain, &mut out, None)
        .map_err(|_| KeyError::Unsupported { key: arn.to_string(), detail: "RSA-OAEP encryption failed".into() })?
        .len();
    out.truncate(n);
    Ok(out)
}

/// A new data key for a message with `context`, wrapped under every key of
/// `keys` (in order; the first is the primary).
pub async fn new_data_key<K: KeyManagement>(
    kms: &K,
    keys: &[WrappingKey],
    context: &EncryptionContext,
) -> Result<(DataKey, Vec<EncryptedDataKey>), KeyError> {
    let Some(primary) = keys.first() else {
        return Err(KeyError::NoUsableKey { detail: "no wrapping key given".into() });
    };
    let mut edks = Vec::with_capacity(keys.len());
    let data_key = match primary {
        WrappingKey::Kms { arn } => {
            let generated = kms.generate_data_key(arn, context).await?;
            if generated.key_arn != *arn {
                return Err(KeyError::Integrity {
                    detail: format!("KMS generated the data key under {}, not {arn}", generated.key_arn),
                });
            }
            edks.push(edk(PROVIDER_KMS, arn, generated.ciphertext));
            generated.data_key
        }
        WrappingKey::KmsRsa { .. } => DataKey::generate(),
    };
    for (i, key) in keys.iter().enumerate() {
        match key {
            WrappingKey::Kms { arn } if i > 0 => {
                let ct = kms.wrap_data_key(arn, &data_key, context).await?;
                edks.push(edk(PROVIDER_KMS, arn, ct));
            }
            WrappingKey::Kms { .. } => {}
            WrappingKey::KmsRsa { arn, public_key } => {
                edks.push(edk(PROVIDER_KMS_RSA, arn, wrap_rsa(arn, public_key, context, &data_key)?));
            }
        }
    }
    Ok((data_key, edks))
}

fn edk(provider: &str, arn: &str, ciphertext: Vec<u8>) -> EncryptedDataKey {
    EncryptedDataKey { provider_id: provider.to_string(), provider_info: arn.as_bytes().to_vec(), ciphertext }
}

/// Which encrypted data keys a decryptor may try.
#[derive(Clone, Debug, Default)]
pub struct UnwrapPolicy {
    /// The caller's region: keys here are tried first.
    pub region: String,
    /// Only these key ARNs, when set; any KMS key otherwise.
    pub allowed_keys: Option<Vec<String>>,
    /// Only keys in these accounts (and partition), when set: a header is
    /// untrusted until it authenticates, and an encrypted data key naming
    /// another account's key would make the caller call (and appear in the
    /// CloudTrail of) whoever owns that key.
    pub allowed_accounts: Option<(String, Vec<String>)>,
    /// Whether keys in other regions may be called (disaster recovery).
    pub allow_other_regions: bool,
}

impl UnwrapPolicy {
    /// Whether the key `arn` may be called under this policy.
    fn allows(&self, arn: &KmsArn<'_>, raw: &str) -> bool {
        let key_ok = self.allowed_keys.as_ref().is_none_or(|allowed| allowed.iter().any(|a| same_key(a, raw)));
        let account_ok = self.allowed_accounts.as_ref().is_none_or(|(partition, accounts)| {
            arn.partition == partition && accounts.iter().any(|a| a == arn.account)
        });
        key_ok && account_ok
    }
}

/// Unwraps the data key of a message: tries its KMS encrypted data keys, those
/// in the caller's region first, and returns the first that opens. The caller
/// still verifies the header with the result ([`Header::opener`]).
pub async fn unwrap_data_key<K: KeyManagement>(
    kms: &K,
    header: &Header,
    policy: &UnwrapPolicy,
) -> Result<(DataKey, String), KeyError> {
    let candidates: Vec<(&EncryptedDataKey, &str)> = header
        .encrypted_data_keys
        .iter()
        .filter(|e| e.provider_id == PROVIDER_KMS || e.provider_id == PROVIDER_KMS_RSA)
        .filter_map(|e| e.provider_info_str().map(|a| (e, a)))
        .filter(|(_, raw)| KmsArn::parse(raw).is_some_and(|arn| arn.is_key() && policy.allows(&arn, raw)))
        .collect();
    if candidates.is_empty() {
        let providers: Vec<_> = header.encrypted_data_keys.iter().map(|e| e.provider_id.as_str()).collect();
        return Err(KeyError::NoUsableKey {
            detail: format!("the message is wrapped for providers {providers:?}, none of them an allowed KMS key"),
        });
    }
    // A multi-Region key wrapped elsewhere is unwrapped by its replica here
    // first (same key id, same key material), as the official SDK's
    // MRK-aware keyrings do: moving region needs no re-encryption, and the
    // KMS call stays in this region. The original region after it, when
    // other regions are allowed.
    let mut local: Vec<(&EncryptedDataKey, String)> = Vec::with_capacity(candidates.len() + 1);
    for (edk, raw) in &candidates {
        match KmsArn::parse(raw) {
            Some(arn) if arn.is_multi_region() && arn.region != policy.region => {
                local.push((edk, arn.in_region(&policy.region)));
                if policy.allow_other_regions {
                    local.push((edk, raw.to_string()));
                }
            }
            _ => local.push((edk, raw.to_string())),
        }
    }
    local.sort_by_key(|(_, arn)| region_of(arn) != Some(policy.region.as_str()));
    let candidates = local;
    let mut first_error = None;
    for (edk, arn) in &candidates {
        let (edk, arn): (&EncryptedDataKey, &str) = (edk, arn.as_str());
        if !policy.allow_other_regions {
            if let Err(e) = check_region(arn, &policy.region) {
                first_error.get_or_insert(e);
                continue;
            }
        }
        let result = match edk.provider_id.as_str() {
            PROVIDER_KMS => unwrap_kms(kms, arn, edk, &header.encryption_context).await,
            _ => unwrap_rsa(kms, arn, edk, &header.encryption_context).await,
        };
        match result {
            Ok(key) => return Ok((key, arn.to_string())),
            Err(e) => {
                tracing::debug!(key = arn, code = e.code(), "encrypted data key did not unwrap");
                first_error.get_or_insert(e);
            }
        }
    }
    Err(first_error.unwrap_or(KeyError::NoUsableKey { detail: "no candidate".into() }))
}

async fn unwrap_kms<K: KeyManagement>(
    kms: &K,
    arn: &str,
    edk: &EncryptedDataKey,
    ctx: &EncryptionContext,
) -> Result<DataKey, KeyError> {
    let (plain, reported) = kms.unwrap_data_key(arn, &edk.ciphertext, ctx).await?;
    if reported != arn {
        return Err(KeyError::Integrity { detail: format!("KMS decrypted with {reported}, not {arn}") });
    }
    DataKey::from_slice(&plain)
        .ok_or_else(|| KeyError::Integrity { detail: format!("KMS returned a data key of {} bytes", plain.len()) })
}

async fn unwrap_rsa<K: KeyManagement>(
    kms: &K,
    arn: &str,
    edk: &EncryptedDataKey,
    ctx: &EncryptionContext,
) -> Result<DataKey, KeyError> {
    let (plain, reported) = kms.rsa_decrypt(arn, &edk.ciphertext).await?;
    if reported != arn {
        return Err(KeyError::Integrity { detail: format!("KMS decrypted with {reported}, not {arn}") });
    }
    if plain.len() != DIGEST_LEN + KEY_LEN {
        return Err(KeyError::Integrity { detail: format!("RSA plaintext of {} bytes", plain.len()) });
    }
    verify_slices_are_equal(&plain[..DIGEST_LEN], context_digest(ctx)?.as_ref()).map_err(|_| KeyError::Integrity {
        detail: "the encryption context does not match the one the data key was wrapped with".into(),
    })?;
    DataKey::from_slice(&plain[DIGEST_LEN..])
        .ok_or_else(|| KeyError::Integrity { detail: "bad data key length".into() })
}

/// How long a described RSA key's state is trusted (KMS never sees an RSA
/// encrypt, so this is how soon a disabled key is noticed).
pub const RSA_STATE_TTL: Duration = Duration::from_secs(60);

/// Wrapping keys described once per container; an RSA key's state again
/// after [`RSA_STATE_TTL`], because KMS never sees an RSA encrypt.
#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, (WrappingKey, Instant)>>,
}

impl KeyCache {
    /// The wrapping keys for `key_ids` (primary first), checked usable.
    pub async fn resolve<K: KeyManagement>(
        &self,
        kms: &K,
        key_ids: &[String],
        region: &str,
    ) -> Result<Vec<WrappingKey>, KeyError> {
        let mut keys = Vec::with_capacity(key_ids.len());
        for (i, id) in key_ids.iter().enumerate() {
            let cached = self.entries.lock().map_err(|_| poisoned())?.get(id).cloned();
            let key = match cached {
                Some((key @ WrappingKey::Kms { .. }, _)) => key,
                Some((key @ WrappingKey::KmsRsa { .. }, checked)) if checked.elapsed() < RSA_STATE_TTL => key,
                Some((key @ WrappingKey::KmsRsa { .. }, _)) => {
                    kms.describe_key(id).await?.require_enabled()?;
                    self.entries.lock().map_err(|_| poisoned())?.insert(id.clone(), (key.clone(), Instant::now()));
                    key
                }
                None => {
                    let key = describe_wrapping_key(kms, id, (i == 0).then_some(region)).await?;
                    self.entries.lock().map_err(|_| poisoned())?.insert(id.clone(), (key.clone(), Instant::now()));
                    key
                }
            };
            // A key cached as a disaster-recovery key (or for another
            // region) is not a primary here.
            if i == 0 {
                check_region(key.arn(), region)?;
            }
            if !keys.iter().any(|k: &WrappingKey| k.arn() == key.arn()) {
                keys.push(key);
            }
        }
        Ok(keys)
    }
}

fn poisoned() -> KeyError {
    KeyError::Unavailable { key: String::new(), detail: "key cache poisoned by an earlier panic".into() }
}
