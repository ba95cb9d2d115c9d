//! The AWS calls this crate makes itself (the vault's are in `vault::aws`):
//! Secrets Manager, read once at start: the OpenID Connect client secret
//! (the secret string itself, or a JSON object with `client_secret`) and
//! the player's session-key secret (its current and previous versions).

use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use zeroize::Zeroizing;

/// The IAM actions this adapter's calls need (tests/tests/iam.rs).
pub const AWS_CALLS: &[&str] = &["secretsmanager:GetSecretValue"];

/// The secret could not be read or holds no client secret.
#[derive(Debug, thiserror::Error)]
#[error("the OpenID Connect client secret {arn} cannot be used: {detail} (the role needs secretsmanager:GetSecretValue on it; it holds the secret, or {{\"client_secret\": \"...\"}})")]
pub struct SecretError {
    pub arn: String,
    pub detail: String,
}

impl SecretError {
    pub fn code(&self) -> &'static str {
        "client_secret_unavailable"
    }
}

/// Secrets Manager, for the client secret.
pub struct ClientSecrets {
    client: aws_sdk_secretsmanager::Client,
}

impl ClientSecrets {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self { client: aws_sdk_secretsmanager::Client::new(config) }
    }

    /// The client secret held by `arn`.
    pub async fn client_secret(&self, arn: &str) -> Result<Zeroizing<String>, SecretError> {
        let error = |detail: String| SecretError { arn: arn.to_string(), detail };
        let out = self.client.get_secret_value().secret_id(arn).send().await.map_err(|e| error(map_error(&e)))?;
        let text = Zeroizing::new(out.secret_string().unwrap_or_default().to_string());
        parse(&text).ok_or_else(|| error("it holds no client secret".into()))
    }
}

/// The session-key secret was unreadable or too short.
#[derive(Debug, thiserror::Error)]
#[error("the player's session-key secret {arn} cannot be used: {detail} (the role needs secretsmanager:GetSecretValue on it; the template generates it, 64 random characters)")]
pub struct SessionKeysError {
    pub arn: String,
    pub detail: String,
}

impl SessionKeysError {
    pub fn code(&self) -> &'static str {
        "session_keys_unavailable"
    }
}

/// The fewest characters a version of the session-key secret may hold.
pub const MIN_SESSION_KEY_CHARS: usize = 32;

impl ClientSecrets {
    /// The session-key secret's versions, current first: `AWSCURRENT`, then
    /// `AWSPREVIOUS` when there is one (after a rotation, so that cookies
    /// and cursors sealed before it still open).
    pub async fn session_keys(&self, arn: &str) -> Result<Vec<Zeroizing<String>>, SessionKeysError> {
        let error = |detail: String| SessionKeysError { arn: arn.to_string(), detail };
        let mut versions = Vec::with_capacity(2);
        for stage in ["AWSCURRENT", "AWSPREVIOUS"] {
            match self.client.get_secret_value().secret_id(arn).version_stage(stage).send().await {
                Ok(out) => {
                    let text = Zeroizing::new(out.secret_string().unwrap_or_default().trim().to_string());
                    if text.chars().count() < MIN_SESSION_KEY_CHARS {
                        return Err(error(format!(
                            "its {stage} version holds fewer than {MIN_SESSION_KEY_CHARS} characters"
                        )));
                    }
                    versions.push(text);
                }
                // No previous version yet: the secret was never rotated.
                Err(e)
                    if stage == "AWSPREVIOUS"
                        && e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {}
                Err(e) => return Err(error(map_error(&e))),
            }
        }
        Ok(versions)
    }
}

/// The front's secret was unreadable or too short.
#[derive(Debug, thiserror::Error)]
#[error("the player front's secret {arn} cannot be used: {detail} (the role needs secretsmanager:GetSecretValue on it; the template generates it, 48 random characters)")]
pub struct FrontSecretError {
    pub arn: String,
    pub detail: String,
}

impl FrontSecretError {
    pub fn code(&self) -> &'static str {
        "front_secret_unavailable"
    }
}

impl ClientSecrets {
    /// The front's secret's versions (`AWSCURRENT`, and `AWSPREVIOUS` while
    /// a rotation reaches the distribution): the same shape as the session
    /// keys.
    pub async fn front_secret(&self, arn: &str) -> Result<Vec<Zeroizing<String>>, FrontSecretError> {
        self.session_keys(arn).await.map_err(|e| FrontSecretError { arn: e.arn, detail: e.detail })
    }
}

/// A Secrets Manager error, in words: its code and message.
fn map_error<E: ProvideErrorMetadata + std::fmt::Display>(e: &E) -> String {
    format!("{}: {}", e.code().unwrap_or("request failed"), e.message().unwrap_or(&e.to_string()))
}

/// The client secret in a secret string.
pub fn parse(text: &str) -> Option<Zeroizing<String>> {
    let text = text.trim();
    if text.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(text).ok()?;
        let secret = value.get("client_secret")?.as_str()?;
        return (!secret.is_empty()).then(|| Zeroizing::new(secret.to_string()));
    }
    (!text.is_empty()).then(|| Zeroizing::new(text.to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_plain_or_json_secret_string_gives_the_client_secret() {
        assert_eq!(super::parse(" s3cret\n").as_deref().map(String::as_str), Some("s3cret"));
        assert_eq!(super::parse(r#"{"client_secret": "abc", "other": 1}"#).as_deref().map(String::as_str), Some("abc"));
        for none in ["", "{}", r#"{"client_secret": ""}"#, "{not json"] {
            assert!(super::parse(none).is_none(), "{none}");
        }
    }
}
