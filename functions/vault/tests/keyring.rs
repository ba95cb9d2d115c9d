//! The keyrings against the in-memory KMS: wrapping, unwrapping, and every
//! refusal with its stable code.

use envelope::{EncryptedDataKey, EncryptionContext, Header, Limits, MessageEncryptor, MessageSpec};
use vault::keyring::{self, UnwrapPolicy, WrappingKey};
use vault::memory::MemoryKms;
use vault::ports::keys::KeyState;
use vault::OperationError;

const REGION: &str = "eu-west-1";

fn ctx() -> EncryptionContext {
    [("org", "acme"), ("recording_id", "r-1")].into_iter().collect()
}

fn policy() -> UnwrapPolicy {
    UnwrapPolicy { region: REGION.into(), allowed_keys: None, allowed_accounts: None, allow_other_regions: true }
}

async fn header_for(kms: &MemoryKms, keys: &[WrappingKey], context: EncryptionContext) -> Header {
    let (data_key, edks) = keyring::new_data_key(kms, keys, &context).await.unwrap();
    let enc = MessageEncryptor::new(MessageSpec {
        data_key: &data_key,
        encryption_context: context,
        encrypted_data_keys: edks,
        frame_length: 1024,
    })
    .unwrap();
    Header::parse(enc.header_bytes(), &Limits::default()).unwrap()
}

#[tokio::test]
async fn a_symmetric_key_wraps_through_generate_data_key_and_unwraps() {
    let kms = MemoryKms::new();
    let arn = kms.create_symmetric(REGION);
    let keys = keyring::resolve_wrapping_keys(&kms, std::slice::from_ref(&arn), REGION).await.unwrap();
    let header = header_for(&kms, &keys, ctx()).await;
    assert_eq!(header.encrypted_data_keys[0].provider_id, "aws-kms");
    assert_eq!(header.encrypted_data_keys[0].provider_info, arn.as_bytes());
    let (key, used) = keyring::unwrap_data_key(&kms, &header, &policy()).await.unwrap();
    header.verify(&key).unwrap();
    assert_eq!(used, arn);
    assert_eq!(kms.calls.get("GenerateDataKey"), 1);
}

#[tokio::test]
async fn an_rsa_key_wraps_locally_without_any_kms_data_key_call() {
    let kms = MemoryKms::new();
    let arn = kms.create_rsa(REGION);
    let keys = keyring::resolve_wrapping_keys(&kms, std::slice::from_ref(&arn), REGION).await.unwrap();
    let header = header_for(&kms, &keys, ctx()).await;
    assert_eq!(header.encrypted_data_keys[0].provider_id, "aws-kms-rsa");
    assert_eq!((kms.calls.get("GenerateDataKey"), kms.calls.get("Encrypt"), kms.calls.get("Decrypt")), (0, 0, 0));
    let (key, _) = keyring::unwrap_data_key(&kms, &header, &policy()).await.unwrap();
    header.verify(&key).unwrap();
}

#[tokio::test]
async fn an_rsa_wrapped_key_with_another_context_fails_the_digest_check() {
    let kms = MemoryKms::new();
    let arn = kms.create_rsa(REGION);
    let keys = keyring::resolve_wrapping_keys(&kms, &[arn], REGION).await.unwrap();
    let mut header = header_for(&kms, &keys, ctx()).await;
    header.encryption_context.insert("recording_id", "r-2");
    let err = keyring::unwrap_data_key(&kms, &header, &policy()).await.unwrap_err();
    assert_eq!(err.code(), "integrity");
}

#[tokio::test]
async fn a_symmetric_key_with_another_context_is_refused_by_kms() {
    let kms = MemoryKms::new();
    let arn = kms.create_symmetric(REGION);
    let keys = keyring::resolve_wrapping_keys(&kms, &[arn], REGION).await.unwrap();
    let mut header = header_for(&kms, &keys, ctx()).await;
    header.encryption_context.insert("org", "evil");
    let err = keyring::unwrap_data_key(&kms, &header, &policy()).await.unwrap_err();
    assert_eq!(err.code(), "integrity");
}

#[tokio::test]
async fn a_disaster_recovery_key_gets_its_own_encrypted_data_key_that_opens_alone() {
    let kms = MemoryKms::new();
    let primary = kms.create_symmetric(REGION);
    let dr = kms.create_symmetric("us-east-2");
    let keys = keyring::resolve_wrapping_keys(&kms, &[primary.clone(), dr.clone()], REGION).await.unwrap();
    let header = header_for(&kms, &keys, ctx()).await;
    assert_eq!(header.encrypted_data_keys.len(), 2);
    kms.set_state(&primary, KeyState::Disabled);
    let (key, used) = keyring::unwrap_data_key(&kms, &header, &policy()).await.unwrap();
    header.verify(&key).unwrap();
    assert_eq!(used, dr);
    // Without cross-region unwrapping, the disabled primary is the answer.
    let local_only = UnwrapPolicy { allow_other_regions: false, ..policy() };
    assert_eq!(keyring::unwrap_data_key(&kms, &header, &local_only).await.unwrap_err().code(), "key_disabled");
}

#[tokio::test]
async fn a_multi_region_key_wrapped_elsewhere_is_unwrapped_by_its_replica_here() {
    let kms = MemoryKms::new();
    let arns = kms.create_multi_region("us-east-1", &[REGION]);
    let (primary, replica) = (arns[0].clone(), arns[1].clone());
    let keys = keyring::resolve_wrapping_keys(&kms, std::slice::from_ref(&primary), "us-east-1").await.unwrap();
    let header = header_for(&kms, &keys, ctx()).await;
    // The primary off: only the replica here can have unwrapped it, and the
    // catalog, which names the primary, still allows it (same key).
    kms.set_state(&primary, KeyState::Disabled);
    let here = UnwrapPolicy { allowed_keys: Some(vec![primary.clone()]), allow_other_regions: false, ..policy() };
    let (key, used) = keyring::unwrap_data_key(&kms, &header, &here).await.unwrap();
    header.verify(&key).unwrap();
    assert_eq!(used, replica, "the call went to this region's replica");
    // A single-Region key elsewhere gets no such rewrite.
    let single = kms.create_symmetric("us-east-1");
    let keys = keyring::resolve_wrapping_keys(&kms, std::slice::from_ref(&single), "us-east-1").await.unwrap();
    let header = header_for(&kms, &keys, ctx()).await;
    let here = UnwrapPolicy { allowed_keys: Some(vec![single]), allow_other_regions: false, ..policy() };
    assert_eq!(keyring::unwrap_data_key(&kms, &header, &here).await.unwrap_err().code(), "wrong_region");
}

#[tokio::test]
async fn a_primary_key_outside_the_region_is_wrong_region() {
    let kms = MemoryKms::new();
    let arn = kms.create_symmetric("ap-south-1");
    let err = keyring::resolve_wrapping_keys(&kms, &[arn], REGION).await.unwrap_err();
    assert_eq!(err.code(), "wrong_region");
    assert!(err.to_string().contains("disaster-recovery"), "{err}");
}

#[tokio::test]
async fn key_states_map_to_their_codes_before_any_wrapping() {
    let kms = MemoryKms::new();
    for (state, code) in [(KeyState::Disabled, "key_disabled"), (KeyState::PendingDeletion, "key_pending_deletion")] {
        for rsa in [false, true] {
            let arn = if rsa { kms.create_rsa(REGION) } else { kms.create_symmetric(REGION) };
            kms.set_state(&arn, state.clone());
            let err = keyring::resolve_wrapping_keys(&kms, std::slice::from_ref(&arn), REGION).await.unwrap_err();
            assert_eq!(err.code(), code);
            assert_eq!(err.key_arn(), Some(arn.as_str()));
            assert!(!err.is_retryable());
        }
    }
    let missing = "arn:aws:kms:eu-west-1:111122223333:key/nope".to_string();
    assert_eq!(keyring::resolve_wrapping_keys(&kms, &[missing], REGION).await.unwrap_err().code(), "key_not_found");
}

#[tokio::test]
async fn a_disabled_key_refuses_to_unwrap() {
    let kms = MemoryKms::new();
    let arn = kms.create_symmetric(REGION);
    let keys = keyring::resolve_wrapping_keys(&kms, std::slice::from_ref(&arn), REGION).await.unwrap();
    let header = header_for(&kms, &keys, ctx()).await;
    kms.set_state(&arn, KeyState::PendingDeletion);
    let err = keyring::unwrap_data_key(&kms, &header, &policy()).await.unwrap_err();
    assert_eq!(err.code(), "key_pending_deletion");
    assert!(err.to_string().contains("cancel-key-deletion"), "{err}");
}

#[tokio::test]
async fn an_allow_list_excludes_other_keys_and_foreign_providers_are_skipped() {
    let kms = MemoryKms::new();
    let arn = kms.create_symmetric(REGION);
    let keys = keyring::resolve_wrapping_keys(&kms, std::slice::from_ref(&arn), REGION).await.unwrap();
    let mut header = header_for(&kms, &keys, ctx()).await;
    let only_other =
        UnwrapPolicy { allowed_keys: Some(vec!["arn:aws:kms:eu-west-1:111122223333:key/x".into()]), ..policy() };
    assert_eq!(keyring::unwrap_data_key(&kms, &header, &only_other).await.unwrap_err().code(), "key_not_found");
    header.encrypted_data_keys.insert(
        0,
        EncryptedDataKey { provider_id: "raw-aes".into(), provider_info: b"k".to_vec(), ciphertext: vec![1] },
    );
    assert!(keyring::unwrap_data_key(&kms, &header, &policy()).await.is_ok());
}

#[tokio::test]
async fn an_account_filter_never_calls_a_key_of_another_account_named_by_an_untrusted_header() {
    let kms = MemoryKms::new();
    let arn = kms.create_symmetric(REGION);
    let keys = keyring::resolve_wrapping_keys(&kms, std::slice::from_ref(&arn), REGION).await.unwrap();
    let mut header = header_for(&kms, &keys, ctx()).await;
    // Anyone can put an encrypted data key naming their own key first.
    let evil = format!("arn:aws:kms:{REGION}:999999999999:key/00000000-0000-0000-0000-000000000666");
    header.encrypted_data_keys.insert(
        0,
        EncryptedDataKey {
            provider_id: "aws-kms".into(),
            provider_info: evil.as_bytes().to_vec(),
            ciphertext: vec![1; 64],
        },
    );
    let ours = UnwrapPolicy { allowed_accounts: Some(("aws".into(), vec!["111122223333".into()])), ..policy() };
    let before = kms.calls.get("Decrypt");
    assert!(keyring::unwrap_data_key(&kms, &header, &ours).await.is_ok());
    assert_eq!(kms.calls.get("Decrypt") - before, 1, "only our key was called");
    // Without the filter the untrusted header's key is called first.
    keyring::unwrap_data_key(&kms, &header, &policy()).await.unwrap();
    assert_eq!(kms.calls.get("Decrypt") - before, 3);
    // And a filter of another partition allows nothing.
    let gov = UnwrapPolicy { allowed_accounts: Some(("aws-us-gov".into(), vec!["111122223333".into()])), ..policy() };
    assert_eq!(keyring::unwrap_data_key(&kms, &header, &gov).await.unwrap_err().code(), "key_not_found");
}
