//! playback end to end on the local AWS: recordings encrypted by the real
//! encrypt-recording handler, played back through the real playback handler
//! and SDK adapters, from Function URL events. Whole recordings and ranges
//! equal the original bytes; seeking costs one KMS Decrypt; a revoked key
//! stops playback once the cache time is up; a tampered or swapped vault
//! object releases nothing of its bad frames.

use e2e::ingest::Stack;
use e2e::playback::{recording_path, Playback, Reply};
use e2e::*;

const FRAME: u32 = 4096;

/// A stack with small frames (many frame boundaries in little data) and a
/// recording `calls/<id>` of `len` bytes encrypted into it.
async fn recorded<'a>(aws: &'a LocalAws, key: &str, id: &str, len: usize) -> (Stack<'a>, Vec<u8>) {
    let mut stack = Stack::new(aws, &[("calls", &[key])]).await;
    stack.frame_length = Some(FRAME);
    let data = sample(len, 7);
    stack.encrypt(&format!("calls/{id}"), &data, "audio/wav").await;
    (stack, data)
}

fn decrypts(aws: &LocalAws, key: &str) -> u64 {
    aws.kms_calls_for(key).get("Decrypt").copied().unwrap_or(0)
}

fn assert_range(reply: &Reply, data: &[u8], start: u64, end_inclusive: u64) {
    assert_eq!(reply.status, 206, "{reply:?}");
    assert_eq!(reply.aborted, None);
    assert_eq!(reply.header("content-range"), format!("bytes {start}-{end_inclusive}/{}", data.len()));
    assert_eq!(reply.header("content-length"), (end_inclusive + 1 - start).to_string());
    assert!(
        reply.body == data[start as usize..=end_inclusive as usize],
        "bytes {start}-{end_inclusive}: {} bytes differ from the original",
        reply.body.len()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_get_returns_the_original_bytes_and_head_the_same_headers() {
    let aws = LocalAws::shared();
    let key = aws.create_key("SYMMETRIC_DEFAULT", REGION).await;
    // 635 frames: the whole recording streams in three 1 MiB batches.
    let (stack, data) = recorded(aws, &key, "2026/11/Agent Smith+1.wav", 2_600_000 + 123).await;
    let playback = Playback::new(&stack, &[]).await;
    let path = recording_path("calls", "2026/11/Agent Smith+1.wav");

    let get = playback.get(&path, None).await;
    assert_eq!(get.status, 200, "{get:?}");
    assert_eq!(get.aborted, None);
    assert!(get.body == data, "the full GET differs from the original");
    assert_eq!(get.header("content-type"), "audio/wav");
    assert_eq!(get.header("content-length"), data.len().to_string());
    assert_eq!(get.header("accept-ranges"), "bytes");
    let entry = stack.entry("calls", "2026/11/Agent Smith+1.wav").await.unwrap();
    assert_eq!(get.header("etag"), format!("\"{}\"", entry.message_id));
    assert_eq!(get.header("cache-control"), "private, no-store");

    let head = playback.send("HEAD", &path, &[]).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.headers, get.headers, "HEAD answers GET's headers");

    let ranged_get = playback.get(&path, Some("bytes=100-199")).await;
    let ranged_head = playback.send("HEAD", &path, &[("range", "bytes=100-199")]).await;
    assert_eq!(ranged_head.status, 206);
    assert_eq!(ranged_head.headers, ranged_get.headers);

    // The audit line names the caller from the Function URL's IAM context.
    let audit = playback.audits.all().into_iter().find(|a| a.method == "GET").unwrap();
    assert_eq!(audit.principal.as_deref(), Some("arn:aws:sts::111122223333:assumed-role/CallvaultSupervisor/jane.doe"));
    assert_eq!(audit.recording.as_deref(), Some("calls/2026/11/Agent Smith+1.wav"));
    assert_eq!(audit.bytes_sent, data.len() as u64);
    assert_eq!(audit.key_arn.as_deref(), Some(key.as_str()));
    assert_eq!((audit.key_source, audit.kms_calls, audit.outcome, audit.status), ("kms", 1, "ok", 200));
    assert_eq!(audit.range_served.as_deref(), Some(&*format!("0-{}/{}", data.len() - 1, data.len())));
    assert_eq!(audit.source_ip.as_deref(), Some("203.0.113.7"));
}

#[tokio::test(flavor = "multi_thread")]
async fn ranges_are_capped_unsatisfiable_ones_answer_416_and_malformed_requests_400() {
    let aws = LocalAws::shared();
    let key = aws.create_key("SYMMETRIC_DEFAULT", REGION).await;
    let (stack, data) = recorded(aws, &key, "capped.wav", 200_000).await;
    stack.encrypt("calls/empty.wav", b"", "audio/wav").await;
    // An exact multiple of the frame length: the final frame is empty.
    let exact = sample(16 * FRAME as usize, 3);
    stack.encrypt("calls/exact.wav", &exact, "audio/wav").await;
    let playback = Playback::new(&stack, &[("MAX_RESPONSE_BYTES", "65536")]).await;
    let path = recording_path("calls", "capped.wav");
    let n = data.len() as u64;

    // A 206 may return less than asked: the player asks again from there.
    let reply = playback.get(&path, Some("bytes=1000-")).await;
    assert_range(&reply, &data, 1000, 1000 + 65535);
    let reply = playback.get(&path, Some(&format!("bytes={}-", 1000 + 65536))).await;
    assert_range(&reply, &data, 66536, 66536 + 65535);
    // Without a Range the whole recording streams.
    let reply = playback.get(&path, None).await;
    assert_eq!((reply.status, reply.body.len()), (200, data.len()));

    for range in [format!("bytes={n}-"), format!("bytes={}-{}", n + 5, n + 10), "bytes=-0".to_string()] {
        let reply = playback.get(&path, Some(&range)).await;
        assert_eq!(reply.status, 416, "{range}");
        assert_eq!(reply.header("content-range"), format!("bytes */{n}"));
        assert_eq!(reply.json()["error"], "range_not_satisfiable");
    }
    let exact_path = recording_path("calls", "exact.wav");
    assert!(playback.get(&exact_path, None).await.body == exact);
    let last = exact.len() as u64 - 1;
    assert_range(&playback.get(&exact_path, Some("bytes=-1")).await, &exact, last, last);
    assert_range(&playback.get(&exact_path, Some("bytes=4090-8200")).await, &exact, 4090, 8200);
    let empty = recording_path("calls", "empty.wav");
    let reply = playback.get(&empty, None).await;
    assert_eq!((reply.status, reply.body.len(), reply.header("content-length")), (200, 0, "0"));
    let reply = playback.get(&empty, Some("bytes=0-")).await;
    assert_eq!((reply.status, reply.header("content-range")), (416, "bytes */0"));

    for (range, code) in [("bytes=5-1", "bad_range"), ("bytes=0-1,4-5", "bad_range"), ("seconds=1-2", "bad_range")] {
        let reply = playback.get(&path, Some(range)).await;
        assert_eq!((reply.status, reply.json()["error"].as_str().unwrap()), (400, code), "{range}");
    }
    for bad in ["/recordings/calls", "/recordings//x", "/recordings/calls/%FF", "/elsewhere"] {
        let reply = playback.get(bad, None).await;
        assert_eq!((reply.status, reply.json()["error"].as_str().unwrap()), (400, "bad_path"), "{bad}");
    }
    let reply = playback.get(&recording_path("calls", "no-such.wav"), None).await;
    assert_eq!((reply.status, reply.json()["error"].as_str().unwrap()), (404, "not_found"));
    let reply = playback.send("POST", &path, &[]).await;
    assert_eq!((reply.status, reply.header("allow")), (405, "GET, HEAD"));
    assert_eq!(reply.json()["error"], "method_not_allowed");

    // Conditional requests: an unchanged recording is 304, a stale If-Range gets it whole.
    let etag = playback.get(&path, Some("bytes=0-0")).await.header("etag").to_string();
    let reply = playback.send("GET", &path, &[("if-none-match", &etag)]).await;
    assert_eq!((reply.status, reply.body.len()), (304, 0));
    let reply = playback.send("GET", &path, &[("range", "bytes=0-9"), ("if-range", "\"stale\"")]).await;
    assert_eq!(reply.status, 200);
    let reply = playback.send("GET", &path, &[("range", "bytes=0-9"), ("if-range", &etag)]).await;
    assert_range(&reply, &data, 0, 9);
}

#[tokio::test(flavor = "multi_thread")]
async fn seeking_twenty_times_costs_one_kms_call_and_a_disabled_key_stops_playback_after_the_cache_time() {
    let aws = LocalAws::shared();
    let key = aws.create_key("SYMMETRIC_DEFAULT", REGION).await;
    let (stack, data) = recorded(aws, &key, "seek.wav", 500_000).await;
    let playback = Playback::new(&stack, &[("KEY_CACHE_TTL_SECONDS", "5")]).await;
    let path = recording_path("calls", "seek.wav");
    let before = decrypts(aws, &key);

    for i in 0..20u64 {
        let start = (i * 24_989) % (data.len() as u64 - 3000);
        let reply = playback.get(&path, Some(&format!("bytes={start}-{}", start + 2999))).await;
        assert_range(&reply, &data, start, start + 2999);
    }
    assert_eq!(decrypts(aws, &key) - before, 1, "20 seeks, one KMS Decrypt");
    let audits = playback.audits.all();
    assert_eq!(audits.iter().filter(|a| a.key_source == "kms").count(), 1);
    assert_eq!(audits.iter().filter(|a| a.key_source == "cache" && a.kms_calls == 0).count(), 19);
    // Only the header (once) and the covering frames were read.
    assert!(audits.iter().skip(1).all(|a| a.s3_bytes <= 2 * (u64::from(FRAME) + 32)), "{audits:?}");

    aws.kms().await.disable_key().key_id(&key).send().await.unwrap();
    // Within the cache time the opened recording still plays...
    assert_eq!(playback.get(&path, Some("bytes=0-9")).await.status, 206);
    // ...and once it has passed, the revocation holds.
    tokio::time::sleep(std::time::Duration::from_millis(5100)).await;
    let reply = playback.get(&path, Some("bytes=0-9")).await;
    assert_eq!(reply.status, 403, "{reply:?}");
    let body = reply.json();
    assert_eq!(body["error"], "key_disabled");
    assert_eq!(body["key_arn"], key.as_str());
    let message = body["message"].as_str().unwrap();
    assert!(message.contains(&key) && message.contains("administrator"), "{message}");
    assert!(reply.body.len() < 1000 && !reply.body.windows(10).any(|w| w == &data[..10]));
    assert_eq!(playback.audits.last().code, Some("key_disabled"));

    // A key scheduled for deletion has its own code; the info route still answers, without KMS.
    aws.kms().await.schedule_key_deletion().key_id(&key).pending_window_in_days(7).send().await.unwrap();
    let fresh = Playback::new(&stack, &[]).await;
    let reply = fresh.get(&path, None).await;
    assert_eq!((reply.status, reply.json()["error"].as_str().unwrap()), (403, "key_pending_deletion"));
    let calls = decrypts(aws, &key);
    let info = fresh.get(&format!("{path}/info"), None).await;
    assert_eq!(info.status, 200, "{info:?}");
    let info = info.json();
    assert_eq!(info["size"], data.len() as u64);
    assert_eq!(info["content_type"], "audio/wav");
    assert_eq!(info["frame_length"], FRAME);
    assert_eq!(info["wrapping_key_arns"], serde_json::json!([key]));
    assert_eq!(info["header_key_arns"], serde_json::json!([key]));
    assert_eq!(info["algorithm_suite"], "0x0478");
    assert!(info["encrypted_at"].as_str().unwrap().starts_with("20"));
    assert_eq!(decrypts(aws, &key), calls, "info makes no KMS call");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_rsa_recording_plays_and_a_key_in_another_region_is_refused_as_wrong_region() {
    let aws = LocalAws::shared();
    let key = aws.create_key("RSA_4096", REGION).await;
    let (stack, data) = recorded(aws, &key, "rsa.wav", 50_000).await;
    let playback = Playback::new(&stack, &[]).await;
    let path = recording_path("calls", "rsa.wav");
    assert_range(&playback.get(&path, Some("bytes=4000-4200")).await, &data, 4000, 4200);
    assert_eq!(playback.get(&path, None).await.body, data);
    assert_eq!(decrypts(aws, &key), 1);

    let elsewhere = Playback::new(&stack, &[("AWS_REGION", "eu-west-1")]).await;
    let reply = elsewhere.get(&path, None).await;
    assert_eq!((reply.status, reply.json()["error"].as_str().unwrap()), (403, "wrong_region"), "{reply:?}");
    assert!(reply.json()["message"].as_str().unwrap().contains(&key));
}
