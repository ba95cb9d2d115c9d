//! `callvault rekey`: moves recordings onto other keys.
//!
//! It selects the recordings from the catalog (those under `--from-key`,
//! of `--type`), and then
//! - `--dry-run`: says what would move (recordings, bytes, per key and
//!   type) and changes nothing;
//! - by default: writes the manifest (CSV, `Bucket,Key`) to the vault
//!   bucket and creates an S3 Batch Operations job through S3 Control
//!   `CreateJob` that invokes the `rekey` function once per recording
//!   (invocation schema 2.0, the target keys in `UserArguments`), with a
//!   completion report of every task beside the manifest; it prints the job
//!   id and how to follow and confirm it;
//! - `--local`: runs the same tasks here, through the same handler the
//!   Lambda runs (`rekey::Handler`, schema 2.0 in and out), N at a time,
//!   retrying temporary failures as the job would, and writes the report
//!   in the job's CSV shape.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use inbound::s3_batch::{
    self, BatchTask, ARG_COPY_ONLY, ARG_FROM_KEY, ARG_OPERATION, ARG_TARGET_CATALOG, ARG_TARGET_KEYS,
    ARG_TARGET_REGION, ARG_TARGET_VAULT, CONFIGURED, OP_REKEY,
};
use serde_json::Value;
use vault::arn::KmsArn;
use vault::aws::{AwsKms, DynamoCatalog, RegionalAdapters, S3Objects};
use vault::ports::objects::WriteOptions;
use vault::recording::{RecordingEntry, RecordingKeys};
use vault::rekey::{select, Destination, RekeySettings, Rekeyer, Selection};
use vault::OperationError;

use crate::aws::{Aws, RekeyJob};
use crate::CliError;

/// What the operator asked for.
pub struct Request {
    pub selection: Selection,
    /// Key ARNs, primary first; empty: each type's configured keys.
    pub to_keys: Vec<String>,
    pub dry_run: bool,
    pub mode: Mode,
    pub catalog_table: String,
    pub vault_bucket: String,
    /// Another region's deployment to move the recordings into.
    pub destination: Option<Destination>,
    /// Copy the messages as they are (multi-Region keys).
    pub copy_only: bool,
}

/// Where the tasks run.
pub enum Mode {
    /// On this machine, `workers` at a time; the report goes to `report`.
    Local { workers: usize, report: String, org: String, recording_keys: String, frame_length: u32 },
    /// As an S3 Batch Operations job.
    Batch { function_arn: String, role_arn: String, priority: i32, confirmed: bool },
}

/// The manifest's lines and totals.
#[derive(Default)]
struct Plan {
    keys: Vec<String>,
    bytes: u64,
    /// (source keys, type) -> (recordings, bytes)
    groups: std::collections::BTreeMap<(String, String), (u64, u64)>,
}

impl Plan {
    fn add(&mut self, e: &RecordingEntry) {
        self.keys.push(e.vault_key.clone());
        self.bytes += e.plaintext_size;
        let g = self.groups.entry((e.wrapping_keys.join(","), e.id.recording_type.clone())).or_default();
        g.0 += 1;
        g.1 += e.plaintext_size;
    }

    fn describe(&self, target: &str) -> String {
        let n = self.keys.len();
        let plural = if n == 1 { "" } else { "s" };
        let mut out = format!("{n} recording{plural}, {} bytes of plaintext, to {target}:\n", self.bytes);
        for ((keys, ty), (n, bytes)) in &self.groups {
            out.push_str(&format!("  {n:>8} {ty:<16} {bytes:>14} bytes  under {keys}\n"));
        }
        out
    }

    /// The manifest, as S3 Batch Operations reads it: `Bucket,Key` per
    /// line, the key URL-encoded.
    fn manifest(&self, bucket: &str) -> String {
        self.keys.iter().map(|k| format!("{bucket},{}\n", s3_batch_key(k))).collect()
    }
}

/// A key as a Batch Operations CSV manifest carries it (URL-encoded).
fn s3_batch_key(key: &str) -> String {
    inbound::s3_event::encode_event_key(key)
}

/// A CSV field, quoted when it must be.
fn csv(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

pub async fn rekey(req: Request) -> Result<(), CliError> {
    let aws = Aws::from_env().await;
    let sdk = aws.sdk();
    if req.selection.from_key.is_none() && req.selection.types.is_empty() {
        return Err(CliError::usage("name what moves: --from-key <ARN> and/or --type <TYPE>"));
    }
    for k in req.to_keys.iter().chain(req.selection.from_key.iter()) {
        if !KmsArn::parse(k).is_some_and(|a| a.is_key()) {
            return Err(CliError::usage(format!(
                "{k:?} is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>)"
            )));
        }
    }
    if req.destination.is_some() && !req.copy_only && req.to_keys.is_empty() {
        return Err(CliError::usage(
            "a move to another region names the keys there (--to-key <ARN in that region>), or copies multi-Region messages as they are (--copy-only)",
        ));
    }
    if req.to_keys.iter().any(|k| req.selection.from_key.as_ref().is_some_and(|f| vault::arn::same_key(k, f))) {
        return Err(CliError::usage("--to-key names the --from-key: a recording cannot move onto the key it leaves"));
    }
    let catalog = DynamoCatalog::from_config(sdk, &req.catalog_table);
    let mut plan = Plan::default();
    select(&catalog, &req.selection, |e| plan.add(e))
        .await
        .map_err(|e| CliError { code: e.code(), message: e.to_string() })?;
    let target =
        if req.to_keys.is_empty() { "each type's configured keys".to_string() } else { req.to_keys.join(", ") };
    if req.dry_run || plan.keys.is_empty() {
        print!("{}{}", if req.dry_run { "would re-key " } else { "nothing to re-key: " }, plan.describe(&target));
        return Ok(());
    }
    let target_arg = if req.to_keys.is_empty() { CONFIGURED.to_string() } else { req.to_keys.join(",") };
    let mut args = vec![(ARG_OPERATION, OP_REKEY.to_string()), (ARG_TARGET_KEYS, target_arg)];
    if let Some(from) = &req.selection.from_key {
        args.push((ARG_FROM_KEY, from.clone()));
    }
    if let Some(d) = &req.destination {
        args.push((ARG_TARGET_REGION, d.region.clone()));
        args.push((ARG_TARGET_VAULT, d.vault_bucket.clone()));
        args.push((ARG_TARGET_CATALOG, d.catalog_table.clone()));
        if req.copy_only {
            args.retain(|(k, _)| *k != ARG_TARGET_KEYS);
            args.push((ARG_COPY_ONLY, "true".to_string()));
        }
    }
    match req.mode {
        Mode::Local { workers, report, org, recording_keys, frame_length } => {
            let region = sdk
                .region()
                .map(|r| r.to_string())
                .ok_or_else(|| CliError::usage("set AWS_REGION to the vault's region"))?;
            let keys = RecordingKeys::parse(&recording_keys, &region)
                .map_err(|e| CliError { code: "config_invalid", message: format!("RECORDING_KEYS: {e}") })?;
            let settings = RekeySettings {
                org,
                vault_bucket: req.vault_bucket.clone(),
                region,
                keys,
                frame_length,
                write: WriteOptions::default(),
                claim_secs: 960,
                vault_lock: None,
            };
            let rekeyer = Rekeyer::new(AwsKms::new(sdk), S3Objects::from_config(sdk), catalog, settings)
                .with_destinations(Arc::new(RegionalAdapters::new(sdk)));
            let handler = Arc::new(rekey::Handler::new(rekeyer));
            println!("re-keying {}", plan.describe(&target));
            local(handler, &plan, &req.vault_bucket, &args, workers, &report).await
        }
        Mode::Batch { function_arn, role_arn, priority, confirmed } => {
            batch(&aws, &plan, &req.vault_bucket, &args, &function_arn, &role_arn, priority, confirmed).await
        }
    }
}

/// One task's line of the completion report, in the job's CSV shape:
/// Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage.
fn report_line(bucket: &str, key: &str, code: &str, result: &str) -> String {
    let status = if code == "Succeeded" { "succeeded" } else { "failed" };
    let error = if code == "Succeeded" { "" } else { code };
    format!("{},{},,{status},{},200,{}\n", csv(bucket), csv(&s3_batch_key(key)), error, csv(result))
}

type LocalHandler = rekey::Handler<AwsKms, S3Objects, DynamoCatalog>;

/// Temporary failures are tried again this often, as the job would.
const LOCAL_ATTEMPTS: u32 = 5;

async fn local(
    handler: Arc<LocalHandler>,
    plan: &Plan,
    bucket: &str,
    args: &[(&str, String)],
    workers: usize,
    report: &str,
) -> Result<(), CliError> {
    let started = Instant::now();
    let job = format!("local-{}", vault::time::unix_now());
    let args: Arc<Vec<(String, String)>> = Arc::new(args.iter().map(|(k, v)| (k.to_string(), v.clone())).collect());
    let total = plan.keys.len();
    let (done, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let next = Arc::new(AtomicUsize::new(0));
    let keys = Arc::new(plan.keys.clone());
    let lines = Arc::new(std::sync::Mutex::new(vec![String::new(); total]));
    let mut running = Vec::new();
    for _ in 0..workers.clamp(1, 64) {
        let (handler, args, keys, next, done, failed, lines, job, bucket) = (
            handler.clone(),
            args.clone(),
            keys.clone(),
            next.clone(),
            done.clone(),
            failed.clone(),
            lines.clone(),
            job.clone(),
            bucket.to_string(),
        );
        running.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(key) = keys.get(i) else { return };
                let task =
                    BatchTask { task_id: format!("task-{i}"), bucket: bucket.clone(), key: key.clone(), version: None };
                let arguments: Vec<(&str, &str)> = args.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let event = s3_batch::invocation(&job, &task, &arguments);
                let (code, result) = run_task(&handler, &event).await;
                if code != "Succeeded" {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                lines.lock().unwrap_or_else(|p| p.into_inner())[i] = report_line(&bucket, key, &code, &result);
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                progress(n, total, failed.load(Ordering::Relaxed));
            }
        }));
    }
    for r in running {
        r.await.map_err(|e| CliError { code: "io", message: format!("a worker failed: {e}") })?;
    }
    eprintln!();
    let mut file = std::fs::File::create(report).map_err(|e| CliError::io(format!("cannot write {report}"), e))?;
    for line in lines.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        file.write_all(line.as_bytes()).map_err(|e| CliError::io(report, e))?;
    }
    let secs = started.elapsed().as_secs_f64();
    let failed = failed.load(Ordering::Relaxed);
    println!(
        "re-keyed {} of {total} recordings in {secs:.1} s ({:.1} recordings/s, {workers} workers); report: {report}",
        total - failed,
        total as f64 / secs.max(0.001)
    );
    if failed > 0 {
        return Err(CliError {
            code: "rekey_failed",
            message: format!("{failed} of {total} recordings were not re-keyed: see {report} (a rerun retries them and skips what moved)"),
        });
    }
    Ok(())
}

/// Runs one task through the handler, retrying a temporary failure with a
/// growing pause; returns the final result code and string.
async fn run_task(handler: &LocalHandler, event: &Value) -> (String, String) {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let answer = match handler.handle(event).await {
            Ok(a) => a,
            Err(e) => return ("PermanentFailure".into(), format!("bad_event {e}")),
        };
        let r = &answer["results"][0];
        let code = r["resultCode"].as_str().unwrap_or("PermanentFailure").to_string();
        let result = r["resultString"].as_str().unwrap_or_default().to_string();
        if code != "TemporaryFailure" || attempt >= LOCAL_ATTEMPTS {
            return (code, result);
        }
        tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
    }
}

fn progress(done: usize, total: usize, failed: usize) {
    const WIDTH: usize = 30;
    let filled = done * WIDTH / total.max(1);
    eprint!("\r[{}{}] {done}/{total} re-keyed, {failed} failed", "#".repeat(filled), " ".repeat(WIDTH - filled));
    let _ = std::io::stderr().flush();
}

#[allow(clippy::too_many_arguments)]
async fn batch(
    aws: &Aws,
    plan: &Plan,
    bucket: &str,
    args: &[(&str, String)],
    function_arn: &str,
    role_arn: &str,
    priority: i32,
    confirmed: bool,
) -> Result<(), CliError> {
    let account = function_arn.split(':').nth(4).filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()));
    let Some(account) = account else {
        return Err(CliError::usage(format!("--function {function_arn:?} is not a Lambda function ARN (arn:aws:lambda:<region>:<account>:function:<name>)")));
    };
    let partition = function_arn.split(':').nth(1).unwrap_or("aws");
    let token = format!("rekey-{}-{}", vault::time::unix_now(), &hex::encode(random_bytes())[..8]);
    let manifest_key = format!("rekey/{token}/manifest.csv");
    let etag = aws.put_manifest(bucket, &manifest_key, plan.manifest(bucket)).await?;
    let job = aws
        .create_rekey_job(RekeyJob {
            account,
            partition,
            bucket,
            manifest_key: &manifest_key,
            manifest_etag: &etag,
            function_arn,
            role_arn,
            arguments: args.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
            schema: s3_batch::SCHEMA,
            token: &token,
            description: format!("callvault rekey: {} recordings", plan.keys.len()),
            priority,
            confirmed,
        })
        .await?;
    println!("created S3 Batch Operations job {job}: {} recordings from s3://{bucket}/{manifest_key}", plan.keys.len());
    if !confirmed {
        println!("it waits for confirmation: aws s3control update-job-status --account-id {account} --job-id {job} --requested-job-status Ready");
    }
    println!("follow it: aws s3control describe-job --account-id {account} --job-id {job}");
    println!("report of every task: s3://{bucket}/rekey/{token}/job-{job}/ (Bucket,Key,VersionId,TaskStatus,ErrorCode,HTTPStatusCode,ResultMessage)");
    Ok(())
}

fn random_bytes() -> [u8; 8] {
    let mut b = [0u8; 8];
    // Without randomness the token is the time alone: still unique per second.
    let _ = aws_lc_rs::rand::fill(&mut b);
    b
}
