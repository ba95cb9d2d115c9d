//! Event -> relevance -> (protection) -> alert and metrics. An event is
//! alerted once, however often it is delivered; a failure to read the
//! catalog or to publish fails the invocation, so that Lambda's asynchronous
//! retries (then its on-failure destination) take it.

use std::sync::Arc;

use serde_json::{json, Value};
use vault::alerts::AlertTopic;
use vault::catalog::{Catalog, EventClaim};
use vault::guardian::{compose, parse_event, KeyEvent, KeyEventKind, Parsed, Protection, Severity, Stake};
use vault::kms::{AwsKms, KeyFacts, KeyState};
use vault::metrics::MetricsLog;
use vault::recording::{unix_now, RecordingKeys};

use crate::config::Config;

/// The function's name in logs and metrics.
pub const FUNCTION: &str = "key-guardian";

/// How long an event id is remembered (retries come within hours).
const DEDUPE_SECS: u64 = 7 * 86_400;
/// How long an invocation holds an event before a retry may take it over:
/// longer than the function's timeout.
const LEASE_SECS: u64 = 90;
/// What the event's item records once protection cancelled a deletion.
const CANCELLED: &str = "deletion_cancelled";

/// An invocation that should be retried.
#[derive(Debug, thiserror::Error)]
#[error("{code}: {message}")]
pub struct HandlerError {
    pub code: &'static str,
    pub message: String,
}

impl From<HandlerError> for lambda_runtime::Diagnostic {
    fn from(e: HandlerError) -> Self {
        lambda_runtime::Diagnostic { error_type: e.code.to_string(), error_message: e.message }
    }
}

/// The key-guardian handler.
pub struct Handler {
    kms: AwsKms,
    catalog: Catalog,
    topic: AlertTopic,
    keys: RecordingKeys,
    protect: bool,
    metrics: Arc<dyn MetricsLog>,
}

impl Handler {
    /// A handler with `config`, over these adapters.
    pub fn new(config: Config, kms: AwsKms, catalog: Catalog, topic: AlertTopic, metrics: Arc<dyn MetricsLog>) -> Self {
        Self { kms, catalog, topic, keys: config.keys, protect: config.protect_keys_in_use, metrics }
    }

    fn count(&self, dimensions: &[(&str, &str)], name: &str, value: f64) {
        self.metrics.put(FUNCTION, dimensions, &[(name, "Count", value)]);
    }

    /// Handles one EventBridge event.
    pub async fn handle(&self, payload: Value) -> Result<Value, HandlerError> {
        let event = match parse_event(&payload) {
            Ok(Parsed::Key(event)) => event,
            Ok(Parsed::Unwatched(what)) => {
                tracing::info!(event = %what, "KMS event not watched; ignored");
                self.count(&[("Reason", "unwatched")], "EventsIgnored", 1.0);
                return Ok(json!({ "outcome": "ignored", "reason": "unwatched", "event": what }));
            }
            Err(e) => {
                // No retry can fix it and no alert storm: one log line, one count.
                tracing::error!(code = e.code(), event = %truncate(&payload.to_string(), 2000), "{e}");
                self.count(&[], "MalformedEvents", 1.0);
                return Ok(json!({ "outcome": "malformed", "code": e.code(), "message": e.to_string() }));
            }
        };
        let kind = event.kind.unwrap_or(KeyEventKind::PolicyChanged);
        let usage = self.catalog.key_usage(&event.key_arn).await.map_err(|e| HandlerError {
            code: e.code(),
            message: format!("cannot read the catalog's usage of {}: {e}", event.key_arn),
        })?;
        let stake = Stake { usage, configured_for: self.keys.types_using(&event.key_arn) };
        if !stake.is_relevant() {
            tracing::info!(key = %event.key_arn, event = kind.name(), "the key protects no recording and is not configured; ignored");
            self.count(&[("Reason", "unrelated_key")], "EventsIgnored", 1.0);
            return Ok(json!({ "outcome": "ignored", "reason": "unrelated_key", "key_arn": event.key_arn }));
        }
        let now = unix_now();
        let claim =
            self.catalog.claim_event("aws.kms", &event.id, now, LEASE_SECS, now + DEDUPE_SECS).await.map_err(|e| {
                HandlerError { code: e.code(), message: format!("cannot record event {}: {e}", event.id) }
            })?;
        let recorded = match claim {
            EventClaim::First { recorded } => recorded,
            EventClaim::Done => {
                tracing::info!(event_id = %event.id, "duplicate delivery; already alerted");
                self.count(&[], "DuplicateEvents", 1.0);
                return Ok(json!({ "outcome": "duplicate", "event_id": event.id }));
            }
            EventClaim::InProgress => {
                // Another invocation is alerting now; if it fails, this
                // retry (or its own) alerts once its lease has expired.
                return Err(HandlerError {
                    code: "event_in_progress",
                    message: format!("event {} is being handled by another invocation; retry", event.id),
                });
            }
        };
        let mut protection =
            if recorded.as_deref() == Some(CANCELLED) { Protection::Cancelled } else { Protection::None };
        match self.alert(&event, kind, &stake, &mut protection).await {
            Ok(answer) => {
                if let Err(e) = self.catalog.event_done("aws.kms", &event.id).await {
                    // The alert is out; at worst a duplicate delivery alerts again once the lease expires.
                    tracing::error!(event_id = %event.id, "cannot mark the event done: {e}");
                }
                Ok(answer)
            }
            Err(e) => {
                // The retry alerts at once, and reports a cancellation this attempt made.
                let done = (protection == Protection::Cancelled).then_some(CANCELLED);
                if let Err(release) = self.catalog.release_event("aws.kms", &event.id, done).await {
                    tracing::error!(event_id = %event.id, "cannot release the event: {release}");
                }
                Err(e)
            }
        }
    }

    async fn alert(
        &self,
        event: &KeyEvent,
        kind: KeyEventKind,
        stake: &Stake,
        protection: &mut Protection,
    ) -> Result<Value, HandlerError> {
        let arn = event.key_arn.as_str();
        let mut facts = self.kms.key_facts(arn).await.unwrap_or_else(|e| {
            tracing::warn!(key = arn, code = e.code(), "cannot describe the key: {e}");
            KeyFacts { error: Some(e.to_string()), ..KeyFacts::default() }
        });
        // Unless the key is known not to be pending deletion, try: KMS
        // refuses a key that is not, and the alert says why.
        if self.protect
            && *protection == Protection::None
            && kind == KeyEventKind::DeletionScheduled
            && stake.recordings() > 0
            && matches!(facts.state, Some(KeyState::PendingDeletion) | None)
        {
            *protection = match self.kms.cancel_key_deletion(arn).await {
                Ok(()) => {
                    tracing::warn!(
                        key = arn,
                        "deletion of a key that protects recordings cancelled; the key stays disabled"
                    );
                    facts.state = Some(KeyState::Disabled);
                    facts.deletion_date = None;
                    Protection::Cancelled
                }
                Err(e) => {
                    tracing::error!(key = arn, code = e.code(), "CancelKeyDeletion failed: {e}");
                    Protection::Failed(e.to_string())
                }
            };
        }
        let alert = compose(event, &facts, stake, protection, unix_now() as i64);
        let message_id =
            self.topic.publish(&alert).await.map_err(|e| HandlerError { code: e.code(), message: e.to_string() })?;
        tracing::info!(key = arn, event = kind.name(), severity = alert.severity.as_str(), subject = %alert.subject, "alert sent");

        self.count(&[("Severity", alert.severity.as_str())], "Alerts", 1.0);
        if kind.is_state_change() {
            self.count(&[("Key", arn), ("Event", kind.name())], "KeyStateChanges", 1.0);
        } else {
            let principal = event.principal.as_deref().unwrap_or("unknown");
            self.count(&[("Key", arn), ("Principal", principal)], "AccessDenials", 1.0);
        }
        if stake.recordings() > 0
            && matches!(
                kind,
                KeyEventKind::DeletionScheduled
                    | KeyEventKind::DeletionCancelled
                    | KeyEventKind::Enabled
                    | KeyEventKind::Deleted
            )
        {
            // From what happened, not from DescribeKey, which may have failed.
            let pending = kind == KeyEventKind::DeletionScheduled && *protection != Protection::Cancelled;
            self.count(&[("Key", arn)], "KeysPendingDeletionProtectingRecordings", f64::from(u8::from(pending)));
        }
        let protection = match protection {
            Protection::None => "none",
            Protection::Cancelled => "cancelled",
            Protection::Failed(_) => "failed",
        };
        Ok(json!({
            "outcome": "alerted",
            "severity": alert.severity.as_str(),
            "event": kind.name(),
            "key_arn": arn,
            "recordings_at_risk": stake.recordings(),
            "protection": protection,
            "subject": alert.subject,
            "message_id": message_id,
            "critical": alert.severity == Severity::Critical,
        }))
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
