//! Schedule event -> [`RotationAudit`] -> answer. A failure to read the
//! catalog, to write the report or to publish fails the invocation, so that
//! Lambda retries it; each attempt writes its own report.

use std::sync::Arc;

use serde_json::{json, Value};
use vault::audit::{AuditSettings, RotationAudit};
use vault::errors::Failure;
use vault::metrics::MetricsLog;
use vault::ports::alerts::Alerts;
use vault::ports::catalog::KeyUsageCatalog;
use vault::ports::keys::{KeyInspection, KeyManagement};
use vault::ports::objects::ObjectStore;

use crate::config::Config;

pub use vault::audit::FUNCTION;

/// An invocation that should be retried.
pub type HandlerError = Failure;

/// The rotation-audit handler.
pub struct Handler<K, C, O, A> {
    audit: RotationAudit<K, C, O, A>,
}

impl<K: KeyManagement + KeyInspection, C: KeyUsageCatalog, O: ObjectStore, A: Alerts> Handler<K, C, O, A> {
    /// A handler with `config`, over these adapters.
    pub fn new(config: Config, kms: K, catalog: C, s3: O, topic: A, metrics: Arc<dyn MetricsLog>) -> Self {
        let settings = AuditSettings {
            org: config.org,
            region: config.region,
            keys: config.keys,
            policy: config.policy,
            evidence_bucket: config.evidence_bucket,
        };
        Self { audit: RotationAudit::new(kms, catalog, s3, topic, settings, metrics) }
    }

    /// Runs one audit at `now_ms` (Unix milliseconds); `request_id` makes
    /// the report's name unique.
    pub async fn handle(&self, now_ms: u64, request_id: &str) -> Result<Value, HandlerError> {
        let done = self.audit.run(now_ms, request_id).await.map_err(|e| Failure::of(&e))?;
        let keys = &done.run.keys;
        Ok(json!({
            "keys": keys.len(),
            "non_compliant": done.run.failing().count(),
            "report": format!("s3://{}/{}", done.report.bucket, done.report.key),
            "alerted": done.alerted,
            "verdicts": keys.iter().map(|k| json!({"key_arn": k.facts.key_arn, "verdict": k.judgement.verdict.as_str()})).collect::<Vec<_>>(),
        }))
    }
}
