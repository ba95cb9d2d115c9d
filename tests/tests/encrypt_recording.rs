//! encrypt-recording end to end on the local AWS, through the real handler
//! and the real SDK adapters: the vault object decrypts with the official
//! aws-encryption-cli, the catalog is right, the plaintext is gone; and every
//! fault ends with the plaintext intact or the recording complete and
//! catalogued, never neither.

use e2e::ingest::{s3_encode_key, s3_event, Stack, ORG};
use e2e::*;
use serde_json::{json, Value};

fn outcome(v: &Value) -> &str {
    v["recordings"][0]["outcome"].as_str().unwrap_or("none")
}

fn code(v: &Value) -> &str {
    v["recordings"][0]["code"].as_str().unwrap_or("none")
}

/// Decrypts the vault object with aws-encryption-cli and `key` alone,
/// requiring the context the function writes.
async fn cli_decrypt(
    stack: &Stack<'_>,
    key: &str,
    vault_key: &str,
    recording: (&str, &str),
    content_type: &str,
) -> Vec<u8> {
    let dir = TempDir::new("enc-cli");
    let (ct, pt) = (dir.path("vault.esdk"), dir.path("plain"));
    std::fs::write(&ct, stack.get(&stack.vault, vault_key).await.expect("vault object")).unwrap();
    let out = stack.aws.esdk_cli(&[
        "--decrypt-unsigned",
        "-i",
        &ct,
        "-o",
        &pt,
        "-w",
        &format!("key={key}"),
        "-c",
        &format!("org={ORG}"),
        &format!("recording_type={}", recording.0),
        &format!("recording_id={}", recording.1),
        &format!("content_type={content_type}"),
        "-S",
    ]);
    ok(&out);
    std::fs::read(&pt)
        .unwrap_or_else(|_| panic!("aws-encryption-cli wrote nothing: {}", String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recording_is_encrypted_verified_catalogued_and_its_plaintext_deleted() {
    let aws = LocalAws::shared();
    let key = aws.create_key("SYMMETRIC_DEFAULT", REGION).await;
    let stack = Stack::new(aws, &[("calls", &[&key])]).await;
    // Three 8 MiB parts and a tail: the multipart path and its checksums.
    let data = sample(17 * 1024 * 1024 + 4321, 1);
    let (etag, version) = stack.upload("calls/2026-11-23-0001.wav", &data, "audio/wav").await;

    let answer = stack.invoke(stack.event("calls/2026-11-23-0001.wav", &etag, &version, data.len())).await.unwrap();
    assert_eq!(outcome(&answer), "encrypted", "{answer}");

    assert_eq!(
        cli_decrypt(&stack, &key, "calls/2026-11-23-0001.wav", ("calls", "2026-11-23-0001.wav"), "audio/wav").await,
        data
    );
    let entry = stack.entry("calls", "2026-11-23-0001.wav").await.expect("catalogued");
    assert_eq!(entry.vault_key, "calls/2026-11-23-0001.wav");
    assert_eq!(entry.wrapping_keys, std::slice::from_ref(&key));
    assert_eq!(entry.provider, "aws-kms");
    assert_eq!((entry.plaintext_size, entry.content_type.as_str()), (data.len() as u64, "audio/wav"));
    assert_eq!(entry.source_etag, etag);
    assert_eq!(entry.source_version.as_deref(), Some(version.as_str()));
    assert_eq!(entry.frame_length, 65536);
    assert!(entry.vault_version.is_some());
    assert!(entry.checksum_sha256.ends_with("-3"), "a three-part checksum: {}", entry.checksum_sha256);
    let vault_len = stack.get(&stack.vault, "calls/2026-11-23-0001.wav").await.unwrap().len() as u64;
    assert_eq!(entry.ciphertext_size, vault_len);
    assert_eq!(entry.message_id.len(), 64);
    let usage = stack.usage(&key).await.expect("key usage");
    assert_eq!((usage.recordings, usage.bytes), (1, data.len() as u64));
    assert_eq!(usage.first_used, entry.encrypted_at);
    // No plaintext version is left behind.
    assert_eq!(stack.versions(&stack.ingest, "calls/2026-11-23-0001.wav").await, 0);
    assert!(stack.dead_letters().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn with_an_rsa_key_kms_never_decrypts_or_generates_and_the_result_decrypts() {
    let aws = LocalAws::shared();
    let key = aws.create_key("RSA_4096", REGION).await;
    let stack = Stack::new(aws, &[("calls", &[&key])]).await;
    let data = sample(300_000, 2);
    let (etag, version) = stack.upload("calls/rsa-1", &data, "audio/mpeg").await;
    let answer = stack.invoke(stack.event("calls/rsa-1", &etag, &version, data.len())).await.unwrap();
    assert_eq!(outcome(&answer), "encrypted", "{answer}");

    let calls = aws.kms_calls_for(&key);
    for op in ["Decrypt", "GenerateDataKey", "Encrypt", "GenerateDataKeyWithoutPlaintext"] {
        assert_eq!(calls.get(op), None, "the function called KMS {op} with the RSA key: {calls:?}");
    }
    assert_eq!(calls.get("DescribeKey"), Some(&1), "{calls:?}");
    assert_eq!(calls.get("GetPublicKey"), Some(&1), "{calls:?}");
    let entry = stack.entry("calls", "rsa-1").await.unwrap();
    assert_eq!(entry.provider, "aws-kms-rsa");

    let dir = TempDir::new("enc-rsa");
    let ct = dir.path("vault.esdk");
    std::fs::write(&ct, stack.get(&stack.vault, "calls/rsa-1").await.unwrap()).unwrap();
    let out = dir.path("plain");
    ok(&aws.callvault(&[
        "decrypt",
        "--key",
        &key,
        "--context",
        &format!("org={ORG}"),
        "--context",
        "recording_id=rsa-1",
        &ct,
        &out,
    ]));
    assert_eq!(std::fs::read(&out).unwrap(), data);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disaster_recovery_key_adds_a_second_encrypted_data_key_that_decrypts_alone() {
    let aws = LocalAws::shared();
    let primary = aws.create_key("SYMMETRIC_DEFAULT", REGION).await;
    let dr = aws.create_key("SYMMETRIC_DEFAULT", DR_REGION).await;
    let stack = Stack::new(aws, &[("calls", &[&primary, &dr])]).await;
    let data = sample(100_000, 3);
    let (etag, version) = stack.upload("calls/dr-1", &data, "audio/wav").await;
    let answer = stack.invoke(stack.event("calls/dr-1", &etag, &version, data.len())).await.unwrap();
    assert_eq!(outcome(&answer), "encrypted", "{answer}");

    let dir = TempDir::new("enc-dr");
    let ct = dir.path("vault.esdk");
    std::fs::write(&ct, stack.get(&stack.vault, "calls/dr-1").await.unwrap()).unwrap();
    let v: Value = serde_json::from_slice(&aws.callvault(&["inspect", &ct]).stdout).unwrap();
    let edks = v["encrypted_data_keys"].as_array().unwrap();
    assert_eq!(edks.len(), 2);
    assert_eq!(
        (edks[0]["provider_info"].as_str(), edks[1]["provider_info"].as_str()),
        (Some(primary.as_str()), Some(dr.as_str()))
    );
    assert_eq!(cli_decrypt(&stack, &dr, "calls/dr-1", ("calls", "dr-1"), "audio/wav").await, data);
    // Both keys protect it, and the catalog says so.
    assert_eq!(stack.usage(&primary).await.unwrap().recordings, 1);
    assert_eq!(stack.usage(&dr).await.unwrap().recordings, 1);
    assert_eq!(stack.entry("calls", "dr-1").await.unwrap().wrapping_keys, [primary, dr]);
}

#[derive(Clone, Copy)]
enum Break {
    Disable,
    ScheduleDeletion,
}

/// A key made unusable before the recording arrives: nothing is written, the
/// plaintext stays, tagged with the code, and the event is dead-lettered.
async fn refused_by_key_state(spec: &str, how: Break, expected: &str) {
    let aws = LocalAws::shared();
    let key = aws.create_key(spec, REGION).await;
    let stack = Stack::new(aws, &[("calls", &[&key])]).await;
    let kms = aws.kms().await;
    match how {
        Break::Disable => {
            kms.disable_key().key_id(&key).send().await.unwrap();
        }
        Break::ScheduleDeletion => {
            kms.schedule_key_deletion().key_id(&key).pending_window_in_days(30).send().await.unwrap();
        }
    }
    let data = sample(50_000, 4);
    let (etag, version) = stack.upload("calls/k-1", &data, "audio/wav").await;
    let answer = stack.invoke(stack.event("calls/k-1", &etag, &version, data.len())).await.unwrap();
    assert_eq!((outcome(&answer), code(&answer)), ("failed", expected), "{spec}: {answer}");
    assert!(answer["recordings"][0]["message"].as_str().unwrap().contains(&key), "the message names the key: {answer}");
    assert_eq!(stack.get(&stack.ingest, "calls/k-1").await.as_deref(), Some(&data[..]), "plaintext intact");
    assert_eq!(stack.status_tag("calls/k-1").await.as_deref(), Some(expected));
    assert_eq!(stack.versions(&stack.vault, "calls/k-1").await, 0);
    assert!(stack.entry("calls", "k-1").await.is_none());
    let letters = stack.dead_letters().await;
    assert_eq!(letters.len(), 1);
    assert_eq!((letters[0]["code"].as_str(), letters[0]["key"].as_str()), (Some(expected), Some("calls/k-1")));
    assert_eq!(letters[0]["version"].as_str(), Some(version.as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disabled_key_refuses_with_key_disabled_and_keeps_the_plaintext() {
    refused_by_key_state("SYMMETRIC_DEFAULT", Break::Disable, "key_disabled").await;
    refused_by_key_state("RSA_4096", Break::Disable, "key_disabled").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_pending_deletion_refuses_with_key_pending_deletion_and_keeps_the_plaintext() {
    refused_by_key_state("SYMMETRIC_DEFAULT", Break::ScheduleDeletion, "key_pending_deletion").await;
    refused_by_key_state("RSA_4096", Break::ScheduleDeletion, "key_pending_deletion").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_failing_mid_way_is_aborted_and_retried_from_the_intact_plaintext() {
    let aws = LocalAws::shared();
    let key = aws.create_key("SYMMETRIC_DEFAULT", REGION).await;
    let stack = Stack::new(aws, &[("calls", &[&key])]).await;
    let data = sample(20 * 1024 * 1024, 5);
    let (etag, version) = stack.upload("calls/mid-1", &data, "audio/wav").await;
    aws.inject_fault(json!({
        "method": "PUT", "path_contains": format!("/{}/", stack.vault), "query_contains": "partNumber=2",
        "status": 500, "code": "InternalError",
    }));
    let event = stack.event("calls/mid-1", &etag, &version, data.len());
    let err = stack.invoke(event.clone()).await.expect_err("a retryable failure fails the invocation");
    assert_eq!(err.code, "s3_unavailable", "{err}");
    aws.clear_faults();
    assert_eq!(stack.open_uploads().await, 0, "the multipart upload was aborted");
    assert_eq!(stack.versions(&stack.vault, "calls/mid-1").await, 0);
    assert!(stack.entry("calls", "mid-1").await.is_none());
    assert_eq!(stack.get(&stack.ingest, "calls/mid-1").await.as_deref(), Some(&data[..]));
    assert!(stack.dead_letters().await.is_empty(), "a retryable failure is Lambda's to retry");

    // Lambda's retry: the claim was released, so it goes through.
    let answer = stack.invoke(event).await.unwrap();
    assert_eq!(outcome(&answer), "encrypted", "{answer}");
    assert_eq!(stack.versions(&stack.ingest, "calls/mid-1").await, 0);
    assert_eq!(stack.usage(&key).await.unwrap().recordings, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn awkward_keys_and_empty_recordings_are_encrypted_under_their_decoded_names() {
    let aws = LocalAws::shared();
    let key = aws.create_key("SYMMETRIC_DEFAULT", REGION).await;
    let stack = Stack::new(aws, &[("calls", &[&key])]).await;
    let long_id = "x".repeat(1024 - "calls/".len());
    let keys = [
        "calls/Agent Smith+Jones 100% ünïcode.wav".to_string(),
        "calls/a%2Fb?c=d&e#f".to_string(),
        "calls/2026/11/23/nested id".to_string(),
        format!("calls/{long_id}"),
        "calls/empty".to_string(),
    ];
    for k in &keys {
        let data = if k.ends_with("empty") { Vec::new() } else { sample(5_000, 9) };
        let (etag, version) = stack.upload(k, &data, "audio/wav").await;
        let answer = stack.invoke(stack.event(k, &etag, &version, data.len())).await.unwrap();
        assert_eq!(outcome(&answer), "encrypted", "{k}: {answer}");
        let id = k.strip_prefix("calls/").unwrap();
        let entry = stack.entry("calls", id).await.unwrap_or_else(|| panic!("{k} catalogued"));
        assert_eq!(entry.plaintext_size, data.len() as u64);
        assert_eq!(stack.versions(&stack.ingest, k).await, 0, "{k}");
        if k.len() < 200 {
            assert_eq!(cli_decrypt(&stack, &key, k, ("calls", id), "audio/wav").await, data, "{k}");
        }
    }
    assert_eq!(stack.usage(&key).await.unwrap().recordings, keys.len() as u64);
    // The same key sent %2F-encoded, as the local AWS's own notifications do.
    let (etag, version) = stack.upload("calls/slashed", b"abc", "audio/wav").await;
    let event = s3_event(&stack.ingest, "calls%2Fslashed", &etag, Some(&version), 3);
    assert_eq!(outcome(&stack.invoke(event).await.unwrap()), "encrypted");
    assert_eq!(s3_encode_key("calls/a b+c"), "calls/a+b%2Bc");
}
