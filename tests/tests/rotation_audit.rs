//! rotation-audit end to end on the local AWS: keys that protect recordings
//! (encrypted by the real encrypt-recording handler) and keys configured for
//! new ones, audited by the real handler; the evidence reports in the
//! evidence bucket (Object Lock), the metrics from its EMF lines, the summary alert from a queue
//! subscribed to the topic; and `callvault audit` on the same deployment.

use std::collections::HashMap;
use std::sync::Arc;
use vault::config::FromSettings;

use e2e::guardian::{Inbox, Metrics};
use e2e::ingest::Stack;
use e2e::*;
use rotation_audit::{Config, Handler};
use serde_json::Value;
use vault::aws::AlertTopic;
use vault::aws::AwsKms;
use vault::aws::DynamoCatalog as Catalog;
use vault::aws::S3Objects;

struct Audit {
    handler: Handler<AwsKms, Catalog, S3Objects, AlertTopic>,
    metrics: Arc<Metrics>,
    inbox: Inbox,
    env: Vec<(&'static str, String)>,
}

async fn audit(stack: &Stack<'_>) -> Audit {
    let inbox = Inbox::new(stack, "audit").await;
    let mut env = stack.function_env("rotation-audit");
    e2e::guardian::set(&mut env, "ALERT_TOPIC_ARN", &inbox.topic_arn);
    let map: HashMap<&str, String> = env.iter().cloned().collect();
    let config = Config::from_lookup(|n| map.get(n).cloned()).expect("rotation-audit config");
    let sdk = stack.aws.config(REGION).await;
    let metrics = Arc::new(Metrics::default());
    let handler = Handler::new(
        config.clone(),
        AwsKms::new(&sdk),
        Catalog::from_config(&sdk, &config.catalog_table),
        S3Objects::from_config(&sdk),
        AlertTopic::from_config(&sdk, &config.alert_topic_arn),
        metrics.clone(),
    );
    Audit { handler, metrics, inbox, env }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

async fn reports(stack: &Stack<'_>) -> Vec<(String, Value)> {
    let listed = stack.s3.list_objects_v2().bucket(&stack.evidence).prefix("audit/rotation/").send().await.unwrap();
    let vault = stack.s3.list_objects_v2().bucket(&stack.vault).prefix("audit/").send().await.unwrap();
    assert!(vault.contents().is_empty(), "no evidence in the vault bucket");
    let mut out = Vec::new();
    for o in listed.contents() {
        let key = o.key().unwrap().to_string();
        // Locked by the bucket's default retention (HEAD says; the local AWS
        // answers GetObjectRetention with the object itself).
        let head = stack.s3.head_object().bucket(&stack.evidence).key(&key).send().await.unwrap();
        assert_eq!(head.object_lock_mode().map(|m| m.as_str()), Some("GOVERNANCE"));
        let until = head.object_lock_retain_until_date().expect("a retain-until date");
        assert!(until.secs() > (now_ms() / 1000) as i64 + 2000 * 86_400, "locked for the template's 2557 days");
        let body = stack.get(&stack.evidence, &key).await.unwrap();
        out.push((key, serde_json::from_slice(&body).unwrap()));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_writes_its_report_counts_its_metrics_and_alerts_on_non_compliant_keys() {
    let aws = LocalAws::shared();
    let rotated = aws.create_key("SYMMETRIC_DEFAULT", REGION).await;
    let disabled = aws.create_key("SYMMETRIC_DEFAULT", REGION).await;
    let kms = aws.kms().await;
    kms.enable_key_rotation().key_id(&rotated).send().await.unwrap();
    let stack = Stack::new(aws, &[("calls", &[&rotated]), ("chats", &[&disabled])]).await;
    stack.encrypt("calls/a.wav", &sample(1000, 1), "audio/wav").await;
    stack.encrypt("chats/b.txt", &sample(2000, 2), "text/plain").await;
    kms.disable_key().key_id(&disabled).send().await.unwrap();
    let audit = audit(&stack).await;

    let v = audit.handler.handle(now_ms(), "run-1").await.unwrap();
    assert_eq!(
        (v["keys"].as_u64(), v["non_compliant"].as_u64(), v["alerted"].as_bool()),
        (Some(2), Some(1), Some(true)),
        "{v}"
    );

    // The evidence report: every key, its facts, the verdict and why, the policy.
    let reports = reports(&stack).await;
    assert_eq!(reports.len(), 1);
    let (key, report) = &reports[0];
    let today = vault::time::rfc3339(now_ms() / 1000);
    assert!(key.starts_with(&format!("audit/rotation/{}/{}/{}/", &today[0..4], &today[5..7], &today[8..10])), "{key}");
    assert!(key.ends_with("-run-1.json"), "{key}");
    assert_eq!(report["policy"]["max_key_age_days"], 365);
    let entry = |arn: &str| report["keys"].as_array().unwrap().iter().find(|k| k["key_arn"] == arn).unwrap().clone();
    let ok = entry(&rotated);
    assert_eq!(ok["verdict"], "compliant", "{ok}");
    assert_eq!(ok["facts"]["rotation_enabled"], true);
    assert_eq!(ok["facts"]["recordings"], 1);
    assert_eq!(ok["facts"]["key_spec"], "SYMMETRIC_DEFAULT");
    assert_eq!(ok["facts"]["usable"], "yes");
    assert!(ok["facts"]["created"].as_str().unwrap().starts_with("20"));
    let bad = entry(&disabled);
    assert_eq!(bad["verdict"], "critical", "{bad}");
    let reasons = bad["reasons"].to_string();
    assert!(
        reasons.contains("protects 1 recordings and is Disabled") && reasons.contains("new recordings cannot use it"),
        "{reasons}"
    );

    // The metrics.
    let m = &audit.metrics;
    assert_eq!(m.values("KeyRotationCompliant", &[("Key", &rotated)]), [1.0]);
    assert_eq!(m.values("KeyRotationCompliant", &[("Key", &disabled)]), [0.0]);
    assert_eq!(m.values("DaysSinceRotation", &[("Key", &rotated)]), [0.0]);
    assert_eq!(m.values("NonCompliantKeys", &[]), [1.0]);

    // One summary alert, listing the failing key with its reason and remedy.
    let alerts = audit.inbox.alerts().await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(alerts[0].subject, "[CRITICAL] callvault rotation audit: 1 of 2 keys not compliant");
    assert!(alerts[0].body.contains(&disabled) && !alerts[0].body.contains(&rotated), "{}", alerts[0].body);
    assert!(alerts[0].body.contains(&format!("aws kms enable-key --key-id {disabled}")), "{}", alerts[0].body);
    assert_eq!(alerts[0].attributes["event"], "RotationAudit");

    // A second run the same day writes a second report, and once every key
    // complies no alert is sent.
    kms.enable_key().key_id(&disabled).send().await.unwrap();
    kms.enable_key_rotation().key_id(&disabled).send().await.unwrap();
    let v = audit.handler.handle(now_ms(), "run-2").await.unwrap();
    assert_eq!((v["non_compliant"].as_u64(), v["alerted"].as_bool()), (Some(0), Some(false)), "{v}");
    let reports = self::reports(&stack).await;
    assert_eq!(reports.len(), 2, "never overwritten: {:?}", reports.iter().map(|r| &r.0).collect::<Vec<_>>());
    assert!(audit.inbox.alerts().await.is_empty());

    // A report that exists is never replaced, even by a run of the same name.
    let at = now_ms();
    audit.handler.handle(at, "same").await.unwrap();
    let first = self::reports(&stack).await;
    let err = audit.handler.handle(at, "same").await.unwrap_err();
    assert!(err.message.contains("cannot write the report"), "{err}");
    assert_eq!(self::reports(&stack).await, first);
}

#[tokio::test(flavor = "multi_thread")]
async fn callvault_audit_prints_the_verdicts_and_exits_1_when_a_key_is_not_compliant() {
    let aws = LocalAws::shared();
    let key = aws.create_key("SYMMETRIC_DEFAULT", REGION).await;
    let rsa = aws.create_key("RSA_4096", REGION).await;
    let stack = Stack::new(aws, &[("calls", &[&key]), ("chats", &[&rsa])]).await;
    stack.encrypt("calls/a.wav", &sample(1000, 1), "audio/wav").await;
    let audit = audit(&stack).await;
    let cli = |args: &[&str]| {
        let mut cmd = std::process::Command::new(callvault_bin());
        cmd.arg("audit").args(args).envs(aws.env()).envs(audit.env.iter().map(|(k, v)| (*k, v.as_str())));
        cmd.output().expect("callvault audit")
    };

    // Rotation is off on a fresh symmetric key, but its material is new.
    let out = cli(&[]);
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    ok(&out);
    assert!(table.contains("compliant") && table.contains(&key) && table.contains(&rsa), "{table}");
    assert!(table.contains("2 keys, 0 not compliant"), "{table}");

    // The same audit with nothing but the stack's name: the catalog, the
    // keys and the org are read from its rotation-audit function.
    let by_stack = std::process::Command::new(callvault_bin())
        .args(["audit", "--stack", &stack.name])
        .envs(aws.env())
        .output()
        .expect("callvault audit --stack");
    ok(&by_stack);
    // The deployed function's settings: RecordingKeyArn for every type.
    let from_stack = String::from_utf8_lossy(&by_stack.stdout).into_owned();
    assert!(from_stack.contains(&key) && from_stack.contains("0 not compliant"), "{from_stack}");
    let nowhere = std::process::Command::new(callvault_bin())
        .args(["audit", "--stack", "no-such-stack"])
        .envs(aws.env())
        .output()
        .expect("callvault audit --stack");
    assert_eq!(nowhere.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&nowhere.stderr).starts_with("callvault: error[stack_not_found]: "));

    // A primary key in another region than the function: not compliant,
    // reported rather than refused.
    let west = aws.create_key("SYMMETRIC_DEFAULT", "us-west-2").await;
    let recording_keys = serde_json::json!({ "calls": [key], "chats": [rsa], "sms": [west] }).to_string();
    let out = cli(&["--recording-keys", &recording_keys]);
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{table}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(table.contains("lives in us-west-2, not us-east-1"), "{table}");

    // Disabled with a recording: critical, exit status 1, with the remedy.
    aws.kms().await.disable_key().key_id(&key).send().await.unwrap();
    let out = cli(&[]);
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(out.status.code(), Some(1), "{table}");
    assert!(
        table.contains("critical") && table.contains(&format!("fix: aws kms enable-key --key-id {key}")),
        "{table}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("error[non_compliant]"));
    let out = cli(&["--json", "--max-key-age-days", "30"]);
    assert_eq!(out.status.code(), Some(1));
    let json: Value = serde_json::from_slice(&out.stdout).expect("--json prints the report");
    assert_eq!(json["policy"]["max_key_age_days"], 30);
    assert_eq!(json["non_compliant_keys"], 1);
}
