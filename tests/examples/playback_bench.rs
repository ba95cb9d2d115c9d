//! The playback benchmark, run by benches/playback.sh against a local AWS
//! named by the usual AWS_* variables:
//!
//!   playback_bench <MiB> [samples]
//!
//! Encrypts a recording of <MiB> MiB through the real encrypt-recording
//! handler, then plays 64 KiB ranges of it through the real playback handler
//! and reports:
//! - bytes read from S3 per 64 KiB range, frame-aligned and across a frame
//!   boundary (target: the header once, then at most 2 frames per range);
//! - time to first byte with the key cached, against a plain S3 ranged
//!   GetObject of the same 64 KiB of the vault object, sampled interleaved
//!   at the same random offsets, as a ratio of medians. Each request is a
//!   browser's: it carries the player's session cookie, which is verified,
//!   and the person's access checked, before anything is read.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;
use vault::config::FromSettings;

use e2e::ingest::{create_catalog_table, create_versioned_bucket, s3_encode_key, s3_event};
use e2e::playback::{collect, recording_path, request, Audits};
use envelope::REGULAR_FRAME_OVERHEAD;
use serde_json::json;
use vault::aws::AwsKms;
use vault::aws::DynamoCatalog as Catalog;
use vault::aws::S3Objects;
use vault::ingest::RecordingEncryptor;
use vault::playback::RecordingPlayer;
use vault::ports::catalog::RecordingCatalog;
use vault::ports::objects::{ObjectStore, S3Location, Upload, WriteOptions};
use vault::recording::RecordingId;

const RANGE: u64 = 64 * 1024;
const FRAME: u64 = 64 * 1024;

// The Lambdas' allocator, so the figures are the Lambda's (vault::wipe).
#[global_allocator]
static ALLOCATOR: vault::wipe::WipeOnFree = vault::wipe::WIPE_ON_FREE;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mib: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1024);
    let samples: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(60);
    let sdk = aws_config::load_from_env().await;
    let s3 = S3Objects::from_config(&sdk);
    let region = std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".into());

    // The recording, encrypted by the real function.
    let key = aws_sdk_kms::Client::new(&sdk).create_key().send().await.unwrap().key_metadata.unwrap().arn.unwrap();
    let (ingest, vault, table) = ("pbench-ingest", "pbench-vault", "pbench-catalog");
    for b in [ingest, vault] {
        create_versioned_bucket(s3.client(), b).await;
    }
    create_catalog_table(&aws_sdk_dynamodb::Client::new(&sdk), table).await;
    let object = "calls/bench-playback.wav";
    let handle = tokio::runtime::Handle::current();
    let loc = S3Location { bucket: ingest.into(), key: object.into() };
    let s3c = s3.clone();
    let started = Instant::now();
    let written = tokio::task::spawn_blocking(move || {
        let mut w = s3c.upload(
            &handle,
            &loc,
            WriteOptions { content_type: Some("audio/wav".into()), ..WriteOptions::default() },
        );
        let mut chunk = vec![0u8; 1 << 20];
        for i in 0..mib as usize {
            for (j, b) in chunk.iter_mut().enumerate() {
                *b = ((i * 31 + j * 7) % 251) as u8;
            }
            w.write_all(&chunk).unwrap();
        }
        w.finish().unwrap()
    })
    .await
    .unwrap();
    let etag = s3.client().head_object().bucket(ingest).key(object).send().await.unwrap().e_tag.unwrap();
    let env: HashMap<&str, String> = [
        ("AWS_REGION", region.clone()),
        ("CALLVAULT_ORG", "bench".to_string()),
        ("INGEST_BUCKET", ingest.to_string()),
        ("VAULT_BUCKET", vault.to_string()),
        ("CATALOG_TABLE", table.to_string()),
        ("RECORDING_KEYS", json!({ "calls": [key] }).to_string()),
        ("OIDC_ISSUER", e2e::playback::ISSUER.to_string()),
        ("OIDC_CLIENT_ID", e2e::playback::CLIENT_ID.to_string()),
        ("PLAYBACK_ACCESS", e2e::playback::access_for(&["calls"])),
    ]
    .into_iter()
    .collect();
    let config = encrypt_recording::Config::from_lookup(|n| env.get(n).cloned()).unwrap();
    let encryptor = RecordingEncryptor::new(
        AwsKms::new(&sdk),
        S3Objects::from_config(&sdk),
        Catalog::from_config(&sdk, table),
        config.settings,
    );
    let event = s3_event(
        ingest,
        &s3_encode_key(object),
        etag.trim_matches('"'),
        written.version.as_deref(),
        written.size as usize,
    );
    let answer = encrypt_recording::Handler::new(encryptor, None::<vault::aws::DeadLetterQueue>)
        .handle(event, (vault::time::unix_now() + 900) * 1000, "bench")
        .await
        .unwrap();
    assert_eq!(answer["recordings"][0]["outcome"], "encrypted", "{answer}");
    println!("prepared: {mib} MiB recording uploaded and encrypted in {:.1} s", started.elapsed().as_secs_f64());

    // Playback, configured as the Lambda reads its environment.
    let config = playback::Config::from_lookup(|n| env.get(n).cloned()).unwrap();
    let player = RecordingPlayer::new(
        AwsKms::new(&sdk),
        S3Objects::from_config(&sdk),
        Catalog::from_config(&sdk, table),
        config.settings,
    );
    let audits = Arc::new(Audits::default());
    // A browser's session, as the sign-in sets it.
    let secret = zeroize::Zeroizing::new("bench client secret".to_string());
    let session_keys = vec![zeroize::Zeroizing::new("bench session keys: 64 random characters in a deployment".into())];
    let sign_in = playback::auth::signin::SignIn::new(
        "https://player.example.com".into(),
        secret,
        session_keys,
        config.session,
        config.scopes.clone(),
    );
    let now = vault::time::unix_now();
    let session = playback::auth::session::Session {
        sub: "jane.doe".into(),
        name: Some("jane.doe".into()),
        email: None,
        groups: vec![e2e::playback::SUPERVISORS.into()],
        sid: "bench".into(),
        iat: now,
        exp: now + 3600,
    };
    let cookie = format!("{}={}", playback::auth::session::SESSION_COOKIE, sign_in.cookies.seal("session", &session));
    let auth = playback::auth::signin::Auth {
        oidc: playback::auth::oidc::Oidc::new(e2e::playback::IDP.clone(), config.oidc.clone()),
        access: config.access.clone(),
        sign_in: Some(sign_in),
    };
    let handler = playback::Handler::new(player, config.max_response_bytes, audits.clone(), auth);
    let path = recording_path("calls", "bench-playback.wav");
    let entry = Catalog::from_config(&sdk, table)
        .recording(&RecordingId { recording_type: "calls".into(), recording_id: "bench-playback.wav".into() })
        .await
        .unwrap()
        .unwrap();
    let size = entry.plaintext_size;
    let frame_ct = FRAME + REGULAR_FRAME_OVERHEAD;
    let header_len =
        entry.ciphertext_size - (size / FRAME) * frame_ct - (size % FRAME) - envelope::FINAL_FRAME_OVERHEAD;

    // Bytes read from S3 per range.
    let play = |start: u64| {
        let handler = &handler;
        let path = &path;
        let cookie = cookie.as_str();
        async move {
            let range = format!("bytes={start}-{}", start + RANGE - 1);
            let started = Instant::now();
            let response = handler.handle(request("GET", path, &[("range", &range), ("cookie", cookie)])).await;
            let mut body = response.into_body();
            let first = std::future::poll_fn(|cx| http_body::Body::poll_frame(std::pin::Pin::new(&mut body), cx))
                .await
                .expect("a first frame")
                .expect("audio");
            let ttfb = started.elapsed().as_secs_f64();
            let mut len = first.into_data().map(|d| d.len()).unwrap_or(0);
            let (rest, aborted) = collect(&mut body).await;
            assert!(aborted.is_none());
            len += rest.len();
            assert_eq!(len as u64, RANGE);
            ttfb
        }
    };
    play(size / 2).await; // opens the message: header + KMS
    let cold = audits.last();
    play(10 * FRAME).await;
    let aligned = audits.last();
    play(20 * FRAME + FRAME / 2).await;
    let crossing = audits.last();
    println!("header: {header_len} bytes; one 64 KiB frame: {frame_ct} bytes of ciphertext");
    for (what, a) in [
        ("first request (header + KMS)", &cold),
        ("frame-aligned 64 KiB", &aligned),
        ("64 KiB across a frame boundary", &crossing),
    ] {
        println!("{what:<32} S3 bytes read {:>8}  key {}", a.s3_bytes, a.key_source);
    }
    assert!(cold.s3_bytes <= header_len + 2 * frame_ct && cold.key_source == "kms");
    assert!(aligned.s3_bytes == frame_ct && crossing.s3_bytes == 2 * frame_ct, "{aligned:?} {crossing:?}");

    // Time to first byte, cached key, against a plain ranged GET of the
    // same bytes' ciphertext, interleaved at the same offsets.
    let client = s3.client().clone();
    let plain = |start: u64| {
        let client = client.clone();
        let key = entry.vault_key.clone();
        async move {
            let started = Instant::now();
            let out = client
                .get_object()
                .bucket(vault)
                .key(key)
                .range(format!("bytes={start}-{}", start + RANGE - 1))
                .send()
                .await
                .unwrap();
            let mut body = out.body;
            let _first = body.next().await.expect("a first chunk").unwrap();
            let ttfb = started.elapsed().as_secs_f64();
            while body.next().await.is_some() {}
            ttfb
        }
    };
    let catalog = Catalog::from_config(&sdk, table);
    let lookup = || async {
        let started = Instant::now();
        catalog.recording(&entry.id).await.unwrap().unwrap();
        started.elapsed().as_secs_f64()
    };
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let (mut ours, mut theirs, mut lookups) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..samples {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let start = seed % (size - RANGE);
        ours.push(play(start).await);
        theirs.push(plain(header_len + start).await);
        lookups.push(lookup().await);
    }
    assert!(
        audits.all().iter().skip(1).all(|a| a.key_source == "cache"),
        "every request after the first is a cache hit"
    );
    let stats = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        (v[v.len() / 2] * 1000.0, v[v.len() * 9 / 10] * 1000.0)
    };
    let ((our_med, our_p90), (plain_med, plain_p90)) = (stats(&mut ours), stats(&mut theirs));
    let (lookup_med, lookup_p90) = stats(&mut lookups);
    println!("time to first byte over {samples} random 64 KiB ranges (median / p90):");
    println!(
        "  playback, key cached   {our_med:7.2} ms / {our_p90:7.2} ms  (session check + ranged GetObject of the current version + decrypt)"
    );
    println!("  plain S3 ranged GET    {plain_med:7.2} ms / {plain_p90:7.2} ms");
    println!("  (a catalog GetItem alone, no longer on this path: {lookup_med:7.2} ms / {lookup_p90:7.2} ms)");
    println!(
        "RESULT size_mib={mib} header_bytes={header_len} aligned_s3_bytes={} crossing_s3_bytes={} ttfb_ms={our_med:.2} plain_ttfb_ms={plain_med:.2} getitem_ms={lookup_med:.2} ratio={:.2}",
        aligned.s3_bytes,
        crossing.s3_bytes,
        our_med / plain_med
    );
}
