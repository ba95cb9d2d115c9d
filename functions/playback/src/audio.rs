//! The audio route: `GET`/`HEAD /recordings/<type>/<id>`, whole or by
//! range, its headers (type, length, validators, caching), and the rest of
//! a long stream sent after the first batch.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use lambda_http::http::{header, StatusCode};
use lambda_http::{Request, Response};
use tokio::sync::mpsc;
use vault::errors::OperationError;
use vault::playback::{FrameStream, OpenRecording, OpenStats};
use vault::ports::catalog::{RecordingBrowser, RecordingCatalog};
use vault::ports::keys::KeyManagement;
use vault::ports::objects::ObjectStore;

use crate::audit::{AuditLog, AuditRecord};
use crate::auth::provider::IdentityProvider;
use crate::body::{PlaybackBody, StreamAborted};
use inbound::range::ByteRange;

use crate::audit::millis;
use crate::dispatch::Handler;
use crate::refusal::Refusal;
use crate::response::{internal, Answer};
use crate::route::header_str;

/// Batches of audio waiting to be sent: bounds the memory of a stream.
const STREAM_DEPTH: usize = 2;

const OCTET_STREAM: &str = "application/octet-stream";

/// The type a recording is served as: its (uploader-given) content type
/// when that is audio or video, reduced to its essence (`audio/wav`), else
/// `None` (served as an attachment of type application/octet-stream).
fn served_content_type(declared: &str) -> Option<String> {
    let essence = declared.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let (kind, subtype) = essence.split_once('/')?;
    let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b));
    (matches!(kind, "audio" | "video") && token(subtype)).then_some(essence)
}

impl<K, O, C, P> Handler<K, O, C, P>
where
    K: KeyManagement + 'static,
    O: ObjectStore + 'static,
    C: RecordingCatalog + RecordingBrowser + 'static,
    P: IdentityProvider,
{
    /// Sends the rest of a stream in its own task, which writes the
    /// request's audit line when it ends.
    pub(crate) fn send_rest(
        &self,
        frames: FrameStream,
        tx: mpsc::Sender<Result<Bytes, StreamAborted>>,
        audit: AuditRecord,
        started: Instant,
    ) {
        tokio::spawn(stream_rest(frames, tx, audit, started, self.audit.clone()));
    }

    /// The audio of one recording (the whole of it, or a range); the
    /// refusal `stale` when it came from the cache and the vault's current
    /// version is no longer the one the cache opened.
    pub(crate) async fn audio(
        &self,
        req: &Request,
        id: &vault::recording::RecordingId,
        range: Option<ByteRange>,
        audit: &mut AuditRecord,
        head_only: bool,
    ) -> Result<Answer, Refusal> {
        let mut stats = OpenStats::default();
        let opened = self.player.open(id, &mut stats).await;
        audit.kms_calls = stats.kms_calls;
        audit.s3_bytes = stats.s3_bytes;
        audit.key_source = match (stats.kms_calls, stats.cache_hit) {
            (0, true) => "cache",
            (0, false) => "none",
            _ => "kms",
        };
        let open = opened.map_err(|e| {
            audit.key_arn = e.key_arn().map(str::to_string);
            Refusal::playback(&e)
        })?;
        audit.key_arn = Some(open.key_arn().to_string());
        let etag = format!("\"{}\"", open.entry.message_id);
        if header_str(req.headers(), header::IF_NONE_MATCH).is_some_and(|v| etag_matches(v, &etag)) {
            let builder = self.headers(StatusCode::NOT_MODIFIED, &open, &etag, None);
            return Ok(builder.body(PlaybackBody::empty()).unwrap_or_else(|_| internal()).into());
        }
        // A range against another version of the recording is ignored: the
        // whole current one is sent (RFC 9110 section 13.1.5).
        let range = range.filter(|_| header_str(req.headers(), header::IF_RANGE).is_none_or(|v| v == etag));
        let len = open.len();
        let (status, served) = match range {
            None => (StatusCode::OK, None),
            Some(r) => match r.resolve(len, self.max_response_bytes) {
                Some(served) => (StatusCode::PARTIAL_CONTENT, Some(served)),
                None => {
                    return Err(Refusal::new(
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        "range_not_satisfiable",
                        format!("the recording has {len} bytes: no byte of the requested range is in it"),
                    )
                    .with_header(header::CONTENT_RANGE, format!("bytes */{len}")))
                }
            },
        };
        let builder = self.headers(status, &open, &etag, served.clone());
        let body_len = served.as_ref().map_or(len, |r| r.end - r.start);
        audit.range_served = Some(match &served {
            Some(r) => format!("{}-{}/{len}", r.start, r.end - 1),
            None if len == 0 => format!("*/{len}"),
            None => format!("0-{}/{len}", len - 1),
        });
        if head_only {
            return Ok(builder.body(PlaybackBody::empty()).unwrap_or_else(|_| internal()).into());
        }
        let span = open.span(served).map_err(|e| Refusal::playback(&e))?;
        let mut frames = self.player.frames(&open, &span).await.map_err(|e| Refusal::playback(&e))?;
        // The first batch is authenticated before the status is sent, so a
        // tampered start is an `integrity` response, not a broken stream.
        let first = match frames.next_batch().await {
            Some(batch) => batch.map_err(|e| Refusal::playback(&e))?,
            None => Vec::new(),
        };
        audit.bytes_sent = first.iter().map(|b| b.len() as u64).sum();
        let (tx, rx) = mpsc::channel(STREAM_DEPTH);
        let body = PlaybackBody::streamed(body_len, first, rx);
        Ok(Answer { response: builder.body(body).unwrap_or_else(|_| internal()), rest: Some((frames, tx)) })
    }

    fn headers(
        &self,
        status: StatusCode,
        open: &OpenRecording,
        etag: &str,
        served: Option<std::ops::Range<u64>>,
    ) -> lambda_http::http::response::Builder {
        let len = open.len();
        let body_len = served.as_ref().map_or(len, |r| r.end - r.start);
        let content_type = served_content_type(open.content_type());
        let mut builder = Response::builder()
            .status(status)
            .header(header::CONTENT_TYPE, content_type.as_deref().unwrap_or(OCTET_STREAM))
            .header(header::ACCEPT_RANGES, "bytes")
            .header(header::ETAG, etag)
            // Decrypted audio is never kept by a browser or a shared cache.
            .header(header::CACHE_CONTROL, "private, no-store")
            .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
        if content_type.is_none() {
            // Not audio or video: a browser saves it, never renders it.
            builder = builder.header(header::CONTENT_DISPOSITION, "attachment");
        }
        if status != StatusCode::NOT_MODIFIED {
            builder = builder.header(header::CONTENT_LENGTH, body_len);
        }
        if let Some(r) = served {
            builder = builder.header(header::CONTENT_RANGE, format!("bytes {}-{}/{len}", r.start, r.end - 1));
        }
        builder
    }
}

/// Sends the rest of a stream, then writes the request's audit line.
pub(crate) async fn stream_rest(
    mut frames: FrameStream,
    tx: mpsc::Sender<Result<Bytes, StreamAborted>>,
    mut audit: AuditRecord,
    started: Instant,
    log: Arc<dyn AuditLog>,
) {
    audit.outcome = "ok";
    let mut failure = None;
    'batches: while let Some(batch) = frames.next_batch().await {
        match batch {
            Ok(pieces) => {
                for piece in pieces {
                    let n = piece.len() as u64;
                    if tx.send(Ok(piece)).await.is_err() {
                        audit.outcome = "client_gone";
                        break 'batches;
                    }
                    audit.bytes_sent += n;
                }
            }
            Err(e) => {
                audit.outcome = "aborted";
                audit.code = Some(e.code());
                tracing::error!(code = e.code(), recording = ?audit.recording, request_id = %audit.request_id, "stream aborted: {e}");
                failure = Some(StreamAborted(e.code()));
                break;
            }
        }
    }
    audit.s3_bytes += frames.s3_bytes();
    audit.duration_ms = millis(started);
    // The audit line is written before the body ends (cleanly or with the
    // error), so it is out before Lambda considers the invocation done.
    log.record(&audit);
    if let Some(failure) = failure {
        let _ = tx.send(Err(failure)).await;
    }
    drop(tx);
}

pub(crate) fn etag_matches(list: &str, etag: &str) -> bool {
    list.split(',').map(str::trim).any(|t| t == "*" || t == etag || t.strip_prefix("W/") == Some(etag))
}
