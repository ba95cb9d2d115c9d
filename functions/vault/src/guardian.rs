//! The key guardian's domain: KMS events (CloudTrail API calls delivered by
//! EventBridge, and KMS's own deletion and rotation events) about a key,
//! how serious each is for the recordings the key protects, and the alert a
//! person can act on: what happened, who did it, what is at stake, and the
//! exact commands that undo it.

use serde_json::Value;

use crate::catalog::KeyUsage;
use crate::kms::{KeyFacts, KeyState};
use crate::recording::rfc3339;

/// What happened to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyEventKind {
    Disabled,
    DeletionScheduled,
    DeletionCancelled,
    Enabled,
    PolicyChanged,
    RotationDisabled,
    AliasDeleted,
    AliasUpdated,
    KeyMaterialDeleted,
    /// A cryptographic call on the key was denied: someone tried to use it.
    AccessDenied,
    /// KMS deleted the key (its own `KMS CMK Deletion` event).
    Deleted,
    /// KMS rotated the key material (`KMS CMK Rotation`).
    Rotated,
}

impl KeyEventKind {
    /// What the event is called in alerts, metrics and message attributes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Disabled => "DisableKey",
            Self::DeletionScheduled => "ScheduleKeyDeletion",
            Self::DeletionCancelled => "CancelKeyDeletion",
            Self::Enabled => "EnableKey",
            Self::PolicyChanged => "PutKeyPolicy",
            Self::RotationDisabled => "DisableKeyRotation",
            Self::AliasDeleted => "DeleteAlias",
            Self::AliasUpdated => "UpdateAlias",
            Self::KeyMaterialDeleted => "DeleteImportedKeyMaterial",
            Self::AccessDenied => "AccessDenied",
            Self::Deleted => "KeyDeleted",
            Self::Rotated => "KeyRotated",
        }
    }

    /// A few words for a subject line.
    fn headline(self) -> &'static str {
        match self {
            Self::Disabled => "disabled",
            Self::DeletionScheduled => "scheduled for deletion",
            Self::DeletionCancelled => "deletion cancelled",
            Self::Enabled => "re-enabled",
            Self::PolicyChanged => "key policy changed",
            Self::RotationDisabled => "automatic rotation disabled",
            Self::AliasDeleted => "alias deleted",
            Self::AliasUpdated => "alias moved",
            Self::KeyMaterialDeleted => "imported key material deleted",
            Self::AccessDenied => "access denied",
            Self::Deleted => "DELETED",
            Self::Rotated => "rotated",
        }
    }

    fn from_api_call(name: &str) -> Option<Self> {
        Some(match name {
            "DisableKey" => Self::Disabled,
            "ScheduleKeyDeletion" => Self::DeletionScheduled,
            "CancelKeyDeletion" => Self::DeletionCancelled,
            "EnableKey" => Self::Enabled,
            "PutKeyPolicy" => Self::PolicyChanged,
            "DisableKeyRotation" => Self::RotationDisabled,
            "DeleteAlias" => Self::AliasDeleted,
            "UpdateAlias" => Self::AliasUpdated,
            "DeleteImportedKeyMaterial" => Self::KeyMaterialDeleted,
            _ => return None,
        })
    }

    /// Whether the event changes the key's state or configuration (the
    /// `KeyStateChanges` metric), as opposed to an attempt to use it.
    pub fn is_state_change(self) -> bool {
        !matches!(self, Self::AccessDenied)
    }
}

/// How urgent an alert is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    /// Lower case, as in the `severity` message attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// One event about one key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyEvent {
    /// EventBridge's event id: one alert per id.
    pub id: String,
    pub kind: Option<KeyEventKind>,
    /// The API call (CloudTrail `eventName`) or KMS event name.
    pub operation: String,
    pub key_arn: String,
    /// RFC 3339.
    pub time: String,
    pub region: String,
    pub account: String,
    pub principal: Option<String>,
    pub principal_type: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    /// Whether the caller signed in with MFA, when CloudTrail says.
    pub mfa: Option<bool>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub pending_window_days: Option<u64>,
    pub alias: Option<String>,
    pub request_id: Option<String>,
}

/// An event this function cannot read.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("malformed KMS event: {0}")]
pub struct EventError(pub String);

impl EventError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        "bad_event"
    }
}

/// What an EventBridge event is to the guardian.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// An event about a key.
    Key(Box<KeyEvent>),
    /// A KMS event the guardian does not watch (another API call, a call
    /// that failed for another reason than access): counted, not alerted.
    Unwatched(String),
}

const CLOUDTRAIL: &str = "AWS API Call via CloudTrail";
const CRYPTO_CALLS: &[&str] = &["Decrypt", "Encrypt", "ReEncrypt", "GenerateDataKey"];

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k)).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Reads an EventBridge event from `aws.kms`.
pub fn parse_event(v: &Value) -> Result<Parsed, EventError> {
    let bad = |what: &str| EventError(what.to_string());
    if !v.is_object() {
        return Err(bad("the event is not a JSON object"));
    }
    if str_at(v, &["source"]) != Some("aws.kms") {
        return Err(bad("the event's source is not aws.kms"));
    }
    let id = str_at(v, &["id"]).ok_or_else(|| bad("the event has no id"))?.to_string();
    let detail_type = str_at(v, &["detail-type"]).ok_or_else(|| bad("the event has no detail-type"))?;
    let detail = v.get("detail").filter(|d| d.is_object()).ok_or_else(|| bad("the event has no detail"))?;
    let region = str_at(v, &["region"]).unwrap_or_default().to_string();
    let account = str_at(v, &["account"]).unwrap_or_default().to_string();
    let time = str_at(v, &["time"]).unwrap_or_default().to_string();
    let mut event = KeyEvent { id, region, account, time, ..Default::default() };
    match detail_type {
        CLOUDTRAIL => {
            let name = str_at(detail, &["eventName"]).ok_or_else(|| bad("the CloudTrail record has no eventName"))?;
            event.operation = name.to_string();
            event.error_code = str_at(detail, &["errorCode"]).map(str::to_string);
            event.error_message = str_at(detail, &["errorMessage"]).map(str::to_string);
            event.kind = match &event.error_code {
                Some(code) if code.contains("AccessDenied") || code == "UnauthorizedOperation" => {
                    if !CRYPTO_CALLS.iter().any(|c| name.starts_with(c)) {
                        return Ok(Parsed::Unwatched(format!("{name} denied")));
                    }
                    Some(KeyEventKind::AccessDenied)
                }
                Some(code) => return Ok(Parsed::Unwatched(format!("{name} failed with {code}"))),
                None => match KeyEventKind::from_api_call(name) {
                    Some(kind) => Some(kind),
                    None => return Ok(Parsed::Unwatched(name.to_string())),
                },
            };
            if let Some(t) = str_at(detail, &["eventTime"]) {
                event.time = t.to_string();
            }
            if let Some(r) = str_at(detail, &["awsRegion"]) {
                event.region = r.to_string();
            }
            if let Some(a) = str_at(detail, &["recipientAccountId"]) {
                event.account = a.to_string();
            }
            let who = detail.get("userIdentity").unwrap_or(&Value::Null);
            event.principal = str_at(who, &["arn"]).or_else(|| str_at(who, &["principalId"])).map(str::to_string);
            event.principal_type = str_at(who, &["type"]).map(str::to_string);
            event.mfa = str_at(who, &["sessionContext", "attributes", "mfaAuthenticated"])
                .or_else(|| str_at(detail, &["additionalEventData", "MFAUsed"]))
                .map(|m| m.eq_ignore_ascii_case("true") || m.eq_ignore_ascii_case("yes"));
            event.source_ip = str_at(detail, &["sourceIPAddress"]).map(str::to_string);
            event.user_agent = str_at(detail, &["userAgent"]).map(str::to_string);
            event.request_id = str_at(detail, &["requestID"]).map(str::to_string);
            event.pending_window_days =
                detail.get("requestParameters").and_then(|p| p.get("pendingWindowInDays")).and_then(Value::as_u64);
            event.alias = str_at(detail, &["requestParameters", "aliasName"]).map(str::to_string);
            // Alias events list the alias's ARN among the resources (also
            // typed AWS::KMS::Key): the first resource that is a key wins,
            // then the key the request or the response names.
            let resources = detail.get("resources").and_then(Value::as_array);
            let from_resources = resources.and_then(|rs| {
                rs.iter()
                    .filter_map(|r| str_at(r, &["ARN"]))
                    .find(|a| crate::arn::KmsArn::parse(a).is_some_and(|a| a.is_key()))
            });
            let named = [
                &["requestParameters", "keyId"][..],
                &["requestParameters", "targetKeyId"],
                &["responseElements", "keyId"],
                &["requestParameters", "sourceKeyId"],
                &["requestParameters", "destinationKeyId"],
            ]
            .iter()
            .filter_map(|path| str_at(detail, path))
            .find(|k| !k.starts_with("alias/") && !k.contains(":alias/"));
            let Some(key) = from_resources.or(named) else {
                // A denied call that names no key (CloudTrail leaves the key
                // out when the caller may not even see it) cannot be tied to
                // a recording key: counted, not alerted.
                if event.kind == Some(KeyEventKind::AccessDenied) {
                    return Ok(Parsed::Unwatched(format!("{name} denied, naming no key")));
                }
                return Err(bad("the CloudTrail record names no KMS key"));
            };
            event.key_arn = key_arn(key, &event.region, &event.account)
                .ok_or_else(|| bad(&format!("{key:?} is not a KMS key ARN or id")))?;
        }
        "KMS CMK Deletion" | "KMS CMK Rotation" => {
            event.kind =
                Some(if detail_type == "KMS CMK Deletion" { KeyEventKind::Deleted } else { KeyEventKind::Rotated });
            event.operation = detail_type.to_string();
            let key = v
                .get("resources")
                .and_then(Value::as_array)
                .and_then(|rs| rs.iter().find_map(Value::as_str))
                .or_else(|| str_at(detail, &["key-id"]))
                .ok_or_else(|| bad("the KMS event names no key"))?;
            event.key_arn = key_arn(key, &event.region, &event.account)
                .ok_or_else(|| bad(&format!("{key:?} is not a KMS key ARN or id")))?;
        }
        other => return Ok(Parsed::Unwatched(other.to_string())),
    }
    Ok(Parsed::Key(Box::new(event)))
}

/// The key ARN of `key`: an ARN as is, a bare key id in `region`/`account`.
fn key_arn(key: &str, region: &str, account: &str) -> Option<String> {
    if let Some(arn) = crate::arn::KmsArn::parse(key) {
        return arn.is_key().then(|| key.to_string());
    }
    let bare = key.strip_prefix("key/").unwrap_or(key);
    let looks_like_id = !bare.is_empty()
        && bare.len() <= 64
        && bare.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-' || b.is_ascii_lowercase());
    let partition = if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    };
    (looks_like_id && !region.is_empty() && !account.is_empty())
        .then(|| format!("arn:{partition}:kms:{region}:{account}:key/{bare}"))
}

/// What a key protects: the catalog's usage, and the recording types whose
/// new recordings use it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stake {
    pub usage: Option<KeyUsage>,
    pub configured_for: Vec<String>,
}

impl Stake {
    /// Recordings the key protects.
    pub fn recordings(&self) -> u64 {
        self.usage.as_ref().map_or(0, |u| u.recordings)
    }

    /// Whether the guardian cares about the key at all.
    pub fn is_relevant(&self) -> bool {
        self.recordings() > 0 || !self.configured_for.is_empty()
    }
}

/// How serious `kind` is for a key with `stake`: critical when recordings
/// would become unreadable; for a key only configured for new recordings
/// (ingest stops, recordings wait, kept, in the ingest bucket) a warning.
pub fn severity(kind: KeyEventKind, stake: &Stake) -> Severity {
    use KeyEventKind::*;
    match kind {
        Disabled | DeletionScheduled | Deleted | KeyMaterialDeleted if stake.recordings() > 0 => Severity::Critical,
        Disabled | DeletionScheduled | Deleted | KeyMaterialDeleted => Severity::Warning,
        PolicyChanged | RotationDisabled | AccessDenied | AliasDeleted | AliasUpdated => Severity::Warning,
        Enabled | DeletionCancelled | Rotated => Severity::Info,
    }
}

/// What the guardian did about a scheduled deletion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Protection {
    /// Protection is off, or the event needs none.
    None,
    /// CancelKeyDeletion succeeded: the key is Disabled, not PendingDeletion.
    Cancelled,
    /// CancelKeyDeletion failed, with the reason.
    Failed(String),
}

/// An alert for the SNS topic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    /// Under 100 characters (SNS's limit for email subjects).
    pub subject: String,
    pub body: String,
    pub severity: Severity,
    /// The `event` message attribute.
    pub event: &'static str,
    pub key_arn: String,
    /// The `key_id` message attribute: the key's id (the ARN's last part).
    pub key_id: String,
}

/// Longest subject: SNS refuses 100 characters and more.
pub const MAX_SUBJECT: usize = 99;

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else {
        format!("{value:.1} {} ({n} bytes)", UNITS[unit])
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// The alert for `event` on a key with `facts` and `stake`, `now` in Unix seconds.
pub fn compose(event: &KeyEvent, facts: &KeyFacts, stake: &Stake, protection: &Protection, now: i64) -> Alert {
    let kind = event.kind.unwrap_or(KeyEventKind::PolicyChanged);
    let sev = severity(kind, stake);
    let arn = &event.key_arn;
    let key_id = arn.rsplit('/').next().unwrap_or(arn).to_string();
    let region = crate::arn::region_of(arn).unwrap_or(&event.region).to_string();
    // The full ARN is in the body; an unaliased key is named by the first
    // group of its id, so that the subject keeps room for what is at stake.
    let name = facts
        .aliases
        .first()
        .cloned()
        .unwrap_or_else(|| format!("key/{}", key_id.split('-').next().unwrap_or(&key_id)));
    let at_stake = match stake.recordings() {
        0 if stake.configured_for.is_empty() => String::new(),
        0 => ": new recordings use it".to_string(),
        1 => ": 1 recording at risk".to_string(),
        n => format!(": {n} recordings at risk"),
    };
    let at_stake =
        if sev >= Severity::Warning && kind != KeyEventKind::PolicyChanged { at_stake } else { String::new() };
    let prefix = format!("[{}] ", sev.as_str().to_ascii_uppercase());
    let subject = cut(&format!("{prefix}callvault: key {name} {}{at_stake}", kind.headline()), MAX_SUBJECT);

    let mut b = String::new();
    let mut line = |s: String| {
        b.push_str(&s);
        b.push('\n');
    };
    line(format!("{}: callvault recording key {} — {}", sev.as_str().to_ascii_uppercase(), name, kind.headline()));
    line(String::new());
    let what = match &event.error_code {
        Some(code) => format!(
            "{} was DENIED ({code}{})",
            event.operation,
            event.error_message.as_deref().map(|m| format!(": {m}")).unwrap_or_default()
        ),
        None => event.operation.clone(),
    };
    line(format!("What happened: {what}"));
    line(format!("When: {}", if event.time.is_empty() { "unknown".into() } else { event.time.clone() }));
    line(format!(
        "Who: {}{}",
        event.principal.as_deref().unwrap_or(
            if event.principal_type.is_none()
                && event.error_code.is_none()
                && matches!(kind, KeyEventKind::Deleted | KeyEventKind::Rotated)
            {
                "AWS KMS itself"
            } else {
                "unknown principal"
            }
        ),
        event.principal_type.as_deref().map(|t| format!(" ({t})")).unwrap_or_default()
    ));
    if let Some(ip) = &event.source_ip {
        line(format!(
            "From: {ip}{}",
            event.user_agent.as_deref().map(|u| format!(", user agent {u}")).unwrap_or_default()
        ));
    }
    if event.principal.is_some() {
        line(format!(
            "MFA: {}",
            match event.mfa {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "unknown (CloudTrail did not say)",
            }
        ));
    }
    line(format!("Key: {arn}"));
    line(format!("Aliases: {}", if facts.aliases.is_empty() { "none".to_string() } else { facts.aliases.join(", ") }));
    line(format!(
        "State now: {}",
        match &facts.state {
            Some(KeyState::Enabled) => "Enabled".to_string(),
            Some(KeyState::Disabled) => "Disabled".to_string(),
            Some(KeyState::PendingDeletion) => "PendingDeletion".to_string(),
            Some(KeyState::Other(s)) => s.clone(),
            None if facts.error.is_some() => {
                format!("unknown: DescribeKey failed ({})", facts.error.as_deref().unwrap_or_default())
            }
            None => "unknown to KMS (deleted, or not visible to callvault)".to_string(),
        }
    ));
    if let Some(date) = facts.deletion_date {
        let days = (date - now).max(0) as f64 / 86_400.0;
        line(format!(
            "Deletion date: {} ({days:.1} days left). Deletion is final: everything the key protects becomes unreadable, for everyone.",
            rfc3339(date.max(0) as u64)
        ));
    } else if let Some(days) = event.pending_window_days {
        line(format!("Deletion window requested: {days} days."));
    }
    line(String::new());
    line("At stake:".to_string());
    match &stake.usage {
        Some(u) if u.recordings > 0 => {
            line(format!(
                "- {} recording{} ({}) protected by this key",
                u.recordings,
                if u.recordings == 1 { "" } else { "s" },
                human_bytes(u.bytes)
            ));
            line(format!("- oldest encrypted {}, newest {}", u.first_used, u.last_used));
            if !u.recording_types.is_empty() {
                line(format!("- recording types: {}", u.recording_types.join(", ")));
            }
        }
        _ => line("- no recordings are protected by this key yet".to_string()),
    }
    if stake.configured_for.is_empty() {
        line("- new recordings do not use this key".to_string());
    } else {
        line(format!("- new recordings of type {} use this key (RECORDING_KEYS): while it is unusable they wait in the ingest bucket", stake.configured_for.join(", ")));
    }
    match protection {
        Protection::None => {}
        Protection::Cancelled => {
            line(String::new());
            line("Protection: callvault CANCELLED THE DELETION (PROTECT_KEYS_IN_USE=true): disable, don't delete. The key is now Disabled, not pending deletion; recordings cannot be played or written until it is re-enabled.".to_string());
        }
        Protection::Failed(reason) => {
            line(String::new());
            line(format!(
                "Protection: callvault tried to cancel the deletion and FAILED ({reason}). Cancel it by hand now."
            ));
        }
    }
    line(String::new());
    let r = format!("--region {region}");
    let undo: Vec<String> = match kind {
        KeyEventKind::Disabled => vec![format!("aws kms enable-key --key-id {arn} {r}")],
        KeyEventKind::DeletionScheduled if *protection == Protection::Cancelled => {
            vec![format!("aws kms enable-key --key-id {arn} {r}")]
        }
        KeyEventKind::DeletionScheduled => vec![
            format!("aws kms cancel-key-deletion --key-id {arn} {r}"),
            format!("aws kms enable-key --key-id {arn} {r}"),
        ],
        KeyEventKind::RotationDisabled => vec![format!("aws kms enable-key-rotation --key-id {arn} {r}")],
        KeyEventKind::AliasDeleted | KeyEventKind::AliasUpdated => match &event.alias {
            Some(alias) if kind == KeyEventKind::AliasDeleted => {
                vec![format!("aws kms create-alias --alias-name {alias} --target-key-id {arn} {r}")]
            }
            Some(alias) => vec![format!("aws kms update-alias --alias-name {alias} --target-key-id <the previous key ARN> {r}")],
            None => vec![],
        },
        KeyEventKind::PolicyChanged => vec![
            format!("aws kms get-key-policy --key-id {arn} --policy-name default {r}"),
            "compare it with the customer key stack (infra/key.yaml) and redeploy that stack to restore it".to_string(),
        ],
        KeyEventKind::KeyMaterialDeleted => vec![format!(
            "aws kms import-key-material --key-id {arn} {r} ... with the SAME key material (nothing else decrypts the recordings)"
        )],
        KeyEventKind::AccessDenied => vec![format!(
            "check that {} should use this key; if not, investigate the principal (CloudTrail request {})",
            event.principal.as_deref().unwrap_or("the caller"),
            event.request_id.as_deref().unwrap_or("unknown")
        )],
        KeyEventKind::Deleted => vec!["nothing can undo a deletion: the recordings it protected are unreadable".to_string()],
        // Cancelling a deletion leaves the key Disabled.
        KeyEventKind::DeletionCancelled if facts.state == Some(KeyState::Disabled) => {
            vec![format!("aws kms enable-key --key-id {arn} {r}   (once the key should be used again)")]
        }
        KeyEventKind::Enabled | KeyEventKind::DeletionCancelled | KeyEventKind::Rotated => vec![],
    };
    if undo.is_empty() {
        line("No action needed.".to_string());
    } else {
        line("To undo:".to_string());
        for u in undo {
            line(format!("  {u}"));
        }
    }
    line(String::new());
    line(format!(
        "Event id: {}{}",
        event.id,
        event.request_id.as_deref().map(|r| format!(", CloudTrail request id {r}")).unwrap_or_default()
    ));
    Alert { subject, body: b, severity: sev, event: kind.name(), key_arn: arn.clone(), key_id }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn cloudtrail(name: &str, extra: Value) -> Value {
        let mut v = json!({
            "version": "0", "id": "ev-1", "detail-type": "AWS API Call via CloudTrail", "source": "aws.kms",
            "account": "111122223333", "time": "2026-11-24T09:00:00Z", "region": "us-east-1", "resources": [],
            "detail": {
                "eventName": name, "eventTime": "2026-11-24T09:00:01Z", "awsRegion": "us-east-1",
                "recipientAccountId": "111122223333", "sourceIPAddress": "203.0.113.10",
                "userIdentity": {"type": "AssumedRole", "arn": "arn:aws:sts::111122223333:assumed-role/Admin/alice",
                    "sessionContext": {"attributes": {"mfaAuthenticated": "false"}}},
                "requestParameters": {"keyId": ARN},
            }
        });
        if let Value::Object(extra) = extra {
            for (k, x) in extra {
                v["detail"][k] = x;
            }
        }
        v
    }

    fn key_event(v: &Value) -> KeyEvent {
        match parse_event(v).unwrap() {
            Parsed::Key(e) => *e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn cloudtrail_calls_are_read_with_who_when_and_which_key() {
        let e = key_event(&cloudtrail("DisableKey", json!({})));
        assert_eq!(e.kind, Some(KeyEventKind::Disabled));
        assert_eq!(e.key_arn, ARN);
        assert_eq!(e.principal.as_deref(), Some("arn:aws:sts::111122223333:assumed-role/Admin/alice"));
        assert_eq!(
            (e.mfa, e.source_ip.as_deref(), e.time.as_str()),
            (Some(false), Some("203.0.113.10"), "2026-11-24T09:00:01Z")
        );
        // A bare key id is completed from the record's region and account.
        let e = key_event(&cloudtrail(
            "EnableKey",
            json!({"requestParameters": {"keyId": "1234abcd-12ab-34cd-56ef-1234567890ab"}}),
        ));
        assert_eq!(e.key_arn, ARN);
    }

    #[test]
    fn denied_cryptographic_calls_are_access_denials_and_other_failures_are_unwatched() {
        let denied = cloudtrail(
            "Decrypt",
            json!({"errorCode": "AccessDenied", "errorMessage": "not authorized",
            "requestParameters": {}, "resources": [{"type": "AWS::KMS::Key", "ARN": ARN}]}),
        );
        assert_eq!(key_event(&denied).kind, Some(KeyEventKind::AccessDenied));
        let gdk = cloudtrail("GenerateDataKeyWithoutPlaintext", json!({"errorCode": "AccessDeniedException"}));
        assert_eq!(key_event(&gdk).kind, Some(KeyEventKind::AccessDenied));
        assert!(matches!(
            parse_event(&cloudtrail("DisableKey", json!({"errorCode": "NotFoundException"}))),
            Ok(Parsed::Unwatched(_))
        ));
        assert!(matches!(parse_event(&cloudtrail("ListKeys", json!({}))), Ok(Parsed::Unwatched(_))));
    }

    #[test]
    fn alias_events_name_the_key_not_the_alias() {
        let alias_arn = "arn:aws:kms:us-east-1:111122223333:alias/recordings";
        let v = cloudtrail(
            "DeleteAlias",
            json!({"requestParameters": {"aliasName": "alias/recordings"},
                "resources": [{"type": "AWS::KMS::Key", "ARN": alias_arn}, {"type": "AWS::KMS::Key", "ARN": ARN}]}),
        );
        let e = key_event(&v);
        assert_eq!((e.kind, e.key_arn.as_str()), (Some(KeyEventKind::AliasDeleted), ARN));
        assert_eq!(e.alias.as_deref(), Some("alias/recordings"));
        let v = cloudtrail(
            "UpdateAlias",
            json!({"requestParameters": {"aliasName": "alias/recordings", "targetKeyId": ARN}, "resources": [{"ARN": alias_arn}]}),
        );
        assert_eq!(key_event(&v).key_arn, ARN);
        // A denial that names no key is counted, not malformed.
        let v = cloudtrail(
            "Decrypt",
            json!({"errorCode": "AccessDenied", "requestParameters": {"encryptionAlgorithm": "SYMMETRIC_DEFAULT"}}),
        );
        assert!(matches!(parse_event(&v), Ok(Parsed::Unwatched(_))));
    }

    #[test]
    fn kms_own_events_are_read() {
        let v = json!({"id": "ev-3", "detail-type": "KMS CMK Rotation", "source": "aws.kms", "account": "111122223333",
            "region": "us-east-1", "time": "2026-12-24T09:00:00Z", "resources": [ARN], "detail": {"key-id": "1234abcd-12ab-34cd-56ef-1234567890ab"}});
        assert_eq!(key_event(&v).kind, Some(KeyEventKind::Rotated));
        let v = json!({"id": "ev-2", "detail-type": "KMS CMK Deletion", "source": "aws.kms", "account": "111122223333",
            "region": "us-east-1", "time": "2026-12-24T09:00:00Z", "resources": [ARN], "detail": {"key-id": "1234abcd-12ab-34cd-56ef-1234567890ab"}});
        let e = key_event(&v);
        assert_eq!((e.kind, e.key_arn.as_str()), (Some(KeyEventKind::Deleted), ARN));
    }

    #[test]
    fn malformed_events_are_errors_not_panics() {
        for v in [
            json!(null),
            json!([1]),
            json!({"source": "aws.s3", "id": "x"}),
            json!({"source": "aws.kms", "id": "x"}),
            json!({"source": "aws.kms", "id": "x", "detail-type": CLOUDTRAIL, "detail": {}}),
            json!({"source": "aws.kms", "id": "x", "detail-type": CLOUDTRAIL, "detail": {"eventName": "DisableKey"}}),
            json!({"source": "aws.kms", "id": "x", "detail-type": CLOUDTRAIL, "detail": {"eventName": "DisableKey", "requestParameters": {"keyId": "../etc"}}}),
        ] {
            assert!(parse_event(&v).is_err(), "{v}");
        }
    }

    fn usage(n: u64) -> Stake {
        Stake {
            usage: Some(KeyUsage {
                key_arn: ARN.into(),
                recordings: n,
                bytes: 3 * 1024 * 1024,
                first_used: "2026-01-01T00:00:00Z".into(),
                last_used: "2026-11-24T08:00:00Z".into(),
                recording_types: vec!["calls".into(), "chats".into()],
            }),
            configured_for: vec!["calls".into()],
        }
    }

    #[test]
    fn severity_follows_what_the_key_protects() {
        assert_eq!(severity(KeyEventKind::DeletionScheduled, &usage(2)), Severity::Critical);
        assert_eq!(severity(KeyEventKind::Disabled, &Stake::default()), Severity::Warning);
        let configured_only = Stake { usage: None, configured_for: vec!["calls".into()] };
        assert_eq!(severity(KeyEventKind::DeletionScheduled, &configured_only), Severity::Warning);
        assert_eq!(severity(KeyEventKind::PolicyChanged, &usage(2)), Severity::Warning);
        assert_eq!(severity(KeyEventKind::Enabled, &usage(2)), Severity::Info);
    }

    #[test]
    fn an_alert_says_what_happened_what_is_at_stake_and_how_to_undo_it() {
        let e = key_event(&cloudtrail(
            "ScheduleKeyDeletion",
            json!({"requestParameters": {"keyId": ARN, "pendingWindowInDays": 7}}),
        ));
        let facts = KeyFacts {
            state: Some(KeyState::PendingDeletion),
            deletion_date: Some(1_795_512_600 + 7 * 86_400),
            aliases: vec!["alias/recordings".into()],
            spec: Some("SYMMETRIC_DEFAULT".into()),
            error: None,
        };
        let a = compose(&e, &facts, &usage(2), &Protection::None, 1_795_512_600);
        assert_eq!(a.severity, Severity::Critical);
        assert!(a.subject.chars().count() <= MAX_SUBJECT, "{}", a.subject);
        assert_eq!(
            a.subject,
            "[CRITICAL] callvault: key alias/recordings scheduled for deletion: 2 recordings at risk"
        );
        for needle in [
            "ScheduleKeyDeletion",
            "arn:aws:sts::111122223333:assumed-role/Admin/alice",
            "203.0.113.10",
            "MFA: NO",
            "alias/recordings",
            "2 recordings (3.0 MiB (3145728 bytes))",
            "oldest encrypted 2026-01-01T00:00:00Z",
            "newest 2026-11-24T08:00:00Z",
            "recording types: calls, chats",
            "new recordings of type calls use this key",
            "(7.0 days left)",
            &format!("aws kms cancel-key-deletion --key-id {ARN} --region us-east-1"),
            &format!("aws kms enable-key --key-id {ARN} --region us-east-1"),
        ] {
            assert!(a.body.contains(needle), "{needle:?} not in\n{}", a.body);
        }
        let protected = compose(&e, &facts, &usage(2), &Protection::Cancelled, 1_795_512_600);
        assert!(protected.body.contains("CANCELLED THE DELETION") && !protected.body.contains("cancel-key-deletion"));
        assert_eq!(a.key_id, "1234abcd-12ab-34cd-56ef-1234567890ab");
    }

    #[test]
    fn long_subjects_are_cut_under_the_sns_limit() {
        let e = key_event(&cloudtrail("DisableKey", json!({})));
        let facts = KeyFacts { aliases: vec![format!("alias/{}", "x".repeat(200))], ..Default::default() };
        let a = compose(&e, &facts, &usage(1), &Protection::None, 0);
        assert_eq!(a.subject.chars().count(), MAX_SUBJECT);
        assert!(a.subject.ends_with('…'));
    }
}
