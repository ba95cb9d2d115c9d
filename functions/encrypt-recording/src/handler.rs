//! Event -> [`RecordingEncryptor`] -> response. Failures a retry can fix fail
//! the invocation, so Lambda retries it; the others are tagged on the ingest
//! object, logged with their code, counted, and sent to the dead-letter
//! queue, so nothing is silently dropped and nothing is retried in vain.

use serde_json::{json, Value};
use vault::errors::{Failure, OperationError};
use vault::ingest::{Announced, IngestError, Outcome, RecordingEncryptor};
use vault::metrics;
use vault::ports::catalog::RecordingCatalog;
use vault::ports::dead_letters::DeadLetters;
use vault::ports::keys::KeyManagement;
use vault::ports::objects::ObjectStore;

use inbound::s3_event::{self as event, Record};

/// The function's name in logs and metrics.
pub const FUNCTION: &str = "encrypt-recording";

/// An invocation that should be retried (or, without a dead-letter queue,
/// one that must reach Lambda's own on-failure destination).
pub type HandlerError = Failure;

/// The encrypt-recording handler.
pub struct Handler<K, O, C, D> {
    encryptor: RecordingEncryptor<K, O, C>,
    dead_letters: Option<D>,
}

impl<K: KeyManagement, O: ObjectStore, C: RecordingCatalog, D: DeadLetters> Handler<K, O, C, D> {
    /// A handler over `encryptor`, sending what cannot be encrypted to
    /// `dead_letters` when there is such a queue.
    pub fn new(encryptor: RecordingEncryptor<K, O, C>, dead_letters: Option<D>) -> Self {
        Self { encryptor, dead_letters }
    }

    /// Handles one event. `deadline_ms` is the invocation's deadline (Unix
    /// milliseconds); the answer lists each record's outcome.
    pub async fn handle(&self, payload: Value, deadline_ms: u64, request_id: &str) -> Result<Value, HandlerError> {
        let records = match event::parse(&payload) {
            Ok(r) => r,
            Err(detail) => {
                let err = IngestError::BadEvent { detail };
                self.give_up(None, &err, &payload, request_id).await?;
                return Ok(
                    json!({ "recordings": [{ "outcome": "failed", "code": err.code(), "message": err.to_string() }] }),
                );
            }
        };
        // Hold a claim a minute past the deadline: a live invocation never
        // loses it, a dead one's retry takes it over.
        let claim_until = deadline_ms / 1000 + 60;
        let mut results = Vec::with_capacity(records.len());
        let mut retry: Option<HandlerError> = None;
        for record in records {
            let result = match record {
                Record::Ignored { key, reason } => {
                    tracing::info!(key, reason, "ignored");
                    metrics::put(FUNCTION, &[], &[("EventsIgnored", "Count", 1.0)]);
                    json!({ "key": key, "outcome": "ignored", "reason": reason })
                }
                Record::Malformed { detail } => {
                    let err = IngestError::BadEvent { detail };
                    self.give_up(None, &err, &payload, request_id).await?;
                    json!({ "outcome": "failed", "code": err.code(), "message": err.to_string() })
                }
                Record::Object(obj) => match self.encryptor.encrypt(&obj, claim_until, request_id).await {
                    Ok(outcome) => self.done(&obj, outcome, request_id),
                    Err(err) if err.is_retryable() => {
                        tracing::warn!(
                            code = err.code(),
                            bucket = obj.bucket,
                            key = obj.key,
                            request_id,
                            error = %err,
                            "failed; Lambda will retry"
                        );
                        metrics::put(FUNCTION, &[("Code", err.code())], &[("Failures", "Count", 1.0)]);
                        retry.get_or_insert(Failure::of(&err));
                        json!({ "key": obj.key, "outcome": "retry", "code": err.code(), "message": err.to_string() })
                    }
                    Err(err) => {
                        self.give_up(Some(&obj), &err, &payload, request_id).await?;
                        json!({ "key": obj.key, "outcome": "failed", "code": err.code(), "message": err.to_string() })
                    }
                },
            };
            results.push(result);
        }
        match retry {
            Some(e) => Err(e),
            None => Ok(json!({ "recordings": results })),
        }
    }

    fn done(&self, obj: &Announced, outcome: Outcome, request_id: &str) -> Value {
        match outcome {
            Outcome::Encrypted { entry, timings } => {
                tracing::info!(
                    recording = %entry.id,
                    vault_key = entry.vault_key,
                    vault_version = entry.vault_version.as_deref().unwrap_or(""),
                    message_id = entry.message_id,
                    wrapping_keys = ?entry.wrapping_keys,
                    plaintext_bytes = entry.plaintext_size,
                    ciphertext_bytes = entry.ciphertext_size,
                    kms_ms = timings.kms.as_millis() as u64,
                    total_ms = timings.total.as_millis() as u64,
                    request_id,
                    "encrypted; plaintext deleted"
                );
                metrics::put(
                    FUNCTION,
                    &[],
                    &[
                        ("RecordingsEncrypted", "Count", 1.0),
                        ("BytesEncrypted", "Bytes", entry.plaintext_size as f64),
                        ("Duration", "Milliseconds", timings.total.as_secs_f64() * 1000.0),
                        ("KmsLatency", "Milliseconds", timings.kms.as_secs_f64() * 1000.0),
                    ],
                );
                json!({
                    "key": obj.key,
                    "outcome": "encrypted",
                    "vault_key": entry.vault_key,
                    "message_id": entry.message_id,
                    "wrapping_keys": entry.wrapping_keys,
                    "plaintext_size": entry.plaintext_size,
                    "ciphertext_size": entry.ciphertext_size,
                })
            }
            Outcome::AlreadyDone { id } => {
                tracing::info!(recording = %id, request_id, "already encrypted from this upload; nothing written");
                metrics::put(FUNCTION, &[], &[("DuplicateEvents", "Count", 1.0)]);
                json!({ "key": obj.key, "outcome": "already_done" })
            }
            Outcome::Superseded { id } => {
                tracing::info!(recording = %id, request_id, "the ingest object was replaced since this event; its own event handles it");
                metrics::put(FUNCTION, &[], &[("EventsSuperseded", "Count", 1.0)]);
                json!({ "key": obj.key, "outcome": "superseded" })
            }
        }
    }

    /// A failure no retry can fix: log it with its code, count it, tag the
    /// ingest object, and dead-letter the event. Only if the event cannot
    /// be dead-lettered does the invocation fail, so that it is not lost.
    async fn give_up(
        &self,
        obj: Option<&Announced>,
        err: &IngestError,
        payload: &Value,
        request_id: &str,
    ) -> Result<(), HandlerError> {
        let code = err.code();
        tracing::error!(
            code,
            bucket = obj.map(|o| o.bucket.as_str()).unwrap_or(""),
            key = obj.map(|o| o.key.as_str()).unwrap_or(""),
            kms_key = err.key_arn().unwrap_or(""),
            request_id,
            error = %err,
            "not encrypted; the plaintext is kept and the event dead-lettered"
        );
        metrics::put(FUNCTION, &[("Code", code)], &[("Failures", "Count", 1.0)]);
        if let Some(obj) = obj {
            if obj.bucket == self.encryptor.settings().ingest_bucket {
                if let Err(e) = self.encryptor.tag_failure(obj, code).await {
                    tracing::warn!(key = obj.key, error = %e, "could not tag the ingest object with its status");
                }
            }
        }
        let Some(dead_letters) = &self.dead_letters else {
            return Err(Failure::of(err));
        };
        let body = json!({
            "code": code,
            "message": err.to_string(),
            "bucket": obj.map(|o| o.bucket.clone()),
            "key": obj.map(|o| o.key.clone()),
            "version": obj.and_then(|o| o.version.clone()),
            "etag": obj.map(|o| o.etag.clone()),
            "request_id": request_id,
            "event": payload,
        });
        dead_letters
            .send(&body)
            .await
            .map_err(|e| Failure::new(e.code(), format!("{code}: {err}; and the dead-letter queue refused it: {e}")))?;
        Ok(())
    }
}
