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
        ok(&aws.callvault(&["decrypt", "--context", &format!("recording_id={id}"), &ct, &pt]));
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
