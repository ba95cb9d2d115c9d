//! Retention, legal hold and erasure on the twins, with an injected clock:
//! recordings leave exactly when their type's policy says, never under a
//! hold, and after every run the catalog's key usage equals a recount of
//! the recordings. A run stopped at any boundary of a deletion is finished
//! by the next with the same end state.

mod common;

use common::*;
use vault::memory::until_crash;
use vault::ports::catalog::{RecordingCatalog, RetentionCatalog};
use vault::ports::objects::{ObjectStore, S3Location};
use vault::recording::{LegalHold, RecordingId};
use vault::retention::{recount, EraseRequest, RetentionPolicy, RunSummary};
use vault::time::{parse_rfc3339, unix_now};
use vault::OperationError;

const DAY: u64 = 86_400;

/// Calls under key A kept 30 days, screens under key B kept 7.
fn rig() -> (Rig, String, String) {
    let kms = std::sync::Arc::new(vault::memory::MemoryKms::new());
    let a = kms.create_symmetric(REGION);
    let b = kms.create_symmetric(REGION);
    let mut rig = Rig::with_keys(kms, a.clone(), &format!(r#"{{"calls": ["{a}"], "screens": ["{b}"]}}"#));
    rig.retention = RetentionPolicy::parse(r#"{"calls": 30, "screens": 7}"#).unwrap();
    (rig, a, b)
}

async fn recorded(rig: &Rig, key: &str, data: &[u8]) {
    let obj = rig.upload(key, data);
    rig.encryptor().encrypt(&obj, claim_until(), &format!("ingest-{key}")).await.expect("encrypted");
}

fn released() -> LegalHold {
    LegalHold { by: "legal@acme.example".into(), reason: "case closed".into(), at: vault::time::rfc3339(unix_now()) }
}

fn id(key: &str) -> RecordingId {
    vault::recording::route(key).unwrap()
}

fn hold(by: &str) -> LegalHold {
    LegalHold { by: by.into(), reason: "litigation 2026-114".into(), at: vault::time::rfc3339(unix_now()) }
}

/// The catalog's usage of every key equals a recount of the rows.
async fn usage_is_true(rig: &Rig) {
    let counted = recount(&rig.catalog).await.unwrap();
    for usage in rig.catalog.key_usages_now() {
        let (recordings, bytes) = counted.get(&usage.key_arn).copied().unwrap_or_default();
        assert_eq!((usage.recordings, usage.bytes), (recordings, bytes), "usage of {}", usage.key_arn);
    }
    for key in counted.keys() {
        assert!(rig.catalog.key_usages_now().iter().any(|u| &u.key_arn == key), "{key} is counted");
    }
}

fn due_of(rig: &Rig, key: &str) -> u64 {
    parse_rfc3339(rig.entry(key).expect("catalogued").retain_until.as_deref().expect("stamped")).unwrap()
}

/// Every evidence report in the evidence bucket, parsed.
fn reports(rig: &Rig) -> Vec<serde_json::Value> {
    rig.objects
        .keys(EVIDENCE)
        .iter()
        .map(|k| {
            let loc = S3Location { bucket: EVIDENCE.into(), key: k.clone() };
            serde_json::from_slice(&rig.objects.get(&loc, None).unwrap()).unwrap()
        })
        .collect()
}

fn deleted_in_reports(rig: &Rig) -> Vec<String> {
    let mut ids: Vec<String> = reports(rig)
        .iter()
        .flat_map(|r| r["deletions"].as_array().unwrap().clone())
        .map(|d| format!("{}/{}", d["recording_type"].as_str().unwrap(), d["recording_id"].as_str().unwrap()))
        .collect();
    ids.sort();
    ids
}

fn names(summary: &RunSummary) -> Vec<String> {
    let mut ids: Vec<String> = summary.deleted.iter().map(|d| d.id.to_string()).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread")]
async fn two_types_leave_exactly_when_due_held_ones_stay_and_usage_always_equals_a_recount() {
    let (rig, a, b) = rig();
    for key in ["calls/c1", "calls/c2", "calls/c3", "screens/s1", "screens/s2", "screens/s3"] {
        recorded(&rig, key, &sample(10_000, key.len() as u8)).await;
    }
    let service = rig.retention_service(100, false);
    service.hold(&id("calls/c3"), hold("legal@acme.example")).await.unwrap();
    service.hold(&id("screens/s3"), hold("legal@acme.example")).await.unwrap();
    let (calls_due, screens_due) = (due_of(&rig, "calls/c1"), due_of(&rig, "screens/s1"));
    let encrypted = parse_rfc3339(&rig.entry("calls/c1").unwrap().encrypted_at).unwrap();
    assert_eq!((calls_due - encrypted, screens_due - encrypted), (30 * DAY, 7 * DAY), "each type its policy");
    assert_eq!(rig.entry("calls/c1").unwrap().retention_days, Some(30));

    // A second before the screens are due: nothing goes.
    let early = service.run("run-1", screens_due - 1).await.unwrap();
    assert!(early.deleted.is_empty() && early.held == 0, "{early:?}");
    usage_is_true(&rig).await;
    assert_eq!((rig.usage(&a), rig.usage(&b)), (3, 3));

    // When the screens are due: the two not held go, with their versions.
    let screens = service.run("run-2", screens_due + 5).await.unwrap();
    assert_eq!(names(&screens), ["screens/s1", "screens/s2"]);
    assert_eq!(screens.held, 1, "the held screen is kept and counted");
    assert_eq!(screens.bytes_deleted(), 20_000);
    assert!(rig.entry("screens/s1").is_none() && rig.vault_versions("screens/s1").is_empty());
    assert!(rig.entry("screens/s3").is_some() && !rig.vault_versions("screens/s3").is_empty());
    assert_eq!((rig.usage(&a), rig.usage(&b)), (3, 1));
    usage_is_true(&rig).await;

    // Calls are not due yet at the screens' time, and are at theirs.
    assert!(service.run("run-3", calls_due - 1).await.unwrap().deleted.is_empty());
    let calls = service.run("run-4", calls_due).await.unwrap();
    assert_eq!(names(&calls), ["calls/c1", "calls/c2"]);
    assert_eq!((rig.usage(&a), rig.usage(&b)), (1, 1));
    usage_is_true(&rig).await;

    // Released, the held ones go at the next run.
    service.release(&id("calls/c3"), released()).await.unwrap();
    let released = service.run("run-5", calls_due + DAY).await.unwrap();
    assert_eq!(names(&released), ["calls/c3"]);
    assert_eq!(released.held, 1, "screens/s3 is still held");
    usage_is_true(&rig).await;

    // Each run wrote one report, never overwritten; together they name each deletion once.
    assert_eq!(reports(&rig).len(), 5);
    assert_eq!(deleted_in_reports(&rig), ["calls/c1", "calls/c2", "calls/c3", "screens/s1", "screens/s2"]);
    let report = reports(&rig).into_iter().find(|r| r["run"] == "run-2").unwrap();
    assert_eq!(report["details"]["policy_days"]["screens"], 7);
    assert_eq!(report["deletions"][0]["retention_days"], 7);
    assert_eq!(report["plaintext_bytes_deleted"], 20_000);
    assert!(report["deletions"][0]["versions"].as_array().is_some_and(|v| v.len() == 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_written_before_retention_are_stamped_and_a_changed_policy_restamps_them() {
    let (mut rig, a, _) = rig();
    rig.retention = RetentionPolicy::default();
    for n in 0..5 {
        recorded(&rig, &format!("calls/old-{n}"), &sample(1000, n)).await;
    }
    assert!(rig.entry("calls/old-0").unwrap().retain_until.is_none(), "written without a policy");
    let now = unix_now();

    rig.retention = RetentionPolicy::parse(r#"{"calls": 30}"#).unwrap();
    // A batch of 2: the stamping pass takes three runs and remembers where it stopped.
    let service = rig.retention_service(2, false);
    let mut stamped = 0;
    for run in 0..3 {
        let s = service.run(&format!("stamp-{run}"), now).await.unwrap();
        stamped += s.stamped;
        assert_eq!(s.stamping_done, run == 2, "run {run}: {s:?}");
    }
    assert_eq!(stamped, 5);
    let entry = rig.entry("calls/old-3").unwrap();
    let encrypted = parse_rfc3339(&entry.encrypted_at).unwrap();
    assert_eq!(entry.retain_until.as_deref().and_then(parse_rfc3339), Some(encrypted + 30 * DAY));
    assert_eq!(service.run("stamp-3", now).await.unwrap().stamped, 0, "done: nothing to stamp");

    // A shorter policy: restamped, and due sooner.
    rig.retention = RetentionPolicy::parse(r#"{"calls": 10}"#).unwrap();
    let shorter = rig.retention_service(100, false);
    let s = shorter.run("restamp", now).await.unwrap();
    assert_eq!((s.stamped, s.deleted.len()), (5, 0));
    let s = shorter.run("due", encrypted + 10 * DAY + 60).await.unwrap();
    assert_eq!(s.deleted.len(), 5);
    assert_eq!(rig.usage(&a), 0);
    usage_is_true(&rig).await;
}

/// A deletion stopped at `stop`, then a later run: the end state of an
/// uninterrupted run (row, versions and usage gone once, one report
/// naming it once).
async fn stopped_then_rerun(stop: &str) {
    let (rig, a, _) = rig();
    // A recording that stays on key A: a usage taken off twice would show.
    recorded(&rig, "calls/keep", &sample(3000, 1)).await;
    recorded(&rig, "calls/c1", &sample(5000, 2)).await;
    recorded(&rig, "calls/c2", &sample(7000, 3)).await;
    let due = due_of(&rig, "calls/c1");
    let service = rig.retention_service(100, false);
    service.hold(&id("calls/keep"), hold("legal")).await.unwrap();
    match stop {
        "after marking" => rig.catalog.faults.crash_after_next("mark_deleting"),
        "after the S3 deletes" => rig.catalog.faults.crash_next("finish_deletion"),
        "after the catalog write" => rig.catalog.faults.crash_after_next("finish_deletion"),
        "after the report" => rig.catalog.faults.crash_next("close_run"),
        other => panic!("{other}"),
    }
    let faults = rig.catalog.faults.clone();
    let stopped = until_crash(service.run("run-1", due + 1), faults.crashed()).await;
    assert!(stopped.is_none(), "{stop}: the run stopped there");
    let c1 = rig.entry("calls/c1");
    match stop {
        "after marking" => assert!(c1.unwrap().deleting.is_some(), "marked, versions still there"),
        "after the S3 deletes" => {
            assert!(c1.unwrap().deleting.is_some() && rig.vault_versions("calls/c1").is_empty());
            assert_eq!(rig.usage(&a), 3, "still counted: the row is still there");
        }
        _ => assert!(c1.is_none()),
    }

    // The next day's run (the first run's lease has passed).
    let rerun = service.run("run-2", due + 1 + DAY).await.unwrap();
    assert!(rerun.failures.is_empty(), "{stop}: {rerun:?}");
    for key in ["calls/c1", "calls/c2"] {
        assert!(rig.entry(key).is_none(), "{stop}: {key} gone from the catalog");
        assert!(rig.vault_versions(key).is_empty(), "{stop}: {key} gone from the vault");
    }
    assert!(rig.entry("calls/keep").is_some());
    assert_eq!(rig.usage(&a), 1, "{stop}: each taken off once, the held one still counted");
    assert_eq!(rig.catalog.key_usages_now().iter().find(|u| u.key_arn == a).map(|u| u.bytes), Some(3000));
    usage_is_true(&rig).await;
    assert_eq!(deleted_in_reports(&rig), ["calls/c1", "calls/c2"], "{stop}: each reported once");
    assert!(rig.catalog.open_runs().await.unwrap().is_empty(), "{stop}: every run reported and closed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_stopped_after_marking_is_finished_by_the_next() {
    stopped_then_rerun("after marking").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_stopped_after_the_s3_deletes_is_finished_by_the_next() {
    stopped_then_rerun("after the S3 deletes").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_stopped_after_the_catalog_write_is_reported_by_the_next() {
    stopped_then_rerun("after the catalog write").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_stopped_after_its_report_is_not_reported_twice() {
    stopped_then_rerun("after the report").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_delete_keeps_the_row_counted_and_the_next_run_finishes_it() {
    let (rig, a, _) = rig();
    recorded(&rig, "calls/c1", &sample(5000, 2)).await;
    let due = due_of(&rig, "calls/c1");
    let service = rig.retention_service(100, false);
    let denied =
        vault::ports::objects::S3Error::AccessDenied { location: "vault".into(), detail: "AccessDenied".into() };
    rig.objects.faults.fail_next("delete_version", denied);
    let first = service.run("run-1", due).await.unwrap();
    assert_eq!(first.failures.get("access_denied"), Some(&1), "{first:?}");
    assert_eq!(rig.usage(&a), 1);
    usage_is_true(&rig).await;
    let second = service.run("run-2", due + DAY).await.unwrap();
    assert_eq!(names(&second), ["calls/c1"]);
    assert_eq!(rig.usage(&a), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recording_being_rekeyed_waits_for_the_move_and_keeps_its_retention_and_hold() {
    let (rig, a, _) = rig();
    let c = rig.kms.create_symmetric(REGION);
    recorded(&rig, "calls/c1", &sample(5000, 2)).await;
    let before = rig.entry("calls/c1").unwrap();
    let due = due_of(&rig, "calls/c1");
    let service = rig.retention_service(100, false);

    // A re-key holds the claim: the due recording waits.
    let claim = rig.catalog.claim(&id("calls/c1"), "rekey", "job-1/task-1", due, 900).await.unwrap();
    let waiting = service.run("run-1", due).await.unwrap();
    assert_eq!((waiting.deleted.len(), waiting.waiting), (0, 1));
    let vault::ports::catalog::Claim::Acquired { token } = claim else { panic!("claimed") };
    rig.catalog.release(&id("calls/c1"), &token).await.unwrap();

    // A re-key keeps the retention date and the hold.
    service.hold(&id("calls/c1"), hold("legal")).await.unwrap();
    let task = rekey_task(id("calls/c1"), &c, "job-2/task-1");
    rig.rekeyer(900).rekey(&task).await.expect("re-keyed");
    let after = rig.entry("calls/c1").unwrap();
    assert_ne!(after.message_id, before.message_id);
    assert_eq!((after.retain_until.clone(), after.retention_days), (before.retain_until.clone(), Some(30)));
    assert!(after.hold.is_some(), "the hold moved with the row");
    assert_eq!((rig.usage(&a), rig.usage(&c)), (0, 1));

    let held = service.run("run-2", due + 1).await.unwrap();
    assert_eq!((held.deleted.len(), held.held), (0, 1));
    service.release(&id("calls/c1"), released()).await.unwrap();
    let gone = service.run("run-3", due + 2).await.unwrap();
    assert_eq!(names(&gone), ["calls/c1"]);
    assert!(rig.vault_versions("calls/c1").is_empty(), "both versions, the superseded one too");
    assert_eq!((rig.usage(&a), rig.usage(&c)), (0, 0));
    usage_is_true(&rig).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recording_being_deleted_is_not_rekeyed() {
    let (rig, _, _) = rig();
    let c = rig.kms.create_symmetric(REGION);
    recorded(&rig, "calls/c1", &sample(5000, 2)).await;
    let due = due_of(&rig, "calls/c1");
    rig.catalog.faults.crash_after_next("mark_deleting");
    let service = rig.retention_service(100, false);
    assert!(until_crash(service.run("run-1", due), rig.catalog.faults.crashed()).await.is_none());
    let task = rekey_task(id("calls/c1"), &c, "job/task");
    let err = rig.rekeyer(900).rekey(&task).await.unwrap_err();
    assert_eq!(err.code(), "deleting", "{err}");
    let hold_err = service.hold(&id("calls/c1"), hold("legal")).await.unwrap_err();
    assert_eq!(hold_err.code(), "deleting", "too late for a hold: {hold_err}");
}

fn erase(key: &str, request: &str, bypass: bool) -> EraseRequest {
    EraseRequest {
        id: id(key),
        request: request.into(),
        reason: "data subject request DSR-77".into(),
        requested_by: "arn:aws:sts::111122223333:assumed-role/privacy/alice".into(),
        bypass_governance: bypass,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn erase_is_refused_under_a_hold_and_a_compliance_retention_and_bypasses_governance_only_when_told() {
    let (rig, a, _) = rig();
    // A vault with Object Lock.
    rig.objects.create_locked_bucket(VAULT);
    for key in ["calls/held", "calls/compliance", "calls/governance", "calls/free"] {
        recorded(&rig, key, &sample(4000, key.len() as u8)).await;
    }
    let service = rig.retention_service(100, true);
    let in_a_year = vault::time::rfc3339(unix_now() + 365 * DAY);
    let v = |key: &str| rig.entry(key).unwrap().vault_version.unwrap();
    rig.objects.set_retention(&vault("calls/compliance"), &v("calls/compliance"), "COMPLIANCE", &in_a_year);
    rig.objects.set_retention(&vault("calls/governance"), &v("calls/governance"), "GOVERNANCE", &in_a_year);

    // A hold: in the catalog, and on the version in the vault.
    service.hold(&id("calls/held"), hold("legal@acme.example")).await.unwrap();
    let lock = rig.objects.object_lock(&vault("calls/held"), &v("calls/held")).await.unwrap();
    assert!(lock.legal_hold, "S3 legal hold on the version");

    let now = unix_now();
    for (key, code) in [
        ("calls/held", "legal_hold"),
        ("calls/compliance", "compliance_retention"),
        ("calls/governance", "governance_retention"),
    ] {
        let err = service.erase(&erase(key, &format!("erase-{key}"), false), now).await.unwrap_err();
        assert_eq!(err.code(), code, "{key}: {err}");
        assert!(rig.entry(key).is_some_and(|e| e.deleting.is_none()), "{key}: untouched");
        assert_eq!(rig.vault_versions(key).len(), 1, "{key}: its version stays");
    }
    let err = service.erase(&erase("calls/compliance", "erase-c2", true), now).await.unwrap_err();
    assert_eq!(err.code(), "compliance_retention", "nobody bypasses compliance: {err}");
    assert!(err.to_string().contains(&in_a_year), "{err}");
    assert_eq!(rig.usage(&a), 4);

    // Allowed: a recording with no lock, and the governance one when told.
    let erased = service.erase(&erase("calls/free", "erase-free", false), now).await.unwrap();
    let bypassed = service.erase(&erase("calls/governance", "erase-gov", true), now).await.unwrap();
    for (key, e) in [("calls/free", &erased), ("calls/governance", &bypassed)] {
        assert!(rig.entry(key).is_none() && rig.vault_versions(key).is_empty(), "{key} erased");
        assert_eq!(e.record.reason, "erasure");
        assert!(e.report.starts_with("erasure/"), "{}", e.report);
    }
    assert_eq!(rig.usage(&a), 2);
    usage_is_true(&rig).await;
    let report = reports(&rig).into_iter().find(|r| r["run"] == "erase-gov").expect("evidence written");
    assert_eq!(report["details"]["bypass_governance_retention"], true);
    assert_eq!(report["details"]["requested_by"], "arn:aws:sts::111122223333:assumed-role/privacy/alice");
    assert_eq!(report["details"]["reason"], "data subject request DSR-77");
    assert_eq!(report["deletions"][0]["recording_id"], "governance");

    // A retry of a finished (and reported) erasure finds nothing left: not_found, as for an unknown one.
    let again = service.erase(&erase("calls/free", "erase-free", false), now).await;
    assert_eq!(again.map_err(|e| e.code()).unwrap_err(), "not_found");
    let unknown = service.erase(&erase("calls/nobody", "erase-x", false), now).await.unwrap_err();
    assert_eq!(unknown.code(), "not_found");

    // Released, the held one erases; retention never touched any of them.
    service.release(&id("calls/held"), released()).await.unwrap();
    assert!(!rig.objects.object_lock(&vault("calls/held"), &v("calls/held")).await.unwrap().legal_hold);
    service.erase(&erase("calls/held", "erase-held-2", false), now).await.unwrap();
    assert_eq!(rig.usage(&a), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_erasure_stopped_after_the_s3_deletes_is_finished_by_its_retry() {
    let (rig, a, _) = rig();
    recorded(&rig, "calls/c1", &sample(4000, 9)).await;
    let service = rig.retention_service(100, false);
    rig.catalog.faults.crash_next("finish_deletion");
    let now = unix_now();
    let stopped =
        until_crash(service.erase(&erase("calls/c1", "erase-1", false), now), rig.catalog.faults.crashed()).await;
    assert!(stopped.is_none());
    assert!(rig.vault_versions("calls/c1").is_empty() && rig.usage(&a) == 1);
    let done = service.erase(&erase("calls/c1", "erase-1", false), now + 5).await.unwrap();
    assert_eq!(done.record.id, id("calls/c1"));
    assert_eq!(rig.usage(&a), 0);
    assert_eq!(deleted_in_reports(&rig), ["calls/c1"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn retention_never_deletes_what_object_lock_still_protects() {
    let (rig, _, b) = rig();
    rig.objects.create_locked_bucket(VAULT);
    recorded(&rig, "screens/s1", &sample(4000, 1)).await;
    let due = due_of(&rig, "screens/s1");
    let version = rig.entry("screens/s1").unwrap().vault_version.unwrap();
    rig.objects.set_now(due);
    rig.objects.set_retention(&vault("screens/s1"), &version, "GOVERNANCE", &vault::time::rfc3339(due + DAY));
    let service = rig.retention_service(100, true);
    let kept = service.run("run-1", due).await.unwrap();
    assert_eq!((kept.deleted.len(), kept.waiting), (0, 1), "locked a day longer: kept, never bypassed");
    assert!(rig.entry("screens/s1").is_some_and(|e| e.deleting.is_none()));
    rig.objects.set_now(due + DAY + 1);
    let gone = service.run("run-2", due + DAY + 1).await.unwrap();
    assert_eq!(names(&gone), ["screens/s1"]);
    assert_eq!(rig.usage(&b), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn held_recordings_never_starve_a_run_and_a_backlog_continues_on_the_next() {
    let (rig, a, _) = rig();
    // Held ones first in the index (same date, ids in order): they cost a
    // read each, never the batch.
    for n in 0..4 {
        recorded(&rig, &format!("calls/a-held-{n}"), &sample(1000, n)).await;
    }
    for n in 0..3 {
        recorded(&rig, &format!("calls/free-{n}"), &sample(1000, 10 + n)).await;
    }
    let service = rig.retention_service(2, false);
    for n in 0..4 {
        service.hold(&id(&format!("calls/a-held-{n}")), hold("legal")).await.unwrap();
    }
    let due = due_of(&rig, "calls/free-2");
    let first = service.run("run-1", due).await.unwrap();
    assert_eq!((first.deleted.len(), first.held, first.backlog), (2, 4, true), "{first:?}");
    let second = service.run("run-2", due + 1).await.unwrap();
    assert_eq!((second.deleted.len(), second.held, second.backlog), (1, 4, false), "{second:?}");
    assert_eq!(rig.usage(&a), 4);
    usage_is_true(&rig).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_longer_policy_keeps_rows_the_stamping_pass_has_not_reached() {
    let (mut rig, a, _) = rig();
    rig.retention = RetentionPolicy::parse(r#"{"calls": 1}"#).unwrap();
    for n in 0..3 {
        recorded(&rig, &format!("calls/r-{n}"), &sample(1000, n)).await;
    }
    let encrypted = parse_rfc3339(&rig.entry("calls/r-0").unwrap().encrypted_at).unwrap();
    // The policy grows to 30 days; a batch of 1 stamps one row per run.
    rig.retention = RetentionPolicy::parse(r#"{"calls": 30}"#).unwrap();
    let service = rig.retention_service(1, false);
    let run = service.run("run-1", encrypted + 2 * DAY).await.unwrap();
    assert!(!run.stamping_done, "{run:?}");
    assert!(run.deleted.is_empty(), "nothing goes under the old, shorter policy: {run:?}");
    for n in 0..3 {
        assert_eq!(rig.entry(&format!("calls/r-{n}")).unwrap().retention_days, Some(30), "r-{n} restamped");
    }
    assert_eq!(rig.usage(&a), 3);
    assert_eq!(service.run("run-2", encrypted + 30 * DAY + 1).await.unwrap().deleted.len(), 1, "a batch of 1");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_erasure_left_marked_is_finished_and_reported_by_the_next_retention_run() {
    let (rig, a, _) = rig();
    recorded(&rig, "calls/dsr", &sample(4000, 9)).await;
    recorded(&rig, "calls/other", &sample(4000, 8)).await;
    let service = rig.retention_service(100, false);
    rig.catalog.faults.crash_after_next("mark_deleting");
    let now = unix_now();
    let stopped =
        until_crash(service.erase(&erase("calls/dsr", "erase-9", false), now), rig.catalog.faults.crashed()).await;
    assert!(stopped.is_none());
    assert!(rig.entry("calls/dsr").unwrap().deleting.is_some());
    // Not due for 30 days; the retention run after the erasure's lease finishes it.
    let run = service.run("run-1", now + DAY).await.unwrap();
    assert!(run.failures.is_empty(), "{run:?}");
    assert!(rig.entry("calls/dsr").is_none() && rig.vault_versions("calls/dsr").is_empty());
    assert!(rig.entry("calls/other").is_some());
    assert_eq!(rig.usage(&a), 1);
    let report = reports(&rig).into_iter().find(|r| r["run"] == "erase-9").expect("the erasure's report");
    assert_eq!(report["deletions"][0]["recording_id"], "dsr");
    assert_eq!(report["details"]["reason"], "data subject request DSR-77");
    assert!(rig.catalog.open_runs().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_release_needs_a_hold_and_a_rekey_keeps_the_lock_date_and_the_hold_on_the_new_version() {
    let (rig, _, _) = rig();
    rig.objects.create_locked_bucket(VAULT);
    let c = rig.kms.create_symmetric(REGION);
    recorded(&rig, "calls/c1", &sample(4000, 3)).await;
    let service = rig.retention_service(100, true);
    let err = service.release(&id("calls/c1"), released()).await.unwrap_err();
    assert_eq!(err.code(), "not_held", "{err}");
    service.hold(&id("calls/c1"), hold("legal")).await.unwrap();
    let task = rekey_task(id("calls/c1"), &c, "job/task");
    rig.rekeyer_locked(900, Some("GOVERNANCE")).rekey(&task).await.expect("re-keyed");
    let entry = rig.entry("calls/c1").unwrap();
    let lock = rig.objects.object_lock(&vault("calls/c1"), entry.vault_version.as_deref().unwrap()).await.unwrap();
    assert_eq!(lock.retention, Some(("GOVERNANCE".to_string(), entry.retain_until.clone().unwrap())));
    assert!(lock.legal_hold, "the new version is born held");
}

/// A vault with Object Lock and one recording in it under legal hold: the
/// rig and the recording's version.
async fn held_in_a_locked_vault(key: &str, seed: u8) -> (Rig, String) {
    let (rig, _, _) = rig();
    rig.objects.create_locked_bucket(VAULT);
    recorded(&rig, key, &sample(4000, seed)).await;
    rig.retention_service(100, true).hold(&id(key), hold("legal")).await.unwrap();
    let version = rig.entry(key).unwrap().vault_version.unwrap();
    (rig, version)
}

/// A held recording moved out of a locked vault: the versions left here
/// keep their S3 legal hold (the rekey role cannot release one), so the
/// marker keeps the hold, and releasing it there lets the `moved-recordings`
/// rule remove them; the copy in the other region keeps its own.
#[tokio::test(flavor = "multi_thread")]
async fn a_held_recordings_marker_keeps_the_hold_and_its_release_frees_the_versions_left_here() {
    let (rig, version) = held_in_a_locked_vault("calls/m1", 5).await;
    let service = rig.retention_service(100, true);
    let marker_until = rig.entry("calls/m1").unwrap().retain_until;
    assert!(rig.objects.object_lock(&vault("calls/m1"), &version).await.unwrap().legal_hold);

    // A vault there without Object Lock: refused before anything is
    // catalogued there or changed here.
    {
        let objects = vault::memory::MemoryObjects::new();
        objects.create_bucket("vault-open", true);
        let catalog = vault::memory::MemoryCatalog::new();
        let regions = vault::memory::MemoryRegions::new().with("eu-west-2", objects.clone(), catalog.clone());
        let dest = vault::rekey::Destination {
            region: "eu-west-2".into(),
            vault_bucket: "vault-open".into(),
            catalog_table: "catalog-open".into(),
        };
        let task = vault::rekey::RekeyTask {
            id: id("calls/m1"),
            target: vault::rekey::Target::Keys(vec![rig.kms.create_symmetric("eu-west-2")]),
            from_key: None,
            request_id: "job/open".into(),
            destination: Some(dest),
            copy_only: false,
        };
        let rekeyer = rig.rekeyer_locked(900, Some("GOVERNANCE")).with_destinations(std::sync::Arc::new(regions));
        let refused = rekeyer.rekey(&task).await.unwrap_err();
        assert_eq!((refused.code(), refused.is_retryable()), ("destination_unlocked", false), "{refused}");
        assert!(catalog.recordings().is_empty() && objects.keys("vault-open").is_empty(), "nothing there");
        assert!(rig.entry("calls/m1").unwrap().moved_to.is_none(), "nothing changed here");
    }

    // Moved to eu-west-1 under a key there.
    let region = "eu-west-1";
    let there_key = rig.kms.create_symmetric(region);
    let objects = vault::memory::MemoryObjects::new();
    objects.create_locked_bucket("vault-eu");
    let catalog = vault::memory::MemoryCatalog::new();
    let regions = vault::memory::MemoryRegions::new().with(region, objects.clone(), catalog.clone());
    let dest = vault::rekey::Destination {
        region: region.into(),
        vault_bucket: "vault-eu".into(),
        catalog_table: "catalog-eu".into(),
    };
    let task = vault::rekey::RekeyTask {
        id: id("calls/m1"),
        target: vault::rekey::Target::Keys(vec![there_key]),
        from_key: None,
        request_id: "job/m1".into(),
        destination: Some(dest),
        copy_only: false,
    };
    let rekeyer = rig.rekeyer_locked(900, Some("GOVERNANCE")).with_destinations(std::sync::Arc::new(regions));
    rekeyer.rekey(&task).await.expect("moved");
    let marker = rig.entry("calls/m1").unwrap();
    assert!(marker.moved_to.is_some());
    assert_eq!(marker.hold.as_ref().map(|h| h.by.as_str()), Some("legal"), "the marker keeps the hold");
    assert_eq!(catalog.recordings()[0].hold, marker.hold, "the copy there carries it");
    assert!(rig.objects.object_lock(&vault("calls/m1"), &version).await.unwrap().legal_hold, "still held here");
    // The copy there was born with the recording's lock date and hold.
    let there = catalog.recordings()[0].clone();
    let loc = S3Location { bucket: "vault-eu".into(), key: "calls/m1".into() };
    let lock = objects.object_lock(&loc, there.vault_version.as_deref().unwrap()).await.unwrap();
    let until = marker_until.clone().expect("a retain-until date under the calls policy");
    assert_eq!((lock.retention, lock.legal_hold), (Some(("GOVERNANCE".to_string(), until)), true));

    // Held somewhere else now: setting a hold on the marker is refused;
    // releasing it frees the versions left here, and only here.
    assert_eq!(service.hold(&id("calls/m1"), hold("other")).await.unwrap_err().code(), "moved");
    let after = service.release(&id("calls/m1"), released()).await.expect("released here");
    assert!(after.hold.is_none() && after.moved_to.is_some());
    assert!(!rig.objects.object_lock(&vault("calls/m1"), &version).await.unwrap().legal_hold, "free for the lifecycle");
    assert!(catalog.recordings()[0].hold.is_some(), "the copy there stays held");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stamp_that_lost_to_a_rekey_is_retried_on_the_new_row() {
    let (mut rig, _, _) = rig();
    rig.retention = RetentionPolicy::default();
    recorded(&rig, "calls/r-1", &sample(1000, 1)).await;
    rig.retention = RetentionPolicy::parse(r#"{"calls": 30}"#).unwrap();
    let service = std::sync::Arc::new(rig.retention_service(100, false));
    // The stamping pass read the row; a re-key replaces it (a new message)
    // before the stamp lands.
    let go = rig.catalog.faults.pause_next("stamp_retention");
    let run = tokio::spawn({
        let service = service.clone();
        async move { service.run("run-1", unix_now()).await }
    });
    while rig.catalog.faults.calls("stamp_retention") == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    rig.catalog.edit(&id("calls/r-1"), |e| e.message_id = "77".repeat(32));
    go.notify_one();
    let summary = run.await.unwrap().unwrap();
    assert_eq!(summary.stamped, 1, "{summary:?}");
    let row = rig.entry("calls/r-1").unwrap();
    assert_eq!((row.message_id.as_str(), row.retention_days), ("77".repeat(32).as_str(), Some(30)));
}

/// An erasure that stopped part-way is resumed only by its own requester,
/// for the same recording and the same governance bypass: the evidence never
/// names one person for another's request, and a request id can never
/// attach an erasure to another run.
#[tokio::test(flavor = "multi_thread")]
async fn only_its_own_requester_resumes_an_erasure_as_it_was_asked() {
    let (rig, a, _) = rig();
    for key in ["calls/c1", "calls/c2"] {
        recorded(&rig, key, &sample(4000, key.len() as u8)).await;
    }
    let service = rig.retention_service(100, false);
    let denied =
        vault::ports::objects::S3Error::AccessDenied { location: "vault".into(), detail: "AccessDenied".into() };
    rig.objects.faults.fail_next("delete_version", denied);
    let now = unix_now();
    let stopped = service.erase(&erase("calls/c1", "erase-1", false), now).await.unwrap_err();
    assert_eq!(stopped.code(), "access_denied", "{stopped}");
    assert_eq!(rig.catalog.open_runs().await.unwrap().len(), 1, "left open, to be resumed");

    let bob = |key: &str, bypass| EraseRequest {
        requested_by: "arn:aws:sts::111122223333:assumed-role/privacy/bob".into(),
        ..erase(key, "erase-1", bypass)
    };
    for (request, why) in [
        (bob("calls/c1", false), "another requester"),
        (erase("calls/c2", "erase-1", false), "another recording"),
        (erase("calls/c1", "erase-1", true), "another governance bypass"),
    ] {
        let refused = service.erase(&request, now + 1).await.unwrap_err();
        assert_eq!(refused.code(), "request_mismatch", "{why}: {refused}");
        assert!(refused.to_string().contains(why), "{refused}");
    }
    assert!(rig.entry("calls/c2").is_some(), "nothing of another recording was touched");
    let done = service.erase(&erase("calls/c1", "erase-1", false), now + 3).await.unwrap();
    assert_eq!(done.record.id, id("calls/c1"));
    let report = reports(&rig).into_iter().find(|r| r["run"] == "erase-1").expect("evidence");
    assert_eq!(report["details"]["requested_by"], "arn:aws:sts::111122223333:assumed-role/privacy/alice");
    assert_eq!(rig.usage(&a), 1);
    usage_is_true(&rig).await;
}

/// An erasure of a recording that moved away is refused before any run is
/// opened (no empty evidence report later), and a release the catalog
/// refuses after S3's legal holds went off puts them back on.
#[tokio::test(flavor = "multi_thread")]
async fn a_refused_request_leaves_no_open_run_and_no_version_unheld() {
    let (rig, version) = held_in_a_locked_vault("calls/h1", 7).await;
    let service = rig.retention_service(100, true);
    let unavailable = vault::ports::catalog::CatalogError::Unavailable { detail: "throttled".into() };
    rig.catalog.faults.fail_next("set_hold", unavailable);
    let refused = service.release(&id("calls/h1"), released()).await.unwrap_err();
    assert_eq!(refused.code(), "catalog_unavailable", "{refused}");
    assert!(rig.entry("calls/h1").unwrap().hold.is_some(), "still held in the catalog");
    assert!(rig.objects.object_lock(&vault("calls/h1"), &version).await.unwrap().legal_hold, "and so, again, in S3");

    // A moved recording: refused with nothing opened.
    rig.catalog.edit(&id("calls/h1"), |row| {
        row.hold = None;
        row.moved_to = Some(vault::recording::MovedTo {
            region: "eu-west-1".into(),
            vault_bucket: "vault-there".into(),
            catalog_table: "catalog-there".into(),
            moved_at: vault::time::rfc3339(unix_now()),
        });
    });
    let refused = service.erase(&erase("calls/h1", "erase-m", false), unix_now()).await.unwrap_err();
    assert_eq!(refused.code(), "moved", "{refused}");
    assert!(rig.catalog.open_runs().await.unwrap().is_empty(), "no run left open");
}
