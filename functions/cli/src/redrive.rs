//! `callvault redrive`: re-submits recordings that encrypt-recording could
//! not encrypt, once the cause is fixed: the events on its dead-letter
//! queue, or the ingest objects tagged `callvault-status`. Each is sent to
//! the function as the S3 event S3 would send for the object as it is now,
//! synchronously, so the operator sees each outcome; a dead letter is
//! deleted only once its recording is encrypted (or found already done).

use inbound::s3_event::{decode_event_key, object_created_event};
use serde_json::Value;
use vault::ingest::STATUS_TAG;

use crate::aws::Aws;
use crate::CliError;

/// Where the recordings to redrive are found.
pub enum Source {
    Queue(String),
    Bucket { bucket: String, prefix: String },
}

/// One recording to re-submit.
struct Candidate {
    bucket: String,
    key: String,
    version: Option<String>,
    /// The dead letter to delete once done.
    receipt: Option<String>,
    was: String,
}

pub async fn redrive(function: String, source: Source, dry_run: bool) -> Result<(), CliError> {
    let aws = Aws::from_env().await;
    let region = aws.sdk().region().map(|r| r.to_string()).unwrap_or_else(|| "us-east-1".into());

    let candidates = match &source {
        Source::Queue(url) => from_queue(&aws, url).await?,
        Source::Bucket { bucket, prefix } => from_bucket(&aws, bucket, prefix).await?,
    };
    if candidates.is_empty() {
        println!("nothing to redrive");
        return Ok(());
    }
    let (mut done, mut failing, mut gone) = (0usize, 0usize, 0usize);
    let mut seen: std::collections::HashMap<(String, String, Option<String>), Redriven> = Default::default();
    for c in candidates {
        let id = (c.bucket.clone(), c.key.clone(), c.version.clone());
        // A recording dead-lettered twice is re-submitted once.
        let result = match seen.get(&id) {
            Some(earlier) => *earlier,
            None => {
                let r = redrive_one(&c, &function, &region, &aws, dry_run).await?;
                seen.insert(id, r);
                match r {
                    Redriven::Done => done += 1,
                    Redriven::DeadLetteredAgain | Redriven::StillFailing => failing += 1,
                    Redriven::Gone => gone += 1,
                    Redriven::DryRun => {}
                }
                r
            }
        };
        if let (Source::Queue(url), Some(receipt)) = (&source, &c.receipt) {
            match result {
                // Done, superseded by the function's own new dead letter,
                // or nothing left to encrypt: this letter has served.
                Redriven::Done | Redriven::DeadLetteredAgain | Redriven::Gone => {
                    aws.delete_dead_letter(url, receipt).await?;
                }
                // Back on the queue at once, for the next run.
                Redriven::StillFailing | Redriven::DryRun => {
                    aws.return_dead_letter(url, receipt).await?;
                }
            }
        }
    }
    if dry_run {
        return Ok(());
    }
    println!("{done} redriven, {failing} still failing, {gone} gone");
    if failing > 0 {
        return Err(CliError {
            code: "redrive_incomplete",
            message: format!("{failing} recordings could not be redriven; fix the causes shown above and run again"),
        });
    }
    Ok(())
}

/// What re-submitting one recording did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Redriven {
    /// Encrypted now, or found already done.
    Done,
    /// Refused again; the function dead-lettered it anew.
    DeadLetteredAgain,
    /// Failed in a way the function left to retries: still to do.
    StillFailing,
    /// The ingest object is gone: nothing left to encrypt.
    Gone,
    DryRun,
}

/// Re-submits one recording. A dry run only says what it would do.
async fn redrive_one(
    c: &Candidate,
    function: &str,
    region: &str,
    aws: &Aws,
    dry_run: bool,
) -> Result<Redriven, CliError> {
    {
        let label = format!("s3://{}/{}", c.bucket, c.key);
        // The object as it is now: S3 would announce exactly this.
        let head = match aws.head_object(&c.bucket, &c.key, c.version.as_deref()).await {
            Ok(Some(h)) => h,
            Ok(None) => {
                println!("gone     {label}: the ingest object is not there any more (was {})", c.was);
                return Ok(Redriven::Gone);
            }
            Err(code) => {
                println!("failing  {label}: {code}: cannot read the ingest object");
                return Ok(Redriven::StillFailing);
            }
        };
        if dry_run {
            println!("would redrive {label} (was {})", c.was);
            return Ok(Redriven::DryRun);
        }
        let event = object_created_event(region, &c.bucket, &c.key, &head.etag, head.version.as_deref(), head.size);
        let out = aws.invoke(function, event.to_string()).await?;
        let payload = out.payload;
        if let Some(kind) = out.function_error.as_deref() {
            let code = payload["errorType"].as_str().unwrap_or(kind);
            println!("failing  {label}: {code}: {}", payload["errorMessage"].as_str().unwrap_or(""));
            return Ok(Redriven::StillFailing);
        }
        let first = &payload["recordings"][0];
        match first["outcome"].as_str() {
            Some(outcome @ ("encrypted" | "already_done")) => {
                println!("redriven {label}: {outcome} (was {})", c.was);
                Ok(Redriven::Done)
            }
            Some("superseded") => {
                println!("gone     {label}: replaced by a newer upload, which has its own event (was {})", c.was);
                Ok(Redriven::Gone)
            }
            Some("failed") => {
                println!(
                    "failing  {label}: {}: {}",
                    first["code"].as_str().unwrap_or("unknown"),
                    first["message"].as_str().unwrap_or("no answer from the function")
                );
                // The function tags and dead-letters what it refuses, unless
                // it has no dead-letter queue, in which case it fails the
                // invocation (a function error, above).
                Ok(Redriven::DeadLetteredAgain)
            }
            _ => {
                println!("failing  {label}: the function gave no outcome: {payload}");
                Ok(Redriven::StillFailing)
            }
        }
    }
}

async fn from_queue(aws: &Aws, url: &str) -> Result<Vec<Candidate>, CliError> {
    let mut all = Vec::new();
    loop {
        let messages = aws.receive_dead_letters(url).await?;
        if messages.is_empty() {
            return Ok(all);
        }
        for (body, receipt) in messages {
            let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            // Ours carry the object; Lambda's own on-failure records carry
            // the original event under requestPayload.
            let record = &body["requestPayload"]["Records"][0]["s3"];
            let (bucket, key, version) = match (body["bucket"].as_str(), body["key"].as_str()) {
                (Some(b), Some(k)) => (b.to_string(), k.to_string(), body["version"].as_str().map(str::to_string)),
                _ => match (record["bucket"]["name"].as_str(), record["object"]["key"].as_str()) {
                    (Some(b), Some(k)) => (
                        b.to_string(),
                        decode_event_key(k).unwrap_or_else(|_| k.to_string()),
                        record["object"]["versionId"].as_str().map(str::to_string),
                    ),
                    _ => {
                        println!(
                            "skipped  a dead letter that names no recording ({}): {}",
                            body["code"].as_str().unwrap_or("unknown"),
                            body["message"].as_str().unwrap_or("")
                        );
                        continue;
                    }
                },
            };
            all.push(Candidate {
                bucket,
                key,
                version,
                receipt,
                was: body["code"]
                    .as_str()
                    .or(body["responseContext"]["functionError"].as_str())
                    .unwrap_or("dead-lettered")
                    .to_string(),
            });
        }
    }
}

async fn from_bucket(aws: &Aws, bucket: &str, prefix: &str) -> Result<Vec<Candidate>, CliError> {
    Ok(aws
        .tagged(bucket, prefix, STATUS_TAG)
        .await?
        .into_iter()
        .map(|(key, status)| Candidate { bucket: bucket.to_string(), key, version: None, receipt: None, was: status })
        .collect())
}
