//! Interoperability with the official AWS Encryption SDK, both directions,
//! against the local KMS: `aws-encryption-cli` 4.3 (Python SDK 3.x) and the
//! Python SDK 4.x with the Material Providers Library (tests/peers).
//! Messages must decrypt byte-identical everywhere.

use std::path::Path;

use e2e::*;

const CONTEXT: &[(&str, &str)] =
    &[("org", "acme"), ("recording_type", "calls"), ("recording_id", "r-42"), ("content_type", "audio/wav")];

/// (size, frame length) for every case: 0, 1, frame-1, frame, frame+1,
/// several frames plus a tail, 10 MiB; at 4096 and 65536.
fn cases() -> Vec<(usize, u32)> {
    let mut v = Vec::new();
    for f in [4096usize, 65536] {
        for size in [0, 1, f - 1, f, f + 1, 3 * f + 17, 10 << 20] {
            v.push((size, f as u32));
        }
    }
    v
}

struct Keys {
    primary: String,
    dr: String,
    rsa: String,
    rsa_pem: String,
}

fn keys(aws: &LocalAws, dir: &TempDir) -> Keys {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let primary = aws.create_key("SYMMETRIC_DEFAULT", REGION).await;
        let dr = aws.create_key("SYMMETRIC_DEFAULT", DR_REGION).await;
        let rsa = aws.create_key("RSA_4096", REGION).await;
        let der = aws.kms().await.get_public_key().key_id(&rsa).send().await.unwrap().public_key.unwrap().into_inner();
        let b64 = aws_smithy_types::base64::encode(&der);
        let body: Vec<&str> = b64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
        let pem = format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", body.join("\n"));
        let rsa_pem = dir.path("rsa.pem");
        std::fs::write(&rsa_pem, pem).unwrap();
        Keys { primary, dr, rsa, rsa_pem }
    })
}

fn context_args() -> Vec<String> {
    CONTEXT.iter().flat_map(|(k, v)| ["--context".to_string(), format!("{k}={v}")]).collect()
}

fn callvault_encrypt(aws: &LocalAws, keys: &[&str], frame: u32, input: &str, output: &str) {
    let mut args: Vec<String> = vec!["encrypt".into()];
    for k in keys {
        args.extend(["--key".into(), k.to_string()]);
    }
    args.extend(context_args());
    args.extend(["--frame-length".into(), frame.to_string(), input.into(), output.into()]);
    ok(&aws.callvault(&args.iter().map(String::as_str).collect::<Vec<_>>()));
}

fn callvault_decrypt(aws: &LocalAws, input: &str, output: &str) {
    let mut args: Vec<String> = vec!["decrypt".into(), "--account".into(), ACCOUNT.into()];
    args.extend(context_args());
    args.extend([input.into(), output.into()]);
    ok(&aws.callvault(&args.iter().map(String::as_str).collect::<Vec<_>>()));
}

fn cli_context() -> Vec<String> {
    let mut v = vec!["-c".to_string()];
    v.extend(CONTEXT.iter().map(|(k, val)| format!("{k}={val}")));
    v
}

/// aws-encryption-cli exits 0 on a context mismatch (it only warns and
/// deletes the output), so success is judged by the output too.
fn cli_decrypt(aws: &LocalAws, key: &str, input: &str, output: &str) {
    let mut args: Vec<String> = vec![
        "--decrypt-unsigned".into(),
        "-i".into(),
        input.into(),
        "-o".into(),
        output.into(),
        "-w".into(),
        format!("key={key}"),
    ];
    args.extend(cli_context());
    args.push("-S".into());
    let out = aws.esdk_cli(&args.iter().map(String::as_str).collect::<Vec<_>>());
    ok(&out);
    assert!(Path::new(output).exists(), "aws-encryption-cli wrote no output: {}", String::from_utf8_lossy(&out.stderr));
}

fn cli_encrypt(aws: &LocalAws, keys: &[&str], frame: u32, input: &str, output: &str) {
    let mut args: Vec<String> =
        vec!["--encrypt".into(), "-i".into(), input.into(), "-o".into(), output.into(), "-w".into()];
    args.extend(keys.iter().map(|k| format!("key={k}")));
    args.extend([
        "--algorithm".into(),
        "AES_256_GCM_HKDF_SHA512_COMMIT_KEY".into(),
        "--frame-length".into(),
        frame.to_string(),
    ]);
    args.extend(cli_context());
    args.push("-S".into());
    ok(&aws.esdk_cli(&args.iter().map(String::as_str).collect::<Vec<_>>()));
}

fn peer_batch(aws: &LocalAws, dir: &TempDir, jobs: &serde_json::Value) {
    let (jobs_path, results_path) = (dir.path("jobs.json"), dir.path("results.json"));
    std::fs::write(&jobs_path, serde_json::to_vec(jobs).unwrap()).unwrap();
    let out = aws.esdk4(&["batch", &jobs_path, &results_path]);
    let results = std::fs::read_to_string(&results_path).unwrap_or_default();
    assert!(out.status.success(), "esdk4 batch failed: {results}\n{}", String::from_utf8_lossy(&out.stderr));
}

fn context_json() -> serde_json::Value {
    CONTEXT.iter().map(|(k, v)| (k.to_string(), serde_json::Value::from(*v))).collect::<serde_json::Map<_, _>>().into()
}

fn assert_same(a: &str, b: &str) {
    let (x, y) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    assert!(x == y, "{b} differs from {a} ({} vs {} bytes)", x.len(), y.len());
}

fn write_inputs(dir: &TempDir) -> Vec<(String, u32)> {
    cases()
        .into_iter()
        .enumerate()
        .map(|(i, (size, frame))| {
            let p = dir.path(&format!("plain-{i}-{size}-{frame}.wav"));
            std::fs::write(&p, sample(size, i as u8)).unwrap();
            (p, frame)
        })
        .collect()
}

#[test]
fn callvault_messages_decrypt_byte_identical_with_the_official_cli_and_sdk_4() {
    let aws = LocalAws::shared();
    let dir = TempDir::new("interop-out");
    let keys = keys(aws, &dir);
    let mut jobs = Vec::new();
    for (plain, frame) in write_inputs(&dir) {
        let ct = format!("{plain}.cv");
        callvault_encrypt(aws, &[&keys.primary], frame, &plain, &ct);
        let bytes = std::fs::read(&ct).unwrap();
        assert_eq!(&bytes[..3], &[0x02, 0x04, 0x78], "version 2, suite 0x0478");
        let by_cli = format!("{plain}.cli");
        cli_decrypt(aws, &keys.primary, &ct, &by_cli);
        assert_same(&plain, &by_cli);
        jobs.push(serde_json::json!({"op": "decrypt", "keys": [keys.primary], "context": context_json(), "in": ct, "out": format!("{plain}.sdk4")}));
    }
    peer_batch(aws, &dir, &serde_json::Value::Array(jobs.clone()));
    for job in &jobs {
        let out = job["out"].as_str().unwrap();
        assert_same(out.trim_end_matches(".sdk4"), out);
    }
}

#[test]
fn official_cli_and_sdk_4_messages_decrypt_byte_identical_with_callvault() {
    let aws = LocalAws::shared();
    let dir = TempDir::new("interop-in");
    let keys = keys(aws, &dir);
    let inputs = write_inputs(&dir);
    let mut jobs = Vec::new();
    for (plain, frame) in &inputs {
        let by_cli = format!("{plain}.cli.esdk");
        cli_encrypt(aws, &[&keys.primary], *frame, plain, &by_cli);
        let out = format!("{plain}.from-cli");
        callvault_decrypt(aws, &by_cli, &out);
        assert_same(plain, &out);
        jobs.push(serde_json::json!({"op": "encrypt", "keys": [keys.primary], "context": context_json(), "frame_length": frame, "in": plain, "out": format!("{plain}.sdk4.esdk")}));
    }
    peer_batch(aws, &dir, &serde_json::Value::Array(jobs));
    for (plain, _) in &inputs {
        let out = format!("{plain}.from-sdk4");
        callvault_decrypt(aws, &format!("{plain}.sdk4.esdk"), &out);
        assert_same(plain, &out);
    }
}

#[test]
fn two_wrapping_keys_interoperate_both_ways_and_each_key_opens_alone() {
    let aws = LocalAws::shared();
    let dir = TempDir::new("interop-two");
    let keys = keys(aws, &dir);
    let plain = dir.path("plain.wav");
    std::fs::write(&plain, sample(200_000, 9)).unwrap();

    // callvault -> CLI (with the disaster-recovery key alone) and SDK 4.
    let ct = dir.path("two.cv");
    callvault_encrypt(aws, &[&keys.primary, &keys.dr], 4096, &plain, &ct);
    cli_decrypt(aws, &keys.dr, &ct, &dir.path("two.cli"));
    assert_same(&plain, &dir.path("two.cli"));
    cli_decrypt(aws, &keys.primary, &ct, &dir.path("two.cli.primary"));
    assert_same(&plain, &dir.path("two.cli.primary"));

    // CLI and SDK 4 multi-keyrings -> callvault, opened with the DR key only.
    cli_encrypt(aws, &[&keys.primary, &keys.dr], 4096, &plain, &dir.path("two.cli.esdk"));
    peer_batch(
        aws,
        &dir,
        &serde_json::json!([
            {"op": "decrypt", "keys": [keys.dr], "context": context_json(), "in": ct, "out": dir.path("two.sdk4")},
            {"op": "encrypt", "keys": [keys.primary, keys.dr], "context": context_json(), "frame_length": 4096, "in": plain, "out": dir.path("two.sdk4.esdk")},
        ]),
    );
    assert_same(&plain, &dir.path("two.sdk4"));
    for (i, input) in [dir.path("two.cli.esdk"), dir.path("two.sdk4.esdk")].iter().enumerate() {
        let out = dir.path(&format!("two.back.{i}"));
        ok(&aws.callvault(&["decrypt", "--key", &keys.dr, "--context", "org=acme", input, &out]));
        assert_same(&plain, &out);
    }
}

#[test]
fn the_aws_kms_rsa_keyring_interoperates_with_sdk_4_both_ways() {
    let aws = LocalAws::shared();
    let dir = TempDir::new("interop-rsa");
    let keys = keys(aws, &dir);
    let mut jobs = Vec::new();
    let inputs: Vec<(String, u32)> = [(0usize, 4096u32), (4097, 4096), (300_000, 65536)]
        .iter()
        .enumerate()
        .map(|(i, (size, frame))| {
            let p = dir.path(&format!("rsa-{i}.wav"));
            std::fs::write(&p, sample(*size, 20 + i as u8)).unwrap();
            (p, *frame)
        })
        .collect();
    for (plain, frame) in &inputs {
        let ct = format!("{plain}.cv");
        callvault_encrypt(aws, &[&keys.rsa], *frame, plain, &ct);
        jobs.push(serde_json::json!({"op": "decrypt", "keys": [keys.rsa], "rsa": true, "context": context_json(), "in": ct, "out": format!("{plain}.sdk4")}));
        jobs.push(serde_json::json!({"op": "encrypt", "keys": [keys.rsa], "rsa_public_key_pem": keys.rsa_pem, "context": context_json(), "frame_length": frame, "in": plain, "out": format!("{plain}.sdk4.esdk")}));
    }
    peer_batch(aws, &dir, &serde_json::Value::Array(jobs));
    for (plain, _) in &inputs {
        assert_same(plain, &format!("{plain}.sdk4"));
        let out = format!("{plain}.back");
        callvault_decrypt(aws, &format!("{plain}.sdk4.esdk"), &out);
        assert_same(plain, &out);
    }
}

#[test]
fn a_wrong_context_is_refused_by_the_official_sdk_too() {
    let aws = LocalAws::shared();
    let dir = TempDir::new("interop-ctx");
    let keys = keys(aws, &dir);
    let plain = dir.path("p.wav");
    std::fs::write(&plain, sample(5000, 3)).unwrap();
    let ct = dir.path("p.cv");
    callvault_encrypt(aws, &[&keys.primary], 4096, &plain, &ct);
    let (jobs, results) = (dir.path("bad-jobs.json"), dir.path("bad-results.json"));
    let job = serde_json::json!([{"op": "decrypt", "keys": [keys.primary], "context": {"org": "someone-else"}, "in": ct, "out": dir.path("nope")}]);
    std::fs::write(&jobs, job.to_string()).unwrap();
    let out = aws.esdk4(&["batch", &jobs, &results]);
    assert!(!out.status.success());
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&results).unwrap()).unwrap();
    assert_eq!(r[0]["ok"], false);
    assert!(!Path::new(&dir.path("nope")).exists());
}
