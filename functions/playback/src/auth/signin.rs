//! The browser's side of the player: the page and its files, the sign-in
//! through the identity provider (authorization code with PKCE, the code
//! exchanged here, server-side, with the client secret), the session cookie
//! that follows, and who a request is from.
//!
//! The browser never holds a token: the ID token is verified and dropped in
//! the callback; the cookie carries only who, which groups and until when,
//! signed by this function, `HttpOnly` (no script reads it), `SameSite=Lax`
//! (sent on the identity provider's redirect back, not on other sites'
//! subrequests) and `Secure` behind HTTPS.

use std::time::Duration;

use lambda_http::http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use zeroize::Zeroizing;

use crate::auth::access::AccessPolicy;
use crate::auth::oidc::Oidc;
use crate::auth::provider::{form_encode, IdentityProvider};
use crate::auth::session::{cookie_value, CookieKey, CursorKey, LoginState, Session, LOGIN_COOKIE, SESSION_COOKIE};
use crate::auth::{b64url, now_secs, random_token, AuthError, Identity};
use crate::body::PlaybackBody;

/// The header a tool's token travels in where `Authorization` is the
/// transport's: a direct call of the Function URL is SigV4-signed in
/// `Authorization`, and CloudFront's origin access control replaces the
/// viewer's `Authorization` with its own signature.
pub const TOKEN_HEADER: &str = "x-callvault-authorization";

/// How long a sign-in may take at the identity provider.
pub const LOGIN_SECONDS: u64 = 600;

/// How far in the future a session may say it began (clocks of containers).
const CLOCK_LEEWAY: u64 = 60;

/// Browser sign-in: what the code flow needs beyond the verifier.
pub struct SignIn {
    /// The player's public URL, without a trailing slash.
    pub player_url: String,
    /// The identity provider's client secret: for the token endpoint only.
    pub client_secret: Zeroizing<String>,
    /// The session key secret's versions (current first): the cookies' and
    /// the cursors' keys, the player's own.
    session_keys: Vec<Zeroizing<String>>,
    pub cookies: CookieKey,
    /// How long a session lasts from its start (`iat`), whatever its `exp`.
    pub session: Duration,
    pub scopes: String,
}

impl SignIn {
    /// Sign-in for `player_url` with `client_secret` and the versions of the
    /// session-key secret, current first (both read from Secrets Manager at
    /// start).
    pub fn new(
        player_url: String,
        client_secret: Zeroizing<String>,
        session_keys: Vec<Zeroizing<String>>,
        session: Duration,
        scopes: String,
    ) -> Self {
        let versions: Vec<&[u8]> = session_keys.iter().map(|k| k.as_bytes()).collect();
        let cookies = CookieKey::from_secrets(&versions);
        Self { player_url, client_secret, session_keys, cookies, session, scopes }
    }

    /// The list's cursor key, from the session-key secret.
    pub fn cursor_key(&self) -> CursorKey {
        let versions: Vec<&[u8]> = self.session_keys.iter().map(|k| k.as_bytes()).collect();
        CursorKey::from_secrets(&versions)
    }

    fn redirect_uri(&self) -> String {
        format!("{}/auth/callback", self.player_url)
    }

    /// `Set-Cookie` for `name` (a `__Host-` name): Secure, `Path=/` and no
    /// `Domain`, as the prefix demands, HttpOnly, SameSite=Lax; `max_age` 0
    /// deletes it. The player's URL is https, or http://localhost, which
    /// browsers treat as secure (the configuration refuses anything else).
    fn cookie(&self, name: &str, value: &str, max_age: u64) -> String {
        format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax; Secure")
    }
}

/// Authentication and authorization of every request.
pub struct Auth<P> {
    pub oidc: Oidc<P>,
    pub access: AccessPolicy,
    /// `None`: bearer tokens only.
    pub sign_in: Option<SignIn>,
}

/// The value of cookie `name` in any of the request's `Cookie` headers.
fn request_cookie<'a>(headers: &'a HeaderMap<HeaderValue>, name: &str) -> Option<&'a str> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|v| cookie_value(v, name))
}

fn redirect(location: &str, cookies: &[String]) -> Response<PlaybackBody> {
    let mut builder = Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, location)
        .header(header::CACHE_CONTROL, "no-store")
        .header(header::REFERRER_POLICY, "no-referrer")
        .header(header::CONTENT_LENGTH, 0);
    for cookie in cookies {
        builder = builder.header(header::SET_COOKIE, cookie);
    }
    builder.body(PlaybackBody::empty()).unwrap_or_else(|_| crate::response::internal())
}

impl<P: IdentityProvider> Auth<P> {
    fn sign_in(&self) -> Result<&SignIn, AuthError> {
        self.sign_in.as_ref().ok_or(AuthError::SignInNotConfigured("PLAYER_URL and OIDC_CLIENT_SECRET_ARN are unset"))
    }

    /// Who sent the request: its bearer token (in [`TOKEN_HEADER`], or in
    /// `Authorization` when that says `Bearer`), else its session cookie.
    /// An `Authorization` of another scheme (SigV4: the Function URL's, or
    /// CloudFront's) is the transport's, not the person's.
    pub async fn authenticate(&self, headers: &HeaderMap<HeaderValue>) -> Result<Identity, AuthError> {
        let bearer = |value: &HeaderValue| {
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, token)| token.trim().to_string())
        };
        let token = match headers.get(TOKEN_HEADER) {
            Some(value) => Some(
                bearer(value)
                    .ok_or_else(|| AuthError::TokenRefused(format!("{TOKEN_HEADER} is not \"Bearer <token>\"")))?,
            ),
            None => headers.get(header::AUTHORIZATION).and_then(bearer),
        };
        if let Some(token) = token {
            let claims = self.oidc.verify(&token, None).await?;
            return Ok(self.oidc.identity(&claims, "bearer"));
        }
        let cookie = request_cookie(headers, SESSION_COOKIE);
        let (Some(cookie), Some(sign_in)) = (cookie, self.sign_in.as_ref()) else {
            return Err(AuthError::NotSignedIn);
        };
        let session: Session =
            sign_in.cookies.open("session", cookie).map_err(|why| AuthError::SessionRefused(why.into()))?;
        let now = now_secs();
        if session.exp <= now {
            return Err(AuthError::SessionRefused(format!("it ended at {}", session.exp)));
        }
        // The server's own limit, whatever `exp` says: a session lasts
        // SESSION_SECONDS from the sign-in that started it.
        let lasts = sign_in.session.as_secs();
        if session.iat > now + CLOCK_LEEWAY || now.saturating_sub(session.iat) > lasts {
            return Err(AuthError::SessionRefused(format!(
                "it began at {}, and a session lasts {lasts} s from its sign-in (SESSION_SECONDS)",
                session.iat
            )));
        }
        Ok(Identity {
            subject: session.sub,
            username: session.name,
            email: session.email,
            groups: session.groups,
            token_id: Some(session.sid),
            method: "session",
        })
    }

    /// Starts a sign-in: a fresh state, nonce and PKCE verifier kept in a
    /// signed cookie, and the redirect to the identity provider.
    pub async fn login(&self) -> Result<Response<PlaybackBody>, AuthError> {
        let sign_in = self.sign_in()?;
        let metadata = self.oidc.metadata().await?;
        let login = LoginState {
            state: random_token(16),
            nonce: random_token(16),
            verifier: random_token(32),
            exp: now_secs() + LOGIN_SECONDS,
        };
        let challenge =
            b64url(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, login.verifier.as_bytes()).as_ref());
        let redirect_uri = sign_in.redirect_uri();
        let query = form_encode(&[
            ("response_type", "code"),
            ("client_id", &self.oidc.settings().client_id),
            ("redirect_uri", &redirect_uri),
            ("scope", &sign_in.scopes),
            ("state", &login.state),
            ("nonce", &login.nonce),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ]);
        let endpoint = &metadata.authorization_endpoint;
        let join = if endpoint.contains('?') { '&' } else { '?' };
        let cookie = sign_in.cookie(LOGIN_COOKIE, &sign_in.cookies.seal("login", &login), LOGIN_SECONDS);
        Ok(redirect(&format!("{endpoint}{join}{query}"), &[cookie]))
    }

    /// The identity provider's redirect back: the state checked against
    /// the sign-in's cookie, the code exchanged, the ID token verified, and
    /// the session cookie set. Returns the response and who signed in.
    pub async fn callback(
        &self,
        query: &[(String, String)],
        headers: &HeaderMap<HeaderValue>,
    ) -> Result<(Response<PlaybackBody>, Identity), AuthError> {
        let sign_in = self.sign_in()?;
        let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        if let Some(error) = param("error") {
            return Err(AuthError::SignIn(format!(
                "the identity provider answered {error}: {}",
                param("error_description").unwrap_or("no description")
            )));
        }
        let cookie = request_cookie(headers, LOGIN_COOKIE)
            .ok_or_else(|| AuthError::SignIn("no sign-in in progress in this browser (no sign-in cookie)".into()))?;
        let login: LoginState = sign_in
            .cookies
            .open("login", cookie)
            .map_err(|why| AuthError::SignIn(format!("the sign-in cookie: {why}")))?;
        let now = now_secs();
        if login.exp <= now {
            return Err(AuthError::SignIn("the sign-in took longer than 10 minutes".into()));
        }
        let state = param("state").unwrap_or_default();
        if aws_lc_rs::constant_time::verify_slices_are_equal(state.as_bytes(), login.state.as_bytes()).is_err() {
            return Err(AuthError::SignIn("the state is not this browser's sign-in".into()));
        }
        let code = param("code").ok_or_else(|| AuthError::SignIn("the redirect carries no code".into()))?;
        let claims = self
            .oidc
            .exchange_code(code, &login.verifier, &sign_in.redirect_uri(), &login.nonce, &sign_in.client_secret)
            .await?;
        let mut identity = self.oidc.identity(&claims, "session");
        identity.groups = identity.granting_groups(&self.access);
        let token_exp = claims.get("exp").and_then(serde_json::Value::as_u64).unwrap_or(now);
        let exp = token_exp.max(now + 60).min(now + sign_in.session.as_secs());
        let session = Session {
            sub: identity.subject.clone(),
            name: identity.username.clone(),
            email: identity.email.clone(),
            groups: identity.groups.clone(),
            sid: identity.token_id.clone().unwrap_or_else(|| random_token(12)),
            iat: now,
            exp,
        };
        identity.token_id = Some(session.sid.clone());
        let cookies = [
            sign_in.cookie(SESSION_COOKIE, &sign_in.cookies.seal("session", &session), exp - now),
            sign_in.cookie(LOGIN_COOKIE, "", 0),
        ];
        Ok((redirect(&format!("{}/", sign_in.player_url), &cookies), identity))
    }

    /// Ends the session in this browser.
    pub fn logout(&self) -> Result<Response<PlaybackBody>, AuthError> {
        let sign_in = self.sign_in()?;
        Ok(redirect(&format!("{}/", sign_in.player_url), &[sign_in.cookie(SESSION_COOKIE, "", 0)]))
    }
}
