//! Configuration from the environment (names as in template.yaml).

use std::time::Duration;

use vault::config::{ConfigError, FromSettings, Settings};
use vault::playback::{PlaybackSettings, DEFAULT_BATCH_BYTES};

use crate::auth::access::AccessPolicy;
use crate::auth::oidc::{allowed_url, OidcSettings};

pub const KEY_CACHE_TTL_SECONDS: &str = "KEY_CACHE_TTL_SECONDS";
pub const KEY_CACHE_ENTRIES: &str = "KEY_CACHE_ENTRIES";
pub const MAX_RESPONSE_BYTES: &str = "MAX_RESPONSE_BYTES";
pub const OIDC_ISSUER: &str = "OIDC_ISSUER";
pub const OIDC_CLIENT_ID: &str = "OIDC_CLIENT_ID";
pub const OIDC_AUDIENCES: &str = "OIDC_AUDIENCES";
pub const OIDC_GROUPS_CLAIMS: &str = "OIDC_GROUPS_CLAIMS";
pub const OIDC_SCOPES: &str = "OIDC_SCOPES";
pub const OIDC_CLIENT_SECRET_ARN: &str = "OIDC_CLIENT_SECRET_ARN";
pub const PLAYER_URL: &str = "PLAYER_URL";
pub const PLAYBACK_ACCESS: &str = "PLAYBACK_ACCESS";
pub const SESSION_SECONDS: &str = "SESSION_SECONDS";
pub const SESSION_KEYS_SECRET_ARN: &str = "SESSION_KEYS_SECRET_ARN";
pub const PLAYER_FRONT_SECRET_ARN: &str = "PLAYER_FRONT_SECRET_ARN";

/// How long a player session lasts (never past its ID token's expiry).
pub const DEFAULT_SESSION_SECONDS: u64 = 3600;
/// Leeway on tokens' `exp` and `nbf`: clocks differ a little.
pub const TOKEN_LEEWAY: Duration = Duration::from_secs(60);

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

/// What browser sign-in needs: all of it, or none (bearer tokens only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrowserSignIn {
    /// The player's public URL (the front's), without a trailing slash.
    pub player_url: String,
    /// The Secrets Manager secret holding the OpenID Connect client secret.
    pub client_secret_arn: String,
    /// The Secrets Manager secret of the player's own session keys (random;
    /// the template generates it).
    pub session_keys_arn: String,
}

/// The function's configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub settings: PlaybackSettings,
    pub catalog_table: String,
    /// Cap on the audio bytes of a ranged (206) response.
    pub max_response_bytes: u64,
    /// The identity provider.
    pub oidc: OidcSettings,
    /// Who may play and list what.
    pub access: AccessPolicy,
    /// Browser sign-in (`None`: bearer tokens only).
    pub sign_in: Option<BrowserSignIn>,
    pub session: Duration,
    /// The scopes a browser sign-in asks for.
    pub scopes: String,
    /// The player front's secret (`None`: no viewer address is trusted; the
    /// audit records each request's `sourceIp`).
    pub front_secret_arn: Option<String>,
}

impl FromSettings for Config {
    fn from_settings<F: Fn(&str) -> Option<String>>(env: &Settings<F>) -> Result<Self, ConfigError> {
        let region = env.region()?;
        let org = env.org()?;
        let vault_bucket = env.vault_bucket()?;
        let catalog_table = env.catalog_table()?;
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
        let issuer = env.required(OIDC_ISSUER, "the identity provider's issuer URL (the tokens' iss)")?;
        if !allowed_url(&issuer) {
            return Err(ConfigError {
                name: OIDC_ISSUER,
                problem: format!("{issuer:?} is not an https URL (http only to 127.0.0.1 or localhost)"),
            });
        }
        let client_id = env.required(OIDC_CLIENT_ID, "the player's OpenID Connect client id")?;
        let list = |name: &str| -> Vec<String> {
            env.optional(name)
                .map(|v| v.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
                .unwrap_or_default()
        };
        let mut audiences = list(OIDC_AUDIENCES);
        if !audiences.contains(&client_id) {
            audiences.insert(0, client_id.clone());
        }
        let mut groups_claims = list(OIDC_GROUPS_CLAIMS);
        if groups_claims.is_empty() {
            groups_claims.push("groups".into());
        }
        let access = AccessPolicy::parse(
            PLAYBACK_ACCESS,
            &env.required(PLAYBACK_ACCESS, r#"the groups' grants as JSON, {"qa": ["calls"]} ({} lets nobody play)"#)?,
        )?;
        let player_url = env.optional(PLAYER_URL).map(|url| url.trim_end_matches('/').to_string());
        if let Some(url) = player_url.as_ref().filter(|url| !secure_origin(url)) {
            return Err(ConfigError {
                name: PLAYER_URL,
                problem: format!(
                    "{url:?} is not an https origin (http only to localhost, which browsers treat as secure; no path: \
                     the session cookie is a __Host- cookie, kept only when set Secure, for the whole origin)"
                ),
            });
        }
        let sign_in = match (player_url, env.optional(OIDC_CLIENT_SECRET_ARN)) {
            (None, None) => None,
            (Some(player_url), Some(client_secret_arn)) => Some(BrowserSignIn {
                player_url,
                client_secret_arn,
                session_keys_arn: env.required(
                    SESSION_KEYS_SECRET_ARN,
                    "the Secrets Manager ARN of the player's session keys (the template's PlayerSessionKeys)",
                )?,
            }),
            (Some(_), None) => {
                return Err(ConfigError {
                    name: OIDC_CLIENT_SECRET_ARN,
                    problem: "missing: browser sign-in (PLAYER_URL is set) needs the Secrets Manager ARN of the client secret".into(),
                })
            }
            (None, Some(_)) => {
                return Err(ConfigError {
                    name: PLAYER_URL,
                    problem: "missing: set it to the player's public URL (the sign-in's redirect goes to <PLAYER_URL>/auth/callback)".into(),
                })
            }
        };
        let session = env.number(SESSION_SECONDS, DEFAULT_SESSION_SECONDS, 300..=43_200, "a number of seconds")?;
        Ok(Self {
            oidc: OidcSettings { issuer, client_id, audiences, groups_claims, leeway: TOKEN_LEEWAY },
            access,
            sign_in,
            session: Duration::from_secs(session),
            scopes: env.optional(OIDC_SCOPES).unwrap_or_else(|| "openid email profile".into()),
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
            front_secret_arn: env.optional(PLAYER_FRONT_SECRET_ARN),
        })
    }
}

/// Whether the player's URL is one a browser keeps `__Host-` cookies for:
/// https, or http to `localhost` (a secure context in every browser), and
/// an origin alone: the cookie's path is `/`, so a player under a path
/// would send its session to every other application of that origin.
fn secure_origin(url: &str) -> bool {
    if url.split_once("://").is_some_and(|(_, rest)| rest.contains(['/', '?', '#'])) {
        return false;
    }
    match url.split_once("://") {
        Some(("https", rest)) => !rest.is_empty() && allowed_url(url),
        Some(("http", rest)) => {
            let host = rest.split(['/', '?']).next().unwrap_or_default();
            let host = host.rsplit_once(':').map_or(host, |(h, port)| {
                if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) {
                    h
                } else {
                    host
                }
            });
            host == "localhost"
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use vault::config::{AWS_REGION, CALLVAULT_ORG, CATALOG_TABLE, VAULT_BUCKET};

    fn env() -> HashMap<&'static str, String> {
        HashMap::from([
            (AWS_REGION, "us-east-1".to_string()),
            (CALLVAULT_ORG, "acme".to_string()),
            (VAULT_BUCKET, "acme-vault".to_string()),
            (CATALOG_TABLE, "acme-catalog".to_string()),
            (OIDC_ISSUER, "https://login.example.com/acme".to_string()),
            (OIDC_CLIENT_ID, "player".to_string()),
            (PLAYBACK_ACCESS, r#"{"qa": ["calls"]}"#.to_string()),
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
        assert_eq!(c.oidc.audiences, ["player"]);
        assert_eq!(c.oidc.groups_claims, ["groups"]);
        assert_eq!((c.sign_in, c.session), (None, Duration::from_secs(3600)));
    }

    #[test]
    fn browser_sign_in_needs_both_the_player_url_and_the_client_secret() {
        let mut e = env();
        e.insert(PLAYER_URL, "https://player.example.com/".into());
        assert_eq!(load(&e).unwrap_err().name, OIDC_CLIENT_SECRET_ARN);
        e.insert(OIDC_CLIENT_SECRET_ARN, "arn:aws:secretsmanager:us-east-1:1:secret:player".into());
        assert_eq!(load(&e).unwrap_err().name, SESSION_KEYS_SECRET_ARN, "never keys derived from the client secret");
        e.insert(SESSION_KEYS_SECRET_ARN, "arn:aws:secretsmanager:us-east-1:1:secret:keys".into());
        let c = load(&e).unwrap().sign_in.unwrap();
        assert_eq!(c.player_url, "https://player.example.com");
        assert_eq!(c.session_keys_arn, "arn:aws:secretsmanager:us-east-1:1:secret:keys");
        // A __Host- cookie needs a secure context: https, or localhost.
        e.insert(PLAYER_URL, "http://localhost:9000".into());
        assert_eq!(load(&e).unwrap().sign_in.unwrap().player_url, "http://localhost:9000");
        for insecure in [
            "http://127.0.0.1:9000/lambda-url/playback",
            "http://localhost.example.com",
            "https://",
            "https://apps.example.com/player",
        ] {
            e.insert(PLAYER_URL, insecure.into());
            assert_eq!(load(&e).unwrap_err().name, PLAYER_URL, "{insecure}");
        }
        e.remove(PLAYER_URL);
        assert_eq!(load(&e).unwrap_err().name, PLAYER_URL);
    }

    #[test]
    fn every_missing_setting_is_named() {
        for name in
            [AWS_REGION, CALLVAULT_ORG, VAULT_BUCKET, CATALOG_TABLE, OIDC_ISSUER, OIDC_CLIENT_ID, PLAYBACK_ACCESS]
        {
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
            (OIDC_ISSUER, "http://login.example.com"),
            (PLAYER_URL, "http://player.example.com"),
            (PLAYBACK_ACCESS, r#"{"qa": "calls"}"#),
            (SESSION_SECONDS, "10"),
        ] {
            let mut e = env();
            e.insert(name, value.to_string());
            let err = load(&e).unwrap_err();
            assert_eq!(err.name, name, "{value}");
            assert_eq!(err.code(), "config_invalid");
        }
    }
}
