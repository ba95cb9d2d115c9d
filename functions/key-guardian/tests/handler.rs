//! The handler over the in-memory twins: an event the guardian cannot read
//! is one log line and one count, never an alert or a retry; a watched event
//! about a key that matters alerts.

use std::sync::Arc;

use key_guardian::{Config, Handler};
use serde_json::json;
use vault::config::FromSettings;
use vault::memory::{MemoryAlerts, MemoryCatalog, MemoryKms, MemoryMetrics};

fn cloudtrail(name: &str, key: &str) -> serde_json::Value {
    json!({
        "version": "0", "id": format!("ev-{name}"), "detail-type": "AWS API Call via CloudTrail", "source": "aws.kms",
        "account": "111122223333", "time": "2026-11-28T09:00:00Z", "region": "us-east-1", "resources": [],
        "detail": { "eventName": name, "awsRegion": "us-east-1", "requestParameters": { "keyId": key },
                    "userIdentity": { "type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/Admin/alice" } }
    })
}

type TwinHandler = Handler<Arc<MemoryKms>, MemoryCatalog, MemoryAlerts>;

/// A handler over the twins for one key that protects `recordings`
/// recordings of type `calls`: the handler, the key, the alerts, the metrics.
fn deployed(recordings: u64) -> (TwinHandler, String, MemoryAlerts, Arc<MemoryMetrics>) {
    let kms = Arc::new(MemoryKms::new());
    let key = kms.create_symmetric("us-east-1");
    let catalog = MemoryCatalog::new();
    catalog.add_usage(&key, "calls", recordings, recordings * 10);
    let alerts = MemoryAlerts::new();
    let metrics = Arc::new(MemoryMetrics::default());
    let env = [
        ("AWS_REGION", "us-east-1".to_string()),
        ("CATALOG_TABLE", "catalog".into()),
        ("ALERT_TOPIC_ARN", "arn:aws:sns:us-east-1:111122223333:alerts".into()),
        ("RECORDING_KEYS", format!(r#"{{"calls": ["{key}"]}}"#)),
    ];
    let config = Config::from_lookup(|n| env.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone())).unwrap();
    let handler = Handler::new(config, kms, catalog, alerts.clone(), metrics.clone());
    (handler, key, alerts, metrics)
}

#[tokio::test]
async fn malformed_and_unwatched_events_are_counted_not_alerted_and_watched_ones_alert() {
    let (handler, key, alerts, metrics) = deployed(1);

    for bad in [json!([1]), json!({"source": "aws.s3"}), json!({"source": "aws.kms", "id": "x"})] {
        let answer = handler.handle(bad.clone()).await.expect("never a retry");
        assert_eq!(
            (answer["outcome"].as_str(), answer["code"].as_str()),
            (Some("malformed"), Some("bad_event")),
            "{bad}"
        );
    }
    let answer = handler.handle(cloudtrail("ListKeys", &key)).await.unwrap();
    assert_eq!((answer["outcome"].as_str(), answer["reason"].as_str()), (Some("ignored"), Some("unwatched")));
    assert!(alerts.published().is_empty());
    assert_eq!(metrics.sum("MalformedEvents", &[]), 3.0);
    assert_eq!(metrics.sum("EventsIgnored", &[("Reason", "unwatched")]), 1.0);

    let answer = handler.handle(cloudtrail("DisableKey", &key)).await.unwrap();
    assert_eq!((answer["outcome"].as_str(), answer["critical"].as_bool()), (Some("alerted"), Some(true)), "{answer}");
    assert_eq!(alerts.published().len(), 1);
}

#[tokio::test]
async fn a_denied_schedule_key_deletion_on_a_watched_key_alerts_as_a_warning() {
    let (handler, key, alerts, _) = deployed(3);
    let mut event = cloudtrail("ScheduleKeyDeletion", &key);
    event["detail"]["errorCode"] = json!("AccessDenied");
    event["detail"]["errorMessage"] = json!("the key policy requires MFA to schedule deletion");
    let answer = handler.handle(event).await.unwrap();
    assert_eq!(
        (answer["outcome"].as_str(), answer["severity"].as_str()),
        (Some("alerted"), Some("warning")),
        "{answer}"
    );
    let alert = &alerts.published()[0];
    assert!(alert.subject.contains("change denied"), "{}", alert.subject);
    assert!(
        alert.body.contains("ScheduleKeyDeletion was DENIED (AccessDenied: the key policy requires MFA"),
        "{}",
        alert.body
    );
}

#[tokio::test]
async fn denied_decrypts_are_summarised_and_the_schedule_flushes_the_summaries() {
    let (handler, key, alerts, metrics) = deployed(2);
    for i in 0..20 {
        let mut event = cloudtrail("Decrypt", &key);
        event["id"] = json!(format!("ev-deny-{i}"));
        event["detail"]["errorCode"] = json!("AccessDenied");
        let answer = handler.handle(event).await.unwrap();
        let expected = if i == 0 { "alerted" } else { "summarised" };
        assert_eq!(answer["outcome"].as_str(), Some(expected), "{answer}");
    }
    assert_eq!(alerts.published().len(), 1);
    assert_eq!(metrics.sum("AccessDenials", &[]), 20.0);
    // The schedule's event: the window is still open, so nothing yet.
    let schedule = json!({"version": "0", "id": "sched-1", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "111122223333", "time": "2026-11-28T09:05:00Z", "region": "us-east-1", "resources": [], "detail": {}});
    let answer = handler.handle(schedule.clone()).await.unwrap();
    assert_eq!(answer["outcome"].as_str(), Some("flushed"), "{answer}");
    assert_eq!(answer["summaries"].as_u64(), Some(0), "{answer}");
    // Once it closes (the guardian's own clock, tested on the service), one summary.
    let flushed = handler.guardian().flush(vault::time::unix_now() + 900).await.unwrap();
    assert_eq!(flushed.summaries, 1);
    assert!(
        alerts.published()[1].subject.contains("20 denied Decrypt calls by alice"),
        "{}",
        alerts.published()[1].subject
    );
}
