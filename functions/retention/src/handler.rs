//! Event -> [`Retention`] -> answer, by duty (`RETENTION_DUTY`). The
//! scheduled function runs the daily run and nothing else. Each other duty
//! is a function of its own behind an IAM-authenticated Function URL:
//! `hold` sets and releases legal holds, `erase` erases, and
//! `erase-past-governance` erases past a governance-mode Object Lock. Only
//! a Function URL with `AuthType: AWS_IAM` hands the function its caller
//! (`requestContext.authorizer.iam`, as Lambda authenticated the request's
//! signature), so the evidence names that caller; a caller field in the
//! body is ignored. A refusal is an HTTP answer with the code first
//! (`{"code": "legal_hold", "message": ...}`), which the command shows.

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

use crate::config::{Config, Duty};

/// The function's name in its metrics.
pub const FUNCTION: &str = "retention";

/// The longest reason accepted.
const MAX_REASON: usize = 1024;

/// What an invocation asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// The scheduled run (EventBridge's `Scheduled Event`, or `{"action": "run"}`).
    Run,
    /// `{"action": "hold", "recording": "<type>/<id>", "reason": ...}`
    Hold { id: RecordingId, reason: String, requested_by: String },
    /// `{"action": "release", ...}`, the same fields.
    Release { id: RecordingId, reason: String, requested_by: String },
    /// `{"action": "erase", "recording", "reason", "request_id"}`
    Erase(EraseRequest),
}

fn bad(message: impl Into<String>) -> Failure {
    Failure::new("bad_request", message)
}

impl Request {
    /// Whether a plain invocation's payload asks for the run.
    pub fn is_run(event: &Value) -> bool {
        match event.get("action").and_then(Value::as_str) {
            Some(action) => action == "run",
            None => event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event"),
        }
    }

    /// Parses a request's body, for `duty`, from `caller` (the principal
    /// AWS authenticated; a `requested_by` in the body is not read).
    pub fn parse(body: &Value, duty: Duty, caller: &str) -> Result<Self, Failure> {
        let text = |name: &str, max: usize| -> Result<String, Failure> {
            let v = body.get(name).and_then(Value::as_str).map(str::trim).unwrap_or_default();
            if v.is_empty() || v.len() > max {
                return Err(bad(format!("{name} is required, 1 to {max} characters")));
            }
            Ok(v.to_string())
        };
        let id = || -> Result<RecordingId, Failure> {
            let r = text("recording", 1100)?;
            route(&r).ok_or_else(|| bad(format!("recording {r:?} is not <type>/<id>")))
        };
        let action = body.get("action").and_then(Value::as_str);
        let allowed = match duty {
            Duty::Run => &["run"][..],
            Duty::Hold => &["hold", "release"][..],
            Duty::Erase | Duty::ErasePastGovernance => &["erase"][..],
        };
        match action {
            Some(a) if allowed.contains(&a) => {}
            Some(a @ ("run" | "hold" | "release" | "erase")) => return Err(not_this_duty(a, duty)),
            Some(other) => return Err(bad(format!("unknown action {other:?}: {}", allowed.join(" or ")))),
            None => return Err(bad(format!("no action: {}", allowed.join(" or ")))),
        }
        let requested_by = caller.to_string();
        match action {
            Some("hold") => Ok(Self::Hold { id: id()?, reason: text("reason", MAX_REASON)?, requested_by }),
            Some("release") => Ok(Self::Release { id: id()?, reason: text("reason", MAX_REASON)?, requested_by }),
            Some("erase") => {
                let bypass_governance = match body.get("bypass_governance_retention") {
                    None | Some(Value::Null) => duty == Duty::ErasePastGovernance,
                    Some(Value::Bool(b)) => *b,
                    Some(other) => {
                        return Err(bad(format!("bypass_governance_retention must be true or false, not {other}")))
                    }
                };
                if bypass_governance != (duty == Duty::ErasePastGovernance) {
                    return Err(not_this_duty(
                        if bypass_governance {
                            "erase past governance retention"
                        } else {
                            "erase without bypassing governance retention (the erase duty's URL does)"
                        },
                        duty,
                    ));
                }
                Ok(Self::Erase(EraseRequest {
                    id: id()?,
                    request: text("request_id", 128)?,
                    reason: text("reason", MAX_REASON)?,
                    requested_by,
                    bypass_governance,
                }))
            }
            _ => Ok(Self::Run),
        }
    }
}

/// A request this function's duty does not cover: its own function, URL and
/// operators' policy do (template.yaml).
fn not_this_duty(what: &str, duty: Duty) -> Failure {
    Failure::new(
        "duty_not_granted",
        format!(
            "this is the retention function for the {} duty, which does not {what}: each duty has its own function URL and operators' policy (hold, erase, erase-past-governance)",
            duty.name()
        ),
    )
}

/// The caller Lambda authenticated, from a Function URL request with
/// `AuthType: AWS_IAM`: the principal's ARN.
fn authenticated_caller(event: &Value) -> Option<&str> {
    event
        .pointer("/requestContext/authorizer/iam/userArn")
        .and_then(Value::as_str)
        .filter(|arn| arn.starts_with("arn:"))
}

/// Whether an event is a Function URL request (API Gateway payload 2.0).
fn is_url_request(event: &Value) -> bool {
    event.pointer("/requestContext/http/method").is_some()
}

/// A Function URL request's body as JSON.
fn url_body(event: &Value) -> Result<Value, Failure> {
    let raw = event.get("body").and_then(Value::as_str).unwrap_or_default();
    let bytes = if event.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.decode(raw).map_err(|_| bad("the body is not valid base64"))?
    } else {
        raw.as_bytes().to_vec()
    };
    serde_json::from_slice(&bytes).map_err(|e| bad(format!("the body is not a JSON object: {e}")))
}

/// A Function URL answer: `status`, JSON `body`.
fn http(status: u16, body: &Value) -> Value {
    json!({
        "statusCode": status,
        "headers": {"content-type": "application/json", "cache-control": "no-store"},
        "body": body.to_string(),
    })
}

/// The HTTP status of a refusal or failure, by its code.
pub fn status_of(code: &str, kind: Option<ErrorKind>) -> u16 {
    match (code, kind) {
        ("bad_request", _) | (_, Some(ErrorKind::BadRequest)) => 400,
        ("caller_unauthenticated", _) => 401,
        ("duty_not_granted", _) => 403,
        ("method_not_allowed", _) => 405,
        (_, Some(ErrorKind::NotFound)) => 404,
        (_, Some(ErrorKind::Conflict | ErrorKind::Moved)) => 409,
        (_, Some(ErrorKind::Transient)) => 503,
        _ => 500,
    }
}

/// The retention handler.
pub struct Handler<C, O, E> {
    retention: Retention<C, O, E>,
    duty: Duty,
    metrics: Arc<dyn MetricsLog>,
}

/// A refusal or failure with its HTTP status.
struct Refused {
    failure: Failure,
    status: u16,
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
        Self { retention: Retention::new(catalog, vault, evidence, config.settings), duty: config.duty, metrics }
    }

    /// Handles one invocation at `now` (Unix seconds); `request_id` names
    /// a scheduled run (Lambda retries an invocation under the same id, so
    /// a retry continues the same run). The run's function answers the
    /// schedule; a duty's function answers its Function URL, with an HTTP
    /// answer even for a refusal (Lambda would turn a function error into
    /// a bare 502).
    pub async fn handle(&self, event: &Value, now: u64, request_id: &str) -> Result<Value, Failure> {
        if self.duty == Duty::Run {
            if is_url_request(event) || !Request::is_run(event) {
                let action = event.get("action").and_then(Value::as_str).unwrap_or("answer this request");
                let refused = not_this_duty(action, self.duty);
                self.counted("Refusals", &refused.code);
                return Err(refused);
            }
            return self.run(now, request_id).await;
        }
        if !is_url_request(event) {
            let refused = Failure::new(
                "caller_unauthenticated",
                format!(
                    "the {} duty is served only through its Function URL (AuthType AWS_IAM), which names the caller AWS authenticated; a plain Invoke names nobody",
                    self.duty.name()
                ),
            );
            self.counted("Refusals", &refused.code);
            return Err(refused);
        }
        Ok(match self.url_request(event, now).await {
            Ok(answer) => http(200, &answer),
            Err(refused) => {
                self.tally(&refused);
                let Refused { failure, status } = refused;
                http(status, &json!({ "code": failure.code, "message": failure.message }))
            }
        })
    }

    /// The scheduled run.
    async fn run(&self, now: u64, request_id: &str) -> Result<Value, Failure> {
        let summary = self.retention.run(&format!("run-{request_id}"), now).await.map_err(|e| {
            let refused = self.fail(&e);
            self.tally(&refused);
            refused.failure
        })?;
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
        Ok(json!({
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
        }))
    }

    /// One request through the duty's Function URL.
    async fn url_request(&self, event: &Value, now: u64) -> Result<Value, Refused> {
        let refuse = |failure: Failure| Refused { status: status_of(&failure.code, None), failure };
        let method = event.pointer("/requestContext/http/method").and_then(Value::as_str).unwrap_or_default();
        if method != "POST" {
            return Err(refuse(Failure::new("method_not_allowed", format!("{method}: send the request as a POST"))));
        }
        let Some(caller) = authenticated_caller(event) else {
            return Err(refuse(Failure::new(
                "caller_unauthenticated",
                "the request names no caller AWS authenticated: the function URL must have AuthType AWS_IAM (template.yaml)",
            )));
        };
        let body = url_body(event).map_err(refuse)?;
        if let Some(claimed) = body.get("requested_by") {
            // What the caller says about itself changes nothing.
            tracing::warn!(%claimed, caller, "requested_by_ignored");
        }
        let request = Request::parse(&body, self.duty, caller).map_err(refuse)?;
        Ok(match request {
            Request::Run => unreachable!("no duty but the run's parses a run"),
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
                    "requested_by": request.requested_by,
                    "erased": erased.record.to_json(),
                    "report": self.evidence_uri(&erased.report),
                })
            }
        })
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

    /// A refusal the caller can act on (a hold, a lock, a typo) is told
    /// apart, by its status, from a failure of the deployment, which the
    /// alarm watches (`Failures`).
    fn fail(&self, e: &dyn OperationError) -> Refused {
        Refused { failure: Failure::of(e), status: status_of(e.code(), Some(e.kind())) }
    }

    /// Counts a refusal (`Refusals`) or a failure (`Failures`, 5xx) by code.
    fn tally(&self, refused: &Refused) {
        self.counted(if refused.status >= 500 { "Failures" } else { "Refusals" }, &refused.failure.code);
    }
}

fn hold_json(hold: &Option<LegalHold>) -> Value {
    match hold {
        Some(h) => json!({ "by": h.by, "reason": h.reason, "at": h.at }),
        None => Value::Null,
    }
}
