//! S3 Batch Operations' Lambda invocation, schema 2.0, and its response:
//! the `rekey` function's trigger.
//!
//! Read with callvault's own types on purpose: `aws_lambda_events`'
//! `S3BatchJobEvent` is schema 1.0 and silently drops schema 2.0's
//! `s3Bucket` and `job.userArguments`; a re-key that lost its arguments
//! would land on the default keys. An event without the arguments the job
//! needs is refused, never defaulted.
//!
//! Schema 2.0, as S3 sends it (one task per invocation today; a list):
//! ```json
//! {"invocationSchemaVersion": "2.0", "invocationId": "...",
//!  "job": {"id": "...", "userArguments": {"k": "v"}},
//!  "tasks": [{"taskId": "...", "s3Key": "...", "s3VersionId": null, "s3Bucket": "..."}]}
//! ```
//! The response names every task with `resultCode` `Succeeded`,
//! `TemporaryFailure` (the job retries it) or `PermanentFailure`, and a
//! `resultString` for the completion report.

use serde_json::{json, Value};
use vault::arn::KmsArn;
use vault::errors::{ErrorKind, OperationError};

/// The schema version this parser reads and answers.
pub const SCHEMA: &str = "2.0";

/// `userArguments` names (S3 allows 10, keys up to 64 characters, values
/// up to 1024).
pub const ARG_OPERATION: &str = "operation";
pub const ARG_TARGET_KEYS: &str = "targetKeys";
pub const ARG_FROM_KEY: &str = "fromKey";
/// Another region's deployment to move recordings into (all three, or none).
pub const ARG_TARGET_REGION: &str = "targetRegion";
pub const ARG_TARGET_VAULT: &str = "targetVault";
pub const ARG_TARGET_CATALOG: &str = "targetCatalog";
/// `"true"`: copy each message as it is (multi-Region keys) into the target
/// region instead of encrypting it again.
pub const ARG_COPY_ONLY: &str = "copyOnly";
/// `targetKeys` meaning each recording type's keys as configured now.
pub const CONFIGURED: &str = "configured";
/// The only operation so far.
pub const OP_REKEY: &str = "rekey";

/// An invocation callvault cannot use: every task of it fails for good.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("malformed S3 Batch Operations invocation: {0}")]
pub struct BatchEventError(pub String);

impl OperationError for BatchEventError {
    fn code(&self) -> &'static str {
        "bad_event"
    }

    fn kind(&self) -> ErrorKind {
        ErrorKind::BadRequest
    }
}

/// One object of the manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchTask {
    pub task_id: String,
    pub bucket: String,
    /// The object key, decoded (S3 sends it URL-encoded, `+` for a space,
    /// as in its event notifications).
    pub key: String,
    pub version: Option<String>,
}

/// What the job asks of each task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TargetKeys {
    /// The recording type's keys as configured.
    Configured,
    /// These key ARNs, primary first.
    Keys(Vec<String>),
}

/// Another region's deployment: region, vault bucket, catalog table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetDeployment {
    pub region: String,
    pub vault_bucket: String,
    pub catalog_table: String,
}

/// The job's arguments, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RekeyArguments {
    pub target: TargetKeys,
    pub from_key: Option<String>,
    pub deployment: Option<TargetDeployment>,
    pub copy_only: bool,
}

/// A schema 2.0 invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchInvocation {
    pub invocation_id: String,
    pub job_id: String,
    pub tasks: Vec<BatchTask>,
    /// The arguments, or why they are unusable (the tasks then fail for good
    /// with that reason, each named in the report).
    pub arguments: Result<RekeyArguments, BatchEventError>,
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Reads an invocation. An event that is not schema 2.0, or has no
/// invocation id or tasks, is refused whole (there is nothing to answer);
/// bad arguments are kept in [`BatchInvocation::arguments`], so each task
/// is answered with the reason.
pub fn parse_invocation(v: &Value) -> Result<BatchInvocation, BatchEventError> {
    let bad = |what: &str| BatchEventError(what.to_string());
    if !v.is_object() {
        return Err(bad("the event is not a JSON object"));
    }
    match str_at(v, "invocationSchemaVersion") {
        Some(SCHEMA) => {}
        Some(other) => {
            return Err(BatchEventError(format!(
                "invocationSchemaVersion is {other:?}; the job must be created with InvocationSchemaVersion 2.0 \
                 (1.0 carries no userArguments: `callvault rekey` creates it so)"
            )))
        }
        None => return Err(bad("no invocationSchemaVersion: not an S3 Batch Operations invocation")),
    }
    let invocation_id = str_at(v, "invocationId").filter(|s| !s.is_empty()).ok_or_else(|| bad("no invocationId"))?;
    let job = v.get("job").filter(|j| j.is_object()).ok_or_else(|| bad("no job"))?;
    let job_id = str_at(job, "id").unwrap_or_default().to_string();
    let tasks = v.get("tasks").and_then(Value::as_array).filter(|t| !t.is_empty()).ok_or_else(|| bad("no tasks"))?;
    let mut parsed = Vec::with_capacity(tasks.len());
    for (i, t) in tasks.iter().enumerate() {
        let field = |name: &str| {
            str_at(t, name)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or_else(|| BatchEventError(format!("task {i} has no {name}")))
        };
        parsed.push(BatchTask {
            task_id: field("taskId")?,
            bucket: field("s3Bucket").map_err(|_| {
                BatchEventError(format!("task {i} has no s3Bucket (schema 1.0 sends s3BucketArn instead)"))
            })?,
            key: crate::s3_event::decode_event_key(&field("s3Key")?)
                .map_err(|e| BatchEventError(format!("task {i}'s s3Key: {e}")))?,
            version: str_at(t, "s3VersionId").filter(|s| !s.is_empty()).map(str::to_string),
        });
    }
    Ok(BatchInvocation {
        invocation_id: invocation_id.to_string(),
        job_id,
        tasks: parsed,
        arguments: parse_arguments(job.get("userArguments")),
    })
}

/// Checks the job's `userArguments`.
pub fn parse_arguments(args: Option<&Value>) -> Result<RekeyArguments, BatchEventError> {
    let bad = |what: String| BatchEventError(what);
    let args = args.and_then(Value::as_object).ok_or_else(|| {
        bad(format!("the job has no userArguments: it must name {ARG_OPERATION}={OP_REKEY} and {ARG_TARGET_KEYS}"))
    })?;
    let get = |name: &str| -> Result<Option<&str>, BatchEventError> {
        match args.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(bad(format!("userArguments.{name} is not a string"))),
        }
    };
    match get(ARG_OPERATION)? {
        Some(OP_REKEY) => {}
        Some(other) => {
            return Err(bad(format!("userArguments.{ARG_OPERATION} is {other:?}; this function does {OP_REKEY:?}")))
        }
        None => return Err(bad(format!("userArguments has no {ARG_OPERATION}"))),
    }
    let copy_only = match get(ARG_COPY_ONLY)?.map(str::trim) {
        None | Some("") | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(bad(format!("userArguments.{ARG_COPY_ONLY} is {other:?}, not \"true\" or \"false\"")))
        }
    };
    let deployment = match (get(ARG_TARGET_REGION)?, get(ARG_TARGET_VAULT)?, get(ARG_TARGET_CATALOG)?) {
        (None, None, None) => None,
        (Some(region), Some(vault), Some(catalog)) if is_region(region) && !vault.is_empty() && !catalog.is_empty() => {
            Some(TargetDeployment {
                region: region.to_string(),
                vault_bucket: vault.to_string(),
                catalog_table: catalog.to_string(),
            })
        }
        _ => {
            return Err(bad(format!(
                "userArguments names another region's deployment with {ARG_TARGET_REGION} (a region), \
                 {ARG_TARGET_VAULT} and {ARG_TARGET_CATALOG}, all three"
            )))
        }
    };
    if copy_only && deployment.is_none() {
        return Err(bad(format!(
            "userArguments.{ARG_COPY_ONLY} copies into another region: name it ({ARG_TARGET_REGION}, ...)"
        )));
    }
    let target = match get(ARG_TARGET_KEYS)?.map(str::trim) {
        None | Some("") if copy_only => TargetKeys::Keys(Vec::new()),
        None | Some("") => {
            return Err(bad(format!(
                "userArguments has no {ARG_TARGET_KEYS}: name the key ARNs (comma-separated, primary first) or \
                 {CONFIGURED:?}; a job never falls back to defaults"
            )))
        }
        Some(CONFIGURED) => TargetKeys::Configured,
        Some(list) => {
            let keys: Vec<String> = list.split(',').map(str::trim).map(str::to_string).collect();
            for k in &keys {
                if !KmsArn::parse(k).is_some_and(|a| a.is_key()) {
                    return Err(bad(format!("userArguments.{ARG_TARGET_KEYS} names {k:?}, not a KMS key ARN")));
                }
            }
            TargetKeys::Keys(keys)
        }
    };
    let from_key = match get(ARG_FROM_KEY)?.map(str::trim) {
        None | Some("") => None,
        Some(k) if KmsArn::parse(k).is_some_and(|a| a.is_key()) => Some(k.to_string()),
        Some(k) => return Err(bad(format!("userArguments.{ARG_FROM_KEY} is {k:?}, not a KMS key ARN"))),
    };
    Ok(RekeyArguments { target, from_key, deployment, copy_only })
}

/// `us-east-1`, `eu-west-2`, `ap-southeast-4`, `us-gov-west-1`, ...
fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
        && parts.last().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
}

/// How one task ended, for the job.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultCode {
    Succeeded,
    /// The job retries it (throttling, a transient error).
    TemporaryFailure,
    /// Reported as failed; `resultString` starts with the stable code.
    PermanentFailure,
}

impl ResultCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "Succeeded",
            Self::TemporaryFailure => "TemporaryFailure",
            Self::PermanentFailure => "PermanentFailure",
        }
    }

    /// The code for an operation error: retryable ones are temporary.
    pub fn for_error(e: &dyn OperationError) -> Self {
        if e.is_retryable() {
            Self::TemporaryFailure
        } else {
            Self::PermanentFailure
        }
    }
}

/// One task's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskResult {
    pub task_id: String,
    pub code: ResultCode,
    /// `<code> <detail>` (the report's column), at most 1 KiB.
    pub result: String,
}

/// The response S3 Batch Operations expects. A task missing from it is a
/// permanent failure (`treatMissingKeysAs`).
pub fn response(invocation_id: &str, results: &[TaskResult]) -> Value {
    json!({
        "invocationSchemaVersion": SCHEMA,
        "treatMissingKeysAs": "PermanentFailure",
        "invocationId": invocation_id,
        "results": results.iter().map(|r| json!({
            "taskId": r.task_id,
            "resultCode": r.code.as_str(),
            "resultString": truncate(&r.result, 1024),
        })).collect::<Vec<_>>(),
    })
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A schema 2.0 invocation of one task, as `callvault rekey --local` and
/// the tests make it.
pub fn invocation(job_id: &str, task: &BatchTask, arguments: &[(&str, &str)]) -> Value {
    let args: serde_json::Map<String, Value> =
        arguments.iter().map(|(k, v)| (k.to_string(), Value::String(v.to_string()))).collect();
    json!({
        "invocationSchemaVersion": SCHEMA,
        "invocationId": format!("{job_id}/{}", task.task_id),
        "job": {"id": job_id, "userArguments": args},
        "tasks": [{
            "taskId": task.task_id,
            "s3Key": crate::s3_event::encode_event_key(&task.key),
            "s3VersionId": task.version,
            "s3Bucket": task.bucket,
        }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const B: &str = "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab";

    fn event(args: Value) -> Value {
        json!({
            "invocationSchemaVersion": "2.0",
            "invocationId": "inv-1",
            "job": {"id": "job-1", "userArguments": args},
            "tasks": [{"taskId": "t-1", "s3Key": "calls/2026/r+1%C3%BC.wav", "s3VersionId": null, "s3Bucket": "vault"}],
        })
    }

    #[test]
    fn a_schema_2_invocation_keeps_its_bucket_and_arguments() {
        let inv =
            parse_invocation(&event(json!({"operation": "rekey", "targetKeys": format!("{A}, {B}"), "fromKey": A})))
                .unwrap();
        assert_eq!((inv.invocation_id.as_str(), inv.job_id.as_str()), ("inv-1", "job-1"));
        assert_eq!(
            inv.tasks,
            [BatchTask {
                task_id: "t-1".into(),
                bucket: "vault".into(),
                key: "calls/2026/r 1ü.wav".into(),
                version: None
            }]
        );
        assert_eq!(
            inv.arguments.unwrap(),
            RekeyArguments {
                target: TargetKeys::Keys(vec![A.into(), B.into()]),
                from_key: Some(A.into()),
                deployment: None,
                copy_only: false
            }
        );
        let moving = parse_invocation(&event(json!({"operation": "rekey", "copyOnly": "true",
            "targetRegion": "eu-west-1", "targetVault": "acme-vault-eu", "targetCatalog": "acme-catalog-eu"})))
        .unwrap()
        .arguments
        .unwrap();
        assert!(moving.copy_only);
        assert_eq!(
            moving.deployment,
            Some(TargetDeployment {
                region: "eu-west-1".into(),
                vault_bucket: "acme-vault-eu".into(),
                catalog_table: "acme-catalog-eu".into()
            })
        );
        let configured = parse_invocation(&event(json!({"operation": "rekey", "targetKeys": "configured"}))).unwrap();
        assert_eq!(configured.arguments.unwrap().target, TargetKeys::Configured);
    }

    #[test]
    fn arguments_that_are_missing_or_wrong_are_refused_never_defaulted() {
        let cases = [
            (json!(null), "no userArguments"),
            (json!({}), "no operation"),
            (json!({"operation": "copy", "targetKeys": A}), "this function does"),
            (json!({"operation": "rekey"}), "never falls back to defaults"),
            (json!({"operation": "rekey", "targetKeys": "alias/new"}), "not a KMS key ARN"),
            (json!({"operation": "rekey", "targetKeys": A, "fromKey": "x"}), "fromKey"),
            (json!({"operation": "rekey", "targetKeys": 7}), "not a string"),
            (json!({"operation": "rekey", "targetKeys": A, "targetRegion": "eu-west-1"}), "all three"),
            (
                json!({"operation": "rekey", "targetKeys": A, "targetRegion": "Europe", "targetVault": "v", "targetCatalog": "c"}),
                "all three",
            ),
            (json!({"operation": "rekey", "copyOnly": "true"}), "copies into another region"),
            (json!({"operation": "rekey", "targetKeys": A, "copyOnly": "yes"}), "not \"true\""),
        ];
        for (args, expected) in cases {
            let err = parse_invocation(&event(args.clone())).unwrap().arguments.unwrap_err();
            assert!(err.0.contains(expected), "{args}: {err}");
        }
    }

    #[test]
    fn a_schema_1_event_or_a_broken_one_is_refused_whole() {
        let mut v1 = event(json!({}));
        v1["invocationSchemaVersion"] = json!("1.0");
        assert!(parse_invocation(&v1).unwrap_err().0.contains("InvocationSchemaVersion 2.0"));
        let mut arn_only = event(json!({}));
        arn_only["tasks"][0] = json!({"taskId": "t", "s3Key": "k", "s3BucketArn": "arn:aws:s3:::vault"});
        assert!(parse_invocation(&arn_only).unwrap_err().0.contains("s3BucketArn"));
        for broken in [
            json!([]),
            json!({"invocationSchemaVersion": "2.0"}),
            json!({"invocationSchemaVersion": "2.0", "invocationId": "i", "job": {}, "tasks": []}),
        ] {
            assert!(parse_invocation(&broken).is_err(), "{broken}");
        }
    }

    #[test]
    fn the_response_names_every_task_with_its_code_and_a_bounded_string() {
        let long = "é".repeat(700);
        let r = response(
            "inv-1",
            &[
                TaskResult { task_id: "t-1".into(), code: ResultCode::Succeeded, result: "rekeyed".into() },
                TaskResult { task_id: "t-2".into(), code: ResultCode::PermanentFailure, result: long },
            ],
        );
        assert_eq!(r["invocationSchemaVersion"], "2.0");
        assert_eq!(r["treatMissingKeysAs"], "PermanentFailure");
        assert_eq!(r["results"][0], json!({"taskId": "t-1", "resultCode": "Succeeded", "resultString": "rekeyed"}));
        assert!(r["results"][1]["resultString"].as_str().unwrap().len() <= 1024);
        let task = BatchTask { task_id: "t".into(), bucket: "b".into(), key: "calls/a b+c%.wav".into(), version: None };
        let made = parse_invocation(&invocation("job", &task, &[("operation", "rekey"), ("targetKeys", A)])).unwrap();
        assert_eq!(made.tasks, [task], "the key survives its encoding");
        assert_eq!(made.arguments.unwrap().target, TargetKeys::Keys(vec![A.into()]));
    }
}
