//! Event -> [`KeyGuardian`] -> answer. A KMS event is alerted at most once,
//! however often it is delivered (a denied call after the first of its
//! window is only counted); a Scheduled Event (FlushDenials) sends the closed
//! windows' summaries. A failure to read the catalog or to publish fails
//! the invocation, so that Lambda's asynchronous retries (then its
//! on-failure destination) take it.

use std::sync::Arc;

use serde_json::{json, Value};
use vault::errors::{Failure, OperationError};
use vault::guardian::{Handled, KeyGuardian};
use vault::metrics::MetricsLog;
use vault::ports::alerts::{Alerts, Severity};
use vault::ports::catalog::DenialCounters;
use vault::ports::catalog::{EventClaims, KeyUsageCatalog};
use vault::ports::keys::KeyInspection;
use vault::time::unix_now;

use crate::config::Config;
use inbound::kms_event::{parse_event, Parsed};

pub use vault::guardian::FUNCTION;

/// An invocation that should be retried.
pub type HandlerError = Failure;

/// The key-guardian handler.
pub struct Handler<I, U, A> {
    guardian: KeyGuardian<I, U, A>,
}

impl<I: KeyInspection, U: KeyUsageCatalog + EventClaims + DenialCounters, A: Alerts> Handler<I, U, A> {
    /// A handler with `config`, over these adapters.
    pub fn new(config: Config, keys: I, catalog: U, alerts: A, metrics: Arc<dyn MetricsLog>) -> Self {
        let guardian = KeyGuardian::new(
            keys,
            catalog,
            alerts,
            config.keys,
            config.older_keys,
            config.protect_keys_in_use,
            metrics,
        )
        .with_denial_window(config.denial_window_secs);
        Self { guardian }
    }

    /// The guardian, for the scheduled flush and the tests.
    pub fn guardian(&self) -> &KeyGuardian<I, U, A> {
        &self.guardian
    }

    /// Handles one EventBridge event.
    pub async fn handle(&self, payload: Value) -> Result<Value, HandlerError> {
        // The schedule (template.yaml's FlushDenials): the summaries of the
        // denied-call windows that have closed.
        if payload["source"] == "aws.events" && payload["detail-type"] == "Scheduled Event" {
            let flushed = self.guardian.flush(unix_now()).await.map_err(|e| Failure::of(&e))?;
            return Ok(json!({ "outcome": "flushed", "windows": flushed.windows, "summaries": flushed.summaries }));
        }
        let event = match parse_event(&payload) {
            Ok(Parsed::Key(event)) => event,
            Ok(Parsed::Unwatched(what)) => {
                tracing::info!(event = %what, "KMS event not watched; ignored");
                self.guardian.count(&[("Reason", "unwatched")], "EventsIgnored", 1.0);
                return Ok(json!({ "outcome": "ignored", "reason": "unwatched", "event": what }));
            }
            Err(e) => {
                // No retry can fix it and no alert storm: one log line, one count.
                tracing::error!(code = e.code(), event = %truncate(&payload.to_string(), 2000), "{e}");
                self.guardian.count(&[], "MalformedEvents", 1.0);
                return Ok(json!({ "outcome": "malformed", "code": e.code(), "message": e.to_string() }));
            }
        };
        match self.guardian.handle(&event).await.map_err(|e| Failure::of(&e))? {
            Handled::Unrelated { key_arn } => {
                Ok(json!({ "outcome": "ignored", "reason": "unrelated_key", "key_arn": key_arn }))
            }
            Handled::Duplicate { event_id } => Ok(json!({ "outcome": "duplicate", "event_id": event_id })),
            Handled::Aggregated { key_arn, count } => {
                Ok(json!({ "outcome": "summarised", "key_arn": key_arn, "count_in_window": count }))
            }
            Handled::Alerted(a) => Ok(json!({
                "outcome": "alerted",
                "severity": a.severity.as_str(),
                "event": a.event,
                "key_arn": a.key_arn,
                "recordings_at_risk": a.recordings_at_risk,
                "protection": a.protection,
                "subject": a.subject,
                "message_id": a.message_id,
                "critical": a.severity == Severity::Critical,
            })),
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}
