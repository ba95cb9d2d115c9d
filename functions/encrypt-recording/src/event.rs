//! S3 event notifications: which objects an event announces.

use aws_lambda_events::event::s3::S3Event;
use vault::recording::Announced;

/// What one record of an event asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// An object to encrypt.
    Object(Announced),
    /// Nothing to do (a folder marker, another kind of event), and why.
    Ignored { key: String, reason: &'static str },
    /// A record that cannot be understood.
    Malformed { detail: String },
}

/// Parses an S3 event notification. A payload that is not one is an error;
/// a record inside it that is unusable is a [`Record::Malformed`].
pub fn parse(payload: &serde_json::Value) -> Result<Vec<Record>, String> {
    let records =
        payload.get("Records").and_then(|r| r.as_array()).ok_or("not an S3 event notification: no Records list")?;
    if records.is_empty() {
        return Err("an S3 event notification without records".into());
    }
    Ok(records.iter().map(|r| parse_record(r.clone())).collect())
}

fn parse_record(value: serde_json::Value) -> Record {
    let event: S3Event = match serde_json::from_value(serde_json::json!({ "Records": [value] })) {
        Ok(e) => e,
        Err(e) => return Record::Malformed { detail: format!("not an S3 event record: {e}") },
    };
    let Some(record) = event.records.into_iter().next() else {
        return Record::Malformed { detail: "empty record".into() };
    };
    if record.event_source.as_deref() != Some("aws:s3") {
        return Record::Malformed { detail: format!("event source {:?}, not aws:s3", record.event_source) };
    }
    let name = record.event_name.unwrap_or_default();
    let (Some(bucket), Some(raw_key)) = (record.s3.bucket.name, record.s3.object.key) else {
        return Record::Malformed { detail: "the record names no bucket or no object key".into() };
    };
    let key = match decode_key(&raw_key) {
        Ok(k) => k,
        Err(detail) => return Record::Malformed { detail: format!("object key {raw_key:?}: {detail}") },
    };
    if !name.starts_with("ObjectCreated:") {
        return Record::Ignored { key, reason: "not an ObjectCreated event" };
    }
    if key.ends_with('/') {
        return Record::Ignored { key, reason: "a folder marker" };
    }
    if key.is_empty() || key.len() > 1024 {
        return Record::Malformed { detail: format!("object key of {} bytes (S3 allows 1 to 1024)", key.len()) };
    }
    let etag = record.s3.object.e_tag.unwrap_or_default().trim_matches('"').to_string();
    if etag.is_empty() {
        return Record::Malformed { detail: format!("the record for {key:?} has no eTag") };
    }
    Record::Object(Announced {
        bucket,
        key,
        etag,
        version: record.s3.object.version_id.filter(|v| !v.is_empty() && v != "null"),
    })
}

/// Decodes an object key as S3 encodes it in notifications.
pub use vault::s3::decode_event_key as decode_key;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_decode_as_s3_encodes_them() {
        assert_eq!(decode_key("calls/a+b").unwrap(), "calls/a b");
        assert_eq!(decode_key("calls/a%2Bb").unwrap(), "calls/a+b");
        assert_eq!(decode_key("calls%2Fx").unwrap(), "calls/x");
        assert_eq!(decode_key("calls/100%25").unwrap(), "calls/100%");
        assert_eq!(decode_key("calls/%C3%BCn%C3%AFcode").unwrap(), "calls/ünïcode");
        assert_eq!(decode_key("calls/ü").unwrap(), "calls/ü");
    }

    #[test]
    fn broken_encodings_are_refused() {
        for bad in ["a%", "a%2", "a%zz", "a%C3"] {
            assert!(decode_key(bad).is_err(), "{bad}");
        }
    }

    fn event(key: &str, name: &str) -> serde_json::Value {
        serde_json::json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2026-11-23T10:00:00.000Z", "eventName": name,
            "userIdentity": {"principalId": "AWS:X"}, "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {},
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "c",
                   "bucket": {"name": "ingest", "ownerIdentity": {"principalId": "X"}, "arn": "arn:aws:s3:::ingest"},
                   "object": {"key": key, "size": 3, "eTag": "abc", "versionId": "v1", "sequencer": "0A"}}
        }]})
    }

    #[test]
    fn records_become_objects_ignored_or_malformed() {
        let r = parse(&event("calls/a+b.wav", "ObjectCreated:Put")).unwrap();
        assert_eq!(
            r,
            [Record::Object(Announced {
                bucket: "ingest".into(),
                key: "calls/a b.wav".into(),
                etag: "abc".into(),
                version: Some("v1".into())
            })]
        );
        assert!(matches!(&parse(&event("calls/", "ObjectCreated:Put")).unwrap()[0], Record::Ignored { .. }));
        assert!(matches!(&parse(&event("calls/x", "ObjectRemoved:Delete")).unwrap()[0], Record::Ignored { .. }));
        assert!(matches!(&parse(&event("calls/%zz", "ObjectCreated:Put")).unwrap()[0], Record::Malformed { .. }));
        let long = format!("calls/{}", "x".repeat(1100));
        assert!(matches!(&parse(&event(&long, "ObjectCreated:Put")).unwrap()[0], Record::Malformed { .. }));
        let mut broken = event("calls/x", "ObjectCreated:Put");
        broken["Records"][0]["s3"].as_object_mut().unwrap().remove("object");
        assert!(matches!(&parse(&broken).unwrap()[0], Record::Malformed { .. }));
        assert!(parse(&serde_json::json!({"hello": 1})).is_err());
        assert!(parse(&serde_json::json!({"Records": []})).is_err());
    }
}
