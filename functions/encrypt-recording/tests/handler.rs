//! The handler over the in-memory twins: what a retry can fix fails the
//! invocation; anything else is tagged on the ingest object, counted and
//! dead-lettered with its code, and only a dead letter that cannot be sent
//! fails the invocation, so nothing is lost.

use std::sync::Arc;

use encrypt_recording::Handler;
use inbound::s3_event::object_created_event;
use serde_json::{json, Value};
use vault::ingest::{IngestSettings, RecordingEncryptor};
use vault::memory::{MemoryCatalog, MemoryDeadLetters, MemoryKms, MemoryObjects};
use vault::ports::dead_letters::DeadLetterError;
use vault::ports::keys::KeyError;
use vault::ports::objects::{S3Location, WriteOptions};
use vault::recording::RecordingKeys;

struct Rig {
    kms: Arc<MemoryKms>,
    objects: MemoryObjects,
    letters: MemoryDeadLetters,
    key: String,
}

impl Rig {
    fn new() -> Self {
        let kms = Arc::new(MemoryKms::new());
        let key = kms.create_symmetric("us-east-1");
        let objects = MemoryObjects::new();
        objects.create_bucket("ingest", true);
        objects.create_bucket("vault", true);
        Self { kms, objects, letters: MemoryDeadLetters::new(), key }
    }

    fn handler(&self, dead_letters: bool) -> Handler<Arc<MemoryKms>, MemoryObjects, MemoryCatalog, MemoryDeadLetters> {
        let settings = IngestSettings {
            org: "acme".into(),
            ingest_bucket: "ingest".into(),
            vault_bucket: "vault".into(),
            keys: RecordingKeys::parse(&format!(r#"{{"calls": ["{}"]}}"#, self.key), "us-east-1").unwrap(),
            frame_length: 4096,
            region: "us-east-1".into(),
            write: WriteOptions::default(),
            retention: Default::default(),
            vault_lock: None,
        };
        let encryptor = RecordingEncryptor::new(self.kms.clone(), self.objects.clone(), MemoryCatalog::new(), settings);
        Handler::new(encryptor, dead_letters.then(|| self.letters.clone()))
    }

    /// Uploads `key` and returns the S3 event announcing it.
    fn upload(&self, key: &str, body: &[u8]) -> Value {
        let loc = S3Location { bucket: "ingest".into(), key: key.into() };
        let (etag, version) = self.objects.put(&loc, body, Some("audio/wav"));
        object_created_event("us-east-1", "ingest", key, &etag, version.as_deref(), body.len() as u64)
    }

    fn tag(&self, key: &str) -> Option<String> {
        let loc = S3Location { bucket: "ingest".into(), key: key.into() };
        self.objects.tags_of(&loc, None).into_iter().find(|(k, _)| k == "callvault-status").map(|(_, v)| v)
    }
}

fn outcome(v: &Value) -> (&str, &str) {
    let r = &v["recordings"][0];
    (r["outcome"].as_str().unwrap_or("none"), r["code"].as_str().unwrap_or("none"))
}

const DEADLINE_MS: u64 = 4_000_000_000_000;

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_a_clear_outcome_a_tag_and_a_dead_letter_and_no_panic() {
    let rig = Rig::new();
    let h = rig.handler(true);
    let unknown = h.handle(rig.upload("voicemail/v-1.wav", b"hello"), DEADLINE_MS, "r1").await.unwrap();
    assert_eq!(outcome(&unknown), ("failed", "unknown_type"), "{unknown}");
    assert!(unknown["recordings"][0]["message"].as_str().unwrap().contains("calls"), "names the configured types");
    assert_eq!(rig.tag("voicemail/v-1.wav").as_deref(), Some("unknown_type"));
    let flat = h.handle(rig.upload("no-type", b"x"), DEADLINE_MS, "r2").await.unwrap();
    assert_eq!(outcome(&flat), ("failed", "bad_key"));
    let folder = h.handle(rig.upload("calls/", b""), DEADLINE_MS, "r3").await.unwrap();
    assert_eq!(outcome(&folder).0, "ignored");

    let malformed = [json!({}), json!({ "Records": [] }), json!({ "Records": "nope" }), json!([1, 2]), json!("s")];
    for event in &malformed {
        let answer = h.handle(event.clone(), DEADLINE_MS, "r4").await.unwrap();
        assert_eq!(outcome(&answer), ("failed", "bad_event"), "{event}: {answer}");
    }
    let mut no_key = rig.upload("calls/x", b"x");
    no_key["Records"][0]["s3"]["object"].as_object_mut().unwrap().remove("key");
    assert_eq!(outcome(&h.handle(no_key, DEADLINE_MS, "r5").await.unwrap()).1, "bad_event");
    let mut elsewhere = rig.upload("calls/y", b"y");
    elsewhere["Records"][0]["s3"]["bucket"]["name"] = json!("another-bucket");
    assert_eq!(outcome(&h.handle(elsewhere, DEADLINE_MS, "r6").await.unwrap()).1, "bad_event");

    let letters = rig.letters.letters();
    let codes: Vec<&str> = letters.iter().map(|l| l["code"].as_str().unwrap()).collect();
    assert_eq!(codes.iter().filter(|c| **c == "bad_event").count(), 7, "{codes:?}");
    assert!(codes.contains(&"unknown_type") && codes.contains(&"bad_key"), "{codes:?}");
    let v = letters.iter().find(|l| l["code"] == "unknown_type").unwrap();
    assert_eq!((v["key"].as_str(), v["bucket"].as_str()), (Some("voicemail/v-1.wav"), Some("ingest")));
    assert!(v["event"]["Records"].is_array(), "the event itself, for a redrive");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refusing_key_is_dead_lettered_with_the_key_named() {
    let rig = Rig::new();
    rig.kms.set_state(&rig.key, vault::ports::keys::KeyState::Disabled);
    let answer = rig.handler(true).handle(rig.upload("calls/k", b"abc"), DEADLINE_MS, "r").await.unwrap();
    assert_eq!(outcome(&answer), ("failed", "key_disabled"));
    assert!(answer["recordings"][0]["message"].as_str().unwrap().contains(&rig.key));
    assert_eq!(rig.tag("calls/k").as_deref(), Some("key_disabled"));
    assert_eq!(rig.letters.letters()[0]["code"], "key_disabled");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failure_a_retry_can_fix_fails_the_invocation_and_is_not_dead_lettered() {
    let rig = Rig::new();
    rig.kms.faults.fail_next("GenerateDataKey", KeyError::Throttled { key: rig.key.clone() });
    let event = rig.upload("calls/t", b"abc");
    let err = rig.handler(true).handle(event.clone(), DEADLINE_MS, "r").await.unwrap_err();
    assert_eq!(err.code, "kms_throttled");
    assert!(rig.letters.letters().is_empty());
    assert_eq!(rig.tag("calls/t"), None);
    let ok = rig.handler(true).handle(event, DEADLINE_MS, "r").await.unwrap();
    assert_eq!(outcome(&ok).0, "encrypted");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_queue_or_when_the_queue_refuses_the_invocation_fails_so_nothing_is_lost() {
    let rig = Rig::new();
    let err = rig.handler(false).handle(rig.upload("voicemail/a", b"x"), DEADLINE_MS, "r").await.unwrap_err();
    assert_eq!(err.code, "unknown_type");
    rig.letters.faults.fail_next("send", DeadLetterError { queue: "q".into(), detail: "AccessDenied".into() });
    let err = rig.handler(true).handle(rig.upload("voicemail/b", b"x"), DEADLINE_MS, "r").await.unwrap_err();
    assert_eq!(err.code, "dead_letter_failed");
    assert!(err.message.starts_with("unknown_type:"), "{}", err.message);
}
