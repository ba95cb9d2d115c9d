//! Invocation -> [`Rekeyer`] per task -> the response S3 Batch Operations
//! expects. Every task gets an answer: `Succeeded`, `TemporaryFailure`
//! (throttling, a collision, a transient error: the job retries it) or
//! `PermanentFailure` with the stable code first in `resultString`, so the
//! completion report says what to fix. An invocation that is not schema
//! 2.0, or carries no tasks, fails whole (there is no task to answer).

use serde_json::Value;
use vault::errors::{ErrorKind, Failure, OperationError};
use vault::metrics;
use vault::ports::catalog::{RecordingCatalog, RetentionCatalog};
use vault::ports::keys::KeyManagement;
use vault::ports::objects::ObjectStore;
use vault::recording::route;
use vault::rekey::{Destination, RekeyOutcome, RekeyTask, Rekeyer, Target};

use inbound::s3_batch::{self as event, BatchTask, RekeyArguments, ResultCode, TargetKeys, TaskResult};

/// The function's name in logs and metrics.
pub const FUNCTION: &str = "rekey";

/// The rekey handler.
pub struct Handler<K, O, C> {
    rekeyer: Rekeyer<K, O, C>,
}

impl<K: KeyManagement, O: ObjectStore, C: RecordingCatalog + RetentionCatalog> Handler<K, O, C> {
    pub fn new(rekeyer: Rekeyer<K, O, C>) -> Self {
        Self { rekeyer }
    }

    /// The re-keyer.
    pub fn rekeyer(&self) -> &Rekeyer<K, O, C> {
        &self.rekeyer
    }

    /// Answers one invocation.
    pub async fn handle(&self, payload: &Value) -> Result<Value, Failure> {
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
