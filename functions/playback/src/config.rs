//! Configuration from the environment (names as in template.yaml).

use std::time::Duration;

use vault::config::{ConfigError, FromSettings, Settings};
use vault::playback::{PlaybackSettings, DEFAULT_BATCH_BYTES};

pub const CALLVAULT_ORG: &str = "CALLVAULT_ORG";
pub const VAULT_BUCKET: &str = "VAULT_BUCKET";
pub const CATALOG_TABLE: &str = "CATALOG_TABLE";
pub const AWS_REGION: &str = "AWS_REGION";
pub const KEY_CACHE_TTL_SECONDS: &str = "KEY_CACHE_TTL_SECONDS";
pub const KEY_CACHE_ENTRIES: &str = "KEY_CACHE_ENTRIES";
pub const MAX_RESPONSE_BYTES: &str = "MAX_RESPONSE_BYTES";

/// How long an unwrapped data key is used without asking KMS again: also how
/// long revoking a key takes to reach playback.
pub const DEFAULT_KEY_CACHE_TTL_SECONDS: u64 = 300;
pub const MAX_KEY_CACHE_TTL_SECONDS: u64 = 3600;
pub const DEFAULT_KEY_CACHE_ENTRIES: usize = 256;
/// Most bytes of audio in one ranged response: fits a buffered front
/// (API Gateway, CloudFront to a buffered origin) as well as streaming.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 4 * 1024 * 1024;
pub const MIN_MAX_RESPONSE_BYTES: u64 = 64 * 1024;
pub const MAX_MAX_RESPONSE_BYTES: u64 = 200 * 1024 * 1024;

/// The function's configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub settings: PlaybackSettings,
    pub catalog_table: String,
    /// Cap on the audio bytes of a ranged (206) response.
    pub max_response_bytes: u64,
}

impl FromSettings for Config {
    fn from_settings<F: Fn(&str) -> Option<String>>(env: &Settings<F>) -> Result<Self, ConfigError> {
        let region = env.required(AWS_REGION, "the function's region (Lambda sets it)")?;
        let org = env.required(CALLVAULT_ORG, "the organisation name every recording's encryption context carries")?;
        let vault_bucket = env.bucket(VAULT_BUCKET, "the bucket encrypted recordings are in")?;
        let catalog_table = env.required(CATALOG_TABLE, "the catalog's DynamoDB table name")?;
        let ttl = env.number(
            KEY_CACHE_TTL_SECONDS,
            DEFAULT_KEY_CACHE_TTL_SECONDS,
            0..=MAX_KEY_CACHE_TTL_SECONDS,
            "a number of seconds (0 turns the cache off)",
        )?;
        let entries =
            env.number(KEY_CACHE_ENTRIES, DEFAULT_KEY_CACHE_ENTRIES, 1..=100_000, "a number of cached data keys")?;
        let max_response_bytes = env.number(
            MAX_RESPONSE_BYTES,
            DEFAULT_MAX_RESPONSE_BYTES,
            MIN_MAX_RESPONSE_BYTES..=MAX_MAX_RESPONSE_BYTES,
            "a number of bytes",
        )?;
        Ok(Self {
            settings: PlaybackSettings {
                org,
                vault_bucket,
                region,
                cache_ttl: Duration::from_secs(ttl),
                cache_entries: entries,
                batch_bytes: DEFAULT_BATCH_BYTES,
            },
            catalog_table,
            max_response_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env() -> HashMap<&'static str, String> {
        HashMap::from([
            (AWS_REGION, "us-east-1".to_string()),
            (CALLVAULT_ORG, "acme".to_string()),
            (VAULT_BUCKET, "acme-vault".to_string()),
            (CATALOG_TABLE, "acme-catalog".to_string()),
        ])
    }

    fn load(env: &HashMap<&'static str, String>) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| env.get(name).cloned())
    }

    #[test]
    fn a_complete_environment_loads_with_the_defaults() {
        let c = load(&env()).unwrap();
        assert_eq!(c.settings.cache_ttl, Duration::from_secs(300));
        assert_eq!(c.settings.cache_entries, 256);
        assert_eq!(c.max_response_bytes, 4 * 1024 * 1024);
    }

    #[test]
    fn every_missing_setting_is_named() {
        for name in [AWS_REGION, CALLVAULT_ORG, VAULT_BUCKET, CATALOG_TABLE] {
            let mut e = env();
            e.remove(name);
            assert_eq!(load(&e).unwrap_err().name, name);
        }
    }

    #[test]
    fn out_of_range_settings_are_refused_with_a_reason() {
        for (name, value) in [
            (KEY_CACHE_TTL_SECONDS, "3601"),
            (KEY_CACHE_TTL_SECONDS, "5m"),
            (KEY_CACHE_ENTRIES, "0"),
            (MAX_RESPONSE_BYTES, "1024"),
            (VAULT_BUCKET, "Vault_Bucket"),
        ] {
            let mut e = env();
            e.insert(name, value.to_string());
            let err = load(&e).unwrap_err();
            assert_eq!(err.name, name, "{value}");
            assert_eq!(err.code(), "config_invalid");
        }
    }
}
