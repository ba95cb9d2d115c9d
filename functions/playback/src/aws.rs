//! The AWS calls this crate makes itself (the vault's are in `vault::aws`):
//! Secrets Manager, for the OpenID Connect client secret, read once at
//! start: the secret string itself, or a JSON object with `client_secret`.

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
