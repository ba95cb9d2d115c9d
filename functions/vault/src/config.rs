//! Reading a function's settings from its environment: the checks every
//! function shares (required values, bucket names, bounded numbers), each
//! failure a [`ConfigError`] that names the setting and says what it wants.

use std::fmt::Display;
use std::ops::RangeInclusive;
use std::str::FromStr;

/// A missing or malformed setting.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[error("{name}: {problem}")]
pub struct ConfigError {
    /// The environment variable.
    pub name: &'static str,
    pub problem: String,
}

impl ConfigError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        "config_invalid"
    }
}

/// A function's configuration, read from its settings: implement
/// [`FromSettings::from_settings`]; the process environment and a test's map
/// come with it.
pub trait FromSettings: Sized {
    /// Reads and checks every setting.
    fn from_settings<F: Fn(&str) -> Option<String>>(env: &Settings<F>) -> Result<Self, ConfigError>;

    /// Reads the process environment; a bad setting is also logged with its
    /// code and name, as the function stops at start.
    fn from_env() -> Result<Self, ConfigError> {
        Self::from_settings(&Settings::from_env()).inspect_err(|e| {
            tracing::error!(code = e.code(), setting = e.name, "configuration error: {e}");
        })
    }

    /// Reads settings through `lookup` (a test's map).
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::from_settings(&Settings::new(lookup))
    }
}

/// The settings every function shares (names as in template.yaml).
pub const AWS_REGION: &str = "AWS_REGION";
pub const CALLVAULT_ORG: &str = "CALLVAULT_ORG";
pub const CATALOG_TABLE: &str = "CATALOG_TABLE";
pub const RECORDING_KEYS: &str = "RECORDING_KEYS";
pub const VAULT_BUCKET: &str = "VAULT_BUCKET";

/// Each recording type's retention in days (JSON, `{"calls": 2557}`);
/// unset or `{}`: recordings are kept until erased.
pub const RETENTION_DAYS: &str = "RETENTION_DAYS";
/// The vault bucket's S3 Object Lock mode, `GOVERNANCE` or `COMPLIANCE`;
/// unset or `NONE`: the vault has no Object Lock.
pub const VAULT_OBJECT_LOCK: &str = "VAULT_OBJECT_LOCK";

/// Settings read through a lookup: the process environment, or a test's map.
pub struct Settings<F> {
    lookup: F,
}

impl Settings<fn(&str) -> Option<String>> {
    /// The process environment.
    pub fn from_env() -> Self {
        Self { lookup: |name| std::env::var(name).ok() }
    }
}

impl<F: Fn(&str) -> Option<String>> Settings<F> {
    /// Settings read through `lookup`.
    pub fn new(lookup: F) -> Self {
        Self { lookup }
    }

    /// The trimmed value, when set and not blank.
    pub fn optional(&self, name: &str) -> Option<String> {
        (self.lookup)(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    }

    /// The value; `what` says what it should be when it is missing.
    pub fn required(&self, name: &'static str, what: &str) -> Result<String, ConfigError> {
        self.optional(name).ok_or_else(|| ConfigError { name, problem: format!("missing: set it to {what}") })
    }

    /// An S3 bucket name.
    pub fn bucket(&self, name: &'static str, what: &str) -> Result<String, ConfigError> {
        let v = self.required(name, what)?;
        let valid = (3..=63).contains(&v.len())
            && v.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid {
            return Err(ConfigError { name, problem: format!("{v:?} is not an S3 bucket name") });
        }
        Ok(v)
    }

    /// The function's region (`AWS_REGION`, which Lambda sets).
    pub fn region(&self) -> Result<String, ConfigError> {
        self.required(AWS_REGION, "the function's region (Lambda sets it)")
    }

    /// The organisation every recording's encryption context names
    /// (`CALLVAULT_ORG`).
    pub fn org(&self) -> Result<String, ConfigError> {
        self.required(CALLVAULT_ORG, "the organisation name every recording's encryption context carries")
    }

    /// The catalog's DynamoDB table (`CATALOG_TABLE`).
    pub fn catalog_table(&self) -> Result<String, ConfigError> {
        self.required(CATALOG_TABLE, "the catalog's DynamoDB table name")
    }

    /// The vault bucket (`VAULT_BUCKET`).
    pub fn vault_bucket(&self) -> Result<String, ConfigError> {
        self.bucket(VAULT_BUCKET, "the bucket encrypted recordings are in")
    }

    /// Each recording type's keys (`RECORDING_KEYS`), primaries in `region`.
    pub fn recording_keys(&self, region: &str) -> Result<crate::recording::RecordingKeys, ConfigError> {
        let json = self.required(RECORDING_KEYS, "a JSON object of recording type to key ARNs")?;
        crate::recording::RecordingKeys::parse(&json, region)
            .map_err(|problem| ConfigError { name: RECORDING_KEYS, problem })
    }

    /// The retention policy (`RETENTION_DAYS`), checked against the
    /// configured recording types.
    pub fn retention(
        &self,
        keys: &crate::recording::RecordingKeys,
    ) -> Result<crate::retention_policy::RetentionPolicy, ConfigError> {
        let policy =
            crate::retention_policy::RetentionPolicy::parse(&self.optional(RETENTION_DAYS).unwrap_or_default())
                .map_err(|problem| ConfigError { name: RETENTION_DAYS, problem })?;
        policy.check_types(keys).map_err(|problem| ConfigError { name: RETENTION_DAYS, problem })?;
        Ok(policy)
    }

    /// The vault's Object Lock mode (`VAULT_OBJECT_LOCK`), if it has one.
    pub fn vault_lock(&self) -> Result<Option<String>, ConfigError> {
        match self.optional(VAULT_OBJECT_LOCK).map(|v| v.to_ascii_uppercase()).as_deref() {
            None | Some("NONE") => Ok(None),
            Some(mode @ ("GOVERNANCE" | "COMPLIANCE")) => Ok(Some(mode.to_string())),
            Some(other) => Err(ConfigError {
                name: VAULT_OBJECT_LOCK,
                problem: format!("{other:?} is not an Object Lock mode: GOVERNANCE, COMPLIANCE or NONE"),
            }),
        }
    }

    /// A number within `range`, `default` when unset; `what` names its unit
    /// and meaning in the error.
    pub fn number<T>(
        &self,
        name: &'static str,
        default: T,
        range: RangeInclusive<T>,
        what: &str,
    ) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + Display + Copy,
    {
        let Some(v) = self.optional(name) else { return Ok(default) };
        match v.parse::<T>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(ConfigError {
                name,
                problem: format!("{v:?} is not {what} from {} to {} (default {default})", range.start(), range.end()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Settings<impl Fn(&str) -> Option<String>> {
        let map: std::collections::HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::new(move |name| map.get(name).cloned())
    }

    #[test]
    fn blank_values_count_as_missing_and_values_are_trimmed() {
        let s = settings(&[("A", "  "), ("B", " x ")]);
        assert_eq!(s.required("A", "an a").unwrap_err().problem, "missing: set it to an a");
        assert_eq!(s.required("B", "a b").unwrap(), "x");
    }

    #[test]
    fn numbers_outside_their_range_name_the_range_and_the_default() {
        let s = settings(&[("N", "0"), ("M", "12k"), ("K", "7")]);
        let err = s.number("N", 5u64, 1..=10, "a count").unwrap_err();
        assert_eq!(err.problem, "\"0\" is not a count from 1 to 10 (default 5)");
        assert!(s.number("M", 5u64, 1..=10, "a count").is_err());
        assert_eq!(s.number("K", 5u64, 1..=10, "a count").unwrap(), 7);
        assert_eq!(s.number("UNSET", 5u64, 1..=10, "a count").unwrap(), 5);
    }

    #[test]
    fn bucket_names_are_checked() {
        let s = settings(&[("B", "Not_A_Bucket"), ("C", "acme-vault")]);
        assert!(s.bucket("B", "a bucket").unwrap_err().problem.contains("bucket name"));
        assert_eq!(s.bucket("C", "a bucket").unwrap(), "acme-vault");
    }
}
