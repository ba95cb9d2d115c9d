//! The player page: its HTML, the policy that keeps it to its own files,
//! and how it and its files are served.

use lambda_http::http::{header, Response, StatusCode};

use crate::body::PlaybackBody;

/// files (no inline script, no other origin).
pub const PAGE: &str = include_str!("../player/index.html");
pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     media-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A page or one of its files.
pub fn static_response(content_type: &str, body: &'static str, head_only: bool) -> Response<PlaybackBody> {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, body.len())
        .header(header::CACHE_CONTROL, "no-cache")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY)
        .header(header::REFERRER_POLICY, "no-referrer")
        .header(header::X_FRAME_OPTIONS, "DENY")
        .body(if head_only { PlaybackBody::empty() } else { PlaybackBody::full(body) })
        .unwrap_or_else(|_| crate::response::internal())
}
