//! Schedule event -> audit -> evidence report, metrics, summary alert. A
//! failure to read the catalog, to write the report or to publish fails the
//! invocation, so that Lambda retries it; each attempt writes its own report.

use std::sync::Arc;

use serde_json::{json, Value};
use vault::audit::{run, Verdict};
use vault::errors::{Failure, OperationError};
use vault::metrics::MetricsLog;
use vault::ports::alerts::Alerts;
use vault::ports::catalog::KeyUsageCatalog;
use vault::ports::keys::{KeyInspection, KeyManagement};
use vault::ports::objects::{ObjectStore, S3Location};
use vault::time::rfc3339;

use crate::config::Config;

/// The function's name in logs and metrics.
pub const FUNCTION: &str = "rotation-audit";

/// An invocation that should be retried.
pub type HandlerError = Failure;

/// The rotation-audit handler.
pub struct Handler<K, C, O, A> {
    config: Config,
    kms: K,
    catalog: C,
    s3: O,
    topic: A,
    metrics: Arc<dyn MetricsLog>,
}

impl<K: KeyManagement + KeyInspection, C: KeyUsageCatalog, O: ObjectStore, A: Alerts> Handler<K, C, O, A> {
    /// A handler with `config`, over these adapters.
    pub fn new(config: Config, kms: K, catalog: C, s3: O, topic: A, metrics: Arc<dyn MetricsLog>) -> Self {
        Self { config, kms, catalog, s3, topic, metrics }
    }

    /// Runs one audit at `now_ms` (Unix milliseconds); `request_id` makes
    /// the report's name unique.
    pub async fn handle(&self, now_ms: u64, request_id: &str) -> Result<Value, HandlerError> {
        let c = &self.config;
        let now = (now_ms / 1000) as i64;
        let report = run(&self.kms, &self.catalog, &c.keys, &c.org, &c.region, c.policy, now)
            .await
            .map_err(|e| Failure::new(e.code(), format!("cannot read the catalog: {e}")))?;

        // Evidence: one new object per run, never overwritten.
        let stamp = rfc3339(now as u64);
        let key = format!(
            "audit/rotation/{}/{}/{}/{}.{:03}Z-{}.json",
            &stamp[0..4],
            &stamp[5..7],
            &stamp[8..10],
            stamp.trim_end_matches('Z'),
            now_ms % 1000,
            request_id.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(36).collect::<String>()
        );
        let loc = S3Location { bucket: c.vault_bucket.clone(), key };
        let body = serde_json::to_vec_pretty(&report.to_json()).unwrap_or_default();
        self.s3
            .put_new(&loc, body, "application/json")
            .await
            .map_err(|e| Failure::new(e.code(), format!("cannot write the report: {e}")))?;

        for k in &report.keys {
            let arn = k.facts.key_arn.as_str();
            let compliant = f64::from(u8::from(k.judgement.verdict == Verdict::Compliant));
            let mut values = vec![("KeyRotationCompliant", "Count", compliant)];
            if let Some(days) = k.judgement.days_since_rotation {
                values.push(("DaysSinceRotation", "None", days as f64));
            }
            self.metrics.put(FUNCTION, &[("Key", arn)], &values);
        }
        let failing = report.failing().count();
        self.metrics.put(FUNCTION, &[], &[("NonCompliantKeys", "Count", failing as f64)]);

        let mut alerted = false;
        if let Some((subject, body)) = report.summary() {
            let severity =
                if report.failing().any(|k| k.judgement.verdict == Verdict::Critical) { "critical" } else { "warning" };
            self.topic
                .publish_message(&subject, &body, &[("severity", severity), ("event", "RotationAudit")])
                .await
                .map_err(|e| Failure::of(&e))?;
            alerted = true;
        }
        tracing::info!(keys = report.keys.len(), non_compliant = failing, report = %loc, "rotation audit done");
        Ok(json!({
            "keys": report.keys.len(),
            "non_compliant": failing,
            "report": format!("s3://{}/{}", loc.bucket, loc.key),
            "alerted": alerted,
            "verdicts": report.keys.iter().map(|k| json!({"key_arn": k.facts.key_arn, "verdict": k.judgement.verdict.as_str()})).collect::<Vec<_>>(),
        }))
    }
}
