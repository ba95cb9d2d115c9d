//! Writes the seed corpora (`fuzz/corpus/<target>/seed-*`): real messages
//! sealed under the harness's key at several frame lengths and sizes, real
//! S3 notifications and KMS events, and `Range` headers of every form.
//! `cargo run -p fuzz-harness --example seeds` (fuzz/README.md).

use std::path::{Path, PathBuf};

use envelope::{DataKey, EncryptedDataKey, EncryptingWriter, EncryptionContext, MessageEncryptor, MessageSpec};
use inbound::s3_event::object_created_event;
use serde_json::{json, Value};

const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn message(frame_length: u32, plaintext: &[u8], context: &[(&str, &str)], keys: usize) -> Vec<u8> {
    let data_key = DataKey::from_slice(&fuzz_harness::FUZZ_KEY).expect("32 bytes");
    let encrypted_data_keys = (0..keys)
        .map(|i| EncryptedDataKey {
            provider_id: if i == 0 { "aws-kms".into() } else { "aws-kms-rsa".into() },
            provider_info: ARN.as_bytes().to_vec(),
            ciphertext: vec![i as u8; 40 + i * 10],
        })
        .collect();
    let spec = MessageSpec {
        data_key: &data_key,
        encryption_context: context.iter().copied().collect::<EncryptionContext>(),
        encrypted_data_keys,
        frame_length,
    };
    let mut writer = EncryptingWriter::new(Vec::new(), MessageEncryptor::new(spec).expect("a valid spec"))
        .expect("writing to memory");
    std::io::Write::write_all(&mut writer, plaintext).expect("writing to memory");
    writer.finish().expect("writing to memory")
}

fn cloudtrail(name: &str, extra: Value) -> Value {
    let mut v = json!({
        "version": "0", "id": "ev-1", "detail-type": "AWS API Call via CloudTrail", "source": "aws.kms",
        "account": "111122223333", "time": "2026-11-24T09:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {
            "eventName": name, "eventTime": "2026-11-24T09:00:01Z", "awsRegion": "us-east-1",
            "recipientAccountId": "111122223333", "sourceIPAddress": "203.0.113.10",
            "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/Admin/alice",
                "sessionContext": {"attributes": {"mfaAuthenticated": "false"}}},
            "requestParameters": {"keyId": ARN},
        }
    });
    if let Value::Object(extra) = extra {
        for (k, x) in extra {
            v["detail"][k] = x;
        }
    }
    v
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("writing a seed");
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus");
    let dir = |t: &str| {
        let d = root.join(t);
        std::fs::create_dir_all(&d).expect("creating the corpus directory");
        d
    };

    let plaintext: Vec<u8> = (0..5000u32).map(|i| (i * 7 % 251) as u8).collect();
    let org = [("org", "acme"), ("type", "calls")];
    // (frame length, plaintext length, context, encrypted data keys)
    type Case<'a> = (u32, usize, &'a [(&'a str, &'a str)], usize);
    let cases: &[Case] = &[
        (16, 0, &[], 1),
        (16, 1, &org, 1),
        (16, 16, &org, 1),
        (16, 17, &org, 2),
        (16, 100, &[], 1),
        (64, 300, &org, 3),
        (128, 128, &org, 1),
        (4096, 5000, &org, 1),
    ];
    for (frame, len, context, keys) in cases {
        let m = message(*frame, &plaintext[..*len], context, *keys);
        let name = format!("f{frame}-p{len}-k{keys}");
        write(&dir("header"), &name, &m);
        write(&dir("decrypt_stream"), &name, &m);
        for (i, (a, b)) in [(0u64, u64::MAX), (3, 20), (17, 1), (u64::MAX, 5)].iter().enumerate() {
            let mut ranged = a.to_le_bytes().to_vec();
            ranged.extend_from_slice(&b.to_le_bytes());
            ranged.extend_from_slice(&m);
            write(&dir("decrypt_range"), &format!("{name}-r{i}"), &ranged);
        }
    }

    for (i, r) in [
        "bytes=0-99",
        "bytes=100-",
        "bytes=-500",
        " Bytes = 5-5 ",
        "bytes=0-1,5-6",
        "bytes=5-4",
        "bytes=-0",
        "bytes=18446744073709551615-",
    ]
    .iter()
    .enumerate()
    {
        write(&dir("range_header"), &format!("{i}"), r.as_bytes());
    }

    let s3 = dir("s3_event");
    let events = [
        object_created_event(
            "us-east-1",
            "ingest",
            "calls/2026/11/call 1.wav",
            "\"9b2cf535f27731c974343645a3985328\"",
            Some("3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY"),
            1024,
        ),
        object_created_event("us-east-1", "ingest", "screens/ü+%/x.webm", "e1", None, 0),
        object_created_event("eu-west-1", "ingest", "calls/folder/", "e2", Some("null"), 0),
    ];
    for (i, e) in events.iter().enumerate() {
        write(&s3, &format!("{i}"), e.to_string().as_bytes());
    }
    let mut removed = events[0].clone();
    removed["Records"][0]["eventName"] = json!("ObjectRemoved:Delete");
    write(&s3, "removed", removed.to_string().as_bytes());
    let mut two = events[0].clone();
    two["Records"].as_array_mut().expect("a list").push(events[1]["Records"][0].clone());
    write(&s3, "two", two.to_string().as_bytes());

    let kms = dir("kms_event");
    let samples = [
        ("disable", cloudtrail("DisableKey", json!({}))),
        (
            "schedule",
            cloudtrail("ScheduleKeyDeletion", json!({"requestParameters": {"keyId": ARN, "pendingWindowInDays": 7}})),
        ),
        (
            "denied-decrypt",
            cloudtrail(
                "Decrypt",
                json!({"errorCode": "AccessDenied", "errorMessage": "not authorized", "requestParameters": {}, "resources": [{"type": "AWS::KMS::Key", "ARN": ARN}]}),
            ),
        ),
        ("denied-policy", cloudtrail("PutKeyPolicy", json!({"errorCode": "AccessDenied"}))),
        ("grant", cloudtrail("CreateGrant", json!({}))),
        (
            "alias",
            cloudtrail(
                "DeleteAlias",
                json!({"requestParameters": {"aliasName": "alias/recordings"}, "resources": [{"type": "AWS::KMS::Key", "ARN": ARN}]}),
            ),
        ),
        (
            "rotation",
            json!({"id": "ev-3", "detail-type": "KMS CMK Rotation", "source": "aws.kms", "account": "111122223333", "region": "us-east-1", "time": "2026-12-24T09:00:00Z", "resources": [ARN], "detail": {"key-id": "1234abcd-12ab-34cd-56ef-1234567890ab"}}),
        ),
        (
            "deletion",
            json!({"id": "ev-2", "detail-type": "KMS CMK Deletion", "source": "aws.kms", "account": "111122223333", "region": "us-east-1", "time": "2026-12-24T09:00:00Z", "resources": [ARN], "detail": {"key-id": "1234abcd-12ab-34cd-56ef-1234567890ab"}}),
        ),
    ];
    for (name, v) in samples {
        write(&kms, name, v.to_string().as_bytes());
    }
}
