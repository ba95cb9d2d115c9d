//! The catalog ports' contract: claims, the all-or-nothing transaction
//! that catalogues a recording, key usage, event claims.

use std::future::Future;

use crate::errors::OperationError;
use crate::ports::catalog::{
    CatalogError, Claim, DenialCounters, DenialWindow, EventClaim, EventClaims, KeyUsageCatalog, Moved, Recorded,
    RecordingCatalog, RecordingListing, RetentionCatalog,
};
use crate::recording::{MovedTo, RecordingEntry, RecordingId, TagsDue};

/// What the catalog contract needs beyond the ports.
pub trait CatalogHarness: Sync {
    /// The next read of a recording (GetItem) is denied.
    fn deny_next_read(&self) -> impl Future<Output = ()> + Send;
}

fn entry(id: &RecordingId, keys: &[&str], size: u64) -> RecordingEntry {
    RecordingEntry {
        id: id.clone(),
        vault_key: id.to_string(),
        vault_version: Some("v-1".into()),
        wrapping_keys: keys.iter().map(|k| k.to_string()).collect(),
        provider: "aws-kms".into(),
        message_id: "ab".repeat(32),
        frame_length: 65536,
        plaintext_size: size,
        ciphertext_size: size + 500,
        checksum_sha256: "c2hh-2".into(),
        content_type: "audio/wav".into(),
        encrypted_at: "2026-11-28T10:00:00Z".into(),
        source_etag: "etag-1".into(),
        source_version: None,
        rekeyed_at: None,
        moved_to: None,
        retain_until: None,
        retention_days: None,
        hold: None,
        released_hold: None,
        deleting: None,
        tags_due: None,
    }
}

async fn acquired<C: RecordingCatalog>(c: &C, id: &RecordingId, request: &str, now: u64) -> String {
    match c.claim(id, "etag-1", request, now, 60).await.expect("claim") {
        Claim::Acquired { token } => token,
        other => panic!("{request}: expected the claim, got {other:?}"),
    }
}

/// Runs the whole catalog contract on an empty catalog. `key_a` and `key_b`
/// are key ARNs no other test uses.
pub async fn catalog<C, H>(c: &C, harness: &H, key_a: &str, key_b: &str)
where
    C: RecordingCatalog + RecordingListing + KeyUsageCatalog + EventClaims + DenialCounters,
    H: CatalogHarness,
{
    let now = 1_800_000_000;
    let id = RecordingId { recording_type: "calls".into(), recording_id: "contract/1 ü".into() };
    assert_eq!(c.recording(&id).await.unwrap(), None);

    // Claims: one holder at a time; the same request takes its claim over;
    // an expired claim is anyone's.
    let token = acquired(c, &id, "request-1", now).await;
    match c.claim(&id, "etag-2", "request-2", now + 1, 60).await.unwrap() {
        Claim::HeldElsewhere { source_etag, until } => assert_eq!((source_etag.as_str(), until), ("etag-1", now + 60)),
        other => panic!("a held claim: {other:?}"),
    }
    let token = {
        let again = acquired(c, &id, "request-1", now + 2).await;
        assert_ne!(again, token, "a takeover is a new token");
        again
    };
    let expired = acquired(c, &id, "request-3", now + 2 + 61).await;
    // The old holder's release does nothing now; the new holder's does.
    c.release(&id, &token).await.unwrap();
    assert!(matches!(c.claim(&id, "e", "request-4", now + 70, 60).await.unwrap(), Claim::HeldElsewhere { .. }));
    c.release(&id, &expired).await.unwrap();
    let token = acquired(c, &id, "request-5", now + 71).await;

    // A lost claim cancels the whole transaction: nothing is written.
    let e = entry(&id, &[key_a, key_b], 1000);
    let lost = c.record(&e, "not-the-token", "2026-11-28T10:00:00Z").await.unwrap_err();
    assert!(matches!(lost, CatalogError::ClaimLost { .. }), "{lost:?}");
    assert!(lost.is_retryable());
    assert_eq!(c.recording(&id).await.unwrap(), None, "all or nothing: no recording");
    assert_eq!(c.key_usage(key_a).await.unwrap(), None, "all or nothing: no usage");

    // The transaction: the recording, each key's usage, the claim ended.
    assert_eq!(c.record(&e, &token, "2026-11-28T10:00:00Z").await.unwrap(), Recorded::New);
    assert_eq!(c.recording(&id).await.unwrap().as_ref(), Some(&e), "every field round-trips");
    for key in [key_a, key_b] {
        let u = c.key_usage(key).await.unwrap().expect("usage");
        assert_eq!((u.recordings, u.bytes, u.recording_types.as_slice()), (1, 1000, &["calls".to_string()][..]));
        assert_eq!((u.first_used.as_str(), u.last_used.as_str()), ("2026-11-28T10:00:00Z", "2026-11-28T10:00:00Z"));
    }
    let token2 = acquired(c, &id, "request-6", now + 72).await;
    assert_ne!(token2, token, "the transaction ended the claim");

    // Catalogued once: a second transaction writes nothing, counts nothing.
    let other = RecordingEntry { message_id: "cd".repeat(32), source_etag: "etag-9".into(), ..e.clone() };
    match c.record(&other, &token2, "2026-11-28T11:00:00Z").await.unwrap() {
        Recorded::AlreadyCatalogued(existing) => assert_eq!(*existing, e),
        Recorded::New => panic!("catalogued twice"),
    }
    assert_eq!(c.key_usage(key_a).await.unwrap().unwrap().recordings, 1);

    // A second recording of another type adds to the usage.
    let id2 = RecordingId { recording_type: "screens".into(), recording_id: "contract/2".into() };
    let t = acquired(c, &id2, "request-7", now).await;
    c.record(&entry(&id2, &[key_a], 500), &t, "2026-11-28T12:00:00Z").await.unwrap();
    let u = c.key_usage(key_a).await.unwrap().unwrap();
    assert_eq!((u.recordings, u.bytes), (2, 1500));
    assert_eq!(u.recording_types, ["calls", "screens"]);
    assert_eq!((u.first_used.as_str(), u.last_used.as_str()), ("2026-11-28T10:00:00Z", "2026-11-28T12:00:00Z"));
    let all = c.key_usages().await.unwrap();
    for key in [key_a, key_b] {
        assert_eq!(all.iter().filter(|u| u.key_arn == key).count(), 1, "{key} listed once, its shards summed");
    }

    // The listing: every recording once, a page at a time (pages may be
    // empty while the scan goes on).
    let mut listed = Vec::new();
    let mut after = None;
    for _ in 0..10_000 {
        let (page, next) = c.recordings_page(after, 1).await.unwrap();
        listed.extend(page.into_iter().map(|e| e.id));
        after = next;
        if after.is_none() {
            break;
        }
    }
    assert!(after.is_none(), "the listing ends");
    for want in [&id, &id2] {
        assert_eq!(listed.iter().filter(|l| l == &want).count(), 1, "{want} listed once: {listed:?}");
    }

    // A move (re-key): only while the row names the old message, with the
    // claim, the usage moved from the keys it leaves to the keys it gains.
    let moved = RecordingEntry {
        vault_version: Some("v-2".into()),
        wrapping_keys: vec![key_b.to_string()],
        message_id: "ef".repeat(32),
        rekeyed_at: Some("2026-11-29T09:00:00Z".into()),
        ..e.clone()
    };
    let t = acquired(c, &id, "request-8", now + 200).await;
    let lost = c.move_recording(&e, &moved, "not-the-token", "2026-11-29T09:00:00Z").await.unwrap_err();
    assert!(matches!(lost, CatalogError::ClaimLost { .. }), "{lost:?}");
    assert_eq!(c.recording(&id).await.unwrap().as_ref(), Some(&e), "all or nothing");
    assert_eq!(c.move_recording(&e, &moved, &t, "2026-11-29T09:00:00Z").await.unwrap(), Moved::Moved);
    assert_eq!(c.recording(&id).await.unwrap().as_ref(), Some(&moved), "every field round-trips");
    let a = c.key_usage(key_a).await.unwrap().unwrap();
    assert_eq!((a.recordings, a.bytes), (1, 500), "the key it left counts it no more");
    let b = c.key_usage(key_b).await.unwrap().unwrap();
    assert_eq!((b.recordings, b.bytes), (1, 1000), "a key it keeps counts it once");
    let t = acquired(c, &id, "request-9", now + 201).await;
    match c.move_recording(&e, &moved, &t, "2026-11-29T09:01:00Z").await.unwrap() {
        Moved::RowChanged(Some(now_there)) => assert_eq!(*now_there, moved),
        other => panic!("a stale move: {other:?}"),
    }
    let b = c.key_usage(key_b).await.unwrap().unwrap();
    assert_eq!((b.recordings, b.bytes), (1, 1000), "a refused move counts nothing");
    let back = RecordingEntry { wrapping_keys: vec![key_a.to_string()], message_id: "01".repeat(32), ..moved.clone() };
    assert_eq!(c.move_recording(&moved, &back, &t, "2026-11-29T09:02:00Z").await.unwrap(), Moved::Moved);
    let (a, b) = (c.key_usage(key_a).await.unwrap().unwrap(), c.key_usage(key_b).await.unwrap().unwrap());
    assert_eq!((a.recordings, a.bytes, b.recordings, b.bytes), (2, 1500, 0, 0), "moved back, summed over shards");

    // Moved to another region: the row stays as a marker that says where,
    // counted by no key, and no later move applies to it.
    let t = acquired(c, &id, "request-10", now + 300).await;
    let marker = RecordingEntry {
        moved_to: Some(MovedTo {
            region: "eu-west-1".into(),
            vault_bucket: "acme-vault-eu".into(),
            catalog_table: "acme-catalog-eu".into(),
            moved_at: "2026-11-29T10:00:00Z".into(),
        }),
        ..back.clone()
    };
    assert_eq!(c.move_recording(&back, &marker, &t, "2026-11-29T10:00:00Z").await.unwrap(), Moved::Moved);
    assert_eq!(c.recording(&id).await.unwrap().as_ref(), Some(&marker), "the marker round-trips");
    let a = c.key_usage(key_a).await.unwrap().unwrap();
    assert_eq!((a.recordings, a.bytes), (1, 500), "a moved recording counts no more");
    let t = acquired(c, &id, "request-11", now + 301).await;
    match c.move_recording(&back, &marker, &t, "2026-11-29T10:01:00Z").await.unwrap() {
        Moved::RowChanged(Some(row)) => assert_eq!(row.moved_to, marker.moved_to),
        other => panic!("a marker cannot move again: {other:?}"),
    }
    assert_eq!(c.key_usage(key_a).await.unwrap().unwrap().recordings, 1, "counted off once");
    c.release(&id, &t).await.unwrap();

    // Events: first, in progress while leased, released with what was
    // recorded, done.
    let (source, ev) = ("aws.kms", "contract-event-1");
    assert_eq!(c.claim_event(source, ev, now, 90, now + 86_400).await.unwrap(), EventClaim::First { recorded: None });
    assert_eq!(c.claim_event(source, ev, now + 1, 90, now + 86_400).await.unwrap(), EventClaim::InProgress);
    c.release_event(source, ev, Some("deletion_cancelled")).await.unwrap();
    assert_eq!(
        c.claim_event(source, ev, now + 2, 90, now + 86_400).await.unwrap(),
        EventClaim::First { recorded: Some("deletion_cancelled".into()) }
    );
    assert_eq!(
        c.claim_event(source, ev, now + 2 + 91, 90, now + 86_400).await.unwrap(),
        EventClaim::First { recorded: Some("deletion_cancelled".into()) },
        "a lease that expired is taken over"
    );
    c.event_done(source, ev).await.unwrap();
    assert_eq!(c.claim_event(source, ev, now + 1000, 90, now + 86_400).await.unwrap(), EventClaim::Done);

    // Denied-call windows: counted across callers, listed once closed
    // (oldest first), taken once.
    let w = |start: u64, who: &str| DenialWindow {
        window_start: start,
        key_arn: key_a.to_string(),
        operation: "Decrypt".into(),
        principal: format!("arn:aws:iam::111122223333:role/{who}"),
    };
    let (old, old_other, open) = (w(now - 2000, "a"), w(now - 2000, "b"), w(now, "a"));
    for n in 1..=3 {
        assert_eq!(c.count_denial(&old, now + 86_400).await.unwrap(), n);
    }
    assert_eq!(c.count_denial(&old_other, now + 86_400).await.unwrap(), 1);
    assert_eq!(c.count_denial(&open, now + 86_400).await.unwrap(), 1, "another window counts apart");
    let closed = c.closed_denials(now, 100).await.unwrap();
    let mine: Vec<_> = closed.iter().filter(|(w, _)| w.key_arn == key_a).cloned().collect();
    assert_eq!(mine, [(old.clone(), 3), (old_other.clone(), 1)], "the open window is not closed yet");
    assert_eq!(c.take_denials(&old).await.unwrap(), Some(3));
    assert_eq!(c.take_denials(&old).await.unwrap(), None, "taken once");
    assert_eq!(c.take_denials(&old_other).await.unwrap(), Some(1));
    assert!(c.closed_denials(now, 100).await.unwrap().iter().all(|(w, _)| w.key_arn != key_a));
    assert_eq!(c.take_denials(&open).await.unwrap(), Some(1));

    // Access denied, as the code the functions report.
    harness.deny_next_read().await;
    let denied = c.recording(&id).await.unwrap_err();
    assert_eq!((denied.code(), denied.is_retryable()), ("access_denied", false), "{denied}");
}

/// The retention part of the catalog's contract: the `retention` index
/// finds what is due (and only that), stamping, the three steps of a
/// The player's list: one type's rows newest first, between two dates, a
/// page at a time, every row once; other types never.
pub async fn browse<C>(c: &C, key: &str)
where
    C: RecordingCatalog + crate::ports::catalog::RecordingBrowser,
{
    use crate::ports::catalog::BrowseQuery;
    let now = 1_800_000_000;
    let days = ["2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23", "2026-11-24"];
    for (n, day) in days.iter().enumerate() {
        for recording_type in ["voicemail", "browse-other"] {
            let id = RecordingId { recording_type: recording_type.into(), recording_id: format!("browse/{n}") };
            let token = acquired(c, &id, &format!("browse-{recording_type}-{n}"), now).await;
            let mut e = entry(&id, &[key], 100 + n as u64);
            e.encrypted_at = format!("{day}T08:00:00Z");
            c.record(&e, &token, &e.encrypted_at).await.unwrap();
        }
    }
    let all = |from: Option<&str>, to: Option<&str>| {
        let query = BrowseQuery {
            recording_type: "voicemail".into(),
            from: from.map(str::to_string),
            to: to.map(str::to_string),
            after: None,
            limit: 2,
        };
        async move {
            let (mut listed, mut query) = (Vec::new(), query);
            for _ in 0..100 {
                let (page, next) = c.browse(&query).await.unwrap();
                assert!(page.len() <= 2, "a page holds at most its limit");
                listed.extend(page.into_iter().map(|e| (e.encrypted_at[..10].to_string(), e.id)));
                match next {
                    Some(n) => query.after = Some(n),
                    None => return listed,
                }
            }
            panic!("the list does not end");
        }
    };
    let listed = all(None, None).await;
    let dates: Vec<&str> = listed.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(
        dates,
        ["2026-11-24", "2026-11-23", "2026-11-22", "2026-11-21", "2026-11-20"],
        "newest first, each once"
    );
    assert!(listed.iter().all(|(_, id)| id.recording_type == "voicemail"), "one type only: {listed:?}");
    // Bounds are inclusive; a day's upper bound is the day followed by "~".
    let some = all(Some("2026-11-21"), Some("2026-11-23~")).await;
    let dates: Vec<&str> = some.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(dates, ["2026-11-23", "2026-11-22", "2026-11-21"]);
    let none = all(Some("2027-01-01"), None).await;
    assert!(none.is_empty());
}

/// deletion with their conditions, runs and their evidence, holds, and a
/// move that keeps a hold.
pub async fn retention<C>(c: &C, key_a: &str, key_b: &str)
where
    C: RecordingCatalog + RetentionCatalog + KeyUsageCatalog,
{
    use crate::ports::catalog::{DeletionRecord, DeletionRun, HoldChange, HoldChanged, Marked};
    use crate::recording::{Deleting, LegalHold};
    let now = 1_800_000_000;
    let ty = "retention-contract";
    let id = |n: u32| RecordingId { recording_type: ty.into(), recording_id: format!("r/{n}") };
    let usage = |u: Option<crate::ports::catalog::KeyUsage>| u.map(|u| (u.recordings, u.bytes)).unwrap_or_default();
    let before = usage(c.key_usage(key_a).await.unwrap());
    for n in 0..4u32 {
        let mut e = entry(&id(n), &[key_a], 100);
        e.retain_until = Some(crate::time::rfc3339(now + u64::from(n) * 86_400));
        e.retention_days = Some(n + 1);
        let token = acquired(c, &e.id, "req", now).await;
        assert_eq!(c.record(&e, &token, "2026-11-29T10:00:00Z").await.unwrap(), Recorded::New);
    }
    let after_records = usage(c.key_usage(key_a).await.unwrap());
    assert_eq!(after_records, (before.0 + 4, before.1 + 400));

    // Due: at or before the date, oldest first, paged; other types apart.
    let until = crate::time::rfc3339(now + 86_400);
    let (page, next) = c.due(ty, &until, None, 1).await.unwrap();
    assert_eq!(page.iter().map(|e| e.id.clone()).collect::<Vec<_>>(), [id(0)]);
    let (rest, _) = c.due(ty, &until, next, 10).await.unwrap();
    assert_eq!(rest.iter().map(|e| e.id.clone()).collect::<Vec<_>>(), [id(1)]);
    assert!(c.due("another-type", &until, None, 10).await.unwrap().0.is_empty());

    // Stamping: only while the row names the message.
    let e2 = c.recording(&id(2)).await.unwrap().unwrap();
    assert!(c.stamp_retention(&e2, Some(&crate::time::rfc3339(now)), Some(1)).await.unwrap());
    let stale = RecordingEntry { message_id: "00".repeat(32), ..e2.clone() };
    assert!(!c.stamp_retention(&stale, None, None).await.unwrap(), "a changed row is not stamped");
    assert_eq!(c.due(ty, &crate::time::rfc3339(now), None, 10).await.unwrap().0.len(), 2, "restamped: due now");
    assert!(c.stamp_retention(&e2, None, None).await.unwrap());
    assert_eq!(c.recording(&id(2)).await.unwrap().unwrap().retain_until, None, "unstamped: out of the index");
    c.save_stamped_policy(r#"{"calls":30}"#, Some("cursor-1")).await.unwrap();
    assert_eq!(c.stamped_policy().await.unwrap(), Some((r#"{"calls":30}"#.to_string(), Some("cursor-1".to_string()))));

    // Holds: set, seen, and a mark refused under one.
    let hold =
        LegalHold { by: "legal@acme.example".into(), reason: "case 7".into(), at: "2026-11-29T10:00:00Z".into() };
    match c.set_hold(&id(1), &HoldChange::Set(hold.clone())).await.unwrap() {
        HoldChanged::Changed(e) => assert_eq!(e.hold.as_ref(), Some(&hold)),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.set_hold(&id(99), &HoldChange::Set(hold.clone())).await.unwrap(), HoldChanged::NotFound);
    let e1 = c.recording(&id(1)).await.unwrap().unwrap();
    let deleting = |run: &str| Deleting {
        run: run.into(),
        reason: "retention".into(),
        versions: vec!["v-1".into()],
        started_at: "2026-11-29T10:00:00Z".into(),
    };
    assert_eq!(c.mark_deleting(&e1, &deleting("run-1"), now).await.unwrap(), Marked::Held);

    // A move keeps a hold, and does not overwrite one set meanwhile.
    let token = acquired(c, &id(1), "rekey", now).await;
    let moved = RecordingEntry { message_id: "ef".repeat(32), wrapping_keys: vec![key_b.into()], ..e1.clone() };
    assert_eq!(c.move_recording(&e1, &moved, &token, "2026-11-29T10:01:00Z").await.unwrap(), Moved::Moved);
    assert_eq!(c.recording(&id(1)).await.unwrap().unwrap().hold, Some(hold.clone()));
    let token = acquired(c, &id(1), "rekey-2", now).await;
    let unheld_view = RecordingEntry { hold: None, ..moved.clone() };
    let again = RecordingEntry { message_id: "12".repeat(32), ..unheld_view.clone() };
    assert!(
        matches!(
            c.move_recording(&unheld_view, &again, &token, "2026-11-29T10:02:00Z").await.unwrap(),
            Moved::RowChanged(_)
        ),
        "a move that read the row before a hold was set does not erase it"
    );
    c.release(&id(1), &token).await.unwrap();

    // A claim held by a re-key: the mark waits.
    let e0 = c.recording(&id(0)).await.unwrap().unwrap();
    let token = acquired(c, &id(0), "rekey", now).await;
    assert_eq!(c.mark_deleting(&e0, &deleting("run-1"), now + 1).await.unwrap(), Marked::Claimed { until: now + 60 });
    c.release(&id(0), &token).await.unwrap();

    // Marked once; a second mark and a move are refused while it is deleting.
    assert_eq!(c.mark_deleting(&e0, &deleting("run-1"), now).await.unwrap(), Marked::Marked);
    let marked = c.recording(&id(0)).await.unwrap().unwrap();
    assert_eq!(marked.deleting, Some(deleting("run-1")));
    assert!(matches!(c.mark_deleting(&e0, &deleting("run-2"), now).await.unwrap(), Marked::RowChanged(_)));
    assert!(matches!(c.set_hold(&id(0), &HoldChange::Set(hold.clone())).await.unwrap(), HoldChanged::Deleting(_)));
    let token = acquired(c, &id(0), "rekey", now).await;
    let onto_b = RecordingEntry { message_id: "34".repeat(32), ..marked.clone() };
    assert!(matches!(c.move_recording(&marked, &onto_b, &token, "now").await.unwrap(), Moved::RowChanged(_)));
    c.release(&id(0), &token).await.unwrap();

    // Runs, and the deletion's one transaction.
    let run = DeletionRun {
        run: "run-1".into(),
        kind: "retention".into(),
        started_at: "2026-11-29T10:00:00Z".into(),
        lease_until: now + 960,
        details: serde_json::json!({"policy_days": {"calls": 30}}),
    };
    c.open_run(&run).await.unwrap();
    assert!(c.open_runs().await.unwrap().contains(&run));
    let record = DeletionRecord {
        id: id(0),
        // A later run finishing what run-1 marked: the evidence is the later run's.
        run: "run-2".into(),
        marked_by: "run-1".into(),
        reason: "retention".into(),
        retention_days: Some(1),
        retain_until: marked.retain_until.clone(),
        vault_key: marked.vault_key.clone(),
        versions: vec!["v-1".into()],
        plaintext_bytes: 100,
        ciphertext_bytes: 600,
        wrapping_keys: vec![key_a.into()],
        encrypted_at: marked.encrypted_at.clone(),
        deleted_at: "2026-11-29T10:05:00Z".into(),
    };
    let wrong_run = DeletionRecord { marked_by: "run-9".into(), ..record.clone() };
    assert!(c.finish_deletion(&marked, &wrong_run).await.is_err(), "only the run that marked it");
    assert!(c.finish_deletion(&marked, &record).await.unwrap());
    assert_eq!(c.recording(&id(0)).await.unwrap(), None);
    assert!(!c.finish_deletion(&marked, &record).await.unwrap(), "a rerun finds it gone and writes nothing");
    assert_eq!(
        usage(c.key_usage(key_a).await.unwrap()),
        (after_records.0 - 2, after_records.1 - 200),
        "one off, once (one moved)"
    );
    assert_eq!(c.run_deletions("run-2").await.unwrap(), std::slice::from_ref(&record));
    assert!(c.run_deletions("run-1").await.unwrap().is_empty(), "the marking run's report does not list it");
    assert_eq!(DeletionRecord::from_json(&record.to_json()), Some(record));
    c.close_run("run-1").await.unwrap();
    c.close_run("run-2").await.unwrap();
    assert!(c.open_runs().await.unwrap().iter().all(|r| r.run != "run-1"));
    assert!(c.run_deletions("run-2").await.unwrap().is_empty());

    // A release of another hold than the row's changes nothing; of the
    // row's, it is gone, kept as released with who, why and when.
    let release =
        LegalHold { by: "legal@acme.example".into(), reason: "case closed".into(), at: "2026-12-01T09:00:00Z".into() };
    let other = LegalHold { at: "2026-01-01T00:00:00Z".into(), ..hold.clone() };
    assert!(matches!(
        c.set_hold(&id(1), &HoldChange::Release { held: other, release: release.clone() }).await.unwrap(),
        HoldChanged::NotHeld(_)
    ));
    assert_eq!(c.recording(&id(1)).await.unwrap().unwrap().hold.as_ref(), Some(&hold));
    match c.set_hold(&id(1), &HoldChange::Release { held: hold.clone(), release: release.clone() }).await.unwrap() {
        HoldChanged::Changed(e) => {
            assert_eq!(e.hold, None);
            assert_eq!(e.released_hold, Some(crate::recording::ReleasedHold { hold: hold.clone(), release }));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.recording(&id(1)).await.unwrap().unwrap().released_hold.map(|r| r.hold), Some(hold));
}

/// The mark of a version whose tag is not yet confirmed: written with the
/// row, listed by the sparse index alone (a page at a time, whatever else
/// the table holds), cleared only for the message it was set for.
pub async fn tags_due<C>(c: &C, key_a: &str, key_b: &str)
where
    C: RecordingCatalog + RecordingListing,
{
    let now = 1_800_000_000;
    let ids: Vec<RecordingId> = (0..3)
        .map(|i| RecordingId { recording_type: "calls".into(), recording_id: format!("tags-due/{i} ü") })
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let mut row = entry(id, &[key_b], 100 + i as u64);
        if i < 2 {
            row.tags_due =
                Some(TagsDue { since: Some(format!("2026-12-0{}T10:00:00Z", i + 1)), from_keys: vec![key_a.into()] });
        }
        let token = acquired(c, id, &format!("tags-{i}"), now).await;
        assert_eq!(c.record(&row, &token, "2026-12-07T10:00:00Z").await.unwrap(), Recorded::New);
        assert_eq!(c.recording(id).await.unwrap().unwrap().tags_due, row.tags_due, "{id}: read back");
    }
    let marked = marked_among(c, &ids).await;
    assert_eq!(marked.iter().map(|r| r.id.clone()).collect::<Vec<_>>(), ids[..2], "the marked rows, and only them");
    assert_eq!(marked[0].tags_due.as_ref().unwrap().from_keys, [key_a.to_string()]);
    assert!(marked[0].was_under(key_a) && !marked[0].is_under(key_a));

    // Cleared only for its own message; again, or for a row with no mark
    // or none at all, nothing happens.
    c.tags_confirmed(&ids[0], &"cd".repeat(32)).await.unwrap();
    assert!(c.recording(&ids[0]).await.unwrap().unwrap().tags_due.is_some(), "another message's confirmation");
    c.tags_confirmed(&ids[0], &"ab".repeat(32)).await.unwrap();
    let row = c.recording(&ids[0]).await.unwrap().unwrap();
    assert_eq!((row.tags_due, row.wrapping_keys), (None, vec![key_b.to_string()]), "only the mark went");
    c.tags_confirmed(&ids[0], &"ab".repeat(32)).await.unwrap();
    c.tags_confirmed(&ids[2], &"ab".repeat(32)).await.unwrap();
    let gone = RecordingId { recording_type: "calls".into(), recording_id: "tags-due/none".into() };
    c.tags_confirmed(&gone, &"ab".repeat(32)).await.unwrap();
    assert_eq!(c.recording(&gone).await.unwrap(), None, "no row is made");
    let marked = marked_among(c, &ids).await;
    assert_eq!(marked.iter().map(|r| r.id.clone()).collect::<Vec<_>>(), ids[1..2]);

    // The sweep's part: only for the mark it read (its time, its message);
    // the row leaves the index, the keys it left stay.
    c.tags_swept(&ids[1], &"ab".repeat(32), "2026-12-01T10:00:00Z").await.unwrap();
    c.tags_swept(&ids[1], &"cd".repeat(32), "2026-12-02T10:00:00Z").await.unwrap();
    assert_eq!(marked_among(c, &ids).await.len(), 1, "another mark's sweep changes nothing");
    c.tags_swept(&ids[1], &"ab".repeat(32), "2026-12-02T10:00:00Z").await.unwrap();
    assert!(marked_among(c, &ids).await.is_empty(), "out of the index");
    let row = c.recording(&ids[1]).await.unwrap().unwrap();
    let mark = row.tags_due.clone().expect("the keys it left stay");
    assert_eq!((mark.since, mark.from_keys), (None, vec![key_a.to_string()]));
    assert!(row.was_under(key_a));
    c.tags_confirmed(&ids[1], &"ab".repeat(32)).await.unwrap();
    assert_eq!(c.recording(&ids[1]).await.unwrap().unwrap().tags_due, None, "a re-key's confirmation clears the rest");
    c.tags_swept(&gone, &"ab".repeat(32), "2026-12-02T10:00:00Z").await.unwrap();
    assert_eq!(c.recording(&gone).await.unwrap(), None, "no row is made");
}

/// The marked rows among `ids`, read a row per page through every page.
async fn marked_among<C: RecordingListing>(c: &C, ids: &[RecordingId]) -> Vec<RecordingEntry> {
    let mut found = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let (page, next) = c.tags_due_page(after, 1).await.expect("tags_due_page");
        pages += 1;
        assert!(pages < 100, "the pages end");
        for row in page {
            assert!(row.tags_due.is_some(), "{}: only marked rows", row.id);
            if ids.contains(&row.id) {
                found.push(row);
            }
        }
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    found.sort_by_key(|r| r.id.to_string());
    found
}
