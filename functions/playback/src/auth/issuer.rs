//! An identity provider in memory, for tests and benchmarks: its discovery
//! document, a JWKS with an RSA (RS256) and an EC (ES256) key generated at
//! start, tokens it signs with any header and claims a test wants, and a
//! token endpoint that exchanges the codes it issued (PKCE checked, the
//! client authenticated). The real code path runs over it; only HTTP does
//! not.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde_json::{json, Value};

use crate::auth::provider::{IdentityProvider, ProviderError};
use crate::auth::{b64url, now_secs, random_token};

/// A code issued to a browser, waiting for its exchange.
struct Grant {
    claims: Value,
    challenge: String,
    redirect_uri: String,
}

/// The in-memory issuer.
pub struct TestIssuer {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    rsa: RsaKeyPair,
    pub rsa_kid: String,
    ec: EcdsaKeyPair,
    pub ec_kid: String,
    /// The JWKS served now (a test may rotate or empty it).
    pub served: Mutex<Value>,
    /// How many times the JWKS was fetched.
    pub jwks_fetches: AtomicU32,
    codes: Mutex<HashMap<String, Grant>>,
}

/// The INTEGERs of a DER SEQUENCE (an RSA public key: n, e).
fn der_integers(der: &[u8]) -> Vec<Vec<u8>> {
    fn len(bytes: &[u8], at: &mut usize) -> usize {
        let first = bytes[*at];
        *at += 1;
        if first < 0x80 {
            return first as usize;
        }
        let n = (first & 0x7f) as usize;
        let mut len = 0;
        for _ in 0..n {
            len = (len << 8) | bytes[*at] as usize;
            *at += 1;
        }
        len
    }
    let mut at = 1;
    let _ = len(der, &mut at);
    let mut out = Vec::new();
    while at < der.len() && der[at] == 0x02 {
        at += 1;
        let n = len(der, &mut at);
        let mut value = &der[at..at + n];
        while value.len() > 1 && value[0] == 0 {
            value = &value[1..];
        }
        out.push(value.to_vec());
        at += n;
    }
    out
}

impl TestIssuer {
    /// An issuer at `issuer` for the client `client_id`.
    pub fn new(issuer: &str, client_id: &str) -> Arc<Self> {
        let rsa = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("an RSA key");
        let ec = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).expect("an EC key");
        let this = Self {
            issuer: issuer.to_string(),
            client_id: client_id.to_string(),
            client_secret: random_token(24),
            rsa,
            rsa_kid: format!("rsa-{}", random_token(6)),
            ec,
            ec_kid: format!("ec-{}", random_token(6)),
            served: Mutex::new(Value::Null),
            jwks_fetches: AtomicU32::new(0),
            codes: Mutex::new(HashMap::new()),
        };
        *this.served.lock().expect("jwks") = this.jwks();
        Arc::new(this)
    }

    /// The JWKS of both keys.
    pub fn jwks(&self) -> Value {
        let ints = der_integers(self.rsa.public_key().as_ref());
        let point = self.ec.public_key().as_ref();
        json!({ "keys": [
            { "kty": "RSA", "kid": self.rsa_kid, "use": "sig", "alg": "RS256", "n": b64url(&ints[0]), "e": b64url(&ints[1]) },
            { "kty": "EC", "kid": self.ec_kid, "use": "sig", "alg": "ES256", "crv": "P-256",
              "x": b64url(&point[1..33]), "y": b64url(&point[33..65]) },
        ]})
    }

    /// The RSA key's modulus: what an HS256 forgery signs with.
    pub fn rsa_modulus(&self) -> Vec<u8> {
        der_integers(self.rsa.public_key().as_ref()).remove(0)
    }

    /// Claims of a valid token for `sub` in `groups`, five minutes long.
    pub fn claims(&self, sub: &str, groups: &[&str]) -> Value {
        let now = now_secs();
        json!({
            "iss": self.issuer, "aud": self.client_id, "sub": sub, "preferred_username": sub,
            "email": format!("{sub}@example.com"), "groups": groups,
            "iat": now, "nbf": now, "exp": now + 300, "jti": random_token(9),
        })
    }

    /// A token of `claims` signed RS256 with the RSA key.
    pub fn token(&self, claims: &Value) -> String {
        self.sign(&json!({ "alg": "RS256", "typ": "JWT", "kid": self.rsa_kid }), claims)
    }

    /// A token with any header: RS256 and ES256 signed with the issuer's
    /// keys, anything else unsigned (an empty signature).
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64url(header.to_string().as_bytes()), b64url(claims.to_string().as_bytes()));
        let rng = SystemRandom::new();
        let signature = match header["alg"].as_str() {
            Some("RS256") => {
                let mut sig = vec![0u8; self.rsa.public_modulus_len()];
                self.rsa.sign(&signature::RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig).expect("RSA signature");
                sig
            }
            Some("ES256") => self.ec.sign(&rng, input.as_bytes()).expect("EC signature").as_ref().to_vec(),
            _ => Vec::new(),
        };
        format!("{input}.{}", b64url(&signature))
    }

    /// What a browser gets back after signing in as `claims` (with the
    /// PKCE `challenge`, for `redirect_uri`): a code.
    pub fn issue_code(&self, claims: Value, challenge: &str, redirect_uri: &str) -> String {
        let code = random_token(16);
        let grant = Grant { claims, challenge: challenge.to_string(), redirect_uri: redirect_uri.to_string() };
        self.codes.lock().expect("codes").insert(code.clone(), grant);
        code
    }
}

impl IdentityProvider for Arc<TestIssuer> {
    async fn get_json(&self, url: &str) -> Result<Value, ProviderError> {
        let base = &self.issuer;
        if url == format!("{base}/.well-known/openid-configuration") {
            return Ok(json!({
                "issuer": base, "authorization_endpoint": format!("{base}/authorize"),
                "token_endpoint": format!("{base}/token"), "jwks_uri": format!("{base}/jwks"),
            }));
        }
        if url == format!("{base}/jwks") {
            self.jwks_fetches.fetch_add(1, Ordering::Relaxed);
            return Ok(self.served.lock().expect("jwks").clone());
        }
        Err(ProviderError { url: url.into(), detail: "HTTP 404".into() })
    }

    async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
    ) -> Result<(u16, Value), ProviderError> {
        if url != format!("{}/token", self.issuer) {
            return Err(ProviderError { url: url.into(), detail: "HTTP 404".into() });
        }
        let field = |name: &str| form.iter().find(|(k, _)| *k == name).map(|(_, v)| *v).unwrap_or_default();
        if basic != Some((self.client_id.as_str(), self.client_secret.as_str())) {
            return Ok((401, json!({ "error": "invalid_client" })));
        }
        let Some(grant) = self.codes.lock().expect("codes").remove(field("code")) else {
            return Ok((400, json!({ "error": "invalid_grant" })));
        };
        let challenge =
            b64url(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, field("code_verifier").as_bytes()).as_ref());
        if challenge != grant.challenge || field("redirect_uri") != grant.redirect_uri {
            return Ok((400, json!({ "error": "invalid_grant" })));
        }
        Ok((200, json!({ "id_token": self.token(&grant.claims), "access_token": "opaque", "token_type": "Bearer" })))
    }
}
