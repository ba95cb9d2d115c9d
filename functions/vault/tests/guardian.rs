//! The key guardian on the in-memory twins: what a key protects decides the
//! alert, one alert per event however often it is delivered, protection
//! turns a scheduled deletion into a disabled key, and a failed alert is
//! retried without redoing or forgetting what protection did.

use std::sync::Arc;

use vault::errors::OperationError;
use vault::guardian::{Handled, KeyEvent, KeyEventKind, KeyGuardian};
use vault::memory::{MemoryAlerts, MemoryCatalog, MemoryKms, MemoryMetrics};
use vault::ports::alerts::{AlertError, Severity};
use vault::ports::keys::KeyState;
use vault::recording::RecordingKeys;

const REGION: &str = "us-east-1";

struct Rig {
    kms: Arc<MemoryKms>,
    catalog: MemoryCatalog,
    alerts: MemoryAlerts,
    metrics: Arc<MemoryMetrics>,
    /// Protects two recordings and is configured for `calls`.
    used: String,
    /// Only configured for `screens`.
    configured: String,
    /// Neither.
    unrelated: String,
    /// An older key (OLDER_KEY_ARNS) the catalog has no usage for.
    older: String,
}

impl Rig {
    fn new() -> Self {
        let kms = Arc::new(MemoryKms::new());
        let (used, configured, unrelated, older) = (
            kms.create_symmetric(REGION),
            kms.create_symmetric(REGION),
            kms.create_symmetric(REGION),
            kms.create_symmetric(REGION),
        );
        kms.add_alias(&used, "alias/recordings-acme");
        let catalog = MemoryCatalog::new();
        catalog.add_usage(&used, "calls", 2, 3 * 1024 * 1024);
        Self { kms, catalog, alerts: MemoryAlerts::new(), metrics: Arc::default(), used, configured, unrelated, older }
    }

    fn guardian(&self, protect: bool) -> KeyGuardian<Arc<MemoryKms>, MemoryCatalog, MemoryAlerts> {
        let keys = RecordingKeys::parse(
            &format!(r#"{{"calls": ["{}"], "screens": ["{}"]}}"#, self.used, self.configured),
            REGION,
        )
        .unwrap();
        KeyGuardian::new(
            self.kms.clone(),
            self.catalog.clone(),
            self.alerts.clone(),
            keys,
            vec![self.older.clone()],
            protect,
            self.metrics.clone(),
        )
    }
}

fn event(id: &str, kind: KeyEventKind, key: &str) -> KeyEvent {
    KeyEvent {
        id: id.into(),
        kind: Some(kind),
        operation: kind.name().into(),
        key_arn: key.into(),
        time: "2026-11-28T09:00:00Z".into(),
        region: REGION.into(),
        account: "111122223333".into(),
        principal: Some("arn:aws:sts::111122223333:assumed-role/Admin/alice".into()),
        pending_window_days: (kind == KeyEventKind::DeletionScheduled).then_some(7),
        ..Default::default()
    }
}

fn alerted(h: Handled) -> vault::guardian::Alerted {
    match h {
        Handled::Alerted(a) => *a,
        other => panic!("expected an alert, got {other:?}"),
    }
}

#[tokio::test]
async fn each_event_kind_alerts_with_the_recordings_the_catalog_says_are_at_risk() {
    let rig = Rig::new();
    let g = rig.guardian(false);
    let cases = [
        (KeyEventKind::Disabled, Severity::Critical),
        (KeyEventKind::DeletionScheduled, Severity::Critical),
        (KeyEventKind::PolicyChanged, Severity::Warning),
        (KeyEventKind::AccessDenied, Severity::Warning),
        (KeyEventKind::Enabled, Severity::Info),
    ];
    for (i, (kind, severity)) in cases.into_iter().enumerate() {
        let a = alerted(g.handle(&event(&format!("ev-{i}"), kind, &rig.used)).await.unwrap());
        assert_eq!((a.severity, a.recordings_at_risk, a.protection), (severity, 2, "none"), "{kind:?}");
    }
    let published = rig.alerts.published();
    assert_eq!(published.len(), 5);
    assert_eq!(
        published[1].subject,
        "[CRITICAL] callvault: key alias/recordings-acme scheduled for deletion: 2 recordings at risk"
    );
    assert_eq!(published[1].attribute("severity"), Some("critical"));
    assert_eq!(published[1].attribute("key_arn"), Some(rig.used.as_str()));
    assert!(published[1].body.contains(&format!("aws kms cancel-key-deletion --key-id {}", rig.used)));
    assert_eq!(rig.metrics.sum("Alerts", &[("Severity", "critical")]), 2.0);
    assert_eq!(rig.metrics.sum("AccessDenials", &[("Key", &rig.used)]), 1.0);
    assert_eq!(rig.metrics.sum("KeysPendingDeletionProtectingRecordings", &[("Key", &rig.used)]), 1.0);
}

#[tokio::test]
async fn an_unrelated_key_raises_nothing_and_a_configured_key_is_still_guarded() {
    let rig = Rig::new();
    let g = rig.guardian(false);
    let h = g.handle(&event("ev-u", KeyEventKind::Disabled, &rig.unrelated)).await.unwrap();
    assert!(matches!(h, Handled::Unrelated { .. }), "{h:?}");
    assert!(rig.alerts.published().is_empty());
    assert_eq!(rig.metrics.sum("EventsIgnored", &[("Reason", "unrelated_key")]), 1.0);

    let a = alerted(g.handle(&event("ev-c", KeyEventKind::Disabled, &rig.configured)).await.unwrap());
    assert_eq!((a.severity, a.recordings_at_risk), (Severity::Warning, 0));
    assert!(rig.alerts.published()[0].body.contains("screens"), "{}", rig.alerts.published()[0].body);
}

#[tokio::test]
async fn an_event_delivered_twice_alerts_once_and_one_in_progress_waits() {
    let rig = Rig::new();
    let g = rig.guardian(false);
    let e = event("ev-dup", KeyEventKind::Disabled, &rig.used);
    alerted(g.handle(&e).await.unwrap());
    assert!(matches!(g.handle(&e).await.unwrap(), Handled::Duplicate { .. }));
    assert_eq!(rig.alerts.published().len(), 1);
    assert_eq!(rig.metrics.sum("DuplicateEvents", &[]), 1.0);

    // Another invocation holds the next event: this delivery waits.
    use vault::ports::catalog::EventClaims;
    rig.catalog.claim_event("aws.kms", "ev-busy", vault::time::unix_now(), 90, u64::MAX).await.unwrap();
    let err = g.handle(&event("ev-busy", KeyEventKind::Disabled, &rig.used)).await.unwrap_err();
    assert_eq!((err.code(), err.is_retryable()), ("event_in_progress", true));
}

#[tokio::test]
async fn protection_turns_a_scheduled_deletion_into_a_disabled_key_and_says_so() {
    let rig = Rig::new();
    rig.kms.set_state(&rig.used, KeyState::PendingDeletion);
    let a =
        alerted(rig.guardian(true).handle(&event("ev-p", KeyEventKind::DeletionScheduled, &rig.used)).await.unwrap());
    assert_eq!(a.protection, "cancelled");
    assert_eq!(rig.kms.state(&rig.used), Some(KeyState::Disabled));
    assert!(rig.alerts.published()[0].body.contains("CANCELLED THE DELETION"));
    assert_eq!(rig.metrics.sum("KeysPendingDeletionProtectingRecordings", &[("Key", &rig.used)]), 0.0);

    // Without protection, no cancel.
    rig.kms.set_state(&rig.configured, KeyState::PendingDeletion);
    rig.guardian(false).handle(&event("ev-q", KeyEventKind::DeletionScheduled, &rig.configured)).await.unwrap();
    assert_eq!(rig.kms.state(&rig.configured), Some(KeyState::PendingDeletion));
}

#[tokio::test]
async fn protection_holds_for_configured_and_older_keys_whatever_the_catalog_says() {
    // The catalog has no usage for either (a deleted usage item looks the same).
    let rig = Rig::new();
    for (id, key) in [("ev-c", rig.configured.clone()), ("ev-o", rig.older.clone())] {
        rig.kms.set_state(&key, KeyState::PendingDeletion);
        let a = alerted(rig.guardian(true).handle(&event(id, KeyEventKind::DeletionScheduled, &key)).await.unwrap());
        assert_eq!(a.protection, "cancelled", "{key}");
        assert_eq!(rig.kms.state(&key), Some(KeyState::Disabled));
    }
    let older_alert = &rig.alerts.published()[1];
    assert!(older_alert.subject.starts_with("[CRITICAL]") && older_alert.subject.contains("older recordings at risk"));
    // A key that is neither is not touched.
    rig.kms.set_state(&rig.unrelated, KeyState::PendingDeletion);
    rig.guardian(true).handle(&event("ev-u", KeyEventKind::DeletionScheduled, &rig.unrelated)).await.unwrap();
    assert_eq!(rig.kms.state(&rig.unrelated), Some(KeyState::PendingDeletion));
}

#[tokio::test]
async fn a_failed_alert_is_retried_and_reports_the_cancellation_its_first_attempt_made() {
    let rig = Rig::new();
    rig.kms.set_state(&rig.used, KeyState::PendingDeletion);
    let g = rig.guardian(true);
    let e = event("ev-f", KeyEventKind::DeletionScheduled, &rig.used);
    rig.alerts
        .faults
        .fail_next("publish", AlertError { topic: "t".into(), detail: "Throttled".into(), retryable: true });
    let err = g.handle(&e).await.unwrap_err();
    assert_eq!((err.code(), err.is_retryable()), ("sns_unavailable", true));
    assert_eq!(rig.kms.state(&rig.used), Some(KeyState::Disabled), "the first attempt cancelled the deletion");

    // The retry (at once: the claim was released) alerts, and says so.
    let a = alerted(g.handle(&e).await.unwrap());
    assert_eq!(a.protection, "cancelled");
    assert_eq!(rig.kms.calls.get("CancelKeyDeletion"), 1, "not redone");
    assert_eq!(rig.alerts.published().len(), 1);
}

#[tokio::test]
async fn a_catalog_that_cannot_be_read_fails_the_invocation_for_a_retry() {
    let rig = Rig::new();
    rig.catalog.faults.fail_next("key_usage", vault::ports::catalog::CatalogError::Unavailable { detail: "x".into() });
    let err = rig.guardian(false).handle(&event("ev-c", KeyEventKind::Disabled, &rig.used)).await.unwrap_err();
    assert_eq!((err.code(), err.is_retryable()), ("catalog_unavailable", true));
    assert!(rig.alerts.published().is_empty());
}

/// The start of a 15-minute window (1_800_000_000 is a multiple of 900).
const WINDOW_START: u64 = 1_800_000_000;

fn denied_decrypt(i: usize, key: &str) -> KeyEvent {
    KeyEvent {
        operation: "Decrypt".into(),
        principal: Some("arn:aws:sts::111122223333:assumed-role/Intruder/mallory".into()),
        error_code: Some("AccessDenied".into()),
        ..event(&format!("deny-{i}"), KeyEventKind::AccessDenied, key)
    }
}

#[tokio::test]
async fn a_thousand_denied_decrypts_from_one_principal_make_a_bounded_number_of_alerts_and_a_count_of_a_thousand() {
    let rig = Rig::new();
    let g = rig.guardian(false).with_denial_window(900);
    let t0 = WINDOW_START + 100;
    for i in 0..1000 {
        let h = g.handle_at(&denied_decrypt(i, &rig.used), t0 + (i as u64) % 600).await.unwrap();
        if i > 0 {
            assert_eq!(h, Handled::Aggregated { key_arn: rig.used.clone(), count: i as u64 + 1 });
        }
        if i == 500 {
            // An alert the flood must not bury.
            let a =
                alerted(g.handle_at(&event("del-1", KeyEventKind::DeletionScheduled, &rig.used), t0).await.unwrap());
            assert_eq!(a.severity, Severity::Critical);
        }
    }
    // The first denial at once, the deletion at once; every denial counted.
    let published = rig.alerts.published();
    assert_eq!(published.len(), 2, "{:?}", published.iter().map(|p| &p.subject).collect::<Vec<_>>());
    assert!(published[0].subject.starts_with("[WARNING]"), "{}", published[0].subject);
    assert!(published[0].body.contains("are counted and summarised in one alert"), "{}", published[0].body);
    assert!(published[1].subject.starts_with("[CRITICAL]"));
    assert_eq!(rig.metrics.sum("AccessDenials", &[("Key", &rig.used)]), 1000.0);

    // Nothing is summarised while the window is open.
    assert_eq!(g.flush(t0 + 700).await.unwrap().summaries, 0);
    // Once it has closed, one summary with the count, sent by the schedule
    // even though no further event came; and only once.
    let flushed = g.flush(t0 + 900).await.unwrap();
    assert_eq!((flushed.windows, flushed.summaries), (1, 1));
    let published = rig.alerts.published();
    assert_eq!(published.len(), 3);
    let summary = &published[2];
    assert!(
        summary.subject.starts_with("[WARNING]") && summary.subject.contains("1000 denied Decrypt calls by mallory"),
        "{}",
        summary.subject
    );
    assert!(summary.body.contains("Denied: 1000 times"), "{}", summary.body);
    assert_eq!(summary.attribute("event"), Some("AccessDeniedSummary"));
    assert_eq!(g.flush(t0 + 2000).await.unwrap(), vault::guardian::Flushed::default());
}

#[tokio::test]
async fn a_window_with_only_its_first_denial_is_cleared_without_a_summary_and_a_failed_summary_is_sent_next_time() {
    let rig = Rig::new();
    let g = rig.guardian(false).with_denial_window(900);
    let t0 = WINDOW_START;
    g.handle_at(&denied_decrypt(0, &rig.used), t0).await.unwrap();
    let mut other = denied_decrypt(1, &rig.used);
    other.principal = Some("arn:aws:iam::111122223333:role/batch".into());
    g.handle_at(&other, t0 + 5).await.unwrap();
    g.handle_at(&denied_decrypt(2, &rig.used), t0 + 10).await.unwrap();
    assert_eq!(rig.alerts.published().len(), 2, "each principal's first denial alerts");

    rig.alerts.faults.fail_next("publish", AlertError { topic: "t".into(), detail: "down".into(), retryable: true });
    // The batch role's window (its first denial only) is cleared silently;
    // mallory's summary fails, and its counter stays for the next flush.
    assert!(g.flush(t0 + 900).await.is_err(), "the summary could not be sent");
    assert_eq!(rig.alerts.published().len(), 2);
    let flushed = g.flush(t0 + 1200).await.unwrap();
    assert_eq!((flushed.windows, flushed.summaries), (1, 1));
    assert!(rig.alerts.published()[2].subject.contains("2 denied Decrypt calls by mallory"));
}

#[tokio::test]
async fn a_redelivered_denial_is_counted_once_and_a_failed_first_alert_is_retried_not_summarised() {
    let rig = Rig::new();
    let g = rig.guardian(false).with_denial_window(900);
    let t0 = WINDOW_START;
    rig.alerts.faults.fail_next("publish", AlertError { topic: "t".into(), detail: "down".into(), retryable: true });
    assert!(g.handle_at(&denied_decrypt(0, &rig.used), t0).await.is_err());
    // Lambda's retry of the same event: it alerts (it opened the window).
    alerted(g.handle_at(&denied_decrypt(0, &rig.used), t0 + 1).await.unwrap());
    assert!(matches!(g.handle_at(&denied_decrypt(0, &rig.used), t0 + 2).await.unwrap(), Handled::Duplicate { .. }));
    assert_eq!(
        g.handle_at(&denied_decrypt(1, &rig.used), t0 + 3).await.unwrap(),
        Handled::Aggregated { key_arn: rig.used.clone(), count: 2 }
    );
    assert_eq!(rig.metrics.sum("AccessDenials", &[]), 2.0, "the failed attempt's denial was counted once");
}
