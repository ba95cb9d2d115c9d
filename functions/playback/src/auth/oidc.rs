//! OpenID Connect: the provider's discovery document and signing keys
//! (JWKS, cached, refreshed by `kid` when a key rotates), token
//! verification, and the authorization code exchange of a browser sign-in.
//!
//! A token verifies when its header names RS256 or ES256 and a `kid` of the
//! issuer's JWKS (whose `alg`, when given, is the same), its signature
//! verifies with that key (aws-lc-rs through `jsonwebtoken`), and its `iss`
//! is the issuer, its `aud` (or, without one, its `client_id`) one of the
//! audiences, its `exp` and `nbf` hold within a small leeway. `alg: none`,
//! HMAC algorithms (a public key used as an HMAC secret) and unknown `kid`s
//! are refused.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use crate::auth::provider::IdentityProvider;
use crate::auth::{AuthError, Identity};

/// How the function knows the identity provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcSettings {
    /// The `iss` every token carries; discovery is at
    /// `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// This player's OpenID Connect client id.
    pub client_id: String,
    /// The `aud` values accepted (the client id, and the ids of tools'
    /// clients or an API audience).
    pub audiences: Vec<String>,
    /// The claims that list a person's groups (`groups`, `cognito:groups`,
    /// `roles`, `scope`...): arrays, or space-separated strings.
    pub groups_claims: Vec<String>,
    /// Leeway on `exp` and `nbf`.
    pub leeway: Duration,
}

/// What discovery says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderMetadata {
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
}

/// A JWKS is fetched again after this even when no `kid` is missing.
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(3600);
/// An unknown `kid` fetches the JWKS again at most this often: a flood of
/// forged `kid`s cannot turn into a flood of requests to the provider.
pub const JWKS_MIN_REFRESH: Duration = Duration::from_secs(30);

struct VerifyingKey {
    key: DecodingKey,
    /// The JWK's own `alg`, when it says one.
    alg: Option<Algorithm>,
}

#[derive(Default)]
struct Keys {
    metadata: Option<ProviderMetadata>,
    /// The last discovery that failed: not asked again within
    /// [`JWKS_MIN_REFRESH`].
    discovery_failed: Option<(Instant, String)>,
    by_kid: HashMap<String, Arc<VerifyingKey>>,
    fetched: Option<Instant>,
    attempted: Option<Instant>,
}

/// The verifier and client of one issuer.
pub struct Oidc<P> {
    provider: P,
    settings: OidcSettings,
    keys: tokio::sync::Mutex<Keys>,
}

/// The algorithms accepted: asymmetric only.
pub const ALGORITHMS: [Algorithm; 2] = [Algorithm::RS256, Algorithm::ES256];

/// Whether a URL may be called: HTTPS, or HTTP to loopback (the local issuer).
pub fn allowed_url(url: &str) -> bool {
    let loopback = |rest: &str| {
        let host = rest.split(['/', '?']).next().unwrap_or_default();
        let host = host
            .rsplit_once(':')
            .map_or(host, |(h, port)| if port.bytes().all(|b| b.is_ascii_digit()) { h } else { host });
        matches!(host, "127.0.0.1" | "localhost" | "[::1]")
    };
    match url.split_once("://") {
        Some(("https", rest)) => !rest.is_empty(),
        Some(("http", rest)) => loopback(rest),
        _ => false,
    }
}

impl<P: IdentityProvider> Oidc<P> {
    pub fn new(provider: P, settings: OidcSettings) -> Self {
        Self { provider, settings, keys: Default::default() }
    }

    pub fn settings(&self) -> &OidcSettings {
        &self.settings
    }

    /// The provider's endpoints, discovered once.
    pub async fn metadata(&self) -> Result<ProviderMetadata, AuthError> {
        let mut keys = self.keys.lock().await;
        self.discover(&mut keys).await
    }

    async fn discover(&self, keys: &mut Keys) -> Result<ProviderMetadata, AuthError> {
        if let Some(m) = &keys.metadata {
            return Ok(m.clone());
        }
        if let Some((at, why)) = &keys.discovery_failed {
            if at.elapsed() < JWKS_MIN_REFRESH {
                return Err(AuthError::ProviderUnavailable(format!("{why} (asked again in at most 30 s)")));
            }
        }
        let found = self.fetch_metadata().await;
        match &found {
            Ok(m) => keys.metadata = Some(m.clone()),
            Err(e) => keys.discovery_failed = Some((Instant::now(), e.to_string())),
        }
        found
    }

    async fn fetch_metadata(&self) -> Result<ProviderMetadata, AuthError> {
        let url = format!("{}/.well-known/openid-configuration", self.settings.issuer.trim_end_matches('/'));
        let doc = self.provider.get_json(&url).await.map_err(|e| AuthError::ProviderUnavailable(e.to_string()))?;
        let field = |name: &str| -> Result<String, AuthError> {
            let value = doc.get(name).and_then(Value::as_str).unwrap_or_default();
            if !allowed_url(value) {
                return Err(AuthError::ProviderUnavailable(format!(
                    "{url}: {name} {value:?} is not an https URL (or http to loopback)"
                )));
            }
            Ok(value.to_string())
        };
        // OpenID Connect Discovery 4.3: the document's issuer is the issuer.
        if doc.get("issuer").and_then(Value::as_str) != Some(self.settings.issuer.as_str()) {
            return Err(AuthError::ProviderUnavailable(format!(
                "{url}: the document's issuer is {:?}, not {:?}",
                doc.get("issuer"),
                self.settings.issuer
            )));
        }
        Ok(ProviderMetadata {
            authorization_endpoint: field("authorization_endpoint")?,
            token_endpoint: field("token_endpoint")?,
            jwks_uri: field("jwks_uri")?,
        })
    }

    /// Fetches the JWKS into `keys`.
    async fn refresh(&self, keys: &mut Keys) -> Result<(), AuthError> {
        keys.attempted = Some(Instant::now());
        let metadata = self.discover(keys).await?;
        let doc = self
            .provider
            .get_json(&metadata.jwks_uri)
            .await
            .map_err(|e| AuthError::ProviderUnavailable(e.to_string()))?;
        let set: JwkSet = serde_json::from_value(doc)
            .map_err(|e| AuthError::ProviderUnavailable(format!("{}: not a JWKS ({e})", metadata.jwks_uri)))?;
        let mut by_kid = HashMap::new();
        for jwk in &set.keys {
            // Keys without an id, for encryption, or of a kind we do not
            // verify with (HMAC secrets never belong in a JWKS) are skipped.
            let Some(kid) = jwk.common.key_id.clone() else { continue };
            if matches!(jwk.common.public_key_use, Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)) {
                continue;
            }
            if matches!(jwk.algorithm, jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_)) {
                continue;
            }
            // A key that names an algorithm verifies only that one, and only
            // when it is one we accept.
            let alg = match jwk.common.key_algorithm {
                None => None,
                Some(jsonwebtoken::jwk::KeyAlgorithm::RS256) => Some(Algorithm::RS256),
                Some(jsonwebtoken::jwk::KeyAlgorithm::ES256) => Some(Algorithm::ES256),
                Some(_) => continue,
            };
            let Ok(key) = DecodingKey::from_jwk(jwk) else { continue };
            by_kid.insert(kid, Arc::new(VerifyingKey { key, alg }));
        }
        keys.by_kid = by_kid;
        keys.fetched = Some(Instant::now());
        Ok(())
    }

    /// The key with this `kid`: the JWKS is fetched again when the kid is
    /// unknown or the keys are old, at most every [`JWKS_MIN_REFRESH`]
    /// (through an outage, the keys known keep verifying and the provider
    /// is asked at that pace, not on every request).
    async fn key(&self, kid: &str) -> Result<Arc<VerifyingKey>, AuthError> {
        let mut keys = self.keys.lock().await;
        let stale = keys.fetched.is_none_or(|at| at.elapsed() >= JWKS_MAX_AGE);
        let may_refresh = keys.attempted.is_none_or(|at| at.elapsed() >= JWKS_MIN_REFRESH);
        if (stale || !keys.by_kid.contains_key(kid)) && may_refresh {
            if let Err(e) = self.refresh(&mut keys).await {
                // Keys already known keep verifying through a provider outage.
                if keys.by_kid.is_empty() || !keys.by_kid.contains_key(kid) {
                    return Err(e);
                }
                tracing::warn!(code = e.code(), "keeping the cached JWKS: {e}");
            }
        }
        keys.by_kid.get(kid).cloned().ok_or_else(|| AuthError::TokenRefused(format!("unknown kid {kid:?}")))
    }

    /// The claims of a token that verifies; `nonce`, when given, must be
    /// the token's (an ID token of this sign-in).
    pub async fn verify(&self, token: &str, nonce: Option<&str>) -> Result<Map<String, Value>, AuthError> {
        let refused = |why: String| AuthError::TokenRefused(why);
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| refused(format!("the header is malformed or its algorithm unsupported ({e})")))?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(refused(format!("algorithm {:?} is not accepted (RS256, ES256)", header.alg)));
        }
        let kid = header.kid.as_deref().ok_or_else(|| refused("the header names no kid".into()))?;
        let key = self.key(kid).await?;
        if key.alg.is_some_and(|a| a != header.alg) {
            return Err(refused(format!("key {kid:?} is for {:?}, not {:?}", key.alg, header.alg)));
        }
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.leeway = self.settings.leeway.as_secs();
        // The audience is checked below: an access token may carry
        // `client_id` instead (Cognito).
        validation.validate_aud = false;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| refused(format!("{e}")))?;
        let claims = data.claims;
        let audiences = &self.settings.audiences;
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => audiences.contains(a),
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(|a| audiences.iter().any(|x| x == a)),
            None => claims.get("client_id").and_then(Value::as_str).is_some_and(|c| audiences.iter().any(|x| x == c)),
            Some(_) => false,
        };
        if !aud_ok {
            return Err(refused(format!(
                "audience {:?} is none of {audiences:?}",
                claims.get("aud").or(claims.get("client_id"))
            )));
        }
        if let Some(nonce) = nonce {
            if claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
                return Err(refused("the ID token's nonce is not this sign-in's".into()));
            }
        }
        Ok(claims)
    }

    /// Who the claims name.
    pub fn identity(&self, claims: &Map<String, Value>, method: &'static str) -> Identity {
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_string);
        let mut groups = Vec::new();
        for claim in &self.settings.groups_claims {
            match claims.get(claim) {
                Some(Value::Array(list)) => groups.extend(list.iter().filter_map(Value::as_str).map(str::to_string)),
                Some(Value::String(s)) => groups.extend(s.split_whitespace().map(str::to_string)),
                _ => {}
            }
        }
        groups.sort();
        groups.dedup();
        Identity {
            subject: text("sub").unwrap_or_default(),
            username: ["preferred_username", "cognito:username", "username", "name", "client_id"]
                .iter()
                .find_map(|c| text(c)),
            email: text("email"),
            groups,
            token_id: text("jti"),
            method,
        }
    }

    /// Exchanges a browser's authorization code (with its PKCE verifier) at
    /// the token endpoint, authenticating as this client, and verifies the
    /// ID token it answers against the sign-in's nonce.
    pub async fn exchange_code(
        &self,
        code: &str,
        verifier: &str,
        redirect_uri: &str,
        nonce: &str,
        client_secret: &str,
    ) -> Result<Map<String, Value>, AuthError> {
        let metadata = self.metadata().await?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", verifier),
            ("client_id", self.settings.client_id.as_str()),
        ];
        let (status, answer) = self
            .provider
            .post_form(&metadata.token_endpoint, &form, Some((&self.settings.client_id, client_secret)))
            .await
            .map_err(|e| AuthError::ProviderUnavailable(e.to_string()))?;
        if status != 200 {
            let error = answer.get("error").and_then(Value::as_str).unwrap_or("no error code");
            return Err(AuthError::SignIn(format!("the token endpoint answered HTTP {status} ({error})")));
        }
        let id_token = answer
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or_else(|| AuthError::SignIn("the token endpoint answered no id_token".into()))?;
        self.verify(id_token, Some(nonce)).await.map_err(|e| AuthError::SignIn(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http_urls_are_called() {
        for ok in [
            "https://login.example.com/oauth2/token",
            "http://127.0.0.1:8080/jwks",
            "http://localhost/x",
            "http://[::1]:9/x",
        ] {
            assert!(allowed_url(ok), "{ok}");
        }
        for bad in ["http://example.com/jwks", "http://127.0.0.1.evil.com/x", "ftp://x", "", "https://", "jwks"] {
            assert!(!allowed_url(bad), "{bad}");
        }
    }
}
