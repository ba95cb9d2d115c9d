//! Retention, legal hold, erasure and key retirement on the local AWS,
//! through the real adapters (DynamoDB's `retention` index and
//! transactions, S3 versions and Object Lock), the `retention` function
//! under `cargo lambda`, and the `callvault` command.
//!
//! The local AWS runs no schedule and enforces Object Lock against the wall
//! clock: a run's "now" is injected where the policy's days must pass, and
//! Object Lock dates are set a few seconds ahead where S3 must enforce them.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_s3::types::{ObjectLockRetention, ObjectLockRetentionMode};
use e2e::guardian::{kms_event, Guardian};
use e2e::ingest::Stack;
use e2e::lambda::{FunctionUrls, Principal, Watch};
use e2e::*;
use serde_json::Value;
use vault::aws::{DynamoCatalog, S3Objects};
use vault::ports::catalog::KeyUsageCatalog;
use vault::recording::{LegalHold, RecordingId};
use vault::retention::{recount, EraseRequest, Retention, RetentionPolicy, RetentionSettings};
use vault::time::{parse_rfc3339, rfc3339, unix_now};

const DAY: u64 = 86_400;

type AwsRetention = Retention<DynamoCatalog, S3Objects, S3Objects>;

async fn retention(stack: &Stack<'_>, vault_bucket: &str, policy: &str, object_lock: bool) -> AwsRetention {
    let sdk = stack.aws.config(REGION).await;
    let settings = RetentionSettings {
        vault_bucket: vault_bucket.to_string(),
        evidence_bucket: stack.evidence.clone(),
        policy: RetentionPolicy::parse(policy).unwrap(),
        object_lock,
        batch: 100,
        lease_secs: 960,
    };
    Retention::new(
        DynamoCatalog::from_config(&sdk, &stack.table),
        S3Objects::from_config(&sdk),
        S3Objects::from_config(&sdk),
        settings,
    )
}

fn released() -> LegalHold {
    LegalHold { by: "legal@acme.example".into(), reason: "case closed".into(), at: vault::time::rfc3339(unix_now()) }
}

fn id(key: &str) -> RecordingId {
    vault::recording::route(key).unwrap()
}

/// The catalog's usage of every key equals a recount of its rows.
async fn usage_is_true(stack: &Stack<'_>) {
    let catalog = stack.catalog().await;
    let counted: BTreeMap<String, (u64, u64)> = recount(&catalog).await.unwrap();
    for u in catalog.key_usages().await.unwrap() {
        assert_eq!((u.recordings, u.bytes), counted.get(&u.key_arn).copied().unwrap_or_default(), "{}", u.key_arn);
    }
}

async fn evidence(stack: &Stack<'_>, prefix: &str) -> Vec<Value> {
    let out = stack.s3.list_objects_v2().bucket(&stack.evidence).prefix(prefix).send().await.unwrap();
    let mut reports = Vec::new();
    for o in out.contents() {
        let body = stack.get(&stack.evidence, o.key().unwrap()).await.unwrap();
        reports.push(serde_json::from_slice(&body).unwrap());
    }
    reports
}

#[tokio::test(flavor = "multi_thread")]
async fn due_recordings_leave_through_the_catalog_and_the_guardians_count_drops() {
    let aws = LocalAws::shared();
    let key = aws.create_key("SYMMETRIC_DEFAULT", REGION).await;
    let stack = Stack::new(aws, &[("calls", &[&key])]).await;
    // Written with no policy (RetentionDays defaults to {}): rows without
    // a retain_until, as before retention existed.
    for (n, name) in ["calls/r-1.wav", "calls/r-2.wav", "calls/r-3.wav"].iter().enumerate() {
        stack.encrypt(name, &sample(10_000, n as u8), "audio/wav").await;
    }
    assert_eq!(stack.entry("calls", "r-1.wav").await.unwrap().retain_until, None);
    let guardian = Guardian::new(&stack, false).await;
    let body = |alerts: Vec<e2e::guardian::Received>| {
        assert_eq!(alerts.len(), 1, "{alerts:#?}");
        alerts[0].body.clone()
    };
    guardian.invoke(&kms_event("kms-disable-key.json", &key, "ev-1")).await.unwrap();
    assert!(body(guardian.alerts().await).contains("3 recordings ("));
    aws.kms().await.enable_key().key_id(&key).send().await.unwrap();

    let service = retention(&stack, &stack.vault, r#"{"calls": 1}"#, false).await;
    let hold = LegalHold { by: "legal@acme.example".into(), reason: "case 7".into(), at: rfc3339(unix_now()) };
    service.hold(&id("calls/r-3.wav"), hold).await.unwrap();

    // The first run stamps the rows (a Scan, once per policy) and deletes nothing.
    let now = unix_now();
    let first = service.run("e2e-run-1", now).await.unwrap();
    assert_eq!((first.stamped, first.deleted.len(), first.stamping_done), (3, 0, true), "{first:?}");
    let due = parse_rfc3339(&stack.entry("calls", "r-1.wav").await.unwrap().retain_until.unwrap()).unwrap();
    let encrypted = parse_rfc3339(&stack.entry("calls", "r-1.wav").await.unwrap().encrypted_at).unwrap();
    assert_eq!(due, encrypted + DAY);

    // A day later: the two not held go, found through the retention index.
    let second = service.run("e2e-run-2", due + 60).await.unwrap();
    let mut deleted: Vec<String> = second.deleted.iter().map(|d| d.id.to_string()).collect();
    deleted.sort();
    assert_eq!(deleted, ["calls/r-1.wav", "calls/r-2.wav"], "{second:?}");
    assert_eq!(second.held, 1);
    for name in ["r-1.wav", "r-2.wav"] {
        assert!(stack.entry("calls", name).await.is_none());
        assert_eq!(stack.versions(&stack.vault, &format!("calls/{name}")).await, 0, "every version of {name} is gone");
    }
    assert_eq!(stack.usage(&key).await.unwrap().recordings, 1);
    usage_is_true(&stack).await;
    let reports = evidence(&stack, "retention/").await;
    assert_eq!(reports.len(), 2, "one report per run");
    let run2 = reports.iter().find(|r| r["run"] == "e2e-run-2").unwrap();
    assert_eq!(
        (run2["recordings_deleted"].as_u64(), run2["plaintext_bytes_deleted"].as_u64()),
        (Some(2), Some(20_000))
    );

    // The guardian reads the same catalog: its count dropped.
    guardian.invoke(&kms_event("kms-disable-key.json", &key, "ev-2")).await.unwrap();
    assert!(body(guardian.alerts().await).contains("1 recording ("));
    aws.kms().await.enable_key().key_id(&key).send().await.unwrap();

    // Released and erased: none left.
    service.release(&id("calls/r-3.wav"), released()).await.unwrap();
    let request = EraseRequest {
        id: id("calls/r-3.wav"),
        request: "e2e-erase-1".into(),
        reason: "DSR-42".into(),
        requested_by: "privacy@acme.example".into(),
        bypass_governance: false,
    };
    let erased = service.erase(&request, unix_now()).await.unwrap();
    assert!(erased.report.starts_with("erasure/"));
    assert_eq!(stack.usage(&key).await.unwrap().recordings, 0);
    usage_is_true(&stack).await;
    guardian.invoke(&kms_event("kms-disable-key.json", &key, "ev-3")).await.unwrap();
    assert!(body(guardian.alerts().await).contains("no recordings are protected by this key yet"));
}

async fn locked_bucket(stack: &Stack<'_>, name: &str) {
    stack.s3.create_bucket().bucket(name).object_lock_enabled_for_bucket(true).send().await.expect("CreateBucket");
}

fn ok(out: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    text
}

fn refused(out: &std::process::Output, code: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "refused with {code}: {}", String::from_utf8_lossy(&out.stdout));
    assert!(err.contains(&format!("error[{code}]")), "{code}: {err}");
    err
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_locked_vault_each_recording_is_born_locked_and_hold_and_erase_go_through_the_function() {
    let aws = LocalAws::shared();
    let key = aws.create_key("SYMMETRIC_DEFAULT", REGION).await;
    let mut stack = Stack::new(aws, &[("calls", &[&key])]).await;
    let vault = format!("{}-locked", stack.name);
    locked_bucket(&stack, &vault).await;
    stack.set_env("VAULT_BUCKET", &vault);
    stack.set_env("RETENTION_DAYS", r#"{"calls": 1}"#);
    stack.set_env("VAULT_OBJECT_LOCK", "GOVERNANCE");
    for name in ["calls/gov.wav", "calls/held.wav"] {
        stack.encrypt(name, &sample(5000, 1), "audio/wav").await;
    }
    stack.set_env("VAULT_OBJECT_LOCK", "COMPLIANCE");
    stack.encrypt("calls/compliance.wav", &sample(5000, 2), "audio/wav").await;

    // Born locked until the recording's own retain-until date.
    let entry = stack.entry("calls", "gov.wav").await.unwrap();
    let lock = stack
        .s3
        .get_object_retention()
        .bucket(&vault)
        .key("calls/gov.wav")
        .version_id(entry.vault_version.clone().unwrap())
        .send()
        .await
        .unwrap()
        .retention
        .unwrap();
    assert_eq!(lock.mode, Some(ObjectLockRetentionMode::Governance));
    let until = lock.retain_until_date.unwrap().secs() as u64;
    assert_eq!(Some(until), entry.retain_until.as_deref().and_then(parse_rfc3339), "the lock ends when retention does");

    // The run and the three duty functions under cargo lambda, the duties
    // behind IAM-authenticated URLs; the command signs as the operator.
    let mut env = aws.env();
    env.retain(|(k, _)| *k != "AWS_REGION");
    let with = |function: &str| {
        let mut e = env.clone();
        e.extend(stack.function_env(function));
        e
    };
    // cargo lambda invokes by binary: one watch per function.
    let watch = Watch::start("retention", &with("retention"));
    let duties = ["retention-hold", "retention-erase", "retention-erase-past-gov"];
    let watches: Vec<Watch> = duties.iter().map(|d| Watch::start("retention", &with(d))).collect();
    let legal = Principal::new("legal-hold", "alice");
    let privacy = Principal::new("privacy-erase", "bob");
    let stranger = Principal::new("nobody", "eve");
    let routes: Vec<(&str, &str, &Watch)> = duties.iter().zip(&watches).map(|(d, w)| (*d, "retention", w)).collect();
    let urls = FunctionUrls::start(&routes, REGION, &[&legal, &privacy]);
    let as_who = |who: &Principal, args: &[&str]| {
        let mut cmd = std::process::Command::new(callvault_bin());
        cmd.args(args).envs(aws.env()).envs(who.env());
        cmd.env("RETENTION_HOLD_URL", urls.url("retention-hold"));
        cmd.env("RETENTION_ERASE_URL", urls.url("retention-erase"));
        cmd.env("RETENTION_ERASE_PAST_GOVERNANCE_URL", urls.url("retention-erase-past-gov"));
        cmd.output().expect("callvault")
    };
    let callvault = |args: &[&str]| {
        let who = if args[0] == "hold" { &legal } else { &privacy };
        as_who(who, args)
    };

    // A legal hold: the catalog and S3's own hold on the version, by the
    // principal the URL authenticated.
    ok(&callvault(&["hold", "set", "calls/held.wav", "--reason", "case 7"]));
    let held = stack.entry("calls", "held.wav").await.unwrap();
    let hold = held.hold.clone().expect("held in the catalog");
    assert_eq!(hold.by, legal.arn, "who: the caller as AWS authenticated it");
    let s3_hold = stack
        .s3
        .get_object_legal_hold()
        .bucket(&vault)
        .key("calls/held.wav")
        .version_id(held.vault_version.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(s3_hold.legal_hold.and_then(|h| h.status).map(|s| s.as_str().to_string()).as_deref(), Some("ON"));

    // Retention by duty: a request to another duty's URL is refused by the
    // function (IAM refuses it first in AWS: tests/tests/iam.rs); an
    // unsigned caller or one AWS does not know never reaches a function.
    let wrong =
        as_who(&legal, &["hold", "set", "calls/gov.wav", "--reason", "r", "--url", &urls.url("retention-erase")]);
    refused(&wrong, "duty_not_granted");
    let wrong = as_who(&privacy, &["erase", "calls/gov.wav", "--reason", "r", "--url", &urls.url("retention-hold")]);
    refused(&wrong, "duty_not_granted");
    refused(&as_who(&stranger, &["hold", "set", "calls/gov.wav", "--reason", "r"]), "access_denied");
    let plain = watches[0].invoke("retention", root().join("events/retention-schedule.json").to_str().unwrap());
    let said = format!("{}{}", String::from_utf8_lossy(&plain.stdout), String::from_utf8_lossy(&plain.stderr));
    assert!(!plain.status.success() && said.contains("caller_unauthenticated"), "a plain Invoke of a duty: {said}");
    assert!(stack.entry("calls", "gov.wav").await.unwrap().hold.is_none(), "nothing refused changed anything");

    // Refusals, each with its code, nothing changed.
    refused(&callvault(&["erase", "calls/held.wav", "--reason", "DSR-1"]), "legal_hold");
    refused(&callvault(&["erase", "calls/gov.wav", "--reason", "DSR-2"]), "governance_retention");
    refused(
        &callvault(&["erase", "calls/compliance.wav", "--reason", "DSR-3", "--bypass-governance-retention"]),
        "compliance_retention",
    );
    refused(&callvault(&["erase", "calls/nobody.wav", "--reason", "DSR-4"]), "not_found");
    for name in ["held.wav", "gov.wav", "compliance.wav"] {
        assert!(stack.entry("calls", name).await.is_some(), "{name} is kept");
        assert_eq!(stack.versions(&vault, &format!("calls/{name}")).await, 1);
    }
    assert_eq!(stack.usage(&key).await.unwrap().recordings, 3);

    // Governance retention bypassed when told; the evidence says so and who asked.
    let out = ok(&callvault(&["erase", "calls/gov.wav", "--reason", "DSR-2", "--bypass-governance-retention"]));
    assert!(out.contains("erased"), "{out}");
    assert!(stack.entry("calls", "gov.wav").await.is_none());
    assert_eq!(stack.versions(&vault, "calls/gov.wav").await, 0);
    let reports = evidence(&stack, "erasure/").await;
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["details"]["bypass_governance_retention"], true);
    assert_eq!(reports[0]["details"]["requested_by"], privacy.arn.as_str());
    assert_eq!(reports[0]["details"]["reason"], "DSR-2");

    // The compliance date passes (the local AWS lets a test shorten it,
    // AWS never does): then the erasure goes through.
    let version = stack.entry("calls", "compliance.wav").await.unwrap().vault_version.unwrap();
    let soon = unix_now() + 10;
    stack
        .s3
        .put_object_retention()
        .bucket(&vault)
        .key("calls/compliance.wav")
        .version_id(&version)
        .retention(
            ObjectLockRetention::builder()
                .mode(ObjectLockRetentionMode::Compliance)
                .retain_until_date(aws_sdk_s3::primitives::DateTime::from_secs(soon as i64))
                .build(),
        )
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
        .send()
        .await
        .unwrap();
    refused(&callvault(&["erase", "calls/compliance.wav", "--reason", "DSR-3"]), "compliance_retention");
    tokio::time::sleep(Duration::from_secs(soon + 2 - unix_now())).await;
    ok(&callvault(&["erase", "calls/compliance.wav", "--reason", "DSR-3"]));

    // Released, the held one's S3 hold is off too (its governance date still holds it).
    ok(&callvault(&["hold", "release", "calls/held.wav", "--reason", "case closed"]));
    let released = stack.entry("calls", "held.wav").await.unwrap();
    assert!(released.hold.is_none());
    let record = released.released_hold.expect("the release is kept with the hold it released");
    assert_eq!((record.hold.reason.as_str(), record.release.reason.as_str()), ("case 7", "case closed"));
    assert_eq!(record.release.by, legal.arn, "who released it");
    refused(&callvault(&["erase", "calls/held.wav", "--reason", "DSR-1"]), "governance_retention");
    assert_eq!(stack.usage(&key).await.unwrap().recordings, 1);
    usage_is_true(&stack).await;

    // An S3 legal hold set outside callvault on a version with no retention
    // date: erasure sees it and refuses before marking anything; a release
    // leaves it alone (the catalog holds nothing).
    stack.set_env("RETENTION_DAYS", "{}");
    stack.encrypt("calls/oob.wav", &sample(2000, 5), "audio/wav").await;
    let oob = stack.entry("calls", "oob.wav").await.unwrap();
    assert_eq!(oob.retain_until, None, "no policy for it now: no lock date");
    stack
        .s3
        .put_object_legal_hold()
        .bucket(&vault)
        .key("calls/oob.wav")
        .version_id(oob.vault_version.clone().unwrap())
        .legal_hold(
            aws_sdk_s3::types::ObjectLockLegalHold::builder()
                .status(aws_sdk_s3::types::ObjectLockLegalHoldStatus::On)
                .build(),
        )
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
        .send()
        .await
        .unwrap();
    refused(&callvault(&["erase", "calls/oob.wav", "--reason", "DSR-5"]), "legal_hold");
    assert!(stack.entry("calls", "oob.wav").await.unwrap().deleting.is_none(), "nothing marked");
    refused(&callvault(&["hold", "release", "calls/oob.wav", "--reason", "not ours"]), "not_held");
    assert_eq!(stack.versions(&vault, "calls/oob.wav").await, 1);

    // The schedule's event runs a run through the function (nothing due now).
    let v = watch.invoke("retention", root().join("events/retention-schedule.json").to_str().unwrap());
    let text = String::from_utf8_lossy(&v.stdout);
    assert!(v.status.success(), "{text}\n{}", watch.log_text());
    let answer: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(answer["deleted"], serde_json::json!([]), "{answer}");
    let report = format!("s3://{}/retention/", stack.evidence);
    assert!(answer["reports"][0].as_str().is_some_and(|r| r.starts_with(&report)), "{answer}");
    let log = watch.wait_for_log(&["\"RecordingsDeleted\":0.0"], Duration::from_secs(10));
    assert!(log.contains("\"RecordingsHeld\":0.0"), "{log}");
}

fn keys_cli(stack: &Stack<'_>, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(callvault_bin());
    cmd.arg("keys").args(args).args(["--stack", &stack.name, "--catalog-table", &stack.table]).envs(stack.aws.env());
    cmd.output().expect("callvault keys")
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_retire_refuses_while_anything_depends_on_the_key_and_schedules_deletion_once_nothing_does() {
    let aws = LocalAws::shared();
    let (old, new) =
        (aws.create_key("SYMMETRIC_DEFAULT", REGION).await, aws.create_key("SYMMETRIC_DEFAULT", REGION).await);
    let stack = Stack::new(aws, &[("calls", &[&old])]).await;
    for n in 0..2u8 {
        stack.encrypt(&format!("calls/k-{n}.wav"), &sample(3000, n), "audio/wav").await;
    }

    // Listed, with what it protects and where the deployment uses it.
    let listed: Vec<Value> = serde_json::from_str(&ok(&keys_cli(&stack, &["--json"]))).unwrap();
    let row = listed.iter().find(|k| k["key_arn"] == old.as_str()).expect("the old key is listed");
    assert_eq!((row["recordings"].as_u64(), row["bytes"].as_u64()), (Some(2), Some(6000)), "{row}");
    assert_eq!(row["configured_types"], serde_json::json!(["calls"]));
    assert_eq!(row["state"], "Enabled");
    assert!(format!("{}", row["configured_in"]).contains(&format!("{}-encrypt-recording RECORDING_KEYS", stack.name)));
    let table = ok(&keys_cli(&stack, &[]));
    assert!(table.contains(&old) && table.contains("calls"), "{table}");

    // Refused while it protects recordings, naming the numbers and the fix.
    let err = refused(&keys_cli(&stack, &["retire", &old]), "key_protects_recordings");
    assert!(err.contains("2 recordings") && err.contains(&format!("callvault rekey --from-key {old}")), "{err}");

    // Moved off it: still refused while the deployment is configured with it.
    let report = std::env::temp_dir().join(format!("{}-rekey.csv", stack.name));
    let mut rekey = std::process::Command::new(callvault_bin());
    rekey
        .args(["rekey", "--from-key", &old, "--to-key", &new, "--local", "--report", report.to_str().unwrap()])
        .args(["--catalog-table", &stack.table, "--vault-bucket", &stack.vault, "--org", e2e::ingest::ORG])
        .args(["--recording-keys", &stack.recording_keys])
        .envs(aws.env());
    ok(&rekey.output().unwrap());
    let _ = std::fs::remove_file(&report);
    assert_eq!(stack.usage(&old).await.map_or(0, |u| u.recordings), 0);
    let err = refused(&keys_cli(&stack, &["retire", &old]), "key_configured");
    assert!(err.contains("RecordingKeyArn") && err.contains("encrypt-recording"), "{err}");

    // The stack updated onto the new key (what `sam deploy` with the new
    // RecordingKeyArn does to every function's settings): retired.
    let lambda = aws_sdk_lambda::Client::new(&aws.config(REGION).await);
    let functions = lambda.list_functions().send().await.unwrap();
    for f in functions.functions().iter().filter(|f| f.function_name().unwrap_or_default().starts_with(&stack.name)) {
        let name = f.function_name().unwrap();
        let mut vars = f.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
        if let Some(keys) = vars.get_mut("RECORDING_KEYS") {
            *keys = keys.replace(&old, &new);
            let env = aws_sdk_lambda::types::Environment::builder().set_variables(Some(vars)).build();
            lambda.update_function_configuration().function_name(name).environment(env).send().await.unwrap();
        }
    }
    // Still named as a key older recordings are under (OlderKeyArns, the
    // guardian's OLDER_KEY_ARNS, step 1 of a retirement): refused too.
    let guardian = format!("{}-key-guardian", stack.name);
    let set_older = |value: String| {
        let lambda = lambda.clone();
        let guardian = guardian.clone();
        async move {
            let f = lambda.get_function_configuration().function_name(&guardian).send().await.unwrap();
            let mut vars = f.environment().and_then(|e| e.variables()).cloned().unwrap_or_default();
            vars.insert("OLDER_KEY_ARNS".into(), value);
            let env = aws_sdk_lambda::types::Environment::builder().set_variables(Some(vars)).build();
            lambda.update_function_configuration().function_name(&guardian).environment(env).send().await.unwrap();
        }
    };
    set_older(old.clone()).await;
    let err = refused(&keys_cli(&stack, &["retire", &old]), "key_configured");
    assert!(err.contains("OLDER_KEY_ARNS") && err.contains("OlderKeyArns"), "{err}");
    set_older(String::new()).await;
    let out = ok(&keys_cli(&stack, &["retire", &old]));
    assert!(out.contains("scheduled for deletion") && out.contains("30-day"), "{out}");
    let meta = aws.kms().await.describe_key().key_id(&old).send().await.unwrap().key_metadata.unwrap();
    assert_eq!(meta.key_state.unwrap().as_str(), "PendingDeletion");
    let window = meta.deletion_date.unwrap().secs() as u64 - unix_now();
    assert!((29 * DAY..=30 * DAY + 60).contains(&window), "a 30-day window, not {window} s");
    let listed: Vec<Value> = serde_json::from_str(&ok(&keys_cli(&stack, &["--json"]))).unwrap();
    let new_row = listed.iter().find(|k| k["key_arn"] == new.as_str()).unwrap();
    assert_eq!(new_row["recordings"].as_u64(), Some(2));
    let old_row = listed.iter().find(|k| k["key_arn"] == old.as_str()).unwrap();
    assert_eq!((old_row["recordings"].as_u64(), old_row["state"].as_str()), (Some(0), Some("PendingDeletion")));
}

/// Finding 2 of the safety review, end to end: a re-key (`callvault rekey
/// --local`, the function's own handler) whose every tag call fails after
/// its catalog commit, through every retry, leaves the new version
/// `pending` and key A's usage at 0; the row's mark makes `keys retire A`
/// refuse; the tag sweep (the rekey binary under `cargo lambda`, with the
/// tag-sweep function's settings and its schedule event) finishes the tag;
/// then `keys retire` goes past the marks (to the next check: the stack
/// is still configured with A).
#[tokio::test(flavor = "multi_thread")]
async fn tags_that_fail_after_a_rekeys_commit_hold_key_retirement_until_the_sweep_finishes_them() {
    let aws = LocalAws::shared();
    let (a, b) = (aws.create_key("SYMMETRIC_DEFAULT", REGION).await, aws.create_key("SYMMETRIC_DEFAULT", REGION).await);
    let stack = Stack::new(aws, &[("calls", &[&a])]).await;
    let data = sample(50_000, 31);
    stack.encrypt("calls/sweep-1.wav", &data, "audio/wav").await;
    let before = stack.entry("calls", "sweep-1.wav").await.unwrap();
    assert!(before.tags_due.is_none(), "ingest confirmed its tag");

    // Every tag change on this vault fails, S3 throttling, for as long as
    // the re-key runs (the task's retries included).
    aws.inject_fault(serde_json::json!({
        "method": "PUT", "path_contains": format!("/{}/", stack.vault), "query_contains": "tagging",
        "status": 503, "code": "SlowDown", "message": "Please reduce your request rate."
    }));
    let report = std::env::temp_dir().join(format!("{}-sweep-rekey.csv", stack.name));
    let mut rekey = std::process::Command::new(callvault_bin());
    rekey
        .args(["rekey", "--from-key", &a, "--to-key", &b, "--local", "--report", report.to_str().unwrap()])
        .args(["--catalog-table", &stack.table, "--vault-bucket", &stack.vault, "--org", e2e::ingest::ORG])
        .args(["--recording-keys", &stack.recording_keys])
        .envs(aws.env());
    let out = rekey.output().unwrap();
    aws.clear_faults();
    let line = std::fs::read_to_string(&report).unwrap_or_default();
    let _ = std::fs::remove_file(&report);
    assert!(!out.status.success(), "the task failed: {}", String::from_utf8_lossy(&out.stdout));
    assert!(line.contains("SlowDown") || line.contains("s3_"), "{line}");

    // The catalog names the new version under B; S3 still has it pending.
    let entry = stack.entry("calls", "sweep-1.wav").await.unwrap();
    assert_eq!(entry.wrapping_keys, std::slice::from_ref(&b));
    assert_ne!(entry.vault_version, before.vault_version);
    let state = |version: Option<String>| {
        let s3 = stack.s3.clone();
        let vault = stack.vault.clone();
        async move {
            let tags = s3
                .get_object_tagging()
                .bucket(vault)
                .key("calls/sweep-1.wav")
                .set_version_id(version)
                .send()
                .await
                .unwrap();
            tags.tag_set().iter().find(|t| t.key() == "callvault-state").map(|t| t.value().to_string())
        }
    };
    assert_eq!(state(entry.vault_version.clone()).await.as_deref(), Some("pending"));
    let mark = entry.tags_due.clone().expect("marked in the catalog commit");
    assert_eq!(mark.from_keys, std::slice::from_ref(&a));
    assert_eq!(stack.usage(&a).await.map_or(0, |u| u.recordings), 0, "A protects nothing, by its usage");

    // Retirement refuses, naming the recording and the way out.
    let err = refused(&keys_cli(&stack, &["retire", &a]), "key_tags_unfinished");
    assert!(err.contains("calls/sweep-1.wav") && err.contains("tag-sweep"), "{err}");

    // The sweep under cargo lambda, with the tag-sweep function's settings.
    let mut env = aws.env();
    env.retain(|(k, _)| *k != "AWS_REGION");
    env.extend(stack.function_env("tag-sweep"));
    let watch = Watch::start("rekey", &env);
    let event = root().join("events/tag-sweep-schedule.json");
    // Within the hour the mark belongs to a writer that may still be at it.
    let young: Value = serde_json::from_slice(&watch.invoke("rekey", event.to_str().unwrap()).stdout).unwrap();
    assert_eq!((young["due"].as_u64(), young["young"].as_u64()), (Some(0), Some(1)), "{young}");
    // An hour later (the mark's time set back, as the clock cannot be).
    stack
        .ddb
        .update_item()
        .table_name(&stack.table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("recording#calls/sweep-1.wav".into()))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("recording".into()))
        .update_expression("SET tags_due = :then")
        .expression_attribute_values(
            ":then",
            // The index's key: `<since>#<message id>`.
            aws_sdk_dynamodb::types::AttributeValue::S(format!(
                "{}#{}",
                rfc3339(unix_now() - 2 * 3600),
                entry.message_id
            )),
        )
        .send()
        .await
        .unwrap();
    let out = watch.invoke("rekey", event.to_str().unwrap());
    let swept: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", watch.log_text()));
    assert_eq!((swept["due"].as_u64(), swept["failed"].as_array().map(Vec::len)), (Some(1), Some(0)), "{swept}");
    let finished = format!("calls/sweep-1.wav {}", entry.vault_version.clone().unwrap());
    assert_eq!(swept["finished"], serde_json::json!([finished]));
    watch.wait_for_log(&["\"TagsLeftUnfinished\":1.0", "tags_finished_by_sweep"], Duration::from_secs(10));

    assert_eq!(state(entry.vault_version.clone()).await.as_deref(), Some("catalogued"));
    let mark = stack.entry("calls", "sweep-1.wav").await.unwrap().tags_due.expect("the keys it left");
    assert_eq!((mark.since, mark.from_keys), (None, vec![a.clone()]), "out of the sweep's index");
    // Past the marks now: the next check speaks (the stack still names A).
    refused(&keys_cli(&stack, &["retire", &a]), "key_configured");
    let again: Value = serde_json::from_slice(&watch.invoke("rekey", event.to_str().unwrap()).stdout).unwrap();
    assert_eq!(again["due"].as_u64(), Some(0), "{again}");
}
