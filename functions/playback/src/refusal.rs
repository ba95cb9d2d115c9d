//! Refusals: every error a request can meet, answered as
//! `{ "error": code, "message": ... }` with its status and headers, and
//! what is logged beside it.

use lambda_http::http::{header, StatusCode};
use lambda_http::Response;
use vault::errors::{ErrorKind, OperationError};
use vault::playback::PlaybackError;

use crate::auth::AuthError;
use crate::body::PlaybackBody;
use crate::route::PathError;
use inbound::range::RangeError;

use crate::response::internal;

/// An error answered as `{ "error": code, "message": ... }`.
pub(crate) struct Refusal {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: String,
    pub(crate) key: Option<String>,
    pub(crate) headers: Vec<(header::HeaderName, String)>,
    /// What is logged beside the message, when it says more.
    pub(crate) detail: Option<String>,
}

impl Refusal {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), key: None, headers: Vec::new(), detail: None }
    }

    pub(crate) fn with_header(mut self, name: header::HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub(crate) fn path(e: PathError) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_path", e.to_string())
    }

    pub(crate) fn range(e: RangeError) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_range", e.to_string())
    }

    pub(crate) fn auth(e: AuthError) -> Self {
        let status = match e {
            AuthError::NotSignedIn | AuthError::TokenRefused(_) | AuthError::SessionRefused(_) => {
                StatusCode::UNAUTHORIZED
            }
            AuthError::ProviderUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AuthError::SignIn(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::NOT_IMPLEMENTED,
        };
        let mut refusal = Self::new(status, e.code(), e.message());
        refusal.detail = Some(e.to_string());
        match e {
            AuthError::TokenRefused(_) => {
                refusal.with_header(header::WWW_AUTHENTICATE, r#"Bearer realm="callvault", error="invalid_token""#)
            }
            AuthError::NotSignedIn | AuthError::SessionRefused(_) => {
                refusal.with_header(header::WWW_AUTHENTICATE, r#"Bearer realm="callvault""#)
            }
            AuthError::ProviderUnavailable(_) => refusal.with_header(header::RETRY_AFTER, "5"),
            _ => refusal,
        }
    }

    pub(crate) fn not_permitted(what: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "not_permitted",
            format!("You are not permitted to play {what}: ask the administrator of the player for access."),
        )
    }

    pub(crate) fn playback(e: &PlaybackError) -> Self {
        let code = e.code();
        let status = match e.kind() {
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            // Gone from here for good; the body says where it went.
            ErrorKind::Moved => StatusCode::GONE,
            ErrorKind::KeyRefused => StatusCode::FORBIDDEN,
            ErrorKind::Transient => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        // Fixed texts: the detail (an AWS message, a bucket, a table, another
        // recording) goes to the log with the request id, never to the client.
        let mut refusal = match (e.kind(), e.key_arn()) {
            (ErrorKind::KeyRefused, Some(key)) => {
                let mut r = Self::new(
                    status,
                    code,
                    format!(
                        "This recording cannot be played: its KMS key refuses ({code}). Contact the administrator of KMS key {key}."
                    ),
                );
                r.key = Some(key.to_string());
                r
            }
            (ErrorKind::NotFound, _) => Self::new(status, code, e.to_string()),
            // Where it went (the region), not how it is stored there.
            (ErrorKind::Moved, _) => match e {
                PlaybackError::Moved { id, region, moved_at, .. } => Self::new(
                    status,
                    code,
                    format!("recording {id} moved to {region} on {moved_at}: play it from the {region} deployment"),
                ),
                _ => Self::new(status, code, "this recording moved to another deployment"),
            },
            (ErrorKind::Integrity, _) => Self::new(
                status,
                code,
                "this recording failed its integrity check and nothing of it was released: report it to the security team with this request's id",
            ),
            (ErrorKind::Transient, _) => {
                Self::new(status, code, "the recording cannot be read right now; retry in a moment")
            }
            _ => Self::new(
                status,
                code,
                "playback is not set up correctly: give the operator this request's id (the log has the detail)",
            ),
        };
        refusal.detail = Some(e.to_string());
        if status == StatusCode::SERVICE_UNAVAILABLE {
            refusal = refusal.with_header(header::RETRY_AFTER, "1");
        }
        refusal
    }

    pub(crate) fn into_response(self, head_only: bool) -> Response<PlaybackBody> {
        let mut body = serde_json::json!({ "error": self.code, "message": self.message });
        if let Some(key) = &self.key {
            body["key_arn"] = serde_json::Value::from(key.as_str());
        }
        let body = body.to_string();
        let mut builder = Response::builder()
            .status(self.status)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CONTENT_LENGTH, body.len())
            .header(header::CACHE_CONTROL, "no-store")
            .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
        for (name, value) in self.headers {
            builder = builder.header(name, value);
        }
        let body = if head_only { PlaybackBody::empty() } else { PlaybackBody::full(body) };
        builder.body(body).unwrap_or_else(|_| internal())
    }
}

/// ` with ids starting ...` when the person holds prefixes of the type.
pub(crate) fn prefix_hint(access: &crate::auth::access::Access, id: &vault::recording::RecordingId) -> String {
    let (prefixes, _) = access.prefixes(&id.recording_type);
    if prefixes.is_empty() {
        String::new()
    } else {
        format!(" outside {}", prefixes.iter().map(|p| format!("{p}*")).collect::<Vec<_>>().join(", "))
    }
}
