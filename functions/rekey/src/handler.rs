//! Invocation -> [`Rekeyer`] per task -> the response S3 Batch Operations
//! expects. Every task gets an answer: `Succeeded`, `TemporaryFailure`
//! (throttling, a collision, a transient error: the job retries it) or
//! `PermanentFailure` with the stable code first in `resultString`, so the
//! completion report says what to fix. An invocation that is not schema
//! 2.0, or carries no tasks, fails whole (there is no task to answer).
//!
//! The same binary is the tag sweep (template.yaml's `TagSweep`, its own
//! role): EventBridge's daily `Scheduled Event`, or `{"action":
//! "sweep-tags"}`, runs [`Rekeyer::sweep_tags`] and answers what it did.

use serde_json::Value;
use vault::errors::{ErrorKind, Failure, OperationError};
use vault::metrics;
use vault::ports::catalog::{RecordingCatalog, RecordingListing, RetentionCatalog};
use vault::ports::keys::KeyManagement;
use vault::ports::objects::ObjectStore;
use vault::recording::route;
use vault::rekey::{Destination, RekeyOutcome, RekeyTask, Rekeyer, Target};

use inbound::s3_batch::{self as event, BatchTask, RekeyArguments, ResultCode, TargetKeys, TaskResult};

/// The function's name in logs and metrics.
pub const FUNCTION: &str = "rekey";
/// The tag sweep's name in metrics (the `TagSweep` function).
pub const SWEEP: &str = "tag-sweep";

/// The rekey handler.
pub struct Handler<K, O, C> {
    rekeyer: Rekeyer<K, O, C>,
}

impl<K: KeyManagement, O: ObjectStore, C: RecordingCatalog + RetentionCatalog + RecordingListing> Handler<K, O, C> {
    pub fn new(rekeyer: Rekeyer<K, O, C>) -> Self {
        Self { rekeyer }
    }

    /// The re-keyer.
    pub fn rekeyer(&self) -> &Rekeyer<K, O, C> {
        &self.rekeyer
    }

    /// Answers one invocation.
    pub async fn handle(&self, payload: &Value) -> Result<Value, Failure> {
        let scheduled = payload.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event");
        if scheduled || payload.get("action").and_then(Value::as_str) == Some("sweep-tags") {
            return self.sweep(vault::time::unix_now()).await;
        }
        let invocation = event::parse_invocation(payload).map_err(|e| {
            tracing::error!(code = e.code(), error = %e, "not an S3 Batch Operations invocation this function can answer");
            Failure::of(&e)
        })?;
        let mut results = Vec::with_capacity(invocation.tasks.len());
        for task in &invocation.tasks {
            let result = match &invocation.arguments {
                Err(e) => permanent(task, "bad_arguments", &e.to_string()),
                Ok(args) => self.task(&invocation.job_id, task, args).await,
            };
            results.push(result);
        }
        Ok(event::response(&invocation.invocation_id, &results))
    }

    /// The tag sweep: its figures as metrics (`TagsLeftUnfinished`, the
    /// versions a writer left `pending` and those the sweep could not
    /// finish, alarms; a mark whose tag was already set does not), its
    /// answer the rows it finished and those it could not.
    pub async fn sweep(&self, now: u64) -> Result<Value, Failure> {
        let report = self.rekeyer.sweep_tags(now).await.map_err(|e| {
            tracing::error!(code = e.code(), error = %e, "the tag sweep could not read the catalog's marked rows");
            metrics::put(SWEEP, &[("Code", e.code())], &[("Failures", "Count", 1.0)]);
            Failure::of(&e)
        })?;
        metrics::put(
            SWEEP,
            &[],
            &[
                ("TagsDue", "Count", report.due as f64),
                ("TagsFinished", "Count", report.finished.len() as f64),
                ("TagSweepFailures", "Count", report.failed.len() as f64),
                ("TagsLeftUnfinished", "Count", (report.finished.len() + report.failed.len()) as f64),
            ],
        );
        if !report.finished.is_empty() || !report.failed.is_empty() {
            tracing::warn!(
                code = "tags_finished_by_sweep",
                due = report.due,
                finished = report.finished.len(),
                cleared = report.cleared,
                failed = report.failed.len(),
                "catalogued versions whose tags their writer never finished: a re-key or ingest failed after its catalog write (see its job report or dead letters)"
            );
        }
        Ok(serde_json::json!({
            "due": report.due,
            "finished": report.finished,
            "cleared": report.cleared,
            "young": report.young,
            "failed": report.failed.iter().map(|(id, code)| serde_json::json!({"recording": id, "code": code})).collect::<Vec<_>>(),
        }))
    }

    async fn task(&self, job: &str, task: &BatchTask, args: &RekeyArguments) -> TaskResult {
        let vault_bucket = &self.rekeyer.settings().vault_bucket;
        if &task.bucket != vault_bucket {
            return permanent(
                task,
                "wrong_bucket",
                &format!(
                    "the manifest names bucket {}; this function re-keys recordings in {vault_bucket}",
                    task.bucket
                ),
            );
        }
        let Some(id) = route(&task.key) else {
            return permanent(task, "bad_key", &format!("{:?} is not <recording type>/<recording id>", task.key));
        };
        let rekey = RekeyTask {
            id,
            target: match &args.target {
                TargetKeys::Configured => Target::Configured,
                TargetKeys::Keys(keys) => Target::Keys(keys.clone()),
            },
            from_key: args.from_key.clone(),
            // Retries of a task carry its id: a retry takes over the claim
            // of an attempt that died.
            request_id: format!("{job}/{}", task.task_id),
            destination: args.deployment.as_ref().map(|d| Destination {
                region: d.region.clone(),
                vault_bucket: d.vault_bucket.clone(),
                catalog_table: d.catalog_table.clone(),
            }),
            copy_only: args.copy_only,
        };
        match self.rekeyer.rekey(&rekey).await {
            Ok(outcome) => {
                let metric = match &outcome {
                    RekeyOutcome::Rekeyed { .. } => "Rekeyed",
                    RekeyOutcome::AlreadyOnTarget { .. } => "AlreadyOnTarget",
                    RekeyOutcome::NotUnderKey { .. } => "NotUnderKey",
                    RekeyOutcome::MovedRegion { .. } => "MovedRegion",
                    RekeyOutcome::AlreadyMoved { .. } => "AlreadyMoved",
                };
                tracing::info!(job, task = task.task_id, key = task.key, outcome = metric, "{}", outcome.summary());
                metrics::put(FUNCTION, &[], &[(metric, "Count", 1.0)]);
                TaskResult { task_id: task.task_id.clone(), code: ResultCode::Succeeded, result: outcome.summary() }
            }
            Err(e) => {
                let code = ResultCode::for_error(&e);
                if e.kind() == ErrorKind::Integrity {
                    tracing::error!(job, task = task.task_id, key = task.key, code = e.code(), error = %e, "re-key failed");
                } else {
                    tracing::warn!(job, task = task.task_id, key = task.key, code = e.code(), retry = e.is_retryable(), error = %e, "re-key failed");
                }
                metrics::put(FUNCTION, &[("Code", e.code())], &[("Failures", "Count", 1.0)]);
                TaskResult { task_id: task.task_id.clone(), code, result: format!("{} {e}", e.code()) }
            }
        }
    }
}

fn permanent(task: &BatchTask, code: &str, detail: &str) -> TaskResult {
    tracing::error!(task = task.task_id, key = task.key, code, detail, "task refused");
    metrics::put(FUNCTION, &[("Code", code)], &[("Failures", "Count", 1.0)]);
    TaskResult { task_id: task.task_id.clone(), code: ResultCode::PermanentFailure, result: format!("{code} {detail}") }
}
