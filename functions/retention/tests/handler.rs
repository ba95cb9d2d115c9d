//! The retention handler on the twins: the schedule's event runs a run and
//! reports its figures as metrics; the operator's requests hold, release
//! and erase; what a caller can get wrong is `bad_request`.

use std::sync::Arc;

use retention::{Config, Handler, Request};
use serde_json::json;
use vault::config::FromSettings;
use vault::ingest::{Announced, IngestSettings, RecordingEncryptor};
use vault::memory::{MemoryCatalog, MemoryKms, MemoryMetrics, MemoryObjects};
use vault::ports::objects::{S3Location, WriteOptions};
use vault::recording::RecordingKeys;
use vault::retention::RetentionPolicy;
use vault::time::{parse_rfc3339, unix_now};

const REGION: &str = "us-east-1";

struct Deployed {
    catalog: MemoryCatalog,
    metrics: Arc<MemoryMetrics>,
    handler: Handler<MemoryCatalog, MemoryObjects, MemoryObjects>,
}

async fn deployed(recordings: usize) -> Deployed {
    let kms = Arc::new(MemoryKms::new());
    let a = kms.create_symmetric(REGION);
    let objects = MemoryObjects::new();
    objects.create_bucket("ingest", true);
    objects.create_bucket("vault", true);
    objects.create_locked_bucket("evidence");
    let catalog = MemoryCatalog::new();
    let keys_json = format!(r#"{{"calls": ["{a}"]}}"#);
    let keys = RecordingKeys::parse(&keys_json, REGION).unwrap();
    let policy = RetentionPolicy::parse(r#"{"calls": 30}"#).unwrap();
    let encryptor = RecordingEncryptor::new(
        kms.clone(),
        objects.clone(),
        catalog.clone(),
        IngestSettings {
            org: "acme".into(),
            ingest_bucket: "ingest".into(),
            vault_bucket: "vault".into(),
            keys,
            frame_length: 4096,
            region: REGION.into(),
            write: WriteOptions::default(),
            retention: policy,
            vault_lock: None,
        },
    );
    for n in 0..recordings {
        let key = format!("calls/r-{n}");
        let loc = S3Location { bucket: "ingest".into(), key: key.clone() };
        let (etag, version) = objects.put(&loc, &vec![n as u8; 1000], Some("audio/wav"));
        encryptor
            .encrypt(&Announced { bucket: "ingest".into(), key, etag, version }, unix_now() + 900, "i")
            .await
            .unwrap();
    }
    let env = std::collections::HashMap::from([
        ("AWS_REGION", REGION.to_string()),
        ("VAULT_BUCKET", "vault".to_string()),
        ("EVIDENCE_BUCKET", "evidence".to_string()),
        ("CATALOG_TABLE", "catalog".to_string()),
        ("RECORDING_KEYS", keys_json),
        ("RETENTION_DAYS", r#"{"calls": 30}"#.to_string()),
    ]);
    let config = Config::from_lookup(|name| env.get(name).cloned()).unwrap();
    let metrics = Arc::new(MemoryMetrics::default());
    let handler = Handler::new(config, catalog.clone(), objects.clone(), objects, metrics.clone());
    Deployed { catalog, metrics, handler }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_scheduled_event_runs_a_run_and_its_figures_are_metrics() {
    let d = deployed(3).await;
    let due = parse_rfc3339(d.catalog.recordings()[0].retain_until.as_deref().unwrap()).unwrap();
    let hold = json!({"action": "hold", "recording": "calls/r-2", "reason": "case 7", "requested_by": "alice"});
    let held = d.handler.handle(&hold, due - DAY_BEFORE, "h").await.unwrap();
    assert_eq!(held["hold"]["by"], "alice");
    let scheduled = json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
    let answer = d.handler.handle(&scheduled, due + 1, "req-1").await.unwrap();
    assert_eq!(answer["deleted"], json!(["calls/r-0", "calls/r-1"]), "{answer}");
    assert_eq!((answer["held"].as_u64(), answer["bytes_deleted"].as_u64()), (Some(1), Some(2000)));
    assert!(answer["reports"][0].as_str().unwrap().starts_with("s3://evidence/retention/"), "{answer}");
    assert_eq!(d.metrics.sum("RecordingsDeleted", &[]), 2.0);
    assert_eq!(d.metrics.sum("BytesDeleted", &[]), 2000.0);
    assert_eq!(d.metrics.sum("RecordingsHeld", &[]), 1.0);

    // Erase refused under the hold, with its code; released, allowed.
    let erase = json!({"action": "erase", "recording": "calls/r-2", "reason": "DSR-1", "requested_by": "bob", "request_id": "e-1"});
    let refused = d.handler.handle(&erase, due + 2, "x").await.unwrap_err();
    assert_eq!(refused.code, "legal_hold", "{refused:?}");
    assert_eq!(d.metrics.sum("Refusals", &[("Code", "legal_hold")]), 1.0);
    assert_eq!(d.metrics.sum("Failures", &[]), 0.0, "a refusal is no failure of the deployment");
    let release =
        json!({"action": "release", "recording": "calls/r-2", "reason": "case closed", "requested_by": "alice"});
    let released = d.handler.handle(&release, due + 3, "r").await.unwrap();
    assert_eq!(
        (released["released"]["by"].as_str(), released["release"]["reason"].as_str()),
        (Some("alice"), Some("case closed"))
    );
    let erase = json!({"action": "erase", "recording": "calls/r-2", "reason": "DSR-1", "requested_by": "bob", "request_id": "e-2"});
    let erased = d.handler.handle(&erase, due + 4, "x").await.unwrap();
    assert_eq!(erased["erased"]["reason"], "erasure");
    assert!(d.catalog.recordings().is_empty());
}

const DAY_BEFORE: u64 = 86_400;

#[test]
fn what_a_caller_can_get_wrong_is_a_bad_request() {
    for bad in [
        json!({}),
        json!({"action": "purge"}),
        json!({"action": "hold", "recording": "calls/r-1", "requested_by": "a"}),
        json!({"action": "hold", "recording": "no-slash", "reason": "r", "requested_by": "a"}),
        json!({"action": "erase", "recording": "calls/r-1", "reason": "r", "requested_by": "a"}),
        json!({"action": "erase", "recording": "calls/r-1", "reason": "r", "requested_by": "a", "request_id": "e", "bypass_governance_retention": "yes"}),
        json!({"action": "release", "recording": "calls/r-1", "reason": " ", "requested_by": "a"}),
    ] {
        let err = Request::parse(&bad).unwrap_err();
        assert_eq!(err.code, "bad_request", "{bad}: {err:?}");
    }
    assert_eq!(Request::parse(&json!({"action": "run"})).unwrap(), Request::Run);
}
