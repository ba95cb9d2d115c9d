//! The ingest protocol on the in-memory twins: claims, concurrent and
//! repeated deliveries, retries of invocations that died, crashes between
//! the vault write, the catalog and the delete, failing steps, superseded
//! uploads, and the clean-up of what the catalog does not know. Whatever
//! happens, the plaintext is deleted only once its ciphertext is in the
//! vault, verified and catalogued; a recording is catalogued and counted
//! once.

mod common;

use common::*;
use vault::errors::OperationError;
use vault::ingest::{IngestError, Outcome};
use vault::memory::until_crash;
use vault::ports::catalog::{CatalogError, Claim, RecordingCatalog};
use vault::ports::keys::{KeyError, KeyState};
use vault::ports::objects::S3Error;

fn s3_down() -> S3Error {
    S3Error::Unavailable { location: "injected".into(), detail: "InternalError".into() }
}

fn catalog_down() -> CatalogError {
    CatalogError::Unavailable { detail: "InternalServerError".into() }
}

fn code(r: &Result<Outcome, IngestError>) -> &'static str {
    match r {
        Ok(Outcome::Encrypted { .. }) => "encrypted",
        Ok(Outcome::AlreadyDone { .. }) => "already_done",
        Ok(Outcome::Superseded { .. }) => "superseded",
        Err(e) => e.code(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recording_is_encrypted_verified_catalogued_and_its_plaintext_deleted() {
    let rig = Rig::new();
    let data = sample(100_000, 1);
    let obj = rig.upload("calls/r-1.wav", &data);
    let out = rig.encryptor().encrypt(&obj, claim_until(), "req-1").await;
    assert_eq!(code(&out), "encrypted", "{out:?}");

    assert_eq!(rig.decrypt("calls/r-1.wav").await, data);
    let entry = rig.entry("calls/r-1.wav").unwrap();
    assert_eq!((entry.plaintext_size, entry.source_etag.as_str()), (data.len() as u64, obj.etag.as_str()));
    assert_eq!(entry.vault_version.as_deref(), rig.vault_versions("calls/r-1.wav").first().map(String::as_str));
    assert_eq!(entry.wrapping_keys, std::slice::from_ref(&rig.key));
    assert_eq!(rig.usage(&rig.key), 1);
    assert_eq!(rig.plaintext("calls/r-1.wav"), None, "the plaintext is gone");
    assert!(!rig.catalog.is_claimed(&entry.id), "the claim ended with the transaction");
    assert_eq!(rig.objects.open_uploads(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_repeated_event_is_already_done_and_writes_nothing() {
    let rig = Rig::new();
    let obj = rig.upload("calls/rep-1", &sample(5000, 2));
    rig.encryptor().encrypt(&obj, claim_until(), "req-1").await.unwrap();
    let again = rig.encryptor().encrypt(&obj, claim_until(), "req-2").await;
    assert_eq!(code(&again), "already_done");
    assert_eq!(rig.vault_versions("calls/rep-1").len(), 1, "nothing written again");
    assert_eq!(rig.usage(&rig.key), 1, "nothing counted again");
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_deliveries_catalogue_once_and_count_once() {
    let rig = Rig::new();
    let data = sample(300_000, 3);
    let obj = rig.upload("calls/dup-1", &data);
    let encryptors: Vec<_> = (0..4).map(|_| rig.encryptor()).collect();
    let runs = encryptors
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let obj = obj.clone();
            async move { e.encrypt(&obj, claim_until(), &format!("req-{i}")).await }
        })
        .collect::<Vec<_>>();
    let results = join_all(runs).await;
    let mut codes: Vec<_> = results.iter().map(code).collect();
    codes.sort();
    assert_eq!(codes.iter().filter(|c| **c == "encrypted").count(), 1, "{codes:?}");
    assert!(codes.iter().all(|c| ["encrypted", "already_done", "in_progress"].contains(c)), "{codes:?}");
    for r in &results {
        if let Err(e) = r {
            assert!(e.is_retryable(), "in progress is Lambda's to retry: {e}");
        }
    }
    let late = rig.encryptor().encrypt(&obj, claim_until(), "req-late").await;
    assert_eq!(code(&late), "already_done");
    assert_eq!(rig.usage(&rig.key), 1);
    assert_eq!(rig.vault_versions("calls/dup-1").len(), 1, "one vault object");
    assert_eq!(rig.decrypt("calls/dup-1").await, data);
}

async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut handles = Vec::new();
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
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
    handles.extend(outputs.into_iter().map(|o| o.expect("ready")));
    handles
}

#[tokio::test(flavor = "multi_thread")]
async fn the_retry_of_an_invocation_that_died_takes_its_claim_over_and_others_wait() {
    let rig = Rig::new();
    let data = sample(30_000, 4);
    let obj = rig.upload("calls/died-1", &data);
    let id = vault::recording::route("calls/died-1").unwrap();
    let claim = rig.catalog.claim(&id, &obj.etag, "request-that-died", vault::time::unix_now(), 900).await.unwrap();
    assert!(matches!(claim, Claim::Acquired { .. }));

    let other = rig.encryptor().encrypt(&obj, claim_until(), "another-request").await;
    assert_eq!(code(&other), "in_progress");
    assert!(other.unwrap_err().is_retryable());
    assert_eq!(rig.plaintext("calls/died-1").as_deref(), Some(&data[..]));

    let retry = rig.encryptor().encrypt(&obj, claim_until(), "request-that-died").await;
    assert_eq!(code(&retry), "encrypted", "{retry:?}");
    assert_eq!(rig.usage(&rig.key), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_between_the_vault_write_and_the_catalog_keeps_the_plaintext_and_the_retry_completes() {
    let rig = Rig::new();
    let data = sample(50_000, 5);
    let obj = rig.upload("calls/crash-v", &data);
    rig.catalog.faults.crash_next("record");
    let encryptor = rig.encryptor();
    let crashed = until_crash(encryptor.encrypt(&obj, claim_until(), "req-1"), rig.catalog.faults.crashed()).await;
    assert!(crashed.is_none(), "the protocol stopped at the catalog write");
    // The vault copy is written, nothing catalogues it, the plaintext stays.
    assert_eq!(rig.vault_versions("calls/crash-v").len(), 1);
    assert!(rig.entry("calls/crash-v").is_none());
    assert_eq!(rig.plaintext("calls/crash-v").as_deref(), Some(&data[..]));

    // Lambda retries the event under the same request id: its claim is taken over.
    let retry = rig.encryptor().encrypt(&obj, claim_until(), "req-1").await;
    assert_eq!(code(&retry), "encrypted", "{retry:?}");
    let entry = rig.entry("calls/crash-v").unwrap();
    let versions = rig.vault_versions("calls/crash-v");
    assert_eq!(versions.len(), 2, "the crashed attempt's copy is left");
    assert_eq!(rig.states("calls/crash-v"), ["pending", "catalogued"], "the lifecycle rule removes the orphan");
    assert_eq!(entry.vault_version.as_deref(), versions.last().map(String::as_str), "the catalog names the new one");
    assert_eq!(rig.decrypt("calls/crash-v").await, data);
    assert_eq!(rig.plaintext("calls/crash-v"), None);
    assert_eq!(rig.usage(&rig.key), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_between_the_catalog_and_the_delete_is_finished_by_the_redelivered_event() {
    let rig = Rig::new();
    let data = sample(70_000, 6);
    let obj = rig.upload("calls/crash-d", &data);
    rig.catalog.faults.crash_after_next("record");
    let encryptor = rig.encryptor();
    let crashed = until_crash(encryptor.encrypt(&obj, claim_until(), "req-1"), rig.catalog.faults.crashed()).await;
    assert!(crashed.is_none());
    // Complete and catalogued, plaintext still there: never neither.
    assert!(rig.entry("calls/crash-d").is_some());
    assert_eq!(rig.plaintext("calls/crash-d").as_deref(), Some(&data[..]));

    let again = rig.encryptor().encrypt(&obj, claim_until(), "req-2").await;
    assert_eq!(code(&again), "already_done");
    assert_eq!(rig.plaintext("calls/crash-d"), None, "the redelivery finished the delete");
    assert_eq!(rig.vault_versions("calls/crash-d").len(), 1, "and wrote nothing again");
    assert_eq!(rig.usage(&rig.key), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_delete_of_the_plaintext_keeps_it_and_the_redelivery_deletes_it() {
    let rig = Rig::new();
    let data = sample(10_000, 7);
    let obj = rig.upload("calls/del-1", &data);
    rig.objects.faults.fail_next("delete", s3_down());
    let out = rig.encryptor().encrypt(&obj, claim_until(), "req-1").await;
    assert_eq!(code(&out), "delete_failed");
    assert!(out.unwrap_err().is_retryable(), "S3 was unavailable: Lambda retries");
    assert!(rig.entry("calls/del-1").is_some());
    assert_eq!(rig.plaintext("calls/del-1").as_deref(), Some(&data[..]));
    assert_eq!(code(&rig.encryptor().encrypt(&obj, claim_until(), "req-1").await), "already_done");
    assert_eq!(rig.plaintext("calls/del-1"), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_catalog_write_leaves_its_vault_object_pending_for_the_lifecycle_rule() {
    let rig = Rig::new();
    let data = sample(20_000, 8);
    let obj = rig.upload("calls/cat-1", &data);
    rig.catalog.faults.fail_next("record", catalog_down());
    let out = rig.encryptor().encrypt(&obj, claim_until(), "req-1").await;
    assert_eq!(code(&out), "catalog_unavailable");
    assert!(out.unwrap_err().is_retryable());
    // encrypt-recording cannot delete vault objects: the uncatalogued one
    // stays tagged pending, which the vault's lifecycle rule removes.
    assert_eq!(rig.states("calls/cat-1"), ["pending"]);
    assert!(rig.entry("calls/cat-1").is_none());
    assert_eq!(rig.usage(&rig.key), 0);
    assert_eq!(rig.plaintext("calls/cat-1").as_deref(), Some(&data[..]));
    assert!(!rig.catalog.is_claimed(&vault::recording::route("calls/cat-1").unwrap()), "the claim was released");

    assert_eq!(code(&rig.encryptor().encrypt(&obj, claim_until(), "req-1").await), "encrypted");
    assert_eq!(rig.states("calls/cat-1"), ["pending", "catalogued"]);
    assert_eq!(rig.usage(&rig.key), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_catalog_write_that_committed_but_answered_an_error_is_kept_and_finished() {
    let rig = Rig::new();
    let data = sample(20_000, 9);
    let obj = rig.upload("calls/cat-2", &data);
    // DynamoDB applied the transaction; its answer was lost (a timeout).
    rig.catalog.faults.fail_after_next("record", catalog_down());
    let out = rig.encryptor().encrypt(&obj, claim_until(), "req-1").await;
    assert_eq!(code(&out), "encrypted", "the catalog is asked again before anything is undone: {out:?}");
    assert_eq!(rig.states("calls/cat-2"), ["catalogued"], "the catalogued copy is kept");
    assert_eq!(rig.decrypt("calls/cat-2").await, data);
    assert_eq!(rig.plaintext("calls/cat-2"), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreadable_catalog_after_a_failed_write_keeps_the_vault_copy_and_the_plaintext() {
    let rig = Rig::new();
    let data = sample(20_000, 10);
    let obj = rig.upload("calls/cat-3", &data);
    rig.catalog.faults.fail_next("record", catalog_down());
    // The first look and the second after the claim go through; the look
    // after the failed write cannot say whether it committed.
    rig.catalog.faults.pass_next("recording", 2);
    rig.catalog.faults.fail_next("recording", catalog_down());
    let out = rig.encryptor().encrypt(&obj, claim_until(), "req-1").await;
    assert_eq!(code(&out), "catalog_unavailable");
    assert_eq!(rig.catalog.faults.calls("recording"), 3);
    assert_eq!(rig.states("calls/cat-3"), ["pending"], "kept: it may be the catalogued copy");
    assert!(rig.entry("calls/cat-3").is_none());
    assert_eq!(rig.plaintext("calls/cat-3").as_deref(), Some(&data[..]), "the plaintext stays");
    // The retry writes a copy of its own and catalogues it.
    assert_eq!(code(&rig.encryptor().encrypt(&obj, claim_until(), "req-1").await), "encrypted");
    assert_eq!(rig.decrypt("calls/cat-3").await, data);
    assert_eq!(rig.states("calls/cat-3"), ["pending", "catalogued"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_failing_mid_way_is_aborted_and_retried_from_the_intact_plaintext() {
    let rig = Rig::new();
    let data = sample(600_000, 11);
    let obj = rig.upload("calls/mid-1", &data);
    rig.objects.faults.fail_next("upload_write", s3_down());
    let out = rig.encryptor().encrypt(&obj, claim_until(), "req-1").await;
    assert_eq!(code(&out), "s3_unavailable", "{out:?}");
    assert!(out.unwrap_err().is_retryable());
    assert_eq!(rig.objects.open_uploads(), 0, "the upload was aborted");
    assert!(rig.vault_versions("calls/mid-1").is_empty());
    assert!(rig.entry("calls/mid-1").is_none());
    assert_eq!(rig.plaintext("calls/mid-1").as_deref(), Some(&data[..]));

    assert_eq!(code(&rig.encryptor().encrypt(&obj, claim_until(), "req-1").await), "encrypted");
    assert_eq!(rig.decrypt("calls/mid-1").await, data);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vault_object_that_is_not_what_was_written_is_left_pending_and_written_again() {
    let rig = Rig::new();
    let data = sample(40_000, 12);
    let obj = rig.upload("calls/ver-1", &data);
    rig.objects.corrupt_next_upload();
    let out = rig.encryptor().encrypt(&obj, claim_until(), "req-1").await;
    assert_eq!(code(&out), "vault_verify_failed", "{out:?}");
    assert!(out.unwrap_err().is_retryable());
    assert_eq!(rig.states("calls/ver-1"), ["pending"], "the bad copy is the lifecycle rule's");
    assert_eq!(rig.plaintext("calls/ver-1").as_deref(), Some(&data[..]));
    assert_eq!(code(&rig.encryptor().encrypt(&obj, claim_until(), "req-1").await), "encrypted");
    assert_eq!(rig.decrypt("calls/ver-1").await, data);
    assert_eq!(rig.states("calls/ver-1"), ["pending", "catalogued"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_frame_corrupted_after_sealing_and_before_upload_is_caught_and_the_plaintext_kept() {
    // A bit flipped in the writer's buffer before it is hashed: S3's
    // checksum matches the corrupted bytes, so only re-opening the frames
    // can see it. Offsets in the header, the first frame and the last.
    let rig = Rig::new();
    let data = sample(40_000, 13);
    for (i, offset) in [10usize, 600, 40_000].into_iter().enumerate() {
        let key = format!("calls/flip-{i}");
        let obj = rig.upload(&key, &data);
        rig.objects.corrupt_next_upload_before_hashing(offset);
        let out = rig.encryptor().encrypt(&obj, claim_until(), "req-1").await;
        assert_eq!(code(&out), "ciphertext_check_failed", "offset {offset}: {out:?}");
        assert!(out.unwrap_err().is_retryable());
        assert_eq!(rig.plaintext(&key).as_deref(), Some(&data[..]), "offset {offset}: the plaintext is kept");
        assert!(rig.vault_versions(&key).is_empty(), "offset {offset}: nothing was stored");
        assert!(rig.entry(&key).is_none());
        assert_eq!(rig.objects.open_uploads(), 0, "the upload was aborted");
        // The retry writes a new message, which decrypts.
        assert_eq!(code(&rig.encryptor().encrypt(&obj, claim_until(), "req-2").await), "encrypted");
        assert_eq!(rig.decrypt(&key).await, data);
    }
    assert_eq!(rig.usage(&rig.key), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_different_upload_of_a_catalogued_recording_is_refused_and_kept() {
    let rig = Rig::new();
    let first = rig.upload("calls/re-1", b"first take");
    rig.encryptor().encrypt(&first, claim_until(), "req-1").await.unwrap();
    let second = rig.upload("calls/re-1", b"second take");
    let out = rig.encryptor().encrypt(&second, claim_until(), "req-2").await;
    assert_eq!(code(&out), "already_exists");
    assert!(!out.unwrap_err().is_retryable());
    assert_eq!(rig.plaintext("calls/re-1").as_deref(), Some(&b"second take"[..]), "kept for an operator");
    assert_eq!(rig.entry("calls/re-1").unwrap().source_etag, first.etag);
    assert_eq!(rig.usage(&rig.key), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unversioned_ingest_bucket_never_loses_a_newer_upload() {
    let rig = Rig::new();
    rig.objects.create_bucket(INGEST, false);
    let first = rig.upload("calls/u-1", b"first take");
    let second = rig.upload("calls/u-1", b"second take, a newer upload");
    let stale = rig.encryptor().encrypt(&first, claim_until(), "req-1").await;
    assert_eq!(code(&stale), "superseded");
    assert_eq!(rig.plaintext("calls/u-1").as_deref(), Some(&b"second take, a newer upload"[..]));
    assert!(rig.entry("calls/u-1").is_none());
    assert_eq!(code(&rig.encryptor().encrypt(&second, claim_until(), "req-2").await), "encrypted");
    assert_eq!(rig.plaintext("calls/u-1"), None);
    assert_eq!(rig.decrypt("calls/u-1").await, b"second take, a newer upload");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_upload_replaced_after_encryption_is_kept_in_an_unversioned_bucket() {
    let rig = Rig::new();
    rig.objects.create_bucket(INGEST, false);
    let first = rig.upload("calls/u-2", b"first take");
    // The newer upload lands while the first is being catalogued.
    rig.catalog.faults.crash_after_next("record");
    let encryptor = rig.encryptor();
    assert!(until_crash(encryptor.encrypt(&first, claim_until(), "req-1"), rig.catalog.faults.crashed())
        .await
        .is_none());
    rig.upload("calls/u-2", b"a newer upload");
    assert_eq!(code(&rig.encryptor().encrypt(&first, claim_until(), "req-1").await), "already_done");
    assert_eq!(rig.plaintext("calls/u-2").as_deref(), Some(&b"a newer upload"[..]), "the newer upload is kept");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_that_refuses_keeps_the_plaintext_and_writes_nothing() {
    for (state, expected) in [(KeyState::Disabled, "key_disabled"), (KeyState::PendingDeletion, "key_pending_deletion")]
    {
        let rig = Rig::new();
        rig.kms.set_state(&rig.key, state);
        let data = sample(1000, 13);
        let obj = rig.upload("calls/k-1", &data);
        let out = rig.encryptor().encrypt(&obj, claim_until(), "req-1").await;
        assert_eq!(code(&out), expected);
        let err = out.unwrap_err();
        assert_eq!((err.key_arn(), err.is_retryable()), (Some(rig.key.as_str()), false));
        assert!(err.to_string().contains(&rig.key), "the message names the key: {err}");
        assert_eq!(rig.plaintext("calls/k-1").as_deref(), Some(&data[..]));
        assert!(rig.vault_versions("calls/k-1").is_empty());
        assert!(!rig.catalog.is_claimed(&vault::recording::route("calls/k-1").unwrap()));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kms_throttling_fails_the_invocation_for_lambda_to_retry() {
    let rig = Rig::new();
    let obj = rig.upload("calls/t-1", b"abc");
    rig.kms.faults.fail_next("GenerateDataKey", KeyError::Throttled { key: rig.key.clone() });
    let out = rig.encryptor().encrypt(&obj, claim_until(), "req-1").await;
    assert_eq!(code(&out), "kms_throttled");
    assert!(out.unwrap_err().is_retryable());
    assert_eq!(code(&rig.encryptor().encrypt(&obj, claim_until(), "req-1").await), "encrypted");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_an_rsa_key_kms_never_decrypts_or_generates() {
    let kms = std::sync::Arc::new(vault::memory::MemoryKms::new());
    let key = kms.create_rsa(REGION);
    let rig = Rig::with_keys(kms, key.clone(), &format!(r#"{{"calls": ["{key}"]}}"#));
    let data = sample(30_000, 14);
    for i in 0..3 {
        let obj = rig.upload(&format!("calls/rsa-{i}"), &data);
        assert_eq!(code(&rig.encryptor().encrypt(&obj, claim_until(), "req").await), "encrypted");
    }
    for op in ["Decrypt", "GenerateDataKey", "Encrypt"] {
        assert_eq!(rig.kms.calls.get(op), 0, "{op}");
    }
    assert_eq!(rig.entry("calls/rsa-0").unwrap().provider, "aws-kms-rsa");
    assert_eq!(rig.decrypt("calls/rsa-2").await, data);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_keys_unknown_types_and_other_buckets_are_refused_without_a_retry() {
    let rig = Rig::new();
    let cases = [
        (rig.upload("voicemail/v-1", b"x"), "unknown_type"),
        (rig.upload("no-type", b"x"), "bad_key"),
        (vault::ingest::Announced { bucket: "elsewhere".into(), ..rig.upload("calls/x", b"x") }, "bad_event"),
    ];
    for (obj, expected) in cases {
        let out = rig.encryptor().encrypt(&obj, claim_until(), "req").await;
        assert_eq!(code(&out), expected);
        assert!(!out.unwrap_err().is_retryable());
    }
    assert!(rig.catalog.recordings().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forged_event_naming_another_version_with_the_encrypted_etag_keeps_that_version() {
    let rig = Rig::new();
    let first = rig.upload("calls/v-1", b"the recording that was encrypted");
    rig.encryptor().encrypt(&first, claim_until(), "req-1").await.unwrap();
    let second = rig.upload("calls/v-1", b"a later upload, never encrypted");
    // {eTag of the encrypted upload, versionId of the later one}.
    let forged = vault::ingest::Announced { version: second.version.clone(), ..first.clone() };
    let out = rig.encryptor().encrypt(&forged, claim_until(), "req-2").await;
    assert_eq!(code(&out), "already_done");
    assert_eq!(
        rig.objects.get(&ingest("calls/v-1"), second.version.as_deref()).as_deref(),
        Some(&b"a later upload, never encrypted"[..]),
        "the version the event named is kept"
    );
    // The real event of the later upload is refused and keeps it too.
    assert_eq!(code(&rig.encryptor().encrypt(&second, claim_until(), "req-3").await), "already_exists");
    assert!(rig.plaintext("calls/v-1").is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_whose_etag_is_not_the_encrypted_uploads_is_never_deleted() {
    let rig = Rig::new();
    let obj = rig.upload("calls/v-2", b"encrypted");
    // The catalog write lands, then the named version is not what was read
    // (here: replaced in place, as only a forged or corrupted store could).
    rig.catalog.faults.crash_after_next("record");
    let encryptor = rig.encryptor();
    assert!(until_crash(encryptor.encrypt(&obj, claim_until(), "req-1"), rig.catalog.faults.crashed()).await.is_none());
    rig.objects.tamper(&ingest("calls/v-2"), obj.version.as_deref(), |b| b.push(b'!'));
    rig.objects.refresh_etag(&ingest("calls/v-2"), obj.version.as_deref());
    assert_eq!(code(&rig.encryptor().encrypt(&obj, claim_until(), "req-1").await), "already_done");
    assert_eq!(rig.plaintext("calls/v-2").as_deref(), Some(&b"encrypted!"[..]), "kept: not the bytes encrypted");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vault_object_is_born_pending_and_catalogued_before_its_plaintext_is_deleted() {
    let rig = Rig::new();
    let data = sample(30_000, 21);
    let obj = rig.upload("calls/state-1", &data);
    assert_eq!(code(&rig.encryptor().encrypt(&obj, claim_until(), "req-1").await), "encrypted");
    assert_eq!(rig.states("calls/state-1"), ["catalogued"]);
    assert_eq!(rig.plaintext("calls/state-1"), None);

    // The retag fails: the plaintext stays, and the redelivery finishes both.
    let obj = rig.upload("calls/state-2", &data);
    rig.objects.faults.fail_next("tag", s3_down());
    let out = rig.encryptor().encrypt(&obj, claim_until(), "req-1").await;
    assert_eq!(code(&out), "s3_unavailable", "{out:?}");
    assert!(rig.entry("calls/state-2").is_some(), "catalogued");
    assert_eq!(rig.states("calls/state-2"), ["pending"]);
    assert_eq!(rig.plaintext("calls/state-2").as_deref(), Some(&data[..]), "kept until the version is catalogued");
    assert_eq!(code(&rig.encryptor().encrypt(&obj, claim_until(), "req-2").await), "already_done");
    assert_eq!(rig.states("calls/state-2"), ["catalogued"]);
    assert_eq!(rig.plaintext("calls/state-2"), None);
    // A repeated event does not ask to retag what is catalogued (the role
    // may only turn pending into catalogued).
    let tags_before = rig.objects.faults.calls("tag");
    assert_eq!(code(&rig.encryptor().encrypt(&obj, claim_until(), "req-3").await), "already_done");
    assert_eq!(rig.objects.faults.calls("tag"), tags_before);
}
