//! The retention handler on the twins: the schedule's event runs a run and
//! reports its figures as metrics; each duty's function answers its own
//! Function URL requests and nothing else, naming the caller Lambda
//! authenticated; what a caller can get wrong is `bad_request`.

use std::sync::Arc;

use retention::{Config, Duty, Handler, Request};
use serde_json::json;
use serde_json::Value;
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
    objects: MemoryObjects,
    metrics: Arc<MemoryMetrics>,
    env: std::collections::HashMap<&'static str, String>,
}

impl Deployed {
    /// The function of `duty`, over the same catalog and buckets.
    fn handler(&self, duty: Duty) -> Handler<MemoryCatalog, MemoryObjects, MemoryObjects> {
        let mut env = self.env.clone();
        env.insert("RETENTION_DUTY", duty.name().to_string());
        let config = Config::from_lookup(|name| env.get(name).cloned()).unwrap();
        Handler::new(config, self.catalog.clone(), self.objects.clone(), self.objects.clone(), self.metrics.clone())
    }

    fn reports(&self) -> Vec<Value> {
        self.objects
            .keys("evidence")
            .iter()
            .map(|k| {
                let loc = S3Location { bucket: "evidence".into(), key: k.clone() };
                serde_json::from_slice(&self.objects.get(&loc, None).unwrap()).unwrap()
            })
            .collect()
    }
}

const ALICE: &str = "arn:aws:sts::111122223333:assumed-role/legal-hold/alice";
const BOB: &str = "arn:aws:sts::111122223333:assumed-role/privacy-erase/bob";

/// A Function URL request (payload 2.0) as Lambda hands it over when the
/// URL's AuthType is AWS_IAM and `caller`'s signature checked out.
fn url(caller: Option<&str>, method: &str, body: Value) -> Value {
    let mut event = json!({
        "version": "2.0",
        "rawPath": "/",
        "headers": {"content-type": "application/json"},
        "requestContext": {"http": {"method": method, "path": "/", "sourceIp": "192.0.2.1"}},
        "body": body.to_string(),
        "isBase64Encoded": false,
    });
    if let Some(arn) = caller {
        event["requestContext"]["authorizer"] =
            json!({"iam": {"accessKey": "AKIA...", "accountId": "111122223333", "userArn": arn, "userId": "AROA:x"}});
    }
    event
}

/// The HTTP status and JSON body of a Function URL answer.
fn answered(answer: Value) -> (u64, Value) {
    let body = serde_json::from_str(answer["body"].as_str().expect("a body")).expect("a JSON body");
    (answer["statusCode"].as_u64().expect("a status"), body)
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
    Deployed { catalog, objects, metrics: Arc::new(MemoryMetrics::default()), env }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_scheduled_event_runs_a_run_and_its_figures_are_metrics() {
    let d = deployed(3).await;
    let (run, hold_fn, erase_fn) = (d.handler(Duty::Run), d.handler(Duty::Hold), d.handler(Duty::Erase));
    let due = parse_rfc3339(d.catalog.recordings()[0].retain_until.as_deref().unwrap()).unwrap();
    let hold = json!({"action": "hold", "recording": "calls/r-2", "reason": "case 7"});
    let (status, held) =
        answered(hold_fn.handle(&url(Some(ALICE), "POST", hold), due - DAY_BEFORE, "h").await.unwrap());
    assert_eq!((status, held["hold"]["by"].as_str()), (200, Some(ALICE)), "{held}");
    let scheduled = json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
    let answer = run.handle(&scheduled, due + 1, "req-1").await.unwrap();
    assert_eq!(answer["deleted"], json!(["calls/r-0", "calls/r-1"]), "{answer}");
    assert_eq!((answer["held"].as_u64(), answer["bytes_deleted"].as_u64()), (Some(1), Some(2000)));
    assert!(answer["reports"][0].as_str().unwrap().starts_with("s3://evidence/retention/"), "{answer}");
    assert_eq!(d.metrics.sum("RecordingsDeleted", &[]), 2.0);
    assert_eq!(d.metrics.sum("BytesDeleted", &[]), 2000.0);
    assert_eq!(d.metrics.sum("RecordingsHeld", &[]), 1.0);

    // Erase refused under the hold, with its code; released, allowed.
    let erase = json!({"action": "erase", "recording": "calls/r-2", "reason": "DSR-1", "request_id": "e-1"});
    let (status, refused) = answered(erase_fn.handle(&url(Some(BOB), "POST", erase), due + 2, "x").await.unwrap());
    assert_eq!((status, refused["code"].as_str()), (409, Some("legal_hold")), "{refused}");
    assert_eq!(d.metrics.sum("Refusals", &[("Code", "legal_hold")]), 1.0);
    assert_eq!(d.metrics.sum("Failures", &[]), 0.0, "a refusal is no failure of the deployment");
    let release = json!({"action": "release", "recording": "calls/r-2", "reason": "case closed"});
    let (_, released) = answered(hold_fn.handle(&url(Some(ALICE), "POST", release), due + 3, "r").await.unwrap());
    assert_eq!(
        (released["released"]["by"].as_str(), released["release"]["reason"].as_str()),
        (Some(ALICE), Some("case closed"))
    );
    let erase = json!({"action": "erase", "recording": "calls/r-2", "reason": "DSR-1", "request_id": "e-2"});
    let (status, erased) = answered(erase_fn.handle(&url(Some(BOB), "POST", erase), due + 4, "x").await.unwrap());
    assert_eq!((status, erased["erased"]["reason"].as_str()), (200, Some("erasure")), "{erased}");
    assert!(d.catalog.recordings().is_empty());
}

/// Retention by duty: each function does its own duty only, only through
/// its Function URL, and the evidence names the caller Lambda
/// authenticated, whatever the body says. (IAM keeps the operators apart:
/// tests/tests/iam.rs; this is the second lock.)
#[tokio::test(flavor = "multi_thread")]
async fn each_duty_does_only_its_own_and_the_evidence_names_the_authenticated_caller() {
    let d = deployed(3).await;
    let now = unix_now();
    let code = |answer: Value| answered(answer).1["code"].as_str().map(str::to_string);
    let (run, hold_fn, erase_fn, bypass_fn) =
        (d.handler(Duty::Run), d.handler(Duty::Hold), d.handler(Duty::Erase), d.handler(Duty::ErasePastGovernance));
    let hold = json!({"action": "hold", "recording": "calls/r-0", "reason": "case 9"});
    let erase =
        |id: &str, request: &str| json!({"action": "erase", "recording": id, "reason": "DSR-2", "request_id": request});

    // The hold operator's function holds and releases, never erases.
    let refused = hold_fn.handle(&url(Some(ALICE), "POST", erase("calls/r-1", "e-1")), now, "x").await.unwrap();
    assert_eq!(answered(refused.clone()).0, 403);
    assert_eq!(code(refused).as_deref(), Some("duty_not_granted"));
    // The erase operator's function erases, never holds and never past governance retention.
    let refused = erase_fn.handle(&url(Some(BOB), "POST", hold.clone()), now, "x").await.unwrap();
    assert_eq!(code(refused).as_deref(), Some("duty_not_granted"));
    let mut past = erase("calls/r-1", "e-2");
    past["bypass_governance_retention"] = json!(true);
    let refused = erase_fn.handle(&url(Some(BOB), "POST", past), now, "x").await.unwrap();
    assert_eq!(code(refused).as_deref(), Some("duty_not_granted"));
    let mut not_past = erase("calls/r-1", "e-3");
    not_past["bypass_governance_retention"] = json!(false);
    let refused = bypass_fn.handle(&url(Some(BOB), "POST", not_past), now, "x").await.unwrap();
    assert_eq!(code(refused).as_deref(), Some("duty_not_granted"));
    // The scheduled function runs the schedule only.
    for event in
        [url(Some(ALICE), "POST", hold.clone()), json!({"action": "hold", "recording": "calls/r-0", "reason": "r"})]
    {
        let err = run.handle(&event, now, "x").await.unwrap_err();
        assert_eq!(err.code, "duty_not_granted", "{err:?}");
    }
    // No caller AWS authenticated: a plain Invoke, or a URL without AWS_IAM.
    for duty in [&hold_fn, &erase_fn, &bypass_fn] {
        let err = duty.handle(&hold, now, "x").await.unwrap_err();
        assert_eq!(err.code, "caller_unauthenticated", "{err:?}");
        let (status, body) = answered(duty.handle(&url(None, "POST", hold.clone()), now, "x").await.unwrap());
        assert_eq!((status, body["code"].as_str()), (401, Some("caller_unauthenticated")));
        let (status, _) = answered(duty.handle(&url(Some(ALICE), "GET", hold.clone()), now, "x").await.unwrap());
        assert_eq!(status, 405);
    }
    assert_eq!(d.catalog.recordings().len(), 3, "nothing refused changed anything");
    assert!(d.catalog.recordings().iter().all(|e| e.hold.is_none()));

    // A caller field in the body changes nothing: the hold and the
    // erasure's evidence name the principal Lambda authenticated.
    let mut claimed = hold.clone();
    claimed["requested_by"] = json!("arn:aws:sts::111122223333:assumed-role/admin/mallory");
    let (status, held) = answered(hold_fn.handle(&url(Some(ALICE), "POST", claimed), now, "h").await.unwrap());
    assert_eq!((status, held["hold"]["by"].as_str()), (200, Some(ALICE)), "{held}");
    let entry = d.catalog.recordings().into_iter().find(|e| e.id.to_string() == "calls/r-0").unwrap();
    assert_eq!(entry.hold.unwrap().by, ALICE);
    let mut claimed = erase("calls/r-1", "e-4");
    claimed["requested_by"] = json!("someone-else");
    let (status, erased) = answered(erase_fn.handle(&url(Some(BOB), "POST", claimed), now, "e").await.unwrap());
    assert_eq!((status, erased["requested_by"].as_str()), (200, Some(BOB)), "{erased}");
    let reports = d.reports();
    let report = reports.iter().find(|r| r["run"] == "e-4").expect("the erasure's evidence");
    assert_eq!(report["details"]["requested_by"], BOB);
    assert_eq!(report["details"]["bypass_governance_retention"], false);
    let bypassed = bypass_fn.handle(&url(Some(BOB), "POST", erase("calls/r-2", "e-5")), now, "e").await.unwrap();
    assert_eq!(answered(bypassed).0, 200);
    let report = d.reports().into_iter().find(|r| r["run"] == "e-5").expect("the erasure's evidence");
    assert_eq!(report["details"]["bypass_governance_retention"], true);
}

const DAY_BEFORE: u64 = 86_400;

/// events/retention-erase.json is what the erase duty's function receives
/// from its URL: accepted as an erasure by that caller (the recording is
/// not in this catalog), refused by any other duty.
#[tokio::test(flavor = "multi_thread")]
async fn the_sample_url_event_is_an_erasure_by_its_authenticated_caller() {
    let d = deployed(1).await;
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/retention-erase.json");
    let event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let (status, body) = answered(d.handler(Duty::Erase).handle(&event, unix_now(), "x").await.unwrap());
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")), "{body}");
    let (status, body) = answered(d.handler(Duty::Hold).handle(&event, unix_now(), "x").await.unwrap());
    assert_eq!((status, body["code"].as_str()), (403, Some("duty_not_granted")), "{body}");
}

#[test]
fn what_a_caller_can_get_wrong_is_a_bad_request() {
    for (duty, bad) in [
        (Duty::Hold, json!({})),
        (Duty::Hold, json!({"action": "purge"})),
        (Duty::Hold, json!({"action": "hold", "recording": "calls/r-1"})),
        (Duty::Hold, json!({"action": "hold", "recording": "no-slash", "reason": "r"})),
        (Duty::Erase, json!({"action": "erase", "recording": "calls/r-1", "reason": "r"})),
        (
            Duty::Erase,
            json!({"action": "erase", "recording": "calls/r-1", "reason": "r", "request_id": "e", "bypass_governance_retention": "yes"}),
        ),
        (Duty::Hold, json!({"action": "release", "recording": "calls/r-1", "reason": " "})),
    ] {
        let err = Request::parse(&bad, duty, ALICE).unwrap_err();
        assert_eq!(err.code, "bad_request", "{bad}: {err:?}");
    }
    assert!(Request::is_run(&json!({"action": "run"})));
    assert!(!Request::is_run(&json!({"action": "hold"})));
}
