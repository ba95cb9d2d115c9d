//! What the key guardian says: a KMS event about a key (as the Lambda read
//! it from CloudTrail or KMS), how serious it is for the recordings the key
//! protects, and the alert a person can act on: what happened, who did it,
//! what is at stake, and the exact commands that undo it.

use crate::ports::alerts::{Alert, Severity};
use crate::ports::catalog::KeyUsage;
use crate::ports::keys::{KeyFacts, KeyState};
use crate::time::rfc3339;

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
    /// A management call on the key (DisableKey, ScheduleKeyDeletion,
    /// PutKeyPolicy, CreateGrant, ...) was denied: someone tried to change
    /// it, and a guardrail (the MFA rule, a policy) stopped them.
    ManagementDenied,
    /// A grant was created: it can give Decrypt to another principal.
    GrantCreated,
    /// The key was replicated to another region: whoever the replica's
    /// policy lets in can decrypt.
    Replicated,
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
            Self::ManagementDenied => "ManagementDenied",
            Self::GrantCreated => "CreateGrant",
            Self::Replicated => "ReplicateKey",
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
            Self::ManagementDenied => "change denied",
            Self::GrantCreated => "grant created",
            Self::Replicated => "replicated to another region",
            Self::Deleted => "DELETED",
            Self::Rotated => "rotated",
        }
    }

    /// The kind of a CloudTrail API call the guardian watches.
    pub fn from_api_call(name: &str) -> Option<Self> {
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
            "CreateGrant" => Self::GrantCreated,
            "ReplicateKey" => Self::Replicated,
            _ => return None,
        })
    }

    /// Whether the event changes the key's state or configuration (the
    /// `KeyStateChanges` metric), as opposed to an attempt to use it.
    pub fn is_state_change(self) -> bool {
        !matches!(self, Self::AccessDenied | Self::ManagementDenied)
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
    /// The AWS service that made the call for the principal (CloudTrail's
    /// `userIdentity.invokedBy`), e.g. `cloudformation.amazonaws.com`.
    pub invoked_by: Option<String>,
}

/// The service whose calls are a stack's own updates.
pub const CLOUDFORMATION: &str = "cloudformation.amazonaws.com";

impl KeyEvent {
    /// Whether CloudFormation made the call (a stack update of the key).
    /// Without MFA, the key policy lets only the key stack's own service
    /// role (KeyStackRoleArn) change the policy or replicate the key, and
    /// nobody create grants.
    pub fn via_cloudformation(&self) -> bool {
        self.invoked_by.as_deref() == Some(CLOUDFORMATION)
    }
}

/// What a key protects: the catalog's usage, and the recording types whose
/// new recordings use it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stake {
    pub usage: Option<KeyUsage>,
    pub configured_for: Vec<String>,
    /// The deployment names the key as one older recordings are under
    /// (`OLDER_KEY_ARNS`): it protects recordings whatever the catalog says.
    pub older: bool,
}

impl Stake {
    /// Recordings the key protects, as the catalog counts them.
    pub fn recordings(&self) -> u64 {
        self.usage.as_ref().map_or(0, |u| u.recordings)
    }

    /// Whether recordings depend on the key: the catalog says so, or the
    /// deployment does (an older key), so that a deleted usage item cannot
    /// make a key look safe to delete.
    pub fn protects_recordings(&self) -> bool {
        self.recordings() > 0 || self.older
    }

    /// Whether a scheduled deletion of the key is cancelled when protection
    /// is on: it protects recordings, or new recordings use it.
    pub fn is_protected(&self) -> bool {
        self.protects_recordings() || !self.configured_for.is_empty()
    }

    /// Whether the guardian cares about the key at all.
    pub fn is_relevant(&self) -> bool {
        self.is_protected()
    }
}

/// How serious `kind` is for a key with `stake`: critical when recordings
/// would become unreadable; for a key only configured for new recordings
/// (ingest stops, recordings wait, kept, in the ingest bucket) a warning.
pub fn severity(kind: KeyEventKind, stake: &Stake) -> Severity {
    use KeyEventKind::*;
    match kind {
        Disabled | DeletionScheduled | Deleted | KeyMaterialDeleted if stake.protects_recordings() => {
            Severity::Critical
        }
        Disabled | DeletionScheduled | Deleted | KeyMaterialDeleted => Severity::Warning,
        PolicyChanged | RotationDisabled | AccessDenied | ManagementDenied | AliasDeleted | AliasUpdated => {
            Severity::Warning
        }
        GrantCreated | Replicated => Severity::Warning,
        Enabled | DeletionCancelled | Rotated => Severity::Info,
    }
}

/// How serious `event` is: [`severity`] of its kind, except that a key
/// policy changed through CloudFormation (a stack update: the key policy
/// lets it through without MFA only for the key stack's own service role)
/// is information, not a warning. A grant or a replica stays a warning
/// however it was made: either can hand Decrypt to someone new.
pub fn event_severity(event: &KeyEvent, stake: &Stake) -> Severity {
    use KeyEventKind::*;
    let kind = event.kind.unwrap_or(PolicyChanged);
    match kind {
        PolicyChanged if event.error_code.is_none() && event.via_cloudformation() => Severity::Info,
        _ => severity(kind, stake),
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

pub(crate) fn cut(s: &str, max: usize) -> String {
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
    let sev = event_severity(event, stake);
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
        0 if stake.older => ": older recordings at risk".to_string(),
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
    if let Some(service) = &event.invoked_by {
        line(format!(
            "Through: {service}{}",
            if event.via_cloudformation() { " (a CloudFormation stack update of the key)" } else { "" }
        ));
    }
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
        _ if stake.older => line(
            "- the deployment names this key as one older recordings are under (OLDER_KEY_ARNS), though the catalog counts none: treat them as at risk".to_string(),
        ),
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
        KeyEventKind::ManagementDenied => vec![format!(
            "nothing changed; check that {} should manage this key, and investigate if not (CloudTrail request {})",
            event.principal.as_deref().unwrap_or("the caller"),
            event.request_id.as_deref().unwrap_or("unknown")
        )],
        KeyEventKind::GrantCreated => vec![
            format!("aws kms list-grants --key-id {arn} {r}   (who the new grant lets in)"),
            format!("aws kms revoke-grant --key-id {arn} --grant-id <id> {r}   (if it should not exist)"),
        ],
        KeyEventKind::Replicated => vec![format!(
            "check the replica's key policy in its region; if it should not exist: aws kms schedule-key-deletion on the replica (the primary {arn} keeps the recordings readable)"
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

    const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    /// The event the Lambda reads from a CloudTrail record of `operation`
    /// by an assumed role without MFA.
    fn key_event(kind: KeyEventKind, pending_window_days: Option<u64>) -> KeyEvent {
        KeyEvent {
            id: "ev-1".into(),
            kind: Some(kind),
            operation: kind.name().into(),
            key_arn: ARN.into(),
            time: "2026-11-24T09:00:01Z".into(),
            region: "us-east-1".into(),
            account: "111122223333".into(),
            principal: Some("arn:aws:sts::111122223333:assumed-role/Admin/alice".into()),
            principal_type: Some("AssumedRole".into()),
            source_ip: Some("203.0.113.10".into()),
            mfa: Some(false),
            pending_window_days,
            ..Default::default()
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
            older: false,
        }
    }

    #[test]
    fn a_key_policy_updated_through_cloudformation_is_info_and_grants_and_replicas_always_warn() {
        let stake = usage(2);
        for kind in [KeyEventKind::GrantCreated, KeyEventKind::Replicated] {
            let e = KeyEvent {
                kind: Some(kind),
                key_arn: ARN.into(),
                invoked_by: Some(CLOUDFORMATION.into()),
                ..KeyEvent::default()
            };
            assert_eq!(event_severity(&e, &stake), Severity::Warning, "{kind:?} through CloudFormation");
        }
        {
            let kind = KeyEventKind::PolicyChanged;
            let mut e = KeyEvent { kind: Some(kind), key_arn: ARN.into(), ..KeyEvent::default() };
            assert_eq!(event_severity(&e, &stake), Severity::Warning, "{kind:?} by a person");
            e.invoked_by = Some(CLOUDFORMATION.into());
            assert_eq!(event_severity(&e, &stake), Severity::Info, "{kind:?} through CloudFormation");
            let alert = compose(&e, &KeyFacts::default(), &stake, &Protection::None, 0);
            assert!(alert.subject.starts_with("[INFO]"), "{}", alert.subject);
            assert!(
                alert.body.contains("Through: cloudformation.amazonaws.com (a CloudFormation stack update"),
                "{}",
                alert.body
            );
            // Another service is not the stack.
            e.invoked_by = Some("kms.amazonaws.com".into());
            assert_eq!(event_severity(&e, &stake), Severity::Warning);
        }
        // A denied change is a warning whoever tried it.
        let denied = KeyEvent {
            kind: Some(KeyEventKind::ManagementDenied),
            invoked_by: Some(CLOUDFORMATION.into()),
            error_code: Some("AccessDenied".into()),
            ..KeyEvent::default()
        };
        assert_eq!(event_severity(&denied, &stake), Severity::Warning);
    }

    #[test]
    fn severity_follows_what_the_key_protects() {
        assert_eq!(severity(KeyEventKind::DeletionScheduled, &usage(2)), Severity::Critical);
        assert_eq!(severity(KeyEventKind::Disabled, &Stake::default()), Severity::Warning);
        let configured_only = Stake { usage: None, configured_for: vec!["calls".into()], older: false };
        let older = Stake { usage: None, configured_for: vec![], older: true };
        assert_eq!(severity(KeyEventKind::DeletionScheduled, &older), Severity::Critical);
        assert_eq!(severity(KeyEventKind::DeletionScheduled, &configured_only), Severity::Warning);
        assert_eq!(severity(KeyEventKind::PolicyChanged, &usage(2)), Severity::Warning);
        assert_eq!(severity(KeyEventKind::Enabled, &usage(2)), Severity::Info);
    }

    #[test]
    fn an_alert_says_what_happened_what_is_at_stake_and_how_to_undo_it() {
        let e = key_event(KeyEventKind::DeletionScheduled, Some(7));
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
    fn a_denied_change_a_grant_and_a_replica_are_warnings_that_say_what_to_check() {
        for kind in [KeyEventKind::ManagementDenied, KeyEventKind::GrantCreated, KeyEventKind::Replicated] {
            assert_eq!(severity(kind, &usage(2)), Severity::Warning, "{kind:?}");
        }
        let e = KeyEvent {
            operation: "ScheduleKeyDeletion".into(),
            error_code: Some("AccessDeniedException".into()),
            ..key_event(KeyEventKind::ManagementDenied, Some(7))
        };
        let a = compose(&e, &KeyFacts::default(), &usage(2), &Protection::None, 0);
        assert!(a.subject.starts_with("[WARNING] callvault: key key/1234abcd change denied"), "{}", a.subject);
        assert!(a.body.contains("ScheduleKeyDeletion was DENIED (AccessDeniedException)"), "{}", a.body);
        assert!(a.body.contains("nothing changed"), "{}", a.body);
        assert!(!KeyEventKind::ManagementDenied.is_state_change());
    }

    #[test]
    fn long_subjects_are_cut_under_the_sns_limit() {
        let e = key_event(KeyEventKind::Disabled, None);
        let facts = KeyFacts { aliases: vec![format!("alias/{}", "x".repeat(200))], ..Default::default() };
        let a = compose(&e, &facts, &usage(1), &Protection::None, 0);
        assert_eq!(a.subject.chars().count(), MAX_SUBJECT);
        assert!(a.subject.ends_with('…'));
    }
}
