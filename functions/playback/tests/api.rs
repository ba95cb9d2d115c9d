//! The JSON API over the in-memory twins: the list, a page at a time, and
//! a recording's facts.

mod common;

use common::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread")]
async fn the_list_is_newest_first_between_two_dates_a_page_at_a_time() {
    let rig = Rig::new();
    for day in 1..=5 {
        let key = format!("calls/2026-11-0{day}.wav");
        rig.record(&key, b"abc", "audio/wav").await;
        let id = vault::recording::RecordingId {
            recording_type: "calls".into(),
            recording_id: format!("2026-11-0{day}.wav"),
        };
        rig.catalog.edit(&id, |e| e.encrypted_at = format!("2026-11-0{day}T10:00:00Z"));
    }
    let h = rig.handler();
    let mut seen = Vec::new();
    let mut path = "/api/recordings?type=calls&from=2026-11-02&to=2026-11-05&limit=2".to_string();
    for _ in 0..5 {
        let (status, _, text) = answer(&h, get(&path)).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&text));
        let page: Value = serde_json::from_slice(&text).unwrap();
        let rows = page["recordings"].as_array().unwrap();
        assert!(rows.len() <= 2);
        seen.extend(rows.iter().map(|r| r["encrypted_at"].as_str().unwrap()[..10].to_string()));
        match page["next"].as_str() {
            Some(next) => {
                path = format!("/api/recordings?type=calls&from=2026-11-02&to=2026-11-05&limit=2&after={next}")
            }
            None => break,
        }
    }
    assert_eq!(seen, ["2026-11-05", "2026-11-04", "2026-11-03", "2026-11-02"]);
    for bad in [
        "/api/recordings",
        "/api/recordings?type=calls&from=yesterday",
        "/api/recordings?type=calls&limit=1000",
        "/api/recordings?type=calls&after=%25%25",
    ] {
        let (status, _, text) = answer(&h, get(bad)).await;
        let json: Value = serde_json::from_slice(&text).unwrap();
        assert_eq!((status, json["error"].as_str()), (400, Some("bad_query")), "{bad}");
    }
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
