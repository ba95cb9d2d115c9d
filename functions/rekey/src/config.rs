//! Configuration from the environment (names as in template.yaml).

use vault::config::{ConfigError, FromSettings, Settings};
use vault::ports::objects::WriteOptions;
use vault::rekey::RekeySettings;

pub const FRAME_LENGTH: &str = "FRAME_LENGTH";
pub const CLAIM_SECONDS: &str = "CLAIM_SECONDS";

/// Frame length of the new messages when `FRAME_LENGTH` is not set.
pub const DEFAULT_FRAME_LENGTH: u32 = 65536;
pub const MAX_FRAME_LENGTH: u32 = 16 * 1024 * 1024;
/// How long a task holds a recording: past the function's 15-minute
/// timeout, so a live task never loses it.
pub const DEFAULT_CLAIM_SECONDS: u64 = 960;

/// The function's configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub settings: RekeySettings,
    pub catalog_table: String,
}

impl FromSettings for Config {
    fn from_settings<F: Fn(&str) -> Option<String>>(env: &Settings<F>) -> Result<Self, ConfigError> {
        let region = env.region()?;
        let org = env.org()?;
        let vault_bucket = env.vault_bucket()?;
        let catalog_table = env.catalog_table()?;
        let keys = env.recording_keys(&region)?;
        let frame_length =
            env.number(FRAME_LENGTH, DEFAULT_FRAME_LENGTH, 1..=MAX_FRAME_LENGTH, "a frame length in bytes")?;
        let claim_secs = env.number(CLAIM_SECONDS, DEFAULT_CLAIM_SECONDS, 60..=86_400, "seconds")?;
        Ok(Self {
            settings: RekeySettings {
                org,
                vault_bucket,
                region,
                keys,
                frame_length,
                write: WriteOptions::default(),
                claim_secs,
                vault_lock: env.vault_lock()?,
            },
            catalog_table,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use vault::config::{AWS_REGION, CALLVAULT_ORG, CATALOG_TABLE, RECORDING_KEYS, VAULT_BUCKET};

    const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn env() -> HashMap<&'static str, String> {
        HashMap::from([
            (AWS_REGION, "us-east-1".to_string()),
            (CALLVAULT_ORG, "acme".to_string()),
            (VAULT_BUCKET, "acme-vault".to_string()),
            (CATALOG_TABLE, "acme-catalog".to_string()),
            (RECORDING_KEYS, format!(r#"{{"calls": ["{ARN}"]}}"#)),
        ])
    }

    fn load(env: &HashMap<&'static str, String>) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| env.get(name).cloned())
    }

    #[test]
    fn a_complete_environment_loads_and_every_missing_or_bad_setting_is_named() {
        let c = load(&env()).unwrap();
        assert_eq!((c.settings.frame_length, c.settings.claim_secs), (DEFAULT_FRAME_LENGTH, DEFAULT_CLAIM_SECONDS));
        for name in [AWS_REGION, CALLVAULT_ORG, VAULT_BUCKET, CATALOG_TABLE, RECORDING_KEYS] {
            let mut e = env();
            e.remove(name);
            assert_eq!(load(&e).unwrap_err().name, name);
        }
        for (name, value) in [(FRAME_LENGTH, "0"), (CLAIM_SECONDS, "5"), (VAULT_BUCKET, "Not_A_Bucket")] {
            let mut e = env();
            e.insert(name, value.into());
            assert_eq!(load(&e).unwrap_err().name, name, "{value}");
        }
    }
}
