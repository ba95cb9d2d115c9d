//! The audio route over the in-memory twins: what a browser is told to do
//! with a recording's bytes, a stream on record before its first byte, and
//! seeks answered from the cached message.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn only_audio_and_video_are_served_as_such_and_nothing_is_sniffed() {
    let rig = Rig::new();
    rig.record("calls/a", b"RIFF....WAVE", "audio/wav; codecs=1").await;
    rig.record("calls/h", b"<script>alert(1)</script>", "text/html").await;
    rig.record("calls/x", b"??", "audio/<script>").await;
    let h = rig.handler();
    for (path, content_type, attachment) in [
        ("/recordings/calls/a", "audio/wav", false),
        ("/recordings/calls/h", "application/octet-stream", true),
        ("/recordings/calls/x", "application/octet-stream", true),
    ] {
        let (parts, b) = h.handle(get(path)).await.into_parts();
        assert_eq!(parts.status, 200, "{path}");
        assert_eq!(parts.headers["content-type"], content_type, "{path}");
        assert_eq!(parts.headers.get("content-disposition").is_some(), attachment, "{path}");
        assert_eq!(parts.headers["x-content-type-options"], "nosniff");
        body(b).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_is_on_record_before_its_first_byte_so_a_cut_transfer_leaves_its_start() {
    let rig = Rig::new();
    rig.record("calls/long", &vec![7u8; 3 * 1024 * 1024], "audio/wav").await;
    let kept = Arc::new(Kept::default());
    let h = rig.handler_with(kept.clone());
    let response = h.handle(get("/recordings/calls/long")).await;
    {
        // The first byte is ready to leave: the start is on record, the end
        // not yet; a crash from here on leaves this line.
        let records = kept.0.lock().unwrap();
        assert_eq!(records.0.len(), 1, "one start record");
        let start = &records.0[0];
        assert_eq!((start.phase, start.outcome, start.status), ("start", "started", 200));
        assert_eq!(start.recording.as_deref(), Some("calls/long"));
        assert!(start.principal.is_some() && start.range_served.is_some(), "{start:?}");
        assert!(records.1.is_empty(), "no end record before the stream ends");
    }
    // The client goes away mid-way: the end record says so.
    drop(response);
    for _ in 0..100 {
        if !kept.0.lock().unwrap().1.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let records = kept.0.lock().unwrap();
    assert_eq!(records.1.len(), 1);
    assert_eq!((records.1[0].phase, records.1[0].outcome), ("end", "client_gone"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cached_seek_reads_no_catalog_row_yet_notices_a_new_version_or_an_erasure() {
    let rig = Rig::new();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    rig.record("calls/seek.wav", &data, "audio/wav").await;
    let h = rig.handler();
    let range = |r: &str| {
        let auth = format!("Bearer {}", supervisor_token());
        request("GET", "/recordings/calls/seek.wav", &[("authorization", &auth), ("range", r)])
    };
    let (status, _, bytes) = answer(&h, range("bytes=1000-1999")).await;
    assert_eq!((status, bytes.as_slice()), (206, &data[1000..2000]));
    assert_eq!(rig.decrypts(), 1);
    // Seeks from the cache: no catalog read (the trap stays set), no KMS.
    for start in [150_000usize, 50_000, 199_000] {
        trap_catalog(&rig);
        let (status, _, bytes) = answer(&h, range(&format!("bytes={start}-{}", start + 999))).await;
        assert_eq!(status, 206);
        assert!(bytes == data[start..(start + 1000).min(data.len())]);
        assert!(rig_catalog_trap_sprung(&rig).await, "a cached seek read the catalog");
    }
    assert_eq!(rig.decrypts(), 1);
    // A new current version (what a re-key writes): the cached message is
    // not used for it; the recording is opened again from the catalog.
    let entry = rig.catalog.recordings().into_iter().find(|e| e.id.recording_id == "seek.wav").unwrap();
    let vault_loc = vault::ports::objects::S3Location { bucket: "vault".into(), key: entry.vault_key.clone() };
    rig.objects.put(&vault_loc, b"another message", Some("application/octet-stream"));
    let (status, _, bytes) = answer(&h, range("bytes=5000-5999")).await;
    assert_eq!((status, bytes.as_slice()), (206, &data[5000..6000]), "the catalogued version, read again");
    assert_eq!(rig.decrypts(), 2, "opened again from the catalog");
    // Erased: the row and every version gone. S3 answers a key with no
    // version AccessDenied to a role without s3:ListBucket (playback's):
    // the cache does not play it on, the catalog says it is gone.
    use vault::ports::objects::ObjectStore;
    for v in rig.objects.list_versions(&vault_loc).await.unwrap() {
        rig.objects.delete_version(&vault_loc, &v.version, false).await.unwrap();
    }
    rig.catalog.remove(&entry.id);
    rig.objects.faults.fail_next(
        "read_current",
        vault::ports::objects::S3Error::AccessDenied {
            location: entry.vault_key.clone(),
            detail: "AccessDenied".into(),
        },
    );
    let (status, _, text) = answer(&h, range("bytes=0-99")).await;
    let json: Value = serde_json::from_slice(&text).unwrap();
    assert_eq!(
        (status, json["error"].as_str()),
        (404, Some("not_found")),
        "an erased recording is gone, not played from the cache"
    );
}
