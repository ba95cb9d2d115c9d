//! The catalog ports' contract: claims, the all-or-nothing transaction
//! that catalogues a recording, key usage, event claims.

use std::future::Future;

use crate::errors::OperationError;
use crate::ports::catalog::{
    CatalogError, Claim, DenialCounters, DenialWindow, EventClaim, EventClaims, KeyUsageCatalog, Moved, Recorded,
    RecordingCatalog, RecordingListing,
};
use crate::recording::{MovedTo, RecordingEntry, RecordingId};

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
        deleting: None,
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
