//! Playback on the in-memory twins: ranges read from the covering frames
//! only, the message cache (one KMS call for many seeks), revocation once
//! the cache time has passed, tampered, truncated and swapped vault objects,
//! and transfers that outlive their key.

mod common;

use std::time::Duration;

use common::*;
use vault::errors::{ErrorKind, OperationError};
use vault::playback::{OpenStats, PlaybackError};
use vault::ports::keys::KeyState;
use vault::recording::RecordingId;

fn id(recording_id: &str) -> RecordingId {
    RecordingId { recording_type: "calls".into(), recording_id: recording_id.into() }
}

/// Encrypts `data` as `calls/<name>` through the real ingest protocol.
async fn recorded(rig: &Rig, name: &str, data: &[u8]) {
    let obj = rig.upload(&format!("calls/{name}"), data);
    rig.encryptor().encrypt(&obj, claim_until(), "req").await.expect("encrypted");
}

/// Plays `range` (end exclusive; `None`: all) of a recording; the bytes,
/// or the first error, and the S3 bytes read.
async fn play(
    player: &Player,
    name: &str,
    range: Option<std::ops::Range<u64>>,
) -> (Result<Vec<u8>, PlaybackError>, u64) {
    let mut stats = OpenStats::default();
    let open = match player.open(&id(name), &mut stats).await {
        Ok(open) => open,
        Err(e) => return (Err(e), stats.s3_bytes),
    };
    let span = match open.span(range) {
        Ok(s) => s,
        Err(e) => return (Err(e), stats.s3_bytes),
    };
    let mut stream = match player.frames(&open, &span).await {
        Ok(s) => s,
        Err(e) => return (Err(e), stats.s3_bytes),
    };
    let mut out = Vec::new();
    while let Some(batch) = stream.next_batch().await {
        match batch {
            Ok(pieces) => pieces.iter().for_each(|p| out.extend_from_slice(p)),
            Err(e) => return (Err(e), stats.s3_bytes + stream.s3_bytes()),
        }
    }
    (Ok(out), stats.s3_bytes + stream.s3_bytes())
}

#[tokio::test(flavor = "multi_thread")]
async fn random_ranges_equal_the_same_bytes_of_the_original() {
    let rig = Rig::new();
    let data = sample(200_003, 1);
    recorded(&rig, "r-1", &data).await;
    let player = rig.player(Duration::from_secs(60));
    assert_eq!(play(&player, "r-1", None).await.0.unwrap(), data);
    let mut seed = 7u64;
    for _ in 0..50 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let start = seed % data.len() as u64;
        let len = 1 + (seed >> 20) % 20_000;
        let end = (start + len).min(data.len() as u64);
        let (got, _) = play(&player, "r-1", Some(start..end)).await;
        assert_eq!(got.unwrap(), data[start as usize..end as usize], "{start}..{end}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_range_reads_only_the_frames_that_cover_it() {
    let rig = Rig::new();
    let data = sample(100_000, 2);
    recorded(&rig, "r-2", &data).await;
    let player = rig.player(Duration::from_secs(60));
    let frame = u64::from(rig.frame_length) + 4 + 12 + 16;
    let (_, cold) = play(&player, "r-2", Some(0..10)).await;
    let (_, aligned) = play(&player, "r-2", Some(4096..8192)).await;
    let (_, crossing) = play(&player, "r-2", Some(4000..4200)).await;
    assert!(cold > frame && cold < 2 * frame, "the header and one frame: {cold}");
    assert_eq!((aligned, crossing), (frame, 2 * frame), "one frame, then two");
}

#[tokio::test(flavor = "multi_thread")]
async fn seeking_twenty_times_costs_one_kms_call_and_a_revoked_key_stops_playback_after_the_cache_time() {
    let rig = Rig::new();
    let data = sample(120_000, 3);
    recorded(&rig, "r-3", &data).await;
    let ttl = Duration::from_millis(300);
    let player = rig.player(ttl);
    let before = rig.kms.calls.get("Decrypt");
    for i in 0..20u64 {
        let start = i * 5000;
        assert_eq!(play(&player, "r-3", Some(start..start + 100)).await.0.unwrap(), data[start as usize..][..100]);
    }
    assert_eq!(rig.kms.calls.get("Decrypt") - before, 1, "one KMS Decrypt for twenty seeks");

    rig.kms.set_state(&rig.key, KeyState::Disabled);
    assert!(play(&player, "r-3", Some(0..10)).await.0.is_ok(), "within the cache time it still plays");
    tokio::time::sleep(ttl + Duration::from_millis(50)).await;
    let err = play(&player, "r-3", Some(0..10)).await.0.unwrap_err();
    assert_eq!(
        (err.code(), err.kind(), err.key_arn()),
        ("key_disabled", ErrorKind::KeyRefused, Some(rig.key.as_str()))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_transfer_that_outlives_the_key_cache_time_is_cut_and_resumes_with_a_range() {
    let rig = Rig::new();
    let data = sample(3 * 1024 * 1024, 4);
    recorded(&rig, "r-4", &data).await;
    let ttl = Duration::from_millis(200);
    let player = rig.player(ttl);
    let mut stats = OpenStats::default();
    let open = player.open(&id("r-4"), &mut stats).await.unwrap();
    let mut stream = player.frames(&open, &open.span(None).unwrap()).await.unwrap();
    let first = stream.next_batch().await.unwrap().unwrap();
    let sent: usize = first.iter().map(|b| b.len()).sum();
    tokio::time::sleep(ttl + Duration::from_millis(50)).await;
    let err = stream.next_batch().await.unwrap().unwrap_err();
    assert_eq!((err.code(), err.is_retryable()), ("key_cache_expired", true));
    assert!(err.to_string().contains(&format!("Range: bytes={sent}-")), "{err}");
    // The player's next request asks KMS again and goes on from there.
    let (rest, _) = play(&player, "r-4", Some(sent as u64..data.len() as u64)).await;
    assert_eq!(rest.unwrap(), data[sent..]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_frame_releases_nothing_of_it_and_the_frames_before_it_only() {
    let rig = Rig::new();
    let data = sample(3 * 1024 * 1024, 5);
    recorded(&rig, "r-5", &data).await;
    let entry = rig.entry("calls/r-5").unwrap();
    // A bit flipped in the first frame, and one two megabytes in.
    rig.objects.tamper(&vault("calls/r-5"), entry.vault_version.as_deref(), |b| {
        let header = envelope::Header::parse(b, &envelope::Limits::default()).unwrap().len;
        b[header + 100] ^= 1;
    });
    let player = rig.player(Duration::from_secs(60));
    let err = play(&player, "r-5", Some(0..100)).await.0.unwrap_err();
    assert_eq!((err.code(), err.kind()), ("integrity", ErrorKind::Integrity));

    let rig = Rig::new();
    recorded(&rig, "r-6", &data).await;
    let entry = rig.entry("calls/r-6").unwrap();
    rig.objects.tamper(&vault("calls/r-6"), entry.vault_version.as_deref(), |b| {
        let at = b.len() - 1024 * 1024;
        b[at] ^= 1;
    });
    let player = rig.player(Duration::from_secs(60));
    let mut stats = OpenStats::default();
    let open = player.open(&id("r-6"), &mut stats).await.unwrap();
    let mut stream = player.frames(&open, &open.span(None).unwrap()).await.unwrap();
    let mut released = Vec::new();
    let err = loop {
        match stream.next_batch().await.expect("the stream ends with the error") {
            Ok(pieces) => pieces.iter().for_each(|p| released.extend_from_slice(p)),
            Err(e) => break e,
        }
    };
    assert_eq!(err.code(), "integrity");
    assert!(!released.is_empty() && released.len() < data.len() - 1024 * 1024 + 4096, "{}", released.len());
    assert_eq!(released, data[..released.len()], "every released byte is authentic");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vault_object_swapped_with_another_recordings_is_refused_before_any_kms_call() {
    let rig = Rig::new();
    recorded(&rig, "a", &sample(50_000, 6)).await;
    recorded(&rig, "b", &sample(50_000, 7)).await;
    let other = rig.objects.get(&vault("calls/b"), None).unwrap();
    let entry = rig.entry("calls/a").unwrap();
    rig.objects.tamper(&vault("calls/a"), entry.vault_version.as_deref(), |bytes| *bytes = other);
    let player = rig.player(Duration::from_secs(60));
    let before = rig.kms.calls.get("Decrypt");
    let err = play(&player, "a", None).await.0.unwrap_err();
    assert_eq!(err.code(), "integrity");
    assert_eq!(rig.kms.calls.get("Decrypt"), before, "no KMS call for the wrong message");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_truncated_or_missing_vault_object_is_an_integrity_failure() {
    let rig = Rig::new();
    recorded(&rig, "t", &sample(50_000, 8)).await;
    let entry = rig.entry("calls/t").unwrap();
    rig.objects.tamper(&vault("calls/t"), entry.vault_version.as_deref(), |b| b.truncate(b.len() - 100));
    let player = rig.player(Duration::from_secs(60));
    assert_eq!(play(&player, "t", Some(49_900..50_000)).await.0.unwrap_err().code(), "integrity");

    recorded(&rig, "gone", &sample(50_000, 9)).await;
    let entry = rig.entry("calls/gone").unwrap();
    use vault::ports::objects::ObjectStore;
    rig.objects.delete(&vault("calls/gone"), entry.vault_version.as_deref()).await.unwrap();
    assert_eq!(play(&player, "gone", None).await.0.unwrap_err().code(), "integrity");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_recordings_are_not_found_and_info_needs_no_kms_call() {
    let rig = Rig::new();
    recorded(&rig, "i", &sample(10_000, 10)).await;
    let player = rig.player(Duration::from_secs(60));
    let err = play(&player, "nope", None).await.0.unwrap_err();
    assert_eq!((err.code(), err.kind()), ("not_found", ErrorKind::NotFound));
    rig.kms.set_state(&rig.key, KeyState::Disabled);
    let before = rig.kms.calls.get("Decrypt");
    let info = player.info(&id("i")).await.unwrap();
    assert_eq!((info.entry.plaintext_size, info.header_keys.as_slice()), (10_000, &[rig.key.clone()][..]));
    assert_eq!(rig.kms.calls.get("Decrypt"), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_failures_are_retryable_and_deployment_failures_are_not() {
    let rig = Rig::new();
    recorded(&rig, "f", &sample(10_000, 11)).await;
    let player = rig.player(Duration::from_secs(60));
    rig.kms.faults.fail_next("Decrypt", vault::KeyError::Throttled { key: rig.key.clone() });
    let err = play(&player, "f", None).await.0.unwrap_err();
    assert_eq!((err.code(), err.kind()), ("kms_throttled", ErrorKind::Transient));
    rig.catalog
        .faults
        .fail_next("recording", vault::ports::catalog::CatalogError::TableMissing { table: "catalog".into() });
    let err = play(&player, "f", None).await.0.unwrap_err();
    assert_eq!((err.code(), err.kind()), ("catalog_missing", ErrorKind::Deployment));
    assert!(play(&player, "f", None).await.0.is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cached_key_about_to_expire_is_a_miss_not_a_stream_that_aborts_at_once() {
    let rig = Rig::new();
    let data = sample(50_000, 12);
    recorded(&rig, "e", &data).await;
    let ttl = Duration::from_millis(400);
    let player = rig.player(ttl);
    let before = rig.kms.calls.get("Decrypt");
    assert!(play(&player, "e", Some(0..10)).await.0.is_ok());
    assert!(play(&player, "e", Some(0..10)).await.0.is_ok());
    assert_eq!(rig.kms.calls.get("Decrypt") - before, 1, "a fresh entry is a hit");
    // Less than half the cache time left: opened again, and the whole
    // recording streams without a key_cache_expired.
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(play(&player, "e", None).await.0.unwrap(), data);
    assert_eq!(rig.kms.calls.get("Decrypt") - before, 2, "an entry about to expire is a miss");
}
