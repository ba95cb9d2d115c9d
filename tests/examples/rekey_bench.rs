//! The re-key benchmark's phases, each run as its own process (so that
//! /usr/bin/time reports each one's peak memory) by benches/rekey.sh
//! against a local AWS named by the usual AWS_* variables:
//!
//!   rekey_bench prepare <state.json> <MiB>   keys A and B, buckets, table; one recording encrypted under A
//!   rekey_bench copy    <state.json>         a plain streamed S3 copy of the vault object (GetObject -> multipart upload)
//!   rekey_bench rekey   <state.json>         the rekey handler (schema 2.0 task) moves it to the other key
//!   rekey_bench many    <state.json> <N>     N 1 MiB recordings of type `many` encrypted under A
//!
//! `copy` and `rekey` print `SECONDS <s>`; `many` prints the environment
//! `callvault rekey --local` needs.

use std::time::Instant;

use e2e::ingest::{create_catalog_table, create_versioned_bucket, s3_encode_key, s3_event};
use serde_json::{json, Value};
use vault::aws::{AwsKms, DynamoCatalog, S3Objects};
use vault::config::FromSettings;
use vault::ingest::RecordingEncryptor;
use vault::ports::objects::{ObjectStore, S3Location, Upload, WriteOptions};
use vault::rekey::Rekeyer;

const KEY: &str = "calls/bench-rekey.wav";

// The Lambdas' allocator, so the figures are the Lambda's (vault::wipe).
#[global_allocator]
static ALLOCATOR: vault::wipe::WipeOnFree = vault::wipe::WIPE_ON_FREE;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (mode, state) = (args.get(1).map(String::as_str), args.get(2).cloned().unwrap_or_default());
    let n = args.get(3).and_then(|s| s.parse().ok());
    match mode {
        Some("prepare") => prepare(&state, n.unwrap_or(1024)).await,
        Some("copy") => copy(&state, false).await,
        Some("copy-same") => copy(&state, true).await,
        Some("rekey") => rekey(&state).await,
        Some("many") => many(&state, n.unwrap_or(50)).await,
        _ => {
            eprintln!("usage: rekey_bench prepare|copy|rekey|many <state.json> [MiB|N]");
            std::process::exit(2);
        }
    }
}

fn load(path: &str) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn recording_keys(state: &Value) -> String {
    json!({ "calls": [state["a"]], "many": [state["a"]] }).to_string()
}

fn env(state: &Value, ingest: bool) -> std::collections::HashMap<&'static str, String> {
    let mut env: std::collections::HashMap<&'static str, String> = [
        ("AWS_REGION", std::env::var("AWS_REGION").unwrap()),
        ("CALLVAULT_ORG", "bench".to_string()),
        ("VAULT_BUCKET", state["vault"].as_str().unwrap().to_string()),
        ("CATALOG_TABLE", state["table"].as_str().unwrap().to_string()),
        ("RECORDING_KEYS", recording_keys(state)),
    ]
    .into_iter()
    .collect();
    if ingest {
        env.insert("INGEST_BUCKET", state["ingest"].as_str().unwrap().to_string());
    }
    env
}

/// Writes `mib` MiB to `loc` in the ingest bucket; encrypts it with the
/// ingest handler.
async fn ingest(sdk: &aws_config::SdkConfig, state: &Value, key: &str, mib: usize) {
    let s3 = S3Objects::from_config(sdk);
    let loc = S3Location { bucket: state["ingest"].as_str().unwrap().into(), key: key.into() };
    let handle = tokio::runtime::Handle::current();
    let s3c = s3.clone();
    let written = tokio::task::spawn_blocking(move || {
        let mut w =
            s3c.upload(&handle, &loc, WriteOptions { content_type: Some("audio/wav".into()), ..Default::default() });
        let mut chunk = vec![0u8; 1 << 20];
        for i in 0..mib {
            for (j, b) in chunk.iter_mut().enumerate() {
                *b = ((i * 31 + j * 7) % 251) as u8;
            }
            std::io::Write::write_all(&mut w, &chunk).unwrap();
        }
        w.finish().unwrap()
    })
    .await
    .unwrap();
    let head = s3.client().head_object().bucket(state["ingest"].as_str().unwrap()).key(key).send().await.unwrap();
    let env = env(state, true);
    let config = encrypt_recording::Config::from_lookup(|n| env.get(n).cloned()).unwrap();
    let handler = encrypt_recording::Handler::new(
        RecordingEncryptor::new(
            AwsKms::new(sdk),
            S3Objects::from_config(sdk),
            DynamoCatalog::from_config(sdk, &config.catalog_table),
            config.settings,
        ),
        None::<vault::aws::DeadLetterQueue>,
    );
    let event = s3_event(
        state["ingest"].as_str().unwrap(),
        &s3_encode_key(key),
        head.e_tag.unwrap().trim_matches('"'),
        written.version.as_deref(),
        written.size as usize,
    );
    let answer = handler.handle(event, (vault::time::unix_now() + 900) * 1000, "bench").await.unwrap();
    assert_eq!(answer["recordings"][0]["outcome"], "encrypted", "{answer}");
}

async fn prepare(path: &str, mib: usize) {
    let sdk = aws_config::load_from_env().await;
    let kms = aws_sdk_kms::Client::new(&sdk);
    let mut keys = Vec::new();
    for _ in 0..2 {
        keys.push(kms.create_key().send().await.unwrap().key_metadata.unwrap().arn.unwrap());
    }
    let (ingest_bucket, vault, table) = ("bench-rk-ingest", "bench-rk-vault", "bench-rk-catalog");
    let s3 = S3Objects::from_config(&sdk);
    for b in [ingest_bucket, vault] {
        create_versioned_bucket(s3.client(), b).await;
    }
    create_catalog_table(&aws_sdk_dynamodb::Client::new(&sdk), table).await;
    let state =
        json!({ "a": keys[0], "b": keys[1], "on": keys[0], "ingest": ingest_bucket, "vault": vault, "table": table });
    ingest(&sdk, &state, KEY, mib).await;
    std::fs::write(path, state.to_string()).unwrap();
}

async fn copy(path: &str, same: bool) {
    let state = load(path);
    let sdk = aws_config::load_from_env().await;
    let s3 = S3Objects::from_config(&sdk);
    let vault = state["vault"].as_str().unwrap();
    let from = S3Location { bucket: vault.into(), key: KEY.into() };
    let to = S3Location { bucket: vault.into(), key: if same { KEY.into() } else { format!("copy/{KEY}") } };
    let version = if same {
        let id = vault::recording::route(KEY).unwrap();
        let catalog = DynamoCatalog::from_config(&sdk, state["table"].as_str().unwrap());
        vault::ports::catalog::RecordingCatalog::recording(&catalog, &id).await.unwrap().unwrap().vault_version
    } else {
        None
    };
    let started = Instant::now();
    let handle = tokio::runtime::Handle::current();
    let mut reader = s3.read(&from, version.as_deref(), None).await.unwrap().into_blocking_read(&handle);
    let s3c = s3.clone();
    let written = tokio::task::spawn_blocking(move || {
        let mut w = s3c.upload(&handle, &to, WriteOptions::default());
        std::io::copy(&mut reader, &mut w).unwrap();
        w.finish().unwrap()
    })
    .await
    .unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert!(written.size > 0);
    println!("SECONDS {secs:.3}");
}

async fn rekey(path: &str) {
    let mut state = load(path);
    let sdk = aws_config::load_from_env().await;
    let env = env(&state, false);
    let config = rekey::Config::from_lookup(|n| env.get(n).cloned()).unwrap();
    let handler = rekey::Handler::new(Rekeyer::new(
        AwsKms::new(&sdk),
        S3Objects::from_config(&sdk),
        DynamoCatalog::from_config(&sdk, &config.catalog_table),
        config.settings,
    ));
    let to = if state["on"] == state["a"] { state["b"].clone() } else { state["a"].clone() };
    let task = inbound::s3_batch::BatchTask {
        task_id: "bench".into(),
        bucket: state["vault"].as_str().unwrap().into(),
        key: KEY.into(),
        version: None,
    };
    let event = inbound::s3_batch::invocation(
        &format!("bench-{}", vault::time::unix_now()),
        &task,
        &[("operation", "rekey"), ("targetKeys", to.as_str().unwrap())],
    );
    let started = Instant::now();
    let answer = handler.handle(&event).await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(answer["results"][0]["resultCode"], "Succeeded", "{answer}");
    state["on"] = to;
    std::fs::write(path, state.to_string()).unwrap();
    println!("SECONDS {secs:.3}");
}

async fn many(path: &str, n: usize) {
    let state = load(path);
    let sdk = aws_config::load_from_env().await;
    for i in 0..n {
        ingest(&sdk, &state, &format!("many/r-{i:05}"), 1).await;
    }
    println!(
        "CATALOG_TABLE={} VAULT_BUCKET={} CALLVAULT_ORG=bench FROM_KEY={} TO_KEY={}",
        state["table"].as_str().unwrap(),
        state["vault"].as_str().unwrap(),
        state["a"].as_str().unwrap(),
        state["b"].as_str().unwrap()
    );
    println!("RECORDING_KEYS={}", recording_keys(&state));
}
