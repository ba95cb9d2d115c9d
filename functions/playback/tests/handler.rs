//! The HTTP layer over the in-memory twins: what a browser is told to do
//! with a recording's bytes, and what an error body may say.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use vault::ports::catalog::CatalogError;

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
async fn error_bodies_carry_the_code_and_a_fixed_text_never_aws_details() {
    let rig = Rig::new();
    rig.record("calls/a", b"abc", "audio/wav").await;
    let h = rig.handler();
    let secret = "AccessDeniedException: User arn:aws:sts::111122223333:assumed-role/cv-playback is not authorized on table cv-prod-catalog";
    rig.catalog
        .faults
        .fail_next("recording", CatalogError::AccessDenied { table: "cv-prod-catalog".into(), detail: secret.into() });
    let (parts, b) = h.handle(get("/recordings/calls/a")).await.into_parts();
    let text = String::from_utf8(body(b).await).unwrap();
    assert_eq!(parts.status, 500);
    assert_eq!(parts.headers["x-content-type-options"], "nosniff");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["error"], "access_denied");
    assert!(!text.contains("cv-prod-catalog") && !text.contains("assumed-role"), "{text}");

    rig.catalog.faults.fail_next(
        "recording",
        CatalogError::Unavailable { detail: "ProvisionedThroughputExceededException on cv-prod-catalog".into() },
    );
    let (parts, b) = h.handle(get("/recordings/calls/a")).await.into_parts();
    let text = String::from_utf8(body(b).await).unwrap();
    assert_eq!((parts.status.as_u16(), parts.headers["retry-after"].to_str().unwrap()), (503, "1"));
    assert!(text.contains("catalog_unavailable") && !text.contains("cv-prod-catalog"), "{text}");

    rig.kms.faults.fail_next(
        "Decrypt",
        vault::KeyError::AccessDenied { key: "arn:aws:kms:us-east-1:111122223333:key/k".into(), detail: secret.into() },
    );
    let (parts, b) = h.handle(get("/recordings/calls/a")).await.into_parts();
    let text = String::from_utf8(body(b).await).unwrap();
    assert_eq!(parts.status, 403);
    assert!(text.contains("key_access_denied") && text.contains("administrator of KMS key arn:aws:kms:"), "{text}");
    assert!(!text.contains("assumed-role"), "the KMS message stays in the log: {text}");
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
async fn info_shows_the_retention_date_and_the_legal_hold() {
    let rig = Rig::new();
    rig.record("calls/held", b"RIFF....WAVE", "audio/wav").await;
    let id = vault::recording::RecordingId { recording_type: "calls".into(), recording_id: "held".into() };
    let until = "2033-01-01T00:00:00Z".to_string();
    rig.catalog.edit(&id, |e| {
        e.retain_until = Some(until.clone());
        e.retention_days = Some(2557);
        e.hold = Some(vault::recording::LegalHold {
            by: "legal@acme.example".into(),
            reason: "case 7".into(),
            at: "2026-11-29T10:00:00Z".into(),
        });
    });
    let (parts, b) = rig.handler().handle(get("/recordings/calls/held/info")).await.into_parts();
    assert_eq!(parts.status, 200);
    let info: serde_json::Value = serde_json::from_slice(&body(b).await).unwrap();
    assert_eq!((info["retain_until"].as_str(), info["retention_days"].as_u64()), (Some(until.as_str()), Some(2557)));
    assert_eq!(info["legal_hold"]["by"], "legal@acme.example");
    assert_eq!(info["legal_hold"]["reason"], "case 7");
    assert_eq!(info["being_deleted"], false);
}
