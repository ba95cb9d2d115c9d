//! Configuration from the environment (names as in template.yaml).

use vault::config::{ConfigError, FromSettings, Settings, VAULT_BUCKET};
use vault::ingest::IngestSettings;
use vault::ports::objects::WriteOptions;

pub const INGEST_BUCKET: &str = "INGEST_BUCKET";
pub const FRAME_LENGTH: &str = "FRAME_LENGTH";
pub const DEAD_LETTER_QUEUE_URL: &str = "DEAD_LETTER_QUEUE_URL";

/// Frame length when `FRAME_LENGTH` is not set.
pub const DEFAULT_FRAME_LENGTH: u32 = 65536;
/// Largest frame length accepted: what every reader of ours accepts.
pub const MAX_FRAME_LENGTH: u32 = 16 * 1024 * 1024;

/// The function's configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub settings: IngestSettings,
    pub catalog_table: String,
    /// Where recordings that cannot be encrypted go (the on-failure
    /// destination's queue); without it such failures are returned to
    /// Lambda, whose own on-failure destination then gets them.
    pub dead_letter_queue_url: Option<String>,
}

impl FromSettings for Config {
    fn from_settings<F: Fn(&str) -> Option<String>>(env: &Settings<F>) -> Result<Self, ConfigError> {
        let region = env.region()?;
        let org = env.org()?;
        let ingest_bucket = env.bucket(INGEST_BUCKET, "the bucket recorders upload plaintext to")?;
        let vault_bucket = env.vault_bucket()?;
        if ingest_bucket == vault_bucket {
            return Err(ConfigError {
                name: VAULT_BUCKET,
                problem: "must differ from INGEST_BUCKET: plaintext and ciphertext never share a bucket".into(),
            });
        }
        let catalog_table = env.catalog_table()?;
        let keys = env.recording_keys(&region)?;
        let frame_length =
            env.number(FRAME_LENGTH, DEFAULT_FRAME_LENGTH, 1..=MAX_FRAME_LENGTH, "a frame length in bytes")?;
        let dead_letter_queue_url = env.optional(DEAD_LETTER_QUEUE_URL);
        let retention = env.retention(&keys)?;
        let vault_lock = env.vault_lock()?;
        Ok(Self {
            settings: IngestSettings {
                org,
                ingest_bucket,
                vault_bucket,
                keys,
                frame_length,
                region,
                write: WriteOptions::default(),
                retention,
                vault_lock,
            },
            catalog_table,
            dead_letter_queue_url,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use vault::config::{AWS_REGION, CALLVAULT_ORG, CATALOG_TABLE, RECORDING_KEYS};

    const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn env() -> HashMap<&'static str, String> {
        HashMap::from([
            (AWS_REGION, "us-east-1".to_string()),
            (CALLVAULT_ORG, "acme".to_string()),
            (INGEST_BUCKET, "acme-ingest".to_string()),
            (VAULT_BUCKET, "acme-vault".to_string()),
            (CATALOG_TABLE, "acme-catalog".to_string()),
            (RECORDING_KEYS, format!(r#"{{"calls": ["{ARN}"]}}"#)),
        ])
    }

    fn load(env: &HashMap<&'static str, String>) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| env.get(name).cloned())
    }

    #[test]
    fn a_complete_environment_loads_with_the_default_frame_length() {
        let c = load(&env()).unwrap();
        assert_eq!(c.settings.frame_length, DEFAULT_FRAME_LENGTH);
        assert_eq!(c.settings.keys.get("calls").unwrap(), [ARN]);
        assert_eq!(c.dead_letter_queue_url, None);
    }

    #[test]
    fn every_missing_setting_is_named() {
        for name in [AWS_REGION, CALLVAULT_ORG, INGEST_BUCKET, VAULT_BUCKET, CATALOG_TABLE, RECORDING_KEYS] {
            let mut e = env();
            e.remove(name);
            let err = load(&e).unwrap_err();
            assert_eq!(err.name, name);
            assert!(err.to_string().contains("missing"), "{err}");
        }
    }

    #[test]
    fn malformed_settings_are_refused_with_a_reason() {
        let cases = [
            (FRAME_LENGTH, "0", "frame length"),
            (FRAME_LENGTH, "64k", "frame length"),
            (FRAME_LENGTH, "16777217", "frame length"),
            (INGEST_BUCKET, "Not_A_Bucket", "bucket name"),
            (VAULT_BUCKET, "acme-ingest", "must differ"),
            (RECORDING_KEYS, "{\"calls\": \"x\"}", "JSON object"),
            (RECORDING_KEYS, &format!(r#"{{"calls": ["{}"]}}"#, ARN.replace("us-east-1", "eu-west-1")), "eu-west-1"),
        ];
        for (name, value, expected) in cases {
            let mut e = env();
            e.insert(name, value.to_string());
            let err = load(&e).unwrap_err();
            assert_eq!(err.name, name, "{value}");
            assert!(err.problem.contains(expected), "{name}={value}: {err}");
        }
    }
}
