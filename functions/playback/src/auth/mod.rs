//! Who is asking, and what they may play.
//!
//! Identity comes only from a verified token of the customer's identity
//! provider (OpenID Connect): a bearer token (tools: client-credentials
//! tokens), or the session cookie this function signed after it exchanged a
//! browser's authorization code itself. The Function URL's IAM request
//! context is the transport guard behind the front and is logged as the
//! caller, never taken as the person: a direct invoker writes it himself.

pub mod access;
#[cfg(any(test, feature = "testing"))]
pub mod issuer;
pub mod oidc;
pub mod provider;
pub mod session;
pub mod signin;

use crate::auth::access::AccessPolicy;

/// A person (or a tool) whose token verified.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    /// The token's `sub`.
    pub subject: String,
    /// `preferred_username`, `cognito:username`, `username` or `client_id`.
    pub username: Option<String>,
    pub email: Option<String>,
    /// Every group (or role, or scope) the token's configured claims list.
    pub groups: Vec<String>,
    /// The token's `jti` (a bearer token) or the session's id (a cookie).
    pub token_id: Option<String>,
    /// `bearer` or `session`.
    pub method: &'static str,
}

impl Identity {
    /// The groups of this identity that the policy grants anything: what a
    /// session cookie carries and the audit names.
    pub fn granting_groups(&self, policy: &AccessPolicy) -> Vec<String> {
        self.groups.iter().filter(|g| policy.names(g)).cloned().collect()
    }
}

/// Why a request has no identity. Each is answered with a fixed text; the
/// detail goes to the log only.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No bearer token and no session cookie.
    #[error("no bearer token and no session cookie")]
    NotSignedIn,
    /// A bearer token that did not verify.
    #[error("the bearer token was refused: {0}")]
    TokenRefused(String),
    /// A session cookie that is not ours, was altered, or has expired.
    #[error("the session cookie was refused: {0}")]
    SessionRefused(String),
    /// The identity provider's discovery, keys or token endpoint failed.
    #[error("the identity provider failed: {0}")]
    ProviderUnavailable(String),
    /// A sign-in that cannot finish (state, code, the ID token).
    #[error("the sign-in failed: {0}")]
    SignIn(String),
    /// Browser sign-in is not configured (no player URL or client secret).
    #[error("browser sign-in is not configured: {0}")]
    SignInNotConfigured(&'static str),
}

impl AuthError {
    /// The stable code answered.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotSignedIn => "not_signed_in",
            Self::TokenRefused(_) => "token_invalid",
            Self::SessionRefused(_) => "session_invalid",
            Self::ProviderUnavailable(_) => "identity_provider_unavailable",
            Self::SignIn(_) => "sign_in_failed",
            Self::SignInNotConfigured(_) => "sign_in_not_configured",
        }
    }

    /// The fixed text answered.
    pub fn message(&self) -> &'static str {
        match self {
            Self::NotSignedIn => {
                "sign in first: send a bearer token from the identity provider, or sign in to the player"
            }
            Self::TokenRefused(_) => {
                "the bearer token was refused (issuer, audience, lifetime or signature): get a new token from the identity provider"
            }
            Self::SessionRefused(_) => "your session has ended or is not valid: sign in again",
            Self::ProviderUnavailable(_) => "the identity provider cannot be reached right now; retry in a moment",
            Self::SignIn(_) => "the sign-in could not be completed: start it again from the player",
            Self::SignInNotConfigured(_) => {
                "browser sign-in is not configured for this deployment: the operator sets PlayerUrl and OidcClientSecretArn"
            }
        }
    }
}

/// URL-safe base64 without padding, as JWTs and PKCE use it.
pub fn b64url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).ok()
}

/// `n` random bytes, URL-safe base64.
pub(crate) fn random_token(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random source");
    b64url(&bytes)
}

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}
