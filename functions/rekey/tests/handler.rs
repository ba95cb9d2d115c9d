//! The rekey handler over the in-memory twins: S3 Batch Operations'
//! schema 2.0 in, one answer per task out, with the result code the job
//! acts on (retry, or report for good) and the stable code first in the
//! result string.

mod common;

use common::*;
use inbound::s3_batch::{invocation, BatchTask};
use serde_json::{json, Value};
use vault::ports::keys::{KeyError, KeyState};
use vault::ports::objects::S3Location;

fn keys_of(d: &Deployed, n: usize) -> Vec<String> {
    d.keys_of(n)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sample_event_answers_the_documented_response_and_moves_the_recording() {
    let d = deployed(1).await;
    let sample: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/s3-batch-rekey.json")).unwrap(),
    )
    .unwrap();
    let mut event = sample.clone();
    event["job"]["userArguments"]["targetKeys"] = json!(d.b);
    event["job"]["userArguments"]["fromKey"] = json!(d.a);
    event["tasks"][0]["s3Key"] = json!("calls/r-0");
    let answer = d.handler.handle(&event).await.unwrap();
    assert_eq!(answer["invocationSchemaVersion"], "2.0");
    assert_eq!(answer["treatMissingKeysAs"], "PermanentFailure");
    assert_eq!(answer["invocationId"], sample["invocationId"]);
    assert_eq!(answer["results"][0]["taskId"], sample["tasks"][0]["taskId"]);
    let (code, text) = result(&answer);
    assert_eq!(code, "Succeeded", "{text}");
    assert!(text.starts_with("rekeyed calls/r-0"), "{text}");
    assert_eq!(keys_of(&d, 0), vec![d.b.clone()]);
    // Delivered again (the job retries what it did not hear back from).
    let again = d.handler.handle(&event).await.unwrap();
    let (code, text) = result(&again);
    assert_eq!((code, text.split(' ').next()), ("Succeeded", Some("already_on_target")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_without_its_arguments_fails_every_task_for_good_and_moves_nothing() {
    let d = deployed(2).await;
    for args in [json!({}), json!({"operation": "rekey"}), json!({"operation": "rekey", "targetKeys": "alias/b"})] {
        let mut event = invocation("job-1", &task(0), &[]);
        event["job"]["userArguments"] = args.clone();
        event["tasks"] = json!([event["tasks"][0].clone(), invocation("job-1", &task(1), &[])["tasks"][0].clone()]);
        let answer = d.handler.handle(&event).await.unwrap();
        let results = answer["results"].as_array().unwrap();
        assert_eq!(results.len(), 2, "every task answered");
        for r in results {
            assert_eq!(r["resultCode"], "PermanentFailure", "{args}");
            assert!(r["resultString"].as_str().unwrap().starts_with("bad_arguments "), "{r}");
        }
    }
    // Schema 1.0 (no userArguments at all) fails the invocation.
    let mut v1 = invocation("job-1", &task(0), &[("operation", "rekey"), ("targetKeys", &d.b)]);
    v1["invocationSchemaVersion"] = json!("1.0");
    let err = d.handler.handle(&v1).await.unwrap_err();
    assert!(err.to_string().contains("2.0"), "{err}");
    assert_eq!((keys_of(&d, 0), keys_of(&d, 1)), (vec![d.a.clone()], vec![d.a.clone()]), "nothing moved");
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_failures_are_retried_by_the_job_and_the_rest_are_reported_with_their_code() {
    let d = deployed(1).await;
    let b = d.b.clone();
    let handler = &d.handler;
    let run = |t: BatchTask| {
        let event = invocation("job-2", &t, &[("operation", "rekey"), ("targetKeys", b.as_str())]);
        async move { handler.handle(&event).await.unwrap() }
    };

    d.kms.faults.fail_next("Decrypt", KeyError::Throttled { key: d.a.clone() });
    let answer = run(task(0)).await;
    assert_eq!(result(&answer).0, "TemporaryFailure", "{answer}");
    assert!(result(&answer).1.starts_with("kms_throttled "));

    d.kms.set_state(&d.b, KeyState::Disabled);
    let answer = run(task(0)).await;
    assert_eq!((result(&answer).0, result(&answer).1.split(' ').next()), ("PermanentFailure", Some("key_disabled")));
    d.kms.set_state(&d.b, KeyState::Enabled);

    let elsewhere = BatchTask { bucket: "another-bucket".into(), ..task(0) };
    assert!(result(&run(elsewhere).await).1.starts_with("wrong_bucket "));
    let not_a_recording = BatchTask { key: "calls".into(), ..task(0) };
    assert!(result(&run(not_a_recording).await).1.starts_with("bad_key "));
    let unknown = BatchTask { key: "calls/never-recorded".into(), ..task(0) };
    assert_eq!(result(&run(unknown).await).0, "PermanentFailure");

    let loc = S3Location { bucket: VAULT.into(), key: "calls/r-0".into() };
    d.objects.tamper(&loc, None, |bytes| {
        let at = bytes.len() - 30;
        bytes[at] ^= 1;
    });
    let answer = run(task(0)).await;
    assert_eq!((result(&answer).0, result(&answer).1.split(' ').next()), ("PermanentFailure", Some("integrity")));
    assert_eq!(keys_of(&d, 0), vec![d.a.clone()], "nothing moved");
}
