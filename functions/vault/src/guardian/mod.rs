//! The key guardian: for an event about a KMS key, what the key protects,
//! one alert a person can act on however often the event is delivered, and
//! (when asked to) a scheduled deletion of a key that protects recordings
//! turned into a disabled key. Generic over the ports it takes: key
//! inspection, key usage, event claims, alerts.

pub mod alert;

use std::sync::Arc;

pub use alert::{compose, severity, KeyEvent, KeyEventKind, Protection, Stake, MAX_SUBJECT};

use crate::errors::{ErrorKind, OperationError};
use crate::metrics::MetricsLog;
use crate::ports::alerts::{AlertError, Alerts, Severity};
use crate::ports::catalog::{CatalogError, EventClaim, EventClaims, KeyUsageCatalog};
use crate::ports::keys::{KeyFacts, KeyInspection, KeyState};
use crate::recording::RecordingKeys;
use crate::time::unix_now;

/// The function's name in logs and metrics.
pub const FUNCTION: &str = "key-guardian";
/// The source events are claimed under.
const SOURCE: &str = "aws.kms";
/// How long an event id is remembered (retries come within hours).
const DEDUPE_SECS: u64 = 7 * 86_400;
/// How long an invocation holds an event before a retry may take it over:
/// longer than the function's timeout.
pub const LEASE_SECS: u64 = 90;
/// What the event's claim records once protection cancelled a deletion.
const CANCELLED: &str = "deletion_cancelled";

/// How an event was handled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handled {
    /// The key protects no recording and is not configured.
    Unrelated { key_arn: String },
    /// Delivered again after it was alerted.
    Duplicate { event_id: String },
    /// Alerted.
    Alerted(Box<Alerted>),
}

/// What an alert said and did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alerted {
    pub severity: Severity,
    pub event: &'static str,
    pub key_arn: String,
    pub recordings_at_risk: u64,
    /// `none`, `cancelled` or `failed`.
    pub protection: &'static str,
    pub subject: String,
    pub message_id: String,
}

/// Why an event must be delivered again (the invocation fails; Lambda's
/// asynchronous retries, then its on-failure destination, take it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GuardianError {
    #[error("cannot read the catalog's usage of {key_arn}: {source}")]
    Usage { key_arn: String, source: CatalogError },
    #[error("cannot record event {event_id}: {source}")]
    Claim { event_id: String, source: CatalogError },
    #[error("event {event_id} is being handled by another invocation; retry")]
    InProgress { event_id: String },
    #[error(transparent)]
    Alert(#[from] AlertError),
}

impl OperationError for GuardianError {
    fn code(&self) -> &'static str {
        match self {
            Self::Usage { source, .. } | Self::Claim { source, .. } => source.code(),
            Self::InProgress { .. } => "event_in_progress",
            Self::Alert(e) => e.code(),
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Self::Usage { source, .. } | Self::Claim { source, .. } => source.kind(),
            Self::InProgress { .. } => ErrorKind::Transient,
            Self::Alert(e) => e.kind(),
        }
    }
}

/// The key guardian over its ports.
pub struct KeyGuardian<I, U, A> {
    keys: I,
    catalog: U,
    alerts: A,
    recording_keys: RecordingKeys,
    older_keys: Vec<String>,
    protect: bool,
    metrics: Arc<dyn MetricsLog>,
}

impl<I: KeyInspection, U: KeyUsageCatalog + EventClaims, A: Alerts> KeyGuardian<I, U, A> {
    /// A guardian over these adapters, for the keys `recording_keys`
    /// configures and the `older_keys` older recordings are under; `protect`
    /// cancels scheduled deletions of keys that protect recordings or are
    /// configured for new ones, whatever the catalog says.
    pub fn new(
        keys: I,
        catalog: U,
        alerts: A,
        recording_keys: RecordingKeys,
        older_keys: Vec<String>,
        protect: bool,
        metrics: Arc<dyn MetricsLog>,
    ) -> Self {
        Self { keys, catalog, alerts, recording_keys, older_keys, protect, metrics }
    }

    /// Counts one metric of the guardian's.
    pub fn count(&self, dimensions: &[(&str, &str)], name: &str, value: f64) {
        self.metrics.put(FUNCTION, dimensions, &[(name, "Count", value)]);
    }

    /// Handles one event about a key: relevance, the claim that makes it
    /// once, protection, the alert and its metrics.
    pub async fn handle(&self, event: &KeyEvent) -> Result<Handled, GuardianError> {
        let kind = event.kind.unwrap_or(KeyEventKind::PolicyChanged);
        let usage = self
            .catalog
            .key_usage(&event.key_arn)
            .await
            .map_err(|source| GuardianError::Usage { key_arn: event.key_arn.clone(), source })?;
        let stake = Stake {
            usage,
            configured_for: self.recording_keys.types_using(&event.key_arn),
            older: self.older_keys.contains(&event.key_arn),
        };
        if !stake.is_relevant() {
            tracing::info!(key = %event.key_arn, event = kind.name(), "the key protects no recording and is not configured; ignored");
            self.count(&[("Reason", "unrelated_key")], "EventsIgnored", 1.0);
            return Ok(Handled::Unrelated { key_arn: event.key_arn.clone() });
        }
        let now = unix_now();
        let claim = self
            .catalog
            .claim_event(SOURCE, &event.id, now, LEASE_SECS, now + DEDUPE_SECS)
            .await
            .map_err(|source| GuardianError::Claim { event_id: event.id.clone(), source })?;
        let recorded = match claim {
            EventClaim::First { recorded } => recorded,
            EventClaim::Done => {
                tracing::info!(event_id = %event.id, "duplicate delivery; already alerted");
                self.count(&[], "DuplicateEvents", 1.0);
                return Ok(Handled::Duplicate { event_id: event.id.clone() });
            }
            // Another invocation is alerting now; if it fails, this retry
            // (or its own) alerts once its lease has expired.
            EventClaim::InProgress => return Err(GuardianError::InProgress { event_id: event.id.clone() }),
        };
        let mut protection =
            if recorded.as_deref() == Some(CANCELLED) { Protection::Cancelled } else { Protection::None };
        match self.alert(event, kind, &stake, &mut protection).await {
            Ok(alerted) => {
                if let Err(e) = self.catalog.event_done(SOURCE, &event.id).await {
                    // The alert is out; at worst a duplicate delivery alerts again once the lease expires.
                    tracing::error!(event_id = %event.id, "cannot mark the event done: {e}");
                }
                Ok(Handled::Alerted(Box::new(alerted)))
            }
            Err(e) => {
                // The retry alerts at once, and reports a cancellation this attempt made.
                let done = (protection == Protection::Cancelled).then_some(CANCELLED);
                if let Err(release) = self.catalog.release_event(SOURCE, &event.id, done).await {
                    tracing::error!(event_id = %event.id, "cannot release the event: {release}");
                }
                Err(e.into())
            }
        }
    }

    async fn alert(
        &self,
        event: &KeyEvent,
        kind: KeyEventKind,
        stake: &Stake,
        protection: &mut Protection,
    ) -> Result<Alerted, AlertError> {
        let arn = event.key_arn.as_str();
        let mut facts = self.keys.key_facts(arn).await.unwrap_or_else(|e| {
            tracing::warn!(key = arn, code = e.code(), "cannot describe the key: {e}");
            KeyFacts { error: Some(e.to_string()), ..KeyFacts::default() }
        });
        // Unless the key is known not to be pending deletion, try: KMS
        // refuses a key that is not, and the alert says why.
        if self.protect
            && *protection == Protection::None
            && kind == KeyEventKind::DeletionScheduled
            && stake.is_protected()
            && matches!(facts.state, Some(KeyState::PendingDeletion) | None)
        {
            *protection = match self.keys.cancel_key_deletion(arn).await {
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
        let message_id = self.alerts.publish(&alert).await?;
        tracing::info!(key = arn, event = kind.name(), severity = alert.severity.as_str(), subject = %alert.subject, "alert sent");

        self.count(&[("Severity", alert.severity.as_str())], "Alerts", 1.0);
        if kind.is_state_change() {
            self.count(&[("Key", arn), ("Event", kind.name())], "KeyStateChanges", 1.0);
        } else {
            let principal = event.principal.as_deref().unwrap_or("unknown");
            self.count(&[("Key", arn), ("Principal", principal)], "AccessDenials", 1.0);
        }
        if stake.protects_recordings()
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
        Ok(Alerted {
            severity: alert.severity,
            event: kind.name(),
            key_arn: arn.to_string(),
            recordings_at_risk: stake.recordings(),
            protection: match protection {
                Protection::None => "none",
                Protection::Cancelled => "cancelled",
                Protection::Failed(_) => "failed",
            },
            subject: alert.subject,
            message_id,
        })
    }
}
