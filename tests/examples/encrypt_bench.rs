//! The encrypt-recording benchmark's phases, each run as its own process
//! (so that /usr/bin/time reports each one's peak memory) by
//! benches/encrypt_recording.sh against a local AWS named by the usual
//! AWS_* variables:
//!
//!   encrypt_bench prepare <state.json> <MiB>   key, buckets, table; upload the recording
//!   encrypt_bench copy    <state.json>         GetObject -> multipart upload, same SDK, same parts
//!   encrypt_bench handler <state.json>         the real handler on the S3 event
//!
//! `copy` and `handler` print `SECONDS <s>`.

use std::io::Write;
use std::time::Instant;
use vault::config::FromSettings;

use e2e::ingest::{create_catalog_table, create_versioned_bucket, s3_encode_key, s3_event};
use encrypt_recording::{Config, Handler};
use serde_json::{json, Value};
use vault::aws::AwsKms;
use vault::aws::DynamoCatalog as Catalog;
use vault::aws::S3Objects;
use vault::ingest::RecordingEncryptor;
use vault::ports::objects::{ObjectStore, S3Location, Upload, WriteOptions};

const KEY: &str = "calls/bench-1gib.wav";

async fn sdk() -> aws_config::SdkConfig {
    aws_config::load_from_env().await
}

// The Lambdas' allocator, so the figures are the Lambda's (vault::wipe).
#[global_allocator]
static ALLOCATOR: vault::wipe::WipeOnFree = vault::wipe::WIPE_ON_FREE;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (mode, state_path) = (args.get(1).map(String::as_str), args.get(2).cloned().unwrap_or_default());
    match mode {
        Some("prepare") => prepare(&state_path, args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1024)).await,
        Some("copy") => copy(&state_path).await,
        Some("handler") => handler(&state_path).await,
        _ => {
            eprintln!("usage: encrypt_bench prepare|copy|handler <state.json> [MiB]");
            std::process::exit(2);
        }
    }
}

async fn prepare(state_path: &str, mib: usize) {
    let sdk = sdk().await;
    let s3 = S3Objects::from_config(&sdk);
    let state: Value = match std::fs::read(state_path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap(),
        Err(_) => {
            let kms = aws_sdk_kms::Client::new(&sdk);
            let key = kms.create_key().send().await.unwrap().key_metadata.unwrap().arn.unwrap();
            let (ingest, vault, table) = ("bench-ingest", "bench-vault", "bench-catalog");
            for b in [ingest, vault] {
                create_versioned_bucket(s3.client(), b).await;
            }
            create_catalog_table(&aws_sdk_dynamodb::Client::new(&sdk), table).await;
            json!({ "key": key, "ingest": ingest, "vault": vault, "table": table, "round": 0 })
        }
    };
    let mut state = state;
    let round = state["round"].as_u64().unwrap() + 1;
    state["round"] = round.into();
    // A fresh recording each round (the handler deletes the plaintext).
    let handle = tokio::runtime::Handle::current();
    let loc = S3Location { bucket: state["ingest"].as_str().unwrap().into(), key: KEY.into() };
    let s3c = s3.clone();
    let written = tokio::task::spawn_blocking(move || {
        let mut w = s3c.upload(
            &handle,
            &loc,
            WriteOptions { content_type: Some("audio/wav".into()), ..WriteOptions::default() },
        );
        let mut chunk = vec![0u8; 1 << 20];
        for i in 0..mib {
            for (j, b) in chunk.iter_mut().enumerate() {
                *b = ((i * 31 + j * 7) % 251) as u8;
            }
            w.write_all(&chunk).unwrap();
        }
        w.finish().unwrap()
    })
    .await
    .unwrap();
    let head = s3.client().head_object().bucket(state["ingest"].as_str().unwrap()).key(KEY).send().await.unwrap();
    state["etag"] = head.e_tag.unwrap().trim_matches('"').into();
    state["version"] = written.version.unwrap().into();
    state["size"] = written.size.into();
    std::fs::write(state_path, state.to_string()).unwrap();
}

fn load(state_path: &str) -> Value {
    serde_json::from_slice(&std::fs::read(state_path).unwrap()).unwrap()
}

async fn copy(state_path: &str) {
    let state = load(state_path);
    let s3 = S3Objects::from_config(&sdk().await);
    let from = S3Location { bucket: state["ingest"].as_str().unwrap().into(), key: KEY.into() };
    let to = S3Location { bucket: state["vault"].as_str().unwrap().into(), key: format!("copy/{KEY}") };
    let started = Instant::now();
    let handle = tokio::runtime::Handle::current();
    let body = s3.read(&from, None, None).await.unwrap();
    let mut reader = body.into_blocking_read(&handle);
    let s3c = s3.clone();
    let written = tokio::task::spawn_blocking(move || {
        let mut w = s3c.upload(&handle, &to, WriteOptions::default());
        std::io::copy(&mut reader, &mut w).unwrap();
        w.finish().unwrap()
    })
    .await
    .unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(written.size, state["size"].as_u64().unwrap());
    println!("SECONDS {secs:.3}");
}

async fn handler(state_path: &str) {
    let state = load(state_path);
    let sdk = sdk().await;
    let recording_keys = json!({ "calls": [state["key"]] }).to_string();
    let env: std::collections::HashMap<&str, String> = [
        ("AWS_REGION", std::env::var("AWS_REGION").unwrap()),
        ("CALLVAULT_ORG", "bench".to_string()),
        ("INGEST_BUCKET", state["ingest"].as_str().unwrap().to_string()),
        ("VAULT_BUCKET", state["vault"].as_str().unwrap().to_string()),
        ("CATALOG_TABLE", state["table"].as_str().unwrap().to_string()),
        ("RECORDING_KEYS", recording_keys),
    ]
    .into_iter()
    .collect();
    let config = Config::from_lookup(|n| env.get(n).cloned()).unwrap();
    let encryptor = RecordingEncryptor::new(
        AwsKms::new(&sdk),
        S3Objects::from_config(&sdk),
        Catalog::from_config(&sdk, &config.catalog_table),
        config.settings,
    );
    let handler = Handler::new(encryptor, None::<vault::aws::DeadLetterQueue>);
    // Each round is a new recording id in the catalog's eyes: clear the last.
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let _ = ddb
        .delete_item()
        .table_name(state["table"].as_str().unwrap())
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("recording#{KEY}")))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("recording".into()))
        .send()
        .await;
    let event = s3_event(
        state["ingest"].as_str().unwrap(),
        &s3_encode_key(KEY),
        state["etag"].as_str().unwrap(),
        state["version"].as_str(),
        state["size"].as_u64().unwrap() as usize,
    );
    let started = Instant::now();
    let answer = handler.handle(event, (vault::time::unix_now() + 900) * 1000, "bench").await.unwrap();
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(answer["recordings"][0]["outcome"], "encrypted", "{answer}");
    println!("SECONDS {secs:.3}");
}
