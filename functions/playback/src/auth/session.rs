//! Cookies this function signs: the session (who, which groups, until
//! when) and the short-lived sign-in state (PKCE verifier, state, nonce).
//! HMAC-SHA256 (aws-lc-rs) under a key derived from the OpenID Connect
//! client secret with HKDF; the purpose is bound into each MAC, so one kind
//! of cookie is never accepted as another. Nothing in them is a token.

use aws_lc_rs::{hkdf, hmac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::auth::{b64url, b64url_decode};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "callvault_session";
/// The sign-in state cookie's name (lives for one sign-in).
pub const LOGIN_COOKIE: &str = "callvault_login";

/// Who is signed in, for how long.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The person's groups that the access policy names.
    pub groups: Vec<String>,
    /// The ID token's `jti` (or a random id when it has none).
    pub sid: String,
    pub iat: u64,
    pub exp: u64,
}

/// A sign-in in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginState {
    pub state: String,
    pub nonce: String,
    /// The PKCE code verifier.
    pub verifier: String,
    pub exp: u64,
}

/// The signing key.
pub struct CookieKey(hmac::Key);

impl CookieKey {
    /// The key derived from the client secret and the client id.
    pub fn derive(secret: &[u8], client_id: &str) -> Self {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, client_id.as_bytes());
        let prk = salt.extract(secret);
        let okm =
            prk.expand(&[b"callvault player cookies v1"], hmac::HMAC_SHA256).expect("HKDF output of one hash length");
        Self(hmac::Key::from(okm))
    }

    /// `payload.mac`, both URL-safe base64.
    pub fn seal<T: Serialize>(&self, purpose: &str, value: &T) -> String {
        let payload = b64url(&serde_json::to_vec(value).expect("a cookie payload serialises"));
        let tag = hmac::sign(&self.0, format!("{purpose}.{payload}").as_bytes());
        format!("{payload}.{}", b64url(tag.as_ref()))
    }

    /// The value of a cookie this key sealed for `purpose`, or why not.
    pub fn open<T: DeserializeOwned>(&self, purpose: &str, cookie: &str) -> Result<T, &'static str> {
        let (payload, tag) = cookie.split_once('.').ok_or("not a signed cookie")?;
        let tag = b64url_decode(tag).ok_or("not a signed cookie")?;
        hmac::verify(&self.0, format!("{purpose}.{payload}").as_bytes(), &tag)
            .map_err(|_| "its signature does not verify")?;
        let bytes = b64url_decode(payload).ok_or("not a signed cookie")?;
        serde_json::from_slice(&bytes).map_err(|_| "its content is not a session")
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').map(str::trim).find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session {
            sub: "u-1".into(),
            name: Some("qa.anna".into()),
            email: None,
            groups: vec!["qa".into()],
            sid: "s-1".into(),
            iat: 1,
            exp: 2,
        }
    }

    #[test]
    fn a_sealed_session_opens_only_with_its_key_and_purpose_and_unaltered() {
        let key = CookieKey::derive(b"client secret", "player");
        let sealed = key.seal("session", &session());
        assert_eq!(key.open::<Session>("session", &sealed), Ok(session()));
        assert!(key.open::<Session>("login", &sealed).is_err(), "a session is never a sign-in state");
        assert!(CookieKey::derive(b"other secret", "player").open::<Session>("session", &sealed).is_err());
        assert!(CookieKey::derive(b"client secret", "other").open::<Session>("session", &sealed).is_err());
        let (payload, tag) = sealed.split_once('.').unwrap();
        let mut forged = session();
        forged.groups = vec!["supervisors".into()];
        let forged_payload = b64url(&serde_json::to_vec(&forged).unwrap());
        assert!(key.open::<Session>("session", &format!("{forged_payload}.{tag}")).is_err());
        assert!(key.open::<Session>("session", payload).is_err());
        assert!(key.open::<Session>("session", "").is_err());
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let header = "a=1; callvault_session=xyz.abc; callvault_session_old=no";
        assert_eq!(cookie_value(header, SESSION_COOKIE), Some("xyz.abc"));
        assert_eq!(cookie_value("callvault_session_old=no", SESSION_COOKIE), None);
        assert_eq!(cookie_value("", SESSION_COOKIE), None);
    }
}
