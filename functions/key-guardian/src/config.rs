//! Configuration from the environment (names as in template.yaml).

use vault::config::{ConfigError, FromSettings, Settings, RECORDING_KEYS};
use vault::recording::RecordingKeys;

pub const ALERT_TOPIC_ARN: &str = "ALERT_TOPIC_ARN";
pub const PROTECT_KEYS_IN_USE: &str = "PROTECT_KEYS_IN_USE";
pub const OLDER_KEY_ARNS: &str = "OLDER_KEY_ARNS";
pub const DENIAL_WINDOW_SECONDS: &str = "DENIAL_WINDOW_SECONDS";

/// The function's configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub region: String,
    pub catalog_table: String,
    pub alert_topic_arn: String,
    /// The keys new recordings use (the same value encrypt-recording has).
    pub keys: RecordingKeys,
    /// Turn a scheduled deletion of a key that protects recordings into a
    /// disabled key (CancelKeyDeletion).
    pub protect_keys_in_use: bool,
    /// Keys older recordings are still under (template.yaml's OlderKeyArns):
    /// they protect recordings whatever the catalog says.
    pub older_keys: Vec<String>,
    /// Denied calls of one principal to one key are summarised per window
    /// of this many seconds (60-86400, default 900).
    pub denial_window_secs: u64,
}

impl FromSettings for Config {
    fn from_settings<F: Fn(&str) -> Option<String>>(env: &Settings<F>) -> Result<Self, ConfigError> {
        let region = env.region()?;
        let catalog_table = env.catalog_table()?;
        let alert_topic_arn = env.required(ALERT_TOPIC_ARN, "the SNS topic ARN alerts go to")?;
        if !alert_topic_arn.starts_with("arn:aws") || alert_topic_arn.split(':').nth(2) != Some("sns") {
            return Err(ConfigError {
                name: ALERT_TOPIC_ARN,
                problem: format!("{alert_topic_arn:?} is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)"),
            });
        }
        let keys_json =
            env.required(RECORDING_KEYS, "the same JSON object of recording type to key ARNs encrypt-recording has")?;
        let keys = RecordingKeys::parse(&keys_json, &region)
            .map_err(|problem| ConfigError { name: RECORDING_KEYS, problem })?;
        let protect_keys_in_use = match env.optional(PROTECT_KEYS_IN_USE).as_deref().map(str::to_ascii_lowercase) {
            None => false,
            Some(v) if v == "true" => true,
            Some(v) if v == "false" => false,
            Some(v) => {
                return Err(ConfigError {
                    name: PROTECT_KEYS_IN_USE,
                    problem: format!("{v:?} is not true or false (default false)"),
                })
            }
        };
        let older_keys: Vec<String> = env
            .optional(OLDER_KEY_ARNS)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(str::to_string)
            .collect();
        if let Some(bad) = older_keys.iter().find(|k| !vault::arn::KmsArn::parse(k).is_some_and(|a| a.is_key())) {
            return Err(ConfigError {
                name: OLDER_KEY_ARNS,
                problem: format!("{bad:?} is not a KMS key ARN; use key ARNs separated by commas, or leave it empty"),
            });
        }
        let denial_window_secs = match env.optional(DENIAL_WINDOW_SECONDS) {
            None => vault::guardian::DEFAULT_DENIAL_WINDOW_SECS,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if (60..=86_400).contains(&n) => n,
                _ => {
                    return Err(ConfigError {
                        name: DENIAL_WINDOW_SECONDS,
                        problem: format!("{v:?} is not a number of seconds from 60 to 86400 (default 900)"),
                    })
                }
            },
        };
        Ok(Self { region, catalog_table, alert_topic_arn, keys, protect_keys_in_use, older_keys, denial_window_secs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use vault::config::{AWS_REGION, CATALOG_TABLE};

    const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn env() -> HashMap<&'static str, String> {
        HashMap::from([
            (AWS_REGION, "us-east-1".to_string()),
            (CATALOG_TABLE, "acme-catalog".to_string()),
            (ALERT_TOPIC_ARN, "arn:aws:sns:us-east-1:111122223333:callvault-alerts".to_string()),
            (RECORDING_KEYS, format!(r#"{{"calls": ["{ARN}"]}}"#)),
        ])
    }

    fn load(env: &HashMap<&'static str, String>) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| env.get(name).cloned())
    }

    #[test]
    fn protection_is_off_unless_asked_for() {
        assert!(!load(&env()).unwrap().protect_keys_in_use);
        let mut e = env();
        e.insert(PROTECT_KEYS_IN_USE, "TRUE".into());
        assert!(load(&e).unwrap().protect_keys_in_use);
        e.insert(PROTECT_KEYS_IN_USE, "yes".into());
        assert_eq!(load(&e).unwrap_err().name, PROTECT_KEYS_IN_USE);
    }

    #[test]
    fn missing_and_malformed_settings_are_named() {
        for name in [AWS_REGION, CATALOG_TABLE, ALERT_TOPIC_ARN, RECORDING_KEYS] {
            let mut e = env();
            e.remove(name);
            assert_eq!(load(&e).unwrap_err().name, name);
        }
        let mut e = env();
        e.insert(ALERT_TOPIC_ARN, "callvault-alerts".into());
        assert_eq!(load(&e).unwrap_err().name, ALERT_TOPIC_ARN);
        assert_eq!(load(&env()).unwrap().denial_window_secs, 900);
        for bad in ["0", "59", "86401", "soon"] {
            let mut e = env();
            e.insert(DENIAL_WINDOW_SECONDS, bad.into());
            assert_eq!(load(&e).unwrap_err().name, DENIAL_WINDOW_SECONDS, "{bad}");
        }
    }
}
