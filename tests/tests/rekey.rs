//! Key moves on the local AWS: `callvault rekey --local` over 200
//! recordings of mixed sizes and both key kinds, checked with the official
//! AWS Encryption SDK (the CLI for symmetric keys, the Python SDK 4.x for
//! RSA); the `rekey` function through `cargo lambda` with the sample Batch
//! Operations event; and the S3 Control `CreateJob` request `callvault
//! rekey` sends, recorded on a loopback endpoint and validated against the
//! S3 Control service model botocore ships (the local AWS has no Batch
//! Operations).

use std::collections::HashMap;
use std::path::Path;

use e2e::ingest::Stack;
use e2e::playback::Playback;
use e2e::*;
use serde_json::{json, Value};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The sizes: empty, one byte, under one frame, exact frame multiples,
/// one past, and multipart-sized (above the 8 MiB part), cycled.
fn size_of(i: usize, frame: usize) -> usize {
    match i {
        0 => 0,
        1 => 1,
        2 => 12 * 1024 * 1024 + 17,
        _ => [frame - 1, frame, 2 * frame, 3 * frame + 1, 777, 40_000, 5 * frame][i % 7],
    }
}

fn rekey_args<'a>(stack: &'a Stack<'_>, from: &'a str, to: &'a str, report: &'a str) -> Vec<&'a str> {
    vec![
        "rekey",
        "--from-key",
        from,
        "--to-key",
        to,
        "--local",
        "--workers",
        "8",
        "--report",
        report,
        "--catalog-table",
        &stack.table,
        "--vault-bucket",
        &stack.vault,
        "--org",
        e2e::ingest::ORG,
        "--recording-keys",
        &stack.recording_keys,
        "--frame-length",
        "4096",
    ]
}

#[test]
fn two_hundred_recordings_move_from_key_a_to_key_b_and_decrypt_with_the_official_sdk_under_b_alone() {
    let aws = LocalAws::shared();
    let rt = rt();
    let (a, b) = (
        rt.block_on(aws.create_key("SYMMETRIC_DEFAULT", REGION)),
        rt.block_on(aws.create_key("SYMMETRIC_DEFAULT", REGION)),
    );
    let (ra, rb) = (rt.block_on(aws.create_key("RSA_4096", REGION)), rt.block_on(aws.create_key("RSA_4096", REGION)));
    let mut stack = rt.block_on(Stack::new(aws, &[("calls", &[a.as_str()]), ("screens", &[ra.as_str()])]));
    stack.frame_length = Some(4096);
    let dir = TempDir::new("rekey-200");

    // 150 calls under A (symmetric), 50 screens under RA (RSA).
    let mut originals: HashMap<String, Vec<u8>> = HashMap::new();
    for i in 0..200 {
        let (ty, n) = if i < 150 { ("calls", i) } else { ("screens", i - 150) };
        let key = format!("{ty}/r-{n:03}");
        let data = sample(size_of(n, 4096), i as u8);
        rt.block_on(stack.encrypt(&key, &data, "audio/wav"));
        originals.insert(key, data);
    }
    let usage = |k: &str| rt.block_on(stack.usage(k)).map_or(0, |u| u.recordings);
    assert_eq!((usage(&a), usage(&ra)), (150, 50));

    // The dry run says what would move and moves nothing.
    let mut dry = rekey_args(&stack, &a, &b, "unused");
    dry.retain(|x| *x != "--local");
    dry.push("--dry-run");
    let out = aws.callvault(&dry);
    ok(&out);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(said.starts_with("would re-key 150 recordings"), "{said}");
    assert_eq!(usage(&b), 0);

    // The moves, through the same handler the Lambda runs.
    for (from, to, n) in [(&a, &b, 150), (&ra, &rb, 50)] {
        let report = dir.path(&format!("report-{n}.csv"));
        let out = aws.callvault(&rekey_args(&stack, from, to, &report));
        ok(&out);
        let printed = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(printed.contains(&format!("re-keyed {n} of {n} recordings")), "{printed}\n{}", stderr(&out));
        let lines: Vec<String> = std::fs::read_to_string(&report).unwrap().lines().map(str::to_string).collect();
        assert_eq!(lines.len(), n, "one report line per task");
        for line in &lines {
            let fields: Vec<&str> = line.splitn(7, ',').collect();
            assert_eq!(fields[0], stack.vault, "{line}");
            assert_eq!((fields[3], fields[5]), ("succeeded", "200"), "{line}");
            assert!(fields[6].starts_with("rekeyed "), "{line}");
        }
    }
    assert_eq!((usage(&a), usage(&b), usage(&ra), usage(&rb)), (0, 150, 0, 50), "A's usage is 0, B's the sum");

    // Every recording: a new message, catalogued, the old version superseded.
    for key in originals.keys() {
        let (ty, id) = key.split_once('/').unwrap();
        let entry = rt.block_on(stack.entry(ty, id)).expect("catalogued");
        assert_eq!(entry.wrapping_keys, [if ty == "calls" { b.clone() } else { rb.clone() }], "{key}");
        assert!(entry.rekeyed_at.is_some());
        let tags = rt.block_on(async {
            let out = stack.s3.list_object_versions().bucket(&stack.vault).prefix(key.as_str()).send().await.unwrap();
            let mut states = Vec::new();
            for v in out.versions().iter().filter(|v| v.key() == Some(key.as_str())) {
                let t = stack
                    .s3
                    .get_object_tagging()
                    .bucket(&stack.vault)
                    .key(key.as_str())
                    .version_id(v.version_id().unwrap())
                    .send()
                    .await
                    .unwrap();
                let state = t.tag_set().iter().find(|t| t.key() == "callvault-state").map(|t| t.value().to_string());
                states.push((v.version_id().unwrap().to_string(), state.unwrap_or_default()));
            }
            states
        });
        for (version, state) in &tags {
            let expected = if Some(version) == entry.vault_version.as_ref() { "catalogued" } else { "superseded" };
            assert_eq!(state, expected, "{key}: {tags:?}");
        }
    }

    // The official CLI, one recursive call, under B alone; and nothing
    // under A.
    let (calls_in, calls_out, calls_a) = (dir.path("calls-in"), dir.path("calls-out"), dir.path("calls-under-a"));
    for d in [&calls_in, &calls_out, &calls_a] {
        std::fs::create_dir_all(d).unwrap();
    }
    for (key, _) in originals.iter().filter(|(k, _)| k.starts_with("calls/")) {
        let body = rt.block_on(stack.get(&stack.vault, key)).expect("the current version");
        std::fs::write(Path::new(&calls_in).join(key.trim_start_matches("calls/")), body).unwrap();
    }
    let cli = |key: &str, out_dir: &str| {
        let wrapping = format!("key={key}");
        aws.esdk_cli(&[
            "--decrypt-unsigned",
            "-r",
            "-i",
            &calls_in,
            "-o",
            out_dir,
            "--suffix",
            "",
            "-w",
            &wrapping,
            "-c",
            "org=acme",
            "recording_type=calls",
            "-S",
        ])
    };
    ok(&cli(&b, &calls_out));
    for (key, data) in originals.iter().filter(|(k, _)| k.starts_with("calls/")) {
        let got = std::fs::read(Path::new(&calls_out).join(key.trim_start_matches("calls/"))).unwrap_or_default();
        assert!(got == *data, "{key}: the official CLI under B does not give back the recording");
    }
    let _ = cli(&a, &calls_a);
    assert_eq!(std::fs::read_dir(&calls_a).unwrap().count(), 0, "nothing decrypts under A");

    // The Python SDK 4.x for the RSA ones, under RB alone, and not under RA.
    let mut jobs_rb = Vec::new();
    let mut jobs_ra = Vec::new();
    for (key, _) in originals.iter().filter(|(k, _)| k.starts_with("screens/")) {
        let name = key.replace('/', "-");
        let input = dir.path(&format!("{name}.esdk"));
        std::fs::write(&input, rt.block_on(stack.get(&stack.vault, key)).unwrap()).unwrap();
        let context = json!({"org": "acme", "recording_type": "screens"});
        jobs_rb.push(json!({"op": "decrypt", "keys": [rb], "rsa": true, "context": context, "in": input, "out": dir.path(&format!("{name}.rb"))}));
        jobs_ra.push(json!({"op": "decrypt", "keys": [ra], "rsa": true, "context": context, "in": input, "out": dir.path(&format!("{name}.ra"))}));
    }
    let run_jobs = |jobs: &Vec<Value>, tag: &str| -> Vec<Value> {
        let (jp, rp) = (dir.path(&format!("jobs-{tag}.json")), dir.path(&format!("results-{tag}.json")));
        std::fs::write(&jp, serde_json::to_vec(jobs).unwrap()).unwrap();
        let _ = aws.esdk4(&["batch", &jp, &rp]);
        serde_json::from_str(&std::fs::read_to_string(&rp).expect("results")).unwrap()
    };
    let under_rb = run_jobs(&jobs_rb, "rb");
    assert!(under_rb.iter().all(|r| r["ok"] == true), "{under_rb:?}");
    for (key, data) in originals.iter().filter(|(k, _)| k.starts_with("screens/")) {
        let got = std::fs::read(dir.path(&format!("{}.rb", key.replace('/', "-")))).unwrap();
        assert!(got == *data, "{key}: the Python SDK under RB");
    }
    let under_ra = run_jobs(&jobs_ra, "ra");
    assert!(under_ra.iter().all(|r| r["ok"] == false), "nothing decrypts under RA: {under_ra:?}");

    // A and RA disabled: every recording still plays.
    rt.block_on(async {
        let kms = aws.kms().await;
        for k in [&a, &ra] {
            kms.disable_key().key_id(k.as_str()).send().await.expect("DisableKey");
        }
        let playback = Playback::new(&stack, &[]).await;
        for (key, data) in &originals {
            let reply = playback.get(&format!("/recordings/{key}"), None).await;
            assert!(reply.status == 200 || reply.status == 206, "{key}: {}", reply.status);
            assert!(reply.aborted.is_none(), "{key}: {:?}", reply.aborted);
            assert_eq!(reply.body, data[..reply.body.len()], "{key}");
            assert!(reply.body.len() == data.len() || reply.status == 206, "{key}");
        }
    });
}

#[test]
fn the_sample_batch_event_through_cargo_lambda_answers_the_documented_response() {
    let aws = LocalAws::shared();
    let rt = rt();
    let (a, b) = (
        rt.block_on(aws.create_key("SYMMETRIC_DEFAULT", REGION)),
        rt.block_on(aws.create_key("SYMMETRIC_DEFAULT", REGION)),
    );
    let stack = rt.block_on(Stack::new(aws, &[("calls", &[a.as_str()])]));
    let data = sample(100_000, 9);
    rt.block_on(stack.encrypt("calls/2026-11-23-0001.wav", &data, "audio/wav"));

    let sample_event: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("events/s3-batch-rekey.json")).unwrap()).unwrap();
    let mut event = sample_event.clone();
    event["job"]["userArguments"]["targetKeys"] = json!(b);
    event["job"]["userArguments"]["fromKey"] = json!(a);
    event["tasks"][0]["s3Bucket"] = json!(stack.vault);
    let dir = TempDir::new("rekey-watch");
    let file = dir.path("event.json");
    std::fs::write(&file, serde_json::to_vec(&event).unwrap()).unwrap();

    let mut env = stack.function_env("rekey");
    env.extend(aws.env());
    let watch = e2e::lambda::Watch::start("rekey", &env);
    let out = watch.invoke("rekey", &file);
    ok(&out);
    let answer: Value = serde_json::from_slice(&out.stdout).expect("the answer is JSON");
    assert_eq!(answer["invocationSchemaVersion"], "2.0");
    assert_eq!(answer["treatMissingKeysAs"], "PermanentFailure");
    assert_eq!(answer["invocationId"], sample_event["invocationId"]);
    assert_eq!(answer["results"][0]["taskId"], sample_event["tasks"][0]["taskId"]);
    assert_eq!(answer["results"][0]["resultCode"], "Succeeded", "{answer}");
    assert!(answer["results"][0]["resultString"].as_str().unwrap().starts_with("rekeyed calls/2026-11-23-0001.wav"));
    let entry = rt.block_on(stack.entry("calls", "2026-11-23-0001.wav")).unwrap();
    assert_eq!(entry.wrapping_keys, std::slice::from_ref(&b));
    assert_eq!(
        rt.block_on(stack.get(&stack.vault, "calls/2026-11-23-0001.wav")).map(|c| c.len() > data.len()),
        Some(true)
    );

    // Without its arguments: every task fails for good, nothing moves back.
    event["job"]["userArguments"] = json!({});
    std::fs::write(&file, serde_json::to_vec(&event).unwrap()).unwrap();
    let out = watch.invoke("rekey", &file);
    ok(&out);
    let answer: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["results"][0]["resultCode"], "PermanentFailure");
    assert!(answer["results"][0]["resultString"].as_str().unwrap().starts_with("bad_arguments "), "{answer}");
}

#[test]
fn the_create_job_request_is_what_the_s3_control_api_model_requires() {
    let aws = LocalAws::shared();
    let rt = rt();
    let (a, b) = (
        rt.block_on(aws.create_key("SYMMETRIC_DEFAULT", REGION)),
        rt.block_on(aws.create_key("SYMMETRIC_DEFAULT", REGION)),
    );
    let stack = rt.block_on(Stack::new(aws, &[("calls", &[a.as_str()])]));
    for i in 0..3 {
        rt.block_on(stack.encrypt(&format!("calls/job {i}+ü.wav"), &sample(1000 + i, i as u8), "audio/wav"));
    }
    let dir = TempDir::new("rekey-createjob");
    let recorder = S3ControlRecorder::start(&dir);
    let function = format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:cv-rekey");
    let role = format!("arn:aws:iam::{ACCOUNT}:role/cv-rekey-batch");
    let out = std::process::Command::new(callvault_bin())
        .args([
            "rekey",
            "--from-key",
            &a,
            "--to-key",
            &b,
            "--function",
            &function,
            "--batch-role",
            &role,
            "--priority",
            "42",
            "--catalog-table",
            &stack.table,
            "--vault-bucket",
            &stack.vault,
        ])
        .envs(aws.env())
        .env("CALLVAULT_S3_CONTROL_ENDPOINT", &recorder.url)
        .output()
        .unwrap();
    ok(&out);
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(printed.contains("created S3 Batch Operations job job-recorded-1: 3 recordings"), "{printed}");
    assert!(
        printed.contains("update-job-status") && printed.contains("describe-job"),
        "how to confirm and follow: {printed}"
    );

    // botocore's own model of CreateJob: the recorded request parsed by its
    // shapes and validated (required members, types, enums, lengths).
    let checked = recorder.validate();
    assert_eq!(checked["errors"], json!([]), "{checked}");
    let req = &checked["params"];
    assert_eq!(checked["method"], "POST");
    assert_eq!(checked["path"], "/v20180820/jobs");
    assert_eq!(req["AccountId"], ACCOUNT);
    assert_eq!(req["ConfirmationRequired"], true, "the job waits for the operator's confirmation");
    assert_eq!(req["Priority"], 42);
    assert_eq!(req["RoleArn"], role);
    let lambda = &req["Operation"]["LambdaInvoke"];
    assert_eq!(lambda["FunctionArn"], function);
    assert_eq!(lambda["InvocationSchemaVersion"], "2.0");
    assert_eq!(lambda["UserArguments"], json!({"operation": "rekey", "targetKeys": b, "fromKey": a}));
    assert_eq!(
        req["Manifest"]["Spec"],
        json!({"Format": "S3BatchOperations_CSV_20180820", "Fields": ["Bucket", "Key"]})
    );
    let object_arn = req["Manifest"]["Location"]["ObjectArn"].as_str().unwrap();
    let manifest_key = object_arn.strip_prefix(&format!("arn:aws:s3:::{}/", stack.vault)).expect("in the vault bucket");
    assert!(manifest_key.starts_with("rekey/") && manifest_key.ends_with("/manifest.csv"), "{manifest_key}");
    let report = &req["Report"];
    assert_eq!(report["Bucket"], format!("arn:aws:s3:::{}", stack.vault));
    assert_eq!((report["Enabled"].clone(), report["ReportScope"].clone()), (json!(true), json!("AllTasks")));
    assert_eq!(report["Format"], "Report_CSV_20180820");
    assert_eq!(
        report["Prefix"].as_str().map(|p| manifest_key.starts_with(p)),
        Some(true),
        "the report beside the manifest"
    );
    assert!(req["ClientRequestToken"].as_str().is_some_and(|t| !t.is_empty()));

    // The manifest the job reads: one line per recording, the keys
    // URL-encoded, and the ETag the request names.
    let (manifest, etag) = rt.block_on(async {
        let out = stack.s3.get_object().bucket(&stack.vault).key(manifest_key).send().await.expect("the manifest");
        let etag = out.e_tag().unwrap_or_default().trim_matches('"').to_string();
        (String::from_utf8(out.body.collect().await.unwrap().to_vec()).unwrap(), etag)
    });
    assert_eq!(req["Manifest"]["Location"]["ETag"], etag);
    let mut lines: Vec<&str> = manifest.lines().collect();
    lines.sort();
    let expected: Vec<String> = (0..3).map(|i| format!("{},calls/job+{i}%2B%C3%BC.wav", stack.vault)).collect();
    assert_eq!(lines, expected);
}

/// A loopback HTTP endpoint that records one S3 Control request and
/// answers CreateJob; `validate` checks the request against botocore's
/// S3 Control model (`tests/peers/s3control_recorder.py`).
struct S3ControlRecorder {
    child: std::process::Child,
    url: String,
    record: String,
}

impl S3ControlRecorder {
    fn start(dir: &TempDir) -> Self {
        let record = dir.path("request.json");
        let port_file = dir.path("port");
        let child = std::process::Command::new(root().join("infra/local/.venv/moto/bin/python"))
            .arg(root().join("tests/peers/s3control_recorder.py"))
            .args(["serve", &record, &port_file])
            .spawn()
            .expect("start the S3 Control recorder");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let port = loop {
            if let Ok(p) = std::fs::read_to_string(&port_file) {
                if !p.trim().is_empty() {
                    break p.trim().to_string();
                }
            }
            assert!(std::time::Instant::now() < deadline, "the S3 Control recorder did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        Self { child, url: format!("http://127.0.0.1:{port}"), record }
    }

    fn validate(&self) -> Value {
        let out = std::process::Command::new(root().join("infra/local/.venv/moto/bin/python"))
            .arg(root().join("tests/peers/s3control_recorder.py"))
            .args(["validate", &self.record])
            .output()
            .unwrap();
        assert!(out.status.success(), "validate: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("the validation as JSON")
    }
}

impl Drop for S3ControlRecorder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_multi_region_recording_written_in_us_east_1_plays_in_us_west_2_through_the_replica_alone() {
    use vault::aws::{AwsKms, DynamoCatalog, S3Objects};
    use vault::playback::{OpenStats, PlaybackSettings, RecordingPlayer, DEFAULT_BATCH_BYTES};
    use vault::recording::RecordingId;

    let aws = LocalAws::shared();
    let rt = rt();
    let (primary, replica) = rt.block_on(async {
        let kms = aws.kms().await;
        let meta = kms.create_key().multi_region(true).send().await.expect("CreateKey").key_metadata.unwrap();
        let replica = kms
            .replicate_key()
            .key_id(meta.key_id())
            .replica_region(DR_REGION)
            .send()
            .await
            .expect("ReplicateKey")
            .replica_key_metadata
            .unwrap();
        (meta.arn.unwrap(), replica.arn.unwrap())
    });
    assert!(primary.contains(":key/mrk-") && replica == primary.replace(REGION, DR_REGION));
    let stack = rt.block_on(Stack::new(aws, &[("calls", &[primary.as_str()])]));
    let data = sample(300_000, 11);
    rt.block_on(stack.encrypt("calls/mrk-1.wav", &data, "audio/wav"));

    let (east_before, west_before) = (aws.kms_calls_for(&primary), aws.kms_calls_for(&replica));
    let played = rt.block_on(async {
        // Playback in us-west-2: KMS there; the vault objects and the catalog
        // as a copy would carry them (here: read where they are).
        let (east, west) = (aws.config(REGION).await, aws.config(DR_REGION).await);
        let player = RecordingPlayer::new(
            AwsKms::new(&west),
            S3Objects::from_config(&east),
            DynamoCatalog::from_config(&east, &stack.table),
            PlaybackSettings {
                org: e2e::ingest::ORG.into(),
                vault_bucket: stack.vault.clone(),
                region: DR_REGION.into(),
                cache_ttl: std::time::Duration::from_secs(60),
                cache_entries: 8,
                batch_bytes: DEFAULT_BATCH_BYTES,
            },
        );
        let id = RecordingId { recording_type: "calls".into(), recording_id: "mrk-1.wav".into() };
        let mut stats = OpenStats::default();
        let open = player.open(&id, &mut stats).await.expect("opens in us-west-2");
        assert_eq!(open.key_arn(), replica, "unwrapped by the replica");
        assert_eq!(stats.kms_calls, 1);
        let span = open.span(None).unwrap();
        let mut frames = player.frames(&open, &span).await.unwrap();
        let mut out = Vec::new();
        while let Some(batch) = frames.next_batch().await {
            batch.expect("every frame authenticates").iter().for_each(|p| out.extend_from_slice(p));
        }
        out
    });
    assert!(played == data, "the recording plays whole in us-west-2");
    let (east_after, west_after) = (aws.kms_calls_for(&primary), aws.kms_calls_for(&replica));
    assert_eq!(east_after, east_before, "no KMS call in us-east-1");
    let decrypts = |m: &HashMap<String, u64>| m.get("Decrypt").copied().unwrap_or(0);
    assert_eq!(decrypts(&west_after) - decrypts(&west_before), 1, "one Decrypt, in us-west-2");

    // The CLI in us-west-2, trusting the primary's ARN, goes through the
    // replica too.
    let dir = TempDir::new("rekey-mrk");
    let (ct, pt) = (dir.path("mrk.esdk"), dir.path("mrk.wav"));
    std::fs::write(&ct, rt.block_on(stack.get(&stack.vault, "calls/mrk-1.wav")).unwrap()).unwrap();
    let out = std::process::Command::new(callvault_bin())
        .args(["decrypt", "--key", &primary, "--context", "org=acme", &ct, &pt])
        .envs(aws.env())
        .env("AWS_REGION", DR_REGION)
        .env("AWS_DEFAULT_REGION", DR_REGION)
        .output()
        .unwrap();
    ok(&out);
    assert!(std::fs::read(&pt).unwrap() == data);
    assert_eq!(aws.kms_calls_for(&primary), east_before, "still no KMS call in us-east-1");
}

#[test]
fn multi_region_recordings_move_to_us_west_2_copied_as_they_are_and_leave_moved_markers() {
    use aws_sdk_s3::types::{
        BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, VersioningConfiguration,
    };
    use vault::aws::{AwsKms, DynamoCatalog, S3Objects};
    use vault::playback::{OpenStats, PlaybackSettings, RecordingPlayer, DEFAULT_BATCH_BYTES};
    use vault::ports::catalog::{KeyUsageCatalog, RecordingCatalog};
    use vault::recording::RecordingId;

    let aws = LocalAws::shared();
    let rt = rt();
    let (primary, replica) = rt.block_on(async {
        let kms = aws.kms().await;
        let meta = kms.create_key().multi_region(true).send().await.unwrap().key_metadata.unwrap();
        let r = kms.replicate_key().key_id(meta.key_id()).replica_region(DR_REGION).send().await.unwrap();
        (meta.arn.unwrap(), r.replica_key_metadata.unwrap().arn.unwrap())
    });
    let stack = rt.block_on(Stack::new(aws, &[("calls", &[primary.as_str()])]));
    let mut originals = Vec::new();
    for i in 0..3 {
        let data = sample(20_000 + i * 5000, i as u8);
        rt.block_on(stack.encrypt(&format!("calls/m-{i}"), &data, "audio/wav"));
        originals.push(data);
    }
    // The deployment in us-west-2: its vault and catalog.
    let (dest_vault, dest_table) =
        (format!("cv-west-vault-{}", std::process::id()), format!("cv-west-catalog-{}", std::process::id()));
    let west = rt.block_on(aws.config(DR_REGION));
    rt.block_on(async {
        let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&west).force_path_style(true).build());
        s3.create_bucket()
            .bucket(&dest_vault)
            .create_bucket_configuration(
                CreateBucketConfiguration::builder().location_constraint(BucketLocationConstraint::UsWest2).build(),
            )
            .send()
            .await
            .expect("CreateBucket in us-west-2");
        s3.put_bucket_versioning()
            .bucket(&dest_vault)
            .versioning_configuration(
                VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build(),
            )
            .send()
            .await
            .unwrap();
        e2e::ingest::create_catalog_table(&aws_sdk_dynamodb::Client::new(&west), &dest_table).await;
    });
    // Counted per key (the other tests of this binary share the local AWS):
    // a copy makes no cryptographic call; it only describes the replica.
    let crypto = |m: HashMap<String, u64>| {
        m.into_iter().filter(|(op, _)| op != "DescribeKey").collect::<std::collections::BTreeMap<_, _>>()
    };
    let key_calls = || (crypto(aws.kms_calls_for(&primary)), crypto(aws.kms_calls_for(&replica)));
    let calls_before = key_calls();
    let dir = TempDir::new("rekey-region");
    let report = dir.path("report.csv");
    let out = aws.callvault(&[
        "rekey",
        "--from-key",
        &primary,
        "--to-region",
        DR_REGION,
        "--to-vault",
        &dest_vault,
        "--to-catalog",
        &dest_table,
        "--copy-only",
        "--local",
        "--workers",
        "2",
        "--report",
        &report,
        "--catalog-table",
        &stack.table,
        "--vault-bucket",
        &stack.vault,
        "--org",
        e2e::ingest::ORG,
        "--recording-keys",
        &stack.recording_keys,
    ]);
    ok(&out);
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(printed.contains("re-keyed 3 of 3"), "{printed}");
    let report = std::fs::read_to_string(&report).unwrap();
    assert!(report.lines().all(|l| l.contains(",succeeded,") && l.contains("moved calls/m-")), "{report}");
    assert_eq!(key_calls(), calls_before, "a copy calls no KMS Decrypt, Encrypt or GenerateDataKey");

    rt.block_on(async {
        let east = aws.config(REGION).await;
        let (here, there) =
            (DynamoCatalog::from_config(&east, &stack.table), DynamoCatalog::from_config(&west, &dest_table));
        let player = RecordingPlayer::new(
            AwsKms::new(&west),
            S3Objects::from_config(&west),
            DynamoCatalog::from_config(&west, &dest_table),
            PlaybackSettings {
                org: e2e::ingest::ORG.into(),
                vault_bucket: dest_vault.clone(),
                region: DR_REGION.into(),
                cache_ttl: std::time::Duration::ZERO,
                cache_entries: 4,
                batch_bytes: DEFAULT_BATCH_BYTES,
            },
        );
        let source = Playback::new(&stack, &[]).await;
        for (i, data) in originals.iter().enumerate() {
            let id = RecordingId { recording_type: "calls".into(), recording_id: format!("m-{i}") };
            let marker = here.recording(&id).await.unwrap().unwrap();
            let to = marker.moved_to.clone().expect("a moved marker here");
            assert_eq!(
                (to.region.as_str(), to.vault_bucket.as_str(), to.catalog_table.as_str()),
                (DR_REGION, dest_vault.as_str(), dest_table.as_str())
            );
            let row = there.recording(&id).await.unwrap().expect("catalogued there");
            assert_eq!(
                (row.wrapping_keys.clone(), row.message_id.clone()),
                (vec![replica.clone()], marker.message_id.clone())
            );
            // Playback here answers where it went; there, it plays.
            let reply = source.get(&format!("/recordings/calls/m-{i}"), None).await;
            assert_eq!(reply.status, 410, "here: moved");
            assert_eq!(reply.json()["error"], "moved");
            assert!(!reply.json()["message"].as_str().unwrap().contains(&dest_vault), "not how it is stored there");
            assert!(reply.json()["message"].as_str().unwrap().contains(DR_REGION), "{}", reply.json());
            let mut stats = OpenStats::default();
            let open = player.open(&id, &mut stats).await.expect("opens in us-west-2");
            assert_eq!(open.key_arn(), replica);
            let span = open.span(None).unwrap();
            let mut frames = player.frames(&open, &span).await.unwrap();
            let mut out = Vec::new();
            while let Some(batch) = frames.next_batch().await {
                batch.unwrap().iter().for_each(|p| out.extend_from_slice(p));
            }
            assert!(out == *data, "m-{i} plays in us-west-2");
        }
        assert_eq!(here.key_usage(&primary).await.unwrap().map_or(0, |u| u.recordings), 0, "counted here no more");
        assert_eq!(there.key_usage(&replica).await.unwrap().map(|u| u.recordings), Some(3), "counted there");
    });
}
