//! The rotation audit over the twins: every key the catalog knows and every
//! configured key, judged, with the use test of configured keys.

use std::sync::Arc;

use vault::audit::{run, Policy, Verdict};
use vault::memory::{MemoryCatalog, MemoryKms};
use vault::ports::keys::KeyState;
use vault::recording::RecordingKeys;

const DAY: i64 = 86_400;

#[tokio::test]
async fn every_known_and_configured_key_is_judged_with_its_reasons() {
    let kms = Arc::new(MemoryKms::new());
    let now = vault::time::unix_now() as i64;
    let rotating = kms.create_symmetric("us-east-1");
    kms.set_rotation(&rotating, now - 800 * DAY, true, Some(now - 30 * DAY));
    let stale = kms.create_symmetric("us-east-1");
    kms.set_rotation(&stale, now - 800 * DAY, false, None);
    let disabled = kms.create_symmetric("us-east-1");
    kms.set_state(&disabled, KeyState::Disabled);
    let catalog = MemoryCatalog::new();
    catalog.add_usage(&stale, "calls", 4, 400);
    catalog.add_usage(&disabled, "calls", 1, 100);
    let keys = RecordingKeys::parse(&format!(r#"{{"calls": ["{rotating}"]}}"#), "us-east-1").unwrap();

    let report = run(&kms, &catalog, &keys, "acme", "us-east-1", Policy { max_key_age_days: 365 }, now).await.unwrap();
    let verdict = |arn: &str| report.keys.iter().find(|k| k.facts.key_arn == arn).map(|k| k.judgement.verdict);
    assert_eq!(verdict(&rotating), Some(Verdict::Compliant));
    assert_eq!(verdict(&stale), Some(Verdict::NonCompliant));
    assert_eq!(verdict(&disabled), Some(Verdict::Critical));
    assert_eq!(report.failing().count(), 2);
    assert_eq!(kms.calls.get("GenerateDataKey"), 1, "the use test of the configured key only");
    let (subject, body) = report.summary().expect("a summary");
    assert!(subject.starts_with("[CRITICAL]"), "{subject}");
    assert!(body.contains(&format!("aws kms enable-key --key-id {disabled}")), "{body}");
}

#[tokio::test]
async fn a_configured_key_that_fails_its_use_test_is_not_compliant() {
    let kms = Arc::new(MemoryKms::new());
    let now = vault::time::unix_now() as i64;
    let key = kms.create_symmetric("us-east-1");
    kms.set_rotation(&key, now - 10 * DAY, true, None);
    kms.faults.pass_next("DescribeKey", 1);
    kms.faults.fail_next(
        "GenerateDataKey",
        vault::KeyError::AccessDenied { key: key.clone(), detail: "AccessDeniedException".into() },
    );
    let keys = RecordingKeys::parse(&format!(r#"{{"calls": ["{key}"]}}"#), "us-east-1").unwrap();
    let report = run(&kms, &MemoryCatalog::new(), &keys, "acme", "us-east-1", Policy { max_key_age_days: 365 }, now)
        .await
        .unwrap();
    let k = &report.keys[0];
    assert_eq!(k.judgement.verdict, Verdict::NonCompliant);
    assert!(k.judgement.reasons.iter().any(|r| r.contains("new recordings cannot use it")), "{:?}", k.judgement);
}

#[tokio::test]
async fn a_recorded_run_writes_evidence_never_overwritten_counts_metrics_and_alerts_only_when_needed() {
    use vault::audit::{AuditSettings, RotationAudit};
    use vault::memory::{MemoryAlerts, MemoryMetrics, MemoryObjects};
    use vault::ports::objects::S3Location;

    let kms = Arc::new(MemoryKms::new());
    let now = vault::time::unix_now() as i64;
    let key = kms.create_symmetric("us-east-1");
    kms.set_rotation(&key, now - 10 * DAY, true, None);
    let objects = MemoryObjects::new();
    objects.create_bucket("vault", true);
    let alerts = MemoryAlerts::new();
    let metrics = Arc::new(MemoryMetrics::default());
    let settings = AuditSettings {
        org: "acme".into(),
        region: "us-east-1".into(),
        keys: RecordingKeys::parse(&format!(r#"{{"calls": ["{key}"]}}"#), "us-east-1").unwrap(),
        policy: Policy { max_key_age_days: 365 },
        evidence_bucket: "vault".into(),
    };
    let audit = RotationAudit::new(
        kms.clone(),
        MemoryCatalog::new(),
        objects.clone(),
        alerts.clone(),
        settings,
        metrics.clone(),
    );
    let at_ms = 1_795_512_600_123;
    let done = audit.run(at_ms, "req/1").await.unwrap();
    assert_eq!(done.report.key, "audit/rotation/2026/11/24/2026-11-24T09:30:00.123Z-req1.json");
    let report: serde_json::Value = serde_json::from_slice(
        &objects.get(&S3Location { bucket: "vault".into(), key: done.report.key.clone() }, None).unwrap(),
    )
    .unwrap();
    assert_eq!(report["non_compliant_keys"], 0);
    assert!(!done.alerted && alerts.published().is_empty(), "no summary when every key complies");
    assert_eq!(metrics.sum("KeyRotationCompliant", &[("Key", &key)]), 1.0);

    // The same run again would replace its evidence: refused, retried by Lambda.
    let again = audit.run(at_ms, "req/1").await.unwrap_err();
    use vault::errors::OperationError;
    assert_eq!(again.code(), "source_changed");

    kms.set_state(&key, KeyState::Disabled);
    let done = audit.run(at_ms + 1000, "req-2").await.unwrap();
    assert!(done.alerted);
    assert_eq!(alerts.published()[0].attribute("severity"), Some("warning"));
    assert_eq!(metrics.sum("NonCompliantKeys", &[]), 1.0);
}
