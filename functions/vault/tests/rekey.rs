//! The re-key protocol on the in-memory twins: a recording moves onto other
//! keys as a new message, its usage moves with it, playback never fails
//! because of a move, concurrent moves rarely collide on the usage
//! counters, and recordings move into other regions' deployments. The fault
//! table (every failure, stop, retry and duplicate ends with exactly one
//! catalogued, playable version and no orphan) runs through the Lambda's
//! own handler: `functions/rekey/tests/faults.rs`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use vault::errors::OperationError;
use vault::memory::until_crash;
use vault::playback::OpenStats;
use vault::ports::keys::{KeyError, KeyState};
use vault::recording::RecordingId;
use vault::rekey::{Destination, RekeyError, RekeyOutcome, RekeyTask, Target};

fn id(name: &str) -> RecordingId {
    RecordingId { recording_type: "calls".into(), recording_id: name.into() }
}

fn task(name: &str, to: &str, request: &str) -> RekeyTask {
    rekey_task(id(name), to, request)
}

fn code(r: &Result<RekeyOutcome, RekeyError>) -> &'static str {
    match r {
        Ok(RekeyOutcome::Rekeyed { .. }) => "rekeyed",
        Ok(RekeyOutcome::AlreadyOnTarget { .. }) => "already_on_target",
        Ok(RekeyOutcome::NotUnderKey { .. }) => "not_under_key",
        Ok(RekeyOutcome::MovedRegion { .. }) => "moved_region",
        Ok(RekeyOutcome::AlreadyMoved { .. }) => "already_moved",
        Err(e) => e.code(),
    }
}

/// A rig with key A (symmetric) for `calls` and a second key B.
fn rig_ab() -> (Rig, String, String) {
    let rig = Rig::new();
    let b = rig.kms.create_symmetric(REGION);
    let a = rig.key.clone();
    (rig, a, b)
}

async fn recorded(rig: &Rig, name: &str, data: &[u8]) {
    let obj = rig.upload(&format!("calls/{name}"), data);
    rig.encryptor().encrypt(&obj, claim_until(), "ingest").await.expect("encrypted");
}

/// Plays the whole recording through the player; the bytes or the code.
async fn play(player: &Player, name: &str) -> Result<Vec<u8>, &'static str> {
    let mut stats = OpenStats::default();
    let open = player.open(&id(name), &mut stats).await.map_err(|e| e.code())?;
    let span = open.span(None).map_err(|e| e.code())?;
    let mut stream = player.frames(&open, &span).await.map_err(|e| e.code())?;
    let mut out = Vec::new();
    while let Some(batch) = stream.next_batch().await {
        batch.map_err(|e| e.code())?.iter().for_each(|p| out.extend_from_slice(p));
    }
    Ok(out)
}

/// What every case must end in: the catalog names one version, on the
/// target keys, tagged catalogued; every other version is superseded (none
/// pending: no orphan); it decrypts to `data` and plays whole; the usage
/// counts it under the target only.
async fn settled(rig: &Rig, name: &str, data: &[u8], target: &str) {
    let key = format!("calls/{name}");
    let entry = rig.entry(&key).expect("catalogued");
    assert_eq!(entry.wrapping_keys, [target.to_string()], "{name}: on the target key");
    let versions = rig.vault_versions(&key);
    let states = rig.states(&key);
    for (v, state) in versions.iter().zip(&states) {
        let expected = if Some(v.as_str()) == entry.vault_version.as_deref() { "catalogued" } else { "superseded" };
        assert_eq!(state, expected, "{name}: version {v} of {versions:?} is {state} ({states:?})");
    }
    assert_eq!(states.iter().filter(|s| *s == "catalogued").count(), 1, "{name}: one catalogued version");
    assert_eq!(rig.decrypt(&key).await, data, "{name}: decrypts to the recording");
    assert_eq!(play(&rig.player(Duration::ZERO), name).await.as_deref(), Ok(data), "{name}: plays whole");
    assert!(!rig.catalog.is_claimed(&entry.id), "{name}: no claim left");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recording_moves_to_the_new_key_as_a_new_message_and_its_usage_moves_with_it() {
    let (mut rig, a, b) = rig_ab();
    rig.frame_length = 1024;
    let rsa = rig.kms.create_rsa(REGION);
    rig.keys =
        vault::recording::RecordingKeys::parse(&format!(r#"{{"calls": ["{a}"], "screens": ["{rsa}"]}}"#), REGION)
            .unwrap();
    // Empty, under one frame, exact frame multiples, many frames.
    let sizes = [0usize, 1, 1023, 1024, 3 * 1024, 50_000];
    for (i, size) in sizes.iter().enumerate() {
        recorded(&rig, &format!("r-{i}"), &sample(*size, i as u8)).await;
    }
    let screen = sample(5000, 9);
    let obj = rig.upload("screens/s-1", &screen);
    rig.encryptor().encrypt(&obj, claim_until(), "ingest").await.unwrap();
    assert_eq!((rig.usage(&a), rig.usage(&rsa)), (sizes.len() as u64, 1));

    let rekeyer = rig.rekeyer(900);
    for (i, size) in sizes.iter().enumerate() {
        let name = format!("r-{i}");
        let old = rig.entry(&format!("calls/{name}")).unwrap();
        let (decrypts, generates) = (rig.kms.calls.get("Decrypt"), rig.kms.calls.get("GenerateDataKey"));
        let out = rekeyer.rekey(&task(&name, &b, &format!("t-{i}"))).await;
        assert_eq!(code(&out), "rekeyed", "{name}: {out:?}");
        // One KMS Decrypt to unwrap, one GenerateDataKey to wrap, and one
        // Decrypt of the new wrapped key: KMS's proof before the catalog.
        assert_eq!(
            (rig.kms.calls.get("Decrypt") - decrypts, rig.kms.calls.get("GenerateDataKey") - generates),
            (2, 1),
            "{name}"
        );
        let new = rig.entry(&format!("calls/{name}")).unwrap();
        assert_ne!(new.message_id, old.message_id, "a new message, never the old one re-sealed");
        assert_ne!(new.vault_version, old.vault_version);
        assert_eq!((new.encrypted_at.as_str(), new.plaintext_size), (old.encrypted_at.as_str(), old.plaintext_size));
        assert!(new.rekeyed_at.is_some());
        settled(&rig, &name, &sample(*size, i as u8), &b).await;
    }

    // The RSA-wrapped recording moves to B too (unwrapped by KMS RSA decrypt).
    let out = rekeyer
        .rekey(&RekeyTask {
            id: RecordingId { recording_type: "screens".into(), recording_id: "s-1".into() },
            target: Target::Keys(vec![b.clone()]),
            from_key: Some(rsa.clone()),
            request_id: "t-s".into(),
            destination: None,
            copy_only: false,
        })
        .await;
    assert_eq!(code(&out), "rekeyed", "{out:?}");
    assert_eq!(rig.decrypt("screens/s-1").await, screen);

    assert_eq!((rig.usage(&a), rig.usage(&rsa), rig.usage(&b)), (0, 0, sizes.len() as u64 + 1));
    // A off: everything still decrypts and plays, under B alone.
    rig.kms.set_state(&a, KeyState::Disabled);
    rig.kms.set_state(&rsa, KeyState::Disabled);
    for (i, size) in sizes.iter().enumerate() {
        assert_eq!(play(&rig.player(Duration::ZERO), &format!("r-{i}")).await, Ok(sample(*size, i as u8)));
    }
}

/// Finding 2 of the safety review: a re-key whose tagging fails after the
/// catalog commit, through every retry of the job, left the only catalogued
/// version tagged `pending` (the lifecycle rule's, in 14 days), and nothing
/// found it again: `rekey --from-key A` selected nothing (the row is under
/// B) while A's usage said 0. Now the commit marks the row: the selection
/// still finds it (and its task finishes the tags), the daily sweep finishes
/// them too, and the mark goes only once the tag is confirmed.
#[tokio::test(flavor = "multi_thread")]
async fn a_rekey_whose_tags_never_land_stays_marked_until_a_rerun_or_the_sweep_finishes_them() {
    use vault::ports::objects::S3Error;
    use vault::rekey::{Selection, SWEEP_GRACE_SECS};
    let (rig, a, b) = rig_ab();
    let (one, two) = (sample(20_000, 21), sample(7_000, 22));
    recorded(&rig, "one", &one).await;
    recorded(&rig, "two", &two).await;
    assert!(rig.entry("calls/one").unwrap().tags_due.is_none(), "ingest confirmed its own tag");
    let rekeyer = rig.rekeyer(900);
    let slow = || S3Error::Unavailable { location: "vault".into(), detail: "SlowDown".into() };

    // Every tag call fails, through the job's retries.
    for _ in 0..100 {
        rig.objects.faults.fail_next("tag", slow());
    }
    for name in ["one", "two"] {
        let mut out = rekeyer.rekey(&task(name, &b, name)).await;
        for _ in 0..3 {
            assert_eq!(code(&out), "s3_unavailable", "{name}: {out:?}");
            out = rekeyer.rekey(&task(name, &b, name)).await;
        }
        assert_eq!(code(&out), "s3_unavailable", "{name}: fails for good");
    }
    rig.objects.faults.clear("tag");

    // What that left: the catalog names the new version under B, still
    // tagged pending, and A protects nothing by its usage; but the row is
    // marked, moved off A.
    for name in ["one", "two"] {
        let entry = rig.entry(&format!("calls/{name}")).unwrap();
        assert_eq!(entry.wrapping_keys, std::slice::from_ref(&b));
        assert_eq!(rig.states(&format!("calls/{name}")), ["catalogued", "pending"], "{name}");
        let mark = entry.tags_due.as_ref().expect("marked in the catalog commit");
        assert_eq!(mark.from_keys, std::slice::from_ref(&a));
        assert!(entry.was_under(&a) && !entry.is_under(&a));
        let selection = Selection { from_key: Some(a.clone()), types: vec![] };
        assert!(selection.matches(&entry), "{name}: `rekey --from-key A` selects it");
    }
    assert_eq!((rig.usage(&a), rig.usage(&b)), (0, 2));

    // "one": the rerun of the job (--from-key A) finishes its tags.
    let mut rerun = task("one", &b, "rerun");
    rerun.from_key = Some(a.clone());
    let out = rekeyer.rekey(&rerun).await;
    assert_eq!(code(&out), "already_on_target", "{out:?}");
    settled(&rig, "one", &one, &b).await;
    assert!(rig.entry("calls/one").unwrap().tags_due.is_none(), "the mark is gone with the tags done");

    // "two": the sweep. A mark younger than the grace belongs to a writer
    // still at work: left alone.
    let now = vault::time::unix_now();
    let young = rekeyer.sweep_tags(now).await.unwrap();
    assert_eq!((young.due, young.young, young.finished.len()), (0, 1, 0), "{young:?}");
    assert_eq!(rig.states("calls/two"), ["catalogued", "pending"]);
    let swept = rekeyer.sweep_tags(now + SWEEP_GRACE_SECS + 60).await.unwrap();
    assert_eq!((swept.due, swept.finished.len(), swept.failed.len()), (1, 1, 0), "{swept:?}");
    // Out of the sweep's index; the mark remembers the key it left, so a
    // re-key off A still selects it.
    let entry = rig.entry("calls/two").unwrap();
    let mark = entry.tags_due.as_ref().expect("the keys it left are remembered");
    assert_eq!((mark.since.as_deref(), mark.from_keys.as_slice()), (None, std::slice::from_ref(&a)));
    assert!(Selection { from_key: Some(a.clone()), types: vec![] }.matches(&entry));
    // The version the catalog names is out of every lifecycle rule's reach;
    // the one it replaced stays catalogued (the sweep supersedes nothing).
    assert_eq!(rig.states("calls/two"), ["catalogued", "catalogued"]);
    assert_eq!(rig.decrypt("calls/two").await, two);
    let again = rekeyer.sweep_tags(now + SWEEP_GRACE_SECS + 60).await.unwrap();
    assert_eq!(again, vault::rekey::TagSweep::default(), "nothing left");
    // The rerun of the job off A supersedes the old one, and the mark goes.
    let mut tidy = task("two", &b, "tidy");
    tidy.from_key = Some(a.clone());
    let out = rekeyer.rekey(&tidy).await;
    assert_eq!(code(&out), "already_on_target", "{out:?}");
    settled(&rig, "two", &two, &b).await;
    assert!(rig.entry("calls/two").unwrap().tags_due.is_none());
}

/// A row still marked by a re-key whose tags never landed, moved to another
/// region by a job off the old key: the task still selects it, and every
/// version left here, the one the re-key replaced included, goes to the
/// `moved` rule (none stays catalogued for good).
#[tokio::test(flavor = "multi_thread")]
async fn a_marked_row_moved_to_another_region_leaves_no_version_here_catalogued() {
    use vault::ports::objects::S3Error;
    let (rig, a, b) = rig_ab();
    let data = sample(9_000, 23);
    recorded(&rig, "r", &data).await;
    let rekeyer = rig.rekeyer(900);
    for _ in 0..20 {
        rig.objects
            .faults
            .fail_next("tag", S3Error::Unavailable { location: "vault".into(), detail: "SlowDown".into() });
    }
    assert_eq!(code(&rekeyer.rekey(&task("r", &b, "t")).await), "s3_unavailable");
    rig.objects.faults.clear("tag");
    assert_eq!(rig.states("calls/r"), ["catalogued", "pending"]);

    let c = rig.kms.create_symmetric("eu-west-1");
    let (dest, _, catalog, mover) = elsewhere(&rig, "eu-west-1");
    let mut job = moving("r", &[&c], &dest, false);
    job.from_key = Some(a.clone());
    let out = mover.rekey(&job).await;
    assert_eq!(code(&out), "moved_region", "{out:?}");
    assert_eq!(rig.states("calls/r"), ["moved", "moved"], "nothing here outlives the move");
    assert!(rig.entry("calls/r").unwrap().tags_due.is_none(), "a marker keeps no mark");
    assert_eq!(catalog.recordings().len(), 1);
}

/// Finding 4 of the safety review: the proof decrypted the new message with
/// the data key in memory and never asked KMS, so a move onto a key nobody
/// may unwrap completed, and the old version went after a day. Now KMS must
/// unwrap what was written before the catalog names it.
#[tokio::test(flavor = "multi_thread")]
async fn a_move_onto_a_key_kms_will_not_unwrap_is_refused_before_the_catalog_names_it() {
    let (rig, a, b) = rig_ab();
    let data = sample(9_000, 21);
    recorded(&rig, "r", &data).await;
    let before = rig.entry("calls/r").unwrap();
    // The old message unwraps; the new one's proof is refused, as a key
    // policy without kms:Decrypt for this role would.
    rig.kms.faults.pass_next("Decrypt", 1);
    rig.kms.faults.fail_next("Decrypt", KeyError::AccessDenied { key: b.clone(), detail: "no kms:Decrypt".into() });
    let refused = rig.rekeyer(900).rekey(&task("r", &b, "t-1")).await.unwrap_err();
    assert_eq!((refused.code(), refused.is_retryable()), ("target_key_refused", false), "{refused}");
    assert!(refused.to_string().contains(&b), "{refused}");
    assert_eq!(rig.entry("calls/r").unwrap().message_id, before.message_id, "nothing catalogued");
    assert_eq!((rig.usage(&a), rig.usage(&b)), (1, 0));
    assert_eq!(rig.decrypt("calls/r").await, data, "it still plays under A");
    // The key allowed again: the move goes through, and its report says what KMS proved.
    let out = rig.rekeyer(900).rekey(&task("r", &b, "t-2")).await.unwrap();
    assert!(out.summary().contains(&format!("KMS unwrapped it under {b}")), "{}", out.summary());
}

#[tokio::test(flavor = "multi_thread")]
async fn running_a_task_again_is_a_no_op_success_and_the_configured_keys_are_the_default_target() {
    let (mut rig, a, b) = rig_ab();
    let data = sample(10_000, 1);
    recorded(&rig, "r", &data).await;
    rig.keys = vault::recording::RecordingKeys::parse(&format!(r#"{{"calls": ["{b}"]}}"#), REGION).unwrap();
    let configured = RekeyTask {
        id: id("r"),
        target: Target::Configured,
        from_key: Some(a.clone()),
        request_id: "t".into(),
        destination: None,
        copy_only: false,
    };
    assert_eq!(code(&rig.rekeyer(900).rekey(&configured).await), "rekeyed");
    let versions = rig.vault_versions("calls/r").len();
    for request in ["t", "t-again"] {
        let again = RekeyTask { request_id: request.into(), ..configured.clone() };
        assert_eq!(code(&rig.rekeyer(900).rekey(&again).await), "already_on_target");
    }
    assert_eq!(rig.vault_versions("calls/r").len(), versions, "nothing written again");
    assert_eq!((rig.usage(&a), rig.usage(&b)), (0, 1), "nothing counted again");
    // A job off another key finds nothing to do.
    let other = RekeyTask {
        from_key: Some(rig.kms.create_symmetric(REGION)),
        target: Target::Keys(vec![a.clone()]),
        ..configured
    };
    assert_eq!(code(&rig.rekeyer(900).rekey(&other).await), "not_under_key");
    settled(&rig, "r", &data, &b).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn playback_in_a_loop_while_the_recording_is_rekeyed_never_fails_or_mixes() {
    let (rig, a, b) = rig_ab();
    let data = sample(300_000, 7);
    recorded(&rig, "r", &data).await;
    let player = Arc::new(rig.player(Duration::ZERO));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let looping = {
        let (player, stop, data) = (player.clone(), stop.clone(), data.clone());
        tokio::spawn(async move {
            let mut plays = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let got = play(&player, "r").await;
                assert!(got.as_deref() == Ok(&data[..]), "play {plays} failed or mixed: {:?}", got.map(|g| g.len()));
                plays += 1;
            }
            plays
        })
    };
    for round in 0..6 {
        let to = if round % 2 == 0 { &b } else { &a };
        let out = rig.rekeyer(900).rekey(&task("r", to, &format!("t-{round}"))).await;
        assert_eq!(code(&out), "rekeyed", "round {round}: {out:?}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let plays = looping.await.expect("no failed or mixed play");
    assert!(plays > 0);
    settled(&rig, "r", &data, &a).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn what_cannot_succeed_fails_for_good_with_its_code_and_changes_nothing() {
    let (rig, a, b) = rig_ab();
    let data = sample(9000, 8);
    recorded(&rig, "r", &data).await;
    rig.kms.set_state(&b, KeyState::Disabled);
    let disabled = rig.rekeyer(900).rekey(&task("r", &b, "t")).await.unwrap_err();
    assert_eq!((disabled.code(), disabled.is_retryable()), ("key_disabled", false), "{disabled}");
    let missing = rig.rekeyer(900).rekey(&task("nope", &a, "t")).await.unwrap_err();
    assert_eq!((missing.code(), missing.is_retryable()), ("not_found", false));
    rig.kms.set_state(&b, KeyState::Enabled);
    // A tampered old version: nothing is written, nothing moves.
    let entry = rig.entry("calls/r").unwrap();
    rig.objects.tamper(&vault("calls/r"), entry.vault_version.as_deref(), |bytes| {
        let last = bytes.len() - 40;
        bytes[last] ^= 1;
    });
    let tampered = rig.rekeyer(900).rekey(&task("r", &b, "t")).await.unwrap_err();
    assert_eq!((tampered.code(), tampered.is_retryable()), ("integrity", false), "{tampered}");
    assert_eq!(rig.entry("calls/r").unwrap(), entry, "the row is untouched");
    assert_eq!(rig.vault_versions("calls/r").len(), 1, "nothing stored: the upload was aborted");
    assert_eq!(rig.objects.open_uploads(), 0);
    assert_eq!((rig.usage(&a), rig.usage(&b)), (1, 0));
}

/// Batch Operations runs many tasks at once, all moving off one key onto
/// another. One usage counter per key would make nearly every catalog
/// transaction collide (DynamoDB cancels the loser); the sharded counters
/// keep collisions rare, and the few are retried inside the task.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_moves_off_one_key_rarely_collide_on_the_sharded_usage_counters() {
    async fn run(shards: u8) -> (u64, usize) {
        let (rig, a, b) = rig_ab();
        let n = 40;
        for i in 0..n {
            recorded(&rig, &format!("r-{i}"), &sample(2000, i as u8)).await;
        }
        rig.catalog.contend(Duration::from_millis(30), shards);
        let rekeyer = Arc::new(rig.rekeyer(900));
        let mut passes = 0;
        let mut left: Vec<usize> = (0..n).collect();
        while !left.is_empty() {
            passes += 1;
            assert!(passes <= 20, "{shards} shards: {} tasks still failing", left.len());
            let runs: Vec<_> = left
                .iter()
                .map(|&i| {
                    let (rekeyer, b) = (rekeyer.clone(), b.clone());
                    tokio::spawn(
                        async move { (i, rekeyer.rekey(&task(&format!("r-{i}"), &b, &format!("t-{i}"))).await) },
                    )
                })
                .collect();
            let mut failed = Vec::new();
            for run in runs {
                let (i, out) = run.await.unwrap();
                match out {
                    Ok(_) => {}
                    Err(e) => {
                        assert_eq!(e.code(), "catalog_conflict", "{e}");
                        assert!(e.is_retryable());
                        failed.push(i);
                    }
                }
            }
            left = failed;
        }
        assert_eq!((rig.usage(&a), rig.usage(&b)), (0, n as u64), "{shards} shards");
        (rig.catalog.conflicts(), passes)
    }
    let (one, one_passes) = run(1).await;
    let (sharded, sharded_passes) = run(vault::ports::catalog::KEY_USAGE_SHARDS).await;
    println!("conflicts: one counter per key {one} ({one_passes} passes), sharded {sharded} ({sharded_passes} passes)");
    assert!(one >= 20, "one counter per key collides constantly: {one}");
    assert!(sharded * 4 <= one, "sharding cuts collisions: {sharded} vs {one}");
}

// ------------------------------------------------------------------ region moves

/// A deployment in `region` (vault `vault-<region>`), and the re-keyer of
/// `rig` that can move recordings there.
fn elsewhere(
    rig: &Rig,
    region: &str,
) -> (Destination, vault::memory::MemoryObjects, vault::memory::MemoryCatalog, Rekey) {
    let objects = vault::memory::MemoryObjects::new();
    let bucket = format!("vault-{region}");
    objects.create_bucket(&bucket, true);
    let catalog = vault::memory::MemoryCatalog::new();
    let regions = vault::memory::MemoryRegions::new().with(region, objects.clone(), catalog.clone());
    let destination =
        Destination { region: region.into(), vault_bucket: bucket, catalog_table: format!("catalog-{region}") };
    (destination, objects, catalog, rig.rekeyer(900).with_destinations(Arc::new(regions)))
}

fn moving(name: &str, to: &[&str], destination: &Destination, copy_only: bool) -> RekeyTask {
    RekeyTask {
        id: id(name),
        target: Target::Keys(to.iter().map(|k| k.to_string()).collect()),
        from_key: None,
        request_id: format!("move-{name}"),
        destination: Some(destination.clone()),
        copy_only,
    }
}

/// A player of the deployment in `region` over `objects` and `catalog`.
fn player_in(
    rig: &Rig,
    region: &str,
    objects: &vault::memory::MemoryObjects,
    catalog: &vault::memory::MemoryCatalog,
) -> Player {
    let settings = vault::playback::PlaybackSettings {
        org: ORG.into(),
        vault_bucket: format!("vault-{region}"),
        region: region.into(),
        cache_ttl: Duration::ZERO,
        cache_entries: 4,
        batch_bytes: vault::playback::DEFAULT_BATCH_BYTES,
    };
    vault::playback::RecordingPlayer::new(rig.kms.clone(), objects.clone(), catalog.clone(), settings)
}

fn state_of(
    objects: &vault::memory::MemoryObjects,
    loc: &vault::ports::objects::S3Location,
    version: Option<&str>,
) -> String {
    objects.tags_of(loc, version).into_iter().find(|(k, _)| k == "callvault-state").map(|(_, v)| v).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recording_moves_to_another_region_under_its_keys_and_leaves_a_marker_of_where_it_went() {
    let (rig, a, _) = rig_ab();
    let c = rig.kms.create_symmetric("eu-west-1");
    let data = sample(50_000, 12);
    recorded(&rig, "r", &data).await;
    let before = rig.entry("calls/r").unwrap();
    let (dest, objects, catalog, rekeyer) = elsewhere(&rig, "eu-west-1");

    let out = rekeyer.rekey(&moving("r", &[&c], &dest, false)).await;
    assert_eq!(code(&out), "moved_region", "{out:?}");
    // There: a new message under C, catalogued, counted, playable there.
    let there = catalog.recordings().pop().expect("catalogued there");
    assert_eq!(there.wrapping_keys, std::slice::from_ref(&c));
    assert_ne!(there.message_id, before.message_id, "a new message");
    assert_eq!((there.encrypted_at.as_str(), there.moved_to.as_ref()), (before.encrypted_at.as_str(), None));
    assert_eq!(catalog.key_usages_now().iter().find(|u| u.key_arn == c).map(|u| u.recordings), Some(1));
    let dst_loc = vault::ports::objects::S3Location { bucket: dest.vault_bucket.clone(), key: "calls/r".into() };
    assert_eq!(state_of(&objects, &dst_loc, there.vault_version.as_deref()), "catalogued");
    assert_eq!(play(&player_in(&rig, "eu-west-1", &objects, &catalog), "r").await, Ok(data.clone()));
    // Here: a marker, counted by no key; playback says where it went.
    let marker = rig.entry("calls/r").unwrap();
    let to = marker.moved_to.clone().expect("a marker");
    assert_eq!((to.region.as_str(), to.vault_bucket.as_str()), ("eu-west-1", dest.vault_bucket.as_str()));
    assert_eq!(rig.usage(&a), 0);
    assert_eq!(play(&rig.player(Duration::ZERO), "r").await, Err("moved"));
    assert_eq!(state_of(&rig.objects, &vault("calls/r"), before.vault_version.as_deref()), "moved");
    // Again: nothing more to do; in place: refused, it lives elsewhere.
    assert_eq!(code(&rekeyer.rekey(&moving("r", &[&c], &dest, false)).await), "already_moved");
    assert_eq!(objects.versions(&dst_loc).len(), 1, "written there once");
    let here = rig.rekeyer(900).rekey(&task("r", &a, "t")).await.unwrap_err();
    assert_eq!((here.code(), here.is_retryable()), ("moved", false));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_multi_region_recording_is_copied_as_it_is_and_plays_there_through_the_replica() {
    let kms = Arc::new(vault::memory::MemoryKms::new());
    let mrk = kms.create_multi_region(REGION, &["us-west-2"]);
    let rig = Rig::with_keys(kms, mrk[0].clone(), &format!(r#"{{"calls": ["{}"]}}"#, mrk[0]));
    let data = sample(70_000, 13);
    recorded(&rig, "r", &data).await;
    let before = rig.entry("calls/r").unwrap();
    let (dest, objects, catalog, rekeyer) = elsewhere(&rig, "us-west-2");

    let decrypts = rig.kms.calls.get("Decrypt");
    let out = rekeyer.rekey(&moving("r", &[], &dest, true)).await;
    assert_eq!(code(&out), "moved_region", "{out:?}");
    assert_eq!(rig.kms.calls.get("Decrypt"), decrypts, "a copy calls no KMS");
    let there = catalog.recordings().pop().unwrap();
    assert_eq!(there.wrapping_keys, [mrk[1].clone()], "named as the destination knows it: its replica");
    assert_eq!(there.message_id, before.message_id, "the same message");
    let dst_loc = vault::ports::objects::S3Location { bucket: dest.vault_bucket.clone(), key: "calls/r".into() };
    assert_eq!(
        objects.get(&dst_loc, there.vault_version.as_deref()),
        rig.objects.get(&vault("calls/r"), before.vault_version.as_deref()),
        "byte for byte"
    );
    // The primary off: there, the replica alone plays it.
    rig.kms.set_state(&mrk[0], KeyState::Disabled);
    assert_eq!(play(&player_in(&rig, "us-west-2", &objects, &catalog), "r").await, Ok(data));
    assert_eq!(rig.usage(&mrk[0]), 0);

    // A recording under a single-Region key cannot be copied.
    let (rig, _, _) = rig_ab();
    recorded(&rig, "s", &sample(100, 1)).await;
    let (dest, _, _, rekeyer) = elsewhere(&rig, "us-west-2");
    let refused = rekeyer.rekey(&moving("s", &[], &dest, true)).await.unwrap_err();
    assert_eq!((refused.code(), refused.is_retryable()), ("not_multi_region", false));
    assert!(rig.entry("calls/s").unwrap().moved_to.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_move_stopped_after_the_destination_catalogued_it_is_finished_by_the_rerun_without_a_second_copy() {
    let (rig, a, _) = rig_ab();
    let c = rig.kms.create_symmetric("eu-west-1");
    let data = sample(30_000, 14);
    recorded(&rig, "r", &data).await;
    let (dest, objects, catalog, rekeyer) = elsewhere(&rig, "eu-west-1");
    rig.catalog.faults.crash_next("move_recording");
    let stopped = until_crash(rekeyer.rekey(&moving("r", &[&c], &dest, false)), rig.catalog.faults.crashed()).await;
    assert!(stopped.is_none());
    assert!(rig.entry("calls/r").unwrap().moved_to.is_none(), "here: still the recording");
    assert_eq!(rig.decrypt("calls/r").await, data, "and it still plays here");
    assert_eq!(catalog.recordings().len(), 1, "there: catalogued");
    let out = rekeyer.rekey(&moving("r", &[&c], &dest, false)).await;
    assert_eq!(code(&out), "moved_region", "{out:?}");
    let dst_loc = vault::ports::objects::S3Location { bucket: dest.vault_bucket.clone(), key: "calls/r".into() };
    assert_eq!(objects.versions(&dst_loc).len(), 1, "the rerun used what was there");
    assert_eq!((rig.usage(&a), catalog.key_usages_now().len()), (0, 1));
    assert_eq!(play(&player_in(&rig, "eu-west-1", &objects, &catalog), "r").await, Ok(data));
}

/// Finding 1 of the safety review, as it happened: attempt 1 writes the
/// destination's row as a copy of this one (no hold yet); legal holds the
/// recording here meanwhile; attempt 1's marker is refused (`row_changed`);
/// the retry finds the destination's row and must not move the recording
/// there without its hold.
#[tokio::test(flavor = "multi_thread")]
async fn a_hold_set_while_a_move_is_under_way_travels_with_it_on_the_retry() {
    use vault::ports::catalog::{HoldChange, RetentionCatalog};
    let (rig, _, _) = rig_ab();
    let c = rig.kms.create_symmetric("eu-west-1");
    let data = sample(20_000, 15);
    recorded(&rig, "r", &data).await;
    let (dest, _, catalog, rekeyer) = elsewhere(&rig, "eu-west-1");
    let rekeyer = Arc::new(rekeyer);

    // Attempt 1, paused just before it turns the row here into a marker.
    let go = rig.catalog.faults.pause_next("move_recording");
    let first = tokio::spawn({
        let rekeyer = rekeyer.clone();
        let task = moving("r", &[&c], &dest, false);
        async move { rekeyer.rekey(&task).await }
    });
    while rig.catalog.faults.calls("move_recording") == 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(catalog.recordings()[0].hold.is_none(), "there: written before the hold");
    let hold = vault::recording::LegalHold {
        by: "arn:aws:iam::123456789012:role/legal".into(),
        reason: "case 2026-114".into(),
        at: "2026-12-07T10:00:00Z".into(),
    };
    rig.catalog.set_hold(&id("r"), &HoldChange::Set(hold.clone())).await.unwrap();
    go.notify_one();
    let refused = first.await.unwrap().unwrap_err();
    assert_eq!((refused.code(), refused.is_retryable()), ("row_changed", true), "{refused}");

    // The job retries until the task is done.
    let mut out = rekeyer.rekey(&moving("r", &[&c], &dest, false)).await;
    for _ in 0..3 {
        match &out {
            Err(e) if e.is_retryable() => out = rekeyer.rekey(&moving("r", &[&c], &dest, false)).await,
            _ => break,
        }
    }
    assert_eq!(code(&out), "moved_region", "{out:?}");
    let here = rig.entry("calls/r").unwrap();
    assert!(here.moved_to.is_some(), "moved: this row is a marker");
    let there = catalog.recordings().pop().unwrap();
    assert_eq!(there.hold, Some(hold), "the only copy left carries the hold");
    assert_eq!((there.retain_until.as_deref(), there.retention_days), (None, None));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copy_needs_the_replicas_there_and_nothing_moves_back_onto_its_own_marker() {
    // A multi-Region key with no replica in the destination region: the
    // copy is refused before anything is written, with the key's code.
    let kms = Arc::new(vault::memory::MemoryKms::new());
    let mrk = kms.create_multi_region(REGION, &[]);
    let rig = Rig::with_keys(kms, mrk[0].clone(), &format!(r#"{{"calls": ["{}"]}}"#, mrk[0]));
    recorded(&rig, "r", &sample(1000, 2)).await;
    let (dest, objects, catalog, rekeyer) = elsewhere(&rig, "eu-west-1");
    let refused = rekeyer.rekey(&moving("r", &[], &dest, true)).await.unwrap_err();
    assert_eq!((refused.code(), refused.is_retryable()), ("key_not_found", false), "{refused}");
    assert!(catalog.recordings().is_empty() && objects.keys(&dest.vault_bucket).is_empty(), "nothing written there");
    assert!(rig.entry("calls/r").unwrap().moved_to.is_none());

    // Moved there and back: the destination holds the marker of its move,
    // which is no copy of it: refused, the recording stays where it is.
    let (rig, _, _) = rig_ab();
    let c = rig.kms.create_symmetric("eu-west-1");
    let data = sample(3000, 3);
    recorded(&rig, "r", &data).await;
    let (dest, objects, catalog, rekeyer) = elsewhere(&rig, "eu-west-1");
    assert_eq!(code(&rekeyer.rekey(&moving("r", &[&c], &dest, false)).await), "moved_region");
    let back = Destination { region: REGION.into(), vault_bucket: VAULT.into(), catalog_table: "catalog".into() };
    let regions = vault::memory::MemoryRegions::new().with(REGION, rig.objects.clone(), rig.catalog.clone());
    let settings = vault::rekey::RekeySettings {
        org: ORG.into(),
        vault_bucket: dest.vault_bucket.clone(),
        region: "eu-west-1".into(),
        keys: vault::recording::RecordingKeys::parse(&format!(r#"{{"calls": ["{c}"]}}"#), "eu-west-1").unwrap(),
        frame_length: 4096,
        write: vault::ports::objects::WriteOptions::default(),
        claim_secs: 900,
        vault_lock: None,
    };
    let there = vault::rekey::Rekeyer::new(rig.kms.clone(), objects.clone(), catalog.clone(), settings)
        .with_destinations(Arc::new(regions));
    let key_here = rig.kms.create_symmetric(REGION);
    let refused = there.rekey(&moving("r", &[&key_here], &back, false)).await.unwrap_err();
    assert_eq!(refused.code(), "destination_taken", "{refused}");
    assert!(catalog.recordings()[0].moved_to.is_none(), "still catalogued there");
    assert_eq!(play(&player_in(&rig, "eu-west-1", &objects, &catalog), "r").await, Ok(data));
    // And the marker here is never selected for a job again.
    let selection = vault::rekey::Selection { from_key: None, types: vec!["calls".into()] };
    let mut selected = Vec::new();
    vault::rekey::select(&rig.catalog, &selection, |e| selected.push(e.id.clone())).await.unwrap();
    assert!(selected.is_empty(), "{selected:?}");
}

#[tokio::test]
async fn a_key_cached_as_a_disaster_recovery_key_is_no_primary() {
    let kms = vault::memory::MemoryKms::new();
    let (here, elsewhere) = (kms.create_symmetric(REGION), kms.create_symmetric("eu-west-1"));
    let cache = vault::keyring::KeyCache::default();
    cache.resolve(&kms, &[here.clone(), elsewhere.clone()], REGION).await.expect("a primary here and a DR key");
    let err = cache.resolve(&kms, std::slice::from_ref(&elsewhere), REGION).await.unwrap_err();
    assert_eq!(err.code(), "wrong_region", "{err}");
}
