//! Configuration from the environment (names as in template.yaml).

use vault::config::{ConfigError, FromSettings, Settings};
use vault::retention::RetentionSettings;

pub const EVIDENCE_BUCKET: &str = "EVIDENCE_BUCKET";
pub const RETENTION_BATCH: &str = "RETENTION_BATCH";
pub const RETENTION_DUTY: &str = "RETENTION_DUTY";

/// What one deployed function of this binary does: each duty is its own
/// function, role and Function URL (template.yaml), so that IAM, not only
/// this code, keeps them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Duty {
    /// The scheduled run (the default): deletes what is due, nothing on request.
    Run,
    /// Sets and releases legal holds.
    Hold,
    /// Erases a recording, never past an Object Lock retention.
    Erase,
    /// Erases a recording past a governance-mode retention.
    ErasePastGovernance,
}

impl Duty {
    /// Every duty, by its setting's value.
    pub const ALL: [Duty; 4] = [Duty::Run, Duty::Hold, Duty::Erase, Duty::ErasePastGovernance];

    /// The duty's name in `RETENTION_DUTY`.
    pub fn name(self) -> &'static str {
        match self {
            Duty::Run => "run",
            Duty::Hold => "hold",
            Duty::Erase => "erase",
            Duty::ErasePastGovernance => "erase-past-governance",
        }
    }
}

/// Recordings one run deletes (and rows it stamps) when `RETENTION_BATCH`
/// is not set: well inside the 15-minute timeout.
pub const DEFAULT_BATCH: usize = 1000;
/// How long a run is alive: past the function's 15-minute timeout.
pub const RUN_LEASE_SECONDS: u64 = 960;

/// The function's configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub settings: RetentionSettings,
    pub catalog_table: String,
    pub duty: Duty,
}

impl FromSettings for Config {
    fn from_settings<F: Fn(&str) -> Option<String>>(env: &Settings<F>) -> Result<Self, ConfigError> {
        let region = env.region()?;
        let vault_bucket = env.vault_bucket()?;
        let evidence_bucket = env.bucket(EVIDENCE_BUCKET, "the bucket evidence reports go to")?;
        let catalog_table = env.catalog_table()?;
        let keys = env.recording_keys(&region)?;
        let policy = env.retention(&keys)?;
        let object_lock = env.vault_lock()?.is_some();
        let batch = env.number(RETENTION_BATCH, DEFAULT_BATCH, 1..=100_000, "recordings per run")?;
        let duty = match env.optional(RETENTION_DUTY) {
            None => Duty::Run,
            Some(v) => Duty::ALL.into_iter().find(|d| d.name() == v).ok_or_else(|| ConfigError {
                name: RETENTION_DUTY,
                problem: format!("{v:?} is not a duty: run, hold, erase or erase-past-governance"),
            })?,
        };
        Ok(Self {
            settings: RetentionSettings {
                vault_bucket,
                evidence_bucket,
                policy,
                object_lock,
                batch,
                lease_secs: RUN_LEASE_SECONDS,
            },
            catalog_table,
            duty,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use vault::config::{AWS_REGION, CATALOG_TABLE, RECORDING_KEYS, VAULT_BUCKET};
    use vault::config::{RETENTION_DAYS, VAULT_OBJECT_LOCK};

    const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn env() -> HashMap<&'static str, String> {
        HashMap::from([
            (AWS_REGION, "us-east-1".to_string()),
            (VAULT_BUCKET, "acme-vault".to_string()),
            (EVIDENCE_BUCKET, "acme-evidence".to_string()),
            (CATALOG_TABLE, "acme-catalog".to_string()),
            (RECORDING_KEYS, format!(r#"{{"calls,screens": ["{ARN}"]}}"#)),
            (RETENTION_DAYS, r#"{"calls": 2557, "screens": 365}"#.to_string()),
        ])
    }

    fn load(env: &HashMap<&'static str, String>) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| env.get(name).cloned())
    }

    #[test]
    fn a_complete_environment_loads_and_every_missing_or_bad_setting_is_named() {
        let c = load(&env()).unwrap();
        assert_eq!(c.settings.policy.days("calls"), Some(2557));
        assert_eq!((c.settings.batch, c.settings.object_lock), (DEFAULT_BATCH, false));
        for name in [AWS_REGION, VAULT_BUCKET, EVIDENCE_BUCKET, CATALOG_TABLE, RECORDING_KEYS] {
            let mut e = env();
            e.remove(name);
            assert_eq!(load(&e).unwrap_err().name, name);
        }
        for (name, bad) in [
            (RETENTION_DAYS, r#"{"chat": 30}"#),
            (RETENTION_DAYS, r#"{"calls": 0}"#),
            (VAULT_OBJECT_LOCK, "FOREVER"),
            (RETENTION_BATCH, "0"),
            (RETENTION_DUTY, "purge"),
        ] {
            let mut e = env();
            e.insert(name, bad.to_string());
            let err = load(&e).unwrap_err();
            assert_eq!(err.name, name, "{bad}: {err:?}");
        }
        let mut e = env();
        e.insert(VAULT_OBJECT_LOCK, "COMPLIANCE".into());
        assert!(load(&e).unwrap().settings.object_lock);
        assert_eq!(c.duty, Duty::Run, "the scheduled run unless told otherwise");
        for duty in Duty::ALL {
            let mut e = env();
            e.insert(RETENTION_DUTY, duty.name().into());
            assert_eq!(load(&e).unwrap().duty, duty);
        }
    }
}
