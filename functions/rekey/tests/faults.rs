//! The fault table through the path the Lambda and `callvault rekey
//! --local` run: a schema 2.0 invocation into `rekey::Handler`, its answer
//! read as S3 Batch Operations reads it. Each case fails or stops one step;
//! the job then retries the task (the same job and task id) and it must end
//! with exactly one catalogued, playable version and no orphan, the usage
//! counted once, under the new key.

mod common;

use std::time::Duration;

use common::*;
use inbound::s3_batch::invocation;
use serde_json::Value;
use vault::memory::until_crash;
use vault::playback::{OpenStats, PlaybackSettings, RecordingPlayer, DEFAULT_BATCH_BYTES};
use vault::ports::catalog::CatalogError;
use vault::ports::keys::KeyError;
use vault::ports::objects::{S3Error, S3Location};
use vault::recording::RecordingId;

fn event(d: &Deployed, job: &str) -> Value {
    invocation(job, &task(0), &[("operation", "rekey"), ("targetKeys", &d.b), ("fromKey", &d.a)])
}

/// Plays `calls/r-0` whole through the player.
async fn plays(d: &Deployed) -> Vec<u8> {
    let settings = PlaybackSettings {
        org: "acme".into(),
        vault_bucket: VAULT.into(),
        region: REGION.into(),
        cache_ttl: Duration::ZERO,
        cache_entries: 4,
        batch_bytes: DEFAULT_BATCH_BYTES,
    };
    let player = RecordingPlayer::new(d.kms.clone(), d.objects.clone(), d.catalog.clone(), settings);
    let id = RecordingId { recording_type: "calls".into(), recording_id: "r-0".into() };
    let open = player.open(&id, &mut OpenStats::default()).await.expect("opens");
    let mut frames = player.frames(&open, &open.span(None).unwrap()).await.unwrap();
    let mut out = Vec::new();
    while let Some(batch) = frames.next_batch().await {
        batch.expect("authentic").iter().for_each(|p| out.extend_from_slice(p));
    }
    out
}

/// Exactly one catalogued version (the row's), every other superseded, on
/// B, playing whole, counted once.
async fn settled(d: &Deployed, case: &str) {
    let entry = d.entry(0);
    assert_eq!(entry.wrapping_keys, std::slice::from_ref(&d.b), "{case}");
    let loc = S3Location { bucket: VAULT.into(), key: "calls/r-0".into() };
    for v in d.objects.versions(&loc).into_iter().filter(|v| v != "(deleted)") {
        let state = d.objects.tags_of(&loc, Some(&v)).into_iter().find(|(k, _)| k == "callvault-state").map(|(_, s)| s);
        let expected = if Some(&v) == entry.vault_version.as_ref() { "catalogued" } else { "superseded" };
        assert_eq!(state.as_deref(), Some(expected), "{case}: version {v}");
    }
    assert_eq!(plays(d).await, vec![0u8; 10_000], "{case}: plays whole");
    assert_eq!((d.usage(&d.a), d.usage(&d.b)), (0, 1), "{case}: counted once, under B");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_fault_is_answered_for_the_job_and_the_retry_ends_settled() {
    type Plan = Box<dyn Fn(&Deployed)>;
    let unavailable = || S3Error::Unavailable { location: "vault".into(), detail: "InternalError".into() };
    let cases: Vec<(&str, Plan, &str)> = vec![
        (
            "KMS throttled on unwrap",
            Box::new(|d: &Deployed| d.kms.faults.fail_next("Decrypt", KeyError::Throttled { key: d.a.clone() })),
            "TemporaryFailure kms_throttled",
        ),
        (
            "KMS throttled on wrap",
            Box::new(|d: &Deployed| {
                d.kms.faults.fail_next("GenerateDataKey", KeyError::Throttled { key: d.b.clone() })
            }),
            "TemporaryFailure kms_throttled",
        ),
        (
            "an S3 part failing",
            Box::new(move |d: &Deployed| d.objects.faults.fail_next("upload_write", unavailable())),
            "TemporaryFailure s3_unavailable",
        ),
        (
            "the catalog failing at the move",
            Box::new(|d: &Deployed| {
                d.catalog
                    .faults
                    .fail_next("move_recording", CatalogError::Unavailable { detail: "InternalServerError".into() })
            }),
            "TemporaryFailure catalog_unavailable",
        ),
        (
            "the move's answer lost after it committed",
            Box::new(|d: &Deployed| {
                d.catalog
                    .faults
                    .fail_after_next("move_recording", CatalogError::Unavailable { detail: "timeout".into() })
            }),
            "Succeeded rekeyed",
        ),
        (
            "a transaction conflict every time",
            Box::new(|d: &Deployed| {
                for _ in 0..=vault::rekey::CONFLICT_RETRIES {
                    d.catalog
                        .faults
                        .fail_next("move_recording", CatalogError::Conflict { detail: "TransactionConflict".into() })
                }
            }),
            "TemporaryFailure catalog_conflict",
        ),
        (
            "tagging failing after the move",
            Box::new(move |d: &Deployed| d.objects.faults.fail_next("tag", unavailable())),
            "TemporaryFailure s3_unavailable",
        ),
    ];
    for (case, plan, first) in cases {
        let d = deployed(1).await;
        plan(&d);
        let answer = d.handler.handle(&event(&d, "job-1")).await.expect("answered");
        let (code, text) = result(&answer);
        assert_eq!(format!("{code} {}", text.split(' ').next().unwrap()), first, "{case}: {text}");
        if code != "Succeeded" {
            // Still on A (nothing moved), or on B with the tags unfinished:
            // either way what the row names plays.
            let keys = d.keys_of(0);
            assert!(keys == [d.a.clone()] || keys == [d.b.clone()], "{case}: {keys:?}");
            assert_eq!(plays(&d).await, vec![0u8; 10_000], "{case}: the catalogued version plays");
        }
        let retry = d.handler(900).handle(&event(&d, "job-1")).await.unwrap();
        assert_eq!(result(&retry).0, "Succeeded", "{case}: {retry}");
        settled(&d, case).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stop_before_or_after_the_catalog_write_is_finished_by_the_jobs_retry() {
    for (case, after, retried) in [
        ("stopped after the new version, before the catalog", false, "rekeyed"),
        ("stopped after the catalog, before the old version's tag", true, "already_on_target"),
    ] {
        let d = deployed(1).await;
        if after {
            d.catalog.faults.crash_after_next("move_recording");
        } else {
            d.catalog.faults.crash_next("move_recording");
        }
        let stopped = until_crash(d.handler.handle(&event(&d, "job-2")), d.catalog.faults.crashed()).await;
        assert!(stopped.is_none(), "{case}");
        assert_eq!(plays(&d).await, vec![0u8; 10_000], "{case}: whatever the row names plays");
        // The job retries the task under the same job and task id.
        let retry = d.handler(900).handle(&event(&d, "job-2")).await.unwrap();
        let (code, text) = result(&retry);
        assert_eq!((code, text.split(' ').next()), ("Succeeded", Some(retried)), "{case}");
        settled(&d, case).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_task_twice_at_once_and_a_row_that_changed_meanwhile() {
    // Twice at once: one moves it, the other is retried and finds it done.
    let d = deployed(1).await;
    let (h1, h2) = (d.handler(900), d.handler(900));
    let (e1, e2) = (event(&d, "job-3"), event(&d, "job-4"));
    let (x, y) = tokio::join!(h1.handle(&e1), h2.handle(&e2));
    let mut codes = [
        result(&x.unwrap()).1.split(' ').next().unwrap().to_string(),
        result(&y.unwrap()).1.split(' ').next().unwrap().to_string(),
    ];
    codes.sort();
    assert!(codes == ["already_on_target", "rekeyed"] || codes == ["in_progress", "rekeyed"], "{codes:?}");
    assert_eq!(result(&d.handler(900).handle(&e2).await.unwrap()).0, "Succeeded");
    settled(&d, "twice at once").await;

    // A task slower than its claim: another takes the recording over and
    // moves it; the slow one's catalog condition fails, it is told to retry,
    // and the retry finds the recording on B.
    let d = deployed(1).await;
    let go = d.objects.faults.pause_next("verify");
    let slow = {
        let (handler, e) = (d.handler(1), event(&d, "job-5"));
        tokio::spawn(async move { handler.handle(&e).await })
    };
    while d.objects.faults.calls("verify") == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(result(&d.handler(900).handle(&event(&d, "job-6")).await.unwrap()).0, "Succeeded");
    go.notify_one();
    let answer = slow.await.unwrap().unwrap();
    assert_eq!(result(&answer).0, "TemporaryFailure", "{answer}");
    assert!(result(&answer).1.starts_with("row_changed "), "{answer}");
    assert_eq!(
        result(&d.handler(900).handle(&event(&d, "job-5")).await.unwrap()).1.split(' ').next(),
        Some("already_on_target")
    );
    settled(&d, "row changed").await;
}
