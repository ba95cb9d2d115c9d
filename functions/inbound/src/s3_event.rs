//! S3 event notifications: which objects an event announces, S3's encoding
//! of object keys in them, and the event `callvault redrive` re-submits.

use aws_lambda_events::event::s3::S3Event;
use vault::ingest::Announced;

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
    // S3's ETags are hex digests, `-<parts>` for a multipart upload. Anything
    // else would go into an If-Match header and the catalog as it came
    // (found by fuzzing: a quote inside one was accepted).
    if etag.len() > 64 || !etag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Record::Malformed {
            detail: format!("the record for {key:?} has an eTag S3 does not write: {:?}", cut(&etag, 80)),
        };
    }
    Record::Object(Announced {
        bucket,
        key,
        etag,
        version: record.s3.object.version_id.filter(|v| !v.is_empty() && v != "null"),
    })
}

fn cut(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Encodes an object key as S3 does in event notifications: `+` for a
/// space, `%XX` for every byte outside `A-Za-z0-9-_.~/`.
pub fn encode_event_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for b in key.bytes() {
        match b {
            b' ' => out.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Decodes an object key as S3 encodes it in notifications: `+` is a space,
/// `%XX` a byte, and the bytes are UTF-8.
pub fn decode_event_key(raw: &str) -> Result<String, String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
                let byte =
                    hex.and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or("a '%' not followed by two hex digits")?;
                out.push(byte);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| "decodes to bytes that are not UTF-8".to_string())
}

/// The S3 `ObjectCreated:Put` notification S3 would send for an object:
/// what `callvault redrive` re-submits.
pub fn object_created_event(
    region: &str,
    bucket: &str,
    key: &str,
    etag: &str,
    version: Option<&str>,
    size: u64,
) -> serde_json::Value {
    let mut object = serde_json::json!({ "key": encode_event_key(key), "size": size, "eTag": etag.trim_matches('"') });
    if let Some(v) = version {
        object["versionId"] = serde_json::json!(v);
    }
    serde_json::json!({ "Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": vault::time::rfc3339(vault::time::unix_now()),
        "eventName": "ObjectCreated:Put",
        "userIdentity": { "principalId": "callvault-redrive" },
        "requestParameters": { "sourceIPAddress": "127.0.0.1" },
        "responseElements": {},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "callvault-redrive",
            "bucket": { "name": bucket, "ownerIdentity": { "principalId": "callvault" }, "arn": format!("arn:aws:s3:::{bucket}") },
            "object": object
        }
    }]})
}

/// Decodes an object key as S3 encodes it in notifications.
pub use self::decode_event_key as decode_key;

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
    fn event_keys_round_trip_through_s3_encoding() {
        for key in ["calls/a b+c 100% ünï.wav", "calls/a%2Fb?c=d&e#f", "plain/key-1.wav"] {
            assert_eq!(decode_event_key(&encode_event_key(key)).unwrap(), key);
        }
        assert_eq!(encode_event_key("calls/a b+c"), "calls/a+b%2Bc");
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

    #[test]
    fn only_etags_s3_writes_are_accepted() {
        // Found by fuzzing (fuzz/corpus/s3_event/regression-etag-with-quote):
        // a quote inside an eTag reached the If-Match header and the catalog.
        let with = |etag: &str| {
            let mut e = event("calls/x", "ObjectCreated:Put");
            e["Records"][0]["s3"]["object"]["eTag"] = serde_json::json!(etag);
            parse(&e).unwrap().remove(0)
        };
        for good in ["\"9b2cf535f27731c974343645a3985328\"", "9b2cf535f27731c974343645a3985328-12", "abc"] {
            assert!(matches!(with(good), Record::Object(_)), "{good}");
        }
        for bad in ["55\"'^^", "abc\r\nX-Injected: 1", "ab c", "é", &"a".repeat(65)] {
            assert!(matches!(with(bad), Record::Malformed { .. }), "{bad:?}");
        }
    }
}
