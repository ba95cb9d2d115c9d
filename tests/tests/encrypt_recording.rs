//! encrypt-recording end to end on the local AWS, through the real handler
//! and the real SDK adapters: the vault object decrypts with the official
//! aws-encryption-cli, the catalog is right, the plaintext is gone; and every
//! fault ends with the plaintext intact or the recording complete and
//! catalogued, never neither.

use e2e::ingest::{s3_encode_key, s3_event, Stack, ORG};
use e2e::*;
use serde_json::{json, Value};
use vault::ports::catalog::RecordingCatalog;

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
    ok(&aws.callvault(&["decrypt", "--context", "recording_id=rsa-1", &ct, &out]));
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
async fn a_failing_catalog_write_leaves_no_vault_object_the_catalog_does_not_know() {
    // Its own local AWS: the fault matches every catalog transaction.
    let aws = LocalAws::start();
    let key = aws.create_key("SYMMETRIC_DEFAULT", REGION).await;
    let stack = Stack::new(&aws, &[("calls", &[&key])]).await;
    let data = sample(1_000_000, 6);
    let (etag, version) = stack.upload("calls/cat-1", &data, "audio/wav").await;
    aws.inject_fault(json!({
        "target": "DynamoDB_20120810.TransactWriteItems", "status": 500, "code": "InternalServerError",
    }));
    let event = stack.event("calls/cat-1", &etag, &version, data.len());
    let err = stack.invoke(event.clone()).await.expect_err("retryable");
    assert_eq!(err.code, "catalog_unavailable", "{err}");
    aws.clear_faults();
    assert_eq!(stack.versions(&stack.vault, "calls/cat-1").await, 0, "the uncatalogued vault object was removed");
    assert!(stack.entry("calls", "cat-1").await.is_none());
    assert!(stack.usage(&key).await.is_none());
    assert_eq!(stack.get(&stack.ingest, "calls/cat-1").await.as_deref(), Some(&data[..]));

    let answer = stack.invoke(event).await.unwrap();
    assert_eq!(outcome(&answer), "encrypted", "{answer}");
    assert_eq!(stack.versions(&stack.vault, "calls/cat-1").await, 1);
    assert_eq!(stack.usage(&key).await.unwrap().recordings, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_between_catalog_and_delete_is_finished_by_the_redelivered_event() {
    let aws = LocalAws::shared();
    let key = aws.create_key("SYMMETRIC_DEFAULT", REGION).await;
    let stack = Stack::new(aws, &[("calls", &[&key])]).await;
    let data = sample(70_000, 7);
    let (etag, version) = stack.upload("calls/crash-1", &data, "audio/wav").await;
    aws.inject_fault(json!({
        "method": "DELETE", "path_contains": format!("/{}/", stack.ingest), "status": 500, "code": "InternalError",
    }));
    let event = stack.event("calls/crash-1", &etag, &version, data.len());
    let err = stack.invoke(event.clone()).await.expect_err("the delete failed");
    assert_eq!(err.code, "delete_failed", "{err}");
    aws.clear_faults();
    // Complete and catalogued, plaintext still there: never neither.
    assert!(stack.entry("calls", "crash-1").await.is_some());
    assert_eq!(stack.versions(&stack.vault, "calls/crash-1").await, 1);
    assert_eq!(stack.get(&stack.ingest, "calls/crash-1").await.as_deref(), Some(&data[..]));

    let answer = stack.invoke(event).await.unwrap();
    assert_eq!(outcome(&answer), "already_done", "{answer}");
    assert_eq!(stack.versions(&stack.ingest, "calls/crash-1").await, 0, "the redelivery finished the delete");
    assert_eq!(stack.versions(&stack.vault, "calls/crash-1").await, 1, "and wrote nothing again");
    assert_eq!(stack.usage(&key).await.unwrap().recordings, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_and_concurrent_events_catalogue_once_and_count_once() {
    let aws = LocalAws::shared();
    let key = aws.create_key("SYMMETRIC_DEFAULT", REGION).await;
    let stack = Stack::new(aws, &[("calls", &[&key])]).await;
    let data = sample(2_000_000, 8);
    let (etag, version) = stack.upload("calls/dup-1", &data, "audio/wav").await;
    let event = stack.event("calls/dup-1", &etag, &version, data.len());

    // Four containers get the same event at once.
    let mut handlers = Vec::new();
    for _ in 0..4 {
        handlers.push(stack.handler().await);
    }
    let answers = futures_join_all(handlers.iter().map(|h| stack.invoke_with(h, event.clone()))).await;
    let mut outcomes: Vec<String> = answers
        .iter()
        .map(|a| match a {
            Ok(v) => outcome(v).to_string(),
            Err(e) => format!("error {}", e.code),
        })
        .collect();
    outcomes.sort();
    assert_eq!(outcomes.iter().filter(|o| *o == "encrypted").count(), 1, "{outcomes:?}");
    // The others found it done, or found it in progress and failed so that
    // Lambda retries them later.
    assert!(
        outcomes.iter().all(|o| ["encrypted", "already_done", "error in_progress"].contains(&o.as_str())),
        "{outcomes:?}"
    );
    // And once more, late.
    let late = stack.invoke(event).await.unwrap();
    assert_eq!(outcome(&late), "already_done");
    let usage = stack.usage(&key).await.unwrap();
    assert_eq!((usage.recordings, usage.bytes), (1, data.len() as u64));
    assert_eq!(stack.versions(&stack.vault, "calls/dup-1").await, 1, "one vault object");
    assert_eq!(stack.versions(&stack.ingest, "calls/dup-1").await, 0);
}

async fn futures_join_all<F: std::future::Future>(futures: impl Iterator<Item = F>) -> Vec<F::Output> {
    // Polled together on this task: enough for the handlers' I/O to overlap.
    let mut pinned: Vec<_> = futures.map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, out) in pinned.iter_mut().zip(outputs.iter_mut()) {
            if out.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *out = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("ready")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_different_upload_of_a_catalogued_recording_is_refused_and_kept() {
    let aws = LocalAws::shared();
    let key = aws.create_key("SYMMETRIC_DEFAULT", REGION).await;
    let stack = Stack::new(aws, &[("calls", &[&key])]).await;
    let (etag, version) = stack.upload("calls/re-1", b"first take", "audio/wav").await;
    let first = stack.invoke(stack.event("calls/re-1", &etag, &version, 10)).await.unwrap();
    assert_eq!(outcome(&first), "encrypted");
    let (etag2, version2) = stack.upload("calls/re-1", b"second take", "audio/wav").await;
    let answer = stack.invoke(stack.event("calls/re-1", &etag2, &version2, 11)).await.unwrap();
    assert_eq!((outcome(&answer), code(&answer)), ("failed", "already_exists"), "{answer}");
    assert_eq!(stack.get(&stack.ingest, "calls/re-1").await.as_deref(), Some(&b"second take"[..]));
    assert_eq!(stack.status_tag("calls/re-1").await.as_deref(), Some("already_exists"));
    assert_eq!(stack.entry("calls", "re-1").await.unwrap().source_etag, etag);
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

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_a_clear_outcome_and_no_panic() {
    let aws = LocalAws::shared();
    let key = aws.create_key("SYMMETRIC_DEFAULT", REGION).await;
    let stack = Stack::new(aws, &[("calls", &[&key])]).await;
    let (etag, version) = stack.upload("voicemail/v-1.wav", b"hello", "audio/wav").await;

    let unknown = stack.invoke(stack.event("voicemail/v-1.wav", &etag, &version, 5)).await.unwrap();
    assert_eq!((outcome(&unknown), code(&unknown)), ("failed", "unknown_type"), "{unknown}");
    assert!(unknown["recordings"][0]["message"].as_str().unwrap().contains("calls"), "names the configured types");
    assert_eq!(stack.status_tag("voicemail/v-1.wav").await.as_deref(), Some("unknown_type"));
    assert_eq!(stack.get(&stack.ingest, "voicemail/v-1.wav").await.as_deref(), Some(&b"hello"[..]));

    let folder =
        stack.invoke(s3_event(&stack.ingest, "calls/", "d41d8cd98f00b204e9800998ecf8427e", None, 0)).await.unwrap();
    assert_eq!(outcome(&folder), "ignored", "{folder}");

    let (etag, version) = stack.upload("no-type", b"x", "audio/wav").await;
    let flat = stack.invoke(stack.event("no-type", &etag, &version, 1)).await.unwrap();
    assert_eq!((outcome(&flat), code(&flat)), ("failed", "bad_key"), "{flat}");

    for malformed in [
        json!({}),
        json!({ "Records": [] }),
        json!({ "Records": "nope" }),
        json!({ "Records": [{ "eventSource": "aws:s3" }] }),
        json!([1, 2, 3]),
        json!("a string"),
    ] {
        let answer = stack.invoke(malformed.clone()).await.unwrap();
        assert_eq!((outcome(&answer), code(&answer)), ("failed", "bad_event"), "{malformed}: {answer}");
    }
    let mut no_key = s3_event(&stack.ingest, "calls/x", "e", None, 1);
    no_key["Records"][0]["s3"]["object"].as_object_mut().unwrap().remove("key");
    assert_eq!(code(&stack.invoke(no_key).await.unwrap()), "bad_event");
    let broken = s3_event(&stack.ingest, "calls/%zz", "e", None, 1);
    assert_eq!(code(&stack.invoke(broken).await.unwrap()), "bad_event");
    let elsewhere = s3_event("some-other-bucket", "calls/x", "e", None, 1);
    assert_eq!(code(&stack.invoke(elsewhere).await.unwrap()), "bad_event");

    // Every refusal was dead-lettered with its code, none lost.
    let letters = stack.dead_letters().await;
    let mut codes: Vec<&str> = letters.iter().map(|l| l["code"].as_str().unwrap()).collect();
    codes.sort();
    assert_eq!(codes.iter().filter(|c| **c == "bad_event").count(), 9, "{codes:?}");
    assert!(codes.contains(&"unknown_type") && codes.contains(&"bad_key"), "{codes:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_retry_of_an_invocation_that_died_takes_its_claim_over_and_others_wait() {
    let aws = LocalAws::shared();
    let key = aws.create_key("SYMMETRIC_DEFAULT", REGION).await;
    let stack = Stack::new(aws, &[("calls", &[&key])]).await;
    let data = sample(30_000, 10);
    let (etag, version) = stack.upload("calls/died-1", &data, "audio/wav").await;
    // An invocation claimed the recording for 15 minutes, then died.
    let id = vault::recording::RecordingId { recording_type: "calls".into(), recording_id: "died-1".into() };
    let claim = stack.catalog().await.claim(&id, &etag, "request-that-died", vault::time::unix_now(), 900).await;
    assert!(matches!(claim, Ok(vault::ports::catalog::Claim::Acquired { .. })), "{claim:?}");
    let event = stack.event("calls/died-1", &etag, &version, data.len());

    // A duplicate delivery (another request) waits: a retryable failure.
    let err = stack.invoke_as(&stack.handler().await, event.clone(), "another-request").await.unwrap_err();
    assert_eq!(err.code, "in_progress", "{err}");
    assert_eq!(stack.get(&stack.ingest, "calls/died-1").await.as_deref(), Some(&data[..]));

    // Lambda's retry of the one that died comes with its request id.
    let answer = stack.invoke_as(&stack.handler().await, event, "request-that-died").await.unwrap();
    assert_eq!(outcome(&answer), "encrypted", "{answer}");
    assert_eq!(stack.usage(&key).await.unwrap().recordings, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unversioned_ingest_bucket_never_loses_a_newer_upload() {
    let aws = LocalAws::shared();
    let key = aws.create_key("SYMMETRIC_DEFAULT", REGION).await;
    let stack = Stack::new(aws, &[("calls", &[&key])]).await;
    stack
        .s3
        .put_bucket_versioning()
        .bucket(&stack.ingest)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Suspended)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let put = async |body: &[u8]| {
        let out = stack
            .s3
            .put_object()
            .bucket(&stack.ingest)
            .key("calls/u-1")
            .content_type("audio/wav")
            .body(body.to_vec().into())
            .send()
            .await
            .unwrap();
        out.e_tag.unwrap().trim_matches('"').to_string()
    };
    let first = put(b"first take").await;
    let second = put(b"second take, a newer upload").await;
    // The first upload's event arrives after the second replaced it.
    let stale = s3_event(&stack.ingest, "calls/u-1", &first, None, 10);
    let answer = stack.invoke(stale).await.unwrap();
    assert_eq!(outcome(&answer), "superseded", "{answer}");
    assert_eq!(stack.get(&stack.ingest, "calls/u-1").await.as_deref(), Some(&b"second take, a newer upload"[..]));
    assert!(stack.entry("calls", "u-1").await.is_none());
    assert_eq!(stack.status_tag("calls/u-1").await, None, "not a failure: no tag");
    assert!(stack.dead_letters().await.is_empty(), "and no dead letter");
    // The newer upload's own event encrypts it and deletes it.
    let answer = stack.invoke(s3_event(&stack.ingest, "calls/u-1", &second, None, 27)).await.unwrap();
    assert_eq!(outcome(&answer), "encrypted", "{answer}");
    assert_eq!(stack.get(&stack.ingest, "calls/u-1").await, None);
    assert_eq!(
        cli_decrypt(&stack, &key, "calls/u-1", ("calls", "u-1"), "audio/wav").await,
        b"second take, a newer upload"
    );
}
