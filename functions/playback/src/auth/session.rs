//! Cookies this function signs: the session (who, which groups, since and
//! until when) and the short-lived sign-in state (PKCE verifier, state,
//! nonce). HMAC-SHA256 (aws-lc-rs) under keys of the player's own: HKDF
//! from the session-key secret the template generates in Secrets Manager
//! (random, read once at start), never from the identity provider's client
//! secret, which others may read (its administrators, whoever may describe
//! the client). The purpose is bound into each MAC, so one kind of cookie is
//! never accepted as another. Nothing in them is a token. The secret's
//! previous version (`AWSPREVIOUS`) still opens what the current one did not
//! seal, so a rotation signs nobody out.

use aws_lc_rs::{aead, hkdf, hmac};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::auth::{b64url, b64url_decode};

/// The session cookie's name. `__Host-`: the browser keeps it only if it
/// was set Secure, with `Path=/` and no `Domain`, by the player's own
/// origin, so no sibling subdomain can plant one that wins.
pub const SESSION_COOKIE: &str = "__Host-callvault_session";
/// The sign-in state cookie's name (lives for one sign-in), `__Host-` too.
pub const LOGIN_COOKIE: &str = "__Host-callvault_login";

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

/// HKDF's pseudo-random key from one version of the session-key secret:
/// what the cookie and the cursor keys are expanded from.
fn session_prk(secret: &[u8]) -> hkdf::Prk {
    hkdf::Salt::new(hkdf::HKDF_SHA256, b"callvault player session keys v2").extract(secret)
}

/// The signing keys: the first signs, any of them verifies.
pub struct CookieKey(Vec<hmac::Key>);

impl CookieKey {
    /// The keys of the session-key secret's versions, current first.
    pub fn from_secrets(versions: &[&[u8]]) -> Self {
        Self(
            versions
                .iter()
                .map(|secret| {
                    let prk = session_prk(secret);
                    let okm = prk
                        .expand(&[b"callvault player cookies v2"], hmac::HMAC_SHA256)
                        .expect("HKDF output of one hash length");
                    hmac::Key::from(okm)
                })
                .collect(),
        )
    }

    /// `payload.mac`, both URL-safe base64.
    pub fn seal<T: Serialize>(&self, purpose: &str, value: &T) -> String {
        let payload = b64url(&serde_json::to_vec(value).expect("a cookie payload serialises"));
        let key = self.0.first().expect("a cookie key has a current version");
        let tag = hmac::sign(key, format!("{purpose}.{payload}").as_bytes());
        format!("{payload}.{}", b64url(tag.as_ref()))
    }

    /// The value of a cookie this key sealed for `purpose`, or why not.
    pub fn open<T: DeserializeOwned>(&self, purpose: &str, cookie: &str) -> Result<T, &'static str> {
        let (payload, tag) = cookie.split_once('.').ok_or("not a signed cookie")?;
        let tag = b64url_decode(tag).ok_or("not a signed cookie")?;
        let signed = format!("{purpose}.{payload}");
        if !self.0.iter().any(|key| hmac::verify(key, signed.as_bytes(), &tag).is_ok()) {
            return Err("its signature does not verify");
        }
        let bytes = b64url_decode(payload).ok_or("not a signed cookie")?;
        serde_json::from_slice(&bytes).map_err(|_| "its content is not a session")
    }
}

/// The list's cursors, encrypted (AES-256-GCM): a cursor is the catalog's
/// position, which can name a recording the person may not see (the last
/// row read, dropped by a prefix grant), so it leaves the function only
/// sealed, bound to the recording type it pages through.
pub struct CursorKey(Vec<aead::LessSafeKey>);

/// HKDF output of a given length.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

impl CursorKey {
    /// The keys of the session-key secret's versions, current first
    /// (cursors good in every container of the deployment, and across a
    /// rotation).
    pub fn from_secrets(versions: &[&[u8]]) -> Self {
        Self(
            versions
                .iter()
                .map(|secret| {
                    let mut key = zeroize::Zeroizing::new([0u8; 32]);
                    session_prk(secret)
                        .expand(&[b"callvault player cursors v2"], Len(32))
                        .and_then(|okm| okm.fill(&mut key[..]))
                        .expect("HKDF output of 32 bytes");
                    Self::key(&key)
                })
                .collect(),
        )
    }

    /// A key of this container only (no session-key secret: bearer tokens
    /// only); a cursor from another container is refused and the list
    /// starts over.
    pub fn random() -> Self {
        let mut key = zeroize::Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(&mut key[..]).expect("the system random source");
        Self(vec![Self::key(&key)])
    }

    fn key(key: &[u8; 32]) -> aead::LessSafeKey {
        aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_256_GCM, key).expect("a 32-byte key"))
    }

    /// `cursor` sealed for paging through `recording_type`.
    pub fn seal(&self, recording_type: &str, cursor: &str) -> String {
        let mut nonce = [0u8; aead::NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).expect("the system random source");
        let mut sealed = cursor.as_bytes().to_vec();
        let key = self.0.first().expect("a cursor key has a current version");
        key.seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::from(recording_type.as_bytes()),
            &mut sealed,
        )
        .expect("a cursor seals");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        b64url(&out)
    }

    /// The cursor sealed for `recording_type`, or `None`.
    pub fn open(&self, recording_type: &str, sealed: &str) -> Option<String> {
        let bytes = b64url_decode(sealed)?;
        if bytes.len() < aead::NONCE_LEN + aead::AES_256_GCM.tag_len() {
            return None;
        }
        let (nonce, rest) = bytes.split_at(aead::NONCE_LEN);
        let nonce: [u8; aead::NONCE_LEN] = nonce.try_into().ok()?;
        let nonce = || aead::Nonce::assume_unique_for_key(nonce);
        self.0.iter().find_map(|key| {
            let mut rest = rest.to_vec();
            let plain = key.open_in_place(nonce(), aead::Aad::from(recording_type.as_bytes()), &mut rest).ok()?;
            String::from_utf8(plain.to_vec()).ok()
        })
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
        let key = CookieKey::from_secrets(&[b"session key secret"]);
        let sealed = key.seal("session", &session());
        assert_eq!(key.open::<Session>("session", &sealed), Ok(session()));
        assert!(key.open::<Session>("login", &sealed).is_err(), "a session is never a sign-in state");
        assert!(CookieKey::from_secrets(&[b"other secret"]).open::<Session>("session", &sealed).is_err());
        let (payload, tag) = sealed.split_once('.').unwrap();
        let mut forged = session();
        forged.groups = vec!["supervisors".into()];
        let forged_payload = b64url(&serde_json::to_vec(&forged).unwrap());
        assert!(key.open::<Session>("session", &format!("{forged_payload}.{tag}")).is_err());
        assert!(key.open::<Session>("session", payload).is_err());
        assert!(key.open::<Session>("session", "").is_err());
    }

    #[test]
    fn after_a_rotation_the_previous_version_still_opens_and_only_the_current_one_seals() {
        let before = CookieKey::from_secrets(&[b"version 1"]);
        let sealed = before.seal("session", &session());
        let after = CookieKey::from_secrets(&[b"version 2", b"version 1"]);
        assert_eq!(after.open::<Session>("session", &sealed), Ok(session()), "nobody is signed out");
        let resealed = after.seal("session", &session());
        assert!(before.open::<Session>("session", &resealed).is_err(), "sealed under version 2");
        assert!(CookieKey::from_secrets(&[b"version 3", b"version 2"]).open::<Session>("session", &sealed).is_err());
    }

    #[test]
    fn a_cursor_opens_only_sealed_by_the_same_key_for_the_same_type_and_hides_its_content() {
        let key = CursorKey::from_secrets(&[b"session key secret"]);
        let cursor = r#"{"pk":"recording#calls/apac/secret.wav"}"#;
        let sealed = key.seal("calls", cursor);
        assert!(!String::from_utf8_lossy(&b64url_decode(&sealed).unwrap()).contains("apac"));
        assert_eq!(key.open("calls", &sealed).as_deref(), Some(cursor));
        let rotated = CursorKey::from_secrets(&[b"new version", b"session key secret"]);
        assert_eq!(rotated.open("calls", &sealed).as_deref(), Some(cursor), "across a rotation");
        assert_eq!(key.open("screens", &sealed), None, "bound to its type");
        assert_eq!(CursorKey::random().open("calls", &sealed), None);
        assert_eq!(key.open("calls", "AAAA"), None);
        assert_eq!(key.open("calls", "%%"), None);
    }

    #[test]
    fn cookies_are_found_by_exact_name() {
        let header =
            "a=1; callvault_session=planted; __Host-callvault_session=xyz.abc; __Host-callvault_session_old=no";
        assert_eq!(cookie_value(header, SESSION_COOKIE), Some("xyz.abc"));
        assert_eq!(cookie_value("__Host-callvault_session_old=no", SESSION_COOKIE), None);
        assert_eq!(cookie_value("callvault_session=planted", SESSION_COOKIE), None, "the unprefixed name is not ours");
        assert_eq!(cookie_value("", SESSION_COOKIE), None);
    }
}
