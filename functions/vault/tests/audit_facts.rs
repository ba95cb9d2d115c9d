//! The rotation audit's KMS facts through the real SDK adapter, with
//! a loopback KMS endpoint answering what the local AWS cannot: the rotation
//! period and the next rotation date of GetKeyRotationStatus.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

use serde_json::{json, Value};
use vault::audit::{judge, Policy, Verdict};
use vault::aws::AwsKms;
use vault::ports::keys::{KeyInspection, KeyState};

const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const NOW: i64 = 1_795_512_600;
const DAY: i64 = 86_400;

fn describe(created_days_ago: i64) -> Value {
    json!({ "KeyMetadata": {
        "KeyId": "1234abcd-12ab-34cd-56ef-1234567890ab",
        "Arn": ARN,
        "KeyState": "Enabled",
        "KeySpec": "SYMMETRIC_DEFAULT",
        "Origin": "AWS_KMS",
        "MultiRegion": false,
        "CreationDate": NOW - created_days_ago * DAY,
    }})
}

fn rotation(enabled: bool, period: Option<i32>, next_in_days: Option<i64>) -> Value {
    let mut out = json!({ "KeyRotationEnabled": enabled, "KeyId": ARN });
    if let Some(p) = period {
        out["RotationPeriodInDays"] = json!(p);
    }
    if let Some(d) = next_in_days {
        out["NextRotationDate"] = json!(NOW + d * DAY);
    }
    out
}

fn rotations(last_days_ago: Option<(i64, &str)>) -> Value {
    let list: Vec<Value> = last_days_ago
        .map(|(days, kind)| json!({ "KeyId": ARN, "RotationDate": NOW - days * DAY, "RotationType": kind }))
        .into_iter()
        .collect();
    json!({ "Rotations": list, "Truncated": false })
}

/// A KMS endpoint on loopback that answers each operation (by its
/// `X-Amz-Target`) with the canned JSON, as KMS's JSON protocol does; the real
/// SDK client parses it. Needs no SDK test features, which would rebuild the
/// SDK for the test build.
fn fake_kms(answers: Vec<(&'static str, Value)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let answers = answers.clone();
            std::thread::spawn(move || serve(stream, &answers));
        }
    });
    url
}

fn serve(stream: std::net::TcpStream, answers: &[(&str, Value)]) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut writer = stream;
    loop {
        let (mut target, mut length) = (String::new(), 0usize);
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return; // the client closed the connection
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                match name.trim().to_ascii_lowercase().as_str() {
                    "x-amz-target" => target = value.trim().to_string(),
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            eprintln!("fake KMS: a request shorter than its Content-Length ({length})");
            return;
        }
        let operation = target.rsplit('.').next().unwrap_or_default();
        let (status, answer) = match answers.iter().find(|(op, _)| *op == operation) {
            Some((_, v)) => ("200 OK", v.to_string()),
            None => {
                eprintln!("fake KMS: no answer for {target:?}");
                let message = format!("the fake KMS has no answer for {target:?}");
                (
                    "500 Internal Server Error",
                    json!({ "__type": "KMSInternalException", "message": message }).to_string(),
                )
            }
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

async fn facts(describe: Value, rotation: Value, rotations: Value) -> vault::audit::AuditFacts {
    use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
    let url =
        fake_kms(vec![("DescribeKey", describe), ("GetKeyRotationStatus", rotation), ("ListKeyRotations", rotations)]);
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .endpoint_url(url)
        .build();
    vault::audit::AuditFacts::from_kms(
        AwsKms::from_client(aws_sdk_kms::Client::from_conf(config)).rotation_facts(ARN).await,
    )
}

#[tokio::test]
async fn the_rotation_period_and_next_rotation_date_come_through_the_adapter() {
    let f = facts(describe(800), rotation(true, Some(180), Some(40)), rotations(Some((140, "AUTOMATIC")))).await;
    assert_eq!(f.state, Some(KeyState::Enabled));
    assert_eq!((f.rotation_enabled, f.rotation_period_days), (Some(true), Some(180)));
    assert_eq!(f.next_rotation, Some(NOW + 40 * DAY));
    assert_eq!((f.last_rotation, f.last_rotation_type.as_deref()), (Some(NOW - 140 * DAY), Some("AUTOMATIC")));
    assert_eq!(f.created, Some(NOW - 800 * DAY));
    let j = judge(&f, &Policy { max_key_age_days: 365 }, "us-east-1", NOW);
    assert_eq!((j.verdict, j.days_since_rotation), (Verdict::Compliant, Some(140)));
}

#[tokio::test]
async fn a_period_longer_than_the_policy_with_old_material_is_non_compliant() {
    let f = facts(describe(800), rotation(true, Some(730), Some(200)), rotations(None)).await;
    let j = judge(&f, &Policy { max_key_age_days: 365 }, "us-east-1", NOW);
    assert_eq!(j.verdict, Verdict::NonCompliant, "{j:?}");
    assert!(j.reasons[0].contains("every 730 days") && j.reasons[0].contains("800 days old"), "{j:?}");
    // Rotated on demand recently: compliant whatever the period.
    let f = facts(describe(800), rotation(false, None, None), rotations(Some((3, "ON_DEMAND")))).await;
    let j = judge(&f, &Policy { max_key_age_days: 365 }, "us-east-1", NOW);
    assert_eq!((j.verdict, f.last_rotation_type.as_deref()), (Verdict::Compliant, Some("ON_DEMAND")));
}
