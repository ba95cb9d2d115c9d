//! KMS through the AWS SDK: the adapter of both key ports
//! ([`KeyManagement`], [`KeyInspection`]), with the mapping of KMS errors to
//! [`KeyError`].

use std::collections::HashMap;
use std::sync::Mutex;

use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{EncryptionAlgorithmSpec, KeySpec, KeyState as SdkKeyState, KeyUsageType};
use envelope::{DataKey, EncryptionContext};
use zeroize::Zeroizing;

use crate::arn::region_of;
use crate::ports::keys::{
    GeneratedDataKey, KeyDescription, KeyError, KeyFacts, KeyInspection, KeyKind, KeyManagement, KeyState,
    RotationFacts,
};

/// The KMS API calls the adapter below makes, for least-privilege checks of
/// the IAM policies that grant them.
pub const AWS_CALLS: &[&str] =
    &["kms:DescribeKey", "kms:GenerateDataKey", "kms:Encrypt", "kms:Decrypt", "kms:GetPublicKey"];

/// KMS through the AWS SDK. Calls go to the region in the key's ARN (a
/// disaster-recovery key may live elsewhere); bare ids use the default region.
pub struct AwsKms {
    /// `None` for an adapter over one given client.
    config: Option<aws_config::SdkConfig>,
    default: aws_sdk_kms::Client,
    regional: Mutex<HashMap<String, aws_sdk_kms::Client>>,
}

impl AwsKms {
    /// An adapter over clients built from `config` (endpoint, credentials).
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self { config: Some(config.clone()), default: aws_sdk_kms::Client::new(config), regional: Mutex::default() }
    }

    /// An adapter over `client` alone, for every region (tests with mocks).
    pub fn from_client(client: aws_sdk_kms::Client) -> Self {
        Self { config: None, default: client, regional: Mutex::default() }
    }

    fn client(&self, key_id: &str) -> aws_sdk_kms::Client {
        let Some(config) = &self.config else { return self.default.clone() };
        let Some(region) = region_of(key_id) else { return self.default.clone() };
        if config.region().map(|r| r.as_ref()) == Some(region) {
            return self.default.clone();
        }
        let mut clients = self.regional.lock().unwrap_or_else(|p| p.into_inner());
        clients
            .entry(region.to_string())
            .or_insert_with(|| {
                let conf = aws_sdk_kms::config::Builder::from(config)
                    .region(aws_config::Region::new(region.to_string()))
                    .build();
                aws_sdk_kms::Client::from_conf(conf)
            })
            .clone()
    }
}

/// The KMS calls of [`KeyInspection::key_facts`] and
/// [`KeyInspection::cancel_key_deletion`] (the key guardian's), as IAM actions.
pub const ADMIN_AWS_CALLS: &[&str] = &["kms:DescribeKey", "kms:ListAliases", "kms:CancelKeyDeletion"];

/// The KMS calls of [`KeyInspection::rotation_facts`] and of the audit's use
/// test (GenerateDataKey, GetPublicKey), as IAM actions.
pub const AUDIT_AWS_CALLS: &[&str] =
    &["kms:DescribeKey", "kms:GetKeyRotationStatus", "kms:ListKeyRotations", "kms:GenerateDataKey", "kms:GetPublicKey"];

impl KeyInspection for AwsKms {
    async fn key_facts(&self, arn: &str) -> Result<KeyFacts, KeyError> {
        let client = self.client(arn);
        let meta = match client.describe_key().key_id(arn).send().await {
            Ok(out) => out.key_metadata,
            Err(e) => match map_sdk_error(e, arn) {
                KeyError::NotFound { .. } => return Ok(KeyFacts::default()),
                other => return Err(other),
            },
        };
        let Some(meta) = meta else { return Ok(KeyFacts::default()) };
        let state = key_state(meta.key_state());
        let aliases = match client.list_aliases().key_id(arn).send().await {
            Ok(out) => out.aliases().iter().filter_map(|a| a.alias_name().map(str::to_string)).collect(),
            // The aliases are a courtesy in an alert: their absence is no reason to fail it.
            Err(e) => {
                tracing::warn!(key = arn, "ListAliases failed: {}", map_sdk_error(e, arn));
                Vec::new()
            }
        };
        Ok(KeyFacts {
            state: Some(state),
            deletion_date: meta.deletion_date().map(|d| d.secs()),
            aliases,
            spec: meta.key_spec().map(|s| s.as_str().to_string()),
            error: None,
        })
    }

    async fn rotation_facts(&self, arn: &str) -> RotationFacts {
        let client = self.client(arn);
        let mut facts = RotationFacts { key_arn: arn.to_string(), ..Default::default() };
        match client.describe_key().key_id(arn).send().await {
            Ok(out) => {
                if let Some(meta) = out.key_metadata {
                    facts.state = Some(key_state(meta.key_state()));
                    facts.spec = meta.key_spec().map(|s| s.as_str().to_string());
                    facts.origin = meta.origin().map(|o| o.as_str().to_string());
                    facts.created = meta.creation_date().map(|d| d.secs());
                    facts.multi_region = meta.multi_region();
                    facts.key_usage = meta.key_usage().map(|u| u.as_str().to_string());
                    facts.multi_region_primary = meta
                        .multi_region_configuration()
                        .and_then(|c| c.primary_key())
                        .and_then(|p| p.arn())
                        .map(str::to_string);
                }
            }
            Err(e) => match map_sdk_error(e, arn) {
                KeyError::NotFound { .. } => facts.missing = true,
                other => facts.errors.push(format!("DescribeKey: {other}")),
            },
        }
        // Keys with imported material or in a custom key store cannot rotate.
        if facts.kms_rotates() {
            match client.get_key_rotation_status().key_id(arn).send().await {
                Ok(out) => {
                    facts.rotation_enabled = Some(out.key_rotation_enabled());
                    facts.rotation_period_days = out.rotation_period_in_days().map(i64::from);
                    facts.next_rotation = out.next_rotation_date().map(|d| d.secs());
                }
                Err(e) => facts.errors.push(format!("GetKeyRotationStatus: {}", map_sdk_error(e, arn))),
            }
            // Every page: the last rotation may be on any.
            let mut pages = client.list_key_rotations().key_id(arn).into_paginator().send();
            while let Some(page) = pages.next().await {
                match page {
                    Ok(out) => {
                        for r in out.rotations() {
                            let date = r.rotation_date().map(|d| d.secs());
                            if date.is_some() && date > facts.last_rotation {
                                facts.last_rotation = date;
                                facts.last_rotation_type = r.rotation_type().map(|t| t.as_str().to_string());
                            }
                        }
                    }
                    Err(e) => {
                        facts.errors.push(format!("ListKeyRotations: {}", map_sdk_error(e, arn)));
                        break;
                    }
                }
            }
        }
        facts
    }

    async fn cancel_key_deletion(&self, arn: &str) -> Result<(), KeyError> {
        self.client(arn).cancel_key_deletion().key_id(arn).send().await.map(|_| ()).map_err(|e| map_sdk_error(e, arn))
    }
}

fn key_state(state: Option<&SdkKeyState>) -> KeyState {
    match state {
        Some(SdkKeyState::Enabled) => KeyState::Enabled,
        Some(SdkKeyState::Disabled) => KeyState::Disabled,
        Some(SdkKeyState::PendingDeletion) => KeyState::PendingDeletion,
        Some(other) => KeyState::Other(other.as_str().to_string()),
        None => KeyState::Other("unknown".into()),
    }
}

fn context_map(context: &EncryptionContext) -> Option<HashMap<String, String>> {
    (!context.is_empty()).then(|| context.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

fn take_plaintext(blob: Option<Blob>, key: &str) -> Result<Zeroizing<Vec<u8>>, KeyError> {
    blob.map(|b| Zeroizing::new(b.into_inner()))
        .ok_or_else(|| KeyError::Unavailable { key: key.to_string(), detail: "KMS returned no plaintext".into() })
}

/// Maps an SDK error to a [`KeyError`] by its error code.
pub fn map_sdk_error<E, R>(err: SdkError<E, R>, key: &str) -> KeyError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let key = key.to_string();
    let detail = |e: &dyn ProvideErrorMetadata| e.message().unwrap_or("no message").to_string();
    match &err {
        SdkError::ServiceError(se) => {
            let e = se.err();
            match e.code().unwrap_or_default() {
                "DisabledException" => KeyError::Disabled { key },
                "KMSInvalidStateException" => {
                    let msg = detail(e);
                    if msg.to_ascii_lowercase().contains("pending deletion") {
                        KeyError::PendingDeletion { key }
                    } else {
                        KeyError::InvalidState { key, state: msg }
                    }
                }
                "UnrecognizedClientException" | "InvalidSignatureException" | "ExpiredTokenException" => {
                    KeyError::CredentialsRejected {
                        key,
                        detail: format!("{}: {}", e.code().unwrap_or_default(), detail(e)),
                    }
                }
                "AccessDeniedException" | "InvalidGrantTokenException" => {
                    KeyError::AccessDenied { key, detail: detail(e) }
                }
                "NotFoundException" => KeyError::NotFound { key },
                "InvalidCiphertextException" | "IncorrectKeyException" => {
                    KeyError::Integrity { detail: format!("KMS refused the wrapped data key for {key}: {}", detail(e)) }
                }
                "ThrottlingException" | "LimitExceededException" | "RequestLimitExceeded" => {
                    KeyError::Throttled { key }
                }
                "InvalidKeyUsageException" | "UnsupportedOperationException" => {
                    KeyError::Unsupported { key, detail: detail(e) }
                }
                code => KeyError::Unavailable { key, detail: format!("{code}: {}", detail(e)) },
            }
        }
        other => match super::transport_failure(other) {
            Some(t) => KeyError::Transport { code: t.code(), message: t.describe(&format!("KMS for key {key}")), key },
            None => KeyError::Unavailable {
                key,
                detail: format!("{}", aws_smithy_types::error::display::DisplayErrorContext(other)),
            },
        },
    }
}

impl KeyManagement for AwsKms {
    async fn describe_key(&self, key_id: &str) -> Result<KeyDescription, KeyError> {
        let out =
            self.client(key_id).describe_key().key_id(key_id).send().await.map_err(|e| map_sdk_error(e, key_id))?;
        let meta = out.key_metadata.ok_or_else(|| KeyError::NotFound { key: key_id.to_string() })?;
        let arn = meta.arn().unwrap_or(key_id).to_string();
        // KMS's default usage, which some emulators leave out of the answer.
        let usage = Some(meta.key_usage().cloned().unwrap_or(KeyUsageType::EncryptDecrypt));
        let kind = match (meta.key_spec(), usage.as_ref()) {
            (Some(KeySpec::SymmetricDefault), Some(KeyUsageType::EncryptDecrypt)) => KeyKind::Symmetric,
            (Some(KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096), Some(KeyUsageType::EncryptDecrypt)) => {
                KeyKind::Rsa
            }
            (spec, usage) => KeyKind::Other(format!(
                "key spec {} with usage {}",
                spec.map(|s| s.as_str()).unwrap_or("unknown"),
                usage.map(|u| u.as_str()).unwrap_or("unknown")
            )),
        };
        let state = key_state(meta.key_state());
        Ok(KeyDescription { arn, kind, state })
    }

    async fn generate_data_key(
        &self,
        key_arn: &str,
        context: &EncryptionContext,
    ) -> Result<GeneratedDataKey, KeyError> {
        let out = self
            .client(key_arn)
            .generate_data_key()
            .key_id(key_arn)
            .number_of_bytes(32)
            .set_encryption_context(context_map(context))
            .send()
            .await
            .map_err(|e| map_sdk_error(e, key_arn))?;
        let plaintext = take_plaintext(out.plaintext, key_arn)?;
        let data_key = DataKey::from_slice(&plaintext).ok_or_else(|| KeyError::Integrity {
            detail: format!("KMS returned a data key of {} bytes", plaintext.len()),
        })?;
        let ciphertext = out.ciphertext_blob.map(Blob::into_inner).unwrap_or_default();
        Ok(GeneratedDataKey { data_key, ciphertext, key_arn: out.key_id.unwrap_or_default() })
    }

    async fn wrap_data_key(
        &self,
        key_arn: &str,
        data_key: &DataKey,
        context: &EncryptionContext,
    ) -> Result<Vec<u8>, KeyError> {
        let out = self
            .client(key_arn)
            .encrypt()
            .key_id(key_arn)
            .plaintext(Blob::new(data_key.expose().to_vec()))
            .set_encryption_context(context_map(context))
            .send()
            .await
            .map_err(|e| map_sdk_error(e, key_arn))?;
        if out.key_id.as_deref() != Some(key_arn) {
            return Err(KeyError::Integrity {
                detail: format!("KMS encrypted with {:?}, not {key_arn}", out.key_id.unwrap_or_default()),
            });
        }
        Ok(out.ciphertext_blob.map(Blob::into_inner).unwrap_or_default())
    }

    async fn unwrap_data_key(
        &self,
        key_arn: &str,
        ciphertext: &[u8],
        context: &EncryptionContext,
    ) -> Result<(Zeroizing<Vec<u8>>, String), KeyError> {
        let out = self
            .client(key_arn)
            .decrypt()
            .key_id(key_arn)
            .ciphertext_blob(Blob::new(ciphertext))
            .set_encryption_context(context_map(context))
            .send()
            .await
            .map_err(|e| map_sdk_error(e, key_arn))?;
        Ok((take_plaintext(out.plaintext, key_arn)?, out.key_id.unwrap_or_default()))
    }

    async fn rsa_decrypt(&self, key_arn: &str, ciphertext: &[u8]) -> Result<(Zeroizing<Vec<u8>>, String), KeyError> {
        let out = self
            .client(key_arn)
            .decrypt()
            .key_id(key_arn)
            .ciphertext_blob(Blob::new(ciphertext))
            .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
            .send()
            .await
            .map_err(|e| map_sdk_error(e, key_arn))?;
        Ok((take_plaintext(out.plaintext, key_arn)?, out.key_id.unwrap_or_default()))
    }

    async fn public_key(&self, key_arn: &str) -> Result<Vec<u8>, KeyError> {
        let out = self
            .client(key_arn)
            .get_public_key()
            .key_id(key_arn)
            .send()
            .await
            .map_err(|e| map_sdk_error(e, key_arn))?;
        out.public_key
            .map(Blob::into_inner)
            .ok_or_else(|| KeyError::Unsupported { key: key_arn.to_string(), detail: "no public key".into() })
    }
}
