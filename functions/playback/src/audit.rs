//! One audit line per request (who played which recording, which bytes,
//! under which key, from the cache or through KMS) and the metrics derived
//! from it, as embedded-metric lines.

use serde::Serialize;
use vault::metrics;

/// The function name in metrics.
pub const FUNCTION: &str = "playback";

/// What one request did: written as one JSON line when it ends (a streamed
/// response ends when its last byte is sent, or when it is aborted), and,
/// for a streamed response, a first line before its first byte leaves
/// (`phase: "start"`), so that a transfer cut by a timeout or a crash is on
/// record too.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct AuditRecord {
    /// Always `"playback"`: what to filter on in CloudWatch Logs Insights.
    pub audit: &'static str,
    /// `start` (before the first byte of a stream) or `end`.
    pub phase: &'static str,
    pub request_id: String,
    /// The person (or tool): the verified token's `sub`, or the session's
    /// that such a token started. Never from a field the caller writes.
    pub subject: Option<String>,
    pub username: Option<String>,
    pub email: Option<String>,
    /// The person's groups that granted this request.
    pub groups: Vec<String>,
    /// The token's `jti`, or the session's id.
    pub token_id: Option<String>,
    /// `bearer`, `session`, or `none` (no identity verified).
    pub auth: &'static str,
    /// The transport caller's IAM principal ARN, from the Function URL's
    /// IAM request context (the front's, behind CloudFront): who carried
    /// the request, not who asked.
    pub principal: Option<String>,
    pub account_id: Option<String>,
    /// The viewer's address: through the player's front (CloudFront), the
    /// one it gives (`CloudFront-Viewer-Address`, trusted only beside the
    /// front's secret: `front`); otherwise the Function URL's `sourceIp`.
    pub source_ip: Option<String>,
    /// `front` (through the distribution, vouched for) or `direct`.
    pub via: &'static str,
    /// Through the front: the edge server's address (`sourceIp`).
    pub edge_ip: Option<String>,
    pub user_agent: Option<String>,
    pub method: String,
    /// `audio`, `info`, `list`, `me`, `page`, `login`, `callback`,
    /// `logout`, or `none` when the path named nothing.
    pub route: &'static str,
    /// `<type>/<id>`.
    pub recording: Option<String>,
    /// The `Range` header as sent.
    pub range_requested: Option<String>,
    /// The bytes served, `start-end/length` (end inclusive).
    pub range_served: Option<String>,
    pub status: u16,
    pub bytes_sent: u64,
    /// Bytes read from the vault: the header on a cache miss and the frames.
    pub s3_bytes: u64,
    pub key_arn: Option<String>,
    /// `kms` (KMS was called), `cache` (the cached key), or `none`.
    pub key_source: &'static str,
    /// KMS Decrypt calls made for this request (one per encrypted data key tried).
    pub kms_calls: u32,
    /// `ok`, `error` (an error response), `aborted` (a stream cut short by
    /// an error) or `client_gone` (the client stopped reading).
    pub outcome: &'static str,
    /// The stable error code, when there was one.
    pub code: Option<&'static str>,
    /// From the start of the request to the first authenticated audio byte
    /// (or the whole response, when it has no audio).
    pub time_to_first_byte_ms: f64,
    pub duration_ms: f64,
}

impl AuditRecord {
    /// Names the verified person, and the groups that granted the request.
    pub fn identify(&mut self, identity: &crate::auth::Identity, groups: Vec<String>) {
        self.subject = Some(identity.subject.clone());
        self.username = identity.username.clone();
        self.email = identity.email.clone();
        self.token_id = identity.token_id.clone();
        self.auth = identity.method;
        self.groups = groups;
    }

    /// The metrics of this request: (dimensions, metrics) per EMF line.
    #[allow(clippy::type_complexity)]
    pub fn metrics(&self) -> Vec<(Vec<(&'static str, &'static str)>, Vec<(&'static str, &'static str, f64)>)> {
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        let mut lines = vec![(
            vec![],
            vec![
                ("Requests", "Count", 1.0),
                ("KmsDecryptCalls", "Count", f64::from(self.kms_calls)),
                ("KeyCacheHits", "Count", flag(self.key_source == "cache")),
                ("TimeToFirstByte", "Milliseconds", self.time_to_first_byte_ms),
                ("BytesSent", "Bytes", self.bytes_sent as f64),
            ],
        )];
        if let Some(code) = self.code {
            lines.push((vec![("Code", code)], vec![("Errors", "Count", 1.0)]));
        }
        lines
    }
}

/// Where audit records go.
pub trait AuditLog: Send + Sync + 'static {
    /// The record of a request that ended, with its metrics.
    fn record(&self, record: &AuditRecord);
    /// The record of a stream about to send its first byte (no metrics:
    /// its end record counts it).
    fn start(&self, record: &AuditRecord);
}

/// Standard output: Lambda sends it to CloudWatch Logs, where the EMF lines
/// become metrics.
pub struct StdoutAudit;

impl StdoutAudit {
    fn line(record: &AuditRecord) {
        match serde_json::to_string(record) {
            Ok(line) => println!("{line}"),
            Err(e) => tracing::error!("audit record could not be written: {e}"),
        }
    }
}

impl AuditLog for StdoutAudit {
    fn record(&self, record: &AuditRecord) {
        Self::line(record);
        for (dimensions, values) in record.metrics() {
            metrics::put(FUNCTION, &dimensions, &values);
        }
    }

    fn start(&self, record: &AuditRecord) {
        Self::line(record);
    }
}

/// Milliseconds since `since`, for the audit line.
pub(crate) fn millis(since: std::time::Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_hit_counts_no_kms_call_and_an_error_is_counted_by_code() {
        let hit = AuditRecord { key_source: "cache", time_to_first_byte_ms: 12.0, ..Default::default() };
        let m = hit.metrics();
        assert_eq!(m.len(), 1);
        assert!(m[0].1.contains(&("KmsDecryptCalls", "Count", 0.0)));
        assert!(m[0].1.contains(&("KeyCacheHits", "Count", 1.0)));
        assert!(m[0].1.contains(&("TimeToFirstByte", "Milliseconds", 12.0)));
        let failed = AuditRecord { key_source: "kms", kms_calls: 1, code: Some("key_disabled"), ..Default::default() };
        let m = failed.metrics();
        assert!(m[0].1.contains(&("KmsDecryptCalls", "Count", 1.0)));
        assert_eq!(m[1], (vec![("Code", "key_disabled")], vec![("Errors", "Count", 1.0)]));
    }
}
