//! Event -> [`Retention`] -> answer. The schedule's event runs the daily
//! run; the operator command's requests hold, release or erase one
//! recording. A refusal or failure fails the invocation with its code
//! first (`legal_hold: ...`), which the command shows as it is.

use std::sync::Arc;

use serde_json::{json, Value};
use vault::errors::ErrorKind;
use vault::errors::Failure;
use vault::metrics::MetricsLog;
use vault::ports::catalog::{RecordingCatalog, RecordingListing, RetentionCatalog};
use vault::ports::objects::ObjectStore;
use vault::recording::{route, LegalHold, RecordingId};
use vault::retention::{EraseRequest, Retention, RunSummary};
use vault::time::rfc3339;
use vault::OperationError;

use crate::config::Config;

/// The function's name in its metrics.
pub const FUNCTION: &str = "retention";

/// The longest reason accepted.
const MAX_REASON: usize = 1024;

/// What an invocation asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// The scheduled run (EventBridge's `Scheduled Event`, or `{"action": "run"}`).
    Run,
    /// `{"action": "hold", "recording": "<type>/<id>", "reason": ..., "requested_by": ...}`
    Hold { id: RecordingId, reason: String, requested_by: String },
    /// `{"action": "release", ...}`, the same fields.
    Release { id: RecordingId, reason: String, requested_by: String },
    /// `{"action": "erase", "recording", "reason", "requested_by", "request_id",
    /// "bypass_governance_retention": bool}`
    Erase(EraseRequest),
}

fn bad(message: impl Into<String>) -> Failure {
    Failure::new("bad_request", message)
}

impl Request {
    /// Parses an invocation's payload.
    pub fn parse(event: &Value) -> Result<Self, Failure> {
        let action = event.get("action").and_then(Value::as_str);
        if action.is_none() && event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event") {
            return Ok(Self::Run);
        }
        let text = |name: &str, max: usize| -> Result<String, Failure> {
            let v = event.get(name).and_then(Value::as_str).map(str::trim).unwrap_or_default();
            if v.is_empty() || v.len() > max {
                return Err(bad(format!("{name} is required, 1 to {max} characters")));
            }
            Ok(v.to_string())
        };
        let id = || -> Result<RecordingId, Failure> {
            let r = text("recording", 1100)?;
            route(&r).ok_or_else(|| bad(format!("recording {r:?} is not <type>/<id>")))
        };
        match action {
            Some("run") => Ok(Self::Run),
            Some("hold") => Ok(Self::Hold {
                id: id()?,
                reason: text("reason", MAX_REASON)?,
                requested_by: text("requested_by", 512)?,
            }),
            Some("release") => Ok(Self::Release {
                id: id()?,
                reason: text("reason", MAX_REASON)?,
                requested_by: text("requested_by", 512)?,
            }),
            Some("erase") => Ok(Self::Erase(EraseRequest {
                id: id()?,
                request: text("request_id", 128)?,
                reason: text("reason", MAX_REASON)?,
                requested_by: text("requested_by", 512)?,
                bypass_governance: match event.get("bypass_governance_retention") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(b)) => *b,
                    Some(other) => {
                        return Err(bad(format!("bypass_governance_retention must be true or false, not {other}")))
                    }
                },
            })),
            Some(other) => Err(bad(format!("unknown action {other:?}: run, hold, release or erase"))),
            None => Err(bad("not a scheduled event and no action: run, hold, release or erase")),
        }
    }
}

/// The retention handler.
pub struct Handler<C, O, E> {
    retention: Retention<C, O, E>,
    metrics: Arc<dyn MetricsLog>,
}

impl<C, O, E> Handler<C, O, E>
where
    C: RecordingCatalog + RecordingListing + RetentionCatalog,
    O: ObjectStore,
    E: ObjectStore,
{
    /// A handler with `config`, over these adapters (the evidence bucket's
    /// store apart from the vault's).
    pub fn new(config: Config, catalog: C, vault: O, evidence: E, metrics: Arc<dyn MetricsLog>) -> Self {
        Self { retention: Retention::new(catalog, vault, evidence, config.settings), metrics }
    }

    /// Handles one invocation at `now` (Unix seconds); `request_id` names
    /// a scheduled run (Lambda retries an invocation under the same id, so
    /// a retry continues the same run).
    pub async fn handle(&self, event: &Value, now: u64, request_id: &str) -> Result<Value, Failure> {
        let request = Request::parse(event).inspect_err(|f| self.counted("Refusals", &f.code))?;
        let answer = match request {
            Request::Run => {
                let summary = self.retention.run(&format!("run-{request_id}"), now).await.map_err(|e| self.fail(&e))?;
                self.run_metrics(&summary);
                tracing::info!(
                    run = %summary.run,
                    deleted = summary.deleted.len(),
                    bytes = summary.bytes_deleted(),
                    held = summary.held,
                    waiting = summary.waiting,
                    backlog = summary.backlog,
                    "retention run"
                );
                json!({
                    "run": summary.run,
                    "deleted": summary.deleted.iter().map(|d| d.id.to_string()).collect::<Vec<_>>(),
                    "bytes_deleted": summary.bytes_deleted(),
                    "held": summary.held,
                    "waiting": summary.waiting,
                    "stamped": summary.stamped,
                    "stamping_done": summary.stamping_done,
                    "backlog": summary.backlog,
                    "failures": summary.failures,
                    "reports": summary.reports.iter().map(|k| self.evidence_uri(k)).collect::<Vec<_>>(),
                })
            }
            Request::Hold { id, reason, requested_by } => {
                let hold = LegalHold { by: requested_by, reason, at: rfc3339(now) };
                let entry = self.retention.hold(&id, hold).await.map_err(|e| self.fail(&e))?;
                tracing::info!(recording = %id, by = ?entry.hold.as_ref().map(|h| &h.by), "legal hold set");
                json!({ "recording": id.to_string(), "hold": hold_json(&entry.hold) })
            }
            Request::Release { id, reason, requested_by } => {
                let release = LegalHold { by: requested_by, reason, at: rfc3339(now) };
                let entry = self.retention.release(&id, release).await.map_err(|e| self.fail(&e))?;
                let released = entry.released_hold.as_ref();
                tracing::info!(recording = %id, by = ?released.map(|r| &r.release.by), "legal hold released");
                json!({
                    "recording": id.to_string(),
                    "hold": null,
                    "released": hold_json(&released.map(|r| r.hold.clone())),
                    "release": hold_json(&released.map(|r| r.release.clone())),
                })
            }
            Request::Erase(request) => {
                let erased = self.retention.erase(&request, now).await.map_err(|e| self.fail(&e))?;
                self.metrics.put(
                    FUNCTION,
                    &[],
                    &[
                        ("RecordingsDeleted", "Count", 1.0),
                        ("BytesDeleted", "Bytes", erased.record.plaintext_bytes as f64),
                    ],
                );
                tracing::info!(recording = %request.id, by = %request.requested_by, bypass = request.bypass_governance, "erased");
                json!({
                    "recording": request.id.to_string(),
                    "erased": erased.record.to_json(),
                    "report": self.evidence_uri(&erased.report),
                })
            }
        };
        Ok(answer)
    }

    /// Where an evidence report is, as `s3://bucket/key`.
    fn evidence_uri(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.retention.settings().evidence_bucket)
    }

    fn run_metrics(&self, s: &RunSummary) {
        self.metrics.put(
            FUNCTION,
            &[],
            &[
                ("RecordingsDeleted", "Count", s.deleted.len() as f64),
                ("BytesDeleted", "Bytes", s.bytes_deleted() as f64),
                ("RecordingsHeld", "Count", s.held as f64),
                ("RecordingsWaiting", "Count", s.waiting as f64),
                ("RetentionBacklog", "Count", if s.backlog { 1.0 } else { 0.0 }),
            ],
        );
        for (code, n) in &s.failures {
            self.metrics.put(FUNCTION, &[("Code", code)], &[("Failures", "Count", *n as f64)]);
        }
    }

    fn counted(&self, metric: &str, code: &str) {
        self.metrics.put(FUNCTION, &[("Code", code)], &[(metric, "Count", 1.0)]);
    }

    /// A refusal the caller can act on (a hold, a lock, a typo) is counted
    /// apart from a failure of the deployment, which the alarm watches.
    fn fail(&self, e: &dyn OperationError) -> Failure {
        let refusal =
            matches!(e.kind(), ErrorKind::Conflict | ErrorKind::NotFound | ErrorKind::BadRequest | ErrorKind::Moved);
        self.counted(if refusal { "Refusals" } else { "Failures" }, e.code());
        Failure::of(e)
    }
}

fn hold_json(hold: &Option<LegalHold>) -> Value {
    match hold {
        Some(h) => json!({ "by": h.by, "reason": h.reason, "at": h.at }),
        None => Value::Null,
    }
}
