//! Key rotation compliance: for every key that protects recordings (the
//! catalog) or is configured for new ones (`RECORDING_KEYS`), the facts KMS
//! and the catalog hold, and a verdict against a policy, with the reason and
//! the remedy. The Lambda `rotation-audit` and `callvault audit` share it.

use serde_json::{json, Value};

use crate::catalog::{Catalog, CatalogError, KeyUsage};
use crate::kms::{AwsKms, KeyState};
use crate::recording::{rfc3339, RecordingKeys};

/// The policy keys are judged against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Most days a key's material may go unrotated.
    pub max_key_age_days: u64,
}

/// `MAX_KEY_AGE_DAYS` when unset.
pub const DEFAULT_MAX_KEY_AGE_DAYS: u64 = 365;

/// Everything the audit knows about one key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditFacts {
    pub key_arn: String,
    /// `None` when DescribeKey failed (see `errors`).
    pub state: Option<KeyState>,
    pub spec: Option<String>,
    pub origin: Option<String>,
    pub region: String,
    /// Unix seconds.
    pub created: Option<i64>,
    pub multi_region: Option<bool>,
    /// Symmetric keys only.
    pub rotation_enabled: Option<bool>,
    pub rotation_period_days: Option<i64>,
    /// Unix seconds.
    pub next_rotation: Option<i64>,
    /// Unix seconds, and `AUTOMATIC` or `ON_DEMAND`.
    pub last_rotation: Option<i64>,
    pub last_rotation_type: Option<String>,
    pub usage: Option<KeyUsage>,
    /// Recording types whose new recordings use the key, and whether it is
    /// their primary (the others are disaster-recovery keys).
    pub configured_for: Vec<String>,
    pub primary_for: Vec<String>,
    /// `Err(reason)` when a configured key failed its use test
    /// (GenerateDataKey, or GetPublicKey for RSA).
    pub usable: Option<Result<(), String>>,
    /// Facts that could not be read, with why.
    pub errors: Vec<String>,
}

impl AuditFacts {
    fn recordings(&self) -> u64 {
        self.usage.as_ref().map_or(0, |u| u.recordings)
    }

    fn is_symmetric(&self) -> bool {
        self.spec.as_deref() == Some("SYMMETRIC_DEFAULT")
    }
}

/// The verdict on one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Compliant,
    NonCompliant,
    /// Protects recordings and is disabled or pending deletion.
    Critical,
}

impl Verdict {
    /// As in the report and the table.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Compliant => "compliant",
            Self::NonCompliant => "non-compliant",
            Self::Critical => "critical",
        }
    }
}

/// A key's verdict, why, and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgement {
    pub verdict: Verdict,
    pub reasons: Vec<String>,
    pub remedies: Vec<String>,
    /// Days since the key material last changed (rotation, or creation).
    pub days_since_rotation: Option<u64>,
}

const DAY: i64 = 86_400;

/// Judges `facts` against `policy` for a function in `region`, at `now`
/// (Unix seconds).
pub fn judge(facts: &AuditFacts, policy: &Policy, region: &str, now: i64) -> Judgement {
    let arn = &facts.key_arn;
    let max = policy.max_key_age_days as i64;
    let mut verdict = Verdict::Compliant;
    let (mut reasons, mut remedies) = (Vec::new(), Vec::new());
    let mut fail = |v: Verdict, reason: String, remedy: String| {
        verdict = verdict.max(v);
        reasons.push(reason);
        remedies.push(remedy);
    };
    let changed = facts.last_rotation.or(facts.created);
    let days_since_rotation = changed.map(|t| ((now - t).max(0) / DAY) as u64);

    match (&facts.state, facts.recordings()) {
        (Some(KeyState::Disabled), n) if n > 0 => fail(
            Verdict::Critical,
            format!("protects {n} recordings and is Disabled: they cannot be played"),
            format!("aws kms enable-key --key-id {arn}"),
        ),
        (Some(KeyState::PendingDeletion), n) if n > 0 => fail(
            Verdict::Critical,
            format!("protects {n} recordings and is pending deletion: they will be lost"),
            format!("aws kms cancel-key-deletion --key-id {arn}, then aws kms enable-key --key-id {arn}"),
        ),
        _ => {}
    }
    if !facts.errors.is_empty() && facts.state.is_none() {
        fail(
            Verdict::NonCompliant,
            format!("its facts could not be read: {}", facts.errors.join("; ")),
            "grant the audit kms:DescribeKey, kms:GetKeyRotationStatus and kms:ListKeyRotations on the key".into(),
        );
    }
    let key_region = crate::arn::region_of(arn).unwrap_or(&facts.region);
    if !facts.primary_for.is_empty() && key_region != region {
        fail(
            Verdict::NonCompliant,
            format!(
                "it is the primary key of {} but lives in {key_region}, not {region}: every playback is a cross-region call, and fails with that region",
                facts.primary_for.join(", ")
            ),
            format!("create a key in {region} and make it the primary key of those types (keep this one as a disaster-recovery key)"),
        );
    }
    if let Some(Err(why)) = &facts.usable {
        fail(
            Verdict::NonCompliant,
            format!("new recordings cannot use it: {why}"),
            "fix the key's state or policy so that the encrypt function may use it".into(),
        );
    }
    if facts.state.is_some() {
        if facts.is_symmetric() {
            let period_ok = facts.rotation_enabled == Some(true) && facts.rotation_period_days.is_none_or(|p| p <= max);
            let recent = days_since_rotation.is_some_and(|d| d as i64 <= max);
            if !period_ok && !recent {
                let why = match (facts.rotation_enabled, facts.rotation_period_days) {
                    (Some(true), Some(p)) => {
                        format!("automatic rotation every {p} days is longer than the policy's {max}")
                    }
                    _ => "automatic rotation is off".to_string(),
                };
                fail(
                    Verdict::NonCompliant,
                    format!(
                        "{why}, and its material is {} days old (policy: {max})",
                        days_since_rotation.map_or("an unknown number of".into(), |d| d.to_string())
                    ),
                    format!("aws kms enable-key-rotation --key-id {arn} --rotation-period-in-days {max} (and aws kms rotate-key-on-demand --key-id {arn} now)"),
                );
            }
        } else {
            // Asymmetric keys cannot rotate in KMS: age is all there is.
            let age = facts.created.map(|c| ((now - c).max(0) / DAY) as u64);
            if age.is_some_and(|a| a as i64 > max) {
                fail(
                    Verdict::NonCompliant,
                    format!(
                        "{} key, which KMS cannot rotate, is {} days old (policy: {max})",
                        facts.spec.as_deref().unwrap_or("an asymmetric"),
                        age.unwrap_or(0)
                    ),
                    format!("create a new {} key and configure it for new recordings in RECORDING_KEYS; recordings under this key stay readable with it, so keep it enabled", facts.spec.as_deref().unwrap_or("RSA")),
                );
            }
        }
    }
    Judgement { verdict, reasons, remedies, days_since_rotation }
}

/// One key in a report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyAudit {
    pub facts: AuditFacts,
    pub judgement: Judgement,
}

/// One audit run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRun {
    /// Unix seconds.
    pub run_at: i64,
    pub region: String,
    pub policy: Policy,
    pub keys: Vec<KeyAudit>,
}

impl AuditRun {
    /// The keys that are not compliant.
    pub fn failing(&self) -> impl Iterator<Item = &KeyAudit> {
        self.keys.iter().filter(|k| k.judgement.verdict != Verdict::Compliant)
    }

    /// The evidence report: every key, every fact, the verdict and reason,
    /// the policy, the run time.
    pub fn to_json(&self) -> Value {
        let time = |t: Option<i64>| t.map(|t| rfc3339(t.max(0) as u64));
        json!({
            "report": "callvault key rotation audit",
            "run_at": rfc3339(self.run_at.max(0) as u64),
            "region": self.region,
            "policy": { "max_key_age_days": self.policy.max_key_age_days },
            "non_compliant_keys": self.failing().count(),
            "keys": self.keys.iter().map(|k| {
                let f = &k.facts;
                json!({
                    "key_arn": f.key_arn,
                    "verdict": k.judgement.verdict.as_str(),
                    "reasons": k.judgement.reasons,
                    "remedies": k.judgement.remedies,
                    "days_since_rotation": k.judgement.days_since_rotation,
                    "facts": {
                        "state": f.state.as_ref().map(state_name),
                        "key_spec": f.spec,
                        "origin": f.origin,
                        "region": f.region,
                        "created": time(f.created),
                        "multi_region": f.multi_region,
                        "rotation_enabled": f.rotation_enabled,
                        "rotation_period_days": f.rotation_period_days,
                        "next_rotation": time(f.next_rotation),
                        "last_rotation": time(f.last_rotation),
                        "last_rotation_type": f.last_rotation_type,
                        "recordings": f.usage.as_ref().map(|u| u.recordings),
                        "bytes": f.usage.as_ref().map(|u| u.bytes),
                        "last_used": f.usage.as_ref().map(|u| u.last_used.clone()),
                        "configured_for": f.configured_for,
                        "primary_for": f.primary_for,
                        "usable": f.usable.as_ref().map(|u| match u { Ok(()) => "yes".to_string(), Err(e) => e.clone() }),
                        "errors": f.errors,
                    }
                })
            }).collect::<Vec<_>>(),
        })
    }

    /// A table a person reads at a glance.
    pub fn table(&self) -> String {
        let mut out =
            format!("{:<14} {:<78} {:<18} {:>6}  {}\n", "VERDICT", "KEY", "SPEC", "DAYS", "RECORDINGS / REASON");
        for k in &self.keys {
            let f = &k.facts;
            out.push_str(&format!(
                "{:<14} {:<78} {:<18} {:>6}  {}\n",
                k.judgement.verdict.as_str(),
                f.key_arn,
                f.spec.as_deref().unwrap_or("?"),
                k.judgement.days_since_rotation.map_or("?".into(), |d| d.to_string()),
                f.usage.as_ref().map_or(0, |u| u.recordings),
            ));
            for (reason, remedy) in k.judgement.reasons.iter().zip(&k.judgement.remedies) {
                out.push_str(&format!("{:<14} why: {reason}\n{:<14} fix: {remedy}\n", "", ""));
            }
        }
        out.push_str(&format!(
            "{} key{}, {} not compliant (policy: material at most {} days old)\n",
            self.keys.len(),
            if self.keys.len() == 1 { "" } else { "s" },
            self.failing().count(),
            self.policy.max_key_age_days
        ));
        out
    }

    /// The SNS summary, when any key is not compliant.
    pub fn summary(&self) -> Option<(String, String)> {
        let failing: Vec<_> = self.failing().collect();
        if failing.is_empty() {
            return None;
        }
        let critical = failing.iter().any(|k| k.judgement.verdict == Verdict::Critical);
        let subject = format!(
            "[{}] callvault rotation audit: {} of {} keys not compliant",
            if critical { "CRITICAL" } else { "WARNING" },
            failing.len(),
            self.keys.len()
        );
        let mut body = format!(
            "Key rotation audit of {} in {} (policy: key material at most {} days old): {} of {} keys are not compliant.\n",
            rfc3339(self.run_at.max(0) as u64),
            self.region,
            self.policy.max_key_age_days,
            failing.len(),
            self.keys.len()
        );
        for k in failing {
            body.push_str(&format!("\n{} ({}):\n", k.facts.key_arn, k.judgement.verdict.as_str()));
            for (reason, remedy) in k.judgement.reasons.iter().zip(&k.judgement.remedies) {
                body.push_str(&format!("  - {reason}\n    remedy: {remedy}\n"));
            }
        }
        Some((subject.chars().take(99).collect(), body))
    }
}

fn state_name(s: &KeyState) -> String {
    match s {
        KeyState::Enabled => "Enabled".into(),
        KeyState::Disabled => "Disabled".into(),
        KeyState::PendingDeletion => "PendingDeletion".into(),
        KeyState::Other(o) => o.clone(),
    }
}

/// Runs the audit: every key the catalog knows and every configured key,
/// their facts from KMS (and a use test for configured keys), judged.
pub async fn run(
    kms: &AwsKms,
    catalog: &Catalog,
    keys: &RecordingKeys,
    org: &str,
    region: &str,
    policy: Policy,
    now: i64,
) -> Result<AuditRun, CatalogError> {
    let usages = catalog.key_usages().await?;
    let mut arns: Vec<String> = usages.iter().map(|u| u.key_arn.clone()).collect();
    for t in keys.types() {
        for k in keys.get(t).unwrap_or_default() {
            if !arns.contains(k) {
                arns.push(k.clone());
            }
        }
    }
    arns.sort();
    let mut out = Vec::with_capacity(arns.len());
    for arn in arns {
        let mut facts = kms.audit_facts(&arn).await;
        facts.usage = usages.iter().find(|u| u.key_arn == arn).cloned();
        facts.configured_for = keys.types_using(&arn);
        facts.primary_for =
            keys.types().filter(|t| keys.get(t).and_then(|k| k.first()) == Some(&arn)).map(str::to_string).collect();
        if !facts.configured_for.is_empty() {
            facts.usable = Some(kms.use_test(&arn, facts.is_symmetric(), org).await.map_err(|e| e.to_string()));
        }
        let judgement = judge(&facts, &policy, region, now);
        out.push(KeyAudit { facts, judgement });
    }
    Ok(AuditRun { run_at: now, region: region.to_string(), policy, keys: out })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_512_600; // 2026-11-24
    const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    const POLICY: Policy = Policy { max_key_age_days: 365 };

    fn symmetric() -> AuditFacts {
        AuditFacts {
            key_arn: ARN.into(),
            state: Some(KeyState::Enabled),
            spec: Some("SYMMETRIC_DEFAULT".into()),
            region: "us-east-1".into(),
            created: Some(NOW - 800 * DAY),
            usage: Some(KeyUsage {
                key_arn: ARN.into(),
                recordings: 3,
                bytes: 300,
                first_used: "2025-01-01T00:00:00Z".into(),
                last_used: "2026-11-01T00:00:00Z".into(),
                recording_types: vec!["calls".into()],
            }),
            ..Default::default()
        }
    }

    fn verdict(f: &AuditFacts) -> (Verdict, String) {
        let j = judge(f, &POLICY, "us-east-1", NOW);
        (j.verdict, j.reasons.join(" | "))
    }

    #[test]
    fn the_verdicts_over_a_table_of_key_situations() {
        let rsa =
            |days: i64| AuditFacts { spec: Some("RSA_4096".into()), created: Some(NOW - days * DAY), ..symmetric() };
        let cases: Vec<(&str, AuditFacts, Verdict, &str)> = vec![
            (
                "symmetric, rotation on, 365-day period",
                AuditFacts {
                    rotation_enabled: Some(true),
                    rotation_period_days: Some(365),
                    next_rotation: Some(NOW + 30 * DAY),
                    ..symmetric()
                },
                Verdict::Compliant,
                "",
            ),
            (
                "symmetric, rotation on, 730-day period, old",
                AuditFacts { rotation_enabled: Some(true), rotation_period_days: Some(730), ..symmetric() },
                Verdict::NonCompliant,
                "every 730 days is longer than the policy's 365",
            ),
            (
                "symmetric, rotation off, 800 days old",
                AuditFacts { rotation_enabled: Some(false), ..symmetric() },
                Verdict::NonCompliant,
                "automatic rotation is off, and its material is 800 days old",
            ),
            (
                "symmetric, rotation off, rotated on demand 10 days ago",
                AuditFacts {
                    rotation_enabled: Some(false),
                    last_rotation: Some(NOW - 10 * DAY),
                    last_rotation_type: Some("ON_DEMAND".into()),
                    ..symmetric()
                },
                Verdict::Compliant,
                "",
            ),
            (
                "symmetric, rotation off, created 100 days ago",
                AuditFacts { rotation_enabled: Some(false), created: Some(NOW - 100 * DAY), ..symmetric() },
                Verdict::Compliant,
                "",
            ),
            ("asymmetric, young", rsa(100), Verdict::Compliant, ""),
            (
                "asymmetric, old",
                rsa(400),
                Verdict::NonCompliant,
                "RSA_4096 key, which KMS cannot rotate, is 400 days old",
            ),
            (
                "disabled with recordings",
                AuditFacts { state: Some(KeyState::Disabled), rotation_enabled: Some(true), ..symmetric() },
                Verdict::Critical,
                "protects 3 recordings and is Disabled",
            ),
            (
                "pending deletion with recordings",
                AuditFacts { state: Some(KeyState::PendingDeletion), rotation_enabled: Some(true), ..symmetric() },
                Verdict::Critical,
                "pending deletion",
            ),
            (
                "primary in another region",
                AuditFacts {
                    key_arn: ARN.replace("us-east-1", "eu-west-1"),
                    rotation_enabled: Some(true),
                    primary_for: vec!["calls".into()],
                    configured_for: vec!["calls".into()],
                    ..symmetric()
                },
                Verdict::NonCompliant,
                "lives in eu-west-1, not us-east-1",
            ),
            (
                "configured, unusable",
                AuditFacts {
                    rotation_enabled: Some(true),
                    configured_for: vec!["calls".into()],
                    usable: Some(Err("AccessDeniedException: not authorized".into())),
                    ..symmetric()
                },
                Verdict::NonCompliant,
                "new recordings cannot use it: AccessDeniedException",
            ),
            (
                "facts unreadable",
                AuditFacts { state: None, errors: vec!["DescribeKey: AccessDenied".into()], ..symmetric() },
                Verdict::NonCompliant,
                "could not be read",
            ),
        ];
        for (name, facts, expected, reason) in cases {
            let (v, reasons) = verdict(&facts);
            assert_eq!(v, expected, "{name}: {reasons}");
            assert!(reasons.contains(reason), "{name}: {reasons:?} lacks {reason:?}");
        }
    }

    #[test]
    fn days_since_rotation_counts_from_the_last_rotation_or_creation() {
        let f = AuditFacts { last_rotation: Some(NOW - 42 * DAY), ..symmetric() };
        assert_eq!(judge(&f, &POLICY, "us-east-1", NOW).days_since_rotation, Some(42));
        assert_eq!(judge(&symmetric(), &POLICY, "us-east-1", NOW).days_since_rotation, Some(800));
    }

    #[test]
    fn a_summary_lists_only_failing_keys_and_none_when_all_comply() {
        let ok = KeyAudit {
            judgement: judge(&AuditFacts { rotation_enabled: Some(true), ..symmetric() }, &POLICY, "us-east-1", NOW),
            facts: symmetric(),
        };
        let mut run = AuditRun { run_at: NOW, region: "us-east-1".into(), policy: POLICY, keys: vec![ok.clone()] };
        assert!(run.summary().is_none());
        let bad_facts = AuditFacts { rotation_enabled: Some(false), ..symmetric() };
        run.keys.push(KeyAudit { judgement: judge(&bad_facts, &POLICY, "us-east-1", NOW), facts: bad_facts });
        let (subject, body) = run.summary().unwrap();
        assert_eq!(subject, "[WARNING] callvault rotation audit: 1 of 2 keys not compliant");
        assert!(body.contains("automatic rotation is off") && body.contains("aws kms enable-key-rotation"), "{body}");
        assert!(run.table().contains("non-compliant"));
        assert_eq!(run.to_json()["non_compliant_keys"], 1);
    }
}
