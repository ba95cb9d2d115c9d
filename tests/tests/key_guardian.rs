//! key-guardian end to end on the local AWS: the sample KMS events of
//! `events/`, naming a key that protects recordings encrypted by the real
//! encrypt-recording handler, go through the real handler; the alerts are
//! read back from an SQS queue subscribed to the SNS topic, with the
//! at-risk figures the catalog holds; metrics from the handler's EMF lines.

use e2e::guardian::{kms_event, Guardian, Received};
use e2e::ingest::Stack;
use e2e::*;

fn one(alerts: &[Received]) -> &Received {
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    &alerts[0]
}

fn assert_body(alert: &Received, needles: &[&str]) {
    for n in needles {
        assert!(alert.body.contains(n), "{n:?} not in the alert:\n{}\n{}", alert.subject, alert.body);
    }
}

async fn key_state(aws: &LocalAws, key: &str) -> String {
    let meta = aws.kms().await.describe_key().key_id(key).send().await.unwrap().key_metadata.unwrap();
    meta.key_state.unwrap().as_str().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_event_kind_alerts_with_the_recordings_the_catalog_says_are_at_risk() {
    let aws = LocalAws::shared();
    let key = aws.create_key("SYMMETRIC_DEFAULT", REGION).await;
    aws.kms().await.create_alias().alias_name("alias/recordings-acme").target_key_id(&key).send().await.unwrap();
    let stack = Stack::new(aws, &[("calls", &[&key])]).await;
    stack.encrypt("calls/a.wav", &sample(10_000, 1), "audio/wav").await;
    stack.encrypt("calls/b.wav", &sample(20_000, 2), "audio/wav").await;
    let usage = stack.usage(&key).await.unwrap();
    assert_eq!((usage.recordings, usage.bytes, usage.recording_types.clone()), (2, 30_000, vec!["calls".to_string()]));
    let guardian = Guardian::new(&stack, false).await;
    let kms = aws.kms().await;
    let at_stake = [
        "2 recordings (29.3 KiB (30000 bytes)) protected by this key",
        &format!("oldest encrypted {}, newest {}", usage.first_used, usage.last_used),
        "recording types: calls",
        "new recordings of type calls use this key",
        "alias/recordings-acme",
        &key,
    ];

    // Someone without the right tries to decrypt a recording: a warning.
    let v = guardian.invoke(&kms_event("kms-access-denied.json", &key, "ev-denied")).await.unwrap();
    assert_eq!((v["outcome"].as_str(), v["severity"].as_str()), (Some("alerted"), Some("warning")), "{v}");
    let alerts = guardian.alerts().await;
    let a = one(&alerts);
    assert!(
        a.subject.starts_with("[WARNING]") && a.subject.contains("access denied") && a.subject.len() < 100,
        "{}",
        a.subject
    );
    assert_body(a, &at_stake);
    assert_body(
        a,
        &[
            "Decrypt was DENIED (AccessDenied",
            "arn:aws:sts::123456789012:assumed-role/ContractorAnalytics/etl-job",
            "203.0.113.99",
            "MFA: NO",
        ],
    );
    assert_eq!(a.attributes["severity"], "warning");
    assert_eq!(a.attributes["event"], "AccessDenied");
    assert_eq!(a.attributes["key_id"], key.rsplit('/').next().unwrap());

    // The key is disabled: critical, with the command that undoes it.
    kms.disable_key().key_id(&key).send().await.unwrap();
    guardian.invoke(&kms_event("kms-disable-key.json", &key, "ev-disable")).await.unwrap();
    let alerts = guardian.alerts().await;
    let a = one(&alerts);
    assert_eq!(a.subject, "[CRITICAL] callvault: key alias/recordings-acme disabled: 2 recordings at risk");
    assert_body(a, &at_stake);
    assert_body(
        a,
        &[
            "State now: Disabled",
            "arn:aws:sts::123456789012:assumed-role/PlatformAdmin/bob.admin (AssumedRole)",
            "198.51.100.23",
            &format!("aws kms enable-key --key-id {key} --region us-east-1"),
        ],
    );
    assert_eq!((a.attributes["severity"].as_str(), a.attributes["event"].as_str()), ("critical", "DisableKey"));

    // Scheduled for deletion: the date, the days left, both commands.
    kms.schedule_key_deletion().key_id(&key).pending_window_in_days(7).send().await.unwrap();
    guardian.invoke(&kms_event("kms-schedule-key-deletion.json", &key, "ev-schedule")).await.unwrap();
    let alerts = guardian.alerts().await;
    let a = one(&alerts);
    assert!(
        a.subject.starts_with("[CRITICAL]") && a.subject.contains("scheduled for deletion: 2 recordings at risk"),
        "{}",
        a.subject
    );
    assert_body(a, &at_stake);
    assert_body(
        a,
        &[
            "State now: PendingDeletion",
            "days left",
            "Deletion is final",
            &format!("aws kms cancel-key-deletion --key-id {key} --region us-east-1"),
            &format!("aws kms enable-key --key-id {key} --region us-east-1"),
        ],
    );
    assert_eq!(guardian.metrics.values("KeysPendingDeletionProtectingRecordings", &[("Key", &key)]), [1.0]);

    // Re-enabled (the same record shape, EnableKey): information only.
    kms.cancel_key_deletion().key_id(&key).send().await.unwrap();
    kms.enable_key().key_id(&key).send().await.unwrap();
    let mut enable = kms_event("kms-disable-key.json", &key, "ev-enable");
    enable["detail"]["eventName"] = "EnableKey".into();
    let v = guardian.invoke(&enable).await.unwrap();
    assert_eq!(v["severity"], "info");
    let alerts = guardian.alerts().await;
    assert!(one(&alerts).subject.starts_with("[INFO]") && one(&alerts).body.contains("No action needed"));

    // The other API calls watched, built from the same CloudTrail record.
    for (name, severity, needle) in [
        ("PutKeyPolicy", "warning", "aws kms get-key-policy --key-id"),
        ("DisableKeyRotation", "warning", "aws kms enable-key-rotation --key-id"),
        ("DeleteImportedKeyMaterial", "critical", "with the SAME key material"),
        ("CancelKeyDeletion", "info", "No action needed"),
    ] {
        let mut event = kms_event("kms-disable-key.json", &key, &format!("ev-{name}"));
        event["detail"]["eventName"] = name.into();
        let v = guardian.invoke(&event).await.unwrap();
        assert_eq!((v["event"].as_str(), v["severity"].as_str()), (Some(name), Some(severity)), "{v}");
        let alerts = guardian.alerts().await;
        assert_body(one(&alerts), &[needle, &key]);
        assert_eq!(one(&alerts).attributes["event"], name);
    }
    let mut alias = kms_event("kms-disable-key.json", &key, "ev-alias");
    alias["detail"]["eventName"] = "DeleteAlias".into();
    alias["detail"]["requestParameters"] = serde_json::json!({"aliasName": "alias/recordings-acme"});
    alias["detail"]["resources"] = serde_json::json!([
        {"type": "AWS::KMS::Key", "ARN": key.replace(":key/", ":alias/").rsplit_once('/').map(|(p, _)| format!("{p}/recordings-acme")).unwrap()},
        {"type": "AWS::KMS::Key", "ARN": key},
    ]);
    guardian.invoke(&alias).await.unwrap();
    let alerts = guardian.alerts().await;
    assert_body(
        one(&alerts),
        &[&format!("aws kms create-alias --alias-name alias/recordings-acme --target-key-id {key}")],
    );
    let mut rotated = kms_event("kms-key-deletion.json", &key, "ev-rotated");
    rotated["detail-type"] = "KMS CMK Rotation".into();
    assert_eq!(guardian.invoke(&rotated).await.unwrap()["severity"], "info");
    assert!(one(&guardian.alerts().await).subject.contains("rotated"));

    // KMS deleted it: critical, and nothing undoes it.
    kms.schedule_key_deletion().key_id(&key).pending_window_in_days(7).send().await.unwrap();
    guardian.invoke(&kms_event("kms-key-deletion.json", &key, "ev-deleted")).await.unwrap();
    let alerts = guardian.alerts().await;
    let a = one(&alerts);
    assert!(a.subject.starts_with("[CRITICAL]") && a.subject.contains("DELETED"), "{}", a.subject);
    assert_body(a, &at_stake[..4]);
    assert_body(a, &["AWS KMS itself", "nothing can undo a deletion"]);

    // The metrics, from the handler's embedded-metric lines.
    let m = &guardian.metrics;
    for event in ["DisableKey", "ScheduleKeyDeletion", "EnableKey", "KeyDeleted"] {
        assert_eq!(m.values("KeyStateChanges", &[("Key", &key), ("Event", event)]), [1.0], "{event}");
    }
    let etl = "arn:aws:sts::123456789012:assumed-role/ContractorAnalytics/etl-job";
    assert_eq!(m.values("AccessDenials", &[("Key", &key), ("Principal", etl)]), [1.0]);
    assert_eq!(m.values("Alerts", &[("Severity", "critical")]).len(), 4);
    assert_eq!(m.values("KeysPendingDeletionProtectingRecordings", &[("Key", &key)]), [1.0, 0.0, 0.0, 0.0]);
}

#[tokio::test(flavor = "multi_thread")]
async fn protection_turns_a_scheduled_deletion_into_a_disabled_key_and_says_so() {
    let aws = LocalAws::shared();
    let key = aws.create_key("SYMMETRIC_DEFAULT", REGION).await;
    let stack = Stack::new(aws, &[("calls", &[&key])]).await;
    stack.encrypt("calls/keep-me.wav", &sample(5000, 1), "audio/wav").await;
    let guardian = Guardian::new(&stack, true).await;
    aws.kms().await.schedule_key_deletion().key_id(&key).pending_window_in_days(30).send().await.unwrap();
    assert_eq!(key_state(aws, &key).await, "PendingDeletion");

    let v = guardian.invoke(&kms_event("kms-schedule-key-deletion.json", &key, "p1")).await.unwrap();
    assert_eq!((v["protection"].as_str(), v["severity"].as_str()), (Some("cancelled"), Some("critical")), "{v}");
    assert_eq!(key_state(aws, &key).await, "Disabled", "disable, don't delete");
    let alerts = guardian.alerts().await;
    let a = one(&alerts);
    assert_body(
        a,
        &[
            "CANCELLED THE DELETION",
            "State now: Disabled",
            "1 recording (4.9 KiB (5000 bytes))",
            &format!("aws kms enable-key --key-id {key} --region us-east-1"),
        ],
    );
    assert!(!a.body.contains("cancel-key-deletion"), "nothing left to cancel:\n{}", a.body);
    assert_eq!(guardian.metrics.values("KeysPendingDeletionProtectingRecordings", &[("Key", &key)]), [0.0]);
}
