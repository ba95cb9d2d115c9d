//! The key guardian: for an event about a KMS key, what the key protects,
//! one alert a person can act on however often the event is delivered, and
//! (when asked to) a scheduled deletion of a key that protects recordings
//! turned into a disabled key. Denied use alerts once per window and key,
//! call and principal; [`KeyGuardian::flush`] sends the closed windows'
//! summaries. Generic over the ports it takes: key inspection, key usage,
//! event claims, denied-call counters, alerts.

pub mod alert;

use std::sync::Arc;

pub use alert::{compose, severity, KeyEvent, KeyEventKind, Protection, Stake, MAX_SUBJECT};

use crate::errors::{ErrorKind, OperationError};
use crate::metrics::MetricsLog;
use crate::ports::alerts::Alert;
use crate::ports::alerts::{AlertError, Alerts, Severity};
use crate::ports::catalog::{CatalogError, DenialCounters, DenialWindow, EventClaim, EventClaims, KeyUsageCatalog};
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
/// What the event's claim records once a denial opened its window (the
/// retry of a failed first alert alerts, rather than counting again).
const FIRST_DENIAL: &str = "first_denial";
/// Denied calls of one principal to one key are summarised per window.
pub const DEFAULT_DENIAL_WINDOW_SECS: u64 = 900;
/// Closed windows summarised per flush (the rest wait for the next).
const FLUSH_LIMIT: usize = 200;

/// How an event was handled.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handled {
    /// The key protects no recording and is not configured.
    Unrelated { key_arn: String },
    /// Delivered again after it was alerted.
    Duplicate { event_id: String },
    /// A denied call counted into a window whose first denial was alerted:
    /// the window's summary reports it.
    Aggregated { key_arn: String, count: u64 },
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
    #[error("cannot read or clear the denied-call counters: {source}")]
    Denials { source: CatalogError },
    #[error(transparent)]
    Alert(#[from] AlertError),
}

impl OperationError for GuardianError {
    fn code(&self) -> &'static str {
        match self {
            Self::Usage { source, .. } | Self::Claim { source, .. } | Self::Denials { source } => source.code(),
            Self::InProgress { .. } => "event_in_progress",
            Self::Alert(e) => e.code(),
        }
    }

    fn kind(&self) -> ErrorKind {
        match self {
            Self::Usage { source, .. } | Self::Claim { source, .. } | Self::Denials { source } => source.kind(),
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
    denial_window: u64,
}

/// What a flush of the denied-call windows did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flushed {
    /// Closed windows cleared.
    pub windows: usize,
    /// Summaries sent (windows with more than their first denial).
    pub summaries: usize,
}

impl<I: KeyInspection, U: KeyUsageCatalog + EventClaims + DenialCounters, A: Alerts> KeyGuardian<I, U, A> {
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
        Self {
            keys,
            catalog,
            alerts,
            recording_keys,
            older_keys,
            protect,
            metrics,
            denial_window: DEFAULT_DENIAL_WINDOW_SECS,
        }
    }

    /// Summarises denied calls per `secs`-long window (default 15 minutes).
    pub fn with_denial_window(mut self, secs: u64) -> Self {
        self.denial_window = secs.max(1);
        self
    }

    /// The window a denied call at `now` counts into.
    fn window_of(&self, event: &KeyEvent, now: u64) -> DenialWindow {
        DenialWindow {
            window_start: now - now % self.denial_window,
            key_arn: event.key_arn.clone(),
            operation: event.operation.clone(),
            principal: event.principal.clone().unwrap_or_else(|| "unknown".into()),
        }
    }

    /// Counts one metric of the guardian's.
    pub fn count(&self, dimensions: &[(&str, &str)], name: &str, value: f64) {
        self.metrics.put(FUNCTION, dimensions, &[(name, "Count", value)]);
    }

    /// Handles one event about a key: relevance, the claim that makes it
    /// once, protection, the alert and its metrics.
    pub async fn handle(&self, event: &KeyEvent) -> Result<Handled, GuardianError> {
        self.handle_at(event, unix_now()).await
    }

    /// [`handle`](Self::handle) at `now` (Unix seconds), which decides the
    /// event's denied-call window.
    pub async fn handle_at(&self, event: &KeyEvent, now: u64) -> Result<Handled, GuardianError> {
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
        if !kind.is_state_change() && recorded.as_deref() != Some(FIRST_DENIAL) {
            // Every denied call is counted once, summarised or not.
            let principal = event.principal.as_deref().unwrap_or("unknown");
            self.count(&[("Key", &event.key_arn), ("Principal", principal)], "AccessDenials", 1.0);
        }
        // Denied use: the first of a window alerts at once, the rest are
        // counted into the window's summary (flush), so that a flood of them
        // cannot bury another alert in the topic.
        let mut note = None;
        if kind == KeyEventKind::AccessDenied {
            let window = self.window_of(event, now);
            let counted = if recorded.as_deref() == Some(FIRST_DENIAL) {
                Ok(1)
            } else {
                let expires = window.window_start + 2 * self.denial_window + DEDUPE_SECS;
                self.catalog.count_denial(&window, expires).await
            };
            match counted {
                Ok(1) => {
                    note = Some(format!(
                        "Further denied {} calls by {} on this key until {} are counted and summarised in one alert \
                         after that time (every one is in the AccessDenials metric).",
                        window.operation,
                        window.principal,
                        crate::time::rfc3339(window.window_start + self.denial_window)
                    ));
                }
                Ok(count) => {
                    if let Err(e) = self.catalog.event_done(SOURCE, &event.id).await {
                        tracing::warn!(event_id = %event.id, "cannot mark the event done: {e}");
                    }
                    tracing::info!(key = %event.key_arn, count, "denied call counted into its window's summary");
                    self.count(&[], "DenialsSummarised", 1.0);
                    return Ok(Handled::Aggregated { key_arn: event.key_arn.clone(), count });
                }
                // Better one alert too many than a denial nobody hears of.
                Err(e) => tracing::warn!(code = e.code(), "cannot count the denial; alerting it alone: {e}"),
            }
        }
        match self.alert(event, kind, &stake, &mut protection, note.as_deref()).await {
            Ok(alerted) => {
                if let Err(e) = self.catalog.event_done(SOURCE, &event.id).await {
                    // The alert is out; at worst a duplicate delivery alerts again once the lease expires.
                    tracing::error!(event_id = %event.id, "cannot mark the event done: {e}");
                }
                Ok(Handled::Alerted(Box::new(alerted)))
            }
            Err(e) => {
                // The retry alerts at once, and reports a cancellation this
                // attempt made (or alerts the denial that opened its window).
                let done = if protection == Protection::Cancelled {
                    Some(CANCELLED)
                } else {
                    note.as_ref().map(|_| FIRST_DENIAL)
                };
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
        note: Option<&str>,
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
        let mut alert = compose(event, &facts, stake, protection, unix_now() as i64);
        if let Some(note) = note {
            alert.body.push('\n');
            alert.body.push_str(note);
            alert.body.push('\n');
        }
        let message_id = self.alerts.publish(&alert).await?;
        tracing::info!(key = arn, event = kind.name(), severity = alert.severity.as_str(), subject = %alert.subject, "alert sent");

        self.count(&[("Severity", alert.severity.as_str())], "Alerts", 1.0);
        if kind.is_state_change() {
            self.count(&[("Key", arn), ("Event", kind.name())], "KeyStateChanges", 1.0);
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

    /// Sends the summary of every closed denied-call window that counted
    /// more than its first denial, and clears them: run on a schedule, so a
    /// summary goes out even when no further event comes. `now` in Unix
    /// seconds.
    pub async fn flush(&self, now: u64) -> Result<Flushed, GuardianError> {
        let open_since = now - now % self.denial_window;
        let closed = self
            .catalog
            .closed_denials(open_since, FLUSH_LIMIT)
            .await
            .map_err(|source| GuardianError::Denials { source })?;
        let mut flushed = Flushed::default();
        for (window, count) in closed {
            if count > 1 {
                // Sent before the counter is cleared: a failure leaves it for
                // the next flush (a summary twice rather than never).
                let alert = denial_summary(&window, count, self.denial_window);
                self.alerts.publish(&alert).await?;
                tracing::warn!(key = %window.key_arn, principal = %window.principal, count, "denied calls summarised");
                self.count(&[("Severity", alert.severity.as_str())], "Alerts", 1.0);
                flushed.summaries += 1;
            }
            self.catalog.take_denials(&window).await.map_err(|source| GuardianError::Denials { source })?;
            flushed.windows += 1;
        }
        Ok(flushed)
    }
}

/// The summary of one closed window of denied calls.
pub fn denial_summary(window: &DenialWindow, count: u64, window_secs: u64) -> Alert {
    let key_id = window.key_arn.rsplit('/').next().unwrap_or(&window.key_arn);
    let short = key_id.split('-').next().unwrap_or(key_id);
    let who = window.principal.rsplit('/').next().unwrap_or(&window.principal);
    let subject = alert::cut(
        &format!("[WARNING] callvault: key/{short}: {count} denied {} calls by {who}", window.operation),
        MAX_SUBJECT,
    );
    let (from, to) =
        (crate::time::rfc3339(window.window_start), crate::time::rfc3339(window.window_start + window_secs));
    let body = format!(
        "WARNING: {count} calls to {op} on a callvault recording key were denied to one principal between {from} \
         and {to}.\n\n\
         Key: {key}\nWho: {principal}\nCall: {op}\nDenied: {count} times (the first was alerted on its own; the \
         others are counted here, and each is in the AccessDenials metric)\n\n\
         What to check:\n\
         - whether {principal} should use this key at all; if not, find what runs as it (CloudTrail: eventName \
         {op}, errorCode AccessDenied, this key) and stop it;\n\
         - if it should, the key policy and its IAM policy (kms:EncryptionContext:org must match).\n",
        op = window.operation,
        key = window.key_arn,
        principal = window.principal,
    );
    Alert {
        subject,
        body,
        severity: Severity::Warning,
        event: "AccessDeniedSummary",
        key_arn: window.key_arn.clone(),
        key_id: key_id.to_string(),
    }
}
