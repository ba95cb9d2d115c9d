//! The key ports' contract: wrapping and unwrapping under a context, key
//! states and their codes, what inspection reads, cancelling a deletion.

use aws_lc_rs::rsa::{OaepPublicEncryptingKey, PublicEncryptingKey, OAEP_SHA256_MGF1SHA256};
use envelope::{DataKey, EncryptionContext};

use crate::errors::OperationError;
use crate::ports::keys::{KeyError, KeyInspection, KeyKind, KeyManagement, KeyState};

/// The keys the contract runs on, prepared by the caller.
pub struct KeyFixture {
    /// Enabled, symmetric.
    pub symmetric: String,
    /// Enabled, RSA for encryption.
    pub rsa: String,
    /// Disabled, symmetric.
    pub disabled: String,
    /// Scheduled for deletion, symmetric.
    pub pending_deletion: String,
    /// A well-formed ARN of no key.
    pub missing: String,
}

fn context() -> EncryptionContext {
    [("org", "acme"), ("recording_id", "contract-1")].into_iter().collect()
}

/// Runs the whole key contract.
pub async fn keys<K: KeyManagement + KeyInspection>(kms: &K, f: &KeyFixture) {
    let ctx = context();

    // A data key from KMS, bound to its context.
    let generated = kms.generate_data_key(&f.symmetric, &ctx).await.expect("GenerateDataKey");
    assert_eq!(generated.key_arn, f.symmetric, "KMS reports the key ARN it used");
    let (plain, arn) = kms.unwrap_data_key(&f.symmetric, &generated.ciphertext, &ctx).await.expect("Decrypt");
    assert_eq!((plain.as_slice(), arn.as_str()), (&generated.data_key.expose()[..], f.symmetric.as_str()));
    let other: EncryptionContext = [("org", "acme"), ("recording_id", "another")].into_iter().collect();
    let wrong = kms.unwrap_data_key(&f.symmetric, &generated.ciphertext, &other).await.unwrap_err();
    assert_eq!((wrong.code(), wrong.is_retryable()), ("integrity", false), "another context: {wrong}");

    // An existing data key wrapped again (a further key of a message).
    let dk = DataKey::generate();
    let ct = kms.wrap_data_key(&f.symmetric, &dk, &ctx).await.expect("Encrypt");
    assert_eq!(kms.unwrap_data_key(&f.symmetric, &ct, &ctx).await.unwrap().0.as_slice(), dk.expose());

    // RSA: the public key wraps locally, KMS unwraps.
    let der = kms.public_key(&f.rsa).await.expect("GetPublicKey");
    let public = OaepPublicEncryptingKey::new(PublicEncryptingKey::from_der(&der).expect("a DER public key")).unwrap();
    let mut sealed = vec![0u8; public.ciphertext_size()];
    let n = public.encrypt(&OAEP_SHA256_MGF1SHA256, b"0123456789abcdef", &mut sealed, None).unwrap().len();
    sealed.truncate(n);
    let (opened, arn) = kms.rsa_decrypt(&f.rsa, &sealed).await.expect("RSA Decrypt");
    assert_eq!((opened.as_slice(), arn.as_str()), (&b"0123456789abcdef"[..], f.rsa.as_str()));
    assert_eq!(kms.describe_key(&f.rsa).await.unwrap().kind, KeyKind::Rsa);
    let d = kms.describe_key(&f.symmetric).await.unwrap();
    assert_eq!((d.arn.as_str(), d.kind, d.state), (f.symmetric.as_str(), KeyKind::Symmetric, KeyState::Enabled));

    // States refuse with the codes that tell the administrator what to do.
    let e = kms.generate_data_key(&f.disabled, &ctx).await.err().expect("a disabled key refuses");
    assert!(matches!(&e, KeyError::Disabled { key } if *key == f.disabled), "{e:?}");
    let e = kms.generate_data_key(&f.pending_deletion, &ctx).await.err().expect("pending deletion refuses");
    assert_eq!((e.code(), e.key_arn()), ("key_pending_deletion", Some(f.pending_deletion.as_str())));
    let e = kms.generate_data_key(&f.missing, &ctx).await.err().expect("no such key");
    assert_eq!(e.code(), "key_not_found");
    assert_eq!(kms.describe_key(&f.disabled).await.unwrap().state, KeyState::Disabled);
    assert_eq!(kms.describe_key(&f.pending_deletion).await.unwrap().state, KeyState::PendingDeletion);

    // Inspection: a key KMS does not know has no state; rotation facts.
    assert_eq!(kms.key_facts(&f.missing).await.unwrap().state, None);
    let facts = kms.key_facts(&f.symmetric).await.unwrap();
    assert_eq!((facts.state, facts.spec.as_deref()), (Some(KeyState::Enabled), Some("SYMMETRIC_DEFAULT")));
    let rotation = kms.rotation_facts(&f.symmetric).await;
    assert_eq!(rotation.state, Some(KeyState::Enabled));
    assert!(rotation.rotation_enabled.is_some() && rotation.created.is_some(), "{rotation:?}");
    assert!(rotation.errors.is_empty(), "{rotation:?}");
    assert!(kms.rotation_facts(&f.missing).await.missing);
    let rsa = kms.rotation_facts(&f.rsa).await;
    assert_eq!((rsa.spec.as_deref().map(|s| s.starts_with("RSA_")), rsa.rotation_enabled), (Some(true), None));

    // Cancelling a deletion leaves the key disabled.
    let facts = kms.key_facts(&f.pending_deletion).await.unwrap();
    assert!(facts.deletion_date.is_some(), "a deletion date: {facts:?}");
    kms.cancel_key_deletion(&f.pending_deletion).await.expect("CancelKeyDeletion");
    assert_eq!(kms.key_facts(&f.pending_deletion).await.unwrap().state, Some(KeyState::Disabled));
}
