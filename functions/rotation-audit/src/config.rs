//! Configuration from the environment (names as in template.yaml).

use vault::audit::{Policy, DEFAULT_MAX_KEY_AGE_DAYS};
use vault::config::{ConfigError, FromSettings, Settings, RECORDING_KEYS};
use vault::recording::RecordingKeys;

pub const EVIDENCE_BUCKET: &str = "EVIDENCE_BUCKET";
pub const ALERT_TOPIC_ARN: &str = "ALERT_TOPIC_ARN";
pub const MAX_KEY_AGE_DAYS: &str = "MAX_KEY_AGE_DAYS";

/// The function's configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub region: String,
    pub org: String,
    pub catalog_table: String,
    /// Where the evidence reports go (`audit/rotation/...`).
    pub evidence_bucket: String,
    pub keys: RecordingKeys,
    pub alert_topic_arn: String,
    pub policy: Policy,
}

impl FromSettings for Config {
    fn from_settings<F: Fn(&str) -> Option<String>>(env: &Settings<F>) -> Result<Self, ConfigError> {
        let region = env.region()?;
        let org = env.org()?;
        let catalog_table = env.catalog_table()?;
        let evidence_bucket = env.bucket(EVIDENCE_BUCKET, "the evidence bucket (Object Lock), where the reports go")?;
        let keys_json = env.required(RECORDING_KEYS, "the same JSON object encrypt-recording has")?;
        // A primary key in another region is the audit's to report, not to refuse.
        let keys = RecordingKeys::parse_any_region(&keys_json)
            .map_err(|problem| ConfigError { name: RECORDING_KEYS, problem })?;
        let alert_topic_arn = env.required(ALERT_TOPIC_ARN, "the SNS topic ARN the summary goes to")?;
        let max_key_age_days = env.number(MAX_KEY_AGE_DAYS, DEFAULT_MAX_KEY_AGE_DAYS, 1..=3650, "a number of days")?;
        Ok(Self {
            region,
            org,
            catalog_table,
            evidence_bucket,
            keys,
            alert_topic_arn,
            policy: Policy { max_key_age_days },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use vault::config::{AWS_REGION, CALLVAULT_ORG, CATALOG_TABLE};

    fn env() -> HashMap<&'static str, String> {
        HashMap::from([
            (AWS_REGION, "us-east-1".to_string()),
            (CALLVAULT_ORG, "acme".to_string()),
            (CATALOG_TABLE, "acme-catalog".to_string()),
            (EVIDENCE_BUCKET, "acme-evidence".to_string()),
            (ALERT_TOPIC_ARN, "arn:aws:sns:us-east-1:111122223333:alerts".to_string()),
            (
                RECORDING_KEYS,
                r#"{"calls": ["arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"]}"#.into(),
            ),
        ])
    }

    #[test]
    fn the_policy_defaults_to_365_days_and_is_bounded() {
        let load = |e: &HashMap<&'static str, String>| Config::from_lookup(|n| e.get(n).cloned());
        assert_eq!(load(&env()).unwrap().policy.max_key_age_days, 365);
        let mut e = env();
        e.insert(MAX_KEY_AGE_DAYS, "0".into());
        assert_eq!(load(&e).unwrap_err().name, MAX_KEY_AGE_DAYS);
        e.insert(MAX_KEY_AGE_DAYS, "90".into());
        assert_eq!(load(&e).unwrap().policy.max_key_age_days, 90);
        for name in [AWS_REGION, CALLVAULT_ORG, CATALOG_TABLE, EVIDENCE_BUCKET, RECORDING_KEYS, ALERT_TOPIC_ARN] {
            let mut e = env();
            e.remove(name);
            assert_eq!(load(&e).unwrap_err().name, name);
        }
    }
}
