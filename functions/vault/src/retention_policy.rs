//! The retention policy: how many days each recording type is kept, as
//! configured in `RETENTION_DAYS` beside `RECORDING_KEYS`.

use std::collections::BTreeMap;

use crate::recording::RecordingKeys;
use crate::time::{parse_rfc3339, rfc3339};

/// The longest policy accepted (100 years), in days.
pub const MAX_RETENTION_DAYS: u32 = 36_500;

/// Recording type -> days kept after `encrypted_at`. A type without an
/// entry is kept until it is erased.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionPolicy(BTreeMap<String, u32>);

impl RetentionPolicy {
    /// Parses `{"calls": 2557, "screens": 365}` (empty or `{}`: no type is
    /// ever deleted). Types that share a policy may share an entry,
    /// `{"calls,screens": 365}`.
    pub fn parse(json: &str) -> Result<Self, String> {
        let json = json.trim();
        if json.is_empty() {
            return Ok(Self::default());
        }
        let raw: BTreeMap<String, serde_json::Value> = serde_json::from_str(json).map_err(|e| {
            format!("not a JSON object of recording type to days ({e}); example: {{\"calls\": 2557, \"screens\": 365}}")
        })?;
        let mut map = BTreeMap::new();
        for (types, days) in raw {
            let days = days
                .as_u64()
                .filter(|d| (1..=u64::from(MAX_RETENTION_DAYS)).contains(d))
                .ok_or_else(|| format!("{types:?}: {days} is not a number of days from 1 to {MAX_RETENTION_DAYS}"))?;
            for ty in types.split(',').map(str::trim) {
                if ty.is_empty() || ty.contains('/') || ty.len() > 128 {
                    return Err(format!("recording type {ty:?} must be 1 to 128 characters without '/'"));
                }
                if map.insert(ty.to_string(), days as u32).is_some() {
                    return Err(format!("recording type {ty:?} has two retention policies"));
                }
            }
        }
        Ok(Self(map))
    }

    /// Refuses a policy for a type the deployment does not encrypt (a typo
    /// there would keep that type's recordings forever, silently).
    pub fn check_types(&self, keys: &RecordingKeys) -> Result<(), String> {
        let known: Vec<&str> = keys.types().collect();
        for ty in self.0.keys() {
            if !known.contains(&ty.as_str()) {
                return Err(format!(
                    "RETENTION_DAYS names recording type {ty:?}, which RECORDING_KEYS does not configure (types: {})",
                    known.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// The days a type is kept, if it has a policy.
    pub fn days(&self, recording_type: &str) -> Option<u32> {
        self.0.get(recording_type).copied()
    }

    /// When a recording of `recording_type` encrypted at `encrypted_at`
    /// (RFC 3339) is due, and under which policy (days); `None` for a type
    /// without a policy or an unreadable date.
    pub fn retain_until(&self, recording_type: &str, encrypted_at: &str) -> Option<(String, u32)> {
        let days = self.days(recording_type)?;
        let at = parse_rfc3339(encrypted_at)?;
        Some((rfc3339(at + u64::from(days) * 86_400), days))
    }

    /// What a row of `recording_type` encrypted at `encrypted_at` must carry
    /// under this policy: its `retain_until` and `retention_days` (both
    /// `None` when its type has no policy).
    pub fn stamp(&self, recording_type: &str, encrypted_at: &str) -> (Option<String>, Option<u32>) {
        match self.retain_until(recording_type, encrypted_at) {
            Some((until, days)) => (Some(until), Some(days)),
            None => (None, None),
        }
    }

    /// The types with a policy.
    pub fn types(&self) -> impl Iterator<Item = (&str, u32)> {
        self.0.iter().map(|(t, d)| (t.as_str(), *d))
    }

    /// The shortest policy (the longest an Object Lock default may be).
    pub fn shortest(&self) -> Option<(&str, u32)> {
        self.types().min_by_key(|(_, d)| *d)
    }

    /// The policy as canonical JSON (sorted, one entry per type): what the
    /// catalog remembers it stamped the rows with.
    pub fn to_json(&self) -> String {
        self.to_value().to_string()
    }

    /// The policy as a JSON object (type -> days), for reports.
    pub fn to_value(&self) -> serde_json::Value {
        self.0.iter().map(|(t, d)| (t.clone(), serde_json::Value::from(*d))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_policy_gives_each_type_its_date() {
        let p = RetentionPolicy::parse(r#"{"calls": 2557, "screens,chat": 365}"#).unwrap();
        assert_eq!(p.days("chat"), Some(365));
        assert_eq!(p.retain_until("calls", "2026-01-01T00:00:00Z"), Some(("2033-01-01T00:00:00Z".into(), 2557)));
        assert_eq!(p.retain_until("screens", "2026-01-01T12:30:00Z"), Some(("2027-01-01T12:30:00Z".into(), 365)));
        assert_eq!(p.retain_until("voicemail", "2026-01-01T00:00:00Z"), None);
        assert_eq!(p.shortest(), Some(("chat", 365)));
        assert_eq!(p.to_json(), r#"{"calls":2557,"chat":365,"screens":365}"#);
        assert_eq!(RetentionPolicy::parse("").unwrap(), RetentionPolicy::default());
        assert_eq!(RetentionPolicy::parse("{}").unwrap().shortest(), None);
    }

    #[test]
    fn a_policy_refuses_what_a_user_can_get_wrong() {
        for (json, expected) in [
            ("[]", "not a JSON object"),
            (r#"{"calls": 0}"#, "from 1 to 36500"),
            (r#"{"calls": "7y"}"#, "from 1 to 36500"),
            (r#"{"calls": 36501}"#, "from 1 to 36500"),
            (r#"{"calls": 1.5}"#, "from 1 to 36500"),
            (r#"{"a/b": 1}"#, "without '/'"),
            (r#"{"calls": 1, "calls,chat": 2}"#, "two retention policies"),
        ] {
            let err = RetentionPolicy::parse(json).unwrap_err();
            assert!(err.contains(expected), "{json}: {err}");
        }
        let keys = RecordingKeys::parse(
            r#"{"calls": ["arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"]}"#,
            "us-east-1",
        )
        .unwrap();
        let err = RetentionPolicy::parse(r#"{"cals": 30}"#).unwrap().check_types(&keys).unwrap_err();
        assert!(err.contains("\"cals\"") && err.contains("calls"), "{err}");
    }
}
