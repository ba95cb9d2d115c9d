//! encrypt-recording through the real Lambda runtime API: `cargo lambda
//! watch` runs the function binary, `cargo lambda invoke` sends it the sample
//! events of `events/`, rewritten to name the objects this test uploads.

use e2e::ingest::Stack;
use e2e::lambda::Watch;
use e2e::*;
use serde_json::Value;

/// `events/<name>` with the bucket, and the object's ETag, size and
/// version, of what was just uploaded.
fn event_file(dir: &TempDir, name: &str, bucket: &str, object: Option<(&str, &str, usize)>) -> String {
    let mut event: Value = serde_json::from_slice(&std::fs::read(root().join("events").join(name)).unwrap()).unwrap();
    let s3 = &mut event["Records"][0]["s3"];
    s3["bucket"]["name"] = bucket.into();
    s3["bucket"]["arn"] = format!("arn:aws:s3:::{bucket}").into();
    if let Some((etag, version, size)) = object {
        s3["object"]["eTag"] = etag.into();
        s3["object"]["versionId"] = version.into();
        s3["object"]["size"] = size.into();
    }
    let path = dir.path(name);
    std::fs::write(&path, event.to_string()).unwrap();
    path
}

fn answer(out: &std::process::Output, watch: &Watch) -> Value {
    assert!(
        out.status.success(),
        "cargo lambda invoke failed ({}):\n{}\n{}\n--- watch log ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        watch.log_text()
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sample_events_run_through_cargo_lambda_watch_and_invoke() {
    let aws = LocalAws::shared();
    let key = aws.create_key("SYMMETRIC_DEFAULT", REGION).await;
    let stack = Stack::new(aws, &[("calls", &[&key])]).await;
    let mut env = aws.env();
    env.retain(|(k, _)| *k != "AWS_REGION");
    env.extend(stack.env());
    let watch = Watch::start("encrypt-recording", &env);
    let dir = TempDir::new("watch");

    // The happy path, and a key that needs S3's decoding.
    for (file, object_key) in [
        ("s3-object-created.json", "calls/2026-11-23-0001.wav"),
        ("s3-object-created-spaces.json", "calls/Agent Smith+Jones 100% ünïcode.wav"),
    ] {
        let data = sample(200_000, 11);
        let (etag, version) = stack.upload(object_key, &data, "audio/wav").await;
        let file = event_file(&dir, file, &stack.ingest, Some((&etag, &version, data.len())));
        let v = answer(&watch.invoke("encrypt-recording", &file), &watch);
        assert_eq!(v["recordings"][0]["outcome"], "encrypted", "{v}");
        assert_eq!(v["recordings"][0]["key"], object_key);
        let id = object_key.strip_prefix("calls/").unwrap();
        assert_eq!(stack.entry("calls", id).await.expect("catalogued").plaintext_size, data.len() as u64);
        assert_eq!(stack.versions(&stack.ingest, object_key).await, 0, "plaintext gone");
        let ct = dir.path("vault.esdk");
        std::fs::write(&ct, stack.get(&stack.vault, object_key).await.expect("vault object")).unwrap();
        let pt = dir.path("plain");
        ok(&aws.callvault(&[
            "decrypt",
            "--account",
            ACCOUNT,
            "--context",
            "org=acme",
            "--context",
            &format!("recording_id={id}"),
            &ct,
            &pt,
        ]));
        assert_eq!(std::fs::read(&pt).unwrap(), data);
    }

    // An unknown type: dead-lettered (the invocation itself succeeds, so
    // Lambda does not retry what no retry can fix), the plaintext kept.
    let (etag, version) = stack.upload("voicemail/v-1.wav", b"beep", "audio/wav").await;
    let file = event_file(&dir, "s3-unknown-type.json", &stack.ingest, Some((&etag, &version, 4)));
    let v = answer(&watch.invoke("encrypt-recording", &file), &watch);
    assert_eq!(
        (v["recordings"][0]["outcome"].as_str(), v["recordings"][0]["code"].as_str()),
        (Some("failed"), Some("unknown_type"))
    );
    assert_eq!(stack.status_tag("voicemail/v-1.wav").await.as_deref(), Some("unknown_type"));

    let file = event_file(&dir, "s3-folder-marker.json", &stack.ingest, None);
    let v = answer(&watch.invoke("encrypt-recording", &file), &watch);
    assert_eq!(v["recordings"][0]["outcome"], "ignored", "{v}");

    let file = event_file(&dir, "s3-malformed.json", &stack.ingest, None);
    let v = answer(&watch.invoke("encrypt-recording", &file), &watch);
    assert_eq!(v["recordings"][0]["code"], "bad_event", "{v}");

    let codes: Vec<String> =
        stack.dead_letters().await.iter().map(|l| l["code"].as_str().unwrap().to_string()).collect();
    assert_eq!(codes.len(), 2, "{codes:?}");
    // The function logged through the runtime, with its codes.
    let log = watch.log_text();
    assert!(log.contains("unknown_type") && log.contains("RecordingsEncrypted"), "{log}");
}

#[test]
fn a_missing_setting_stops_the_function_at_start_with_its_name() {
    let aws = LocalAws::shared();
    let mut env = aws.env();
    env.push(("CALLVAULT_ORG", "acme".into()));
    let watch = Watch::start("encrypt-recording", &env);
    let dir = TempDir::new("watch-config");
    let file = event_file(&dir, "s3-folder-marker.json", "callvault-local-ingest", None);
    let mut invoke = watch.invoke_in_background("encrypt-recording", &file);
    let log = watch.wait_for_log(&["config_invalid", "INGEST_BUCKET", "missing"], std::time::Duration::from_secs(60));
    let _ = invoke.kill();
    let _ = invoke.wait();
    assert!(log.contains("config_invalid") && log.contains("INGEST_BUCKET") && log.contains("missing"), "{log}");
    assert!(!log.contains("ignored"), "a function without its settings must not handle events: {log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn redrive_resubmits_dead_letters_and_tagged_recordings_once_the_cause_is_fixed() {
    let aws = LocalAws::shared();
    let key = aws.create_key("SYMMETRIC_DEFAULT", REGION).await;
    let kms = aws.kms().await;
    let stack = Stack::new(aws, &[("calls", &[&key])]).await;
    let mut env = aws.env();
    env.retain(|(k, _)| *k != "AWS_REGION");
    env.extend(stack.env());
    let watch = Watch::start("encrypt-recording", &env);
    let dir = TempDir::new("redrive");
    let redrive = |args: &[&str]| {
        let mut cmd = std::process::Command::new(callvault_bin());
        cmd.arg("redrive").args(["--function", "encrypt-recording"]).args(args).envs(aws.env());
        // Lambda's Invoke API is cargo lambda watch's; the rest the local AWS.
        cmd.env("AWS_ENDPOINT_URL_LAMBDA", format!("http://127.0.0.1:{}", watch.port));
        cmd.output().expect("callvault redrive")
    };

    // The key is disabled while two recordings arrive: both are kept,
    // tagged and dead-lettered.
    kms.disable_key().key_id(&key).send().await.unwrap();
    for id in ["k-1", "k-2"] {
        let data = sample(10_000, 12);
        let (etag, version) = stack.upload(&format!("calls/{id}"), &data, "audio/wav").await;
        let mut event = stack.event(&format!("calls/{id}"), &etag, &version, data.len());
        event["Records"][0]["s3"]["bucket"]["name"] = stack.ingest.clone().into();
        let file = dir.path(&format!("{id}.json"));
        std::fs::write(&file, event.to_string()).unwrap();
        let v = answer(&watch.invoke("encrypt-recording", &file), &watch);
        assert_eq!(v["recordings"][0]["code"], "key_disabled", "{v}");
    }
    // Still disabled: redrive reports, exits 1, and the queue still holds
    // one letter per recording (the function's new ones replace the old).
    let out = redrive(&["--queue", &stack.queue_url]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("failing") && text.contains("key_disabled") && text.contains("0 redriven, 2 still failing"),
        "{text}"
    );

    // The key administrator re-enables it; the dead letters go through,
    // and are gone from the queue.
    kms.enable_key().key_id(&key).send().await.unwrap();
    let dry = redrive(&["--queue", &stack.queue_url, "--dry-run"]);
    ok(&dry);
    assert!(String::from_utf8_lossy(&dry.stdout).contains("would redrive"), "{}", String::from_utf8_lossy(&dry.stdout));
    assert!(stack.entry("calls", "k-1").await.is_none(), "a dry run changes nothing");
    let out = redrive(&["--queue", &stack.queue_url]);
    ok(&out);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("2 redriven, 0 still failing, 0 gone"), "{text}");
    for id in ["k-1", "k-2"] {
        assert!(stack.entry("calls", id).await.is_some(), "{id} catalogued");
        assert_eq!(stack.versions(&stack.ingest, &format!("calls/{id}")).await, 0);
    }
    assert!(stack.dead_letters().await.is_empty(), "redriven dead letters are deleted");

    // Tagged objects, found by listing the ingest bucket.
    kms.disable_key().key_id(&key).send().await.unwrap();
    let (etag, version) = stack.upload("calls/k-3", b"third", "audio/wav").await;
    let file = dir.path("k-3.json");
    std::fs::write(&file, stack.event("calls/k-3", &etag, &version, 5).to_string()).unwrap();
    answer(&watch.invoke("encrypt-recording", &file), &watch);
    assert_eq!(stack.status_tag("calls/k-3").await.as_deref(), Some("key_disabled"));
    kms.enable_key().key_id(&key).send().await.unwrap();
    let out = redrive(&["--bucket", &stack.ingest, "--prefix", "calls/"]);
    ok(&out);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("redriven s3://"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(stack.entry("calls", "k-3").await.is_some());
}

/// `curl` a URL with extra headers: (status, headers lower-cased, body, curl's exit code).
fn curl(url: &str, method: &str, headers: &[&str], dir: &TempDir) -> (u16, String, Vec<u8>, i32) {
    let (head, body) = (dir.path("headers"), dir.path("body"));
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-sS", "--max-time", "60", "-D", &head, "-o", &body]);
    match method {
        "HEAD" => cmd.arg("--head"),
        _ => cmd.args(["-X", method]),
    };
    for h in headers {
        cmd.args(["-H", h]);
    }
    let out = cmd.arg(url).output().expect("curl");
    let head = std::fs::read_to_string(&head).unwrap_or_default().to_ascii_lowercase();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, head, std::fs::read(&body).unwrap_or_default(), out.status.code().unwrap_or(-1))
}

#[tokio::test(flavor = "multi_thread")]
async fn playback_streams_recordings_and_ranges_over_http_through_cargo_lambda_watch() {
    let aws = LocalAws::shared();
    let key = aws.create_key("SYMMETRIC_DEFAULT", REGION).await;
    let stack = Stack::new(aws, &[("calls", &[&key])]).await;
    let data = sample(300_000, 21);
    stack.encrypt("calls/2026-11-23-0001.wav", &data, "audio/wav").await;
    // A 3 MiB recording whose frame 31 of 48 is tampered with: the first
    // 1 MiB batch streams, the second fails.
    let big = sample(3 * 1024 * 1024, 22);
    stack.encrypt("calls/tampered.wav", &big, "audio/wav").await;
    let entry = stack.entry("calls", "tampered.wav").await.unwrap();
    let mut vault = stack.get(&stack.vault, &entry.vault_key).await.unwrap();
    let at = vault.len() - 18 * (65536 + 32) - 40;
    vault[at] ^= 1;
    let out = stack
        .s3
        .put_object()
        .bucket(&stack.vault)
        .key(&entry.vault_key)
        .body(aws_sdk_s3::primitives::ByteStream::from(vault))
        .send()
        .await
        .unwrap();
    stack
        .ddb
        .update_item()
        .table_name(&stack.table)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("recording#calls/tampered.wav".into()))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("recording".into()))
        .update_expression("SET vault_version = :v")
        .expression_attribute_values(":v", aws_sdk_dynamodb::types::AttributeValue::S(out.version_id.unwrap()))
        .send()
        .await
        .unwrap();
    // The identity provider: the local issuer; a tool's client-credentials
    // token (group supervisors) on every request.
    let issuer = e2e::oidc::LocalIssuer::start(&[]);
    let mut env = aws.env();
    env.retain(|(k, _)| *k != "AWS_REGION");
    env.extend(e2e::playback::env(&stack));
    env.retain(|(k, _)| !k.starts_with("OIDC_"));
    env.push(("OIDC_ISSUER", issuer.url.clone()));
    env.push(("OIDC_CLIENT_ID", e2e::oidc::PLAYER_CLIENT.into()));
    env.push(("OIDC_AUDIENCES", e2e::oidc::TOOLS_CLIENT.into()));
    let watch = Watch::start("playback", &env);
    let dir = TempDir::new("watch-playback");
    let url = format!("http://127.0.0.1:{}/lambda-url/playback/recordings/calls/2026-11-23-0001.wav", watch.port);
    let token = issuer.client_credentials(e2e::oidc::TOOLS_CLIENT, e2e::oidc::TOOLS_SECRET);
    let bearer = format!("X-Callvault-Authorization: Bearer {token}");
    let curl = |url: &str, method: &str, headers: &[&str], dir: &TempDir| {
        let mut with_token = headers.to_vec();
        with_token.push(&bearer);
        curl(url, method, &with_token, dir)
    };
    // Without a token: nobody, whatever the IAM request context says.
    let (status, head, body, _) = self::curl(&url, "GET", &[], &dir);
    assert_eq!(status, 401, "{head}");
    assert!(String::from_utf8_lossy(&body).contains("not_signed_in"));

    // The sample event's Range, across the first frame boundary.
    let range = e2e::playback::sample_event("playback-range.json")["headers"]["range"].as_str().unwrap().to_string();
    assert_eq!(range, "bytes=65530-65545");
    let (status, head, body, rc) = curl(&url, "GET", &[&format!("Range: {range}")], &dir);
    assert_eq!((status, rc), (206, 0), "{head}\n{}\n{}", String::from_utf8_lossy(&body), watch.log_text());
    assert!(head.contains("content-range: bytes 65530-65545/300000"), "{head}");
    assert_eq!(body, &data[65530..=65545]);
    let (status, _, body, rc) = curl(&url, "GET", &[], &dir);
    assert_eq!((status, rc), (200, 0));
    assert!(body == data, "the whole recording, streamed");
    let (status, head, _, rc) = curl(&url, "HEAD", &[], &dir);
    assert_eq!((status, rc), (200, 0), "{head}");
    assert!(head.contains("content-length: 300000") && head.contains("accept-ranges: bytes"), "{head}");
    let (status, head, _, _) = curl(&format!("{url}/info"), "GET", &[], &dir);
    assert_eq!(status, 200, "{head}");
    let (status, head, body, _) = curl(&url, "GET", &["Range: bytes=300000-"], &dir);
    assert_eq!(status, 416, "{head}");
    assert!(String::from_utf8_lossy(&body).contains("range_not_satisfiable"));
    // The tampered recording: the client sees a broken transfer, not a
    // clean short one, and holds no byte of the bad frame.
    let tampered_url = url.replace("2026-11-23-0001.wav", "tampered.wav");
    let (status, head, body, rc) = curl(&tampered_url, "GET", &[], &dir);
    assert_eq!((status, rc), (200, 0), "{head}");
    // Frames 0-29 (two 15-frame batches) are sent; the batch holding frame
    // 30 never is. cargo lambda watch renders the runtime's error trailers
    // into the body, where a real Function URL ends the response: what
    // follows the good frames is that trailer, and nothing of frame 30.
    let good = 30 * 65536;
    assert!(body.len() >= good && body[..good] == big[..good], "{} bytes", body.len());
    let rest = String::from_utf8_lossy(&body[good..]).into_owned();
    assert!(rest.len() < 200 && rest.contains("Lambda-Runtime-Function-Error-Type: Runtime.StreamError"), "{rest:?}");
    // The info event through cargo lambda invoke (it prints JSON answers;
    // audio goes through the Function URL above).
    let mut event = e2e::playback::sample_event("playback-info.json");
    event["headers"]["x-callvault-authorization"] = format!("Bearer {token}").into();
    let event_path = dir.path("info-event.json");
    std::fs::write(&event_path, event.to_string()).unwrap();
    let info = answer(&watch.invoke("playback", &event_path), &watch);
    assert_eq!((info["size"].as_u64(), info["content_type"].as_str()), (Some(300_000), Some("audio/wav")), "{info}");
    // The audit line reaches the function's log.
    let log = watch.wait_for_log(
        &["\"audit\":\"playback\"", "\"range_served\":\"65530-65545/300000\""],
        std::time::Duration::from_secs(10),
    );
    assert!(log.contains("\"range_served\":\"65530-65545/300000\""), "{log}");
    assert!(log.contains("KmsDecryptCalls"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn key_guardian_alerts_on_the_sample_kms_events_through_cargo_lambda_invoke() {
    let aws = LocalAws::shared();
    let key = aws.create_key("SYMMETRIC_DEFAULT", REGION).await;
    let stack = Stack::new(aws, &[("calls", &[&key])]).await;
    stack.encrypt("calls/2026-11-23-0001.wav", &sample(4096, 3), "audio/wav").await;
    let guardian = e2e::guardian::Guardian::new(&stack, false).await;
    let mut env = aws.env();
    env.retain(|(k, _)| *k != "AWS_REGION");
    env.extend(e2e::guardian::env(&stack, &guardian.topic_arn, false));
    let watch = Watch::start("key-guardian", &env);
    let dir = TempDir::new("watch-guardian");
    let kms = aws.kms().await;
    kms.create_alias().alias_name("alias/watch-recordings").target_key_id(&key).send().await.unwrap();
    kms.disable_key().key_id(&key).send().await.unwrap();

    let mut subjects = Vec::new();
    for (file, severity) in [
        ("kms-access-denied.json", "warning"),
        ("kms-disable-key.json", "critical"),
        ("kms-schedule-key-deletion.json", "critical"),
        ("kms-key-deletion.json", "critical"),
    ] {
        if file == "kms-schedule-key-deletion.json" {
            kms.schedule_key_deletion().key_id(&key).pending_window_in_days(7).send().await.unwrap();
        }
        // The sample event, naming this test's key.
        let event = e2e::guardian::kms_event(file, &key, &format!("watch-{file}"));
        let path = dir.path(file);
        std::fs::write(&path, event.to_string()).unwrap();
        let v = answer(&watch.invoke("key-guardian", &path), &watch);
        assert_eq!((v["outcome"].as_str(), v["severity"].as_str()), (Some("alerted"), Some(severity)), "{file}: {v}");
        let alerts = guardian.alerts().await;
        assert_eq!(alerts.len(), 1, "{file}: {alerts:?}");
        assert!(alerts[0].body.contains("1 recording (4.0 KiB (4096 bytes))"), "{}", alerts[0].body);
        subjects.push(alerts[0].subject.clone());
    }
    assert_eq!(subjects[1], "[CRITICAL] callvault: key alias/watch-recordings disabled: 1 recording at risk");
    assert_eq!(
        subjects[2],
        "[CRITICAL] callvault: key alias/watch-recordings scheduled for deletion: 1 recording at risk"
    );
    // The metrics, as embedded-metric lines in the function's log.
    let log = watch.wait_for_log(&["\"KeyStateChanges\"", "\"AccessDenials\""], std::time::Duration::from_secs(10));
    assert!(log.contains("\"KeyStateChanges\"") && log.contains("\"Event\":\"ScheduleKeyDeletion\""), "{log}");
    assert!(log.contains("\"AccessDenials\"") && log.contains("ContractorAnalytics/etl-job"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rotation_audit_runs_on_the_sample_schedule_event_through_cargo_lambda_invoke() {
    let aws = LocalAws::shared();
    let key = aws.create_key("SYMMETRIC_DEFAULT", REGION).await;
    let stack = Stack::new(aws, &[("calls", &[&key])]).await;
    stack.encrypt("calls/a.wav", &sample(1000, 4), "audio/wav").await;
    aws.kms().await.disable_key().key_id(&key).send().await.unwrap();
    let inbox = e2e::guardian::Inbox::new(&stack, "audit-watch").await;
    let mut env = aws.env();
    env.retain(|(k, _)| *k != "AWS_REGION");
    let mut audit = stack.function_env("rotation-audit");
    e2e::guardian::set(&mut audit, "ALERT_TOPIC_ARN", &inbox.topic_arn);
    env.extend(audit);
    let watch = Watch::start("rotation-audit", &env);
    let v =
        answer(&watch.invoke("rotation-audit", root().join("events/rotation-schedule.json").to_str().unwrap()), &watch);
    assert_eq!(
        (v["keys"].as_u64(), v["non_compliant"].as_u64(), v["alerted"].as_bool()),
        (Some(1), Some(1), Some(true)),
        "{v}"
    );
    let report = v["report"].as_str().unwrap();
    let report = report.strip_prefix(&format!("s3://{}/", stack.evidence)).unwrap_or_else(|| panic!("{report}"));
    assert!(stack.get(&stack.evidence, report).await.is_some(), "the report {report} is in the evidence bucket");
    assert_eq!(inbox.alerts().await.len(), 1);
    let log = watch.wait_for_log(&["\"NonCompliantKeys\":1.0"], std::time::Duration::from_secs(10));
    assert!(log.contains("\"KeyRotationCompliant\":0.0"), "{log}");
}
