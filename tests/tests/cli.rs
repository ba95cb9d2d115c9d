//! The `callvault` command against the local AWS: round trips, ranges,
//! inspection, and every refusal leaving no output behind.

use e2e::*;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn setup(aws: &LocalAws, spec: &str) -> String {
    rt().block_on(aws.create_key(spec, REGION))
}

fn encrypt(aws: &LocalAws, dir: &TempDir, key: &str, data: &[u8], extra: &[&str]) -> String {
    let (pt, ct) = (dir.path("in.wav"), dir.path("in.wav.esdk"));
    std::fs::write(&pt, data).unwrap();
    let mut args = vec!["encrypt", "--key", key, "--context", "org=acme", "--context", "recording_id=r-1"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[&pt, &ct]);
    ok(&aws.callvault(&args));
    ct
}

#[test]
fn encrypt_then_decrypt_round_trips() {
    let aws = LocalAws::shared();
    let key = setup(aws, "SYMMETRIC_DEFAULT");
    let dir = TempDir::new("cli-rt");
    let data = sample(300_000, 1);
    let ct = encrypt(aws, &dir, &key, &data, &["--frame-length", "4096"]);
    let out = dir.path("out.wav");
    ok(&aws.callvault(&["decrypt", "--account", ACCOUNT, "--context", "org=acme", &ct, &out]));
    assert_eq!(std::fs::read(&out).unwrap(), data);
}

#[test]
fn decrypt_with_a_range_returns_the_slice() {
    let aws = LocalAws::shared();
    let key = setup(aws, "SYMMETRIC_DEFAULT");
    let dir = TempDir::new("cli-range");
    let data = sample(100_000, 2);
    let ct = encrypt(aws, &dir, &key, &data, &["--frame-length", "4096"]);
    for (range, slice) in
        [("0-0", 0..1), ("4095-4096", 4095..4097), ("99990-", 99_990..100_000), ("5000-99999", 5000..100_000)]
    {
        let out = dir.path("range.bin");
        ok(&aws.callvault(&["decrypt", "--account", ACCOUNT, "--context", "org=acme", "--range", range, &ct, &out]));
        assert_eq!(std::fs::read(&out).unwrap(), &data[slice], "range {range}");
        // The same range from a stream.
        let piped = std::process::Command::new(callvault_bin())
            .args(["decrypt", "--account", ACCOUNT, "--context", "org=acme", "--range", range, "-", "-"])
            .envs(aws.env())
            .stdin(std::fs::File::open(&ct).unwrap())
            .output()
            .unwrap();
        ok(&piped);
        assert_eq!(piped.stdout, &data[range_of(range)], "streamed range {range}");
    }
    let out = dir.path("bad.bin");
    let r = aws.callvault(&[
        "decrypt",
        "--account",
        ACCOUNT,
        "--context",
        "org=acme",
        "--range",
        "100000-100001",
        &ct,
        &out,
    ]);
    assert!(!r.status.success());
    assert!(stderr(&r).contains("error[range_not_satisfiable]"), "{}", stderr(&r));
    assert!(!std::path::Path::new(&out).exists());
}

fn range_of(s: &str) -> std::ops::Range<usize> {
    let (a, b) = s.split_once('-').unwrap();
    a.parse().unwrap()..if b.is_empty() { 100_000 } else { b.parse::<usize>().unwrap() + 1 }
}

#[test]
fn inspect_prints_the_header_as_json() {
    let aws = LocalAws::shared();
    let key = setup(aws, "SYMMETRIC_DEFAULT");
    let dir = TempDir::new("cli-inspect");
    let ct = encrypt(aws, &dir, &key, &sample(10_000, 3), &["--frame-length", "4096"]);
    let out = aws.callvault(&["inspect", &ct]);
    ok(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], 2);
    assert_eq!(v["suite_id"], "0x0478");
    assert_eq!(v["message_id"].as_str().unwrap().len(), 64);
    assert_eq!(v["encryption_context"]["org"], "acme");
    assert_eq!(v["encrypted_data_keys"][0]["provider_id"], "aws-kms");
    assert_eq!(v["encrypted_data_keys"][0]["provider_info"], key.as_str());
    assert_eq!(v["frame_length"], 4096);
    assert_eq!(v["plaintext_length"], 10_000);
    // From a stream too.
    let piped = std::process::Command::new(callvault_bin())
        .args(["inspect", "-"])
        .stdin(std::fs::File::open(&ct).unwrap())
        .output()
        .unwrap();
    ok(&piped);
    let w: serde_json::Value = serde_json::from_slice(&piped.stdout).unwrap();
    assert_eq!(w["plaintext_length"], 10_000);
}

#[test]
fn a_wrong_context_is_refused_and_leaves_no_output() {
    let aws = LocalAws::shared();
    let key = setup(aws, "SYMMETRIC_DEFAULT");
    let dir = TempDir::new("cli-ctx");
    let ct = encrypt(aws, &dir, &key, &sample(1000, 4), &[]);
    let out = dir.path("out.wav");
    for ctx in ["org=other", "tenant=acme"] {
        let r = aws.callvault(&["decrypt", "--account", ACCOUNT, "--any-org", "--context", ctx, &ct, &out]);
        assert!(!r.status.success());
        assert!(stderr(&r).contains("error[context_mismatch]"), "{}", stderr(&r));
        assert_eq!(stderr(&r).lines().count(), 1, "one line: {}", stderr(&r));
    }
    assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 2, "no output or temporary file is left");
}

#[test]
fn a_tampered_message_is_refused_and_leaves_no_output() {
    let aws = LocalAws::shared();
    let key = setup(aws, "SYMMETRIC_DEFAULT");
    let dir = TempDir::new("cli-tamper");
    let ct = encrypt(aws, &dir, &key, &sample(50_000, 5), &["--frame-length", "4096"]);
    let mut bytes = std::fs::read(&ct).unwrap();
    let n = bytes.len();
    bytes[n - 100] ^= 1; // inside the final frame: earlier frames were already written
    std::fs::write(&ct, &bytes).unwrap();
    let out = dir.path("out.wav");
    let r = aws.callvault(&["decrypt", "--account", ACCOUNT, "--context", "org=acme", &ct, &out]);
    assert!(!r.status.success());
    assert!(stderr(&r).contains("error[integrity]"), "{}", stderr(&r));
    assert!(!std::path::Path::new(&out).exists());
    assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 2, "no temporary file is left");
}

#[test]
fn an_rsa_key_encrypts_without_kms_and_decrypts_through_kms() {
    let aws = LocalAws::shared();
    let key = setup(aws, "RSA_4096");
    let dir = TempDir::new("cli-rsa");
    let data = sample(70_000, 6);
    let ct = encrypt(aws, &dir, &key, &data, &[]);
    let v: serde_json::Value = serde_json::from_slice(&aws.callvault(&["inspect", &ct]).stdout).unwrap();
    assert_eq!(v["encrypted_data_keys"][0]["provider_id"], "aws-kms-rsa");
    let out = dir.path("out.wav");
    ok(&aws.callvault(&["decrypt", "--account", ACCOUNT, "--context", "org=acme", &ct, &out]));
    assert_eq!(std::fs::read(&out).unwrap(), data);
}

#[test]
fn a_disaster_recovery_key_adds_a_second_encrypted_data_key_that_decrypts_alone() {
    let aws = LocalAws::shared();
    let primary = setup(aws, "SYMMETRIC_DEFAULT");
    let dr = rt().block_on(aws.create_key("SYMMETRIC_DEFAULT", DR_REGION));
    let dir = TempDir::new("cli-dr");
    let data = sample(9_000, 7);
    let ct = encrypt(aws, &dir, &primary, &data, &["--key", &dr]);
    let v: serde_json::Value = serde_json::from_slice(&aws.callvault(&["inspect", &ct]).stdout).unwrap();
    assert_eq!(v["encrypted_data_keys"].as_array().unwrap().len(), 2);
    assert_eq!(v["encrypted_data_keys"][1]["provider_info"], dr.as_str());
    let out = dir.path("out.wav");
    ok(&aws.callvault(&["decrypt", "--key", &dr, "--context", "org=acme", &ct, &out]));
    assert_eq!(std::fs::read(&out).unwrap(), data);
}

#[test]
fn a_primary_key_in_another_region_is_refused() {
    let aws = LocalAws::shared();
    let dr = rt().block_on(aws.create_key("SYMMETRIC_DEFAULT", DR_REGION));
    let dir = TempDir::new("cli-region");
    std::fs::write(dir.path("in"), b"x").unwrap();
    let r = aws.callvault(&["encrypt", "--key", &dr, &dir.path("in"), &dir.path("out")]);
    assert!(!r.status.success());
    assert!(stderr(&r).contains("error[wrong_region]"), "{}", stderr(&r));
    assert!(!std::path::Path::new(&dir.path("out")).exists());
}

#[test]
fn a_disabled_key_is_refused_with_its_code() {
    let aws = LocalAws::shared();
    let key = setup(aws, "SYMMETRIC_DEFAULT");
    let dir = TempDir::new("cli-disabled");
    let ct = encrypt(aws, &dir, &key, b"hello", &[]);
    rt().block_on(async { aws.kms().await.disable_key().key_id(&key).send().await.unwrap() });
    let r = aws.callvault(&["decrypt", "--key", &key, "--context", "org=acme", &ct, &dir.path("out")]);
    assert!(stderr(&r).contains("error[key_disabled]") && stderr(&r).contains("enable-key"), "{}", stderr(&r));
    let r = aws.callvault(&["encrypt", "--key", &key, &dir.path("in.wav"), &dir.path("again")]);
    assert!(stderr(&r).contains("error[key_disabled]"), "{}", stderr(&r));
    rt().block_on(async {
        let kms = aws.kms().await;
        kms.schedule_key_deletion().key_id(&key).pending_window_in_days(7).send().await.unwrap()
    });
    let r = aws.callvault(&["decrypt", "--key", &key, "--context", "org=acme", &ct, &dir.path("out")]);
    assert!(stderr(&r).contains("error[key_pending_deletion]"), "{}", stderr(&r));
}

#[test]
fn s3_locations_stream_in_and_out() {
    let aws = LocalAws::shared();
    let key = setup(aws, "SYMMETRIC_DEFAULT");
    rt().block_on(async { aws.s3().await.create_bucket().bucket("cli-io").send().await.unwrap() });
    let dir = TempDir::new("cli-s3");
    // Larger than one 8 MiB part: exercises the multipart path.
    let data = sample(12 * 1024 * 1024 + 5, 8);
    std::fs::write(dir.path("in"), &data).unwrap();
    ok(&aws.callvault(&["encrypt", "--key", &key, &dir.path("in"), "s3://cli-io/rec.esdk"]));
    ok(&aws.callvault(&["decrypt", "--key", &key, "--any-org", "s3://cli-io/rec.esdk", "s3://cli-io/rec.wav"]));
    ok(&aws.callvault(&[
        "decrypt",
        "--key",
        &key,
        "--any-org",
        "--range",
        "8388600-8388700",
        "s3://cli-io/rec.esdk",
        &dir.path("range"),
    ]));
    assert_eq!(std::fs::read(dir.path("range")).unwrap(), &data[8_388_600..8_388_701]);
    let v: serde_json::Value =
        serde_json::from_slice(&aws.callvault(&["inspect", "s3://cli-io/rec.esdk"]).stdout).unwrap();
    assert_eq!(v["plaintext_length"], data.len());
    let body = rt().block_on(async {
        let out = aws.s3().await.get_object().bucket("cli-io").key("rec.wav").send().await.unwrap();
        out.body.collect().await.unwrap().into_bytes()
    });
    assert!(body == data, "S3 round trip differs");
    let r = aws.callvault(&["decrypt", "--key", &key, "--any-org", "s3://cli-io/missing", &dir.path("x")]);
    assert!(stderr(&r).contains("error[not_found]"), "{}", stderr(&r));
}

#[test]
fn decrypt_calls_only_keys_the_operator_trusts() {
    let aws = LocalAws::shared();
    let key = setup(aws, "SYMMETRIC_DEFAULT");
    let dir = TempDir::new("cli-trust");
    let ct = encrypt(aws, &dir, &key, &sample(1000, 9), &[]);
    let out = dir.path("out.wav");
    let decrypts = || aws.kms_calls_for(&key).get("Decrypt").copied().unwrap_or(0);
    let before = decrypts();
    // No key and no account: refused before any KMS call.
    let r = aws.callvault(&["decrypt", "--context", "org=acme", &ct, &out]);
    assert!(stderr(&r).contains("error[key_filter_required]") && stderr(&r).contains("--key"), "{}", stderr(&r));
    // Another account: the header's key is not called.
    let r = aws.callvault(&["decrypt", "--account", "999999999999", "--context", "org=acme", &ct, &out]);
    assert!(stderr(&r).contains("error[key_not_found]"), "{}", stderr(&r));
    // No org: refused unless --any-org.
    let r = aws.callvault(&["decrypt", "--key", &key, &ct, &out]);
    assert!(stderr(&r).contains("error[usage]") && stderr(&r).contains("org="), "{}", stderr(&r));
    assert_eq!(decrypts(), before, "KMS was never asked");
    assert!(!std::path::Path::new(&out).exists());
    ok(&aws.callvault(&["decrypt", "--key", &key, "--any-org", &ct, &out]));
    assert_eq!(decrypts(), before + 1);
}
