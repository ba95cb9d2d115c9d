//! Responses every route shares: JSON, the page's static files, the answer
//! a route gives the dispatcher (with the rest of a stream, for audio), and
//! the last resort when a response cannot be built.

use bytes::Bytes;
use lambda_http::http::{header, StatusCode};
use lambda_http::Response;
use tokio::sync::mpsc;
use vault::playback::FrameStream;

use crate::body::{PlaybackBody, StreamAborted};

pub(crate) fn internal() -> Response<PlaybackBody> {
    let mut r =
        Response::new(PlaybackBody::full(r#"{"error":"internal","message":"the response could not be built"}"#));
    *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    r
}

/// A response and, for audio, the rest of the stream still to send.
pub(crate) struct Answer {
    pub(crate) response: Response<PlaybackBody>,
    pub(crate) rest: Option<(FrameStream, mpsc::Sender<Result<Bytes, StreamAborted>>)>,
}

impl From<Response<PlaybackBody>> for Answer {
    fn from(response: Response<PlaybackBody>) -> Self {
        Self { response, rest: None }
    }
}

pub(crate) fn json_response(status: StatusCode, body: &serde_json::Value, head_only: bool) -> Response<PlaybackBody> {
    let body = body.to_string();
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CONTENT_LENGTH, body.len())
        .header(header::CACHE_CONTROL, "private, no-store")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body(if head_only { PlaybackBody::empty() } else { PlaybackBody::full(body) })
        .unwrap_or_else(|_| internal())
}
